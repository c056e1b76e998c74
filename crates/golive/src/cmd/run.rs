//! `golive run`: execute a plan (or `--resume` a run) against the journal.
//!
//! The run id goes to stderr first, so a person (or a script) can answer the
//! run's questions with `golive confirm` / `golive approve` from another
//! terminal while this one waits. One line per item as it finishes, then the
//! final status.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use golive_engine::{Engine, Progress};
use golive_probe::Vars;
use golive_store::{AnyStore, ItemStatus, RunStatus, Store};
use serde_json::Value;

use crate::cli::{Output, RunArgs};
use crate::cmd::journal;
use crate::load::{load, render};

pub fn run(args: &RunArgs, output: Output) -> Result<ExitCode> {
    if args.resume.is_some() && args.plan.is_some() {
        bail!("--resume runs the plan stored with the run; leave out the PLAN argument");
    }
    if args.resume.is_some() && args.t0.is_some() {
        bail!("--resume keeps the run's t0; leave out --t0");
    }
    journal::runtime()?.block_on(async {
        let store = journal::open(&args.store).await?;
        let result = run_in(store.clone(), args, output).await;
        store.close().await;
        result
    })
}

async fn run_in(store: AnyStore, args: &RunArgs, output: Output) -> Result<ExitCode> {
    let mut engine = Engine::new(Arc::new(store.clone()))?.with_observer(Arc::new(print_progress));
    if let Some(ttl) = args.lease_ttl {
        engine = engine.with_lease_ttl(ttl);
    }
    let (run, status) = match &args.resume {
        Some(run) => {
            eprintln!("resuming run {run} (journal {})", store.url());
            (run.clone(), engine.resume(run, &args.vars).await?)
        }
        None => {
            let path = args.plan.clone().unwrap_or_else(|| "golive.yaml".into());
            let loaded = load(&path, &args.vars)?;
            let Some(plan) = loaded.compiled.plan.as_ref() else {
                eprint!("{}", render(&loaded.source, &loaded.compiled.diagnostics));
                eprintln!(
                    "{} is invalid; fix it before running it",
                    loaded.source.name
                );
                return Ok(ExitCode::from(2));
            };
            let vars = Vars::resolve(plan, &args.vars)?;
            let run = engine.create(&loaded.source.text, plan, args.t0).await?;
            eprintln!(
                "run {run} started: plan `{}` (journal {})",
                plan.name,
                store.url()
            );
            let status = engine.execute(&run, plan, &vars).await?;
            (run, status)
        }
    };
    eprintln!("run {run} {status}");
    if output == Output::Json {
        println!("{}", serde_json::json!({ "run": run, "status": status }));
    }
    Ok(match status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// One line per event worth a person's attention, on stderr. A closed
/// stderr must not stop a go-live, so write errors are ignored.
fn print_progress(p: &Progress<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = match p {
        Progress::Interrupted(ids) => {
            writeln!(
                err,
                "  interrupted: {} (were running when golive stopped)",
                ids.join(", ")
            )
        }
        Progress::Waiting { item, detail } => {
            let how = detail.get("how").and_then(Value::as_str).unwrap_or("");
            writeln!(
                err,
                "  waiting     {} ({}): {how}",
                item.id,
                item.kind.name()
            )
        }
        Progress::Finished {
            item,
            status,
            result,
        } => {
            let note = match status {
                ItemStatus::Failed => result
                    .get("error")
                    .and_then(Value::as_str)
                    .map(|e| format!(": {e}"))
                    .or_else(|| {
                        result
                            .get("exit_code")
                            .and_then(Value::as_i64)
                            .map(|c| format!(": exit code {c}"))
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            writeln!(
                err,
                "  {:<11} {} ({}){note}",
                status.as_str(),
                item.id,
                item.kind.name()
            )
        }
        Progress::Run(RunStatus::RollingBack) => writeln!(err, "  rolling back"),
        Progress::Run(_) => Ok(()),
    };
}
