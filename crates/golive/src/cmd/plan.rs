//! `golive plan show`: the plan's timeline at a glance.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use comfy_table::{Cell, Table, presets::UTF8_FULL_CONDENSED};
use golive_plan::time::format_duration;
use golive_plan::{ItemKind, Phase, Plan};
use serde::Serialize;

use crate::cli::{Output, PlanArgs};
use crate::load::{load, render};

#[derive(Serialize)]
struct PhaseRow {
    id: String,
    title: String,
    at: Option<String>,
    starts: Option<String>,
    items: usize,
    kinds: BTreeMap<&'static str, usize>,
    owners: Vec<String>,
}

#[derive(Serialize)]
struct Timeline {
    name: String,
    version: Option<String>,
    environment: Option<String>,
    owner: Option<String>,
    t0: Option<String>,
    phases: Vec<PhaseRow>,
    totals: BTreeMap<&'static str, usize>,
    rollback_items: usize,
    rollback_levels: Vec<String>,
    monitor_window: Option<String>,
    record: Vec<String>,
}

fn kinds<'a>(items: impl Iterator<Item = &'a golive_plan::Item>) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for i in items {
        *counts.entry(i.kind.name()).or_insert(0) += 1;
    }
    counts
}

fn row(plan: &Plan, p: &Phase) -> PhaseRow {
    let mut owners: Vec<String> = p
        .items
        .iter()
        .filter_map(|i| i.owner.as_ref().map(|o| o.to_string()))
        .chain(p.items.iter().filter_map(|i| {
            match &i.kind {
                ItemKind::Approval(a) => Some(
                    a.roles
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join("+"),
                ),
                _ => None,
            }
        }))
        .collect();
    owners.sort();
    owners.dedup();
    let starts = match (plan.t0, p.at) {
        (Some(t0), Some(at)) => t0
            .checked_add(jiff::SignedDuration::from_secs(at.0))
            .ok()
            .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()),
        _ => None,
    };
    PhaseRow {
        id: p.id.to_string(),
        title: p.title.clone(),
        at: p.at.map(|a| a.to_string()),
        starts,
        items: p.items.len(),
        kinds: kinds(p.items.iter()),
        owners,
    }
}

fn timeline(plan: &Plan) -> Timeline {
    Timeline {
        name: plan.name.clone(),
        version: plan.version.clone(),
        environment: plan.environment.clone(),
        owner: plan.owner.clone(),
        t0: plan.t0.map(|t| t.to_string()),
        phases: plan.phases.iter().map(|p| row(plan, p)).collect(),
        totals: kinds(plan.items().map(|(_, i)| i)),
        rollback_items: plan.rollback.items.len(),
        rollback_levels: plan
            .rollback
            .levels
            .iter()
            .map(|l| l.name.clone())
            .collect(),
        monitor_window: plan.monitor.as_ref().map(|m| format_duration(m.window)),
        record: plan
            .record
            .iter()
            .chain(plan.phases.iter().flat_map(|p| p.record.iter()))
            .cloned()
            .collect(),
    }
}

fn kinds_text(k: &BTreeMap<&'static str, usize>) -> String {
    ItemKind::NAMES
        .iter()
        .filter_map(|n| k.get(n).map(|c| format!("{c} {n}")))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn show(args: &PlanArgs, output: Output) -> Result<ExitCode> {
    let loaded = load(&args.plan, &args.vars)?;
    let Some(plan) = &loaded.compiled.plan else {
        eprint!("{}", render(&loaded.source, &loaded.compiled.diagnostics));
        eprintln!(
            "{} is invalid; fix it before showing its timeline",
            loaded.source.name
        );
        return Ok(super::failed());
    };
    let t = timeline(plan);
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&t)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut head = t.name.clone();
    if let Some(v) = &t.version {
        head.push_str(&format!(" {v}"));
    }
    if let Some(e) = &t.environment {
        head.push_str(&format!(" → {e}"));
    }
    if let Some(o) = &t.owner {
        head.push_str(&format!("  (owner: {o})"));
    }
    println!("{head}");
    if let Some(t0) = &t.t0 {
        println!("T-0: {t0}");
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let with_time = t.phases.iter().any(|p| p.starts.is_some());
    let mut header = vec!["At"];
    if with_time {
        header.push("Starts");
    }
    header.extend(["Phase", "Items", "Kinds", "Owners"]);
    table.set_header(header);
    for p in &t.phases {
        let mut cells = vec![Cell::new(p.at.as_deref().unwrap_or("—"))];
        if with_time {
            cells.push(Cell::new(p.starts.as_deref().unwrap_or("—")));
        }
        cells.extend([
            Cell::new(&p.title),
            Cell::new(p.items),
            Cell::new(kinds_text(&p.kinds)),
            Cell::new(p.owners.join(", ")),
        ]);
        table.add_row(cells);
    }
    println!("{table}");
    let total: usize = t.totals.values().sum();
    println!("{total} items: {}", kinds_text(&t.totals));
    if t.rollback_items > 0 || !t.rollback_levels.is_empty() {
        println!(
            "rollback: {} item(s); decision levels: {}",
            t.rollback_items,
            if t.rollback_levels.is_empty() {
                "none".into()
            } else {
                t.rollback_levels.join(" → ")
            }
        );
    }
    if let Some(w) = &t.monitor_window {
        println!("watch window after go-live: {w}");
    }
    if !t.record.is_empty() {
        println!("record fields: {}", t.record.join(", "));
    }
    if loaded.warnings() > 0 {
        eprint!("{}", render(&loaded.source, &loaded.compiled.diagnostics));
    }
    Ok(ExitCode::SUCCESS)
}
