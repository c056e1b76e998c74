//! `flag` items: turn a golive feature flag on or off, or set its rollout
//! percentage, in the store the server evaluates from. The change is merged
//! into the stored flag (only the fields the item names change) and audited
//! with the engine as the actor and the run and item as the reason; a flag
//! that does not exist yet is created when the item says `enabled`.

use golive_flags::FlagKey;
use golive_plan::{FlagChange, Item};
use golive_store::flags::{self as flagstore, FlagWriteError};
use golive_store::{Actor, Outcome, Store};
use serde_json::{Map, Value, json};

use super::Host;
use crate::EngineError;

/// Applies the change; a refused change fails the item with why.
pub(crate) async fn run<S: Store + 'static>(
    host: &Host<'_, S>,
    item: &Item,
    change: &FlagChange,
) -> Result<(Outcome, Value), EngineError> {
    let key = match change.key.parse::<FlagKey>() {
        Ok(k) => k,
        Err(e) => return Ok(failed(&change.key, &e.to_string())),
    };
    let mut patch = Map::new();
    if let Some(on) = change.enabled {
        patch.insert("enabled".into(), Value::Bool(on));
    }
    if let Some(p) = change.percentage {
        patch.insert("percentage".into(), json!(p));
    }
    if let Some(v) = &change.variant {
        // The variant served to everyone the flag is off for.
        patch.insert("default_variant".into(), Value::String(v.clone()));
    }
    let actor = Actor {
        name: host.owner().to_string(),
        source: None,
    };
    let reason = format!("run {} item {}", host.run(), item.id);
    let before = host.store().get_flag(key.as_str()).await?;
    match flagstore::upsert(
        host.store(),
        &key,
        &Value::Object(patch),
        None,
        change.enabled.is_some(),
        &actor,
        Some(&reason),
    )
    .await
    {
        Ok((record, created)) => Ok((
            Outcome::Passed,
            json!({
                "flag": key.as_str(),
                "created": created,
                "version": record.version,
                "before": before.map(|b| b.definition),
                "after": record.definition,
            }),
        )),
        Err(FlagWriteError::Store(e)) => Err(e.into()),
        Err(FlagWriteError::NotFound(_)) => Ok(failed(
            key.as_str(),
            "the flag does not exist; create it first (a flag item with `enabled`, `golive flags set`, or the admin API)",
        )),
        Err(e) => Ok(failed(key.as_str(), &e.to_string())),
    }
}

fn failed(key: &str, why: &str) -> (Outcome, Value) {
    (Outcome::Failed, json!({ "flag": key, "error": why }))
}
