//! The war-room API end to end over HTTP: tokens and roles on every route,
//! OFREP conformance, flags admin, runs answered through the API, the audit
//! log, live events, health, metrics and the OpenAPI document. Each story
//! runs on SQLite and on PostgreSQL.

mod util;

use std::time::Duration;

use golive_server::auth::Need;
use golive_server::openapi::ROUTES;
use golive_store::{Actor, Store};
use serde_json::{Value, json};
use util::{Db, TestServer, eventually, fast_config, token};

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Db::sqlite()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Db::postgres().await).await
            }
        }
    )*};
}

on_both!(
    every_route_checks_its_token,
    ofrep_answers_by_the_protocol,
    flags_admin_merges_and_audits,
    runs_are_answered_through_the_api,
    events_stream_flag_changes_and_run_journal,
);

/// A concrete path for a route pattern.
fn concrete(path: &str) -> String {
    path.replace("{run}", "r-00000000")
        .replace("{item}", "item")
        .replace("{key}", "some_flag")
        .replace("{id}", "0000000000")
}

async fn every_route_checks_its_token(db: Db) {
    let store = db.open().await;
    let viewer = token(&store, "vera", "viewer", None).await;
    let operator = token(&store, "otto", "operator", None).await;
    let expired = token(&store, "old", "admin", Some("1ms")).await;
    let revoked = token(&store, "gone", "admin", None).await;
    let revoked_id = store
        .list_tokens()
        .await
        .expect("tokens")
        .into_iter()
        .find(|t| t.name == "gone")
        .expect("gone")
        .id;
    let actor = Actor {
        name: "test".into(),
        source: None,
    };
    assert!(
        store
            .revoke_token(&revoked_id, &actor)
            .await
            .expect("revoke")
    );
    store.close().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let server = TestServer::start(&db, fast_config()).await;
    let mut checked = 0;
    for route in ROUTES {
        let path = concrete(route.path);
        let body = (route.method != "GET" && route.method != "DELETE").then(|| json!({}));
        if route.need == Need::Public {
            let (status, _) = server.call(route.method, &path, None, body).await;
            assert!(
                status < 400,
                "{} {path} is public but answered {status}",
                route.method
            );
            continue;
        }
        for (who, tok) in [
            ("none", None),
            (
                "unknown",
                Some("glv_0000000000_00000000000000000000000000000000"),
            ),
            ("expired", Some(expired.as_str())),
            ("revoked", Some(revoked.as_str())),
        ] {
            let (status, v) = server.call(route.method, &path, tok, body.clone()).await;
            assert_eq!(status, 401, "{} {path} with {who} token: {v}", route.method);
            assert_eq!(v["error"]["code"], "unauthorized", "{v}");
        }
        let too_weak = match route.need {
            Need::Operator => Some(&viewer),
            Need::Admin => Some(&operator),
            _ => None,
        };
        if let Some(tok) = too_weak {
            let (status, v) = server
                .call(route.method, &path, Some(tok), body.clone())
                .await;
            assert_eq!(
                status, 403,
                "{} {path} with a weaker role: {v}",
                route.method
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} routes checked");
    // X-API-Key is accepted like a bearer token.
    let resp = server
        .client
        .get(server.url("/ofrep/v1/configuration"))
        .header("X-API-Key", &viewer)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    server.stop().await;

    // Refused tokens are rate-limited per address.
    let mut config = fast_config();
    config.auth_failure_limit = 3;
    let server = TestServer::start(&db, config).await;
    for _ in 0..3 {
        let (status, _) = server
            .call("GET", "/api/runs", Some("glv_bad_bad"), None)
            .await;
        assert_eq!(status, 401);
    }
    let resp = server
        .client
        .get(server.url("/api/runs"))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("request");
    assert_eq!(
        resp.status().as_u16(),
        429,
        "even a good token waits once the address is limited"
    );
    assert!(resp.headers().get("retry-after").is_some());
    server.stop().await;
}

async fn ofrep_answers_by_the_protocol(db: Db) {
    let store = db.open().await;
    let admin = token(&store, "ada", "admin", None).await;
    // A definition this golive cannot read (written by another version).
    let actor = Actor {
        name: "test".into(),
        source: None,
    };
    store
        .put_flag(
            "from_the_future",
            &json!({"flag": "from_the_future", "enabled": true, "hyperdrive": 1}),
            None,
            &actor,
            None,
        )
        .await
        .expect("put");
    store.close().await;
    let server = TestServer::start(&db, fast_config()).await;
    let t = Some(admin.as_str());
    for body in [
        json!({"flag": "maintenance_mode", "enabled": true}),
        json!({"flag": "new_checkout", "enabled": true, "percentage": 25}),
        json!({"flag": "theme", "enabled": true, "variants": [{"name": "blue", "value": "#00f", "weight": 1}, {"name": "green", "value": "#0f0", "weight": 0}], "default_variant": "green"}),
        json!({"flag": "dark", "enabled": false}),
    ] {
        let (status, v) = server
            .call("POST", "/api/admin/feature-flags", t, Some(body))
            .await;
        assert_eq!(status, 201, "{v}");
    }
    let eval = |key: &str, ctx: Value| {
        let path = format!("/ofrep/v1/evaluate/flags/{key}");
        let server = &server;
        async move { server.call("POST", &path, t, Some(ctx)).await }
    };
    let (s, v) = eval("maintenance_mode", json!({"context": {}})).await;
    assert_eq!(
        (s, &v["value"], &v["reason"], &v["key"]),
        (
            200,
            &json!(true),
            &json!("STATIC"),
            &json!("maintenance_mode")
        ),
        "{v}"
    );
    assert!(v["metadata"].is_object());
    let (s, v) = eval("dark", json!({"context": {"targetingKey": "u1"}})).await;
    assert_eq!(
        (s, &v["value"], &v["reason"]),
        (200, &json!(false), &json!("DISABLED")),
        "{v}"
    );
    let (s, v) = eval("theme", json!({"context": {"targetingKey": "u1"}})).await;
    assert_eq!(
        (s, &v["value"], &v["variant"]),
        (200, &json!("#00f"), &json!("blue")),
        "{v}"
    );
    // 25%: about a quarter of 400 users, each answer SPLIT.
    let mut on = 0;
    for i in 0..400 {
        let (s, v) = eval(
            "new_checkout",
            json!({"context": {"targetingKey": format!("user-{i}")}}),
        )
        .await;
        assert_eq!((s, &v["reason"]), (200, &json!("SPLIT")), "{v}");
        on += usize::from(v["value"] == json!(true));
    }
    assert!((60..=140).contains(&on), "{on} of 400 at 25%");
    // Errors, each with its code and status.
    let (s, v) = eval("nope", json!({"context": {"targetingKey": "u1"}})).await;
    assert_eq!(
        (s, &v["errorCode"], &v["key"]),
        (404, &json!("FLAG_NOT_FOUND"), &json!("nope")),
        "{v}"
    );
    let (s, v) = eval("new_checkout", json!({"context": {}})).await;
    assert_eq!(
        (s, &v["errorCode"]),
        (400, &json!("TARGETING_KEY_MISSING")),
        "{v}"
    );
    let (s, v) = eval("new_checkout", json!({"context": {"targetingKey": 7}})).await;
    assert_eq!(
        (s, &v["errorCode"]),
        (400, &json!("INVALID_CONTEXT")),
        "{v}"
    );
    let (s, v) = eval("new_checkout", json!({"context": "me"})).await;
    assert_eq!(
        (s, &v["errorCode"]),
        (400, &json!("INVALID_CONTEXT")),
        "{v}"
    );
    let resp = server
        .client
        .post(server.url("/ofrep/v1/evaluate/flags/new_checkout"))
        .bearer_auth(&admin)
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["errorCode"], "PARSE_ERROR", "{v}");
    let (s, v) = eval(
        "from_the_future",
        json!({"context": {"targetingKey": "u1"}}),
    )
    .await;
    assert_eq!((s, &v["errorCode"]), (500, &json!("GENERAL")), "{v}");

    // Bulk: every flag, errors inline, an ETag, 304 when nothing changed.
    let bulk = |etag: Option<String>, ctx: Value| {
        let server = &server;
        let admin = admin.clone();
        async move {
            let mut req = server
                .client
                .post(server.url("/ofrep/v1/evaluate/flags"))
                .bearer_auth(admin)
                .json(&ctx);
            if let Some(e) = etag {
                req = req.header("If-None-Match", e);
            }
            let resp = req.send().await.expect("bulk");
            let status = resp.status().as_u16();
            let etag = resp
                .headers()
                .get("etag")
                .map(|v| v.to_str().expect("ascii").to_string());
            let body = resp.text().await.expect("body");
            (status, etag, body)
        }
    };
    let ctx = json!({"context": {"targetingKey": "user-1"}});
    let (s, etag, body) = bulk(None, ctx.clone()).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).expect("json");
    let flags = v["flags"].as_array().expect("flags");
    assert_eq!(flags.len(), 5, "{v}");
    assert!(
        flags
            .iter()
            .any(|f| f["key"] == "from_the_future" && f["errorCode"] == "GENERAL"),
        "{v}"
    );
    let etag = etag.expect("an ETag");
    let (s, _, body) = bulk(Some(etag.clone()), ctx.clone()).await;
    assert_eq!((s, body.as_str()), (304, ""));
    let (s, other, _) = bulk(
        Some(etag.clone()),
        json!({"context": {"targetingKey": "user-2"}}),
    )
    .await;
    assert_eq!(s, 200, "another context is another answer");
    assert_ne!(other.as_deref(), Some(etag.as_str()));
    let (status, _) = server
        .call(
            "PATCH",
            "/api/admin/feature-flags/dark",
            t,
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    let (s, fresh, _) = bulk(Some(etag.clone()), ctx).await;
    assert_eq!(s, 200, "a flag change invalidates the ETag");
    assert_ne!(fresh.as_deref(), Some(etag.as_str()));

    let (s, v) = server.call("GET", "/ofrep/v1/configuration", t, None).await;
    assert_eq!(s, 200);
    assert_eq!(
        v["capabilities"]["cacheInvalidation"]["polling"]["enabled"], true,
        "{v}"
    );
    server.stop().await;
}

async fn flags_admin_merges_and_audits(db: Db) {
    let store = db.open().await;
    let operator = token(&store, "otto", "operator", None).await;
    let admin = token(&store, "ada", "admin", None).await;
    store.close().await;
    let server = TestServer::start(&db, fast_config()).await;
    let o = Some(operator.as_str());
    // The documents' shape creates, then changes only what it names.
    let (s, v) = server.call("POST", "/api/admin/feature-flags", o, Some(json!({"flag": "maintenance_mode", "enabled": true, "percentage": 5, "reason": "T-0"}))).await;
    assert_eq!((s, &v["version"]), (201, &json!(1)), "{v}");
    let (s, v) = server
        .call(
            "POST",
            "/api/admin/feature-flags",
            o,
            Some(json!({"flag": "maintenance_mode", "enabled": false, "reason": "error rate 6%"})),
        )
        .await;
    assert_eq!(
        (
            s,
            &v["version"],
            &v["definition"]["percentage"],
            &v["definition"]["enabled"]
        ),
        (200, &json!(2), &json!(5), &json!(false)),
        "{v}"
    );
    // Invalid definitions are refused with every problem named.
    let (s, v) = server
        .call(
            "POST",
            "/api/admin/feature-flags",
            o,
            Some(json!({"flag": "bad", "enabled": "yes", "percentage": 120})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("percentage") && msg.contains("enabled"),
        "{msg}"
    );
    // If-Match: a stale version is refused.
    let resp = server
        .client
        .patch(server.url("/api/admin/feature-flags/maintenance_mode"))
        .bearer_auth(&operator)
        .header("If-Match", "1")
        .json(&json!({"percentage": 25}))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status().as_u16(), 412);
    // Deleting needs an admin.
    let (s, _) = server
        .call(
            "DELETE",
            "/api/admin/feature-flags/maintenance_mode",
            o,
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = server
        .call(
            "DELETE",
            "/api/admin/feature-flags/maintenance_mode?reason=done",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = server
        .call("GET", "/api/admin/feature-flags/maintenance_mode", o, None)
        .await;
    assert_eq!(s, 404);
    // The audit log has who, from where, why, before and after.
    let (s, v) = server.call("GET", "/api/audit?action=flag.", o, None).await;
    assert_eq!(s, 200);
    let entries = v.as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["flag.created", "flag.updated", "flag.deleted"]);
    assert_eq!(entries[1]["actor"], "otto");
    assert_eq!(entries[1]["reason"], "error rate 6%");
    assert_eq!(entries[1]["before"]["enabled"], true);
    assert_eq!(entries[1]["after"]["enabled"], false);
    assert!(
        entries[1]["source"]
            .as_str()
            .expect("source")
            .starts_with("127.0.0.1:")
    );
    assert_eq!(entries[2]["actor"], "ada");
    let (_, v) = server
        .call("GET", "/api/audit?actor=ada&action=flag.", o, None)
        .await;
    assert_eq!(v.as_array().expect("entries").len(), 1);
    server.stop().await;
}

const PLAN: &str = r#"
name: api-story
roles:
  security: { members: [sam] }
  ops: { members: [olga] }
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

async fn runs_are_answered_through_the_api(db: Db) {
    let store = db.open().await;
    let operator = token(&store, "olga", "operator", None).await;
    let sam = token(&store, "sam", "security", None).await;
    let mallory = token(&store, "mallory", "security", None).await;
    store.close().await;
    let server = TestServer::start(&db, fast_config()).await;
    let o = Some(operator.as_str());
    let (s, v) = server
        .call(
            "POST",
            "/api/plans/validate",
            o,
            Some(json!({"plan": "name: x\nphases: 3\n"})),
        )
        .await;
    assert_eq!((s, &v["valid"]), (200, &json!(false)), "{v}");
    assert!(
        v["diagnostics"][0]["line"].as_u64().expect("line") >= 1,
        "{v}"
    );
    let (s, v) = server
        .call("POST", "/api/runs", o, Some(json!({"plan": PLAN})))
        .await;
    assert_eq!(s, 201, "{v}");
    let run = v["run"].as_str().expect("run id").to_string();
    // The run executes in the server and waits for the task.
    let item_status = |item: &'static str| {
        let server = &server;
        let run = run.clone();
        let operator = operator.clone();
        async move {
            let (_, v) = server
                .call("GET", &format!("/api/runs/{run}"), Some(&operator), None)
                .await;
            v["items"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|i| i["item_id"] == item)
                    .map(|i| i["status"].as_str().unwrap_or("").to_string())
            })
        }
    };
    eventually(Duration::from_secs(10), "backup waiting", || async {
        item_status("backup").await.filter(|s| s == "waiting")
    })
    .await;
    let confirm = format!("/api/runs/{run}/items/backup/confirm");
    let (s, v) = server.call("POST", &confirm, o, Some(json!({}))).await;
    assert_eq!(s, 422, "evidence is required: {v}");
    let (s, v) = server
        .call("POST", &confirm, Some(&sam), Some(json!({"evidence": "x"})))
        .await;
    assert_eq!(s, 403, "a sign-off token does not confirm tasks: {v}");
    let (s, v) = server
        .call(
            "POST",
            &confirm,
            o,
            Some(json!({"evidence": "s3://backups/1"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = server
        .call("POST", &confirm, o, Some(json!({"evidence": "again"})))
        .await;
    assert_eq!(s, 409, "a second confirmation conflicts");
    eventually(Duration::from_secs(10), "signoff waiting", || async {
        item_status("signoff").await.filter(|s| s == "waiting")
    })
    .await;
    let approve = format!("/api/runs/{run}/items/signoff/approve");
    let (s, v) = server.call("POST", &approve, o, Some(json!({}))).await;
    assert_eq!(s, 403, "an operator cannot sign for security: {v}");
    let (s, v) = server
        .call("POST", &approve, Some(&mallory), Some(json!({})))
        .await;
    assert_eq!(
        s, 422,
        "mallory holds a security token but is not a member: {v}"
    );
    let (s, v) = server
        .call("POST", &approve, Some(&sam), Some(json!({"role": "ops"})))
        .await;
    assert_eq!(s, 403, "a security token cannot sign for ops: {v}");
    let (s, v) = server
        .call("POST", &approve, Some(&sam), Some(json!({"comment": "ok"})))
        .await;
    assert_eq!(s, 200, "{v}");
    eventually(Duration::from_secs(10), "run succeeded", || async {
        let (_, v) = server
            .call("GET", &format!("/api/runs/{run}"), o, None)
            .await;
        (v["run"]["status"] == "succeeded").then_some(())
    })
    .await;
    let (s, v) = server
        .call("GET", &format!("/api/runs/{run}/report"), o, None)
        .await;
    assert_eq!(s, 200);
    let audit: Vec<&str> = v["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        audit,
        ["run.started", "item.confirmed", "item.approved"],
        "{v}"
    );
    let resp = server
        .client
        .get(server.url(&format!("/api/runs/{run}/report?format=markdown")))
        .bearer_auth(&operator)
        .send()
        .await
        .expect("report");
    let md = resp.text().await.expect("text");
    assert!(md.contains("s3://backups/1") && md.contains("sam"), "{md}");
    assert!(md.contains("## Audit log"), "{md}");
    assert!(
        md.contains("item.confirmed by olga from 127.0.0.1:"),
        "{md}"
    );
    let (s, v) = server
        .call(
            "GET",
            &format!("/api/runs/{run}/events?after=2&limit=3"),
            o,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let seqs: Vec<i64> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, [3, 4, 5]);
    let (s, _) = server
        .call(
            "POST",
            &format!("/api/runs/{run}/rollback"),
            o,
            Some(json!({"reason": "late"})),
        )
        .await;
    assert_eq!(s, 409, "a finished run cannot be rolled back");
    let (s, _) = server.call("GET", "/api/runs/r-zzzzzzzz", o, None).await;
    assert_eq!(s, 404);
    server.stop().await;
}

async fn events_stream_flag_changes_and_run_journal(db: Db) {
    let store = db.open().await;
    let operator = token(&store, "olga", "operator", None).await;
    store.close().await;
    let server = TestServer::start(&db, fast_config()).await;
    let o = Some(operator.as_str());
    let (_, v) = server
        .call("POST", "/api/runs", o, Some(json!({"plan": PLAN})))
        .await;
    let run = v["run"].as_str().expect("run").to_string();
    let mut resp = server
        .client
        .get(server.url(&format!("/api/events?run={run}")))
        .bearer_auth(&operator)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/event-stream")
    );
    let (s, _) = server
        .call(
            "POST",
            "/api/admin/feature-flags",
            o,
            Some(json!({"flag": "kill_switch", "enabled": true})),
        )
        .await;
    assert_eq!(s, 201);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(text.contains("event: flag")
        && text.contains("\"kill_switch\"")
        && text.contains("event: run")
        && text.contains("run.created"))
    {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("events in time")
            .expect("chunk")
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("id: "), "{text}");
    drop(resp);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_metrics_and_openapi() {
    let db = Db::sqlite();
    let store = db.open().await;
    let viewer = token(&store, "vera", "viewer", None).await;
    store.close().await;
    let server = TestServer::start(&db, fast_config()).await;
    let (s, v) = server.call("GET", "/health", None, None).await;
    assert_eq!((s, &v["status"]), (200, &json!("ok")));
    let (s, v) = server.call("GET", "/ready", None, None).await;
    assert_eq!((s, &v["status"]), (200, &json!("ready")));
    let (s, _) = server
        .call(
            "POST",
            "/ofrep/v1/evaluate/flags/nope",
            Some(&viewer),
            Some(json!({"context": {}})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = server.call("GET", "/metrics", None, None).await;
    assert_eq!(s, 200);
    let text = v.as_str().expect("text");
    assert!(text.contains(r#"golive_http_requests_total{route="/ofrep/v1/evaluate/flags/{key}",method="POST",status="404"} 1"#), "{text}");
    assert!(
        text.contains(r#"golive_flag_evaluations_total{flag="nope",result="FLAG_NOT_FOUND"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("golive_http_request_duration_seconds_bucket"),
        "{text}"
    );
    let (s, doc) = server.call("GET", "/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for route in ROUTES {
        let op = &doc["paths"][route.path][route.method.to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing from the document",
            route.method,
            route.path
        );
        assert_eq!(op["x-golive-role"], route.need.as_str());
    }
    // Request bodies are the handlers' own types.
    let confirm = &doc["paths"]["/api/runs/{run}/items/{item}/confirm"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    let name = confirm["$ref"]
        .as_str()
        .expect("a $ref")
        .rsplit('/')
        .next()
        .expect("name");
    let schema = &doc["components"]["schemas"][name];
    for field in ["evidence", "fields", "skip", "reason"] {
        assert!(
            schema["properties"][field].is_object(),
            "{field} in {schema}"
        );
    }
    // CORS is closed unless an origin is configured.
    let resp = server
        .client
        .get(server.url("/health"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .expect("cors");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    server.stop().await;
    let mut config = fast_config();
    config.cors_origins = vec!["https://war-room.example".into()];
    let server = TestServer::start(&db, config).await;
    let resp = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/api/runs"))
        .header("Origin", "https://war-room.example")
        .send()
        .await
        .expect("preflight");
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://war-room.example"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_share_flags_and_runs() {
    let db = Db::postgres().await;
    let store = db.open().await;
    let operator = token(&store, "olga", "operator", None).await;
    store.close().await;
    let a = TestServer::start(&db, fast_config()).await;
    let b = TestServer::start(&db, fast_config()).await;
    let o = Some(operator.as_str());
    async fn eval(server: &TestServer, token: Option<&str>) -> (u16, Value) {
        let (s, v) = server
            .call(
                "POST",
                "/ofrep/v1/evaluate/flags/maintenance_mode",
                token,
                Some(json!({"context": {"targetingKey": "u"}})),
            )
            .await;
        (s, v["value"].clone())
    }
    assert_eq!(eval(&b, o).await.0, 404);
    let (s, _) = a
        .call(
            "POST",
            "/api/admin/feature-flags",
            o,
            Some(json!({"flag": "maintenance_mode", "enabled": true})),
        )
        .await;
    assert_eq!(s, 201);
    eventually(
        Duration::from_secs(5),
        "server B to see A's flag",
        || async { (eval(&b, o).await == (200, json!(true))).then_some(()) },
    )
    .await;
    let (s, _) = b
        .call(
            "POST",
            "/api/admin/feature-flags",
            o,
            Some(json!({"flag": "maintenance_mode", "enabled": false})),
        )
        .await;
    assert_eq!(s, 200);
    eventually(
        Duration::from_secs(5),
        "server A to see B's change",
        || async { (eval(&a, o).await == (200, json!(false))).then_some(()) },
    )
    .await;
    // A run started through A is answered through B.
    let (_, v) = a
        .call("POST", "/api/runs", o, Some(json!({"plan": PLAN})))
        .await;
    let run = v["run"].as_str().expect("run").to_string();
    eventually(
        Duration::from_secs(10),
        "backup waiting (seen through B)",
        || async {
            let (_, v) = b.call("GET", &format!("/api/runs/{run}"), o, None).await;
            (v["items"][0]["status"] == "waiting").then_some(())
        },
    )
    .await;
    let (s, v) = b
        .call(
            "POST",
            &format!("/api/runs/{run}/items/backup/confirm"),
            o,
            Some(json!({"evidence": "done"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = a
        .call(
            "POST",
            &format!("/api/runs/{run}/items/backup/confirm"),
            o,
            Some(json!({"evidence": "twice"})),
        )
        .await;
    assert_eq!(
        s, 409,
        "the same confirmation through the other server counts once"
    );
    let (s, v) = b
        .call("POST", &format!("/api/runs/{run}/resume"), o, None)
        .await;
    assert_eq!(s, 409, "B cannot execute a run A drives: {v}");
    a.stop().await;
    b.stop().await;
}
