//! `golive serve` as a process: tokens made with `golive token create`, a
//! run started through the API executing inside the server, SIGTERM in the
//! middle of a command, and a restarted server resuming the run without
//! losing or repeating a step; `golive flags --server` against it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use golive_store::{ItemStatus, RunStatus, Store};
use serde_json::{Value, json};

use crate::util::{PgSchema, Running, SERVE, scratch, serve_with};

fn golive(args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
    cmd.args(args)
        .arg("--db")
        .arg(dir.join("journal.db"))
        .current_dir(dir)
        .env_remove("GOLIVE_DATABASE_URL")
        .env_remove("GOLIVE_SERVER")
        .env_remove("GOLIVE_TOKEN")
        .env("NO_COLOR", "1");
    cmd
}

fn token(dir: &Path, name: &str, role: &str) -> String {
    crate::util::created_token(golive(
        &["token", "create", "--name", name, "--role", role],
        dir,
    ))
}

/// `golive serve` on a free port, letting operators start plans with
/// commands; its base URL.
fn serve(dir: &Path) -> (Running, String) {
    serve_with(golive(&SERVE, dir))
}

fn call(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = golive_runtime::api_client(Duration::from_secs(10)).expect("client");
        let url = format!("{base}{path}");
        golive_testkit::api_call(&client, method, &url, Some(token), body).await
    })
}

fn sigterm(server: &Running) {
    let pid = server.child.id().to_string();
    let ok = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(ok.success());
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const PLAN: &str = r#"
name: served
phases:
  - title: Deploy
    items:
      - id: one
        title: First
        run: { command: "echo one >> steps.log" }
      - id: two
        title: Slow second
        on_interrupt: rerun
        run: { command: "echo started >> attempts.log; sleep 3; echo two >> steps.log" }
      - id: three
        title: Third
        run: { command: "echo three >> steps.log" }
"#;

/// Starts [`PLAN`] on `served` and waits until item `two`'s command runs;
/// the server and the run.
fn run_until_two_starts(
    dir: &Path,
    operator: &str,
    (server, base): (Running, String),
) -> (Running, String) {
    let (s, v) = call(
        &base,
        operator,
        "POST",
        "/api/runs",
        Some(json!({"plan": PLAN})),
    );
    assert_eq!(s, 201, "{v}");
    let run = v["run"].as_str().expect("run id").to_string();
    wait_until("item two to start", || {
        std::fs::read_to_string(dir.join("attempts.log")).is_ok_and(|t| t.contains("started"))
    });
    (server, run)
}

/// Waits for [`PLAN`]'s run to succeed; checks that each step's work was
/// done once and that `two`'s command started `attempts` times; the
/// `server.*` audit actions.
fn succeeded(dir: &Path, base: &str, operator: &str, run: &str, attempts: usize) -> Vec<String> {
    wait_until("the run to succeed", || {
        let (_, v) = call(base, operator, "GET", &format!("/api/runs/{run}"), None);
        v["run"]["status"] == "succeeded"
    });
    let steps = std::fs::read_to_string(dir.join("steps.log")).expect("steps");
    assert_eq!(steps, "one\ntwo\nthree\n");
    let started = std::fs::read_to_string(dir.join("attempts.log")).expect("attempts");
    assert_eq!(started.lines().count(), attempts, "{started}");
    let (_, audit) = call(base, operator, "GET", "/api/audit?action=server.", None);
    audit
        .as_array()
        .expect("audit")
        .iter()
        .map(|e| e["action"].as_str().expect("action").to_string())
        .collect()
}

#[test]
fn sigterm_during_a_run_then_restart_loses_and_repeats_nothing() {
    let dir = scratch("serve-sigterm");
    let operator = token(&dir, "olga", "operator");
    let (server, run) = run_until_two_starts(&dir, &operator, serve(&dir));
    sigterm(&server);
    let (code, lines) = server.finish();
    assert_eq!(code, 0, "a SIGTERM is a clean stop:\n{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l.contains("stopped by the shutdown")),
        "{}",
        lines.join("\n")
    );
    // The journal says exactly where it stopped.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let id: golive_store::RunId = run.parse().expect("run id");
    let (status, items) = rt.block_on(async {
        let store = golive_store::open(&dir.join("journal.db").display().to_string())
            .await
            .expect("store");
        let run = store.get_run(&id).await.expect("run");
        let items = store.item_states(&id).await.expect("items");
        store.close().await;
        (run.summary.status, items)
    });
    assert_eq!(status, RunStatus::Paused);
    let by_id = |items: &[golive_store::ItemState], id: &str| {
        items
            .iter()
            .find(|i| i.item_id == id)
            .map(|i| i.status)
            .expect("item")
    };
    assert_eq!(by_id(&items, "one"), ItemStatus::Passed);
    assert_eq!(by_id(&items, "two"), ItemStatus::Interrupted);
    assert_eq!(by_id(&items, "three"), ItemStatus::Pending);

    // A new server resumes it: `two` again (rerun), `one` never again.
    let (mut server, base) = serve(&dir);
    server.wait_for(&format!("resuming runs stopped by a shutdown: {run}"));
    let actions = succeeded(&dir, &base, &operator, &run, 2);
    assert_eq!(actions, ["server.interrupted", "server.resumed"]);

    // `golive flags --server` acts through the API, as the token's name.
    let golive = |args: &[&str], dir: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
        cmd.args(args)
            .current_dir(dir)
            .env_remove("GOLIVE_DATABASE_URL");
        cmd
    };
    let out = golive(
        &[
            "flags",
            "set",
            "maintenance_mode",
            "--enable",
            "--percentage",
            "5",
            "--reason",
            "T-0",
            "--server",
            &base,
            "--token",
            &operator,
            "--output",
            "json",
        ],
        &dir,
    )
    .output()
    .expect("flags set");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown[0]["definition"]["percentage"], 5);
    assert_eq!(shown[0]["updated_by"], "olga");
    let out = golive(
        &[
            "flags",
            "set",
            "maintenance_mode",
            "--percentage",
            "500",
            "--server",
            &base,
            "--token",
            &operator,
        ],
        &dir,
    )
    .output()
    .expect("flags set");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("percentage") && err.contains("422"), "{err}");
    let out = golive(
        &[
            "flags",
            "list",
            "--server",
            &base,
            "--token",
            "glv_nope_nope",
        ],
        &dir,
    )
    .output()
    .expect("flags list");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    sigterm(&server);
    let (code, _) = server.finish();
    assert_eq!(code, 0);
}

/// A server killed with SIGKILL in the middle of a command: the next server
/// adopts the run at once (its lease's holder is a dead process of this
/// host), finds the command finished by its supervisor, and completes the
/// run without running any step twice.
#[test]
fn a_killed_servers_run_is_adopted_by_the_next_without_a_rerun() {
    let dir = scratch("serve-kill-9");
    let operator = token(&dir, "olga", "operator");
    let serve_60s = || {
        serve_with(golive(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--lease-ttl",
                "60s",
                "--allow-api-commands",
            ],
            &dir,
        ))
    };
    let (mut server, run) = run_until_two_starts(&dir, &operator, serve_60s());
    server.child.kill().expect("SIGKILL");
    let _ = server.finish();

    // A 60 s lease, yet the next server drives the run at once.
    let began = Instant::now();
    let (mut server, base) = serve_60s();
    server.wait_for(&format!("resuming runs whose driver died: {run}"));
    let actions = succeeded(&dir, &base, &operator, &run, 1);
    assert!(began.elapsed() < Duration::from_secs(35));
    assert_eq!(actions, ["server.adopted"]);
    sigterm(&server);
    let (code, _) = server.finish();
    assert_eq!(code, 0);
}

const ANSWERED: &str = r#"
name: answered
roles:
  security: { members: [sam] }
phases:
  - title: Prep
    items:
      - id: backup
        title: Take a backup
        task: { evidence: required }
      - id: signoff
        title: Security sign-off
        approval: { roles: [security] }
      - id: done
        title: Done
        run: { command: "true" }
"#;

#[test]
fn the_cli_acts_through_a_server() {
    let dir = scratch("serve-cli");
    std::fs::write(dir.join("plan.yaml"), ANSWERED).expect("plan");
    let olga = token(&dir, "olga", "operator");
    let sam = token(&dir, "sam", "security");
    let (mut server, base) = serve(&dir);
    let remote = |args: &[&str], tok: &str| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--server", base.as_str(), "--token", tok]);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
        cmd.args(&all)
            .current_dir(&dir)
            .env_remove("GOLIVE_DATABASE_URL");
        cmd
    };
    // `golive run --server` starts the run in the server and follows it.
    let mut run = Running::spawn(
        remote(&["run", "plan.yaml"], &olga),
        Duration::from_secs(30),
    );
    let line = run.wait_for("started in the server");
    let id = line.split_whitespace().nth(1).expect("run id").to_string();
    run.wait_for("waiting     backup");
    let mut follow = Running::spawn(
        remote(&["status", &id, "--follow"], &olga),
        Duration::from_secs(30),
    );
    let out = remote(&["status", &id, "--output", "json"], &olga)
        .output()
        .expect("status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["awaiting"][0]["item"], "backup", "{doc}");
    // Answers go through the API, recorded as the token's holder.
    let out = remote(&["confirm", &id, "backup"], &olga)
        .output()
        .expect("confirm");
    assert_eq!(out.status.code(), Some(2), "evidence is required");
    assert!(String::from_utf8_lossy(&out.stderr).contains("requires evidence"));
    let out = remote(&["confirm", &id, "backup", "--evidence", "s3://b/1"], &olga)
        .output()
        .expect("confirm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("by olga"));
    run.wait_for("waiting     signoff");
    let out = remote(&["approve", &id, "signoff", "--as", "security"], &olga)
        .output()
        .expect("approve");
    assert_eq!(
        out.status.code(),
        Some(2),
        "an operator token cannot sign for security"
    );
    let out = remote(&["approve", &id, "signoff", "--as", "security"], &sam)
        .output()
        .expect("approve");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, lines) = run.finish();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l.contains("succeeded")),
        "{}",
        lines.join("\n")
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while follow.child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = follow.child.kill();
            panic!("`status --follow` did not end with the run");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _) = follow.finish();
    assert_eq!(code, 0, "--follow ends with the run");
    let out = remote(&["report", &id], &olga).output().expect("report");
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("s3://b/1") && md.contains("sam"), "{md}");
    let out = remote(&["runs", "--output", "json"], &olga)
        .output()
        .expect("runs");
    let runs: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(runs[0]["id"], id.as_str());
    sigterm(&server);
    server.wait_for("stopping");
    let (code, _) = server.finish();
    assert_eq!(code, 0);
}

#[test]
fn two_serve_processes_on_one_postgres_share_flags_and_runs() {
    let dir = scratch("serve-two-pg");
    let schema = PgSchema::create();
    let pg = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
        cmd.args(args)
            .current_dir(&dir)
            .env("GOLIVE_DATABASE_URL", schema.url())
            .env_remove("GOLIVE_SERVER")
            .env_remove("GOLIVE_TOKEN");
        cmd
    };
    let out = pg(&["token", "create", "--name", "olga", "--role", "operator"])
        .output()
        .expect("token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let olga = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    let serve_args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--flags-refresh",
        "200ms",
        "--allow-api-commands",
    ];
    let (a, base_a) = serve_with(pg(&serve_args));
    let (b, base_b) = serve_with(pg(&serve_args));
    let eval = |base: &str| {
        let (s, v) = call(
            base,
            &olga,
            "POST",
            "/ofrep/v1/evaluate/flags/maintenance_mode",
            Some(json!({"context": {"targetingKey": "u"}})),
        );
        (s, v["value"].clone())
    };
    assert_eq!(eval(&base_b).0, 404);
    let (s, _) = call(
        &base_a,
        &olga,
        "POST",
        "/api/admin/feature-flags",
        Some(json!({"flag": "maintenance_mode", "enabled": true})),
    );
    assert_eq!(s, 201);
    wait_until("B to evaluate the flag A created", || {
        eval(&base_b) == (200, json!(true))
    });
    let (s, _) = call(
        &base_b,
        &olga,
        "PATCH",
        "/api/admin/feature-flags/maintenance_mode",
        Some(json!({"enabled": false})),
    );
    assert_eq!(s, 200);
    wait_until("A to see B's change", || {
        eval(&base_a) == (200, json!(false))
    });
    // A run started through A, answered through B, executed once.
    let (s, v) = call(
        &base_a,
        &olga,
        "POST",
        "/api/runs",
        Some(json!({"plan": ANSWERED_BY_ANYONE})),
    );
    assert_eq!(s, 201, "{v}");
    let run = v["run"].as_str().expect("run").to_string();
    wait_until("the task to wait (seen through B)", || {
        let (_, v) = call(
            &base_b,
            &olga,
            "GET",
            &format!("/api/runs/{run}/status"),
            None,
        );
        v["awaiting"][0]["item"] == "check-dashboards"
    });
    let (s, _) = call(
        &base_b,
        &olga,
        "POST",
        &format!("/api/runs/{run}/resume"),
        None,
    );
    assert_eq!(s, 409, "B cannot execute the run A drives");
    let (s, v) = call(
        &base_b,
        &olga,
        "POST",
        &format!("/api/runs/{run}/items/check-dashboards/confirm"),
        Some(json!({})),
    );
    assert_eq!(s, 200, "{v}");
    let (s, _) = call(
        &base_a,
        &olga,
        "POST",
        &format!("/api/runs/{run}/items/check-dashboards/confirm"),
        Some(json!({})),
    );
    assert_eq!(
        s, 409,
        "the same confirmation through the other server counts once"
    );
    wait_until("the run to succeed", || {
        let (_, v) = call(&base_a, &olga, "GET", &format!("/api/runs/{run}"), None);
        v["run"]["status"] == "succeeded"
    });
    let (_, v) = call(
        &base_b,
        &olga,
        "GET",
        &format!("/api/runs/{run}/events"),
        None,
    );
    let started = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "item.started" && e["item_id"] == "after")
        .count();
    assert_eq!(started, 1, "one execution of each step");
    for server in [a, b] {
        sigterm(&server);
        let (code, _) = server.finish();
        assert_eq!(code, 0);
    }
}

const ANSWERED_BY_ANYONE: &str = r#"
name: shared
phases:
  - title: Watch
    items:
      - id: check-dashboards
        title: Check the dashboards
        task: {}
      - id: after
        title: After
        run: { command: "true" }
"#;

/// `--log-format json`: one JSON object per line; an internal error's
/// cause is in the log line of its request (by its x-request-id), never in
/// the answer; the server's own lines carry their fields.
#[test]
fn internal_errors_are_logged_with_their_request_id_and_answered_generically() {
    let dir = scratch("serve-log-json");
    let admin = token(&dir, "ada", "admin");
    // A token whose stored role this version cannot read.
    let odd = "glv_00000000bb_0123456789abcdef0123456789abcdef";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = golive_store::open(&dir.join("journal.db").display().to_string())
            .await
            .expect("journal");
        store
            .create_token(
                &golive_store::NewToken {
                    id: "00000000bb".into(),
                    name: "odd".into(),
                    role: "Not A Role".into(),
                    secret_sha256: golive_server::auth::hash(odd),
                    expires_at: None,
                },
                &golive_store::Actor {
                    name: "test".into(),
                    source: None,
                },
            )
            .await
            .expect("odd token");
        store.close().await;
    });
    let mut server = Running::spawn(
        golive(
            &["--log-format", "json", "serve", "--listen", "127.0.0.1:0"],
            &dir,
        ),
        Duration::from_secs(30),
    );
    let listening: Value =
        serde_json::from_str(&server.wait_for("listening on")).expect("a JSON log line");
    let base = format!(
        "http://{}",
        listening["fields"]["addr"].as_str().expect("addr field")
    );
    let (status, v) = call(&base, odd, "GET", "/api/runs", None);
    assert_eq!(status, 500, "{v}");
    let body = v.to_string();
    assert_eq!(v["error"]["code"], "internal", "{v}");
    assert!(
        !body.contains("Not A Role") && !body.contains("00000000bb"),
        "the cause stays out of the answer: {body}"
    );
    let (status, _) = call(&base, &admin, "GET", "/api/tokens", None);
    assert_eq!(status, 200);
    let line = server.wait_for("Not A Role");
    let logged: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(logged["level"], "ERROR", "{logged}");
    assert!(
        logged["fields"]["cause"]
            .as_str()
            .is_some_and(|c| c.contains("00000000bb") && c.contains("Not A Role")),
        "{logged}"
    );
    let request_id = logged["span"]["request_id"].as_str().expect("request id");
    assert_eq!(request_id.len(), 16, "{logged}");
    assert_eq!(logged["span"]["route"], "/api/runs", "{logged}");
    sigterm(&server);
    let (code, lines) = server.finish();
    assert_eq!(code, 0);
    assert!(
        lines
            .iter()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "every line is JSON: {lines:?}"
    );
}

const ENV_PLAN: &str = r#"
name: env-check
variables:
  SERVER_SECRET: plan-default
phases:
  - title: Look
    items:
      - id: look
        title: Look around
        run:
          command: 'env; echo "undeclared=${OTHER_SECRET}"; echo "kept=${KEPT_FOR_PLANS}"'
          env: { FROM_PLAN: "${HOME_IS} ${OTHER_SECRET}" }
"#;

/// A plan run by the server sees only the environment it declares (and a
/// few harmless names, and those the admin lists with --plan-env): the
/// server's own secrets reach neither its commands nor its report.
#[test]
fn plans_run_by_the_server_see_only_their_declared_environment() {
    let dir = scratch("serve-env");
    let admin = token(&dir, "ada", "admin");
    let viewer = token(&dir, "vera", "viewer");
    let mut cmd = golive(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--plan-env",
            "KEPT_FOR_PLANS",
        ],
        &dir,
    );
    cmd.env("SERVER_SECRET", "s3cr3t-server-value")
        .env("OTHER_SECRET", "other-s3cr3t")
        .env("KEPT_FOR_PLANS", "kept-value");
    let (server, base) = serve_with(cmd);
    let (status, v) = call(
        &base,
        &admin,
        "POST",
        "/api/runs",
        Some(json!({"plan": ENV_PLAN})),
    );
    assert_eq!(status, 201, "{v}");
    let run = v["run"].as_str().expect("run").to_string();
    wait_until("the run to finish", || {
        let (_, v) = call(&base, &viewer, "GET", &format!("/api/runs/{run}"), None);
        v["run"]["status"] == "succeeded"
    });
    let (status, report) = call(
        &base,
        &viewer,
        "GET",
        &format!("/api/runs/{run}/report"),
        None,
    );
    assert_eq!(status, 200);
    let text = report.to_string();
    assert!(
        !text.contains("s3cr3t-server-value") && !text.contains("other-s3cr3t"),
        "the server's environment is not in the report: {text}"
    );
    for seen in [
        "SERVER_SECRET=plan-default",
        "\"undeclared=\"",
        "kept=kept-value",
        "PATH=",
        "FROM_PLAN=",
    ] {
        assert!(text.contains(seen), "`{seen}` in {text}");
    }
    sigterm(&server);
    let (code, _) = server.finish();
    assert_eq!(code, 0);
}
