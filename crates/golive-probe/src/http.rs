//! The HTTP probe: one request, and what came back — `status`, `header.<Name>`,
//! `body` (and `body.$…` into it as JSON), `response_time` (until the whole
//! body was read).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use golive_plan::RawHttp;

use crate::Outcome;
use crate::observation::{Observation, Value};
use golive_runtime::Vars;
use golive_runtime::error_chain;

/// Bodies are kept up to this size; the rest is read and dropped.
const MAX_BODY: usize = 4 << 20;

pub(crate) async fn observe(p: &RawHttp, vars: &Vars) -> Outcome {
    let url = vars.expand(&p.url.value);
    let method = p.method.as_ref().map_or_else(
        || "GET".to_string(),
        |m| m.value.trim().to_ascii_uppercase(),
    );
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let client = client(
        p.ca.as_deref().map(|c| vars.expand(c)).as_deref(),
        p.tls_verify,
    )?;
    let mut request = client.request(method.clone(), &url);
    for (name, value) in &p.headers {
        request = request.header(name.as_str(), vars.expand(value));
    }
    if let Some(body) = &p.body {
        request = request.body(vars.expand(body));
    }
    let request = request
        .build()
        .map_err(|e| format!("{method} {url}: {}", error_chain(&e)))?;
    let started = Instant::now();
    let mut response = client
        .execute(request)
        .await
        .map_err(|e| format!("{method} {url}: {}", error_chain(&e.without_url())))?;
    let mut obs = Observation::default();
    obs.set(
        "status",
        Value::Number(f64::from(response.status().as_u16())),
    );
    for (name, value) in response.headers() {
        obs.header(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        format!(
            "{method} {url}: reading the body: {}",
            error_chain(&e.without_url())
        )
    })? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    obs.set("response_time", Value::duration(started.elapsed()));
    obs.body(String::from_utf8_lossy(&body).into_owned());
    Ok(obs)
}

/// A client trusting the webpki roots and `ca`, or anything when `tls_verify` is false.
///
/// Clients are built once per TLS setting and shared: building one (its TLS
/// configuration, its root store) costs more than a loopback request. They
/// keep no idle connections, so every check opens its own connection and a
/// server that stops accepting new ones is seen as it is.
pub(crate) fn client(
    ca: Option<&str>,
    tls_verify: Option<bool>,
) -> Result<reqwest::Client, String> {
    type Clients = Mutex<HashMap<(Option<String>, bool), reqwest::Client>>;
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    let verify = tls_verify.unwrap_or(true);
    let key = (ca.map(str::to_string), verify);
    let clients = CLIENTS.get_or_init(Clients::default);
    if let Some(c) = clients.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(c);
    }
    let tls = golive_runtime::tls::http_config(ca, verify)?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("HTTP client setup: {}", error_chain(&e)))?;
    if let Ok(mut m) = clients.lock() {
        m.insert(key, client.clone());
    }
    Ok(client)
}
