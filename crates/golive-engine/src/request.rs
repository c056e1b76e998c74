//! Requests made to a run from outside the process that drives it: a
//! rollback asked for with `golive rollback`.
//!
//! The process asking does not hold the run's lease, so it cannot change the
//! run's status. It records a lease-free request in the store (one per kind,
//! the first stands; the store journals who asked and why in the same
//! transaction). The engine reads it while it waits and between items (and
//! at the start of a resume), journals `run.rollback-requested` under its
//! lease and runs the rollback items.

use golive_store::{NewRequest, Request, RunId, Store, StoreError};

/// The kind of request `golive rollback` records.
pub const ROLLBACK: &str = "rollback";

/// The event the engine journals when it acts on a rollback request.
pub const ROLLBACK_REQUESTED: &str = "run.rollback-requested";

/// The event the engine journals when an item's failure starts the
/// rollback by itself (`on_failure: rollback`): `{by: "golive", item,
/// reason}`.
pub const ROLLBACK_TRIGGERED: &str = "run.rollback-triggered";

/// Records a rollback request (no lease needed); `false` if one was already
/// recorded (the first stands).
pub async fn request_rollback<S: Store>(
    store: &S,
    run: &RunId,
    by: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    store
        .request(
            run,
            &NewRequest {
                kind: ROLLBACK.into(),
                by: by.into(),
                reason: Some(reason.into()),
            },
        )
        .await
}

/// The run's rollback request, if one was made.
pub async fn rollback_request<S: Store>(
    store: &S,
    run: &RunId,
) -> Result<Option<Request>, StoreError> {
    Ok(store
        .requests(run)
        .await?
        .into_iter()
        .find(|r| r.kind == ROLLBACK))
}
