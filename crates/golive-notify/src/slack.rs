//! Slack-compatible incoming webhooks (also accepted by Mattermost and
//! Rocket.Chat): `text` as the fallback and notification line, `blocks` with
//! the message as a `mrkdwn` section and the run's facts as a context block.

use serde_json::{Value, json};

use crate::Message;

/// The JSON body for `message`.
pub fn body(message: &Message) -> Value {
    json!({
        "text": message.text,
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": message.text},
            },
            {
                "type": "context",
                "elements": [{
                    "type": "mrkdwn",
                    "text": format!("golive · plan `{}` · run `{}` · item `{}`", message.plan, message.run, message.item),
                }],
            },
        ],
    })
}
