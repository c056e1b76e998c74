//! `golive`: turn a go-live checklist into a plan that runs.
//!
//! This file only parses arguments, dispatches, and maps the outcome to an
//! exit code: 0 success, 1 the plan (or readiness) failed, 2 usage or input
//! error. Each subcommand lives in its own file under `cmd/`.

mod cli;
mod cmd;
mod load;
mod log;
mod readiness;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Not a clap subcommand: hidden from help, and no parsing to go wrong.
    if std::env::args_os().nth(1).as_deref() == Some(golive_engine::supervise::SUBCOMMAND.as_ref())
    {
        return cmd::supervise();
    }
    let cli = cli::Cli::parse();
    log::init(&cli);
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`golive plan show | head`) is not an error.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            // Never a panic, even with stderr closed.
            let _ = writeln!(std::io::stderr(), "golive: {err:#}");
            ExitCode::from(2)
        }
    }
}
