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

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
            eprintln!("golive: {err:#}");
            ExitCode::from(2)
        }
    }
}
