//! `wait` items: a pause for a duration, or until a point of the T-0
//! timeline. The item is `running` while it sleeps, so the journal shows
//! when the pause started and ended.

use std::time::Duration;

use golive_plan::Wait;
use golive_plan::time::format_duration;
use golive_store::{Outcome, Store};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::Host;
use crate::EngineError;

/// Sleeps; fails only when `until` has no t0 to count from.
pub(crate) async fn run<S: Store + 'static>(
    host: &Host<'_, S>,
    wait: &Wait,
) -> Result<(Outcome, Value), EngineError> {
    match wait {
        Wait::For(d) => {
            sleep(host, *d).await?;
            Ok((Outcome::Passed, json!({ "waited": format_duration(*d) })))
        }
        Wait::Until(offset) => {
            let Some(t0) = host.t0() else {
                return Ok((
                    Outcome::Failed,
                    json!({ "error": format!("`wait until {offset}` needs a t0: set `t0:` in the plan or pass --t0") }),
                ));
            };
            let target = t0
                .as_millisecond()
                .saturating_add(offset.0.saturating_mul(1000));
            let now = Timestamp::now().as_millisecond();
            let left = u64::try_from(target.saturating_sub(now)).unwrap_or(0);
            sleep(host, Duration::from_millis(left)).await?;
            let until = Timestamp::from_millisecond(target)
                .map(|t| t.to_string())
                .unwrap_or_default();
            Ok((
                Outcome::Passed,
                json!({ "until": until, "offset": offset.to_string(), "waited_ms": left }),
            ))
        }
    }
}

/// Sleeps in poll-sized steps, so that a lost lease stops the pause.
async fn sleep<S: Store + 'static>(host: &Host<'_, S>, total: Duration) -> Result<(), EngineError> {
    let end = tokio::time::Instant::now() + total;
    loop {
        let now = tokio::time::Instant::now();
        if now >= end {
            return Ok(());
        }
        host.sleep((end - now).min(host.poll().max(Duration::from_millis(250))))
            .await?;
        // A lost lease or a rollback request ends the pause.
        host.check().await?;
    }
}
