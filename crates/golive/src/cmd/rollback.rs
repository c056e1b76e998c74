//! `golive rollback RUN --reason TEXT --by NAME`: ask for a run to be rolled
//! back, from any process.
//!
//! The request is journaled at once (who and why, see
//! `golive_engine::request_rollback`); the engine that holds the run acts on
//! it at its next poll — the item under way is stopped at its next poll
//! (a command runs to its end), then the plan's rollback items run. When no
//! process holds the run, `golive run --resume RUN` performs the rollback.

use std::process::ExitCode;

use anyhow::{Result, bail};
use golive_store::{AnyStore, Store};
use jiff::Timestamp;

use crate::cli::RollbackArgs;
use crate::cmd::journal;

pub fn run(args: &RollbackArgs) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let store = journal::open(&args.store).await?;
        let result = run_in(&store, args).await;
        store.close().await;
        result
    })
}

async fn run_in(store: &AnyStore, args: &RollbackArgs) -> Result<ExitCode> {
    if args.reason.trim().is_empty() || args.by.trim().is_empty() {
        bail!("--reason and --by must not be empty: the journal records who rolled back and why");
    }
    let run = journal::get_run(store, &args.run).await?;
    if run.summary.status.is_final() {
        bail!(
            "run {} has already finished ({}); there is nothing to roll back",
            args.run,
            run.summary.status
        );
    }
    let recorded =
        golive_engine::request_rollback(store, &args.run, &args.by, &args.reason).await?;
    if !recorded {
        let earlier = golive_engine::rollback_request(store, &args.run).await?;
        let who = earlier.map(|s| s.by).unwrap_or_default();
        eprintln!(
            "run {}: a rollback was already requested by {who}; it stands",
            args.run
        );
        return Ok(ExitCode::SUCCESS);
    }
    let live = match (&run.summary.lease_owner, run.summary.lease_expires_at) {
        (Some(owner), Some(until)) if until > Timestamp::now() => Some(owner.clone()),
        _ => None,
    };
    match live {
        Some(owner) => eprintln!(
            "run {}: rollback requested; `{owner}` runs the rollback items at its next poll",
            args.run
        ),
        None => eprintln!(
            "run {}: rollback requested; no process is driving the run: `golive run --resume {}` performs it",
            args.run, args.run
        ),
    }
    Ok(ExitCode::SUCCESS)
}
