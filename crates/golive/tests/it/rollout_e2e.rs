//! Progressive rollouts end to end on real parts: the engine in process on
//! a SQLite journal, moving traffic with HAProxy's runtime API (HAProxy
//! 2.6, the Debian package) between the two demo services, judged from a
//! real Prometheus scraping both every second, while the demo's load
//! generator sends 200 requests/s through HAProxy and records which version
//! answered each one. The healthy canary also runs through nginx (1.22,
//! the Debian package): golive rewrites its upstream file and reloads it at
//! each step.
//!
//! Each test starts and stops its own services, proxy and Prometheus on
//! free 127.0.0.1 ports in a temporary directory (see `e2e/mod.rs`). The
//! tests run one at a time (they share two cores). Nothing asserts on
//! speed: deadlines are generous and only catch a run that never ends; the
//! times printed are for reading, `bench/rollback.sh` measures.
//!
//! Each test drives its runtime from a thread with a 32 MiB stack
//! (`e2e::block_on_big_stack`): in debug builds, executing a rollout item
//! needs more than the 2 MiB of a test thread.

use std::time::{Duration, Instant};

use golive_demo::BUCKET_WIDTH;
use golive_store::RunStatus;

use crate::e2e::{
    ERROR_RATE, Finished, Inject, P95_LATENCY, PlanSpec, Rig, Via, block_on_big_stack,
};

/// One test at a time: each runs a proxy, Prometheus and 200 requests/s.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Longest a run may take before the test gives up on it.
const DEADLINE: Duration = Duration::from_secs(90);

/// Largest gap, in percentage points, between a step's weight and v2's
/// share of the requests sent during it. HAProxy's and nginx's weighted
/// round robins are exact over a cycle (nginx's per worker); the margin
/// covers the step edges.
const SHARE_TOLERANCE: f64 = 8.0;

/// Requests sent this close after a weight was seen in the journal, or
/// this close before the next one, are left out of the step's share.
/// Through nginx the weight is journaled once `nginx -s reload` has
/// signalled the master; the new workers take over within this margin.
const EDGE_AFTER: Duration = Duration::from_millis(400);
const EDGE_BEFORE: Duration = Duration::from_millis(200);

/// The decisions of the rollback tree, one line each.
fn decisions(run: &Finished) -> Vec<String> {
    run.events
        .iter()
        .filter(|e| e.kind == "rollout.decision")
        .map(|e| e.data.to_string())
        .collect()
}

/// v2's share (percent) of the requests sent during each step, checked
/// against the step's weight; prints the table.
fn check_shares(run: &Finished) {
    for (i, w) in run.weights.iter().enumerate() {
        let from = w.seen + EDGE_AFTER;
        let to = run
            .weights
            .get(i + 1)
            .map_or(run.ended, |next| next.seen)
            .saturating_sub(EDGE_BEFORE);
        let (v1, v2) = run.served_between(from, to);
        let n = v1 + v2;
        assert!(
            n >= 100,
            "step {i} (weight {}): only {n} requests between {from:?} and {to:?}",
            w.canary
        );
        let share = 100.0 * v2 as f64 / n as f64;
        println!(
            "  weight {:>3}: v2 served {share:5.1}% of {n} requests ({:.1}s–{:.1}s)",
            w.canary,
            from.as_secs_f64(),
            to.as_secs_f64()
        );
        match w.canary {
            0 => assert_eq!(v2, 0, "weight 0, yet v2 answered {v2} of {n}"),
            100 => assert_eq!(v1, 0, "weight 100, yet v1 answered {v1} of {n}"),
            weight => assert!(
                (share - f64::from(weight)).abs() <= SHARE_TOLERANCE,
                "weight {weight}: v2 served {share:.1}% of {n}"
            ),
        }
    }
}

fn canary_spec<'a>(
    name: &'a str,
    steps: &'a [(u8, &'a str)],
    metrics: &'a [(&'a str, &'a str)],
    rules: &'a [&'a str],
    judges: &'a [&'a str],
) -> PlanSpec<'a> {
    PlanSpec {
        name,
        steps,
        metrics,
        rules,
        judges,
    }
}

#[test]
fn healthy_canary_goes_to_100_through_haproxy_without_a_failed_request() {
    block_on_big_stack("healthy", healthy);
}

async fn healthy() {
    let _one_at_a_time = SERIAL.lock().await;
    let started = Instant::now();
    let mut rig = Rig::start().await;
    let plan = rig.plan(&canary_spec(
        "e2e-healthy",
        &[(5, "3s"), (25, "3s"), (50, "3s"), (100, "3s")],
        &[("error_rate", ERROR_RATE)],
        &["error_rate > 0.05"],
        &[],
    ));
    let run = rig
        .run(&plan, Inject::Nothing, Duration::from_secs(1), DEADLINE)
        .await;
    println!("healthy canary: run {} {}", run.run, run.status);

    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.journal());
    assert_eq!(run.canary_weights(), [5, 25, 50, 100], "{}", run.journal());
    let stable: Vec<u8> = run.weights.iter().map(|w| w.stable).collect();
    assert_eq!(stable, [95, 75, 50, 0]);
    assert_eq!(
        rig.haproxy_weights().await,
        (0, 100),
        "HAProxy's (v1, v2) weights at the end"
    );
    assert!(decisions(&run).is_empty(), "{:?}", decisions(&run));
    // Prometheus fed the analysis: the canary's error rate was read, and 0.
    let read: Vec<f64> = run
        .evaluations()
        .iter()
        .filter_map(|e| e["values"]["error_rate"]["canary"].as_f64())
        .collect();
    assert!(read.len() >= 4, "{}", run.journal());
    assert!(read.iter().all(|x| *x == 0.0), "{read:?}");

    check_shares(&run);
    // After the run: every request on v2.
    let (v1, v2) = run.served_between(run.ended + EDGE_AFTER, run.report.elapsed);
    assert!(v1 == 0 && v2 > 0, "after the run: v1 {v1}, v2 {v2}");

    let totals = &run.report.totals;
    println!(
        "  load: {} requests, v1 {}, v2 {}, failures {:?}",
        totals.requests(),
        totals.v1,
        totals.v2,
        totals.errors
    );
    assert_eq!(
        totals.errors.total(),
        0,
        "failed requests: {:?}",
        totals.errors
    );
    assert_eq!(totals.unknown, 0, "answers from neither version");
    assert_eq!(totals.requests(), totals.v1 + totals.v2);
    rig.shutdown().await;
    println!("healthy canary test took {:?}", started.elapsed());
}

/// Requests through nginx that may time out (3 s) although nothing should:
/// a reload does not hold requests, so more than this is a fault.
const NGINX_TIMEOUTS_ALLOWED: u64 = 3;

#[test]
fn healthy_canary_goes_to_100_through_nginx_reloads_without_a_5xx() {
    block_on_big_stack("healthy_nginx", healthy_nginx);
}

/// The healthy canary of the HAProxy test through nginx: each step
/// rewrites the upstream file and runs `nginx -t && nginx -s reload`. A
/// reload retires the old workers, which close their idle keep-alive
/// connections; a request the load generator sends on one just then fails
/// at the connection level (reqwest resends only a request it had not
/// written yet). Those are counted and printed, not forbidden; a 5xx, a
/// non-2xx or an answer from neither version is.
async fn healthy_nginx() {
    let _one_at_a_time = SERIAL.lock().await;
    let started = Instant::now();
    let mut rig = Rig::start_via(Via::Nginx).await;
    let plan = rig.plan(&canary_spec(
        "e2e-healthy-nginx",
        &[(5, "3s"), (25, "3s"), (50, "3s"), (100, "3s")],
        &[("error_rate", ERROR_RATE)],
        &["error_rate > 0.05"],
        &[],
    ));
    let run = rig
        .run(&plan, Inject::Nothing, Duration::from_secs(1), DEADLINE)
        .await;
    println!(
        "healthy canary through nginx: run {} {}",
        run.run, run.status
    );

    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.journal());
    assert_eq!(run.canary_weights(), [5, 25, 50, 100], "{}", run.journal());
    let stable: Vec<u8> = run.weights.iter().map(|w| w.stable).collect();
    assert_eq!(stable, [95, 75, 50, 0]);
    // Each weight was written to the upstream file and reloaded.
    let reloads: Vec<u64> = run
        .events
        .iter()
        .filter(|e| e.kind == "rollout.weight")
        .map(|e| {
            let detail = &e.data["detail"];
            assert_eq!(detail["backend"], "nginx", "{}", e.data);
            assert_eq!(detail["reload"]["exit_code"], 0, "{}", e.data);
            detail["reload"]["duration_ms"].as_u64().unwrap_or(u64::MAX)
        })
        .collect();
    println!("  reload commands took {reloads:?} ms");
    assert_eq!(reloads.len(), 4, "{}", run.journal());
    // The file at the end: v2 at full weight, v1 out of the rotation.
    let upstream = rig.nginx_upstream();
    let (v1_addr, v2_addr) = (rig.demo.stable.addr(), rig.demo.canary.addr());
    assert!(
        upstream.contains(&format!("server {v2_addr} weight=100;"))
            && upstream.contains(&format!("server {v1_addr} down;")),
        "the upstream file at the end:\n{upstream}"
    );
    assert!(decisions(&run).is_empty(), "{:?}", decisions(&run));
    let read: Vec<f64> = run
        .evaluations()
        .iter()
        .filter_map(|e| e["values"]["error_rate"]["canary"].as_f64())
        .collect();
    assert!(read.len() >= 4, "{}", run.journal());
    assert!(read.iter().all(|x| *x == 0.0), "{read:?}");

    check_shares(&run);
    let (v1, v2) = run.served_between(run.ended + EDGE_AFTER, run.report.elapsed);
    assert!(v1 == 0 && v2 > 0, "after the run: v1 {v1}, v2 {v2}");

    let totals = &run.report.totals;
    let errors = totals.errors;
    println!(
        "  load: {} requests, v1 {}, v2 {}, failures {errors:?}",
        totals.requests(),
        totals.v1,
        totals.v2
    );
    println!(
        "  connection-level errors across {} reloads: {} (reset/closed {}, connect {}), timeouts {}",
        reloads.len(),
        errors.other + errors.connect,
        errors.other,
        errors.connect,
        errors.timeout
    );
    // No answer but a 2xx from v1 or v2.
    assert_eq!(errors.http_5xx(), 0, "5xx answers: {errors:?}");
    assert_eq!(errors.http_other, 0, "non-2xx answers: {errors:?}");
    assert_eq!(totals.unknown, 0, "answers from neither version");
    assert!(
        errors.timeout <= NGINX_TIMEOUTS_ALLOWED,
        "{} requests timed out: {errors:?}",
        errors.timeout
    );
    // What failed, failed at the connection, and rarely.
    assert_eq!(
        errors.total(),
        errors.other + errors.connect + errors.timeout,
        "{errors:?}"
    );
    assert!(
        (errors.total() as f64) < 0.01 * totals.requests() as f64,
        "{errors:?} of {} requests",
        totals.requests()
    );
    let error_log = rig.nginx_error_log();
    assert!(
        !error_log.contains("[emerg]") && !error_log.contains("[alert]"),
        "{error_log}"
    );
    assert_eq!(
        error_log.matches("(SIGHUP) received").count(),
        reloads.len(),
        "nginx's error log:\n{error_log}"
    );
    rig.shutdown().await;
    println!(
        "healthy canary through nginx test took {:?}",
        started.elapsed()
    );
}

#[test]
fn canary_erroring_at_25_percent_is_rolled_back_to_v1() {
    block_on_big_stack("faulty", faulty);
}

async fn faulty() {
    let _one_at_a_time = SERIAL.lock().await;
    let started = Instant::now();
    let mut rig = Rig::start().await;
    let plan = rig.plan(&canary_spec(
        "e2e-faulty",
        &[(5, "3s"), (25, "30s"), (50, "3s"), (100, "3s")],
        &[("error_rate", ERROR_RATE)],
        &["error_rate > 0.05"],
        &[],
    ));
    let fault = Inject::CanaryErrors {
        at_weight: 25,
        after: Duration::ZERO,
        error_rate: 0.2,
    };
    let run = rig
        .run(&plan, fault, Duration::from_millis(1500), DEADLINE)
        .await;
    println!("faulty canary: run {} {}", run.run, run.status);

    assert_eq!(run.status, RunStatus::RolledBack, "{}", run.journal());
    assert_eq!(run.canary_weights(), [5, 25, 0], "{}", run.journal());
    assert_eq!(run.weights.last().map(|w| w.stable), Some(100));
    assert_eq!(
        rig.haproxy_weights().await,
        (100, 0),
        "HAProxy's (v1, v2) weights at the end"
    );
    let decided = decisions(&run);
    assert!(
        decided
            .iter()
            .any(|d| d.contains("rollback") && d.contains("error_rate > 0.05")),
        "{decided:?}"
    );
    // The rollback items ran.
    assert!(
        run.events
            .iter()
            .any(|e| e.item_id.as_deref() == Some("announce-rollback")),
        "{}",
        run.journal()
    );

    let fault_at = run.fault_at.expect("the fault was injected");
    let back_in_journal = run.weights.last().expect("a weight").seen;
    let back = run
        .report
        .first_time_all_stable_after(fault_at)
        .unwrap_or_else(|| panic!("v2 still answered after the rollback\n{}", run.journal()));
    println!(
        "  fault at {:.2}s; rollback journaled (seen) at {:.2}s; every request on v1 from {:.2}s: {:.2}s after the fault",
        fault_at.as_secs_f64(),
        back_in_journal.as_secs_f64(),
        back.as_secs_f64(),
        back.saturating_sub(fault_at).as_secs_f64()
    );
    // HAProxy moved the traffic when the journal says it did (the first
    // all-v1 bucket starts before the watcher saw the event, or at most a
    // generous second after), and the load went on long enough after.
    assert!(
        back <= back_in_journal + Duration::from_secs(1),
        "all on v1 only from {back:?}, the rollback was journaled at {back_in_journal:?}"
    );
    let (v1, v2) = run.served_between(back, run.report.elapsed);
    assert!(v2 == 0 && v1 >= 100, "after the rollback: v1 {v1}, v2 {v2}");

    // No request failed but v2's injected 500s, and those only after the
    // fault.
    let errors = run.report.totals.errors;
    println!(
        "  load: {} requests, v1 {}, v2 {}, failures {errors:?}",
        run.report.totals.requests(),
        run.report.totals.v1,
        run.report.totals.v2
    );
    assert!(errors.http_5xx_v2 > 0, "the fault showed: {errors:?}");
    assert_eq!(
        errors.total() - errors.http_5xx_v2,
        0,
        "failures besides v2's injected 500s: {errors:?}"
    );
    assert_eq!(run.report.totals.unknown, 0);
    let early: Vec<_> = run
        .report
        .buckets
        .iter()
        .filter(|b| b.counts.errors.http_5xx_v2 > 0 && b.start + BUCKET_WIDTH < fault_at)
        .map(|b| b.start)
        .collect();
    assert!(
        early.is_empty(),
        "v2 answered 500 before the fault: {early:?}"
    );
    rig.shutdown().await;
    println!("faulty canary test took {:?}", started.elapsed());
}

/// The latency spike on both versions: the canary's p95 over 5 s goes from
/// ~5 ms (the histogram's first bucket) to ~0.49 s, and so does the
/// stable's.
const SPIKE: Inject = Inject::LatencyOnBoth {
    at_weight: 25,
    latency_ms: 300,
};

#[test]
fn latency_spike_on_both_versions_passes_the_baseline_judge() {
    block_on_big_stack("spike_judge", spike_judge);
}

async fn spike_judge() {
    let _one_at_a_time = SERIAL.lock().await;
    let started = Instant::now();
    let mut rig = Rig::start().await;
    // Steps after the spike long enough for the judge to have its five
    // values a side and judge.
    let plan = rig.plan(&canary_spec(
        "e2e-spike-judge",
        &[(5, "2s"), (25, "8s"), (50, "8s"), (100, "2s")],
        &[("p95_latency", P95_LATENCY)],
        &[],
        &["{metric: p95_latency, fail_when: increase, confidence: 0.95, tolerance: 0.2}"],
    ));
    let run = rig.run(&plan, SPIKE, Duration::ZERO, DEADLINE).await;
    println!("spike, judge: run {} {}", run.run, run.status);

    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.journal());
    assert_eq!(run.canary_weights(), [5, 25, 50, 100], "{}", run.journal());
    assert_eq!(rig.haproxy_weights().await, (0, 100));
    assert!(run.fault_at.is_some());
    // The judge saw the spike on both sides and passed the canary.
    let judged: Vec<(f64, f64, f64)> = run
        .evaluations()
        .iter()
        .filter(|e| e["judges"][0]["verdict"] == "pass")
        .filter_map(|e| {
            let p95 = &e["values"]["p95_latency"];
            Some((
                p95["stable"].as_f64()?,
                p95["canary"].as_f64()?,
                e["judges"][0]["p_value"].as_f64()?,
            ))
        })
        .filter(|(stable, canary, _)| *stable > 0.2 && *canary > 0.2)
        .collect();
    println!("  judged during the spike (stable p95, canary p95, p): {judged:?}");
    assert!(judged.len() >= 3, "{}", run.journal());
    assert!(decisions(&run).is_empty(), "{:?}", decisions(&run));
    assert_eq!(run.report.totals.errors.total(), 0);
    rig.shutdown().await;
    println!("spike/judge test took {:?}", started.elapsed());
}

#[test]
fn latency_spike_on_both_versions_fails_a_plain_threshold() {
    block_on_big_stack("spike_threshold", spike_threshold);
}

async fn spike_threshold() {
    let _one_at_a_time = SERIAL.lock().await;
    let started = Instant::now();
    let mut rig = Rig::start().await;
    let plan = rig.plan(&canary_spec(
        "e2e-spike-threshold",
        &[(5, "2s"), (25, "30s"), (50, "2s"), (100, "2s")],
        &[("p95_latency", P95_LATENCY)],
        &["p95_latency > 0.2"],
        &[],
    ));
    let run = rig.run(&plan, SPIKE, Duration::ZERO, DEADLINE).await;
    println!("spike, threshold: run {} {}", run.run, run.status);

    assert_eq!(run.status, RunStatus::RolledBack, "{}", run.journal());
    assert_eq!(run.canary_weights(), [5, 25, 0], "{}", run.journal());
    assert_eq!(rig.haproxy_weights().await, (100, 0));
    let decided = decisions(&run);
    assert!(
        decided.iter().any(|d| d.contains("p95_latency > 0.2")),
        "{decided:?}"
    );
    assert_eq!(run.report.totals.errors.total(), 0);
    rig.shutdown().await;
    println!("spike/threshold test took {:?}", started.elapsed());
}

// ───────────────────────── decision scenarios ─────────────────────────

/// The plan of docs/rollout.md, run unchanged by every scenario.
const DOCS_PLAN: &str = include_str!("../../../../docs/examples/canary-haproxy-prometheus.yaml");

/// Latency both versions have in every scenario (ms): with ±20% jitter and
/// a few ms of overhead it stays inside the demo's (25, 50] ms histogram
/// bucket, and +30% moves the canary's p95 into the next one. (A
/// histogram's quantile is only as fine as its buckets.)
const BASE_LATENCY_MS: u64 = 35;

/// What a scenario should end with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Promoted,
    RolledBack,
    /// Recorded, not asserted (a regression below the rules' threshold).
    Either,
}

/// One scenario: the load, each version's fault, what should happen.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    rate: u32,
    /// Extra error ratio of the canary, and of both versions.
    canary_errors: f64,
    global_errors: f64,
    /// Extra latency of the canary, as a share of the base latency.
    canary_slower: f64,
    expect: Expect,
}

const fn scenario(name: &'static str, rate: u32, canary_errors: f64, expect: Expect) -> Scenario {
    Scenario {
        name,
        rate,
        canary_errors,
        global_errors: 0.0,
        canary_slower: 0.0,
        expect,
    }
}

const SCENARIOS: [Scenario; 8] = [
    scenario("healthy", 200, 0.0, Expect::Promoted),
    scenario("+2% errors", 200, 0.02, Expect::Either),
    scenario("+5% errors", 200, 0.05, Expect::RolledBack),
    scenario("+12% errors", 200, 0.12, Expect::RolledBack),
    Scenario {
        canary_slower: 0.3,
        ..scenario("+30% latency", 200, 0.0, Expect::RolledBack)
    },
    Scenario {
        global_errors: 0.08,
        ..scenario("8% errors on both", 200, 0.0, Expect::Promoted)
    },
    scenario("5 req/s healthy", 5, 0.0, Expect::Promoted),
    scenario("5 req/s +12% errors", 5, 0.12, Expect::RolledBack),
];

/// How a scenario went.
struct Outcome {
    scenario: Scenario,
    finished: Finished,
    /// From the first weight to the decision (the weight 0 of a rollback,
    /// or the weight 100 of a promotion).
    to_decision: Duration,
    rolled_back: bool,
}

fn docs_vars(rig: &Rig) -> Vec<(String, String)> {
    vec![
        ("HAPROXY_SOCKET".into(), rig.haproxy_socket().into()),
        ("PROMETHEUS_URL".into(), rig.prometheus_url.clone()),
    ]
}

fn set_faults(rig: &Rig, s: &Scenario, canary_extra: f64) {
    let base = golive_demo::Fault {
        error_rate: s.global_errors,
        latency_ms: BASE_LATENCY_MS,
    };
    rig.demo.stable.set_fault(base);
    rig.demo.canary.set_fault(golive_demo::Fault {
        error_rate: s.global_errors + canary_extra,
        latency_ms: (BASE_LATENCY_MS as f64 * (1.0 + s.canary_slower)).round() as u64,
    });
}

async fn run_scenario(s: Scenario) -> Outcome {
    let mut rig = Rig::start_opts(Via::Haproxy, false).await;
    rig.rate = s.rate;
    set_faults(&rig, &s, s.canary_errors);
    let vars = docs_vars(&rig);
    let finished = rig
        .run_with(DOCS_PLAN, &vars, Inject::Nothing, Duration::ZERO, DEADLINE)
        .await;
    let first = finished.weights.first().map_or(Duration::ZERO, |w| w.seen);
    let rolled_back = finished.status != RunStatus::Succeeded;
    let decided = finished
        .weights
        .iter()
        .rev()
        .find(|w| w.canary == if rolled_back { 0 } else { 100 })
        .map_or(finished.ended, |w| w.seen);
    rig.shutdown().await;
    Outcome {
        scenario: s,
        to_decision: decided.saturating_sub(first),
        rolled_back,
        finished,
    }
}

/// Flagger's default on the same data: each evaluation is a check that
/// fails when the canary's success rate is below 99% (error rate above
/// 1%; the canary alone, no baseline), and the 5th failed check rolls back.
/// `(verdict, seconds from the first weight)`; "undecided" when golive's
/// run ended first.
fn flagger_default(run: &Finished) -> (&'static str, Option<f64>) {
    const THRESHOLD: u32 = 5;
    let first = run
        .events
        .iter()
        .find(|e| e.kind == "rollout.weight")
        .map(|e| e.at);
    let mut failed = 0;
    for e in run.events.iter().filter(|e| e.kind == "rollout.analysis") {
        let canary = e.data["evaluation"]["values"]["error_rate"]["canary"].as_f64();
        if canary.is_some_and(|v| v > 0.01) {
            failed += 1;
        }
        if failed >= THRESHOLD {
            let secs = first.map(|f| e.at.duration_since(f).as_secs_f64());
            return ("rolled back", secs);
        }
    }
    if run.status == RunStatus::Succeeded {
        ("promoted", None)
    } else {
        ("undecided", None)
    }
}

fn print_outcome(o: &Outcome) {
    let (flagger, flagger_at) = flagger_default(&o.finished);
    let why = o
        .finished
        .events
        .iter()
        .filter(|e| e.kind == "rollout.decision")
        .map(|e| {
            format!(
                "{} {}",
                e.data["level"]
                    .as_str()
                    .or(e.data["action"].as_str())
                    .unwrap_or("?"),
                e.data["action"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "scenario {:<22}| {:<12}| {:>5.1}s | flagger {:<12}| {} | weights {:?} decisions [{why}]",
        o.scenario.name,
        if o.rolled_back {
            "rolled back"
        } else {
            "promoted"
        },
        o.to_decision.as_secs_f64(),
        flagger,
        flagger_at.map_or("-".into(), |t| format!("{t:.1}s")),
        o.finished.canary_weights(),
    );
}

#[test]
fn the_docs_plan_promotes_healthy_and_shared_faults_and_rolls_back_regressions() {
    block_on_big_stack("scenarios", scenarios);
}

async fn scenarios() {
    let _one_at_a_time = SERIAL.lock().await;
    let started = Instant::now();
    // Three rigs at a time: each is two services, HAProxy, Prometheus and
    // its load; more would starve Prometheus's 1 s scrapes on two cores.
    let mut outcomes = Vec::new();
    for wave in SCENARIOS.chunks(3) {
        let pick = |i: usize| async move {
            match wave.get(i) {
                Some(s) => Some(run_scenario(*s).await),
                None => None,
            }
        };
        let (a, b, c) = tokio::join!(pick(0), pick(1), pick(2));
        let results: Vec<Outcome> = [a, b, c].into_iter().flatten().collect();
        for o in &results {
            print_outcome(o);
        }
        outcomes.extend(results);
    }
    for o in &outcomes {
        let s = &o.scenario;
        match s.expect {
            Expect::Promoted => {
                assert!(
                    !o.rolled_back,
                    "{}: rolled back\n{}",
                    s.name,
                    o.finished.journal()
                );
                assert_eq!(
                    o.finished.canary_weights(),
                    [25, 50, 100],
                    "{}\n{}",
                    s.name,
                    o.finished.journal()
                );
            }
            Expect::RolledBack => {
                assert!(
                    o.rolled_back,
                    "{}: promoted\n{}",
                    s.name,
                    o.finished.journal()
                );
                assert_eq!(
                    o.finished.canary_weights().last(),
                    Some(&0),
                    "{}\n{}",
                    s.name,
                    o.finished.journal()
                );
            }
            Expect::Either => {}
        }
        // Every rollback says why, and every automatic decision is golive's.
        for e in o
            .finished
            .events
            .iter()
            .filter(|e| e.kind == "rollout.decision")
        {
            assert!(e.data["why"].is_string(), "{}: {}", s.name, e.data);
            assert_eq!(e.data["by"], "golive", "{}: {}", s.name, e.data);
        }
        // The record: each step with both versions' values; a rollback
        // with the time to detect and to roll back.
        let result = o
            .finished
            .events
            .iter()
            .rfind(|e| e.kind == "item.finished" && e.item_id.as_deref() == Some("canary"))
            .map(|e| &e.data["result"])
            .expect("the rollout's result");
        let steps = result["steps"].as_array().expect("steps recorded");
        assert_eq!(
            steps.len(),
            o.finished.canary_weights().len() - usize::from(o.rolled_back)
        );
        for step in steps {
            for side in ["canary", "stable"] {
                assert!(
                    step["values"]["requests"][side].is_number(),
                    "{}: {step}",
                    s.name
                );
            }
        }
        if o.rolled_back {
            assert!(
                result["detected_after_step_start_s"].is_number(),
                "{result}"
            );
            assert!(
                result["rolled_back_after_detection_s"].is_number(),
                "{result}"
            );
        }
    }
    println!("scenarios: {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn the_docs_show_the_plan_the_scenarios_run() {
    let doc = include_str!("../../../../docs/rollout.md");
    let block = doc
        .split("## The plan\n\n```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/rollout.md has the plan");
    assert_eq!(block, DOCS_PLAN, "docs/rollout.md and docs/examples differ");
}

/// `(level, action)` of each decision of the rollback tree, in order.
fn level_actions(run: &Finished) -> Vec<(String, String)> {
    run.events
        .iter()
        .filter(|e| e.kind == "rollout.decision")
        .map(|e| {
            (
                e.data["level"].as_str().unwrap_or("").to_string(),
                e.data["action"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_paused_level_escalates_to_the_rollback_level() {
    block_on_big_stack("escalation", escalation);
}

async fn escalation() {
    let _one_at_a_time = SERIAL.lock().await;
    let mut rig = Rig::start_opts(Via::Haproxy, false).await;
    // +5 points: `failing` pauses; then +25: `critical` rolls back before
    // `failing`'s rollback-after runs out.
    set_faults(
        &rig,
        &scenario("escalation", 200, 0.0, Expect::RolledBack),
        0.05,
    );
    let vars = docs_vars(&rig);
    let run = rig
        .run_with(
            DOCS_PLAN,
            &vars,
            Inject::CanaryErrorsOnLevel {
                level: "failing",
                error_rate: 0.25,
            },
            Duration::ZERO,
            DEADLINE,
        )
        .await;
    let decisions = level_actions(&run);
    println!("escalation: {decisions:?}");
    let at = |level: &str| {
        decisions
            .iter()
            .position(|(l, a)| l == level && a == "escalate")
            .unwrap_or_else(|| panic!("no `{level}` in {decisions:?}\n{}", run.journal()))
    };
    assert!(at("failing") < at("critical"), "{decisions:?}");
    assert_eq!(run.status, RunStatus::RolledBack, "{}", run.journal());
    assert_eq!(run.canary_weights().last(), Some(&0));
    let rollback = run
        .events
        .iter()
        .rfind(|e| e.kind == "rollout.decision" && e.data["action"] == "rollback")
        .expect("a rollback decision");
    assert!(
        rollback.data["why"]
            .as_str()
            .is_some_and(|w| w.starts_with("critical: ")),
        "{}",
        rollback.data
    );
    assert_eq!(rig.haproxy_weights().await, (100, 0));
    rig.shutdown().await;
}

#[test]
fn rollback_while_paused_moves_traffic_to_stable() {
    block_on_big_stack("rollback-paused", rollback_while_paused);
}

async fn rollback_while_paused() {
    let _one_at_a_time = SERIAL.lock().await;
    let mut rig = Rig::start_opts(Via::Haproxy, false).await;
    set_faults(
        &rig,
        &scenario("paused", 200, 0.0, Expect::RolledBack),
        0.05,
    );
    // `failing` pauses and waits for a person (no rollback-after here).
    let plan = DOCS_PLAN.replace(
        "actions: [pause, {notify: war-room}, {rollback-after: 10s}]",
        "actions: [pause, {notify: war-room}]",
    );
    assert_ne!(plan, DOCS_PLAN);
    let vars = docs_vars(&rig);
    let run = rig
        .run_with(
            &plan,
            &vars,
            Inject::RollbackOnLevel { level: "failing" },
            Duration::ZERO,
            DEADLINE,
        )
        .await;
    let status = run.status_when_asked.clone().expect("status when paused");
    let paused = &status["awaiting"][0];
    assert_eq!(paused["kind"], "rollout", "{status:#}");
    assert_eq!(paused["awaiting"], "promote", "{status:#}");
    assert!(
        paused["why"]
            .as_str()
            .is_some_and(|w| w.contains("level `failing` holds")),
        "{status:#}"
    );
    let canary = status["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == "canary"))
        .expect("the rollout item");
    assert_eq!(canary["status"], "waiting", "{status:#}");
    assert_eq!(run.status, RunStatus::RolledBack, "{}", run.journal());
    assert_eq!(run.canary_weights().last(), Some(&0), "{}", run.journal());
    assert_eq!(rig.haproxy_weights().await, (100, 0));
    rig.shutdown().await;
}
