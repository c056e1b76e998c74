//! Subcommands, one file each.

mod confirm;
mod demo;
mod flags;
mod import;
mod init;
mod journal;
mod plan;
mod ready;
mod remote;
mod report;
mod rollback;
mod run;
mod schema;
mod serve;
mod status;
mod steer;
mod token;
mod validate;

use std::process::ExitCode;

use anyhow::Result;
use golive_engine::answers::RolloutCommand;

use crate::cli::{Cli, Command, Output, PlanCommand};

/// `golive __supervise`: supervises one command for a running golive
/// (`golive_engine::supervise`); not a user command.
pub fn supervise() -> ExitCode {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::from(2);
    };
    let code = rt.block_on(golive_engine::supervise::serve());
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let output = cli.output;
    if matches!(output, Output::Markdown | Output::Junit)
        && !matches!(cli.command, Command::Ready(_))
    {
        anyhow::bail!(
            "--output {output:?} is only available for `golive ready`; use human or json here"
        );
    }
    match cli.command {
        Command::Ready(args) => ready::run(&args, output),
        Command::Init(args) => init::run(&args),
        Command::Import(args) => import::run(&args, output),
        Command::Validate(args) => validate::run(&args, output),
        Command::Plan(PlanCommand::Show(args)) => plan::show(&args, output),
        Command::Schema => schema::run(),
        Command::Run(args) => run::run(&args, output),
        Command::Confirm(args) => confirm::confirm(&args),
        Command::Approve(args) => confirm::approve(&args),
        Command::Reject(args) => confirm::reject(&args),
        Command::Rollback(args) => rollback::run(&args),
        Command::Promote(args) => steer::run(&args, RolloutCommand::Promote),
        Command::Pause(args) => steer::run(&args, RolloutCommand::Pause),
        Command::Resume(args) => steer::run(&args, RolloutCommand::Resume),
        Command::Abort(args) => steer::run(&args, RolloutCommand::Abort),
        Command::Ack(args) => steer::ack(&args),
        Command::Runs(args) => status::runs(&args, output),
        Command::Status(args) => status::status(&args, output),
        Command::Report(args) => report::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Demo(args) => demo::run(&args, output),
        Command::Token(command) => token::run(command, output),
        Command::Flags(command) => flags::run(command, output),
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
