//! `notify` items: the message goes to the item's channel in that channel's
//! wire format (senders in `golive-notify`: Slack, PagerDuty, webhook,
//! email), or only to the journal for `log` channels. Every outcome is journaled: `notify.sent` with the attempts it
//! took, or `notify.failed` with the (redacted) error. A failed delivery
//! fails the item only when the channel is `required`; otherwise the run
//! goes on and the failure stays in the record.

use std::time::Duration;

use golive_notify::{Message, Retry, Target};
use golive_plan::{AlertSeverity, Channel, ChannelKind, Item, Notify, NotifyEvent};
use golive_runtime::Vars;
use golive_store::{Outcome, Store};
use serde_json::{Value, json};

use super::Host;
use crate::EngineError;

/// One message for a channel: a `notify` item's, or a rollout level's
/// decision (so a level's `notify` reaches the same channels, in the same
/// wire formats, as a `notify` item).
pub(crate) struct Outgoing<'a> {
    /// The plan's channel name.
    pub channel: &'a str,
    /// The message, expanded and redacted.
    pub text: String,
    /// PagerDuty event.
    pub event: NotifyEvent,
    /// PagerDuty dedup key, expanded.
    pub dedup_key: Option<String>,
    /// PagerDuty severity of a trigger.
    pub severity: AlertSeverity,
    /// Fields added to the journaled event (who decided, which level).
    pub extra: Value,
}

/// Sends the item's message and journals the delivery or the failure.
pub(crate) async fn run<S: Store + 'static>(
    host: &Host<'_, S>,
    item: &Item,
    notify: &Notify,
) -> Result<(Outcome, Value), EngineError> {
    let out = Outgoing {
        channel: notify.channel.as_str(),
        text: host.vars().redact(&host.vars().expand(&notify.message)),
        event: notify.event,
        dedup_key: notify.dedup_key.as_deref().map(|k| host.vars().expand(k)),
        severity: notify.severity,
        extra: json!({}),
    };
    deliver(host, Some(item), out).await
}

/// Sends `out` for `item` (none: the watch window's) and journals the
/// delivery or the failure; the outcome is `Failed` only when a `required`
/// channel was not reached.
pub(crate) async fn deliver<S: Store + 'static>(
    host: &Host<'_, S>,
    item: Option<&Item>,
    out: Outgoing<'_>,
) -> Result<(Outcome, Value), EngineError> {
    let message = out.text;
    let channel = host.plan().channels.get(out.channel);
    let mut data = json!({
        "channel": out.channel,
        "message": message,
    });
    if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), out.extra) {
        data.extend(extra);
    }
    let (kind, outcome) = match channel {
        None
        | Some(Channel {
            kind: ChannelKind::Log,
            ..
        }) => {
            data["delivered"] = json!("log");
            ("notify.sent", Outcome::Passed)
        }
        Some(channel) => {
            let kind_name = match &channel.kind {
                ChannelKind::Slack(_) => "slack",
                ChannelKind::PagerDuty { .. } => "pagerduty",
                ChannelKind::Webhook { .. } => "webhook",
                ChannelKind::Email { .. } => "email",
                ChannelKind::Log => "log",
            };
            data["via"] = json!(kind_name);
            if kind_name == "pagerduty" {
                data["event"] = json!(out.event.as_str());
            }
            let sent = match target(host.vars(), &channel.kind) {
                Ok(target) => {
                    let msg = Message {
                        text: message,
                        plan: host.plan().name.clone(),
                        run: host.run().to_string(),
                        item: item.map_or_else(|| "watch".into(), |i| i.id.to_string()),
                        event: out.event,
                        dedup_key: out.dedup_key,
                        severity: out.severity,
                    };
                    let retry = Retry {
                        retries: channel.retries,
                        backoff: Duration::from_millis(500),
                        timeout: Duration::from_secs(10),
                    };
                    golive_notify::send(&target, &msg, retry)
                        .await
                        .map_err(|f| (f.attempts, host.vars().redact(&f.error)))
                }
                Err(e) => Err((0, e)),
            };
            match sent {
                Ok(d) => {
                    data["delivered"] = json!(kind_name);
                    data["attempts"] = json!(d.attempts);
                    data["status"] = json!(d.status);
                    ("notify.sent", Outcome::Passed)
                }
                Err((attempts, error)) => {
                    tracing::warn!(channel = out.channel, %error, "notification not delivered");
                    data["delivered"] = json!(false);
                    data["attempts"] = json!(attempts);
                    data["error"] = json!(error);
                    data["required"] = json!(channel.required);
                    let outcome = if channel.required {
                        Outcome::Failed
                    } else {
                        Outcome::Passed
                    };
                    ("notify.failed", outcome)
                }
            }
        }
    };
    if item.is_none() {
        // The watch window's pages have no item to show them under.
        host.report(&crate::Progress::Watch { kind, data: &data });
    }
    host.journal(item, kind, data.clone()).await?;
    Ok((outcome, data))
}

/// The channel with its references resolved; an unresolved `${NAME}` is an
/// error that names it (never the value of anything resolved).
fn target(vars: &Vars, kind: &ChannelKind) -> Result<Target, String> {
    let resolve = |template: &str, what: &str| {
        let value = vars.expand(template);
        match value.find("${") {
            Some(at) => {
                let name: String = value[at..].chars().take_while(|c| *c != '}').collect();
                Err(format!(
                    "{what}: `{name}}}` is not defined (declare it under `variables` or `secrets`, or pass --var)"
                ))
            }
            None => Ok(value),
        }
    };
    Ok(match kind {
        ChannelKind::Slack(url) => Target::Slack {
            url: resolve(url, "Slack webhook URL")?,
        },
        ChannelKind::PagerDuty {
            routing_key,
            events_url,
        } => Target::PagerDuty {
            routing_key: resolve(routing_key, "PagerDuty routing key")?,
            events_url: events_url
                .as_deref()
                .map(|u| resolve(u, "PagerDuty events_url"))
                .transpose()?,
        },
        ChannelKind::Webhook { url, secret } => Target::Webhook {
            url: resolve(url, "webhook URL")?,
            secret: secret
                .as_deref()
                .map(|s| resolve(s, "webhook secret"))
                .transpose()?,
        },
        ChannelKind::Email { to, from, smtp } => Target::Email {
            to: to
                .iter()
                .map(|t| resolve(t, "email `to`"))
                .collect::<Result<_, _>>()?,
            from: resolve(from, "email `from`")?,
            smtp: resolve(smtp, "SMTP URL")?,
        },
        ChannelKind::Log => return Err("log channels send nothing".into()),
    })
}
