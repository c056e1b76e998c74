//! `check` items: one readiness probe, as `golive ready` runs it.

use golive_plan::Check;
use golive_probe::Status;
use golive_runtime::Vars;
use golive_store::Outcome;
use serde_json::{Value, json};

/// Runs the probe; passed only when every condition held.
pub(crate) async fn run(check: &Check, vars: &Vars) -> (Outcome, Value) {
    let result = golive_probe::run_check(check, vars).await;
    let outcome = if result.status == Status::Pass {
        Outcome::Passed
    } else {
        Outcome::Failed
    };
    let value = serde_json::to_value(&result)
        .unwrap_or_else(|e| json!({ "error": format!("cannot record the check result: {e}") }));
    (outcome, value)
}
