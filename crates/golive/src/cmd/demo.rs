//! `golive demo [--fault] [--interactive]`: the README's main command. On a
//! fresh machine, with the golive binary alone, it starts two versions of a
//! small service in-process (v1 stable, v2 canary, each with Prometheus
//! metrics), a load generator whose users reach v2 when golive's
//! `checkout-v2` flag says so, and runs the shipped plan
//! (`golive_demo::DEMO_PLAN`): readiness checks, a sign-off (granted by the
//! demo, or by you with `--interactive`), then a canary 5% → 25% → 50% →
//! 100% through the flag, judged every second from the services' own
//! metrics. `--fault` makes v2 answer 20% errors once it reaches 25%: the
//! analysis catches it and golive rolls back by itself. Then the plan's
//! 20 s watch window: with `--fault`, v1 too breaks for a while, golive
//! pages the on-call (a `log` channel: each message is printed), tells the
//! war room when nobody acknowledges within 4 s, the demo acknowledges
//! (you do, with `--interactive`) and mends v1, and the incident resolves
//! itself. Then the record.
//!
//! The journal is a fresh SQLite file (printed, so `golive report --db`
//! works afterwards) unless `--db` is given.

use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use golive_demo::{Demo, LoadConfig, LoadGenerator, Router};
use golive_engine::Engine;
use golive_engine::answers::{self, Sign};
use golive_flags::{Context as FlagContext, Flag};
use golive_store::{AnyStore, Decision, ItemStatus, RunId, RunStatus, Store};

use crate::cli::{DemoArgs, Output};
use crate::cmd::journal;
use crate::cmd::run::print_progress;

/// The flag the demo plan rolls out.
const FLAG: &str = "checkout-v2";
/// Where `--fault` strikes.
const FAULT_AT: u64 = 25;

pub fn run(args: &DemoArgs, output: Output) -> Result<ExitCode> {
    journal::runtime()?.block_on(demo(args, output))
}

async fn demo(args: &DemoArgs, output: Output) -> Result<ExitCode> {
    let db = match &args.db {
        Some(p) => p.clone(),
        None => std::env::temp_dir().join(format!(
            "golive-demo-{}-{}.db",
            std::process::id(),
            jiff::Timestamp::now().as_second()
        )),
    };
    let store = golive_store::open(&db.display().to_string()).await?;
    let services = Demo::start().await?;
    eprintln!(
        "demo: v1 (stable) at {}, v2 (canary) at {}; journal {}",
        services.stable.url(),
        services.canary.url(),
        db.display()
    );

    // Users reach v2 when the flag says so, as an application reading the
    // flag in process would (the store is re-read every 100 ms).
    let flag: Arc<RwLock<Option<Flag>>> = Arc::default();
    let refresher = tokio::spawn(refresh_flag(store.clone(), Arc::clone(&flag)));
    let router: Router = {
        let flag = Arc::clone(&flag);
        Arc::new(move |user: &str| {
            let Ok(guard) = flag.read() else { return false };
            guard.as_ref().is_some_and(|f| {
                f.evaluate(&FlagContext::with_targeting_key(user))
                    .is_ok_and(|e| e.value == serde_json::Value::Bool(true))
            })
        })
    };
    let load = LoadGenerator::start(LoadConfig {
        rate: Some(200),
        users: 1_000,
        ..LoadConfig::new(services.split(router))
    })?;

    let vars: Vec<(String, String)> = services
        .variables()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let compiled = golive_plan::compile(golive_demo::DEMO_PLAN, &|_: &str| true);
    let plan = compiled
        .plan
        .context("the shipped demo plan does not compile (a bug)")?;
    let engine = Engine::new(Arc::new(store.clone()))?
        .with_observer(Arc::new(print_progress))
        .with_poll_interval(Duration::from_millis(100));
    let id = engine.create(golive_demo::DEMO_PLAN, &plan, None).await?;
    eprintln!("run {id} started: plan `{}`", plan.name);
    let helper = tokio::spawn(assist(
        store.clone(),
        id.clone(),
        args.interactive,
        args.fault,
        db.clone(),
        services.canary.fault_url(),
        services.stable.fault_url(),
        load.started(),
    ));
    let status = engine.execute(&id, &plan, &vars).await?;
    let fault_at = helper.await.ok().flatten();
    // A moment more of load, to show where the users are once it is over.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = load.stop().await;
    refresher.abort();
    services.shutdown().await?;

    let totals = &report.totals;
    eprintln!();
    eprintln!(
        "load: {} requests — {} answered by v1, {} by v2, {} errors (p50 {:?}, p99 {:?})",
        totals.requests(),
        totals.v1,
        totals.v2,
        totals.errors.total(),
        report.p50.unwrap_or_default(),
        report.p99.unwrap_or_default()
    );
    if let Some(t) = fault_at {
        match report.first_time_all_stable_after(t) {
            Some(back) => eprintln!(
                "fault injected at {:.1}s; every user back on v1 from {:.1}s: {:.1}s from fault to rollback",
                t.as_secs_f64(),
                back.as_secs_f64(),
                back.saturating_sub(t).as_secs_f64()
            ),
            None => eprintln!(
                "fault injected at {:.1}s; v2 still answered at the end",
                t.as_secs_f64()
            ),
        }
    }
    eprintln!("run {id} {status}");
    let record = golive_engine::report::build(&store, &id).await?;
    store.close().await;
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        println!("{}", golive_engine::report::to_markdown(&record));
    }
    eprintln!("the record again: golive report {id} --db {}", db.display());
    let expected = if args.fault {
        RunStatus::RolledBack
    } else {
        RunStatus::Succeeded
    };
    if status == expected {
        Ok(ExitCode::SUCCESS)
    } else {
        if args.fault {
            eprintln!("the demo expected an automatic rollback, but the run {status}");
        }
        Ok(ExitCode::from(1))
    }
}

async fn refresh_flag(store: AnyStore, flag: Arc<RwLock<Option<Flag>>>) {
    loop {
        if let Ok(record) = store.get_flag(FLAG).await {
            let parsed = record.and_then(|r| Flag::from_json(&r.definition).ok());
            if let Ok(mut slot) = flag.write() {
                *slot = parsed;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The people of the demo: signs the go/no-go (unless `--interactive`),
/// and with `--fault` breaks v2 once the rollout reaches 25%; then, in the
/// watch window after the rollback, breaks v1 for a while, acknowledges
/// the page once the war room is told (unless `--interactive`), and
/// mends v1 once the incident is acknowledged. Returns when the first
/// fault struck, as time since the load started.
#[allow(clippy::too_many_arguments)]
async fn assist(
    store: AnyStore,
    run: RunId,
    interactive: bool,
    fault: bool,
    db: std::path::PathBuf,
    canary_fault_url: String,
    stable_fault_url: String,
    load_started: Instant,
) -> Option<Duration> {
    let mut signed = false;
    let mut fault_at = None;
    let mut window = Window::Before;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(r) = store.get_run(&run).await else {
            return fault_at;
        };
        if r.summary.status.is_final() {
            return fault_at;
        }
        if fault_at.is_some() {
            window = watch_window(&store, &run, window, interactive, &db, &stable_fault_url).await;
            continue;
        }
        if !signed {
            let waiting = store
                .item_states(&run)
                .await
                .ok()?
                .iter()
                .any(|s| s.item_id == "go-no-go" && s.status == ItemStatus::Waiting);
            if waiting {
                signed = true;
                if interactive {
                    eprintln!(
                        "\n  sign it off in another terminal:\n    golive approve {run} go-no-go --as release-manager --by demo --db {}\n",
                        db.display()
                    );
                } else {
                    let sign = Sign {
                        role: "release-manager".into(),
                        by: "demo".into(),
                        decision: Decision::Approve,
                        comment: Some(
                            "granted by golive demo (run with --interactive to sign yourself)"
                                .into(),
                        ),
                    };
                    if let Err(e) = answers::sign(&store, &run, "go-no-go", &sign).await {
                        eprintln!("demo: cannot sign the go/no-go: {e}");
                    }
                }
            }
        }
        if fault && reached(&store, &run, FAULT_AT).await {
            let at = load_started.elapsed();
            if !set_fault(&canary_fault_url, 0.2).await {
                eprintln!("demo: could not inject the fault into v2");
                return None;
            }
            eprintln!("  demo: v2 now answers 20% of its requests with 500");
            fault_at = Some(at);
        }
    }
}

/// Where the demo's second fault, in the watch window, stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Window {
    /// The window has not started.
    Before,
    /// v1 answers errors; nobody acknowledged the page yet.
    Broken,
    /// The page was acknowledged and v1 mended.
    Mended,
}

/// One step of the demo's part in the watch window after the rollback.
async fn watch_window(
    store: &AnyStore,
    run: &RunId,
    state: Window,
    interactive: bool,
    db: &std::path::Path,
    stable_fault_url: &str,
) -> Window {
    use golive_engine::monitor::event;
    let Ok(events) = store.events_after(run, 0, u32::MAX).await else {
        return state;
    };
    let seen = |kind: &str, level: Option<u64>| {
        events
            .iter()
            .any(|e| e.kind == kind && level.is_none_or(|l| e.data["level"].as_u64() == Some(l)))
    };
    match state {
        Window::Before if seen(event::STARTED, None) => {
            if !set_fault(stable_fault_url, 0.2).await {
                eprintln!("demo: could not inject the fault into v1");
                return Window::Mended;
            }
            eprintln!("  demo: a second fault: v1, back with every user, now answers 20% errors");
            if interactive {
                eprintln!(
                    "\n  when golive pages, acknowledge it in another terminal:\n    golive ack {run} INC-1 --by NAME --db {}\n",
                    db.display()
                );
            }
            Window::Broken
        }
        Window::Broken if seen(event::ACKNOWLEDGED, None) => {
            if set_fault(stable_fault_url, 0.0).await {
                eprintln!("  demo: the on-call mended v1");
            }
            Window::Mended
        }
        Window::Broken if !interactive && seen(event::ESCALATED, Some(1)) => {
            let reason = Some(
                "looking into it (acknowledged by golive demo; --interactive to do it yourself)",
            );
            if let Err(e) = answers::ack(store, run, "INC-1", "demo", reason).await {
                eprintln!("demo: cannot acknowledge INC-1: {e}");
            }
            Window::Broken
        }
        other => other,
    }
}

/// Sets the error rate a demo service answers with, through its admin
/// endpoint, as an operator would.
async fn set_fault(url: &str, error_rate: f64) -> bool {
    match golive_runtime::api_client(Duration::from_secs(5)) {
        Ok(client) => client
            .post(url)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "error_rate": error_rate }).to_string())
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Whether the rollout has set the canary's weight to `weight`.
async fn reached(store: &AnyStore, run: &RunId, weight: u64) -> bool {
    let Ok(events) = store.events_after(run, 0, u32::MAX).await else {
        return false;
    };
    events
        .iter()
        .any(|e| e.kind == "rollout.weight" && e.data["weight"].as_u64() == Some(weight))
}
