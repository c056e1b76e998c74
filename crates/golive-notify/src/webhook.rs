//! Generic JSON webhooks signed per Standard Webhooks
//! (<https://www.standardwebhooks.com>): `webhook-id`, `webhook-timestamp`
//! and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//! keyed by the secret given as `whsec_<base64>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::{Message, Request};

/// A fresh message id, `msg_` and 16 random bytes in hex.
pub(crate) fn new_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("webhook id: {e}"))?;
    Ok(format!(
        "msg_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// The `webhook-signature` value for one delivery.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
        .ok_or("webhook secret must be `whsec_` followed by base64")?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key).map_err(|e| format!("webhook secret: {e}"))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The request for `message`: the Standard Webhooks envelope (`type`,
/// `timestamp`, `data`), signed when a secret is given.
pub(crate) fn request(
    url: &str,
    secret: Option<&str>,
    id: &str,
    message: &Message,
) -> Result<Request, String> {
    let now = jiff::Timestamp::now();
    let body = json!({
        "type": "golive.notify",
        "timestamp": now.to_string(),
        "data": {
            "plan": message.plan,
            "run": message.run,
            "item": message.item,
            "message": message.text,
        },
    })
    .to_string()
    .into_bytes();
    let mut headers = vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", now.as_second().to_string()),
    ];
    if let Some(secret) = secret {
        headers.push((
            "webhook-signature",
            sign(secret, id, now.as_second(), &body)?,
        ));
    }
    Ok(Request {
        url: url.to_string(),
        headers,
        body,
    })
}
