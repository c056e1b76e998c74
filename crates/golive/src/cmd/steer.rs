//! `golive promote|pause|resume|abort RUN`: a person's say over a rollout
//! under way, and `golive ack RUN INCIDENT` over an incident of the watch
//! window, from any process (or through a server with `--server`). The
//! request is journaled with who and why at once; the engine driving the
//! run acts on it at its next evaluation.

use std::process::ExitCode;

use anyhow::Result;
use golive_engine::answers::{self, AnswerError, RolloutCommand};
use golive_store::{AnyStore, Store};
use serde_json::json;

use crate::cli::{AckArgs, SteerArgs, StoreArgs};
use crate::cmd::confirm::{by, refusal};
use crate::cmd::journal;
use crate::cmd::remote::Remote;

pub fn run(args: &SteerArgs, command: RolloutCommand) -> Result<ExitCode> {
    let verb = command.kind();
    let route = if command == RolloutCommand::Resume {
        "resume-rollout"
    } else {
        verb
    };
    journal::runtime()?.block_on(async {
        let path = format!("/api/runs/{}/{route}", args.run);
        let recorded = request(&args.store, &path, &args.reason, async |store| {
            let by = by(&args.by).map_err(|e| AnswerError::Invalid(e.to_string()))?;
            answers::rollout(store, &args.run, command, &by, args.reason.as_deref()).await
        })
        .await?;
        if recorded {
            eprintln!(
                "run {}: {verb} requested; the rollout acts on it at its next evaluation",
                args.run
            );
        } else {
            eprintln!(
                "run {}: the same {verb} was just requested by someone else; it stands",
                args.run
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn ack(args: &AckArgs) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let path = format!("/api/runs/{}/incidents/{}/ack", args.run, args.incident);
        let recorded = request(&args.store, &path, &args.reason, async |store| {
            let by = by(&args.by).map_err(|e| AnswerError::Invalid(e.to_string()))?;
            answers::ack(
                store,
                &args.run,
                &args.incident,
                &by,
                args.reason.as_deref(),
            )
            .await
        })
        .await?;
        if recorded {
            eprintln!(
                "run {}: {} acknowledged; its escalation stops at the engine's next look",
                args.run, args.incident
            );
        } else {
            eprintln!(
                "run {}: {} was just acknowledged by someone else; it stands",
                args.run, args.incident
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// One lease-free request: through the server (`POST path` with the
/// reason) when `--server` is given, else `local` on the journal; whether
/// it was recorded.
async fn request(
    args: &StoreArgs,
    path: &str,
    reason: &Option<String>,
    local: impl AsyncFnOnce(&AnyStore) -> Result<bool, AnswerError>,
) -> Result<bool> {
    if let Some(server) = Remote::from_args(args)? {
        let v = server
            .call(
                reqwest::Method::POST,
                path,
                Some(&json!({"reason": reason})),
            )
            .await?;
        return Ok(v["recorded"].as_bool().unwrap_or(false));
    }
    let store = journal::open(args).await?;
    let result = local(&store).await.map_err(|e| refusal(&store, e));
    store.close().await;
    result
}
