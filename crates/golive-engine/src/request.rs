//! Requests made to a run from outside the process that drives it: a
//! rollback asked for with `golive rollback`.
//!
//! The process asking does not hold the run's lease, so it cannot change the
//! run's status. It records the request as a lease-free signature with the
//! reserved role [`ROLLBACK_ROLE`] on the plan's first item: the store keeps
//! one signature per (item, role), so a second request changes nothing, and
//! the `item.signed` event journals who asked and why in the same
//! transaction. The engine reads it while it waits and between items (and at
//! the start of a resume), journals `run.rollback-requested` under its lease
//! and runs the rollback items.

use golive_plan::Plan;
use golive_store::{Decision, NewSignature, RunId, Signature, Store, StoreError};

/// The role a rollback request is signed with. Plan roles are identifiers,
/// so no approval of a plan can list it.
pub const ROLLBACK_ROLE: &str = "golive:rollback";

/// The event the engine journals when it acts on a rollback request.
pub const ROLLBACK_REQUESTED: &str = "run.rollback-requested";

/// The item a rollback request is recorded on: the plan's first item (of the
/// phases, else of rollback); `None` for a plan without items.
pub fn rollback_item(plan: &Plan) -> Option<String> {
    crate::item_ids(plan).into_iter().next()
}

/// Records a rollback request (no lease needed); `false` if one was already
/// recorded (the first stands). `Ok(false)` too for a plan without items,
/// where there is nothing to roll back.
pub async fn request_rollback<S: Store>(
    store: &S,
    run: &RunId,
    plan: &Plan,
    by: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    let Some(item) = rollback_item(plan) else {
        return Ok(false);
    };
    store
        .sign(
            run,
            &item,
            &NewSignature {
                role: ROLLBACK_ROLE.into(),
                by: by.into(),
                decision: Decision::Approve,
                comment: Some(reason.into()),
            },
        )
        .await
}

/// The run's rollback request, if one was made.
pub async fn rollback_request<S: Store>(
    store: &S,
    run: &RunId,
    plan: &Plan,
) -> Result<Option<Signature>, StoreError> {
    let Some(item) = rollback_item(plan) else {
        return Ok(None);
    };
    Ok(store
        .signatures(run, &item)
        .await?
        .into_iter()
        .find(|s| s.role == ROLLBACK_ROLE))
}
