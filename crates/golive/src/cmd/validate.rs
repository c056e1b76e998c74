//! `golive validate`: every problem of a plan, each with its line.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{Output, PlanArgs};
use crate::load::{load, render};

#[derive(Serialize)]
struct Summary {
    file: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<golive_plan::Located>,
}

pub fn run(args: &PlanArgs, output: Output) -> Result<ExitCode> {
    let loaded = load(&args.plan, &args.vars)?;
    let (errors, warnings) = (loaded.errors(), loaded.warnings());
    let valid = errors == 0 && !(args.strict && warnings > 0);
    match output {
        Output::Json => {
            let summary = Summary {
                file: loaded.source.name.clone(),
                valid,
                errors,
                warnings,
                diagnostics: loaded.located(),
            };
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Output::Human | Output::Markdown | Output::Junit => {
            eprint!("{}", render(&loaded.source, &loaded.compiled.diagnostics));
            let name = &loaded.source.name;
            match &loaded.compiled.plan {
                Some(plan) if valid => {
                    let items: usize = plan.phases.iter().map(|p| p.items.len()).sum();
                    println!(
                        "{name} is valid: {} phases, {items} items{}",
                        plan.phases.len(),
                        if warnings > 0 {
                            format!(", {warnings} warning(s)")
                        } else {
                            String::new()
                        }
                    );
                }
                _ => println!("{name} is invalid: {errors} error(s), {warnings} warning(s)"),
            }
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        super::failed()
    })
}
