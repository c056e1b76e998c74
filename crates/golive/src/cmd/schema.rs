//! `golive schema`: the plan format's JSON Schema, for editors.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

pub fn run() -> Result<ExitCode> {
    std::io::stdout().write_all(golive_plan::schema::json().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
