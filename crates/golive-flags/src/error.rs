//! The two error types: [`FlagError`] for definitions and admin updates,
//! [`EvalError`] for evaluation (whose codes are OFREP's).

use thiserror::Error;

use crate::FlagKey;

/// A flag definition or an admin update was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlagError {
    /// The definition has problems: one message per problem, each starting
    /// with the path of the field at fault (`variants[1].weight: ...`).
    /// Every problem found is listed, not only the first.
    #[error("invalid flag definition: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// An update tried to rename the flag; a key names a flag for life.
    #[error("flag: the key cannot be changed (flag is {current:?}, update asks for {requested:?})")]
    KeyChange {
        /// The flag's key.
        current: FlagKey,
        /// The key the update asked for.
        requested: String,
    },
}

impl FlagError {
    /// The individual problems: those of [`FlagError::Invalid`], or the one
    /// message of any other variant.
    pub fn problems(&self) -> Vec<String> {
        match self {
            Self::Invalid(problems) => problems.clone(),
            other => vec![other.to_string()],
        }
    }
}

/// Evaluation failed for this context; OFREP answers these with HTTP 400
/// and [`EvalError::code`] as `errorCode`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvalError {
    /// The flag splits users by percentage and the context has no value for
    /// the flag's stickiness (the targeting key, or the configured
    /// attribute), so there is nothing stable to bucket.
    #[error("this flag's percentage rollout needs a targeting key (or its stickiness attribute)")]
    TargetingKeyMissing,
    /// The context is malformed; the text says how.
    #[error("invalid context: {0}")]
    InvalidContext(String),
}

impl EvalError {
    /// The OpenFeature/OFREP error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            Self::InvalidContext(_) => "INVALID_CONTEXT",
        }
    }
}
