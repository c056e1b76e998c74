//! The public status page over HTTP against a real server and store: no
//! token needed; each state of a run and `maintenance_mode` drives the
//! right indicator in `/status`, `/api/v2/status.json` and
//! `/api/v2/summary.json`; the JSON has Statuspage's shape field by field;
//! nothing private (evidence, people's names, reasons, lease owners,
//! tokens) reaches a public visitor. On SQLite and on PostgreSQL.

use std::time::Duration;

use golive_store::{NewConfirmation, NewEvent, NewRequest, NewRun, RunId, RunStatus, Store};
use serde_json::{Value, json};

use crate::util::{Db, TestServer, fast_config, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    status_page_follows_runs_and_maintenance(Db::sqlite()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    status_page_follows_runs_and_maintenance(Db::postgres().await).await
}

/// The public view is read once per `status_cache`: a change within it
/// shows only after it, and a crowd of requests is answered from one read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_view_is_read_once_per_cache_period() {
    let db = Db::sqlite();
    let store = db.open().await;
    let admin = token(&store, "Ada Admin", "admin", None).await;
    store.close().await;
    let config = golive_server::ServerConfig {
        status_cache: Duration::from_secs(3),
        ..fast_config()
    };
    let server = TestServer::start(&db, config).await;
    let description = || async {
        let (s, v) = server.call("GET", "/api/v2/status.json", None, None).await;
        assert_eq!(s, 200, "{v}");
        v["status"]["description"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let before = description().await;
    assert_eq!(before, "All Systems Operational");
    let (s, v) = server
        .call(
            "POST",
            "/api/admin/feature-flags",
            Some(&admin),
            Some(json!({"flag": "maintenance_mode", "enabled": true})),
        )
        .await;
    assert!(s < 300, "{v}");
    // Within the period: the view read before the change.
    assert_eq!(description().await, before, "served from the cache");
    // A crowd at once: every request answered, all alike.
    let crowd = futures_util::future::join_all((0..64).map(|_| description())).await;
    assert!(crowd.iter().all(|i| i == &crowd[0]), "{crowd:?}");
    let shown = crate::util::eventually(Duration::from_secs(10), "maintenance shown", || async {
        let i = description().await;
        (i != before).then_some(i)
    })
    .await;
    assert_eq!(shown, "Service Under Maintenance");
    server.stop().await;
}

const PLAN: &str = r#"
name: checkout-v2
roles:
  ops: { members: [Margarethe Quux] }
phases:
  - title: Canary traffic
    items:
      - id: backup
        title: Take a backup
        task: { evidence: required }
      - id: announce
        title: Announce
        task: {}
"#;

/// Text that must never reach the public.
const EVIDENCE: &str = "s3://vault/backup-7f3e-EVIDENCE";
const MEMBER: &str = "Margarethe Quux";
const REASON: &str = "p99 of the payment API is odd";
const OWNER: &str = "driver-Zebulon";

const INDICATORS: &[&str] = &["none", "minor", "major", "critical"];
const COMPONENT_STATUSES: &[&str] = &[
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];
const IMPACTS: &[&str] = &["none", "minor", "major", "critical", "maintenance"];

/// What a visitor without a token gets from the three routes.
struct Seen {
    html: String,
    status: Value,
    summary: Value,
    texts: [String; 3],
}

async fn visit(server: &TestServer, secrets: &[&str]) -> Seen {
    let get = |path: &'static str| async move {
        let resp = server
            .client
            .get(server.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{path} without a token");
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|c| c.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (ctype, resp.text().await.expect("body"))
    };
    let (ctype, html) = get("/status").await;
    assert!(ctype.starts_with("text/html"), "{ctype}");
    let (ctype, status_text) = get("/api/v2/status.json").await;
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let (_, summary_text) = get("/api/v2/summary.json").await;
    let status: Value = serde_json::from_str(&status_text).expect("status.json");
    let summary: Value = serde_json::from_str(&summary_text).expect("summary.json");
    for text in [&html, &status_text, &summary_text] {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret:?} leaked: {text}");
        }
    }
    check_status_shape(&status);
    check_summary_shape(&summary);
    Seen {
        html: html.clone(),
        status,
        summary,
        texts: [html, status_text, summary_text],
    }
}

fn string<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {v}"))
}

fn time(v: &Value, field: &str) {
    let t = string(v, field);
    t.parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("`{field}` = {t:?} is not RFC 3339: {e}"));
}

fn time_or_null(v: &Value, field: &str) {
    assert!(
        v.as_object().expect("object").contains_key(field),
        "no `{field}` in {v}"
    );
    if !v[field].is_null() {
        time(v, field);
    }
}

fn one_of(v: &Value, field: &str, allowed: &[&str]) {
    let s = string(v, field);
    assert!(allowed.contains(&s), "`{field}` = {s:?} not in {allowed:?}");
}

fn check_page(page: &Value) {
    for f in ["id", "name", "time_zone"] {
        assert!(!string(page, f).is_empty(), "{page}");
    }
    let url = string(page, "url");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/status"),
        "{url}"
    );
    time(page, "updated_at");
}

fn check_status(status: &Value) {
    one_of(status, "indicator", INDICATORS);
    assert!(!string(status, "description").is_empty());
}

fn check_status_shape(v: &Value) {
    check_page(&v["page"]);
    check_status(&v["status"]);
}

fn check_component(c: &Value, page_id: &str) {
    for f in ["id", "name"] {
        assert!(!string(c, f).is_empty(), "{c}");
    }
    one_of(c, "status", COMPONENT_STATUSES);
    time(c, "created_at");
    time(c, "updated_at");
    assert!(c["position"].is_u64(), "{c}");
    assert!(c["description"].is_string() || c["description"].is_null());
    for f in ["showcase", "group", "only_show_if_degraded"] {
        assert!(c[f].is_boolean(), "`{f}` in {c}");
    }
    assert!(c["group_id"].is_null() || c["group_id"].is_string());
    assert!(c["start_date"].is_null() || c["start_date"].is_string());
    assert_eq!(string(c, "page_id"), page_id);
}

fn check_incident(i: &Value, page_id: &str, statuses: &[&str]) {
    assert!(!string(i, "id").is_empty());
    assert!(!string(i, "name").is_empty());
    one_of(i, "status", statuses);
    one_of(i, "impact", IMPACTS);
    for f in ["created_at", "updated_at", "started_at"] {
        time(i, f);
    }
    time_or_null(i, "monitoring_at");
    time_or_null(i, "resolved_at");
    assert!(i["resolved_at"].is_null(), "unresolved: {i}");
    assert!(string(i, "shortlink").starts_with("http://"));
    assert_eq!(string(i, "page_id"), page_id);
    let updates = i["incident_updates"].as_array().expect("incident_updates");
    assert!(!updates.is_empty());
    for u in updates {
        for f in ["id", "body"] {
            assert!(!string(u, f).is_empty(), "{u}");
        }
        one_of(u, "status", statuses);
        assert_eq!(u["incident_id"], i["id"]);
        for f in ["created_at", "updated_at", "display_at"] {
            time(u, f);
        }
    }
    for c in i["components"].as_array().expect("components") {
        check_component(c, page_id);
    }
}

fn check_summary_shape(v: &Value) {
    check_page(&v["page"]);
    check_status(&v["status"]);
    let page_id = string(&v["page"], "id");
    let components = v["components"].as_array().expect("components");
    assert!(!components.is_empty());
    for c in components {
        check_component(c, page_id);
    }
    for i in v["incidents"].as_array().expect("incidents") {
        check_incident(
            i,
            page_id,
            &[
                "investigating",
                "identified",
                "monitoring",
                "resolved",
                "postmortem",
            ],
        );
    }
    for m in v["scheduled_maintenances"]
        .as_array()
        .expect("scheduled_maintenances")
    {
        check_incident(
            m,
            page_id,
            &["scheduled", "in_progress", "verifying", "completed"],
        );
        time(m, "scheduled_for");
        time_or_null(m, "scheduled_until");
    }
}

/// The indicator, the one component's status and the page's banner level.
fn levels(seen: &Seen) -> (String, String, String) {
    let banner = seen
        .html
        .split("data-level=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("banner level")
        .to_string();
    assert_eq!(
        seen.status["status"], seen.summary["status"],
        "both documents agree"
    );
    (
        string(&seen.status["status"], "indicator").to_string(),
        string(&seen.summary["components"][0], "status").to_string(),
        banner,
    )
}

/// The indicator, the component's status, the banner level, the words.
type Want = (&'static str, &'static str, &'static str, &'static str);

const OPERATIONAL: Want = ("none", "operational", "ok", "All Systems Operational");
const DEGRADED: Want = (
    "minor",
    "degraded_performance",
    "minor",
    "Degraded Performance",
);
const MAINTENANCE: Want = (
    "none",
    "under_maintenance",
    "maint",
    "Service Under Maintenance",
);
const MAJOR_OUTAGE: Want = (
    "critical",
    "major_outage",
    "critical",
    "Major Service Outage",
);
const PARTIAL_OUTAGE: Want = ("major", "partial_outage", "major", "Partial System Outage");

fn expect(seen: &Seen, (indicator, component, banner, words): Want) {
    assert_eq!(
        levels(seen),
        (indicator.into(), component.into(), banner.into()),
        "{}",
        seen.texts[2]
    );
    assert!(seen.html.contains(words), "{words:?} not in {}", seen.html);
    assert_eq!(string(&seen.status["status"], "description"), words);
}

async fn status_page_follows_runs_and_maintenance(db: Db) {
    let store = db.open().await;
    let admin = token(&store, "Ada Admin", "admin", None).await;
    let secrets = [EVIDENCE, MEMBER, REASON, OWNER, "Ada Admin", admin.as_str()];

    // Nothing has run: operational, no current go-live, no incidents.
    store.close().await;
    let server = TestServer::start(&db, fast_config()).await;
    let seen = visit(&server, &secrets).await;
    expect(&seen, OPERATIONAL);
    assert!(seen.html.contains("No go-live under way"), "{}", seen.html);
    assert_eq!(seen.summary["incidents"], json!([]));
    assert_eq!(seen.summary["scheduled_maintenances"], json!([]));
    // The page is accessible without scripts or outside assets.
    for needed in [
        "<html lang=\"en\"",
        "name=\"viewport\"",
        "<main",
        "aria-labelledby=\"overall\"",
        "<header>",
        "<footer>",
    ] {
        assert!(seen.html.contains(needed), "{needed}");
    }
    for banned in ["<script", "src=\"http", "href=\"http", "@import"] {
        assert!(!seen.html.contains(banned), "{banned}");
    }

    // A run under way, with evidence and a person's name in its journal
    // and a rollout at step 2: still operational, and the page shows the
    // plan, the phase and the step.
    let store = db.open().await;
    let run = store
        .create_run(&NewRun {
            plan_name: "checkout-v2".into(),
            plan_text: PLAN.into(),
            t0: None,
            items: vec!["backup".into(), "announce".into()],
            actor: Some(MEMBER.into()),
        })
        .await
        .expect("run")
        .summary
        .id;
    // A lease far from its end: this server does not adopt the run.
    assert!(
        store
            .acquire_lease(&run, OWNER, Duration::from_secs(3600))
            .await
            .expect("lease")
    );
    store
        .set_run_status(&run, OWNER, RunStatus::Running)
        .await
        .expect("running");
    assert!(
        store
            .confirm(
                &run,
                "backup",
                &NewConfirmation {
                    by: MEMBER.into(),
                    evidence: Some(EVIDENCE.into()),
                    skipped: false,
                    reason: None,
                },
            )
            .await
            .expect("confirm")
    );
    store
        .append_event(
            &run,
            OWNER,
            &NewEvent {
                kind: "rollout.weight".into(),
                item_id: Some("announce".into()),
                data: json!({"step": 2, "weight": 25, "stable": 75, "why": REASON, "detail": EVIDENCE}),
            },
        )
        .await
        .expect("weight");
    let seen = visit(&server, &secrets).await;
    expect(&seen, OPERATIONAL);
    for shown in [
        "checkout-v2",
        "Canary traffic",
        "In progress",
        "step 2, 25% of traffic",
    ] {
        assert!(seen.html.contains(shown), "{shown:?} not in {}", seen.html);
    }

    // A held rollout: minor.
    request(&store, &run, "pause:1").await;
    let seen = visit(&server, &secrets).await;
    expect(&seen, DEGRADED);
    assert!(seen.html.contains("Rollout held"), "{}", seen.html);
    let incidents = seen.summary["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 1, "{}", seen.texts[2]);
    assert_eq!(incidents[0]["id"], json!(run.as_str()));
    assert_eq!(incidents[0]["impact"], json!("minor"));

    // Resumed: operational again.
    request(&store, &run, "resume:1").await;
    let seen = visit(&server, &secrets).await;
    expect(&seen, OPERATIONAL);

    // The watch window after the go-live: an open incident is minor (its
    // evidence stays private), its resolution operational again.
    let watch = |kind: &str, data: Value| NewEvent {
        kind: kind.into(),
        item_id: None,
        data,
    };
    for (kind, data) in [
        ("watch.started", json!({"window_s": 3600})),
        (
            "incident.opened",
            json!({"incident": "INC-1", "check": "backup", "title": "t", "evidence": {"status": "fail", "conditions": [{"condition": "status == 200", "passed": false, "observed": EVIDENCE}]}}),
        ),
    ] {
        store
            .append_event(&run, OWNER, &watch(kind, data))
            .await
            .expect("watch event");
    }
    let seen = visit(&server, &secrets).await;
    expect(&seen, DEGRADED);
    store
        .append_event(
            &run,
            OWNER,
            &watch(
                "incident.resolved",
                json!({"incident": "INC-1", "check": "backup", "open_s": 1.0}),
            ),
        )
        .await
        .expect("resolved");
    let seen = visit(&server, &secrets).await;
    expect(&seen, OPERATIONAL);

    // maintenance_mode on: under maintenance, an in-progress maintenance,
    // and the page indicator stays in Statuspage's documented enum.
    let (s, v) = server
        .call(
            "POST",
            "/api/admin/feature-flags",
            Some(&admin),
            Some(json!({"flag": "maintenance_mode", "enabled": true, "reason": REASON})),
        )
        .await;
    assert!(s < 300, "{v}");
    let seen = crate::util::eventually(Duration::from_secs(10), "maintenance shown", || async {
        let seen = visit(&server, &secrets).await;
        (levels(&seen).1 == "under_maintenance").then_some(seen)
    })
    .await;
    expect(&seen, MAINTENANCE);
    let m = &seen.summary["scheduled_maintenances"];
    assert_eq!(m.as_array().map(Vec::len), Some(1), "{m}");
    assert_eq!(m[0]["status"], json!("in_progress"));
    assert_eq!(m[0]["impact"], json!("maintenance"));

    // Rolling back outranks maintenance: critical.
    store
        .set_run_status(&run, OWNER, RunStatus::RollingBack)
        .await
        .expect("rolling back");
    let seen = visit(&server, &secrets).await;
    expect(&seen, MAJOR_OUTAGE);
    assert!(seen.html.contains("Rolling back"), "{}", seen.html);
    assert_eq!(seen.summary["incidents"][0]["impact"], json!("critical"));

    // Rolled back a moment ago (and maintenance over): major.
    store
        .set_run_status(&run, OWNER, RunStatus::RolledBack)
        .await
        .expect("rolled back");
    let (s, v) = server
        .call(
            "DELETE",
            "/api/admin/feature-flags/maintenance_mode?reason=over",
            Some(&admin),
            None,
        )
        .await;
    assert!(s < 300, "{v}");
    let seen = crate::util::eventually(Duration::from_secs(10), "maintenance over", || async {
        let seen = visit(&server, &secrets).await;
        (levels(&seen).1 != "under_maintenance").then_some(seen)
    })
    .await;
    expect(&seen, PARTIAL_OUTAGE);
    assert!(seen.html.contains("No go-live under way"), "{}", seen.html);
    assert!(seen.html.contains("Rolled back"), "history: {}", seen.html);
    assert_eq!(seen.summary["incidents"][0]["impact"], json!("major"));
    assert_eq!(seen.summary["scheduled_maintenances"], json!([]));

    // A plan name is text, never markup, on the page.
    store
        .create_run(&NewRun {
            plan_name: "<img src=x onerror=alert(1)>".into(),
            plan_text: PLAN.into(),
            t0: None,
            items: vec!["backup".into()],
            actor: None,
        })
        .await
        .expect("run");
    let seen = visit(&server, &secrets).await;
    assert!(!seen.html.contains("<img"), "{}", seen.html);
    assert!(
        seen.html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        seen.html
    );
    assert_eq!(
        seen.summary["incidents"][0]["id"],
        json!(run.as_str()),
        "a pending run adds no incident"
    );

    // A token is not needed, and a bad one does not matter either.
    let resp = server
        .client
        .get(server.url("/api/v2/status.json"))
        .bearer_auth("glv_0000000000_00000000000000000000000000000000")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    store.close().await;
    server.stop().await;
}

async fn request(store: &impl Store, run: &RunId, kind: &str) {
    assert!(
        store
            .request(
                run,
                &NewRequest {
                    kind: kind.into(),
                    by: MEMBER.into(),
                    reason: Some(REASON.into()),
                },
            )
            .await
            .expect("request")
    );
}
