//! `golive promote|pause|resume|abort RUN`: a person's say over a rollout
//! under way, and `golive ack RUN INCIDENT` over an incident of the watch
//! window, from any process (or through a server with `--server`). The
//! request is journaled with who and why at once; the engine driving the
//! run acts on it at its next evaluation.

use std::process::ExitCode;

use anyhow::Result;
use golive_engine::answers::{self, RolloutCommand};
use golive_store::Store;
use serde_json::json;

use crate::cli::{AckArgs, SteerArgs};
use crate::cmd::confirm::{by, refusal};
use crate::cmd::journal;
use crate::cmd::remote::Remote;

pub fn run(args: &SteerArgs, command: RolloutCommand) -> Result<ExitCode> {
    let verb = command.kind();
    journal::runtime()?.block_on(async {
        let recorded = if let Some(server) = Remote::from_args(&args.store)? {
            let route = if command == RolloutCommand::Resume {
                "resume-rollout"
            } else {
                verb
            };
            let path = format!("/api/runs/{}/{route}", args.run);
            let v = server
                .call(
                    reqwest::Method::POST,
                    &path,
                    Some(&json!({"reason": args.reason})),
                )
                .await?;
            v["recorded"].as_bool().unwrap_or(false)
        } else {
            let store = journal::open(&args.store).await?;
            let result = answers::rollout(
                &store,
                &args.run,
                command,
                &by(&args.by)?,
                args.reason.as_deref(),
            )
            .await
            .map_err(|e| refusal(&store, e));
            store.close().await;
            result?
        };
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
        let recorded = if let Some(server) = Remote::from_args(&args.store)? {
            let path = format!("/api/runs/{}/incidents/{}/ack", args.run, args.incident);
            let v = server
                .call(
                    reqwest::Method::POST,
                    &path,
                    Some(&json!({"reason": args.reason})),
                )
                .await?;
            v["recorded"].as_bool().unwrap_or(false)
        } else {
            let store = journal::open(&args.store).await?;
            let result = answers::ack(
                &store,
                &args.run,
                &args.incident,
                &by(&args.by)?,
                args.reason.as_deref(),
            )
            .await
            .map_err(|e| refusal(&store, e));
            store.close().await;
            result?
        };
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
