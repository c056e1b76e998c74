//! The `--var` overrides a run was started with, kept in its journal so that
//! `--resume` runs with the same values.
//!
//! They are journaled as a `run.vars` event (under the lease, before the
//! first item). A `--var` naming one of the plan's secrets is never written:
//! its name is listed under `secrets_not_stored`, and a resume needs the
//! value again (by `--var` or by the secret's own `env:`/`file:` source).
//! On resume the latest `run.vars` event is read and the resume's own
//! `--var`s win over it.

use std::collections::BTreeMap;

use golive_plan::Plan;
use golive_store::{NewEvent, RunId, Store, StoreError};
use serde_json::{Value, json};

/// The event holding a run's stored overrides.
pub const RUN_VARS: &str = "run.vars";

/// Events read per page while looking for the stored overrides.
const PAGE: u32 = 1000;

/// The latest stored overrides of the run, in name order.
pub(crate) async fn stored<S: Store>(
    store: &S,
    run: &RunId,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut after = 0;
    let mut latest: Option<Value> = None;
    loop {
        let page = store.events_after(run, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        if let Some(e) = page.iter().rev().find(|e| e.kind == RUN_VARS) {
            latest = Some(e.data.clone());
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    let mut out = Vec::new();
    if let Some(Value::Object(vars)) = latest.as_ref().and_then(|d| d.get("vars")) {
        for (k, v) in vars {
            if let Some(v) = v.as_str() {
                out.push((k.clone(), v.to_string()));
            }
        }
    }
    Ok(out)
}

/// `stored` overridden by `given` (one value per name, the last wins).
pub(crate) fn merge(
    stored: &[(String, String)],
    given: &[(String, String)],
) -> Vec<(String, String)> {
    let mut all = BTreeMap::new();
    for (k, v) in stored.iter().chain(given) {
        all.insert(k.clone(), v.clone());
    }
    all.into_iter().collect()
}

/// The `run.vars` event for `overrides`, secrets left out; `None` when
/// there is nothing to record.
pub(crate) fn event(plan: &Plan, overrides: &[(String, String)]) -> Option<NewEvent> {
    if overrides.is_empty() {
        return None;
    }
    let (secret, kept): (Vec<_>, Vec<_>) = overrides
        .iter()
        .partition(|(k, _)| plan.secrets.contains_key(k));
    let vars: serde_json::Map<String, Value> =
        kept.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let secrets: Vec<&str> = secret.iter().map(|(k, _)| k.as_str()).collect();
    Some(NewEvent {
        kind: RUN_VARS.into(),
        item_id: None,
        data: json!({ "vars": vars, "secrets_not_stored": secrets }),
    })
}
