//! The flag actuator: the canary is whoever one of golive's own flags is
//! on for, and a step sets that flag's `percentage` (through
//! [`golive_store::flags::upsert`], so the change is audited with the engine's actor
//! and merges with concurrent edits of other fields).
//!
//! - `w > 0`: `percentage: w` and `enabled: true`, so a flag created
//!   disabled starts serving at the first step.
//! - `w = 0` (including a rollback): `percentage: 0`, `enabled` left as it
//!   is. Nobody is then let in *by the percentage*, but the flag's
//!   `targeting.include` list still is (include is decided before the
//!   percentage): named testers keep the canary at 0 %, which is what a
//!   pre-rollout smoke test wants. A complete kill switch is `enabled:
//!   false`, which golive leaves to people (`golive flags set`).
//!
//! The flag must exist (the plan's `flag` item creates it): a rollout that
//! created it itself would pick its variants and targeting by guesswork.
//! `current()` reports what the flag serves: 0 when it is disabled, its
//! percentage (rounded to a whole percent) when it has one, 100 when it
//! has none. A repeated weight writes nothing and audits nothing.

use golive_flags::{Flag, FlagKey};
use golive_store::{Actor, Store};
use serde_json::json;

use super::{Applied, TrafficError};
use golive_store::flags::{self as flagstore, FlagWriteError};

/// The percentage of one golive flag.
#[derive(Debug)]
pub struct FlagPercentage {
    key: FlagKey,
}

impl FlagPercentage {
    /// Checks the key.
    pub(super) fn new(key: &str) -> Result<FlagPercentage, TrafficError> {
        let key = key.parse::<FlagKey>().map_err(|e| TrafficError::Config {
            backend: "flag",
            message: format!("`{key}` is not a flag key: {e}"),
        })?;
        Ok(FlagPercentage { key })
    }

    /// `golive flag new-checkout (percentage)`.
    pub(super) fn describe(&self) -> String {
        format!("golive flag {} (percentage)", self.key)
    }

    /// Sets the percentage (and enables the flag when it is above 0).
    pub(super) async fn set_weight<S: Store>(
        &self,
        store: &S,
        canary: u8,
        actor: &Actor,
    ) -> Result<Applied, TrafficError> {
        let stable = 100 - canary;
        let patch = if canary > 0 {
            json!({"percentage": canary, "enabled": true})
        } else {
            json!({"percentage": 0})
        };
        let reason = format!("rollout step: canary {canary}%, stable {stable}%");
        let (record, _) =
            flagstore::upsert(store, &self.key, &patch, None, false, actor, Some(&reason))
                .await
                .map_err(|e| self.error(e))?;
        Ok(Applied {
            canary,
            stable,
            detail: json!({
                "backend": "flag",
                "key": self.key.as_str(),
                "patch": patch,
                "version": record.version,
                "enabled": record.definition.get("enabled"),
                "percentage": record.definition.get("percentage"),
            }),
        })
    }

    /// What the stored flag serves, in percent.
    pub(super) async fn current<S: Store>(&self, store: &S) -> Result<Option<u8>, TrafficError> {
        let record = store
            .get_flag(self.key.as_str())
            .await
            .map_err(|e| self.error(e.into()))?
            .ok_or_else(|| TrafficError::FlagNotFound {
                key: self.key.to_string(),
            })?;
        let flag = Flag::from_json(&record.definition).map_err(|e| self.error(e.into()))?;
        if !flag.enabled() {
            return Ok(Some(0));
        }
        Ok(Some(match flag.percentage() {
            None => 100,
            // Validated 0–100 by the flags crate; the clamp keeps the cast
            // in range whatever the store holds.
            Some(p) => p.round().clamp(0.0, 100.0) as u8,
        }))
    }

    fn error(&self, e: FlagWriteError) -> TrafficError {
        match e {
            FlagWriteError::NotFound(_) => TrafficError::FlagNotFound {
                key: self.key.to_string(),
            },
            source => TrafficError::Flag {
                key: self.key.to_string(),
                source,
            },
        }
    }
}
