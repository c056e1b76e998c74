//! The JSON Schema of the plan format, generated from [`crate::raw`].
//!
//! Committed as `schema/golive.schema.json` so that editors running
//! yaml-language-server complete and check plans; a test keeps the committed
//! file equal to this output.

/// The schema as pretty-printed JSON, with a trailing newline.
pub fn json() -> String {
    let schema = schemars::schema_for!(crate::raw::RawPlan);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
