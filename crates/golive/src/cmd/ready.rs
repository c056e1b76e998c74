//! `golive ready`: run the plan's checks concurrently and say whether it can go live.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use golive_plan::{ItemKind, Plan};
use golive_probe::CheckResult;
use golive_runtime::Vars;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{Output, ReadyArgs};
use crate::load::{load, render};
use crate::readiness::{CheckReport, ReadinessReport};

/// The checks selected by `--phase`, `--tag` and `--only`, in plan order.
fn select<'a>(
    plan: &'a Plan,
    args: &ReadyArgs,
) -> Vec<(
    &'a golive_plan::Phase,
    &'a golive_plan::Item,
    &'a golive_plan::Check,
)> {
    plan.items()
        .filter_map(|(p, i)| match &i.kind {
            ItemKind::Check(c) => Some((p, i, c)),
            _ => None,
        })
        .filter(|(p, _, _)| {
            args.phase.is_empty()
                || args
                    .phase
                    .iter()
                    .any(|f| f == p.id.as_str() || f.eq_ignore_ascii_case(&p.title))
        })
        .filter(|(_, i, _)| args.tag.is_empty() || args.tag.iter().any(|t| i.tags.contains(t)))
        .filter(|(_, i, _)| args.only.is_empty() || args.only.iter().any(|o| o == i.id.as_str()))
        .collect()
}

pub fn run(args: &ReadyArgs, output: Output) -> Result<ExitCode> {
    let loaded = load(&args.plan.plan, &args.plan.vars)?;
    let strict_failure = args.plan.strict && loaded.warnings() > 0;
    let plan = loaded.compiled.plan.as_ref().filter(|_| !strict_failure);
    let Some(plan) = plan else {
        eprint!("{}", render(&loaded.source, &loaded.compiled.diagnostics));
        eprintln!(
            "{} is invalid; fix it before checking readiness",
            loaded.source.name
        );
        return Ok(ExitCode::from(2));
    };
    for id in &args.only {
        if !plan.items().any(|(_, i)| i.id.as_str() == id) {
            anyhow::bail!("--only {id}: no item `{id}` in {}", loaded.source.name);
        }
    }
    if !plan
        .items()
        .any(|(_, i)| matches!(i.kind, ItemKind::Check(_)))
    {
        eprintln!(
            "warning: {} has no checks: readiness cannot be verified (an imported checklist keeps manual steps as tasks; turn what can be probed into `check` items)",
            loaded.source.name
        );
    }
    let (vars, missing) = Vars::resolve_partial(plan, &args.plan.vars)?;
    let vars = Arc::new(vars);
    let selected = select(plan, args);
    // A secret that cannot be read fails the checks that use it, and only those.
    let blocked: Vec<Option<String>> = selected
        .iter()
        .map(|(_, _, check)| {
            let text = probe_text(&check.probe);
            missing
                .iter()
                .find(|(name, _)| text.contains(&format!("${{{name}}}")))
                .map(|(_, e)| e.to_string())
        })
        .collect();
    if output == Output::Human {
        for (name, e) in &missing {
            if !blocked.iter().flatten().any(|b| *b == e.to_string()) {
                eprintln!("warning: {e} (no selected check uses `{name}`)");
            }
        }
    }
    let started_at = jiff::Timestamp::now().to_string();
    let clock = Instant::now();

    let bar = if output == Output::Human && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(selected.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} checks {wide_bar} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let concurrency = args.concurrency.max(1);
    let results = runtime.block_on(async {
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut set = tokio::task::JoinSet::new();
        for (index, ((_, item, check), blocked)) in selected.iter().zip(&blocked).enumerate() {
            let check = (*check).clone();
            let blocked = blocked.clone();
            let vars = vars.clone();
            let limit = limit.clone();
            let bar = bar.clone();
            let id = item.id.to_string();
            set.spawn(async move {
                let result = match blocked {
                    Some(reason) => CheckResult {
                        status: golive_probe::Status::Error,
                        conditions: Vec::new(),
                        error: Some(reason),
                        duration: std::time::Duration::ZERO,
                        attempts: 0,
                    },
                    None => {
                        let _permit = limit.acquire_owned().await;
                        golive_probe::run_check(&check, &vars).await
                    }
                };
                bar.inc(1);
                bar.set_message(id);
                (index, result)
            });
        }
        let mut results = vec![None; selected.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok((index, result)) = joined {
                results[index] = Some(result);
            }
        }
        results
    });
    bar.finish_and_clear();

    let mut checks = Vec::with_capacity(selected.len());
    for ((phase, item, check), result) in selected.iter().zip(results) {
        let result = result.context("a check task ended without a result")?;
        checks.push(CheckReport {
            id: item.id.to_string(),
            title: item.title.clone(),
            phase: phase.id.to_string(),
            probe: check.probe.name(),
            critical: item.critical,
            owner: item.owner.as_ref().map(|o| o.to_string()),
            result,
        });
    }
    let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let report = ReadinessReport::new(
        plan.name.clone(),
        started_at,
        duration_ms,
        args.min_score,
        checks,
    );
    let text = match output {
        Output::Human => report.terminal(),
        Output::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
        Output::Markdown => report.markdown(),
        Output::Junit => report.junit(),
    };
    print!("{text}");
    Ok(if report.ready {
        ExitCode::SUCCESS
    } else {
        super::failed()
    })
}

/// The probe's settings as text, to find the `${NAME}`s it uses.
fn probe_text(p: &golive_plan::Probe) -> String {
    use golive_plan::Probe;
    let json = match p {
        Probe::Http(x) => serde_json::to_string(x),
        Probe::Tcp(x) => serde_json::to_string(x),
        Probe::Dns(x) => serde_json::to_string(x),
        Probe::Tls(x) => serde_json::to_string(x),
        Probe::Postgres(x) => serde_json::to_string(x),
        Probe::Redis(x) => serde_json::to_string(x),
        Probe::Prometheus(x) => serde_json::to_string(x),
        Probe::Command(x) => serde_json::to_string(x),
        Probe::Env(x) => serde_json::to_string(x),
        Probe::File(x) => serde_json::to_string(x),
    };
    json.unwrap_or_default()
}
