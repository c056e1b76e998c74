//! `notify` items. Real channels (Slack, PagerDuty, webhooks) come later;
//! for now the message is recorded in the journal and the result says so.

use golive_plan::{Item, Notify};
use golive_store::{NewEvent, Outcome, Store};
use serde_json::{Value, json};

use crate::{Ctx, Engine, EngineError};

/// Records the message as a `notify.sent` event.
pub(crate) async fn run<S: Store + 'static>(
    engine: &Engine<S>,
    ctx: &Ctx<'_>,
    item: &Item,
    notify: &Notify,
) -> Result<(Outcome, Value), EngineError> {
    let message = ctx.vars.redact(&ctx.vars.expand(&notify.message));
    let data = json!({
        "channel": notify.channel.as_str(),
        "message": message,
        "delivered": "log",
    });
    engine
        .store
        .append_event(
            ctx.run,
            &engine.owner,
            &NewEvent {
                kind: "notify.sent".into(),
                item_id: Some(item.id.to_string()),
                data: data.clone(),
            },
        )
        .await?;
    Ok((Outcome::Passed, data))
}
