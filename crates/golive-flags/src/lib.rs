//! golive's feature flags: the flag model and in-process evaluation.
//!
//! Pure: no IO, no async. A server stores flag definitions as JSON
//! ([`Flag::from_json`], [`Flag::to_json`], [`Flag::apply`]) and answers
//! OpenFeature OFREP evaluations with [`Flag::evaluate`], [`Context`] and
//! [`Evaluation`]; the [`Reason`]s and [`EvalError::code`]s are OFREP's.
//!
//! # Flag JSON
//!
//! ```json
//! {
//!   "flag": "new_checkout",
//!   "enabled": true,
//!   "description": "optional text",
//!   "percentage": 25,
//!   "stickiness": "userId",
//!   "group_id": "new_checkout",
//!   "variants": [{"name": "blue", "value": "#00f", "weight": 50},
//!                {"name": "green", "value": "#0f0", "weight": 50}],
//!   "default_variant": "blue",
//!   "targeting": {
//!     "include": ["user-1"],
//!     "exclude": ["user-2"],
//!     "rules": [{"attribute": "country", "op": "in", "values": ["NZ", "AU"]}]
//!   }
//! }
//! ```
//!
//! - `flag` (alias `key`) and `enabled` are required; everything else is
//!   optional, and `null` counts as absent. Unknown fields are refused.
//! - `percentage`: 0 to 100 with at most 2 decimals. Absent: everyone who
//!   passes targeting.
//! - `stickiness`: the context attribute whose value is bucketed; default
//!   `"targetingKey"`, the context's targeting key.
//! - `group_id`: the bucketing group; default the flag key (as Unleash's
//!   `groupId` defaults to the feature name).
//! - `variants`: absent for a plain boolean flag. Names unique (1 to 128
//!   characters), values all of one [`FlagKind`] (boolean, string,
//!   integer, float or object; integer and float are distinct), weights
//!   non-negative integers adding up to more than 0. `default_variant` is
//!   then required and names one of them.
//! - `targeting.rules`, all of which must match: `in`, `not_in`,
//!   `starts_with`, `ends_with` take `values`, a non-empty list (matching
//!   any of them); `eq`, `neq`, `gt`, `lt` take one `value`. `in`/`not_in`/
//!   `eq`/`neq` operands are strings, numbers or booleans and compare only
//!   with attributes of the same JSON type (numbers by value);
//!   `starts_with`/`ends_with` need strings; `gt`/`lt` need a number and
//!   also accept a numeric string attribute. The attribute
//!   `"targetingKey"` is the context's targeting key.
//!
//! [`Flag::to_json`] writes the canonical form: `flag` for the key, absent
//! optional fields (and empty targeting lists) omitted, an integral
//! percentage as an integer.
//!
//! # Evaluation
//!
//! Each flag is decided *on* or *off* for a context, in this order:
//!
//! 1. `enabled` is false → off, [`Reason::Disabled`].
//! 2. The targeting key is in `exclude` → off; in `include` → on; both
//!    [`Reason::TargetingMatch`] (`exclude` wins when a key is in both).
//! 3. There are rules and not all match → off, [`Reason::Default`]. A rule
//!    on a missing (or `null`) attribute does not match, except `not_in`
//!    and `neq`, which do.
//! 4. The percentage:
//!    - absent or 100 → on, [`Reason::TargetingMatch`] if there were rules
//!      (they matched), else [`Reason::Static`];
//!    - 0 → off, [`Reason::Default`], whether or not there is a key;
//!    - otherwise the stickiness value is needed (the targeting key, or
//!      the named attribute as a string or a number, stringified). Missing
//!      or empty → [`EvalError::TargetingKeyMissing`]; of another type →
//!      [`EvalError::InvalidContext`]. On iff
//!      `bucket(group, value) < round(percentage × 100)`; [`Reason::Split`]
//!      either way.
//!
//! A flag without variants then serves `true`/`false` as variant
//! `"on"`/`"off"`. A flag with variants serves, when off, its
//! `default_variant` with the reason above; when on:
//!
//! - if exactly one variant has a positive weight, that variant, with the
//!   reason above (nothing to split);
//! - else, with a stickiness value, the variant picked by weight,
//!   [`Reason::Split`]: `murmur3_32("variant:{group}:{value}", 0) %
//!   total_weight`, walking the variants in order;
//! - else (a fully-on flag and no stickiness value) the `default_variant`,
//!   [`Reason::Default`], rather than an error.
//!
//! # Bucketing
//!
//! [`bucket`] is compatible with Unleash's gradual rollout
//! (`murmur3_32("{groupId}:{userId}", 0) % 100 + 1 <= percentage`): for an
//! integer percentage a flag with the same group and stickiness enables
//! exactly the users Unleash enables. The bucket adds a sub-percent digit
//! so that 0.01 % steps are possible and raising the percentage, in any
//! steps, never turns a user off.
//!
//! # Layout
//! - `flag`: [`Flag`], [`FlagKind`], [`Variant`]; JSON parsing,
//!   validation, canonical output and [`Flag::apply`].
//! - `eval`: [`Context`], [`Evaluation`], [`Reason`] and the evaluation
//!   procedure.
//! - `hash`: [`murmur3_32`] and [`bucket`].
//! - `key`: [`FlagKey`].
//! - `error`: [`FlagError`], [`EvalError`].

mod error;
mod eval;
mod flag;
mod hash;
mod key;

pub use error::{EvalError, FlagError};
pub use eval::{Context, Evaluation, Reason};
pub use flag::{Flag, FlagKind, Variant};
pub use hash::{bucket, murmur3_32};
pub use key::{FlagKey, MAX_KEY_LEN};
