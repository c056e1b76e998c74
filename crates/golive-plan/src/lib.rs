//! The golive plan format: read, validate, describe and import go-live plans.
//!
//! # Layout
//! - [`yaml`]: YAML text → a span-annotated tree, with the limits that keep
//!   hostile input harmless (depth, alias expansion, one document).
//! - [`de`]: a serde deserializer over that tree that keeps spans and collects
//!   unknown keys with "did you mean" suggestions instead of stopping.
//! - [`raw`]: the plan as written; the single source of the JSON Schema.
//! - [`compile`]: raw plan → [`Plan`], every error collected with its span.
//! - [`model`]: the validated plan the rest of golive consumes.
//! - [`cond`]: the one condition language of checks, analysis rules and
//!   rollback levels: its grammar, what each context may use, evaluation.
//! - [`value`]: the values conditions compare, and what comparing means.
//! - [`rule`]: analysis rules and rollback-level conditions (conditions
//!   over canary and baseline metrics, held `for` a duration).
//! - [`query`]: scrape expressions (a PromQL subset), parsed at compile time.
//! - [`time`]: durations and T-offsets.
//! - [`diag`]: diagnostics and their rendering.
//! - [`import`]: a go-live Markdown checklist → a plan (`golive import`).
//! - [`source`]: reading plan and checklist files safely (size, encoding).
//! - [`schema`]: the JSON Schema for editors.

#![deny(missing_docs)]

pub mod compile;
pub mod cond;
pub mod de;
pub mod diag;
pub mod import;
pub mod model;
pub mod query;
pub mod raw;
pub mod rule;
pub mod schema;
pub mod source;
pub mod template;
pub mod time;
pub mod value;
pub mod yaml;

pub use compile::{Compiled, VarLookup, compile};
pub use diag::{Diagnostic, Located, Report, Severity, Source};
pub use model::*;
pub use source::{ReadError, read_text};

/// The commented example plan written by `golive init`; it uses every item kind.
pub const EXAMPLE_PLAN: &str = include_str!("example.yaml");
