//! `golive init`: write the commented example plan.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::InitArgs;

pub fn run(args: &InitArgs) -> Result<ExitCode> {
    if args.path.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to overwrite it",
            args.path.display()
        );
    }
    std::fs::write(&args.path, golive_plan::EXAMPLE_PLAN)
        .with_context(|| format!("cannot write {}", args.path.display()))?;
    eprintln!(
        "wrote {}: an example plan using every item kind.\nnext: `golive validate {0}` and `golive plan show {0}`",
        args.path.display()
    );
    Ok(ExitCode::SUCCESS)
}
