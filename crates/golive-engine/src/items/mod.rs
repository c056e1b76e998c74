//! One module per item kind; each turns an item into an outcome and the
//! result stored with it.

pub(crate) mod check;
pub(crate) mod command;
pub(crate) mod flag;
pub(crate) mod notify;
pub(crate) mod person;
pub mod rollout;
pub(crate) mod wait;

use golive_plan::ItemKind;
use golive_store::Outcome;
use serde_json::{Value, json};

/// `rollout` items: failed on purpose until the rollout engine lands, so
/// that nobody mistakes a plan that contains them for one that went live.
pub(crate) fn unsupported(kind: &ItemKind) -> (Outcome, Value) {
    (
        Outcome::Failed,
        json!({
            "error": "not supported yet: rollout items arrive with the rollout engine",
            "kind": kind.name(),
        }),
    )
}
