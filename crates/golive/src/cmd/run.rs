//! `golive run`: execute a plan (or `--resume` a run) against the journal.
//!
//! The run id goes to stderr first, so a person (or a script) can answer the
//! run's questions with `golive confirm` / `golive approve` from another
//! terminal while this one waits. One line per item as it finishes, then the
//! final status.
//!
//! SIGINT and SIGTERM stop the run cleanly: the running command's process
//! group is killed, the item is marked interrupted (a resume follows its
//! `on_interrupt`), the lease is released, and golive exits 130 or 143.
//! `--var`s are kept with the run (declared secrets excepted), so
//! `--resume` needs only the secrets again.
//!
//! The engine writes through `golive_store::Retrying`: when the database
//! goes away the run pauses (a `paused` line, then `resumed`) for up to
//! `GOLIVE_DB_RETRY`, keeping its lease, instead of failing.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use golive_engine::{Engine, EngineError, Progress};
use golive_store::{AnyStore, ItemStatus, Pause, RetryPolicy, Retrying, RunStatus, Store};
use serde_json::Value;

use crate::cli::{Output, RunArgs};
use crate::cmd::journal;
use crate::cmd::remote::Remote;
use crate::load::{load, render};

/// A line on stderr that never panics: a closed stderr (`2>&1 | true`)
/// must neither stop a run nor change its exit code.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// Like `say!`, without the newline.
macro_rules! say_raw {
    ($($t:tt)*) => {{
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}

pub fn run(args: &RunArgs, output: Output) -> Result<ExitCode> {
    if args.resume.is_some() && args.plan.is_some() {
        bail!("--resume runs the plan stored with the run; leave out the PLAN argument");
    }
    if args.resume.is_some() && args.t0.is_some() {
        bail!("--resume keeps the run's t0; leave out --t0");
    }
    journal::runtime()?.block_on(async {
        if let Some(server) = Remote::from_args(&args.store)? {
            return remote(&server, args, output).await;
        }
        let store = journal::open(&args.store).await?;
        let result = run_in(store.clone(), args, output).await;
        store.close().await;
        result
    })
}

/// `--server`: the run executes inside the server; this process starts (or
/// resumes) it and follows its journal on the live event stream, printing
/// a line per finished item, until it ends. Stopping this process does not
/// stop the run.
async fn remote(server: &Remote, args: &RunArgs, output: Output) -> Result<ExitCode> {
    let run = match &args.resume {
        Some(run) => {
            server
                .call(
                    reqwest::Method::POST,
                    &format!("/api/runs/{run}/resume"),
                    None,
                )
                .await?;
            say!("run {run} resumed in the server");
            run.to_string()
        }
        None => {
            let path = args.plan.clone().unwrap_or_else(|| "golive.yaml".into());
            let loaded = load(&path, &args.vars)?;
            if loaded.compiled.plan.is_none() {
                say_raw!("{}", render(&loaded.source, &loaded.compiled.diagnostics));
                say!(
                    "{} is invalid; fix it before running it",
                    loaded.source.name
                );
                return Ok(ExitCode::from(2));
            }
            let vars: serde_json::Map<String, Value> = args
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let body = serde_json::json!({
                "plan": loaded.source.text.to_string(),
                "t0": args.t0.map(|t| t.to_string()),
                "vars": vars,
            });
            let v = server
                .call(reqwest::Method::POST, "/api/runs", Some(&body))
                .await?;
            let run = v["run"].as_str().unwrap_or_default().to_string();
            say!("run {run} started in the server");
            run
        }
    };
    let mut stream = server.events(&run).await?;
    let mut buffer = String::new();
    let status = loop {
        let Some(chunk) = stream.chunk().await.context("the event stream broke")? else {
            anyhow::bail!("the server closed the event stream before run {run} ended");
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        let mut ended = None;
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if !block.contains("event: run") {
                continue;
            }
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            let Ok(event) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            let item = event["item_id"].as_str().unwrap_or_default();
            match event["kind"].as_str() {
                Some("item.finished") => say!(
                    "  {:<11} {item}",
                    event["data"]["status"].as_str().unwrap_or_default()
                ),
                Some("item.waiting") => say!("  waiting     {item}"),
                Some("run.status") => {
                    // A paused run waits for a person: following it ends.
                    let to = event["data"]["to"].as_str().unwrap_or_default();
                    if let Ok(s) = to.parse::<RunStatus>()
                        && (s.is_final() || s == RunStatus::Paused)
                    {
                        ended = Some(s);
                    }
                }
                _ => {}
            }
        }
        if let Some(s) = ended {
            break s;
        }
    };
    say!("run {run} {status}");
    if output == Output::Json {
        // A closed stdout (`golive run … | true`) must not change the exit code.
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            serde_json::json!({ "run": run, "status": status })
        );
    }
    Ok(match status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

async fn run_in(store: AnyStore, args: &RunArgs, output: Output) -> Result<ExitCode> {
    let policy = RetryPolicy::from_env().map_err(anyhow::Error::msg)?;
    let url = store.url().to_string();
    let stop = stop_signal()?;
    let retrying = Retrying::new(store.clone(), policy)
        .with_observer(Arc::new(move |p: &Pause<'_>| print_pause(&url, p)))
        .with_stop_signal(stop.clone());
    let mut engine = Engine::new(Arc::new(retrying))?
        .with_observer(Arc::new(print_progress))
        .with_stop_signal(stop);
    if let Some(ttl) = args.lease_ttl {
        engine = engine.with_lease_ttl(ttl);
    }
    let (run, status) = match &args.resume {
        Some(run) => {
            say!("resuming run {run} (journal {})", store.url());
            (run.clone(), stopped(engine.resume(run, &args.vars).await)?)
        }
        None => {
            let path = args.plan.clone().unwrap_or_else(|| "golive.yaml".into());
            let loaded = load(&path, &args.vars)?;
            let Some(plan) = loaded.compiled.plan else {
                say_raw!("{}", render(&loaded.source, &loaded.compiled.diagnostics));
                say!(
                    "{} is invalid; fix it before running it",
                    loaded.source.name
                );
                return Ok(ExitCode::from(2));
            };
            let started = engine
                .start(&loaded.source.text, plan, args.vars.clone(), args.t0)
                .await?;
            let run = started.run.clone();
            say!(
                "run {run} started: plan `{}` (journal {})",
                started.plan().name,
                store.url()
            );
            let status = stopped(engine.run(&started).await)?;
            (run, status)
        }
    };
    let shown = match &status {
        Ok(s) => s.as_str().to_string(),
        Err(_) => "stopped".to_string(),
    };
    match &status {
        Ok(s) => say!("run {run} {s}"),
        Err(signal) => say!(
            "run {run} stopped by signal {signal}; the running item was marked interrupted; resume with `golive run --resume {run}`"
        ),
    }
    if output == Output::Json {
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            serde_json::json!({ "run": run, "status": shown })
        );
    }
    Ok(match status {
        Ok(RunStatus::Succeeded) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(signal) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)),
    })
}

/// A stop by signal is an outcome (exit 128 + signal), not an error.
fn stopped(result: Result<RunStatus, EngineError>) -> Result<Result<RunStatus, i32>, EngineError> {
    match result {
        Ok(status) => Ok(Ok(status)),
        Err(EngineError::Stopped { signal, .. }) => Ok(Err(signal)),
        Err(e) => Err(e),
    }
}

/// A flag set to the signal's number when SIGINT or SIGTERM arrives. The
/// handlers stay installed, so a second signal does not kill golive while
/// it records the interruption.
fn stop_signal() -> Result<tokio::sync::watch::Receiver<Option<i32>>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::watch::channel(None);
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        let number = tokio::select! {
            _ = int.recv() => 2,
            _ = term.recv() => 15,
        };
        let _ = tx.send(Some(number));
        // Keep the sender (and the handlers) alive until the process ends.
        std::future::pending::<()>().await;
    });
    Ok(rx)
}

/// The journal's pauses (see `golive_store::Retrying`), on stderr.
fn print_pause(url: &str, p: &Pause<'_>) {
    let run = |run: Option<&golive_store::RunId>| match run {
        Some(run) => format!("run {run}"),
        None => "the run".to_string(),
    };
    let line = match p {
        Pause::Waiting {
            run: r,
            error,
            budget,
        } => format!(
            "  paused      the journal is not answering ({}); {} waits for it for up to {}s ({}), keeping its lease",
            golive_runtime::error_chain(*error),
            run(*r),
            budget.as_secs(),
            golive_store::DB_RETRY_ENV,
        ),
        Pause::Resumed { run: r, waited } => format!(
            "  resumed     the journal answers again after {:.1}s; {} goes on",
            waited.as_secs_f64(),
            run(*r),
        ),
        Pause::GaveUp {
            run: r,
            error,
            budget,
        } => format!(
            "  gave up     the journal {url} did not answer for {}s ({}); {} stops",
            budget.as_secs(),
            golive_runtime::error_chain(*error),
            run(*r),
        ),
    };
    // A closed stderr must not stop a go-live.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// One line per event worth a person's attention, on stderr. A closed
/// stderr must not stop a go-live, so write errors are ignored.
pub(crate) fn print_progress(p: &Progress<'_>) {
    // Buffered: stderr is not, and a formatted line would be a write(2)
    // per piece; dropping the buffer writes the line at once.
    let mut err = std::io::BufWriter::new(std::io::stderr().lock());
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
            // A paused rollout says why.
            let why = detail
                .get("why")
                .and_then(Value::as_str)
                .map(|w| format!("paused: {w}; "))
                .unwrap_or_default();
            writeln!(
                err,
                "  waiting     {} ({}): {why}{how}",
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
        Progress::Note { item, kind, data } => match *kind {
            "rollout.weight" => writeln!(
                err,
                "  {:<11} {}: canary {}%, stable {}% ({})",
                "traffic",
                item.id,
                data["weight"],
                data["stable"],
                data["why"].as_str().unwrap_or_default()
            ),
            _ => {
                let text = |k: &str| data[k].as_str().unwrap_or_default().to_string();
                let what = match data.get("level").and_then(Value::as_str) {
                    Some(level) => {
                        let actions: Vec<&str> = data["actions"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        format!("level `{level}` acts ({})", actions.join(", "))
                    }
                    None => format!("{}: {}", text("action"), text("why")),
                };
                writeln!(err, "  {:<11} {}: {what}", "decision", item.id)
            }
        },
        Progress::Run(_) => Ok(()),
        Progress::GateHeld { phase, items } => writeln!(
            err,
            "  {:<11} phase `{phase}` cannot be left: {} failed (its gate)",
            "gate",
            items.join(", ")
        ),
        Progress::Watch { kind, data } => {
            use golive_engine::monitor::event;
            let text = |k: &str| data[k].as_str().unwrap_or_default().to_string();
            let incident = text("incident");
            let line = match *kind {
                event::STARTED => format!(
                    "watch window: {}",
                    golive_plan::time::format_duration(std::time::Duration::from_secs_f64(
                        data["window_s"].as_f64().unwrap_or(0.0)
                    ))
                ),
                event::ENDED => format!(
                    "watch window over: {} incident(s), {} still open",
                    data["incidents"],
                    data["open"].as_array().map_or(0, Vec::len)
                ),
                event::OPENED => {
                    let what = if data["alert"].is_string() {
                        format!("alert `{}` fired", text("title"))
                    } else if data["rule"].is_u64() {
                        format!("rule `{}` fires", text("title"))
                    } else {
                        format!("check `{}` fails", text("check"))
                    };
                    let severity = data["severity"]
                        .as_str()
                        .map(|s| format!(" [{s}]"))
                        .unwrap_or_default();
                    format!("{incident} opened{severity}: {what}")
                }
                event::ESCALATED => format!(
                    "{incident} escalated: {} → {}{}",
                    text("name"),
                    text("channel"),
                    data["to"]
                        .as_str()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default()
                ),
                event::ACKNOWLEDGED => format!("{incident} acknowledged by {}", text("by")),
                event::RESOLVED => format!("{incident} resolved after {}s", data["open_s"]),
                "notify.sent" | "notify.failed" => {
                    let sent = if *kind == "notify.sent" {
                        format!("to {}", text("channel"))
                    } else {
                        format!("NOT delivered to {} ({})", text("channel"), text("error"))
                    };
                    let via = data["via"]
                        .as_str()
                        .or(data["delivered"].as_str())
                        .map(|v| format!(" via {v}"))
                        .unwrap_or_default();
                    format!("message {sent}{via}: {}", text("message"))
                }
                golive_engine::comms::SKIPPED => {
                    format!("message at {} skipped: {}", text("at"), text("why"))
                }
                other => match data["error"].as_str() {
                    Some(error) => format!("{other}: {error}"),
                    None => other.to_string(),
                },
            };
            let label = if data["comms"].is_u64() || *kind == golive_engine::comms::SKIPPED {
                "comms"
            } else {
                "watch"
            };
            writeln!(err, "  {label:<11} {line}")
        }
    };
}
