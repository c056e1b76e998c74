//! `golive runs` and `golive status`: reading the journal — which runs
//! there are, and where one of them stands: its phase, each item's status,
//! and who it is waiting for.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Result;
use comfy_table::Table;
use golive_plan::{Item, ItemKind, Plan};
use golive_store::{AnyStore, Decision, ItemState, ItemStatus, Run, Store};
use serde_json::{Value, json};

use crate::cli::{Output, RunsArgs, StatusArgs};
use crate::cmd::journal;

pub fn runs(args: &RunsArgs, output: Output) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let store = journal::open(&args.store).await?;
        let result = store.list_runs(args.limit).await;
        store.close().await;
        let runs = result?;
        if output == Output::Json {
            println!("{}", serde_json::to_string_pretty(&runs)?);
            return Ok(ExitCode::SUCCESS);
        }
        let mut table = Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        table.set_header(["run", "plan", "status", "t0", "created", "updated"]);
        for r in &runs {
            table.add_row([
                r.id.to_string(),
                r.plan_name.clone(),
                r.status.to_string(),
                r.t0.map(|t| t.to_string()).unwrap_or_default(),
                r.created_at.to_string(),
                r.updated_at.to_string(),
            ]);
        }
        println!("{table}");
        Ok(ExitCode::SUCCESS)
    })
}

pub fn status(args: &StatusArgs, output: Output) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let store = journal::open(&args.store).await?;
        let result = status_in(&store, args, output).await;
        store.close().await;
        result
    })
}

async fn status_in(store: &AnyStore, args: &StatusArgs, output: Output) -> Result<ExitCode> {
    let id = journal::run_or_newest(store, args.run.as_ref()).await?;
    let run = journal::get_run(store, &id).await?;
    let plan = golive_engine::stored_plan(&run)?;
    let states = store.item_states(&id).await?;
    let mut items = Vec::new();
    let mut awaiting = Vec::new();
    let mut phase: Option<String> = None;
    for (phase_title, item) in all_items(&plan) {
        let Some(state) = states.iter().find(|s| s.item_id == item.id.as_str()) else {
            continue;
        };
        if phase.is_none() && !state.status.is_finished() {
            phase = Some(phase_title.to_string());
        }
        if state.status == ItemStatus::Waiting {
            awaiting.push(awaited(store, &run, &plan, item).await?);
        }
        items.push(item_json(phase_title, item, state));
    }
    let rollback = golive_engine::rollback_request(store, &id)
        .await?
        .map(|r| json!({ "by": r.by, "reason": r.reason, "at": r.at.to_string() }));
    let report = json!({
        "run": run.summary,
        "phase": phase,
        "items": items,
        "awaiting": awaiting,
        "rollback_requested": rollback,
    });
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &run.summary;
    println!("run {}  plan `{}`  {}", s.id, s.plan_name, s.status);
    if let Some(t0) = s.t0 {
        println!("t0 {t0}");
    }
    if let Some(p) = &phase {
        println!("phase: {p}");
    }
    if let Some(r) = &rollback {
        let text = |k: &str| r.get(k).map(plain).unwrap_or_default();
        println!(
            "rollback requested by {} at {}: {}",
            text("by"),
            text("at"),
            text("reason")
        );
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["phase", "item", "kind", "status", "attempts"]);
    for i in &items {
        let text = |k: &str| i.get(k).map(plain).unwrap_or_default();
        table.add_row([
            text("phase"),
            text("id"),
            text("kind"),
            text("status"),
            text("attempts"),
        ]);
    }
    println!("{table}");
    for a in &awaiting {
        println!(
            "waiting for {}: {}",
            a.get("who").map(plain).unwrap_or_default(),
            a.get("how").map(plain).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Every item with the title of its phase; rollback items under `rollback`.
fn all_items(plan: &Plan) -> Vec<(&str, &Item)> {
    plan.items()
        .map(|(p, i)| (p.title.as_str(), i))
        .chain(plan.rollback.items.iter().map(|i| ("rollback", i)))
        .collect()
}

fn item_json(phase: &str, item: &Item, state: &ItemState) -> Value {
    json!({
        "phase": phase,
        "id": item.id,
        "title": item.title,
        "kind": item.kind.name(),
        "status": state.status,
        "attempts": state.attempts,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "result": state.result,
    })
}

/// Who a waiting item waits for, and the command that answers it.
async fn awaited(store: &AnyStore, run: &Run, plan: &Plan, item: &Item) -> Result<Value> {
    let id = &run.summary.id;
    let members = |role: &str| -> Vec<String> {
        plan.roles
            .get(role)
            .map(|r| r.members.clone())
            .unwrap_or_default()
    };
    Ok(match &item.kind {
        ItemKind::Task(_) => {
            let who = match &item.owner {
                Some(role) => format!("{role} ({})", members(role.as_str()).join(", ")),
                None => "anyone".into(),
            };
            json!({
                "item": item.id,
                "kind": "task",
                "who": who,
                "how": format!("golive confirm {id} {} --by NAME", item.id),
            })
        }
        ItemKind::Approval(a) => {
            let signed: BTreeSet<String> = store
                .signatures(id, item.id.as_str())
                .await?
                .into_iter()
                .filter(|s| s.decision == Decision::Approve)
                .map(|s| s.role)
                .collect();
            let missing: Vec<Value> = a
                .roles
                .iter()
                .filter(|r| !signed.contains(r.as_str()))
                .map(|r| json!({ "role": r, "members": members(r.as_str()) }))
                .collect();
            let need = (a.min as usize).saturating_sub(signed.len());
            let who = format!(
                "{need} more of {}",
                missing
                    .iter()
                    .filter_map(|m| m.get("role").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            json!({
                "item": item.id,
                "kind": "approval",
                "who": who,
                "need": need,
                "roles": missing,
                "how": format!("golive approve {id} {} --as ROLE --by NAME", item.id),
            })
        }
        kind => json!({
            "item": item.id,
            "kind": kind.name(),
            "who": "anyone: it was interrupted and asks whether to run it again",
            "how": format!(
                "golive confirm {id} {} --by NAME (rerun) or --skip --reason TEXT",
                item.id
            ),
        }),
    })
}
