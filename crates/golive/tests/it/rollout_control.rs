//! Rollouts through the binary: `golive demo` and `golive demo --fault`
//! as the README runs them, and a rollout steered by people
//! (`promote`, `pause`, `resume`, `abort`) that survives `kill -9` and
//! resumes with the weight it had set — never a silent jump.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{Running, Services, scratch};

fn golive(args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("GOLIVE_DATABASE_URL")
        .env_remove("GOLIVE_SERVER")
        .env_remove("GOLIVE_TOKEN")
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn golive_demo_goes_live_and_demo_fault_rolls_back_by_itself() {
    let dir = scratch("demo");
    let db = dir.join("demo.db");
    let out = golive(&["demo", "--db", db.to_str().expect("utf-8")], &dir)
        .output()
        .expect("golive demo");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for weight in [5, 25, 50, 100] {
        assert!(err.contains(&format!("canary {weight}%")), "{err}");
    }
    assert!(err.contains("succeeded"), "{err}");
    assert!(
        err.contains("watch window over: 0 incident(s), 0 still open"),
        "v2, serving everyone, stays healthy: {err}"
    );
    let record = String::from_utf8_lossy(&out.stdout);
    assert!(record.contains("# Go-live record: checkout-v2"), "{record}");
    // The rollout's record: a row a step with both versions' numbers, and
    // the traffic flag before and after.
    assert!(
        record.contains(
            "| step | canary weight | held | evaluations | error_rate (canary / stable) |"
        ),
        "{record}"
    );
    for weight in [5, 25, 50, 100] {
        assert!(record.contains(&format!(" | {weight}% | ")), "{record}");
    }
    assert!(
        record.contains("Flag `checkout-v2`: on at 0% before, on at 100% after"),
        "{record}"
    );

    let db = dir.join("fault.db");
    let out = golive(
        &["demo", "--fault", "--db", db.to_str().expect("utf-8")],
        &dir,
    )
    .output()
    .expect("golive demo --fault");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("v2 now answers 20%"), "{err}");
    assert!(err.contains("canary 0%, stable 100% (rollback)"), "{err}");
    assert!(err.contains("every user back on v1"), "{err}");
    assert!(err.contains("rolled-back"), "{err}");
    assert!(
        !err.contains("canary 50%"),
        "the rollout never went past 25%: {err}"
    );
    // The watch window after the rollback watches v1, which the demo
    // breaks in turn: the on-call is paged, the war room told, the demo
    // acknowledges, and the incident resolves once v1 is mended.
    let window = err
        .split("watch window: 20s")
        .nth(1)
        .unwrap_or_else(|| panic!("{err}"));
    let story = [
        "INC-1 opened [critical]: rule `error_rate > 5% for 1s` fires",
        "message to on-call via log: INC-1: release-manager (demo):",
        "INC-1 escalated: war room → war-room (everyone)",
        "INC-1 acknowledged by demo",
        "message to war-room via log: INC-1: resolved",
        "INC-1 resolved after",
        "watch window over: 1 incident(s), 0 still open",
    ];
    let mut rest = window;
    for line in story {
        let at = rest
            .find(line)
            .unwrap_or_else(|| panic!("`{line}` in order in: {window}"));
        rest = &rest[at + line.len()..];
    }
    // The record says when the fault was detected and who rolled back:
    // golive, not the worker process that held the run's lease.
    let record = String::from_utf8_lossy(&out.stdout);
    assert!(record.contains("| 2 | 25% | "), "{record}");
    assert!(record.contains("Detected "), "{record}");
    assert!(record.contains("traffic back on stable"), "{record}");
    let rollback = record
        .split("## Rollback")
        .nth(1)
        .expect("a Rollback section");
    assert!(
        rollback.contains("run.rollback-triggered by golive: `canary` failed"),
        "{rollback}"
    );
    assert!(!rollback.contains(" by vm:"), "{rollback}");
    let watched = record
        .split("## Watch window")
        .nth(1)
        .expect("a Watch window section");
    assert!(
        watched.contains("INC-1 — rule `error_rate > 5% for 1s` fired at"),
        "{watched}"
    );
    assert!(watched.contains("acknowledged by demo"), "{watched}");
}

const STEERED: &str = r#"
name: steered
phases:
  - title: Readiness
    items:
      - id: canary-health
        title: v2 answers its health check
        check:
          http: { url: "${CANARY_URL}/health" }
          expect: [status == 200]
  - title: Rollout
    items:
      - id: canary
        title: Move traffic to v2
        on_interrupt: rerun
        rollout:
          strategy: canary
          traffic:
            command: "echo $GOLIVE_WEIGHT >> weights.log"
          steps:
            - { weight: 10, pause: manual, checks: [canary-health] }
            - { weight: 50, pause: 10m }
            - { weight: 100 }
          analysis:
            interval: 1s
            scrape:
              stable: ${STABLE_METRICS}
              canary: ${CANARY_METRICS}
            metrics:
              - name: error_rate
                expr: sum(rate(demo_http_requests_total{code="500"}[10s])) / sum(rate(demo_http_requests_total[10s]))
            rules:
              - error_rate > 0.5
"#;

fn weights(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("weights.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn people_steer_a_rollout_and_a_crash_resumes_with_the_same_weight() {
    let dir = scratch("steered");
    std::fs::write(dir.join("plan.yaml"), STEERED).expect("plan");
    // The two versions, alive for the whole test.
    let services = Services::start();
    let vars = &services.vars;
    let mut args = vec!["run", "plan.yaml", "--db", "j.db", "--lease-ttl", "1s"];
    for v in vars {
        args.extend(["--var", v.as_str()]);
    }
    let mut run = Running::spawn(golive(&args, &dir), Duration::from_secs(60));
    let id = run.run_id();
    run.wait_for("canary 10%");
    run.wait_for("waiting     canary");
    let steer = |verb: &str, extra: &[&str]| {
        let mut a = vec![verb, id.as_str(), "--db", "j.db", "--by", "alice"];
        a.extend(extra);
        golive(&a, &dir).output().expect("steer")
    };
    let out = steer("promote", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run.wait_for("canary 50%");
    let out = steer("pause", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = steer("pause", &[]);
    assert_eq!(out.status.code(), Some(2), "already paused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already paused"));
    let out = steer("resume", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // kill -9 in the middle of the 50% step.
    run.kill9();
    assert_eq!(weights(&dir), ["10", "50"]);
    std::thread::sleep(Duration::from_millis(1200)); // the lease expires
    let mut resumed = Running::spawn(
        golive(
            &["run", "--resume", &id, "--db", "j.db", "--lease-ttl", "1s"],
            &dir,
        ),
        Duration::from_secs(60),
    );
    let line = resumed.wait_for("canary 50%");
    assert!(line.contains("resumed"), "{line}");
    assert_eq!(
        weights(&dir),
        ["10", "50", "50"],
        "the resumed rollout sets the journaled weight again, nothing else"
    );
    let out = steer("abort", &[]);
    assert_eq!(out.status.code(), Some(2), "abort needs a reason");
    let out = steer("abort", &["--reason", "seen enough"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, lines) = resumed.finish();
    assert_eq!(
        code,
        1,
        "an aborted rollout fails the run:\n{}",
        lines.join("\n")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("aborted by alice: seen enough")),
        "{}",
        lines.join("\n")
    );
    assert_eq!(
        weights(&dir),
        ["10", "50", "50", "0"],
        "one re-apply on resume, then 0 on abort; nothing else"
    );
    // The record shows each traffic change and decision, the step gate too.
    let out = golive(&["report", &id, "--db", "j.db"], &dir)
        .output()
        .expect("report");
    let md = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "traffic: canary 10%",
        "gate: step gate `canary-health`",
        "traffic: canary 50%, stable 50% (resumed",
        "aborted by alice: seen enough",
    ] {
        assert!(md.contains(needle), "`{needle}` missing from:\n{md}");
    }
    drop(services);
}

/// A rollout whose actuator is slow to set weight 0 while `slow` exists, so
/// that golive can be killed in the middle of a rollback.
const SLOW_ROLLBACK: &str = r#"
name: slow-rollback
phases:
  - title: Rollout
    items:
      - id: canary
        title: Move traffic to v2
        on_interrupt: rerun
        rollout:
          strategy: canary
          traffic:
            command: 'echo $GOLIVE_WEIGHT >> weights.log; if [ "$GOLIVE_WEIGHT" = 0 ] && [ -e slow ]; then sleep 4; fi'
          steps:
            - { weight: 25, pause: 10m }
            - { weight: 100 }
          analysis:
            interval: 1s
            scrape:
              stable: ${STABLE_METRICS}
              canary: ${CANARY_METRICS}
            metrics:
              - name: error_rate
                expr: sum(rate(demo_http_requests_total{code="500"}[10s])) / sum(rate(demo_http_requests_total[10s]))
            rules:
              - error_rate > 0.5
"#;

#[test]
fn a_crash_in_the_middle_of_a_rollback_finishes_it_on_resume() {
    let dir = scratch("slow-rollback");
    std::fs::write(dir.join("plan.yaml"), SLOW_ROLLBACK).expect("plan");
    std::fs::write(dir.join("slow"), "").expect("marker");
    let services = Services::start();
    let mut args = vec!["run", "plan.yaml", "--db", "j.db", "--lease-ttl", "1s"];
    for v in &services.vars {
        args.extend(["--var", v.as_str()]);
    }
    let mut run = Running::spawn(golive(&args, &dir), Duration::from_secs(60));
    let id = run.run_id();
    run.wait_for("canary 25%");
    let out = golive(
        &[
            "abort",
            &id,
            "--db",
            "j.db",
            "--by",
            "alice",
            "--reason",
            "bad canary",
        ],
        &dir,
    )
    .output()
    .expect("abort");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The rollback is decided and journaled; the actuator is setting 0.
    let deadline = Instant::now() + Duration::from_secs(30);
    while weights(&dir) != ["25", "0"] {
        assert!(
            Instant::now() < deadline,
            "no rollback: {:?}",
            weights(&dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    run.kill9();
    std::fs::remove_file(dir.join("slow")).expect("marker");
    // The lease holder is dead on this host: the resume may start at once.
    let resumed = Running::spawn(
        golive(
            &["run", "--resume", &id, "--db", "j.db", "--lease-ttl", "1s"],
            &dir,
        ),
        Duration::from_secs(60),
    );
    let (code, lines) = resumed.finish();
    assert_eq!(code, 1, "the rollout failed:\n{}", lines.join("\n"));
    assert_eq!(
        weights(&dir),
        ["25", "0", "0"],
        "the resume finished the rollback (0 again), and never set 25 again"
    );
    let out = golive(&["report", &id, "--db", "j.db"], &dir)
        .output()
        .expect("report");
    let md = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        md.matches("rollback: aborted by alice: bad canary").count(),
        1,
        "one rollback decision:\n{md}"
    );
    drop(services);
}
