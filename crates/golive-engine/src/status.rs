//! Where a run stands, as one JSON document: the run, its current phase,
//! each item's status, who it waits for (and the command that answers),
//! and any rollback request. `golive status` prints it (from the journal or
//! a server) and the server serves it at `/api/runs/{run}/status`, so both
//! say the same.

use std::collections::BTreeSet;

use golive_plan::{Item, ItemKind, Plan};
use golive_store::{Decision, ItemState, ItemStatus, Run, RunId, Store};
use serde_json::{Value, json};

use crate::{EngineError, rollback_request, stored_plan};

/// The status document of a run: `run`, `phase`, `items`, `awaiting`,
/// `rollback_requested`.
pub async fn status<S: Store>(store: &S, id: &RunId) -> Result<Value, EngineError> {
    let run = store.get_run(id).await?;
    let plan = stored_plan(&run)?;
    let states = store.item_states(id).await?;
    let mut items = Vec::new();
    let mut awaiting = Vec::new();
    let mut phase: Option<String> = None;
    for (phase_title, item) in all_items(&plan) {
        let Some(state) = states.iter().find(|s| s.item_id == item.id.as_str()) else {
            continue;
        };
        if phase.is_none() && !state.status.is_finished() {
            phase = Some(phase_title.to_string());
        }
        if state.status == ItemStatus::Waiting {
            awaiting.push(awaited(store, &run, &plan, item).await?);
        }
        items.push(item_json(phase_title, item, state));
    }
    let rollback = rollback_request(store, id)
        .await?
        .map(|r| json!({ "by": r.by, "reason": r.reason, "at": r.at.to_string() }));
    Ok(json!({
        "run": run.summary,
        "phase": phase,
        "items": items,
        "awaiting": awaiting,
        "rollback_requested": rollback,
    }))
}

/// Every item with the title of its phase; rollback items under `rollback`.
fn all_items(plan: &Plan) -> Vec<(&str, &Item)> {
    plan.items()
        .map(|(p, i)| (p.title.as_str(), i))
        .chain(plan.rollback.items.iter().map(|i| ("rollback", i)))
        .collect()
}

fn item_json(phase: &str, item: &Item, state: &ItemState) -> Value {
    json!({
        "phase": phase,
        "id": item.id,
        "title": item.title,
        "kind": item.kind.name(),
        "status": state.status,
        "attempts": state.attempts,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "result": state.result,
    })
}

/// Who a waiting item waits for, and the command that answers it.
async fn awaited<S: Store>(
    store: &S,
    run: &Run,
    plan: &Plan,
    item: &Item,
) -> Result<Value, EngineError> {
    let id = &run.summary.id;
    let members = |role: &str| -> Vec<String> {
        plan.roles
            .get(role)
            .map(|r| r.members.clone())
            .unwrap_or_default()
    };
    Ok(match &item.kind {
        ItemKind::Task(_) => {
            let who = match &item.owner {
                Some(role) => format!("{role} ({})", members(role.as_str()).join(", ")),
                None => "anyone".into(),
            };
            json!({
                "item": item.id,
                "kind": "task",
                "who": who,
                "how": format!("golive confirm {id} {} --by NAME", item.id),
            })
        }
        ItemKind::Approval(a) => {
            let signed: BTreeSet<String> = store
                .signatures(id, item.id.as_str())
                .await?
                .into_iter()
                .filter(|s| s.decision == Decision::Approve)
                .map(|s| s.role)
                .collect();
            let missing: Vec<Value> = a
                .roles
                .iter()
                .filter(|r| !signed.contains(r.as_str()))
                .map(|r| json!({ "role": r, "members": members(r.as_str()) }))
                .collect();
            let need = (a.min as usize).saturating_sub(signed.len());
            let who = format!(
                "{need} more of {}",
                missing
                    .iter()
                    .filter_map(|m| m.get("role").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            json!({
                "item": item.id,
                "kind": "approval",
                "who": who,
                "need": need,
                "roles": missing,
                "how": format!("golive approve {id} {} --as ROLE --by NAME", item.id),
            })
        }
        // A paused rollout: why, and what it awaits, as it last said.
        ItemKind::Rollout(_) => {
            let events = store.events_after(id, 0, u32::MAX).await?;
            let detail = events
                .iter()
                .rev()
                .find(|e| {
                    e.kind == golive_store::kind::ITEM_WAITING
                        && e.item_id.as_deref() == Some(item.id.as_str())
                })
                .map(|e| e.data["detail"].clone())
                .unwrap_or(Value::Null);
            json!({
                "item": item.id,
                "kind": "rollout",
                "paused": true,
                "awaiting": detail["awaiting"],
                "why": detail["why"],
                "step": detail["step"],
                "weight": detail["weight"],
                "who": "anyone who may steer the rollout",
                "how": detail["how"],
            })
        }
        kind => json!({
            "item": item.id,
            "kind": kind.name(),
            "who": "anyone: it was interrupted and asks whether to run it again",
            "how": format!(
                "golive confirm {id} {} --by NAME (rerun) or --skip --reason TEXT",
                item.id
            ),
        }),
    })
}
