//! `golive confirm`, `golive approve`, `golive reject`: people's answers to a
//! running go-live, written to the journal from any process. The engine
//! driving the run picks them up at its next poll.
//!
//! Everything that can be checked against the stored plan is checked here,
//! before anything is written: the item exists and is of the right kind,
//! evidence is given when the task requires it, the signer is a member of a
//! role the approval lists.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use golive_plan::ItemKind;
use golive_store::{AnyStore, Decision, ItemStatus, NewConfirmation, NewSignature, Run, Store};

use crate::cli::{ApproveArgs, ConfirmArgs, RejectArgs, SignArgs};
use crate::cmd::journal;

/// The item's status in the run.
async fn status_of(store: &AnyStore, run: &Run, item: &str) -> Result<ItemStatus> {
    let states = store.item_states(&run.summary.id).await?;
    states
        .into_iter()
        .find(|s| s.item_id == item)
        .map(|s| s.status)
        .with_context(|| format!("run {} has no item `{item}`", run.summary.id))
}

fn refuse_finished(run: &Run) -> Result<()> {
    if run.summary.status.is_final() {
        bail!(
            "run {} has already finished ({}); nothing can be confirmed or signed",
            run.summary.id,
            run.summary.status
        );
    }
    Ok(())
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
    let run = journal::get_run(store, &args.run).await?;
    refuse_finished(&run)?;
    let plan = golive_engine::stored_plan(&run)?;
    let item = journal::find_item(&plan, &args.run, &args.item)?;
    let status = status_of(store, &run, &args.item).await?;
    if status.is_finished() {
        bail!(
            "item `{}` of run {} is already {status}",
            args.item,
            args.run
        );
    }
    match &item.kind {
        ItemKind::Task(task) => {
            if task.evidence_required && !args.skip && args.evidence.is_none() {
                bail!(
                    "task `{}` requires evidence: add --evidence TEXT or --evidence @FILE",
                    args.item
                );
            }
            check_fields(&plan, item, &task.fields, &args.fields)?;
        }
        _ if !args.fields.is_empty() => bail!(
            "item `{}` is a {} item; only tasks take --field",
            args.item,
            item.kind.name()
        ),
        ItemKind::Approval(_) => bail!(
            "item `{}` is an approval: sign it with `golive approve` or `golive reject`",
            args.item
        ),
        // An interrupted item's question (rerun or skip) is answered the same way.
        _ if matches!(status, ItemStatus::Interrupted | ItemStatus::Waiting) => {}
        kind => bail!(
            "item `{}` is a {} item ({status}); only tasks, and items interrupted with `on_interrupt: ask`, are confirmed",
            args.item,
            kind.name()
        ),
    }
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
    let evidence = golive_engine::report::encode_evidence(evidence.as_deref(), &args.fields);
    let new = NewConfirmation {
        by: args.by.clone(),
        evidence,
        skipped: args.skip,
        reason: args.reason.clone(),
    };
    if !store.confirm(&args.run, &args.item, &new).await? {
        bail!(
            "item `{}` of run {} was already confirmed; the first confirmation stands",
            args.item,
            args.run
        );
    }
    let what = if args.skip { "skipped" } else { "confirmed" };
    eprintln!("{what} `{}` of run {} by {}", args.item, args.run, args.by);
    Ok(ExitCode::SUCCESS)
}

/// `--field NAME=VALUE` fills a blank of the record: one of the task's
/// `fields`, its phase's `record` or the plan's `record`. The values ride in
/// the confirmation's evidence (see `golive_engine::report::encode_evidence`).
fn check_fields(
    plan: &golive_plan::Plan,
    item: &golive_plan::Item,
    task_fields: &[String],
    given: &[(String, String)],
) -> Result<()> {
    let phase_record = plan
        .phases
        .iter()
        .find(|p| p.items.iter().any(|i| i.id == item.id))
        .map(|p| p.record.as_slice())
        .unwrap_or_default();
    let known: Vec<&String> = task_fields
        .iter()
        .chain(phase_record)
        .chain(&plan.record)
        .collect();
    for (name, _) in given {
        if !known.contains(&name) {
            let list = if known.is_empty() {
                "none: the task, its phase and the plan have no blanks".to_string()
            } else {
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            bail!(
                "`{name}` is not a blank of task `{}`; it can fill: {list}",
                item.id
            );
        }
    }
    Ok(())
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
        let result = sign_in(&store, args, decision, comment).await;
        store.close().await;
        result
    })
}

async fn sign_in(
    store: &AnyStore,
    args: &SignArgs,
    decision: Decision,
    comment: Option<String>,
) -> Result<ExitCode> {
    let run = journal::get_run(store, &args.run).await?;
    refuse_finished(&run)?;
    let plan = golive_engine::stored_plan(&run)?;
    let item = journal::find_item(&plan, &args.run, &args.item)?;
    let ItemKind::Approval(approval) = &item.kind else {
        bail!(
            "item `{}` is a {} item, not an approval",
            args.item,
            item.kind.name()
        );
    };
    if !approval.roles.iter().any(|r| r.as_str() == args.role) {
        let roles: Vec<&str> = approval.roles.iter().map(|r| r.as_str()).collect();
        bail!(
            "approval `{}` does not ask role `{}`; it asks: {}",
            args.item,
            args.role,
            roles.join(", ")
        );
    }
    let members = plan
        .roles
        .get(args.role.as_str())
        .map(|r| r.members.as_slice())
        .unwrap_or_default();
    if !members.contains(&args.by) {
        bail!(
            "`{}` is not a member of role `{}` in the plan (members: {})",
            args.by,
            args.role,
            members.join(", ")
        );
    }
    let status = status_of(store, &run, &args.item).await?;
    if status.is_finished() {
        bail!(
            "item `{}` of run {} is already {status}",
            args.item,
            args.run
        );
    }
    let new = NewSignature {
        role: args.role.clone(),
        by: args.by.clone(),
        decision,
        comment,
    };
    if !store.sign(&args.run, &args.item, &new).await? {
        bail!(
            "role `{}` already signed `{}` of run {}; the first decision stands",
            args.role,
            args.item,
            args.run
        );
    }
    let what = match decision {
        Decision::Approve => "approved",
        Decision::Reject => "rejected",
    };
    eprintln!(
        "{what} `{}` of run {} as {} by {}",
        args.item, args.run, args.role, args.by
    );
    Ok(ExitCode::SUCCESS)
}
