//! `golive confirm`, `golive approve`, `golive reject`: people's answers to a
//! running go-live, written to the journal from any process — or, with
//! `--server`, sent to a golive server as the token's holder. The engine
//! driving the run picks them up at its next poll.
//!
//! The checks against the stored plan live in `golive_engine::answers`
//! (shared with the server); this file reads `--evidence @FILE` and prints.

use std::process::ExitCode;

use anyhow::{Context, Result};
use golive_engine::answers::{self, AnswerError, Confirm, Sign};
use golive_store::{AnyStore, Decision, Store};
use serde_json::{Map, Value, json};

use crate::cli::{ApproveArgs, ConfirmArgs, RejectArgs, SignArgs};
use crate::cmd::journal;
use crate::cmd::remote::Remote;

/// An answer's refusal, naming the journal when the run is unknown.
pub fn refusal(store: &AnyStore, err: AnswerError) -> anyhow::Error {
    match err {
        AnswerError::NoRun(run) => {
            anyhow::anyhow!("no run {run} in the journal at {}", store.url())
        }
        other => other.into(),
    }
}

/// `--by`, which clap requires unless `--server` is given.
pub fn by(by: &Option<String>) -> Result<String> {
    by.clone()
        .context("--by NAME is required: the journal records who answered")
}

pub fn confirm(args: &ConfirmArgs) -> Result<ExitCode> {
    let evidence = match args.evidence.as_deref() {
        Some(e) => match e.strip_prefix('@') {
            Some(path) => Some(
                golive_plan::read_text(std::path::Path::new(path))
                    .with_context(|| format!("--evidence @{path}"))?,
            ),
            None => Some(e.to_string()),
        },
        None => None,
    };
    journal::runtime()?.block_on(async {
        let who = if let Some(server) = Remote::from_args(&args.store)? {
            let fields: Map<String, Value> = args
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let body = json!({"evidence": evidence, "fields": fields, "skip": args.skip, "reason": args.reason});
            let path = format!("/api/runs/{}/items/{}/confirm", args.run, args.item);
            let answer = server.call(reqwest::Method::POST, &path, Some(&body)).await?;
            answer["by"].as_str().unwrap_or_default().to_string()
        } else {
            let store = journal::open(&args.store).await?;
            let answer = Confirm {
                by: by(&args.by)?,
                evidence,
                fields: args.fields.clone(),
                skip: args.skip,
                reason: args.reason.clone(),
            };
            let result = answers::confirm(&store, &args.run, &args.item, &answer)
                .await
                .map_err(|e| refusal(&store, e));
            store.close().await;
            result?;
            answer.by
        };
        let what = if args.skip { "skipped" } else { "confirmed" };
        eprintln!("{what} `{}` of run {} by {who}", args.item, args.run);
        Ok(ExitCode::SUCCESS)
    })
}

pub fn approve(args: &ApproveArgs) -> Result<ExitCode> {
    sign(&args.sign, Decision::Approve, args.comment.clone())
}

pub fn reject(args: &RejectArgs) -> Result<ExitCode> {
    sign(&args.sign, Decision::Reject, Some(args.comment.clone()))
}

fn sign(args: &SignArgs, decision: Decision, comment: Option<String>) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let who = if let Some(server) = Remote::from_args(&args.store)? {
            let verb = match decision {
                Decision::Approve => "approve",
                Decision::Reject => "reject",
            };
            let path = format!("/api/runs/{}/items/{}/{verb}", args.run, args.item);
            let body = json!({"role": args.role, "comment": comment});
            let answer = server
                .call(reqwest::Method::POST, &path, Some(&body))
                .await?;
            answer["by"].as_str().unwrap_or_default().to_string()
        } else {
            let store = journal::open(&args.store).await?;
            let answer = Sign {
                role: args.role.clone(),
                by: by(&args.by)?,
                decision,
                comment,
            };
            let result = answers::sign(&store, &args.run, &args.item, &answer)
                .await
                .map_err(|e| refusal(&store, e));
            store.close().await;
            result?;
            answer.by
        };
        let what = match decision {
            Decision::Approve => "approved",
            Decision::Reject => "rejected",
        };
        eprintln!(
            "{what} `{}` of run {} as {} by {who}",
            args.item, args.run, args.role
        );
        Ok(ExitCode::SUCCESS)
    })
}
