//! Changing a stored feature flag safely: read, merge the fields given,
//! validate, write with the version read — and retry when another writer
//! got there first, so that concurrent changes are all kept and none is
//! lost. The flag actuator, the server's admin API and `golive flags set`
//! all change flags through [`upsert`].

use crate::{Actor, FlagRecord, Store, StoreError};
use golive_flags::{Flag, FlagError, FlagKey};
use serde_json::Value;

/// Why a flag change was refused.
#[derive(Debug, thiserror::Error)]
pub enum FlagWriteError {
    /// The resulting definition is invalid.
    #[error(transparent)]
    Invalid(#[from] FlagError),
    /// No such flag, and creating was not asked for.
    #[error("no flag `{0}`")]
    NotFound(String),
    /// The flag is not at the version the caller expected.
    #[error("{0}")]
    VersionMismatch(String),
    /// Other writers kept changing the flag.
    #[error("flag `{0}` kept changing while this change was applied; try again")]
    KeptChanging(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Merges `patch` (flag fields; `null` removes an optional one) into the
/// stored flag — or, with `create`, makes the flag from `patch` when there
/// is none. `expected` (an HTTP `If-Match`) makes the change conditional on
/// that version; without it a concurrent change is merged over, up to five
/// times. Returns the record and whether it was created. A change that
/// leaves the definition as it was writes nothing.
pub async fn upsert<S: Store>(
    store: &S,
    key: &FlagKey,
    patch: &Value,
    expected: Option<i64>,
    create: bool,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<(FlagRecord, bool), FlagWriteError> {
    for _ in 0..5 {
        let current = store.get_flag(key.as_str()).await?;
        let (flag, version, created) = match &current {
            Some(record) => {
                if expected.is_some_and(|v| v != record.version) {
                    return Err(FlagWriteError::VersionMismatch(format!(
                        "flag `{key}` is at version {}, not the version expected",
                        record.version
                    )));
                }
                let stored = Flag::from_json(&record.definition)?;
                (stored.apply(patch)?, record.version, false)
            }
            None if create => {
                let mut body = patch.clone();
                if let Some(map) = body.as_object_mut() {
                    if !map.contains_key("key") {
                        map.entry("flag")
                            .or_insert_with(|| Value::String(key.to_string()));
                    }
                }
                (Flag::from_json(&body)?, 0, true)
            }
            None => return Err(FlagWriteError::NotFound(key.to_string())),
        };
        match store
            .put_flag(key.as_str(), &flag.to_json(), Some(version), actor, reason)
            .await
        {
            Ok(record) => return Ok((record, created)),
            Err(StoreError::Conflict(_)) if expected.is_none() => continue,
            Err(StoreError::Conflict(m)) => return Err(FlagWriteError::VersionMismatch(m)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(FlagWriteError::KeptChanging(key.to_string()))
}
