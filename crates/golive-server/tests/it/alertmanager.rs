//! `POST /api/alertmanager` end to end: a run started through the API sits
//! in its watch window; Alertmanager's version 4 payloads (firing, the
//! same again, resolved) open, escalate and resolve an incident in its
//! journal; the refusals are short JSON. On SQLite and on PostgreSQL.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Db, TestServer, eventually, serve_with_tokens, start_run};

on_both!(alerts_open_escalate_and_resolve_incidents);

/// The webhook body Alertmanager sends (version 4), with the fields it
/// adds that golive does not use (`truncatedAlerts`, and one it may add
/// tomorrow).
fn notification(status: &str, ends_at: &str) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}/{severity=\"critical\"}:{alertname=\"HighErrorRate\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "golive",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
        "commonAnnotations": {"summary": "checkout 5xx above 5%"},
        "externalURL": "http://127.0.0.1:9093",
        "somethingNew": {"nested": true},
        "alerts": [{
            "status": status,
            "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
            "annotations": {"summary": "checkout 5xx above 5%", "runbook_url": "https://runbooks.example/5xx"},
            "startsAt": "2026-12-07T03:00:00.123Z",
            "endsAt": ends_at,
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=rate%28http_5xx%5B1m%5D%29",
            "fingerprint": "1a30ba71cca2921f"
        }]
    })
}

async fn journal(server: &TestServer, token: &str, run: &str) -> Vec<Value> {
    let (s, v) = server
        .call("GET", &format!("/api/runs/{run}/events"), Some(token), None)
        .await;
    assert_eq!(s, 200, "{v}");
    v["events"].as_array().cloned().unwrap_or_default()
}

/// The events of `kind`.
async fn of_kind(server: &TestServer, token: &str, run: &str, kind: &str) -> Vec<Value> {
    journal(server, token, run)
        .await
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// Waits for the first event of `kind`; its data.
async fn event(server: &TestServer, token: &str, run: &str, kind: &str) -> Value {
    eventually(Duration::from_secs(15), kind, || async {
        of_kind(server, token, run, kind)
            .await
            .first()
            .map(|e| e["data"].clone())
    })
    .await
}

/// A plan in its watch window for a minute after its one check (the
/// server's own `/health`, passing), with one escalation level to a log
/// channel.
fn watched_plan(server: &TestServer) -> String {
    format!(
        r#"name: watched
channels:
  log: {{log: true}}
phases:
  - title: Go live
    items:
      - id: health
        check:
          http: {{url: '{}'}}
          expect: [status == 200]
monitor:
  window: 60s
  interval: 200ms
  checks: [health]
  escalation:
    - {{name: on-call, after: 0s, notify: log, to: oncall}}
"#,
        server.url("/health")
    )
}

/// Posts a notification as Alertmanager does to `path`; asserts it was
/// taken and that `recorded` of its alerts were new for `run`, the only
/// run in its window.
async fn deliver(
    server: &TestServer,
    token: &str,
    path: &str,
    body: Value,
    run: &str,
    recorded: u64,
) {
    let (s, v) = server.call("POST", path, Some(token), Some(body)).await;
    assert_eq!(
        (s, &v["runs"]),
        (200, &json!([{"run": run, "recorded": recorded}])),
        "{v}"
    );
}

/// After several of the watch loop's polls, still one incident opened.
async fn still_one_incident(server: &TestServer, token: &str, run: &str) {
    tokio::time::sleep(Duration::from_millis(800)).await;
    let opened = of_kind(server, token, run, "incident.opened").await;
    assert_eq!(opened.len(), 1, "{opened:?}");
}

/// A server with the tokens `alertmanager` (operator), `vera` (viewer)
/// and `ops` (operator), in that order, and a run of [`watched_plan`] in
/// its watch window.
async fn a_run_in_its_window(db: &Db) -> (TestServer, Vec<String>, String) {
    let (server, tokens) = serve_with_tokens(
        db,
        &[
            ("alertmanager", "operator"),
            ("vera", "viewer"),
            ("ops", "operator"),
        ],
    )
    .await;
    let run = start_run(&server, &tokens[2], &watched_plan(&server)).await;
    event(&server, &tokens[1], &run, "watch.started").await;
    (server, tokens, run)
}

async fn alerts_open_escalate_and_resolve_incidents(db: Db) {
    let (server, tokens, run) = a_run_in_its_window(&db).await;
    let (am, viewer, ops) = (&tokens[0], &tokens[1], &tokens[2]);

    // Refusals come before anything is recorded, as short JSON.
    let firing = notification("firing", "0001-01-01T00:00:00Z");
    for (who, token, status, code) in [
        ("no token", None, 401, "unauthorized"),
        ("a viewer", Some(viewer.as_str()), 403, "forbidden"),
    ] {
        let (s, v) = server
            .call("POST", "/api/alertmanager", token, Some(firing.clone()))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{who}: {v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.len() < 300),
            "{v}"
        );
    }
    let mut wrong = firing.clone();
    wrong["version"] = json!("3");
    let mut unnamed = firing.clone();
    unnamed["alerts"][0]["fingerprint"] = json!("../../x");
    let mut nul = firing.clone();
    nul["alerts"][0]["labels"]["service"] = json!("check\u{0}out");
    for (what, body, status) in [
        ("version 3", wrong, 422),
        ("a fingerprint of other characters", unnamed, 422),
        ("a NUL", nul, 400),
    ] {
        let (s, v) = server
            .call("POST", "/api/alertmanager", Some(am), Some(body))
            .await;
        assert_eq!(s, status, "{what}: {v}");
        assert_eq!(v["error"]["code"], "invalid", "{what}: {v}");
    }
    let (s, v) = server
        .call(
            "POST",
            "/api/alertmanager?run=r-aaaaaaaa",
            Some(am),
            Some(firing.clone()),
        )
        .await;
    assert_eq!((s, &v["error"]["code"]), (404, &json!("not_found")), "{v}");
    // A run named that is not in a watch window: 409, nothing recorded.
    let unwatched = start_run(
        &server,
        ops,
        "name: quick\nphases:\n  - title: a\n    items:\n      - id: note\n        task: {}\n",
    )
    .await;
    let (s, v) = server
        .call(
            "POST",
            &format!("/api/alertmanager?run={unwatched}"),
            Some(am),
            Some(firing.clone()),
        )
        .await;
    assert_eq!((s, &v["error"]["code"]), (409, &json!("conflict")), "{v}");
    assert!(
        of_kind(&server, viewer, &run, "incident.opened")
            .await
            .is_empty()
    );

    // Firing: recorded for the run in its window, an incident opens with
    // the alert as evidence, and escalates like any incident.
    deliver(&server, am, "/api/alertmanager", firing.clone(), &run, 1).await;
    let opened = event(&server, viewer, &run, "incident.opened").await;
    let key = "1a30ba71cca2921f@2026-12-07T03:00:00.123Z";
    assert_eq!(opened["incident"], "INC-1", "{opened}");
    assert_eq!(opened["alert"], key, "{opened}");
    assert_eq!(opened["title"], "HighErrorRate");
    assert_eq!(opened["by"], "alertmanager");
    assert_eq!(opened["evidence"]["labels"]["service"], "checkout");
    assert_eq!(
        opened["evidence"]["annotations"]["runbook_url"],
        "https://runbooks.example/5xx"
    );
    assert!(
        opened["evidence"]["generatorURL"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:9090/graph")),
        "{opened}"
    );
    let escalated = event(&server, viewer, &run, "incident.escalated").await;
    assert_eq!(
        (escalated["incident"].as_str(), escalated["to"].as_str()),
        (Some("INC-1"), Some("oncall"))
    );

    // Alertmanager repeats the notification: nothing new is recorded, and
    // after several of the watch loop's polls there is still one incident.
    deliver(&server, am, "/api/alertmanager", firing.clone(), &run, 0).await;
    still_one_incident(&server, viewer, &run).await;

    // Resolved: the incident resolves, once, however often it is said.
    let resolved = notification("resolved", "2026-12-07T03:05:00Z");
    for recorded in [1, 0] {
        let path = format!("/api/alertmanager?run={run}");
        deliver(&server, am, &path, resolved.clone(), &run, recorded).await;
    }
    let done = event(&server, viewer, &run, "incident.resolved").await;
    assert_eq!(
        (done["incident"].as_str(), done["alert"].as_str()),
        (Some("INC-1"), Some(key)),
        "{done}"
    );
    // Another alert whose resolution arrives before its firing (a late
    // retry of the firing one) never opens an incident.
    let other = |v: Value| {
        let mut v = v;
        v["alerts"][0]["fingerprint"] = json!("2b41cb82ddb3a320");
        v
    };
    for body in [other(resolved), other(firing)] {
        deliver(&server, am, "/api/alertmanager", body, &run, 1).await;
    }
    still_one_incident(&server, viewer, &run).await;
    assert_eq!(
        of_kind(&server, viewer, &run, "incident.resolved")
            .await
            .len(),
        1
    );
    // The record tells the alert's incident.
    let (s, v) = server
        .call(
            "GET",
            &format!("/api/runs/{run}/report?format=markdown"),
            Some(viewer),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let text = v.as_str().unwrap_or_default();
    assert!(
        text.contains("INC-1 — alert `HighErrorRate` fired at"),
        "{text}"
    );
    assert!(text.contains("summary: checkout 5xx above 5%"), "{text}");
    server.stop().await;
}

/// A process killed (by its own handle, so only it) when the test ends,
/// however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The real thing: Prometheus Alertmanager (scripts/setup.sh installs it),
/// on loopback only and without its cluster port, its receiver pointed at
/// golive with an operator token as in the docs. An alert posted to its
/// own API opens an incident; the same alert ended resolves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_opens_and_resolves_an_incident() {
    let db = Db::sqlite();
    let (server, tokens, run) = a_run_in_its_window(&db).await;
    let (am, viewer) = (&tokens[0], &tokens[1]);

    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            r#"route:
  receiver: golive
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: golive
    webhook_configs:
      - url: '{}'
        send_resolved: true
        http_config:
          authorization: {{credentials: '{am}'}}
"#,
            server.url("/api/alertmanager")
        ),
    )
    .expect("config");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("alertmanager.log")).expect("log");
    let child = std::process::Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("prometheus-alertmanager on PATH (scripts/setup.sh installs it)");
    let _alertmanager = Killed(child);
    let api = format!("http://127.0.0.1:{port}/api/v2/alerts");
    let post = |ends: Option<jiff::Timestamp>| {
        let mut alert = json!({
            "labels": {"alertname": "CheckoutDown", "service": "checkout"},
            "annotations": {"summary": "checkout answers 503"},
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
        });
        if let Some(at) = ends {
            alert["endsAt"] = json!(at.to_string());
        }
        let (client, api) = (server.client.clone(), api.clone());
        async move {
            client
                .post(&api)
                .json(&json!([alert]))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    };
    // Until it listens, posting fails; then the alert is taken.
    eventually(
        Duration::from_secs(20),
        "Alertmanager to take an alert",
        || async { post(None).await.then_some(()) },
    )
    .await;
    let opened = event(&server, viewer, &run, "incident.opened").await;
    assert_eq!(opened["title"], "CheckoutDown", "{opened}");
    assert_eq!(opened["by"], "alertmanager");
    assert_eq!(
        opened["evidence"]["annotations"]["summary"],
        "checkout answers 503"
    );
    let key = opened["alert"].as_str().unwrap_or_default().to_string();
    assert!(key.contains('@'), "{opened}");
    // Ended a moment ago: Alertmanager sends it resolved at its next flush.
    assert!(post(Some(jiff::Timestamp::now())).await, "ending the alert");
    let done = event(&server, viewer, &run, "incident.resolved").await;
    assert_eq!(done["alert"].as_str(), Some(key.as_str()), "{done}");
    server.stop().await;
}
