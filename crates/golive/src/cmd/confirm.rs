//! `golive confirm`, `golive approve`, `golive reject`: people's answers to a
//! running go-live, written to the journal from any process. The engine
//! driving the run picks them up at its next poll.
//!
//! The checks against the stored plan live in `golive_engine::answers`
//! (shared with the server); this file reads `--evidence @FILE` and prints.

use std::process::ExitCode;

use anyhow::{Context, Result};
use golive_engine::answers::{self, AnswerError, Confirm, Sign};
use golive_store::{AnyStore, Decision, Store};

use crate::cli::{ApproveArgs, ConfirmArgs, RejectArgs, SignArgs};
use crate::cmd::journal;

/// An answer's refusal, naming the journal when the run is unknown.
pub fn refusal(store: &AnyStore, err: AnswerError) -> anyhow::Error {
    match err {
        AnswerError::NoRun(run) => {
            anyhow::anyhow!("no run {run} in the journal at {}", store.url())
        }
        other => other.into(),
    }
}

pub fn confirm(args: &ConfirmArgs) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let store = journal::open(&args.store).await?;
        let result = confirm_in(&store, args).await;
        store.close().await;
        result
    })
}

async fn confirm_in(store: &AnyStore, args: &ConfirmArgs) -> Result<ExitCode> {
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
    let answer = Confirm {
        by: args.by.clone(),
        evidence,
        fields: args.fields.clone(),
        skip: args.skip,
        reason: args.reason.clone(),
    };
    answers::confirm(store, &args.run, &args.item, &answer)
        .await
        .map_err(|e| refusal(store, e))?;
    let what = if args.skip { "skipped" } else { "confirmed" };
    eprintln!("{what} `{}` of run {} by {}", args.item, args.run, args.by);
    Ok(ExitCode::SUCCESS)
}

pub fn approve(args: &ApproveArgs) -> Result<ExitCode> {
    sign(&args.sign, Decision::Approve, args.comment.clone())
}

pub fn reject(args: &RejectArgs) -> Result<ExitCode> {
    sign(&args.sign, Decision::Reject, Some(args.comment.clone()))
}

fn sign(args: &SignArgs, decision: Decision, comment: Option<String>) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let store = journal::open(&args.store).await?;
        let answer = Sign {
            role: args.role.clone(),
            by: args.by.clone(),
            decision,
            comment,
        };
        let result = answers::sign(&store, &args.run, &args.item, &answer)
            .await
            .map_err(|e| refusal(&store, e));
        store.close().await;
        result?;
        let what = match decision {
            Decision::Approve => "approved",
            Decision::Reject => "rejected",
        };
        eprintln!(
            "{what} `{}` of run {} as {} by {}",
            args.item, args.run, args.role, args.by
        );
        Ok(ExitCode::SUCCESS)
    })
}
