//! `notify` items through the engine: a channel that cannot be reached is
//! retried, journaled as `notify.failed` with the secret in its URL
//! redacted, and the run goes on, unless the channel is `required`. A
//! rollout level's notify and the watch window's escalation go out the
//! same way.

use std::sync::Arc;

use golive_engine::Engine;
use golive_store::{ItemStatus, RunStatus, SqliteStore, Store};

/// Runs `src` to the end; the run's status, item states, events and its
/// Markdown record.
async fn run(
    dir: &std::path::Path,
    src: &str,
) -> (
    RunStatus,
    Vec<golive_store::ItemState>,
    Vec<golive_store::Event>,
    String,
) {
    let compiled = golive_plan::compile(src, &|_: &str| true);
    let plan = compiled
        .plan
        .unwrap_or_else(|| panic!("{:?}", compiled.diagnostics));
    let store = Arc::new(SqliteStore::open(dir.join("j.db")).await.expect("journal"));
    let engine = Engine::new(Arc::clone(&store)).expect("engine");
    let run = engine.create(src, &plan, None).await.expect("create");
    let status = engine.execute(&run, &plan, &[]).await.expect("execute");
    let states = store.item_states(&run).await.expect("states");
    let events = store.events_after(&run, 0, 1000).await.expect("events");
    let report = golive_engine::report::build(store.as_ref(), &run)
        .await
        .expect("report");
    (
        status,
        states,
        events,
        golive_engine::report::to_markdown(&report),
    )
}

/// A plan named `watched` with `channels` (YAML lines under `channels:`),
/// one item — `health`, a check that the file `up` exists, or without
/// `up` `done`, a `true` command — and the `monitor:` section `monitor`.
fn watched(channels: &str, up: Option<&std::path::Path>, monitor: &str) -> String {
    let item = match up {
        Some(up) => format!(
            "      - id: health\n        check:\n          file: {{path: '{}'}}\n",
            up.display()
        ),
        None => "      - id: done\n        run: {command: 'true'}\n".to_string(),
    };
    format!(
        "name: watched\nchannels:\n{channels}phases:\n  - title: Go live\n    items:\n{item}monitor:\n{monitor}"
    )
}

type Driving = tokio::task::JoinHandle<Result<RunStatus, golive_engine::EngineError>>;

/// A [`crashable`] engine driving a run of `src` (journal in `dir`), once
/// its watch window has started: the journal, the run, the task.
async fn watching(
    src: &str,
    dir: &std::path::Path,
) -> (Arc<SqliteStore>, golive_store::RunId, Driving) {
    let (plan, store) = planned(src, dir).await;
    let first = crashable(&store);
    let run = first.create(src, &plan, None).await.expect("create");
    let driving = {
        let run = run.clone();
        tokio::spawn(async move { first.execute(&run, &plan, &[]).await })
    };
    event_of(&store, &run, "watch.started", None).await;
    (store, run, driving)
}

/// Waits until the dead engine's lease on `run` ran out, so that a resume
/// may take the run.
async fn lease_expired(store: &SqliteStore, run: &golive_store::RunId) {
    until("the lease to run out", || async {
        let summary = store.get_run(run).await.expect("run").summary;
        let expired = summary
            .lease_expires_at
            .is_none_or(|at| at <= jiff::Timestamp::now());
        expired.then_some(())
    })
    .await
}

/// Another [`crashable`] engine resuming `run`.
fn resumed(store: &Arc<SqliteStore>, run: &golive_store::RunId) -> Driving {
    let (second, run) = (crashable(store), run.clone());
    tokio::spawn(async move { second.resume(&run, &[]).await })
}

/// The plan `src` compiled (every variable taken as known), and a fresh
/// journal in `dir`.
async fn planned(src: &str, dir: &std::path::Path) -> (golive_plan::Plan, Arc<SqliteStore>) {
    let compiled = golive_plan::compile(src, &|_: &str| true);
    let plan = compiled
        .plan
        .unwrap_or_else(|| panic!("{:?}", compiled.diagnostics));
    let store = Arc::new(SqliteStore::open(dir.join("j.db")).await.expect("journal"));
    (plan, store)
}

/// An engine whose lease runs out soon after it dies (for crash tests),
/// polling fast. The ttl leaves a loaded machine room: the lease is
/// renewed every third of it, and a renewal late by more than the rest
/// loses the run.
fn crashable(store: &Arc<SqliteStore>) -> Engine<SqliteStore> {
    Engine::new(Arc::clone(store))
        .expect("engine")
        .with_lease_ttl(std::time::Duration::from_millis(800))
        .with_poll_interval(std::time::Duration::from_millis(50))
}

/// A port nobody listens on: bound, then released.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_channel_is_retried_journaled_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let hook = dir.path().join("hook.txt");
    std::fs::write(
        &hook,
        format!("http://127.0.0.1:{port}/hook/SeCrEt-token-123\n"),
    )
    .expect("secret");
    let plan = |required: bool| {
        format!(
            "name: p\nsecrets:\n  HOOK: file:{}\nchannels:\n  chat: {{slack: '${{HOOK}}', retries: 2, required: {required}}}\n  audit: {{log: true}}\nphases:\n  - title: a\n    items:\n      - id: tell\n        notify: {{channel: chat, message: 'going live'}}\n      - id: after\n        notify: {{channel: audit, message: 'still running'}}\n",
            hook.display()
        )
    };

    let (status, states, events, record) = run(dir.path(), &plan(false)).await;
    assert_eq!(status, RunStatus::Succeeded);
    assert_eq!(states[0].status, ItemStatus::Passed);
    let tell = states[0].result.clone().expect("result");
    assert_eq!(tell["delivered"], false);
    assert_eq!(tell["attempts"], 3);
    let error = tell["error"].as_str().expect("error");
    assert!(error.contains("Slack webhook unreachable"), "{error}");
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "notify.failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].item_id.as_deref(), Some("tell"));
    assert!(!failed[0].data.to_string().contains("SeCrEt-token-123"));
    // The record shows the failed delivery, without the secret.
    assert!(
        record.contains("  - Not delivered: Slack webhook unreachable"),
        "{record}"
    );
    assert!(!record.contains("SeCrEt-token-123"));
    assert_eq!(states[1].status, ItemStatus::Passed);
    assert_eq!(
        states[1].result.as_ref().expect("after")["delivered"],
        "log"
    );

    let dir2 = tempfile::tempdir().expect("dir");
    let (status, states, _, _) = run(dir2.path(), &plan(true)).await;
    assert_ne!(status, RunStatus::Succeeded);
    assert_eq!(states[0].status, ItemStatus::Failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_smtp_server_is_journaled_via_email_without_its_password() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let url = dir.path().join("smtp.txt");
    std::fs::write(
        &url,
        format!("smtp://golive:Pa55-w0rd-xyz@127.0.0.1:{port}?tls=none\n"),
    )
    .expect("secret");
    let src = format!(
        "name: p\nsecrets:\n  SMTP_URL: file:{}\nchannels:\n  mail: {{email: {{to: [oncall@example.com], from: golive@example.com, smtp: '${{SMTP_URL}}'}}, retries: 1}}\nphases:\n  - title: a\n    items:\n      - id: tell\n        notify: {{channel: mail, message: 'going live'}}\n",
        url.display()
    );
    let (status, states, events, record) = run(dir.path(), &src).await;
    assert_eq!(status, RunStatus::Succeeded);
    let tell = states[0].result.clone().expect("result");
    assert_eq!(tell["via"], "email");
    assert_eq!(tell["delivered"], false);
    assert_eq!(tell["attempts"], 2);
    let error = tell["error"].as_str().expect("error");
    assert!(error.starts_with("SMTP server: "), "{error}");
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "notify.failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].data["via"], "email");
    for shown in [failed[0].data.to_string(), record] {
        assert!(!shown.contains("Pa55-w0rd-xyz"), "{shown}");
    }
}

/// A tiny HTTP server on a free loopback port: `GET` answers `metrics`
/// (Prometheus exposition), `POST` bodies are kept and answered 200.
fn receiver(metrics: &'static str) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    receiver_of(Arc::new(std::sync::Mutex::new(metrics.to_string())))
}

/// [`receiver`], answering GETs with what `metrics` holds at the time.
fn receiver_of(
    metrics: Arc<std::sync::Mutex<String>>,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let posts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = Arc::clone(&posts);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = if head.starts_with("POST") {
                kept.lock()
                    .expect("posts")
                    .push(String::from_utf8_lossy(&body).into_owned());
                "ok".to_string()
            } else {
                metrics.lock().expect("metrics").clone()
            };
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (base, posts)
}

/// A rollout level's `notify` goes out through the channel like a `notify`
/// item's (here Slack's wire format), journaled as golive's decision with
/// its level, and the level's rollback still happens.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_levels_notify_reaches_the_channel() {
    let dir = tempfile::tempdir().expect("dir");
    let (metrics, _) = receiver("# TYPE error_ratio gauge\nerror_ratio 0.5\n");
    let (chat, posts) = receiver("");
    let src = format!(
        r#"name: p
channels:
  chat: {{slack: '{chat}/hook'}}
phases:
  - title: a
    items:
      - id: canary
        on_failure: continue
        rollout:
          strategy: canary
          traffic: {{command: 'true'}}
          steps: [{{weight: 50, pause: 5s}}, {{weight: 100}}]
          analysis:
            interval: 1s
            scrape: {{stable: '{metrics}/metrics', canary: '{metrics}/metrics'}}
            metrics:
              - {{name: error_ratio, expr: error_ratio}}
            rules: [error_ratio < 2]
rollback:
  levels:
    - name: critical
      when: [error_ratio > 10%]
      actions: [{{notify: chat}}, rollback]
"#
    );
    let (_, states, events, _) = run(dir.path(), &src).await;
    assert_eq!(states[0].status, ItemStatus::Failed, "{states:?}");
    let sent: Vec<&golive_store::Event> =
        events.iter().filter(|e| e.kind == "notify.sent").collect();
    assert_eq!(sent.len(), 1, "{events:#?}");
    assert_eq!(sent[0].data["delivered"], "slack");
    assert_eq!(sent[0].data["by"], "golive");
    assert_eq!(sent[0].data["level"], "critical");
    let posts = posts.lock().expect("posts").clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let body: serde_json::Value = serde_json::from_str(&posts[0]).expect("JSON");
    let text = body["text"].as_str().expect("text");
    assert!(text.contains("level `critical`"), "{text}");
    assert!(body["blocks"].is_array(), "{body}");
}

/// Polls `probe` until it gives `Some` (for at most 20 s: a test that
/// waits longer has failed).
async fn until<T, Fut: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> Fut,
) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The data of the run's first event of `kind` that `matches`, once there.
async fn event_where(
    store: &SqliteStore,
    run: &golive_store::RunId,
    kind: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    until(kind, || async {
        let events = store.events_after(run, 0, 10_000).await.expect("events");
        events
            .into_iter()
            .find(|e| e.kind == kind && matches(&e.data))
            .map(|e| e.data)
    })
    .await
}

/// The data of the run's first event of `kind` (for `incident`), once there.
async fn event_of(
    store: &SqliteStore,
    run: &golive_store::RunId,
    kind: &str,
    incident: Option<&str>,
) -> serde_json::Value {
    event_where(store, run, kind, |d| {
        incident.is_none_or(|i| d["incident"] == i)
    })
    .await
}

/// An accelerated watch window (cadence from the plan): a check that fails
/// after the go-live opens an incident, the on-call is told at once, the
/// tech lead when nobody acknowledged within 1 s, nobody more once
/// acknowledged; it resolves when the check passes again, and every
/// channel that heard of it hears that too. The record tells it all.
#[tokio::test(flavor = "multi_thread")]
async fn a_watch_window_opens_escalates_is_acknowledged_and_resolves() {
    let dir = tempfile::tempdir().expect("dir");
    let (oncall, oncall_posts) = receiver("");
    let (lead, lead_posts) = receiver("");
    let up = dir.path().join("up");
    std::fs::write(&up, "").expect("up");
    let src = watched(
        &format!(
            r#"  oncall: {{slack: '{oncall}/hook'}}
  lead: {{slack: '{lead}/hook'}}
"#
        ),
        Some(&up),
        r#"  window: 9s
  interval: 1s
  cadence: [{every: 100ms, until: 8s}]
  checks: [health]
  escalation:
    - {name: on-call, after: 0s, notify: oncall, to: oncall}
    - {name: tech lead, after: 1s, notify: lead, to: tech-lead}
    - {name: incident commander, after: 3s, notify: lead, to: ic}
"#,
    );
    let (store, run, driving) = watching(&src, dir.path()).await;
    // After the go-live the check starts failing.
    std::fs::remove_file(&up).expect("down");
    let opened = event_of(&store, &run, "incident.opened", Some("INC-1")).await;
    assert_eq!(opened["check"], "health");
    assert_eq!(opened["evidence"]["status"], "fail", "{opened}");
    let first = event_of(&store, &run, "incident.escalated", Some("INC-1")).await;
    assert_eq!(
        (first["level"].as_u64(), first["to"].as_str()),
        (Some(0), Some("oncall"))
    );
    // Nobody acknowledged within 1 s: the tech lead is told.
    let second = event_where(&store, &run, "incident.escalated", |d| d["level"] == 1).await;
    assert_eq!(second["to"], "tech-lead");
    // Bob acknowledges; asking twice is refused, as is an unknown incident.
    assert!(
        golive_engine::answers::ack(store.as_ref(), &run, "INC-1", "bob", Some("looking"))
            .await
            .expect("ack")
    );
    event_of(&store, &run, "incident.acknowledged", Some("INC-1")).await;
    let again = golive_engine::answers::ack(store.as_ref(), &run, "INC-1", "carol", None).await;
    assert!(
        matches!(
            again,
            Err(golive_engine::answers::AnswerError::AlreadyAnswered(_))
        ),
        "{again:?}"
    );
    let unknown = golive_engine::answers::ack(store.as_ref(), &run, "INC-9", "bob", None).await;
    assert!(
        matches!(
            unknown,
            Err(golive_engine::answers::AnswerError::NoItem { .. })
        ),
        "{unknown:?}"
    );
    // Acknowledged: still open past the commander's 3 s, nobody more is
    // told (this waits on purpose: it asserts that nothing happens).
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    std::fs::write(&up, "").expect("up again");
    let resolved = event_of(&store, &run, "incident.resolved", Some("INC-1")).await;
    assert_eq!(resolved["check"], "health");
    let status = driving.await.expect("task").expect("execute");
    assert_eq!(status, RunStatus::Succeeded);

    let events = store.events_after(&run, 0, 10_000).await.expect("events");
    let of = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(
        of("incident.opened"),
        1,
        "one incident while the check fails"
    );
    assert_eq!(of("incident.escalated"), 2, "{events:#?}");
    let ended = event_of(&store, &run, "watch.ended", None).await;
    assert_eq!(ended["incidents"], 1);
    assert_eq!(ended["open"], serde_json::json!([]));
    let texts = |posts: &Arc<std::sync::Mutex<Vec<String>>>| -> Vec<String> {
        posts
            .lock()
            .expect("posts")
            .iter()
            .map(|p| {
                let v: serde_json::Value = serde_json::from_str(p).expect("JSON");
                v["text"].as_str().unwrap_or_default().to_string()
            })
            .collect()
    };
    let oncall = texts(&oncall_posts);
    let lead = texts(&lead_posts);
    assert_eq!(oncall.len(), 3, "told, acknowledged, resolved: {oncall:?}");
    assert!(
        oncall[0].contains("INC-1") && oncall[0].contains("golive ack"),
        "{oncall:?}"
    );
    assert!(oncall[1].contains("acknowledged by bob"), "{oncall:?}");
    assert!(oncall[2].contains("resolved"), "{oncall:?}");
    assert_eq!(lead.len(), 3, "{lead:?}");
    assert!(
        lead[0].contains("tech-lead") && lead[0].contains("tech lead"),
        "{lead:?}"
    );

    let report = golive_engine::report::build(store.as_ref(), &run)
        .await
        .expect("report");
    let md = golive_engine::report::to_markdown(&report);
    for needle in [
        "## Watch window",
        "INC-1 — check `health` failed at",
        "; resolved at",
        "escalated: on-call to oncall",
        "escalated: tech lead to tech-lead",
        "acknowledged by bob",
    ] {
        assert!(md.contains(needle), "`{needle}` missing:\n{md}");
    }
    assert!(!md.contains("incident commander"), "{md}");
}

/// Waits until item `id` of the run is `waiting` for a person.
/// A metric rule of the watch window (the compiled rules of rollout
/// analysis, over the services' own metrics): it opens an incident once it
/// has held its `for`, pages its rule's level at once with its severity
/// (PagerDuty `critical`), skips the levels below, climbs to the next one
/// unacknowledged, and resolves once it has been clear for its `for`.
#[tokio::test(flavor = "multi_thread")]
async fn a_metric_rule_in_the_window_pages_its_level_and_resolves_when_clear() {
    let dir = tempfile::tempdir().expect("dir");
    let gauge = Arc::new(std::sync::Mutex::new(String::from(
        "# TYPE error_ratio gauge\nerror_ratio 0\n",
    )));
    let (metrics, _) = receiver_of(Arc::clone(&gauge));
    let (oncall, oncall_posts) = receiver("");
    let (pd, pd_posts) = receiver("");
    let (ic, ic_posts) = receiver("");
    let src = format!(
        r#"name: watched
variables:
  PD_KEY: R0UTING
channels:
  oncall: {{slack: '{oncall}/hook'}}
  pager: {{pagerduty: '${{PD_KEY}}', events_url: '{pd}'}}
  ic: {{slack: '{ic}/hook'}}
phases:
  - title: Go live
    items:
      - id: done
        run: {{command: 'true'}}
monitor:
  window: 7s
  interval: 100ms
  scrape: {{stable: '{metrics}/stable', canary: '{metrics}/canary'}}
  metrics:
    - {{name: error_rate, expr: error_ratio}}
  rules:
    - {{when: error_rate > 5% for 300ms, severity: critical, level: tech lead}}
  escalation:
    - {{name: on-call, after: 0s, notify: oncall}}
    - {{name: tech lead, after: 10m, notify: pager, to: tech-lead}}
    - {{name: incident commander, after: 10m1s, notify: ic, to: ic}}
"#
    );
    let (store, run, driving) = watching(&src, dir.path()).await;
    let started = event_of(&store, &run, "watch.started", None).await;
    assert_eq!(started["serving"], "new");
    // Quiet so far: the rule has data and does not hold.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    *gauge.lock().expect("gauge") = "# TYPE error_ratio gauge\nerror_ratio 0.2\n".into();
    let opened = event_of(&store, &run, "incident.opened", Some("INC-1")).await;
    assert_eq!(opened["rule"], 0, "{opened}");
    assert_eq!(opened["title"], "error_rate > 5% for 300ms");
    assert_eq!(
        (opened["severity"].as_str(), opened["level"].as_u64()),
        (Some("critical"), Some(1))
    );
    let why = opened["evidence"]["why"].as_str().unwrap_or_default();
    assert!(why.contains("0.2 against 0.05"), "{opened}");
    assert_eq!(opened["evidence"]["values"]["error_rate"], 0.2);
    let paged = event_of(&store, &run, "incident.escalated", Some("INC-1")).await;
    assert_eq!(
        (paged["level"].as_u64(), paged["name"].as_str()),
        (Some(1), Some("tech lead"))
    );
    // The incident commander, 1 s later by the ladder's gaps.
    let up = event_where(&store, &run, "incident.escalated", |d| d["level"] == 2).await;
    assert_eq!(up["to"], "ic");
    *gauge.lock().expect("gauge") = "# TYPE error_ratio gauge\nerror_ratio 0.01\n".into();
    let resolved = event_of(&store, &run, "incident.resolved", Some("INC-1")).await;
    assert_eq!(resolved["rule"], 0);
    assert_eq!(
        driving.await.expect("task").expect("execute"),
        RunStatus::Succeeded
    );

    assert!(
        oncall_posts.lock().expect("posts").is_empty(),
        "below the rule's level"
    );
    let pd: Vec<serde_json::Value> = pd_posts
        .lock()
        .expect("posts")
        .iter()
        .map(|p| serde_json::from_str(p).expect("JSON"))
        .collect();
    let actions: Vec<&str> = pd
        .iter()
        .filter_map(|p| p["event_action"].as_str())
        .collect();
    assert_eq!(actions, ["trigger", "resolve"], "{pd:#?}");
    assert_eq!(pd[0]["payload"]["severity"], "critical", "{pd:#?}");
    assert_eq!(pd[0]["dedup_key"], pd[1]["dedup_key"]);
    assert_eq!(
        ic_posts.lock().expect("posts").len(),
        2,
        "paged, then resolved"
    );
    let report = golive_engine::report::build(store.as_ref(), &run)
        .await
        .expect("report");
    let text = golive_engine::report::to_markdown(&report);
    assert!(
        text.contains("INC-1 — rule `error_rate > 5% for 300ms` fired at"),
        "{text}"
    );
    assert!(text.contains("values: error_rate = 0.2"), "{text}");
}

async fn until_waiting(store: &SqliteStore, run: &golive_store::RunId, id: &str) {
    until(&format!("`{id}` waiting"), || async {
        let states = store.item_states(run).await.expect("states");
        states
            .iter()
            .any(|s| s.item_id == id && s.status == ItemStatus::Waiting)
            .then_some(())
    })
    .await
}

/// Promote requests belong to the run: one the first rollout used is not
/// the second rollout's to take (its manual pause waits for a promote of
/// its own).
#[tokio::test(flavor = "multi_thread")]
async fn a_promote_used_by_one_rollout_is_not_taken_by_the_next() {
    let dir = tempfile::tempdir().expect("dir");
    let (metrics, _) = receiver("# TYPE error_ratio gauge\nerror_ratio 0\n");
    let rollout = |id: &str| {
        format!(
            "      - id: {id}\n        rollout:\n          strategy: canary\n          traffic: {{command: 'true'}}\n          steps: [{{weight: 50, pause: manual}}, {{weight: 100}}]\n          analysis:\n            interval: 1s\n            scrape: {{stable: '{metrics}/metrics', canary: '{metrics}/metrics'}}\n            metrics: [{{name: error_ratio, expr: error_ratio}}]\n            rules: [error_ratio > 0.5]\n"
        )
    };
    let src = format!(
        "name: two\nphases:\n  - title: a\n    items:\n{}{}",
        rollout("first"),
        rollout("second")
    );
    let (plan, store) = planned(&src, dir.path()).await;
    let engine = Engine::new(Arc::clone(&store)).expect("engine");
    let run = engine.create(&src, &plan, None).await.expect("create");
    let driving = {
        let (run, plan) = (run.clone(), plan.clone());
        tokio::spawn(async move { engine.execute(&run, &plan, &[]).await })
    };
    let promote = || {
        golive_engine::answers::rollout(
            store.as_ref(),
            &run,
            golive_engine::answers::RolloutCommand::Promote,
            "alice",
            None,
        )
    };
    until_waiting(&store, &run, "first").await;
    assert!(promote().await.expect("promote"));
    until_waiting(&store, &run, "second").await;
    // It waits for its own promote (this waits on purpose: it asserts that
    // nothing happens).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let second = store
        .item_states(&run)
        .await
        .expect("states")
        .into_iter()
        .find(|s| s.item_id == "second")
        .expect("second");
    assert_eq!(second.status, ItemStatus::Waiting, "{second:?}");
    assert!(promote().await.expect("promote"));
    let status = driving.await.expect("task").expect("execute");
    assert_eq!(status, RunStatus::Succeeded);
}

/// The watch window lives in the journal: killed in the middle of an
/// incident, a resume by another engine goes on with the same window and
/// the same incident, never opens it again nor tells a level twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_watch_window_resumed_after_a_crash_goes_on_with_its_incident() {
    let dir = tempfile::tempdir().expect("dir");
    let (oncall, oncall_posts) = receiver("");
    let (lead, lead_posts) = receiver("");
    let up = dir.path().join("up");
    std::fs::write(&up, "").expect("up");
    let src = watched(
        &format!(
            r#"  oncall: {{slack: '{oncall}/hook'}}
  lead: {{slack: '{lead}/hook'}}
"#
        ),
        Some(&up),
        r#"  window: 8s
  interval: 100ms
  checks: [health]
  escalation:
    - {name: on-call, after: 0s, notify: oncall}
    - {name: tech lead, after: 2s, notify: lead}
"#,
    );
    let (store, run, driving) = watching(&src, dir.path()).await;
    std::fs::remove_file(&up).expect("down");
    event_of(&store, &run, "incident.escalated", Some("INC-1")).await;
    // The engine dies mid-incident; its lease runs out.
    driving.abort();
    let _ = driving.await;
    lease_expired(&store, &run).await;
    let resumed_at = jiff::Timestamp::now();
    let resuming = resumed(&store, &run);
    // The tech lead is told 2 s after the incident opened, by the resume.
    event_where(&store, &run, "incident.escalated", |d| d["level"] == 1).await;
    std::fs::write(&up, "").expect("up again");
    event_of(&store, &run, "incident.resolved", Some("INC-1")).await;
    let status = resuming.await.expect("task").expect("resume");
    assert_eq!(status, RunStatus::Succeeded);

    let events = store.events_after(&run, 0, 10_000).await.expect("events");
    let of = |kind: &str| events.iter().filter(|e| e.kind == kind).collect::<Vec<_>>();
    assert_eq!(of("watch.started").len(), 1);
    assert_eq!(of("incident.opened").len(), 1, "{events:#?}");
    let levels: Vec<u64> = of("incident.escalated")
        .iter()
        .filter_map(|e| e.data["level"].as_u64())
        .collect();
    assert_eq!(levels, [0, 1], "each level told once");
    // The window kept its start: it ended 8 s after it began, before 8 s
    // after the resume (which came once the lease ran out).
    let (start, end) = (of("watch.started")[0].at, of("watch.ended")[0].at);
    let window = jiff::SignedDuration::from_secs(8);
    assert!(end >= start + window, "{start} → {end}");
    assert!(
        end < resumed_at + window,
        "restarted: {start} → {end}, resumed {resumed_at}"
    );
    assert_eq!(
        oncall_posts.lock().expect("posts").len(),
        2,
        "told, resolved"
    );
    assert_eq!(lead_posts.lock().expect("posts").len(), 2, "told, resolved");
}

/// An alert (as `POST /api/alertmanager` records it) opens an incident in
/// the watch window; the engine dies; the resolution arrives while no
/// engine runs; the resume resolves the incident once, without opening it
/// again or escalating twice — the window's alerts live only in the
/// journal and the requests. Outside a window alerts are refused.
#[tokio::test(flavor = "multi_thread")]
async fn an_alerts_incident_survives_a_crash_and_resolves_once() {
    use golive_engine::answers::{self, AnswerError};
    use golive_engine::monitor::Alert;
    let dir = tempfile::tempdir().expect("dir");
    let (oncall, oncall_posts) = receiver("");
    let up = dir.path().join("up");
    std::fs::write(&up, "").expect("up");
    let src = watched(
        &format!(
            r#"  oncall: {{slack: '{oncall}/hook'}}
"#
        ),
        Some(&up),
        r#"  window: 6s
  interval: 100ms
  checks: [health]
  escalation:
    - {name: on-call, after: 0s, notify: oncall}
"#,
    );
    let (store, run, driving) = watching(&src, dir.path()).await;
    let mut alert = Alert {
        fingerprint: "1a30ba71cca2921f".into(),
        starts_at: "2026-12-07T03:00:00Z".parse().expect("time"),
        firing: true,
        alertname: "HighErrorRate".into(),
        labels: [("alertname".to_string(), "HighErrorRate".to_string())].into(),
        annotations: [("summary".to_string(), "5xx above 5%".to_string())].into(),
        generator_url: None,
    };
    let record = |alert: Alert| {
        let store = Arc::clone(&store);
        let run = run.clone();
        async move { answers::alerts(store.as_ref(), &run, &[alert], "alertmanager").await }
    };
    assert_eq!(record(alert.clone()).await.expect("firing"), 1);
    assert_eq!(
        record(alert.clone()).await.expect("repeat"),
        0,
        "a repeat is not new"
    );
    let opened = event_of(&store, &run, "incident.opened", Some("INC-1")).await;
    assert_eq!(opened["alert"], "1a30ba71cca2921f@2026-12-07T03:00:00Z");
    event_of(&store, &run, "incident.escalated", Some("INC-1")).await;
    driving.abort();
    let _ = driving.await;
    alert.firing = false;
    assert_eq!(record(alert.clone()).await.expect("resolved"), 1);
    lease_expired(&store, &run).await;
    let status = resumed(&store, &run);
    let done = event_of(&store, &run, "incident.resolved", Some("INC-1")).await;
    assert_eq!(done["alert"], opened["alert"]);
    assert_eq!(
        status.await.expect("task").expect("resume"),
        RunStatus::Succeeded
    );
    let events = store.events_after(&run, 0, 10_000).await.expect("events");
    let of = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(
        (
            of("incident.opened"),
            of("incident.escalated"),
            of("incident.resolved")
        ),
        (1, 1, 1),
        "{events:#?}"
    );
    assert_eq!(
        oncall_posts.lock().expect("posts").len(),
        2,
        "told, resolved"
    );
    let record = golive_engine::monitor::record(&events).expect("window");
    assert_eq!(
        record.incidents[0].evidence,
        [
            "labels: {alertname=\"HighErrorRate\"}",
            "summary: 5xx above 5%"
        ]
    );
    // The run is over: alerts are refused.
    alert.firing = true;
    let late = answers::alerts(store.as_ref(), &run, &[alert], "alertmanager").await;
    assert!(
        matches!(late, Err(AnswerError::RunFinished { .. })),
        "{late:?}"
    );
}

/// The communication schedule: a message whose time passed before the run
/// was created is skipped (journaled, not sent); the others go out at
/// their T-offsets with the run's facts of that moment (status, who
/// signed, the rollout's step, a metric's last value), once each.
#[tokio::test(flavor = "multi_thread")]
async fn the_communication_schedule_sends_each_message_at_its_time_with_the_runs_facts() {
    let dir = tempfile::tempdir().expect("dir");
    let (metrics, _) = receiver("# TYPE error_ratio gauge\nerror_ratio 0.02\n");
    let (chat, posts) = receiver("");
    let src = format!(
        r#"name: scheduled
roles:
  release-manager: {{members: [alice]}}
channels:
  chat: {{slack: '{chat}/hook'}}
comms:
  - {{at: T+3s, channel: chat, message: "{{{{t}}}}: {{{{status}}}} at {{{{step}}}}, error ratio {{{{metrics.error_ratio}}}}"}}
  - {{at: T-24h, channel: chat, message: "{{{{plan}}}} goes live tomorrow"}}
  - {{at: T+0, channel: chat, message: "{{{{plan}}}} ({{{{run}}}}) starts: {{{{phase}}}}, signed by {{{{signed}}}}"}}
phases:
  - title: Sign-off
    items:
      - id: go
        approval: {{roles: [release-manager]}}
  - title: Rollout
    items:
      - id: canary
        rollout:
          strategy: canary
          traffic: {{command: 'true'}}
          steps: [{{weight: 50, pause: 6s}}, {{weight: 100}}]
          analysis:
            interval: 1s
            scrape: {{stable: '{metrics}/metrics', canary: '{metrics}/metrics'}}
            metrics:
              - {{name: error_ratio, expr: error_ratio}}
            rules: [error_ratio > 50%]
"#
    );
    let (plan, store) = planned(&src, dir.path()).await;
    assert_eq!(
        plan.comms
            .iter()
            .map(|c| c.at.to_string())
            .collect::<Vec<_>>(),
        ["T-24h", "T+0", "T+3s"],
        "in the order of their times"
    );
    let engine = Engine::new(Arc::clone(&store))
        .expect("engine")
        .with_poll_interval(std::time::Duration::from_millis(50));
    let t0 = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_millis(500))
        .expect("t0");
    let run = engine.create(&src, &plan, Some(t0)).await.expect("create");
    let driving = {
        let (run, plan) = (run.clone(), plan.clone());
        tokio::spawn(async move { engine.execute(&run, &plan, &[]).await })
    };
    let sign = golive_engine::answers::Sign {
        role: "release-manager".into(),
        by: "alice".into(),
        decision: golive_store::Decision::Approve,
        comment: None,
    };
    until("the sign-off asked", || async {
        golive_engine::answers::sign(store.as_ref(), &run, "go", &sign)
            .await
            .ok()
    })
    .await;
    assert_eq!(
        driving.await.expect("task").expect("execute"),
        RunStatus::Succeeded
    );

    let events = store.events_after(&run, 0, 10_000).await.expect("events");
    let skipped: Vec<&golive_store::Event> = events
        .iter()
        .filter(|e| e.kind == "comms.skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{events:#?}");
    assert_eq!(skipped[0].data["at"], "T-24h");
    let sent: Vec<&golive_store::Event> = events
        .iter()
        .filter(|e| e.kind == "notify.sent" && e.data["comms"].is_u64())
        .collect();
    assert_eq!(
        sent.iter()
            .map(|e| e.data["at"].as_str())
            .collect::<Vec<_>>(),
        [Some("T+0"), Some("T+3s")],
        "each once: {events:#?}"
    );
    // Not before its time.
    let at = |e: &golive_store::Event| e.at.duration_since(t0).as_secs_f64();
    assert!(
        at(sent[0]) >= 0.0 && at(sent[1]) >= 3.0,
        "{} {}",
        at(sent[0]),
        at(sent[1])
    );
    let texts: Vec<String> = posts
        .lock()
        .expect("posts")
        .iter()
        .map(|p| {
            let v: serde_json::Value = serde_json::from_str(p).expect("JSON");
            v["text"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    // At T+0 the sign-off may or may not be in yet; the phase says which.
    assert!(
        texts[0] == format!("scheduled ({run}) starts: Sign-off, signed by nobody yet")
            || texts[0]
                == format!("scheduled ({run}) starts: Rollout, signed by alice (release-manager)"),
        "{texts:?}"
    );
    assert_eq!(texts[1], "T+3s: running at step 1 at 50%, error ratio 0.02");
    let report = golive_engine::report::build(store.as_ref(), &run)
        .await
        .expect("report");
    let text = golive_engine::report::to_markdown(&report);
    let section = text
        .split("## Communications")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        section.contains("- T-24h → chat: skipped at ")
            && section.contains(": its time had passed when the run was created"),
        "{section}"
    );
    assert!(
        section.contains("- T+3s → chat: sent at ")
            && section.contains(": T+3s: running at step 1 at 50%, error ratio 0.02"),
        "{section}"
    );
}

/// A metric rule's incident across a crash: the resume does not open it
/// again while the rule still fires (its hold timer starts afresh, the
/// open incident stays open), pages the next level on the ladder's time,
/// and resolves it once the rule is clear — each page once.
#[tokio::test(flavor = "multi_thread")]
async fn a_rule_incident_survives_a_crash_and_resolves_once() {
    let dir = tempfile::tempdir().expect("dir");
    let gauge = Arc::new(std::sync::Mutex::new(String::from(
        "# TYPE error_ratio gauge\nerror_ratio 0.3\n",
    )));
    let (metrics, _) = receiver_of(Arc::clone(&gauge));
    let (oncall, oncall_posts) = receiver("");
    let (lead, lead_posts) = receiver("");
    let src = watched(
        &format!(
            r#"  oncall: {{slack: '{oncall}/hook'}}
  lead: {{slack: '{lead}/hook'}}
"#
        ),
        None,
        &format!(
            r#"  window: 8s
  interval: 100ms
  scrape: {{stable: '{metrics}/a', canary: '{metrics}/b'}}
  metrics:
    - {{name: error_rate, expr: error_ratio}}
  rules:
    - {{when: error_rate > 5% for 200ms, level: on-call}}
  escalation:
    - {{name: on-call, after: 0s, notify: oncall}}
    - {{name: tech lead, after: 2500ms, notify: lead}}
"#
        ),
    );
    let (store, run, driving) = watching(&src, dir.path()).await;
    event_of(&store, &run, "incident.escalated", Some("INC-1")).await;
    driving.abort();
    let _ = driving.await;
    lease_expired(&store, &run).await;
    let resuming = resumed(&store, &run);
    event_where(&store, &run, "incident.escalated", |d| d["level"] == 1).await;
    *gauge.lock().expect("gauge") = "# TYPE error_ratio gauge\nerror_ratio 0\n".into();
    event_of(&store, &run, "incident.resolved", Some("INC-1")).await;
    assert_eq!(
        resuming.await.expect("task").expect("resume"),
        RunStatus::Succeeded
    );

    let events = store.events_after(&run, 0, 10_000).await.expect("events");
    let of = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(of("incident.opened"), 1, "{events:#?}");
    assert_eq!(of("incident.escalated"), 2, "{events:#?}");
    assert_eq!(of("incident.resolved"), 1, "{events:#?}");
    assert_eq!(
        oncall_posts.lock().expect("posts").len(),
        2,
        "told, resolved"
    );
    assert_eq!(lead_posts.lock().expect("posts").len(), 2, "told, resolved");
}
