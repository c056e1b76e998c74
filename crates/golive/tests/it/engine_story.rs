//! `golive run` end to end: every item kind — the binary blocks on a task
//! and an approval while a second process answers them, then a flag and a
//! rollout through that flag judged from live metrics — on SQLite and on
//! PostgreSQL; and
//! the refusals (`approve` by a non-member, an unknown item, resuming a
//! finished run) are clear, exit 2 and leave the journal untouched.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Journal, PgSchema, Running, Services};

/// Where a test's journal lives.
fn command(args: &[&str], dir: &Path, journal: &Journal) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        // Supervisor records of PostgreSQL runs go under the data directory.
        .env("XDG_DATA_HOME", dir.join("data"));
    journal.apply(&mut cmd);
    cmd
}

fn golive(args: &[&str], dir: &Path, journal: &Journal) -> Output {
    command(args, dir, journal).output().expect("golive runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const PLAN: &str = r#"name: story
roles:
  tech-lead: {members: [alice]}
  security: {members: [bob]}
  ops: {members: [carol, dave]}
variables:
  GREETING: hello
secrets:
  TOKEN: env:STORY_TOKEN
channels:
  log: {log: true}
phases:
  - title: Prepare
    items:
      - id: build
        run:
          command: 'echo "$GREETING token=$TOKEN"; echo to-stderr >&2'
      - id: db-up
        check:
          tcp: {address: 127.0.0.1:5432}
      - id: runbook
        owner: ops
        task: {evidence: required}
  - title: Go
    items:
      - id: go-no-go
        approval: {roles: [tech-lead, security, ops], min: 2}
      - id: pause
        wait: {duration: 1s}
      - id: tell
        notify: {channel: log, message: "going live, ${GREETING}"}
      - id: flag-on
        flag: {key: story-flag, enabled: true, percentage: 0}
      - id: shift
        rollout:
          strategy: canary
          traffic:
            flag: {key: story-flag}
          steps:
            - {weight: 50, pause: 2s}
            - {weight: 100}
          analysis:
            interval: 1s
            scrape:
              stable: ${STABLE_METRICS}
              canary: ${CANARY_METRICS}
            metrics:
              - name: error_rate
                # Errors per second: 0 without traffic (the story sends none),
                # so every evaluation has a verdict.
                expr: sum(rate(demo_http_requests_total{code="500"}[10s])) or vector(0)
            rules:
              - error_rate > 0.5
"#;

fn start(dir: &Path, journal: &Journal, args: &[&str]) -> Running {
    let mut cmd = command(args, dir, journal);
    cmd.env("STORY_TOKEN", "s3cret-token");
    Running::spawn(cmd, Duration::from_secs(30))
}

fn item<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == id))
        .unwrap_or_else(|| panic!("no item {id} in {status}"))
}

fn last_seq(dir: &Path, journal: &Journal, run: &str) -> i64 {
    let status = json(&golive(&["status", run, "--output", "json"], dir, journal));
    status["run"]["last_seq"].as_i64().expect("last_seq")
}

/// The whole story: a second process confirms and approves while `golive
/// run` waits; then the refusals.
fn story(dir: &Path, journal: &Journal) {
    std::fs::write(dir.join("plan.yaml"), PLAN).expect("plan");
    let services = Services::start();
    let mut args = vec!["run", "plan.yaml"];
    for v in &services.vars {
        args.extend(["--var", v.as_str()]);
    }
    let mut running = start(dir, journal, &args);
    let run = running.run_id();
    let run = run.as_str();
    running.wait_for("waiting     runbook (task)");

    let status = json(&golive(&["status", run, "--output", "json"], dir, journal));
    assert_eq!(item(&status, "build")["status"], "passed");
    assert_eq!(item(&status, "db-up")["status"], "passed");
    assert_eq!(item(&status, "runbook")["status"], "waiting");
    assert_eq!(status["phase"], "Prepare");
    assert_eq!(status["awaiting"][0]["item"], "runbook");
    assert_eq!(status["awaiting"][0]["who"], "ops (carol, dave)");

    // Evidence is required: refused, nothing written.
    let before = last_seq(dir, journal, run);
    let o = golive(&["confirm", run, "runbook", "--by", "carol"], dir, journal);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("requires evidence"), "{}", stderr(&o));
    assert_eq!(last_seq(dir, journal, run), before);

    std::fs::write(dir.join("evidence.txt"), "CHG-1234 approved").expect("evidence");
    let o = golive(
        &[
            "confirm",
            run,
            "runbook",
            "--by",
            "carol",
            "--evidence",
            "@evidence.txt",
        ],
        dir,
        journal,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    running.wait_for("waiting     go-no-go (approval)");

    // Refusals while the approval waits: exit 2, the journal unchanged.
    let before = last_seq(dir, journal, run);
    for (args, message) in [
        (
            vec!["approve", run, "go-no-go", "--as", "ops", "--by", "alice"],
            "`alice` is not a member of role `ops`",
        ),
        (
            vec![
                "approve", run, "go-no-go", "--as", "business", "--by", "erin",
            ],
            "does not ask role `business`",
        ),
        (
            vec![
                "approve",
                run,
                "no-such-item",
                "--as",
                "ops",
                "--by",
                "carol",
            ],
            "has no item `no-such-item`",
        ),
        (
            vec!["approve", run, "runbook", "--as", "ops", "--by", "carol"],
            "not an approval",
        ),
        (
            vec![
                "approve",
                "r-aaaaaaaa",
                "go-no-go",
                "--as",
                "ops",
                "--by",
                "carol",
            ],
            "no run r-aaaaaaaa",
        ),
    ] {
        let o = golive(&args, dir, journal);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(last_seq(dir, journal, run), before);
    let status = json(&golive(&["status", run, "--output", "json"], dir, journal));
    assert_eq!(status["awaiting"][0]["need"], 2);

    for (role, by) in [("ops", "dave"), ("security", "bob")] {
        let o = golive(
            &["approve", run, "go-no-go", "--as", role, "--by", by],
            dir,
            journal,
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let (code, lines) = running.finish();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("run {run} succeeded"))),
        "{}",
        lines.join("\n")
    );

    let status = json(&golive(&["status", run, "--output", "json"], dir, journal));
    assert_eq!(status["run"]["status"], "succeeded");
    for id in [
        "build", "db-up", "runbook", "go-no-go", "pause", "tell", "flag-on", "shift",
    ] {
        assert_eq!(item(&status, id)["status"], "passed", "{id}: {status}");
    }
    drop(services);
    // The rollout moved the flag's percentage to 100, audited as the engine.
    let flag = json(&golive(
        &["flags", "get", "story-flag", "--output", "json"],
        dir,
        journal,
    ));
    assert_eq!(flag[0]["definition"]["percentage"], 100, "{flag}");
    assert_eq!(flag[0]["version"], 3, "created, 50%, 100%: {flag}");
    let build = &item(&status, "build")["result"];
    assert_eq!(build["stdout"], "hello token=***\n", "secret redacted");
    assert_eq!(build["stderr"], "to-stderr\n");
    assert_eq!(build["exit_code"], 0);
    assert_eq!(
        item(&status, "runbook")["result"]["evidence"],
        "CHG-1234 approved"
    );
    assert_eq!(item(&status, "runbook")["result"]["confirmed_by"], "carol");
    let signatures = item(&status, "go-no-go")["result"]["signatures"]
        .as_array()
        .expect("signatures")
        .len();
    assert_eq!(signatures, 2);
    assert_eq!(item(&status, "tell")["result"]["delivered"], "log");
    assert_eq!(
        item(&status, "tell")["result"]["message"],
        "going live, hello"
    );
    assert!(status["awaiting"].as_array().is_some_and(|a| a.is_empty()));

    // A finished run: resuming it, or answering it, is refused; nothing written.
    let before = last_seq(dir, journal, run);
    let o = golive(&["run", "--resume", run], dir, journal);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already finished (succeeded)"),
        "{}",
        stderr(&o)
    );
    let o = golive(
        &[
            "approve",
            run,
            "go-no-go",
            "--as",
            "tech-lead",
            "--by",
            "alice",
        ],
        dir,
        journal,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(last_seq(dir, journal, run), before);

    let runs = json(&golive(&["runs", "--output", "json"], dir, journal));
    assert_eq!(runs[0]["id"], run);
    assert_eq!(runs[0]["status"], "succeeded");
}

#[test]
fn engine_story_on_sqlite() {
    let dir = scratch("engine-story-sqlite");
    let journal = Journal::Sqlite(dir.join("journal.db"));
    story(&dir, &journal);
}

#[test]
fn engine_story_on_postgres() {
    let dir = scratch("engine-story-postgres");
    let schema = PgSchema::create();
    let journal = Journal::Postgres(schema.url());
    story(&dir, &journal);
}

#[test]
fn a_failed_step_stops_the_run_and_rollback_runs_the_rollback_items() {
    let dir = scratch("engine-failure");
    let journal = Journal::Sqlite(dir.join("journal.db"));
    std::fs::write(
        dir.join("stop.yaml"),
        "name: stop\nphases:\n  - title: p\n    items:\n      - id: flaky\n        run: {command: 'echo try >> tries.txt; exit 3', retries: 2, backoff: 10ms}\n      - id: after\n        run: {command: 'true'}\n",
    )
    .expect("plan");
    let o = golive(&["run", "stop.yaml"], &dir, &journal);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("failed      flaky (run): exit code 3"),
        "{}",
        stderr(&o)
    );
    let tries = std::fs::read_to_string(dir.join("tries.txt")).expect("tries");
    assert_eq!(tries.lines().count(), 3, "1 attempt + 2 retries");
    let status = json(&golive(&["status", "--output", "json"], &dir, &journal));
    assert_eq!(status["run"]["status"], "failed");
    assert_eq!(item(&status, "flaky")["result"]["attempts"], 3);
    assert_eq!(item(&status, "after")["status"], "pending");

    std::fs::write(
        dir.join("rollback.yaml"),
        "name: rb\nphases:\n  - title: p\n    items:\n      - id: slow\n        run: {command: 'sleep 5', timeout: 300ms}\n        on_failure: rollback\n      - id: never\n        run: {command: 'true'}\nrollback:\n  items:\n    - id: undo\n      run: {command: 'echo undone'}\n",
    )
    .expect("plan");
    let started = Instant::now();
    let o = golive(&["run", "rollback.yaml"], &dir, &journal);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "timeout kills the command"
    );
    let status = json(&golive(&["status", "--output", "json"], &dir, &journal));
    assert_eq!(status["run"]["status"], "rolled-back");
    assert_eq!(item(&status, "slow")["result"]["timed_out"], true);
    assert_eq!(item(&status, "never")["status"], "pending");
    assert_eq!(item(&status, "undo")["status"], "passed");
}

/// Several golive processes on one PostgreSQL: while one drives a run,
/// another cannot; after the driver is killed (kill -9), two processes race
/// to resume and exactly one executes the run — at once, the dead holder
/// being a process of this host — reattaching to the killed process's
/// command instead of running it again.
#[test]
fn processes_sharing_postgres_never_drive_one_run_twice() {
    let dir = scratch("engine-postgres-race");
    let schema = PgSchema::create();
    let journal = Journal::Postgres(schema.url());
    std::fs::write(
        dir.join("plan.yaml"),
        "name: race\nphases:\n  - title: all\n    items:\n      - id: a\n        on_interrupt: rerun\n        run: {command: 'echo a >> out.txt; sleep 3'}\n      - id: b\n        run: {command: 'echo b >> out.txt'}\n",
    )
    .expect("plan");
    let lines = |dir: &Path| std::fs::read_to_string(dir.join("out.txt")).unwrap_or_default();

    let mut first = start(&dir, &journal, &["run", "plan.yaml", "--lease-ttl", "1s"]);
    let run = first.run_id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines(&dir).contains('a') {
        assert!(Instant::now() < deadline, "item a never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // While the first process drives the run, a second one is refused.
    let o = golive(
        &["run", "--resume", &run, "--lease-ttl", "1s"],
        &dir,
        &journal,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is being driven by"), "{}", stderr(&o));

    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    // Race two resumes at once: the dead process's lease need not expire.
    let racers: Vec<Child> = (0..2)
        .map(|_| {
            command(
                &["run", "--resume", &run, "--lease-ttl", "1s"],
                &dir,
                &journal,
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("golive starts")
        })
        .collect();
    let outcomes: Vec<Output> = racers
        .into_iter()
        .map(|c| c.wait_with_output().expect("golive ends"))
        .collect();
    let winners = outcomes
        .iter()
        .filter(|o| o.status.code() == Some(0))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| o.status.code() == Some(2) && stderr(o).contains("is being driven by"))
        .count();
    assert_eq!(
        (winners, refused),
        (1, 1),
        "{:?}",
        outcomes.iter().map(stderr).collect::<Vec<_>>()
    );
    // `a`'s command outlived the kill under its supervisor; the winner
    // waited for it and recorded its result: every command ran once.
    assert_eq!(lines(&dir), "a\nb\n");
    let status = json(&golive(
        &["status", &run, "--output", "json"],
        &dir,
        &journal,
    ));
    assert_eq!(status["run"]["status"], "succeeded", "{status:#}");
}
