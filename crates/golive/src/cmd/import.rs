//! `golive import`: a Markdown checklist in, a plan that validates out.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use golive_plan::import::{NoteKind, import};
use serde::Serialize;

use crate::cli::{ImportArgs, Output};

#[derive(Serialize)]
struct NoteOut<'a> {
    line: usize,
    kind: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct Summary<'a> {
    source: String,
    out: Option<String>,
    checklist_items: usize,
    kept_items: usize,
    valid: bool,
    drafted: std::collections::BTreeMap<&'static str, usize>,
    rollback_items: usize,
    rollback_levels: usize,
    placeholder_roles: &'a [String],
    review: &'a [String],
    notes: Vec<NoteOut<'a>>,
}

fn kind_name(k: &NoteKind) -> &'static str {
    match k {
        NoteKind::Recognised => "recognised",
        NoteKind::Plain => "plain",
        NoteKind::Repaired => "repaired",
        NoteKind::Dropped => "dropped",
    }
}

pub fn run(args: &ImportArgs, output: Output) -> Result<ExitCode> {
    if let Some(out) = &args.out
        && out.exists()
        && !args.force
    {
        bail!(
            "{} already exists; pass --force to overwrite it",
            out.display()
        );
    }
    let source = args.checklist.display().to_string();
    // Before reading the whole file, and long before writing anything.
    let size = std::fs::metadata(&args.checklist)
        .with_context(|| format!("cannot read {source}"))?
        .len();
    let too_large = |e: golive_plan::import::TooLarge| anyhow::anyhow!("{source}: {e}");
    golive_plan::import::check_size(usize::try_from(size).unwrap_or(usize::MAX), None)
        .map_err(too_large)?;
    let text = golive_plan::read_text(&args.checklist)?;
    golive_plan::import::check_size(text.len(), Some(&text)).map_err(too_large)?;
    let name = args
        .checklist
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.checklist.display().to_string());
    let imported = import(&text, &name);
    // The importer promises a plan that validates; check rather than trust.
    let compiled = golive_plan::compile(&imported.yaml, &|_: &str| true);
    let valid = compiled.plan.is_some();
    if !valid {
        let source = golive_plan::Source::new("imported plan", imported.yaml.as_str());
        eprint!("{}", crate::load::render(&source, &compiled.diagnostics));
        bail!(
            "the imported plan does not validate, so nothing was written; this is a bug in golive import, please report it with the checklist"
        );
    }
    match &args.out {
        Some(out) => std::fs::write(out, &imported.yaml)
            .with_context(|| format!("cannot write {}", out.display()))?,
        None if output == Output::Human => print!("{}", imported.yaml),
        None => {}
    }
    match output {
        Output::Json => {
            let summary = Summary {
                source: args.checklist.display().to_string(),
                out: args.out.as_ref().map(|o| o.display().to_string()),
                checklist_items: imported.checklist_items,
                kept_items: imported.kept_items,
                valid,
                drafted: imported.summary.kinds.iter().copied().collect(),
                rollback_items: imported.summary.rollback_items,
                rollback_levels: imported.summary.rollback_levels,
                placeholder_roles: &imported.summary.placeholder_roles,
                review: &imported.summary.review,
                notes: imported
                    .notes
                    .iter()
                    .map(|n| NoteOut {
                        line: n.line,
                        kind: kind_name(&n.kind),
                        message: &n.message,
                    })
                    .collect(),
            };
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Output::Human | Output::Markdown | Output::Junit => {
            for kind in [
                NoteKind::Recognised,
                NoteKind::Repaired,
                NoteKind::Plain,
                NoteKind::Dropped,
            ] {
                let notes: Vec<_> = imported.notes.iter().filter(|n| n.kind == kind).collect();
                if notes.is_empty() {
                    continue;
                }
                eprintln!("{} ({}):", kind_name(&kind), notes.len());
                // The same remark on many lines (a repaired emoji, say) is said once.
                let mut grouped: Vec<(&str, Vec<usize>)> = Vec::new();
                for n in notes {
                    match grouped.iter_mut().find(|(m, _)| *m == n.message) {
                        Some((_, lines)) => lines.push(n.line),
                        None => grouped.push((&n.message, vec![n.line])),
                    }
                }
                for (message, lines) in grouped {
                    let place = match lines.as_slice() {
                        [0] => name.clone(),
                        [l] => format!("{name}:{l}"),
                        [first, rest @ ..] => format!(
                            "{name}:{first} (and {} more line{})",
                            rest.len(),
                            if rest.len() == 1 { "" } else { "s" }
                        ),
                        [] => name.clone(),
                    };
                    eprintln!("  {place}: {message}");
                }
            }
            for line in imported.summary.lines() {
                eprintln!("{line}");
            }
            eprintln!(
                "kept {} of {} checklist items{}",
                imported.kept_items,
                imported.checklist_items,
                args.out
                    .as_ref()
                    .map(|o| format!("; wrote {}", o.display()))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
