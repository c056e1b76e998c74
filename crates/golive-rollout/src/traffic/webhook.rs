//! The webhook actuator: `POST URL` with `{"canary": w, "stable": 100 - w}`
//! (`Content-Type: application/json`), through golive's API client
//! ([`golive_runtime::api_client`]: the same TLS settings as the probes).
//! A 2xx answer is success; anything else is an error quoting the status
//! and the start of the body. The receiver must treat a repeated weight as
//! a no-op; golive cannot ask it what is in effect, so `current()` is
//! always `None`. Note that the client follows redirects, and a 301, 302
//! or 303 turns the POST into a GET: give the final URL.

use std::time::Duration;

use golive_runtime::{Vars, error_chain, mask_userinfo};
use serde_json::json;

use super::{Applied, DEFAULT_TIMEOUT, TrafficError};

/// Body bytes read from the answer (for the error or the journal).
const MAX_BODY: usize = 4096;
/// Body characters quoted.
const QUOTED_BODY: usize = 500;

/// A URL told each new weight.
pub struct Webhook {
    url: reqwest::Url,
    /// The URL with its password and secret values hidden.
    shown: String,
    client: reqwest::Client,
    timeout: Duration,
    /// For redacting secrets from answers.
    vars: Vars,
}

/// Shows the URL with secrets hidden: `{:?}` ends up in logs.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.shown)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Checks that the URL is an absolute `http` or `https` URL.
    pub(super) fn new(url: &str, vars: &Vars) -> Result<Webhook, TrafficError> {
        let config = |message: String| TrafficError::Config {
            backend: "webhook",
            message,
        };
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
            config(format!(
                "`{}` is not a URL: {e}",
                vars.redact(&mask_userinfo(url))
            ))
        })?;
        let mut hidden = parsed.clone();
        if hidden.password().is_some() {
            let _ = hidden.set_password(Some("***"));
        }
        let shown = vars.redact(hidden.as_str());
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(config(format!("`{shown}` is not an http or https URL")));
        }
        let client = golive_runtime::api_client(DEFAULT_TIMEOUT).map_err(config)?;
        Ok(Webhook {
            url: parsed,
            shown,
            client,
            timeout: DEFAULT_TIMEOUT,
            vars: vars.clone(),
        })
    }

    pub(super) fn with_timeout(mut self, timeout: Duration) -> Webhook {
        self.timeout = timeout;
        self
    }

    /// `webhook POST https://…`.
    pub(super) fn describe(&self) -> String {
        format!("webhook POST {}", self.shown)
    }

    /// Posts the weights once.
    pub(super) async fn set_weight(&self, canary: u8) -> Result<Applied, TrafficError> {
        let stable = 100 - canary;
        let payload = json!({"canary": canary, "stable": stable});
        let unreachable = |message: String| TrafficError::WebhookUnreachable {
            url: self.shown.clone(),
            message: self.vars.redact(&message),
        };
        let mut response = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload.to_string())
            .send()
            .await
            .map_err(|e| unreachable(error_chain(&e.without_url())))?;
        let status = response.status();
        let mut body = Vec::new();
        while body.len() < MAX_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                // A failed body read after a 2xx still moved the traffic;
                // after another status the status is the news.
                Err(e) if status.is_success() => {
                    return Err(unreachable(format!(
                        "HTTP {} but reading the answer failed: {}",
                        status.as_u16(),
                        error_chain(&e.without_url())
                    )));
                }
                Err(_) => break,
            }
        }
        let body = excerpt(&String::from_utf8_lossy(&body));
        let body = self.vars.redact(&body);
        if !status.is_success() {
            return Err(TrafficError::WebhookStatus {
                url: self.shown.clone(),
                status: status.as_u16(),
                body: if body.is_empty() {
                    "(empty body)".to_string()
                } else {
                    body
                },
            });
        }
        Ok(Applied {
            canary,
            stable,
            detail: json!({
                "backend": "webhook",
                "url": self.shown,
                "sent": payload,
                "status": status.as_u16(),
                "body": body,
            }),
        })
    }
}

/// The start of an answer's body, on one line.
fn excerpt(body: &str) -> String {
    let flat: String = body
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(QUOTED_BODY) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_hidden() {
        let vars = Vars::default();
        let w = Webhook::new("https://ops:hunter2@hooks.example/traffic?x=1", &vars)
            .expect("a valid URL");
        assert_eq!(
            w.describe(),
            "webhook POST https://ops:***@hooks.example/traffic?x=1"
        );
        assert!(Webhook::new("ftp://h/x", &vars).is_err());
        let e = Webhook::new("http://ops:hunter2@[bad/x", &vars).expect_err("bad URL");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn excerpts_are_short_and_flat() {
        assert_eq!(excerpt(" a\nb "), "a b");
        let long = "x".repeat(600);
        assert_eq!(excerpt(&long).chars().count(), QUOTED_BODY + 1);
    }
}
