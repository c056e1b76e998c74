//! The war room in a real browser: Debian's chromium, headless, driven
//! through chromedriver (a small WebDriver client in `web/driver.rs`)
//! against a real `golive serve` process running real plans. People sign
//! in with tokens and watch items change live after a `golive confirm`
//! (through the server and straight into the journal; the confirm→page
//! latency is measured and printed, targets are in BENCHMARKS.md, not
//! asserted); they confirm a task, approve and reject sign-offs, promote,
//! pause, resume, abort and roll back, and acknowledge an incident of the
//! watch window in the page; the page follows a server restart; a viewer
//! sees no button that changes anything, and the API refuses it anyway.
//! Screenshots at laptop and phone width are kept under
//! `target/web-screenshots/`.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`./scripts/setup.sh`);
//! without them the tests fail, saying so.

mod driver;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use driver::Browser;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{Journal, PgSchema, Running, created_token, scratch, serve_with};

/// Long enough for a loaded 2-core machine; the latency is measured.
const WAIT: Duration = Duration::from_secs(10);

/// One browser at a time: two chromiums on two cores skew the latencies.
static BROWSERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_browser() -> std::sync::MutexGuard<'static, ()> {
    // A failed story poisons the lock; the next may still run.
    BROWSERS.lock().unwrap_or_else(|e| e.into_inner())
}

const PLAN_HEAD: &str = r#"
name: checkout-v2
roles:
  ops: { members: [Olga Ops] }
  security: { members: [Sam Sec] }
phases:
  - title: Prepare
    at: T-1h
    record: [backup_size]
    items:
      - id: stable-up
        title: v1 answers
        critical: true
        check:
          http: { url: "${STABLE_METRICS}" }
          expect: [status == 200]
      - { id: t1, title: Freeze deploys, owner: ops, task: {} }
      - { id: t2, title: Page the on-call, owner: ops, task: {} }
      - { id: t3, title: Open the bridge, owner: ops, task: {} }
      - { id: t4, title: Warm the caches, owner: ops, task: {} }
      - { id: t5, title: Check the dashboards, owner: ops, task: {} }
      - id: backup
        title: Take a backup
        owner: ops
        task: { evidence: required }
  - title: Go / no-go
    items:
      - id: security-ok
        title: Security signs off
        approval: { roles: [security], min: 1 }
"#;

/// The run story's plan: checks, tasks, a sign-off, then a canary held at
/// 10% for a person.
fn plan() -> String {
    format!("{PLAN_HEAD}{}", rollout_phase("checkout_v2", 10))
}

/// A `Rollout` phase: a flag `key` at 0%, and a canary on it whose first
/// step holds at `first`% for a person, then 100%, analysed from the
/// test's `/metrics` endpoints (`STABLE_METRICS`, `CANARY_METRICS`).
fn rollout_phase(key: &str, first: u32) -> String {
    format!(
        r#"  - title: Rollout
    items:
      - {{ id: create-flag, title: Create the flag, flag: {{ key: {key}, enabled: true, percentage: 0 }} }}
      - id: canary
        title: Move traffic to the new version
        rollout:
          strategy: canary
          traffic: {{ flag: {{ key: {key} }} }}
          steps:
            - {{ weight: {first}, pause: manual }}
            - {{ weight: 100 }}
          analysis:
            interval: 1s
            scrape: {{ stable: "${{STABLE_METRICS}}", canary: "${{CANARY_METRICS}}" }}
            metrics:
              - name: latency
                expr: sum(demo_latency_seconds)
            rules:
              - latency > 2
"#
    )
}

/// Waits until the page shows the canary at `pct`%.
async fn weight_is(b: &Browser, pct: u32) {
    b.until(
        &format!("the canary at {pct}%"),
        Duration::from_secs(20),
        &format!(
            "const w = document.querySelector('#rollout-canary .weight'); return w && w.textContent === '{pct}%' ? w.textContent : null;"
        ),
    )
    .await;
}

/// Starts `plan` as `operator` (T-0 unset) and opens its page in a laptop
/// browser signed in as `who` (a token and its holder's name).
async fn open_run(
    war: &War,
    plan: &str,
    operator: &str,
    vars: Value,
    who: (&str, &str),
) -> (String, Browser) {
    let run = war.start_run(plan, operator, vars, None).await;
    let b = Browser::start(1366, 768).await;
    sign_in(&b, war, who.0, who.1).await;
    b.goto(&war.url(&format!("/ui#/run/{run}"))).await;
    (run, b)
}

/// A tiny HTTP server on a free loopback port: every request is answered
/// with `respond()` (status line and body) and the connection closed; its
/// base URL.
async fn http_server(
    respond: impl Fn() -> (&'static str, String) + Send + Sync + 'static,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let respond = Arc::clone(&respond);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let (status, body) = respond();
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

/// A `/metrics` endpoint: stable answers 0.2 s, the canary a value that
/// moves with every scrape (so the chart visibly changes).
async fn metrics_server(moving: bool) -> String {
    let n = AtomicU64::new(0);
    let base = http_server(move || {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let v = if moving {
            0.25 + 0.05 * (i % 7) as f64
        } else {
            0.2
        };
        (
            "200 OK",
            format!("# TYPE demo_latency_seconds gauge\ndemo_latency_seconds {v}\n"),
        )
    })
    .await;
    format!("{base}/metrics")
}

/// A health endpoint that answers 200 while `up` holds, 503 after.
async fn health_server(up: Arc<AtomicBool>) -> String {
    let base = http_server(move || {
        let status = if up.load(Ordering::Relaxed) {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        (status, String::new())
    })
    .await;
    format!("{base}/health")
}

/// A `golive serve` process over its own journal, and the CLI beside it.
struct War {
    dir: PathBuf,
    journal: Journal,
    server: Option<Running>,
    base: String,
    http: reqwest::Client,
}

impl War {
    fn start(name: &str, journal: impl FnOnce(&Path) -> Journal) -> War {
        let dir = scratch(name);
        let journal = journal(&dir);
        let mut war = War {
            dir,
            journal,
            server: None,
            base: String::new(),
            http: golive_runtime::api_client(Duration::from_secs(20)).expect("client"),
        };
        war.serve("127.0.0.1:0");
        war
    }

    /// `golive ARGS` on this war room's journal.
    fn golive(&self, args: &[&str]) -> Command {
        let mut cmd = self.cli(args);
        self.journal.apply(&mut cmd);
        cmd
    }

    /// `golive ARGS --server BASE --token TOKEN`: through the server.
    fn remote(&self, args: &[&str], token: &str) -> Command {
        let mut cmd = self.cli(args);
        cmd.args(["--server", &self.base, "--token", token])
            .env_remove("GOLIVE_DATABASE_URL");
        cmd
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
        cmd.args(args)
            .current_dir(&self.dir)
            .env_remove("GOLIVE_SERVER")
            .env_remove("GOLIVE_TOKEN")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Runs `cmd` to its end; its stderr, after asserting success.
    fn ok(mut cmd: Command) -> String {
        let out = tokio::task::block_in_place(|| cmd.output()).expect("golive runs");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{cmd:?}: {err}");
        err
    }

    fn token(&self, name: &str, role: &str) -> String {
        created_token(self.golive(&["token", "create", "--name", name, "--role", role]))
    }

    fn serve(&mut self, listen: &str) {
        let (server, base) = serve_with(self.golive(&["serve", "--listen", listen]));
        self.server = Some(server);
        self.base = base;
    }

    /// SIGTERM; the server must end cleanly.
    fn stop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        let pid = server.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let (code, lines) = tokio::task::block_in_place(|| server.finish());
        assert_eq!(code, 0, "golive serve ends cleanly: {}", lines.join("\n"));
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        golive_testkit::api_call(&self.http, method, &self.url(path), token, body).await
    }

    async fn start_run(&self, plan: &str, operator: &str, vars: Value, t0: Option<u64>) -> String {
        let mut body = json!({ "plan": plan, "vars": vars });
        if let Some(secs) = t0 {
            let t0 = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs as i64);
            body["t0"] = json!(t0.to_string());
        }
        let (s, v) = self
            .call("POST", "/api/runs", Some(operator), Some(body))
            .await;
        assert_eq!(s, 201, "{v}");
        v["run"].as_str().expect("run id").to_string()
    }

    /// Polls the API until `check` holds of `GET path`.
    async fn until(
        &self,
        what: &str,
        token: &str,
        path: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, v) = self.call("GET", path, Some(token), None).await;
            if check(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for War {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &server.child.id().to_string()])
                .status();
            let _ = server.finish();
        }
    }
}

async fn sign_in(b: &Browser, war: &War, token: &str, name: &str) {
    b.goto(&war.url("/ui")).await;
    b.type_into("#token", token).await;
    b.click("#signin").await;
    let want = name.to_string();
    b.until(
        &format!("signed in as {name}"),
        WAIT,
        &format!(
            "return document.querySelector('#who').textContent.includes({})",
            serde_json::to_string(&want).expect("json")
        ),
    )
    .await;
    // Signed in: the token is in sessionStorage, not in the address.
    let url = b.js("return location.href", json!([])).await;
    assert!(!url.as_str().unwrap_or_default().contains(token), "{url}");
}

async fn sign_out(b: &Browser) {
    b.click("#signout").await;
    b.wait_for("#token", WAIT).await;
}

async fn wait_state(b: &Browser, item: &str, want: &[&str]) -> String {
    let script = format!(
        "const e = document.querySelector('#item-{item}'); const s = e && e.dataset.state; return {}.includes(s) ? s : null;",
        serde_json::to_string(want).expect("json")
    );
    b.until(&format!("`{item}` to be one of {want:?}"), WAIT, &script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Polls `check` until it gives something, or panics after `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn block_on(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(test);
}

fn sqlite(dir: &Path) -> Journal {
    Journal::Sqlite(dir.join("journal.db"))
}

#[test]
fn the_war_room_drives_a_run_in_chromium() {
    let _one = one_browser();
    let war = War::start("web-story-sqlite", sqlite);
    block_on(war_room_story(war, "sqlite"));
}

#[test]
fn the_war_room_drives_a_run_in_chromium_on_postgres() {
    let _one = one_browser();
    let schema = PgSchema::create();
    let war = War::start("web-story-postgres", |_| Journal::Postgres(schema.url()));
    block_on(war_room_story(war, "postgres"));
}

async fn war_room_story(mut war: War, backend: &str) {
    let operator = &war.token("Olga Ops", "operator");
    let signer = &war.token("Sam Sec", "security");
    let viewer = &war.token("Vic Viewer", "viewer");
    let vars = json!({
        "STABLE_METRICS": metrics_server(false).await,
        "CANARY_METRICS": metrics_server(true).await,
    });
    let run = war.start_run(&plan(), operator, vars, Some(600)).await;
    let b = Browser::start(1366, 768).await;

    // Sign in; the runs list shows the run.
    sign_in(&b, &war, operator, "Olga Ops").await;
    b.wait_for(&format!("#runs a[href='#/run/{run}']"), WAIT)
        .await;
    b.click(&format!("#runs a[href='#/run/{run}']")).await;
    wait_state(&b, "t1", &["waiting"]).await;
    let clock = b.text("#tclock").await;
    assert!(clock.starts_with("T-00:"), "T-minus ten minutes: {clock}");
    let timeline = b.text(".timeline").await;
    for needle in [
        "Prepare",
        "Planned T-1h",
        "owner ops (Olga Ops)",
        "Freeze deploys",
    ] {
        assert!(timeline.contains(needle), "{needle} in {timeline}");
    }

    // `golive confirm`, through the server and straight into the journal
    // the server runs from, shows in the page: measured, not asserted.
    let mut latencies = Vec::new();
    for (n, item) in ["t1", "t2", "t3", "t4", "t5"].into_iter().enumerate() {
        wait_state(&b, item, &["waiting"]).await;
        let evidence = format!("ticket {item}");
        let args = [
            "confirm",
            run.as_str(),
            item,
            "--evidence",
            evidence.as_str(),
        ];
        let started = Instant::now();
        let said = if n % 2 == 0 {
            War::ok(war.remote(&args, operator))
        } else {
            let mut local = args.to_vec();
            local.extend(["--by", "Olga Ops"]);
            War::ok(war.golive(&local))
        };
        wait_state(&b, item, &["passed"]).await;
        latencies.push(started.elapsed());
        assert!(said.contains("Olga Ops"), "{said}");
    }
    let med = median(latencies.clone());
    println!("confirm→page latencies: {latencies:?}; median {med:?}");
    if med > Duration::from_secs(1) {
        println!("warning: the median confirm→page latency {med:?} is above the 1 s target");
    }

    // Confirm a task in the page, with evidence and a record field.
    wait_state(&b, "backup", &["waiting"]).await;
    b.type_into("#evidence-backup", "s3://backups/2026-12-07")
        .await;
    b.type_into("#fields-backup", "backup_size=42 GiB").await;
    b.click("#item-backup button[data-action=confirm]").await;
    wait_state(&b, "backup", &["passed"]).await;
    let (_, report) = war
        .call(
            "GET",
            &format!("/api/runs/{run}/report"),
            Some(operator),
            None,
        )
        .await;
    assert!(
        report.to_string().contains("s3://backups/2026-12-07"),
        "the page's evidence is in the record: {report}"
    );

    // The operator may not sign: no approve button for them.
    wait_state(&b, "security-ok", &["waiting"]).await;
    assert_eq!(b.count("button[data-action=approve]").await, 0);
    assert!(b.count("button[data-action=rollback]").await == 1);

    // A viewer sees no button that changes anything, and the API refuses.
    sign_out(&b).await;
    // This one by keyboard: the token typed, then Enter.
    b.goto(&war.url("/ui")).await;
    b.type_into("#token", &format!("{viewer}\u{E007}")).await;
    b.until(
        "signed in by keyboard",
        WAIT,
        "return document.querySelector('#who').textContent.includes('Vic Viewer')",
    )
    .await;
    b.goto(&war.url(&format!("/ui#/run/{run}"))).await;
    wait_state(&b, "security-ok", &["waiting"]).await;
    assert_eq!(
        b.count("main button, main form, #steer-reason").await,
        0,
        "a viewer sees no mutating control: {}",
        b.text("main").await
    );
    b.goto(&war.url("/ui#/flags")).await;
    b.wait_for("#flags", WAIT).await;
    assert_eq!(b.count("main button").await, 0, "no flag buttons");
    assert_eq!(b.count("#nav-audit:not([hidden])").await, 0);
    for (path, body) in [
        (
            format!("/api/runs/{run}/items/security-ok/approve"),
            json!({}),
        ),
        (
            format!("/api/runs/{run}/rollback"),
            json!({"reason": "viewer"}),
        ),
        (format!("/api/runs/{run}/promote"), json!({})),
    ] {
        let (s, v) = war.call("POST", &path, Some(viewer), Some(body)).await;
        assert_eq!(s, 403, "{path}: {v}");
    }

    // The signer approves the gate in the page; the run goes on.
    sign_out(&b).await;
    sign_in(&b, &war, signer, "Sam Sec").await;
    b.goto(&war.url(&format!("/ui#/run/{run}"))).await;
    wait_state(&b, "security-ok", &["waiting"]).await;
    assert_eq!(
        b.count("button[data-action=rollback]").await,
        0,
        "a signer cannot steer"
    );
    b.click("#item-security-ok button[data-action=approve]")
        .await;
    wait_state(&b, "security-ok", &["passed"]).await;
    wait_state(&b, "canary", &["running", "waiting"]).await;

    // The operator watches the rollout's chart grow.
    sign_out(&b).await;
    sign_in(&b, &war, operator, "Olga Ops").await;
    b.goto(&war.url(&format!("/ui#/run/{run}"))).await;
    let points = |n: u64| {
        format!(
            "const f = document.querySelector('#rollout-canary figure[data-metric=latency]'); const p = f ? Number(f.dataset.points) : 0; return p > {n} ? p : null;"
        )
    };
    let first = b
        .until("the latency chart", Duration::from_secs(20), &points(1))
        .await
        .as_u64()
        .expect("points");
    let later = b
        .until("the chart to grow", Duration::from_secs(20), &points(first))
        .await;
    println!("chart points: {first} then {later}");
    assert_eq!(
        b.count("#rollout-canary figure[data-metric=latency] line.threshold")
            .await,
        1,
        "the rule's threshold is drawn"
    );
    assert!(
        b.text("#rollout-canary .weight").await.contains("10%"),
        "{}",
        b.text("#rollout-canary").await
    );
    let laptop = b
        .screenshot(&format!("run-laptop-1366x768-{backend}.png"))
        .await;
    b.js(
        "document.querySelector('#rollout-canary').scrollIntoView()",
        json!([]),
    )
    .await;
    b.screenshot(&format!("rollout-laptop-1366x768-{backend}.png"))
        .await;
    b.js("window.scrollTo(0, 0)", json!([])).await;
    b.resize(375, 812).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let overflow = b
        .js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            json!([]),
        )
        .await;
    let phone = b
        .screenshot(&format!("run-phone-375x812-{backend}.png"))
        .await;
    assert_eq!(overflow, json!(0), "no sideways scrolling at phone width");
    b.resize(1366, 768).await;
    println!("screenshots: {} {}", laptop.display(), phone.display());

    // Pause and resume the rollout from the page: recorded as requests.
    let requested = |kind: &'static str| {
        let war = &war;
        let run = run.clone();
        async move {
            let (_, v) = war
                .call("GET", &format!("/api/runs/{run}"), Some(operator), None)
                .await;
            v["requests"]
                .as_array()
                .is_some_and(|r| {
                    r.iter().any(|q| {
                        q["kind"].as_str().is_some_and(|k| k.starts_with(kind))
                            && q["by"] == "Olga Ops"
                    })
                })
                .then_some(())
        }
    };
    b.click("button[data-action=pause]").await;
    eventually(WAIT, "a pause request", || requested("pause")).await;
    b.click("button[data-action='resume-rollout']").await;
    eventually(WAIT, "a resume request", || requested("resume")).await;

    // Roll back from the page.
    b.type_into("#steer-reason", "p99 doubled on v2").await;
    b.click("button[data-action=rollback]").await;
    b.until(
        "the run to roll back",
        Duration::from_secs(20),
        "const s = document.querySelector('#run-state'); return s && ['rolling-back', 'rolled-back', 'failed'].includes(s.textContent) ? s.textContent : null;",
    )
    .await;
    let (_, status) = war
        .call(
            "GET",
            &format!("/api/runs/{run}/status"),
            Some(operator),
            None,
        )
        .await;
    assert_eq!(status["rollback_requested"]["by"], "Olga Ops", "{status}");

    // The record, the audit log and the flags pages.
    b.goto(&war.url(&format!("/ui#/run/{run}/record"))).await;
    b.wait_for("#record", WAIT).await;
    assert!(b.text("#record").await.contains("checkout-v2"));
    b.goto(&war.url("/ui#/audit")).await;
    b.until(
        "the audit log",
        WAIT,
        "const t = document.querySelector('#audit'); return t && t.innerText.includes('item.approved');",
    )
    .await;
    // More than a page of audit entries: the page shows the newest 200,
    // and "Older entries" the rest, each once.
    for i in 0..210 {
        let (s, v) = war
            .call(
                "POST",
                "/api/admin/feature-flags",
                Some(operator),
                Some(json!({"flag": format!("fill-{i}"), "enabled": false})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    b.goto(&war.url("/ui#/flags")).await;
    b.goto(&war.url("/ui#/audit")).await;
    let rows = "return document.querySelectorAll('#audit tbody tr').length";
    b.until(
        "the newest page",
        WAIT,
        &format!("const n = (() => {{ {rows} }})(); return n === 200 ? n : null;"),
    )
    .await;
    assert!(
        b.text("#audit tbody tr").await.contains("fill-209"),
        "newest first"
    );
    b.click("#audit-older").await;
    b.until(
        "the older entries",
        WAIT,
        "const t = document.querySelector('#audit'); return t && t.querySelectorAll('tbody tr').length > 200 && t.innerText.includes('item.approved') ? true : null;",
    )
    .await;
    let dupes = b
        .js(
            "const s = [...document.querySelectorAll('#audit tbody tr')].map((r) => r.dataset.seq); return s.length - new Set(s).size;",
            json!([]),
        )
        .await;
    assert_eq!(dupes, json!(0), "no entry twice");
    assert_eq!(
        b.count("#audit-older:not([hidden])").await,
        0,
        "the last page"
    );
    b.goto(&war.url(&format!("/ui#/run/{run}/readiness"))).await;
    b.wait_for("#readiness", WAIT).await;
    let score = b.text("#readiness-score").await;
    assert!(score.contains("Score 100 / 100"), "{score}");
    assert!(b.text("#readiness").await.contains("stable-up"));

    // Flags: a percentage set in the page, its history from the audit log.
    let (s, v) = war
        .call(
            "POST",
            "/api/admin/feature-flags",
            Some(operator),
            Some(json!({"flag": "banner", "enabled": true, "percentage": 5})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    b.goto(&war.url("/ui#/flags")).await;
    b.wait_for("#flags tr[data-flag=checkout_v2] button", WAIT)
        .await;
    b.js(
        "document.querySelector('#pct-banner').value = ''",
        json!([]),
    )
    .await;
    b.type_into("#pct-banner", "30").await;
    b.click("#flags tr[data-flag=banner] button.save").await;
    eventually(WAIT, "the page's percentage", || async {
        let (_, v) = war
            .call(
                "GET",
                "/api/admin/feature-flags/banner",
                Some(operator),
                None,
            )
            .await;
        (v["definition"]["percentage"] == json!(30.0) || v["definition"]["percentage"] == json!(30))
            .then_some(())
    })
    .await;
    b.until(
        "the flag's history",
        WAIT,
        "const t = document.querySelector('#flag-history'); return t && t.innerText.includes('banner');",
    )
    .await;

    // The public status JSON, read by the browser, in Statuspage's enums.
    let doc = b
        .js_async(
            "const done = arguments[arguments.length - 1]; fetch('/api/v2/summary.json').then(r => r.json()).then(done);",
            json!([]),
        )
        .await;
    assert!(
        ["none", "minor", "major", "critical"]
            .contains(&doc["status"]["indicator"].as_str().unwrap_or("")),
        "{doc}"
    );
    assert_eq!(doc["components"][0]["id"], "golive-go-live", "{doc}");
    assert!(
        doc["page"]["url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/status"),
        "{doc}"
    );
    b.quit().await;
    war.stop();
}

#[test]
fn a_bad_token_is_refused_and_the_page_weighs_little() {
    let _one = one_browser();
    let war = War::start("web-signin", sqlite);
    block_on(bad_token_and_page_weight(war));
}

async fn bad_token_and_page_weight(mut war: War) {
    let mut bytes = 0;
    for path in ["/ui", "/ui/app.js", "/ui/app.css"] {
        let resp = war.http.get(war.url(path)).send().await.expect("get");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let csp = resp
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        bytes += resp.bytes().await.expect("body").len();
    }
    println!("page weight (HTML + JS + CSS, uncompressed): {bytes} bytes");
    let b = Browser::start(375, 812).await;
    b.goto(&war.url("/ui")).await;
    b.type_into("#token", "glv_0000000000_00000000000000000000000000000000")
        .await;
    b.click("#signin").await;
    b.until(
        "a refusal",
        WAIT,
        "const e = document.querySelector('.error'); return e && e.textContent;",
    )
    .await;
    let label = b
        .js(
            "const i = document.querySelector('#token'); return i.labels.length && i.labels[0].textContent;",
            json!([]),
        )
        .await;
    assert_eq!(label, json!("API token"));
    // A long rollout's chart: 20,000 evaluations are drawn as at most two
    // points a pixel column, and the one spike among them is still drawn.
    let drawn = b
        .js(
            "const pts = Array.from({length: 20000}, (_, i) => ({at: 1e12 + i * 1000, stable: 0.2, canary: i === 12345 ? 9 : 0.25})); const f = chart('canary', 'latency', pts, {value: 2, rule: 'latency > 2'}); const pl = f.querySelector('polyline.canary'); const ys = pl.getAttribute('points').split(' ').map((s) => Number(s.split(',')[1])); return [Number(pl.dataset.points), Number(pl.dataset.drawn), ys.reduce((a, v) => Math.min(a, v), 1e9)];",
            json!([]),
        )
        .await;
    assert_eq!(drawn[0], json!(20000), "{drawn}");
    let (kept, top) = (
        drawn[1].as_u64().unwrap_or(u64::MAX),
        drawn[2].as_f64().unwrap_or(f64::MAX),
    );
    assert!(kept <= 640, "at most two points a pixel column: {drawn}");
    assert!(top < 20.0, "the spike is drawn near the top: {drawn}");
    let path = b.screenshot("signin-phone-375x812.png").await;
    println!("screenshot: {}", path.display());
    let (s, v) = war.call("GET", "/api/whoami", None, None).await;
    assert_eq!(s, 401, "{v}");
    let _: Value = v;
    b.quit().await;
    war.stop();
}

/// A sign-off rejected in the page (the plan lets the run go on), a
/// rollout promoted from the page, and an incident of the watch window
/// acknowledged there.
const PROMOTED_HEAD: &str = r#"
name: payments-v3
roles:
  security: { members: [Sam Sec] }
monitor:
  window: 5m
  interval: 300ms
  checks: [health]
phases:
  - title: Go / no-go
    items:
      - id: ux-ok
        title: UX signs off
        approval: { roles: [security], min: 1 }
        on_failure: continue
"#;

const PROMOTED_TAIL: &str = r#"  - title: Verify
    items:
      - id: health
        title: v3 answers
        check:
          http: { url: "${HEALTH}" }
          expect: [status == 200]
"#;

#[test]
fn a_sign_off_is_rejected_a_rollout_promoted_and_an_incident_acknowledged_in_chromium() {
    let _one = one_browser();
    let war = War::start("web-promote", sqlite);
    block_on(promote_story(war));
}

async fn promote_story(mut war: War) {
    let operator = &war.token("Olga Ops", "operator");
    let signer = &war.token("Sam Sec", "security");
    let up = Arc::new(AtomicBool::new(true));
    let vars = json!({
        "STABLE_METRICS": metrics_server(false).await,
        "CANARY_METRICS": metrics_server(false).await,
        "HEALTH": health_server(up.clone()).await,
    });
    let plan = format!(
        "{PROMOTED_HEAD}{}{PROMOTED_TAIL}",
        rollout_phase("payments_v3", 20)
    );
    // Rejecting needs a reason; with one, the sign-off fails and the run,
    // as its plan says, goes on.
    let (run, b) = open_run(&war, &plan, operator, vars, (signer, "Sam Sec")).await;
    wait_state(&b, "ux-ok", &["waiting"]).await;
    b.click("#item-ux-ok button[data-action=reject]").await;
    b.until(
        "a reject without a comment to be refused",
        WAIT,
        "const t = document.querySelector('#toast'); return t && /say why/.test(t.textContent) ? t.textContent : null;",
    )
    .await;
    assert_eq!(
        b.js("return document.activeElement.id", json!([])).await,
        json!("comment-ux-ok"),
        "the comment box has the focus"
    );
    b.type_into("#comment-ux-ok", "the new checkout hides the total")
        .await;
    b.click("#item-ux-ok button[data-action=reject]").await;
    wait_state(&b, "ux-ok", &["failed"]).await;
    wait_state(&b, "canary", &["running", "waiting"]).await;
    let (_, report) = war
        .call(
            "GET",
            &format!("/api/runs/{run}/report"),
            Some(operator),
            None,
        )
        .await;
    assert!(
        report
            .to_string()
            .contains("the new checkout hides the total"),
        "the rejection's reason is in the record: {report}"
    );

    // The operator promotes the held step from the page.
    sign_out(&b).await;
    sign_in(&b, &war, operator, "Olga Ops").await;
    b.goto(&war.url(&format!("/ui#/run/{run}"))).await;
    weight_is(&b, 20).await;
    wait_state(&b, "canary", &["waiting"]).await;
    b.click("button[data-action=promote]").await;
    weight_is(&b, 100).await;
    wait_state(&b, "canary", &["passed"]).await;
    wait_state(&b, "health", &["passed"]).await;
    b.wait_for("#watch", WAIT).await;
    assert!(
        b.text("#watch").await.contains("Watch window open since"),
        "{}",
        b.text("main").await
    );
    assert_eq!(
        b.count("button[data-action=promote], button[data-action=abort]")
            .await,
        0,
        "no rollout to steer in the watch window"
    );
    assert_eq!(b.count("button[data-action=rollback]").await, 1);
    let status = war
        .until(
            "a promote request by Olga",
            operator,
            &format!("/api/runs/{run}"),
            |v| {
                v["requests"].as_array().is_some_and(|r| {
                    r.iter().any(|q| {
                        q["kind"].as_str().is_some_and(|k| k.starts_with("promote"))
                            && q["by"] == "Olga Ops"
                    })
                })
            },
        )
        .await;
    let _: Value = status;

    // v3 stops answering in the watch window: an incident, acknowledged in
    // the page.
    up.store(false, Ordering::Relaxed);
    b.wait_for(
        "#incidents button[data-action=ack]",
        Duration::from_secs(20),
    )
    .await;
    b.click("#incidents button[data-action=ack]").await;
    b.until(
        "the incident acknowledged",
        WAIT,
        "const l = document.querySelector('#incidents'); return l && l.textContent.includes('acknowledged by Olga Ops') ? l.textContent : null;",
    )
    .await;
    assert_eq!(
        b.count("#incidents button[data-action=ack]").await,
        0,
        "no second acknowledge"
    );
    b.screenshot("incident-laptop-1366x768.png").await;
    b.quit().await;
    war.stop();
}

/// A page that follows a server restart, and a rollout aborted from it.
const ABORTED_HEAD: &str = r#"
name: search-v2
roles:
  ops: { members: [Olga Ops] }
phases:
  - title: Prepare
    items:
      - { id: warm, title: Warm the caches, owner: ops, task: {} }
"#;

#[test]
fn the_page_follows_a_server_restart_and_aborts_a_rollout_in_chromium() {
    let _one = one_browser();
    let war = War::start("web-restart", sqlite);
    block_on(restart_story(war));
}

async fn restart_story(mut war: War) {
    let operator = &war.token("Olga Ops", "operator");
    let vars = json!({
        "STABLE_METRICS": metrics_server(false).await,
        "CANARY_METRICS": metrics_server(false).await,
    });
    let plan = format!("{ABORTED_HEAD}{}", rollout_phase("search_v2", 10));
    let (run, b) = open_run(&war, &plan, operator, vars, (operator, "Olga Ops")).await;
    wait_state(&b, "warm", &["waiting"]).await;
    let live =
        |want: &str| format!("return document.body.dataset.live === '{want}' ? true : null;");
    b.until("the stream to be live", WAIT, &live("yes")).await;

    // The server goes away: the page says it is not live; a new server on
    // the same address adopts the run, and the page picks up where its
    // stream stopped.
    war.stop();
    b.until("the page to notice", Duration::from_secs(20), &live("no"))
        .await;
    tokio::task::block_in_place(|| {
        let listen = war.base.trim_start_matches("http://").to_string();
        war.serve(&listen);
    });
    b.until(
        "the stream to come back",
        Duration::from_secs(20),
        &live("yes"),
    )
    .await;
    let said = War::ok(war.remote(
        &[
            "confirm",
            run.as_str(),
            "warm",
            "--evidence",
            "after the restart",
        ],
        operator,
    ));
    assert!(said.contains("Olga Ops"), "{said}");
    wait_state(&b, "warm", &["passed"]).await;
    let renders = b
        .js(
            "return document.querySelectorAll('#item-warm').length",
            json!([]),
        )
        .await;
    assert_eq!(renders, json!(1), "no item drawn twice after the reconnect");

    // Abort needs a reason; with one, traffic goes back and the run ends.
    weight_is(&b, 10).await;
    b.click("button[data-action=abort]").await;
    b.until(
        "an abort without a reason to be refused",
        WAIT,
        "return document.activeElement.id === 'steer-reason' ? true : null;",
    )
    .await;
    b.type_into("#steer-reason", "search relevance dropped")
        .await;
    b.click("button[data-action=abort]").await;
    let state = b
        .until(
            "the run to end",
            Duration::from_secs(20),
            "const s = document.querySelector('#run-state'); return s && ['failed', 'aborted', 'rolled-back'].includes(s.textContent) ? s.textContent : null;",
        )
        .await;
    println!("after the abort the run is {state}");
    let (_, flag) = war
        .call(
            "GET",
            "/api/admin/feature-flags/search_v2",
            Some(operator),
            None,
        )
        .await;
    assert!(
        flag["definition"]["percentage"] == json!(0)
            || flag["definition"]["percentage"] == json!(0.0),
        "traffic is back on stable: {flag}"
    );
    b.quit().await;
    war.stop();
}
