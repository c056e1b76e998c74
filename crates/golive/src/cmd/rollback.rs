//! `golive rollback RUN --reason TEXT --by NAME`: ask for a run to be rolled
//! back, from any process (or through a server with `--server`).
//!
//! The request is journaled at once (who and why, see
//! `golive_engine::answers::rollback`); the engine that holds the run acts on
//! it at its next poll — the item under way is stopped at its next poll
//! (a command runs to its end), then the plan's rollback items run. When no
//! process holds the run, `golive run --resume RUN` performs the rollback.

use std::process::ExitCode;

use anyhow::Result;
use golive_engine::answers::{self, RollbackAnswer};
use golive_store::Store;
use serde_json::json;

use crate::cli::RollbackArgs;
use crate::cmd::confirm::{by, refusal};
use crate::cmd::journal;
use crate::cmd::remote::Remote;

pub fn run(args: &RollbackArgs) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let answer = if let Some(server) = Remote::from_args(&args.store)? {
            let path = format!("/api/runs/{}/rollback", args.run);
            let v = server
                .call(reqwest::Method::POST, &path, Some(&json!({"reason": args.reason})))
                .await?;
            match v["outcome"].as_str() {
                Some("already-requested") => RollbackAnswer::AlreadyRequested {
                    by: v["by"].as_str().unwrap_or_default().to_string(),
                },
                _ => RollbackAnswer::Recorded {
                    driver: v["driver"].as_str().map(str::to_string),
                },
            }
        } else {
            let store = journal::open(&args.store).await?;
            let result = answers::rollback(&store, &args.run, &by(&args.by)?, &args.reason)
                .await
                .map_err(|e| refusal(&store, e));
            store.close().await;
            result?
        };
        match answer {
            RollbackAnswer::AlreadyRequested { by } => eprintln!(
                "run {}: a rollback was already requested by {by}; it stands",
                args.run
            ),
            RollbackAnswer::Recorded { driver: Some(owner) } => eprintln!(
                "run {}: rollback requested; `{owner}` runs the rollback items at its next poll",
                args.run
            ),
            RollbackAnswer::Recorded { driver: None } => eprintln!(
                "run {}: rollback requested; no process is driving the run: `golive run --resume {}` performs it",
                args.run, args.run
            ),
        }
        Ok(ExitCode::SUCCESS)
    })
}
