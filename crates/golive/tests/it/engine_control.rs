//! Controlling a run from outside, through the binary on SQLite:
//! `golive rollback` from a second process, SIGTERM/SIGINT stopping
//! `golive run` cleanly, and `--var`s kept with the run for `--resume`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use golive_store::{Event, Store};
use serde_json::Value;

use crate::util::await_text;

/// How long a test waits for a line in a log file.
const WAIT: Duration = Duration::from_secs(30);

fn golive(args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
    cmd.args(args)
        .arg("--db")
        .arg(dir.join("journal.db"))
        .current_dir(dir)
        .env_remove("GOLIVE_DATABASE_URL")
        .env("NO_COLOR", "1");
    cmd
}

fn output(args: &[&str], dir: &Path) -> Output {
    golive(args, dir).output().expect("golive runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Starts `golive run` in the background (stderr to a file).
fn start(args: &[&str], dir: &Path, log: &str) -> Child {
    let err = std::fs::File::create(dir.join(log)).expect("log");
    golive(args, dir)
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("golive run starts")
}

fn run_id(dir: &Path, log: &str) -> String {
    let text = await_text(&dir.join(log), " started", WAIT);
    text.split_whitespace()
        .find(|w| w.starts_with("r-") && w.len() == 10)
        .expect("run id")
        .to_string()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// Waits (up to 20 s) for the process to end; its exit code.
fn exit_code(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "golive did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(dir: &Path, run: &str) -> Value {
    let o = output(&["status", run, "--output", "json"], dir);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("JSON")
}

fn item_status(status: &Value, id: &str) -> String {
    status["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == id))
        .and_then(|i| i["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn events(dir: &Path, run: &str) -> Vec<Event> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = golive_store::open(&dir.join("journal.db").display().to_string())
            .await
            .expect("journal");
        let events = store
            .events_after(&run.parse().expect("run id"), 0, 1_000_000)
            .await
            .expect("events");
        store.close().await;
        events
    })
}

fn assert_gap_free(events: &[Event]) {
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<i64> = (1..=i64::try_from(seqs.len()).expect("len")).collect();
    assert_eq!(seqs, expected, "gap-free journal");
}

const ROLLBACK_PLAN: &str = r#"name: rb
phases:
  - title: go
    items:
      - id: a
        run: {command: 'echo a >> out.txt'}
      - id: t
        task: {}
      - id: b
        run: {command: 'echo b >> out.txt'}
rollback:
  items:
    - id: r1
      run: {command: 'echo r1 >> out.txt'}
    - id: r2
      run: {command: 'echo r2 >> out.txt'}
"#;

/// A run blocked on a task; `golive rollback` from a second process; the
/// engine skips the task, runs the rollback items and ends rolled-back, and
/// the journal and `golive status` say who asked and why.
#[test]
fn rollback_from_a_second_process() {
    let dir = scratch("engine-rollback-live");
    std::fs::write(dir.join("plan.yaml"), ROLLBACK_PLAN).expect("plan");
    let mut child = start(&["run", "plan.yaml"], &dir, "run.log");
    let run = run_id(&dir, "run.log");
    await_text(&dir.join("run.log"), "waiting", WAIT);

    let o = output(
        &[
            "rollback",
            &run,
            "--reason",
            "error rate up",
            "--by",
            "alice",
        ],
        &dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("at its next poll"), "{}", stderr(&o));
    assert_eq!(exit_code(&mut child), 1);

    let s = status(&dir, &run);
    assert_eq!(s["run"]["status"], "rolled-back", "{s}");
    assert_eq!(item_status(&s, "a"), "passed");
    assert_eq!(item_status(&s, "t"), "skipped");
    assert_eq!(item_status(&s, "b"), "pending");
    assert_eq!(item_status(&s, "r1"), "passed");
    assert_eq!(item_status(&s, "r2"), "passed");
    assert_eq!(s["rollback_requested"]["by"], "alice");
    assert_eq!(s["rollback_requested"]["reason"], "error rate up");
    let out = std::fs::read_to_string(dir.join("out.txt")).expect("out");
    assert_eq!(out, "a\nr1\nr2\n");

    let events = events(&dir, &run);
    assert_gap_free(&events);
    let requested = events
        .iter()
        .find(|e| e.kind == golive_engine::ROLLBACK_REQUESTED)
        .expect("run.rollback-requested");
    assert_eq!(requested.data["by"], "alice");
    assert_eq!(requested.data["reason"], "error rate up");

    let human = output(&["status", &run], &dir);
    let text = String::from_utf8_lossy(&human.stdout).into_owned();
    assert!(
        text.contains("rollback requested by alice") && text.contains("error rate up"),
        "{text}"
    );
    // The record says who asked for the rollback, and why.
    let report = output(&["report", &run, "--format", "json"], &dir);
    let report: Value = serde_json::from_slice(&report.stdout).expect("report json");
    let asked = report["rollback_events"]
        .as_array()
        .expect("rollback events")
        .iter()
        .find(|e| e["by"] == "alice")
        .unwrap_or_else(|| panic!("no rollback event by alice: {report:#}"));
    assert_eq!(asked["reason"], "error rate up");
    // A finished run cannot be rolled back again.
    let again = output(&["rollback", &run, "--reason", "x", "--by", "bob"], &dir);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
}

/// SIGINT while waiting for a person stops the run (exit 130) and lets go of
/// it; a rollback requested then is performed by `golive run --resume`.
#[test]
fn rollback_of_a_stopped_run_happens_on_resume() {
    let dir = scratch("engine-rollback-resume");
    std::fs::write(dir.join("plan.yaml"), ROLLBACK_PLAN).expect("plan");
    let mut child = start(&["run", "plan.yaml"], &dir, "run.log");
    let run = run_id(&dir, "run.log");
    await_text(&dir.join("run.log"), "waiting", WAIT);
    signal(&child, "INT");
    assert_eq!(exit_code(&mut child), 130);
    let s = status(&dir, &run);
    assert_eq!(s["run"]["status"], "paused", "{s}");
    assert!(s["run"]["lease_owner"].is_null(), "{s}");

    let o = output(
        &["rollback", &run, "--reason", "vendor outage", "--by", "bob"],
        &dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
    let o = output(&["run", "--resume", &run], &dir);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let s = status(&dir, &run);
    assert_eq!(s["run"]["status"], "rolled-back", "{s}");
    assert_eq!(item_status(&s, "t"), "waiting");
    assert_eq!(item_status(&s, "r2"), "passed");
    assert_eq!(s["rollback_requested"]["by"], "bob");
    assert_gap_free(&events(&dir, &run));
}

/// SIGTERM during a `sleep 30` item: the command is killed, the item marked
/// interrupted, the lease released, exit 143; `--resume` reruns the item
/// (`on_interrupt: rerun`) and completes the run with a gap-free journal.
#[test]
fn sigterm_stops_cleanly_and_resume_completes() {
    let dir = scratch("engine-sigterm");
    let plan = r#"name: term
phases:
  - title: go
    items:
      - id: s1
        run: {command: 'echo s1 >> out.txt'}
      - id: s2
        on_interrupt: rerun
        run: {command: 'echo s2 >> out.txt; if [ -f again ]; then exit 0; fi; touch again; sleep 30.25; echo late >> out.txt'}
      - id: s3
        run: {command: 'echo s3 >> out.txt'}
"#;
    std::fs::write(dir.join("plan.yaml"), plan).expect("plan");
    let mut child = start(&["run", "plan.yaml"], &dir, "run.log");
    let run = run_id(&dir, "run.log");
    await_text(&dir.join("out.txt"), "s2", WAIT);
    let stopped_at = Instant::now();
    signal(&child, "TERM");
    assert_eq!(exit_code(&mut child), 143);
    assert!(stopped_at.elapsed() < Duration::from_secs(10));
    let left = Command::new("pgrep")
        .args(["-f", "sleep 30.25"])
        .output()
        .expect("pgrep");
    assert!(
        !left.status.success(),
        "the command's `sleep` outlived golive: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    let log = std::fs::read_to_string(dir.join("run.log")).expect("log");
    assert!(log.contains("interrupted: s2"), "{log}");
    let s = status(&dir, &run);
    assert_eq!(item_status(&s, "s2"), "interrupted", "{s}");
    assert!(s["run"]["lease_owner"].is_null(), "{s}");

    let o = output(&["run", "--resume", &run], &dir);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = std::fs::read_to_string(dir.join("out.txt")).expect("out");
    assert_eq!(out, "s1\ns2\ns2\ns3\n", "the killed `sleep` never went on");
    let events = events(&dir, &run);
    assert_gap_free(&events);
    let interrupted = events
        .iter()
        .filter(|e| e.kind == golive_store::kind::ITEM_INTERRUPTED)
        .count();
    assert_eq!(interrupted, 1);
}

/// `--var`s are kept with the run, except a declared secret's; a `--var` the
/// plan does not declare reaches commands' environment.
#[test]
fn vars_are_kept_for_resume_and_undeclared_ones_reach_commands() {
    let dir = scratch("engine-vars");
    let plan = r#"name: vars
variables:
  WHO: nobody
secrets:
  TOKEN: env:VARS_TEST_TOKEN
phases:
  - title: go
    items:
      - id: a
        run: {command: 'echo "a $WHO $EXTRA ${#TOKEN}" >> out.txt'}
      - id: t
        task: {}
      - id: b
        run: {command: 'echo "b $WHO $EXTRA ${#TOKEN}" >> out.txt'}
"#;
    std::fs::write(dir.join("plan.yaml"), plan).expect("plan");
    let mut child = start(
        &[
            "run",
            "plan.yaml",
            "--var",
            "WHO=alice",
            "--var",
            "EXTRA=x-1",
            "--var",
            "TOKEN=tok-s3cr3t",
        ],
        &dir,
        "run.log",
    );
    let run = run_id(&dir, "run.log");
    await_text(&dir.join("run.log"), "waiting", WAIT);
    signal(&child, "TERM");
    assert_eq!(exit_code(&mut child), 143);
    let o = output(&["confirm", &run, "t", "--by", "carol"], &dir);
    assert!(o.status.success(), "{}", stderr(&o));

    // Without the secret, the resume cannot resolve it: it was not stored.
    let o = golive(&["run", "--resume", &run], &dir)
        .env_remove("VARS_TEST_TOKEN")
        .output()
        .expect("resume");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("TOKEN"), "{}", stderr(&o));
    let o = golive(&["run", "--resume", &run], &dir)
        .env("VARS_TEST_TOKEN", "abc")
        .output()
        .expect("resume");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = std::fs::read_to_string(dir.join("out.txt")).expect("out");
    assert_eq!(out, "a alice x-1 10\nb alice x-1 3\n");

    let events = events(&dir, &run);
    let stored = events
        .iter()
        .find(|e| e.kind == golive_engine::RUN_VARS)
        .expect("run.vars");
    assert_eq!(
        stored.data["vars"],
        serde_json::json!({ "WHO": "alice", "EXTRA": "x-1" })
    );
    assert_eq!(
        stored.data["secrets_not_stored"],
        serde_json::json!(["TOKEN"])
    );
    let mut journal = std::fs::read(dir.join("journal.db")).expect("db");
    journal.extend(std::fs::read(dir.join("journal.db-wal")).unwrap_or_default());
    let needle = b"tok-s3cr3t";
    assert!(
        !journal.windows(needle.len()).any(|w| w == needle),
        "the secret is in the journal"
    );
}
