//! Detection-to-rollback benchmark: how long after a canary starts failing
//! do all new requests reach the stable version again?
//!
//! Each run is scenario (b) of `tests/it/rollout_e2e.rs` on fresh real parts
//! (the shared rig in `tests/it/e2e/mod.rs`): the two demo services behind
//! HAProxy 2.6 (weights on its admin socket) or, with `--via nginx`, nginx
//! 1.22 (golive rewrites its upstream file and runs `nginx -t && nginx -s
//! reload`), Prometheus scraping both every second, the engine in process
//! on a SQLite journal, 200 requests/s through the proxy. The plan
//! steps the canary 5% → 25% (held 10 minutes) → 50% → 100%, analysed every
//! second with `error_rate > 0.05` (a 5 s rate window, no `for`, no
//! rollback levels: a failing evaluation rolls back at once). When the
//! journal shows 25%, v2 starts answering 20% of its requests with 500.
//!
//! Measured: from the fault's start to the first 100 ms bucket of the load
//! generator from which every answer came from v1
//! (`LoadReport::first_time_all_stable_after`), so within 100 ms, never
//! less than the real time. Also shown: when the watcher (reading the
//! journal every 25 ms) saw the rollback decision, and how many requests v2
//! answered with 500 meanwhile.
//!
//! Usage:
//!   rollback_bench [--runs N]     N runs (default 5), each and the median
//!   rollback_bench --via nginx    through nginx instead of HAProxy (the
//!                                 default, `--via haproxy`); combines with
//!                                 the options below
//!   rollback_bench --for 2m       one run with `error_rate > 0.05 for 2m`,
//!                                 the rule as go-live documents write it
//!   rollback_bench --fault-after 6s
//!                                 the fault 6 s into the 25% step instead
//!                                 of at its start: the 5 s window then
//!                                 holds only steady 25% traffic, and the
//!                                 fault is out of step with the analysis
//!
//! With the fault at the step's start (the default), the errors land in a
//! window still mostly made of the 5% step's smaller traffic, and the
//! evaluation one interval after the step is the first to see them.
//!
//! `bench/rollback.sh` builds it in release and runs it.

#[path = "../tests/it/e2e/mod.rs"]
mod e2e;

use std::time::Duration;

use e2e::{ERROR_RATE, Inject, PlanSpec, Rig, Via, block_on_big_stack};
use golive_store::RunStatus;

/// What one run measured.
struct Measured {
    /// Fault to every new request on v1.
    to_stable: Duration,
    /// Fault to the rollback decision, as the journal watcher saw it.
    to_decision: Option<Duration>,
    /// Requests v2 answered with 500.
    failed: u64,
    /// Requests that failed without an answer (through nginx, a reload
    /// closing an idle keep-alive connection as a request went out).
    unanswered: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: rollback_bench [--runs N] [--via haproxy|nginx] [--for DURATION] [--fault-after DURATION]"
    );
    std::process::exit(2);
}

fn main() {
    let mut runs = 5usize;
    let mut hold: Option<String> = None;
    let mut fault_after = Duration::ZERO;
    let mut via = Via::Haproxy;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| usage());
            }
            "--via" => {
                via = args
                    .next()
                    .and_then(|v| Via::parse(&v))
                    .unwrap_or_else(|| usage());
            }
            "--for" => hold = Some(args.next().unwrap_or_else(|| usage())),
            "--fault-after" => {
                fault_after = args
                    .next()
                    .and_then(|d| golive_plan::time::parse_duration(&d).ok())
                    .unwrap_or_else(|| usage());
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if let Some(d) = &hold {
        if golive_plan::time::parse_duration(d).is_err() {
            eprintln!("--for {d}: not a duration (e.g. 2m)");
            std::process::exit(2);
        }
        runs = 1;
    }
    block_on_big_stack("rollback_bench", move || {
        bench(via, runs, hold, fault_after)
    });
}

async fn bench(via: Via, runs: usize, hold: Option<String>, fault_after: Duration) {
    let rule = match &hold {
        Some(d) => format!("error_rate > 0.05 for {d}"),
        None => "error_rate > 0.05".to_string(),
    };
    let (proxy, actuator) = match via {
        Via::Haproxy => ("HAProxy", "HAProxy 2.6 weights on the admin socket"),
        Via::Nginx => (
            "nginx",
            "nginx 1.22 upstream file + `nginx -t && nginx -s reload`",
        ),
    };
    println!(
        "golive detection-to-rollback: {actuator}, Prometheus scraping every 1s, \
         analysis every 1s, rule `{rule}` on a 5s rate window; 200 req/s through {proxy}; \
         v2 answers 20% 500s from {} the 25% step",
        if fault_after.is_zero() {
            "the start of".to_string()
        } else {
            format!("{} into", golive_plan::time::format_duration(fault_after))
        }
    );
    let mut measured = Vec::new();
    for i in 1..=runs {
        let m = once(via, &rule, hold.is_some(), fault_after).await;
        println!(
            "  run {i}: {:.2} s fault → every new request on v1 (rollback decided after {}; {} requests answered 500 by v2; {} without an answer)",
            m.to_stable.as_secs_f64(),
            m.to_decision
                .map_or("?".into(), |d| format!("{:.2} s", d.as_secs_f64())),
            m.failed,
            m.unanswered
        );
        measured.push(m);
    }
    let mut times: Vec<Duration> = measured.iter().map(|m| m.to_stable).collect();
    times.sort();
    let median = if times.len() % 2 == 1 {
        times[times.len() / 2]
    } else {
        (times[times.len() / 2 - 1] + times[times.len() / 2]) / 2
    };
    let each: Vec<String> = measured
        .iter()
        .map(|m| format!("{:.2}", m.to_stable.as_secs_f64()))
        .collect();
    println!(
        "  median {:.2} s of {} run(s) [{} s]{}",
        median.as_secs_f64(),
        times.len(),
        each.join(", "),
        if hold.is_none() {
            "; target ≤ 3 s (scrape interval 1 s + 2 s)"
        } else {
            ""
        }
    );
    println!(
        "Flagger, documented defaults (not measured): analysis `interval: 1m` (its default, 60s) \
         and `threshold: 5` failed checks (its tutorials' value) roll back at the 5th failing check, \
         one a minute, the first within a minute of the fault (its `request-success-rate` \
         check has a 1m range): ≈ 4–5 min, i.e. ≈ 5 min."
    );
}

/// One run on fresh parts.
async fn once(via: Via, rule: &str, long: bool, fault_after: Duration) -> Measured {
    let mut rig = Rig::start_via(via).await;
    let plan = rig.plan(&PlanSpec {
        name: "rollback-bench",
        steps: &[(5, "3s"), (25, "10m"), (50, "3s"), (100, "3s")],
        metrics: &[("error_rate", ERROR_RATE)],
        rules: &[rule],
        judges: &[],
    });
    let fault = Inject::CanaryErrors {
        at_weight: 25,
        after: fault_after,
        error_rate: 0.2,
    };
    let deadline = Duration::from_secs(if long { 600 } else { 120 });
    let run = rig
        .run(&plan, fault, Duration::from_millis(1500), deadline)
        .await;
    assert_eq!(run.status, RunStatus::RolledBack, "{}", run.journal());
    assert_eq!(run.canary_weights(), [5, 25, 0], "{}", run.journal());
    let fault_at = run.fault_at.expect("the fault was injected");
    let back = run
        .report
        .first_time_all_stable_after(fault_at)
        .unwrap_or_else(|| panic!("v2 still answered at the end\n{}", run.journal()));
    let m = Measured {
        to_stable: back.saturating_sub(fault_at),
        to_decision: run.decided.map(|d| d.saturating_sub(fault_at)),
        failed: run.report.totals.errors.http_5xx_v2,
        unanswered: {
            let e = run.report.totals.errors;
            e.connect + e.timeout + e.other
        },
    };
    rig.shutdown().await;
    m
}
