//! PagerDuty Events API v2: alert events (`trigger`, `acknowledge`, `resolve`
//! keyed by `dedup_key`) to `/v2/enqueue`, change events to
//! `/v2/change/enqueue`.

use serde_json::{Value, json};

use crate::{Event, Message, Request};

/// PagerDuty's own Events API.
pub const EVENTS_URL: &str = "https://events.pagerduty.com";

/// The Events API caps `summary` at 1024 characters.
const SUMMARY_MAX: usize = 1024;

/// The request for `message`: endpoint and JSON body.
pub(crate) fn request(routing_key: &str, events_url: Option<&str>, message: &Message) -> Request {
    let base = events_url.unwrap_or(EVENTS_URL).trim_end_matches('/');
    let path = if message.event == Event::Change {
        "/v2/change/enqueue"
    } else {
        "/v2/enqueue"
    };
    Request {
        url: format!("{base}{path}"),
        headers: Vec::new(),
        body: body(routing_key, message).to_string().into_bytes(),
    }
}

/// The JSON body for `message`.
pub fn body(routing_key: &str, message: &Message) -> Value {
    let summary: String = message.text.chars().take(SUMMARY_MAX).collect();
    let details = json!({"plan": message.plan, "run": message.run, "item": message.item});
    match message.event {
        Event::Change => json!({
            "routing_key": routing_key,
            "payload": {
                "summary": summary,
                "timestamp": jiff::Timestamp::now().to_string(),
                "source": message.plan,
                "custom_details": details,
            },
        }),
        Event::Trigger => {
            let mut v = json!({
                "routing_key": routing_key,
                "event_action": "trigger",
                "payload": {
                    "summary": summary,
                    "source": message.plan,
                    "severity": message.severity.as_str(),
                    "timestamp": jiff::Timestamp::now().to_string(),
                    "component": message.item,
                    "custom_details": details,
                },
                "client": "golive",
            });
            if let Some(k) = &message.dedup_key {
                v["dedup_key"] = json!(k);
            }
            v
        }
        Event::Acknowledge | Event::Resolve => json!({
            "routing_key": routing_key,
            "event_action": message.event.as_str(),
            "dedup_key": message.dedup_key,
        }),
    }
}
