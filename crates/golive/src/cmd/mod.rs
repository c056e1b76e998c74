//! Subcommands, one file each.

// mod import;
mod init;
mod plan;
mod schema;
mod validate;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command, PlanCommand};

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let output = cli.output;
    match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Import(_args) => todo!(),
        Command::Validate(args) => validate::run(&args, output),
        Command::Plan(PlanCommand::Show(args)) => plan::show(&args, output),
        Command::Schema => schema::run(),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "golive", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Exit code for "the input was understood, and the answer is no" (invalid plan, not ready).
pub fn failed() -> ExitCode {
    ExitCode::from(1)
}
