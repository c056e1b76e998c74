//! `task` and `approval` items: they wait for people. The item is `waiting`
//! until `golive confirm` (a task) or enough `golive approve` signatures (an
//! approval) are in the journal, written by another process; the engine
//! polls the store for them.

use std::collections::BTreeSet;

use golive_plan::{Approval, Item, Task};
use golive_store::{Decision, Outcome, Store};
use serde_json::json;

use super::Host;
use crate::EngineError;

/// Waits for the task's confirmation: passed, or skipped when confirmed with
/// `--skip`.
pub(crate) async fn task<S: Store + 'static>(
    host: &Host<'_, S>,
    item: &Item,
    task: &Task,
) -> Result<Outcome, EngineError> {
    let mut confirmation = host
        .store()
        .confirmation(host.run(), item.id.as_str())
        .await?;
    if confirmation.is_none() {
        let detail = json!({
            "awaiting": "confirmation",
            "owner": item.owner.as_ref().map(|o| o.as_str()),
            "evidence_required": task.evidence_required,
            "how": format!("golive confirm {} {} --by NAME", host.run(), item.id),
        });
        host.wait_for(item, &detail).await?;
    }
    let confirmation = loop {
        if let Some(c) = confirmation.take() {
            break c;
        }
        host.tick().await?;
        confirmation = host
            .store()
            .confirmation(host.run(), item.id.as_str())
            .await?;
    };
    host.start(item).await?;
    let outcome = if confirmation.skipped {
        Outcome::Skipped
    } else {
        Outcome::Passed
    };
    let result = json!({
        "confirmed_by": confirmation.by,
        "at": confirmation.at.to_string(),
        "evidence": confirmation.evidence,
        "skipped": confirmation.skipped,
        "reason": confirmation.reason,
    });
    host.finish(item, outcome, &result).await?;
    Ok(outcome)
}

/// Waits until `min` distinct roles of the approval approved (passed) or
/// one of them rejected (failed). Signatures for other roles do not count.
pub(crate) async fn approval<S: Store + 'static>(
    host: &Host<'_, S>,
    item: &Item,
    approval: &Approval,
) -> Result<Outcome, EngineError> {
    let mut announced = false;
    loop {
        let signatures: Vec<_> = host
            .store()
            .signatures(host.run(), item.id.as_str())
            .await?
            .into_iter()
            .filter(|s| approval.roles.iter().any(|r| r.as_str() == s.role))
            .collect();
        let approved: BTreeSet<&str> = signatures
            .iter()
            .filter(|s| s.decision == Decision::Approve)
            .map(|s| s.role.as_str())
            .collect();
        let rejected = signatures.iter().find(|s| s.decision == Decision::Reject);
        let decided = if rejected.is_some() {
            Some(Outcome::Failed)
        } else if approved.len() >= approval.min as usize {
            Some(Outcome::Passed)
        } else {
            None
        };
        if let Some(outcome) = decided {
            let signed: Vec<_> = signatures
                .iter()
                .map(|s| {
                    json!({
                        "role": s.role,
                        "by": s.by,
                        "decision": s.decision,
                        "at": s.at.to_string(),
                        "comment": s.comment,
                    })
                })
                .collect();
            let mut result = json!({ "min": approval.min, "signatures": signed });
            if let Some(r) = rejected {
                result["rejected_by"] = json!({ "role": r.role, "by": r.by, "comment": r.comment });
            }
            host.start(item).await?;
            host.finish(item, outcome, &result).await?;
            return Ok(outcome);
        }
        if !announced {
            let missing: Vec<&str> = approval
                .roles
                .iter()
                .map(|r| r.as_str())
                .filter(|r| !approved.contains(r))
                .collect();
            let detail = json!({
                "awaiting": "signatures",
                "min": approval.min,
                "approved": approved,
                "roles": missing,
                "how": format!("golive approve {} {} --as ROLE --by NAME", host.run(), item.id),
            });
            host.wait_for(item, &detail).await?;
            announced = true;
        }
        host.tick().await?;
    }
}
