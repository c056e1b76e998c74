//! Notification channels, each in its documented wire format: Slack-compatible
//! incoming webhooks ([`slack`]), PagerDuty Events API v2 ([`pagerduty`]) and
//! generic webhooks signed per Standard Webhooks ([`webhook`]), and email over
//! SMTP ([`email`]).
//!
//! This crate owns the payloads and their delivery (one POST or one SMTP
//! transaction, retried with backoff on connection errors, timeouts, HTTP 5xx
//! and 429, and SMTP 4xx). It knows nothing of plans or
//! journals: the engine resolves secrets, calls [`send`] and journals the
//! [`Delivery`] or [`Failure`]. URLs and keys arrive already expanded and must
//! never appear in what this crate returns, so errors name the channel kind
//! and the HTTP status, not the URL.

pub mod email;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use std::time::Duration;

pub use golive_plan::{AlertSeverity, NotifyEvent as Event};
use serde_json::Value;

/// Where a message goes, with its secrets resolved: the plan's
/// `ChannelKind` holds templates and includes the journal-only `log`, which
/// sends nothing; this holds values ready to use.
#[derive(Clone, Debug)]
pub enum Target {
    /// A Slack-compatible incoming webhook URL.
    Slack {
        /// Webhook URL.
        url: String,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        /// Integration (routing) key.
        routing_key: String,
        /// Base URL of the Events API; `None` is PagerDuty's own.
        events_url: Option<String>,
    },
    /// A generic JSON webhook, signed when a secret is given.
    Webhook {
        /// Endpoint URL.
        url: String,
        /// Standard Webhooks secret, `whsec_<base64>`.
        secret: Option<String>,
    },
    /// Email over SMTP.
    Email {
        /// Recipient addresses.
        to: Vec<String>,
        /// Sender address.
        from: String,
        /// Server URL (`smtp://`, `smtps://`; see [`email`]), credentials
        /// included.
        smtp: String,
    },
}

/// A message and the facts every channel may show.
#[derive(Clone, Debug)]
pub struct Message {
    /// The text, variables expanded and secrets redacted.
    pub text: String,
    /// Plan name (PagerDuty's `source`).
    pub plan: String,
    /// Run id.
    pub run: String,
    /// Item id.
    pub item: String,
    /// PagerDuty event; other channels ignore it.
    pub event: Event,
    /// PagerDuty dedup key; required for acknowledge and resolve.
    pub dedup_key: Option<String>,
    /// PagerDuty severity of a trigger.
    pub severity: AlertSeverity,
}

/// How hard to try.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts after the first.
    pub retries: u32,
    /// Pause before the first retry; doubled after each, capped at 30 s.
    pub backoff: Duration,
    /// Limit for one attempt.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            retries: 3,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A delivered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Attempts it took.
    pub attempts: u32,
    /// The receiver's HTTP status, or the SMTP server's reply code.
    pub status: u16,
}

/// A message that was not delivered.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{error} (after {attempts} attempt(s))")]
pub struct Failure {
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}

/// One request ready to go: URL, extra headers, JSON body.
struct Request {
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// One attempt's outcome: delivered (its `attempts` is set by the loop), or
/// the error and whether it is worth retrying.
type Attempt = Result<Delivery, (String, bool)>;

/// Sends `message` to `target`, retrying transient failures.
pub async fn send(target: &Target, message: &Message, retry: Retry) -> Result<Delivery, Failure> {
    let fail = |error: String| Failure { attempts: 0, error };
    // One id for every attempt, so a receiver can drop duplicates: the
    // Standard Webhooks `webhook-id`, the email's `Message-ID`.
    let id = webhook::new_id().map_err(fail)?;
    match target {
        Target::Email { to, from, smtp } => {
            let prepared = email::prepare(to, from, smtp, message, &id).map_err(fail)?;
            with_retries(retry, |_| email::attempt(&prepared, retry.timeout)).await
        }
        _ => {
            let client = golive_runtime::api_client(retry.timeout).map_err(fail)?;
            with_retries(retry, |_| post(&client, target, message, &id)).await
        }
    }
}

/// Runs `attempt` until it delivers, fails for good, or the retries are
/// spent; the pause doubles from `retry.backoff` up to 30 s.
async fn with_retries<F, Fut>(retry: Retry, mut attempt: F) -> Result<Delivery, Failure>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Attempt>,
{
    let mut pause = retry.backoff;
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt(attempts).await {
            Ok(d) => return Ok(Delivery { attempts, ..d }),
            Err((error, transient)) if !transient || attempts > retry.retries => {
                return Err(Failure { attempts, error });
            }
            Err(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// One POST of an HTTP channel; 5xx, 429 and connection errors are
/// transient, other answers final.
async fn post(client: &reqwest::Client, target: &Target, message: &Message, id: &str) -> Attempt {
    let (kind, request) = match target {
        Target::Slack { url } => (
            "Slack webhook",
            Request {
                url: url.clone(),
                headers: Vec::new(),
                body: to_bytes(&slack::body(message)),
            },
        ),
        Target::PagerDuty {
            routing_key,
            events_url,
        } => (
            "PagerDuty Events API",
            pagerduty::request(routing_key, events_url.as_deref(), message),
        ),
        Target::Webhook { url, secret } => (
            "webhook",
            webhook::request(url, secret.as_deref(), id, message).map_err(|e| (e, false))?,
        ),
        Target::Email { .. } => return Err(("email is not sent over HTTP".into(), false)),
    };
    let mut builder = client
        .post(&request.url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("golive/", env!("CARGO_PKG_VERSION")));
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    match builder.body(request.body).send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                return Ok(Delivery {
                    attempts: 0,
                    status: status.as_u16(),
                });
            }
            let transient = status.is_server_error() || status.as_u16() == 429;
            let text = response.text().await.unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            Err((
                format!("{kind} answered {status}: {}", text.trim()),
                transient,
            ))
        }
        // Without the URL: it may hold a secret.
        Err(e) => Err((format!("{kind} unreachable: {}", without_url(e)), true)),
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// The error's chain of causes without the request URL, which may hold a
/// secret.
fn without_url(e: reqwest::Error) -> String {
    golive_runtime::error_chain(&e.without_url())
}
