//! The war-room API end to end over HTTP: tokens and roles on every route,
//! OFREP conformance, flags admin, runs answered through the API, the audit
//! log, live events, health, metrics and the OpenAPI document. Each story
//! runs on SQLite and on PostgreSQL.

use std::time::Duration;

use golive_server::auth::Need;
use golive_server::openapi::ROUTES;
use golive_store::{Actor, Store};
use serde_json::{Value, json};

use crate::util::{Db, TestServer, concrete, eventually, fast_config, start_run, token, token_id};

on_both!(
    every_route_checks_its_token,
    ofrep_answers_by_the_protocol,
    flags_admin_merges_and_audits,
    runs_are_answered_through_the_api,
    events_stream_flag_changes_and_run_journal,
);

async fn every_route_checks_its_token(db: Db) {
    let store = db.open().await;
    let viewer = token(&store, "vera", "viewer", None).await;
    let operator = token(&store, "otto", "operator", None).await;
    let expired = token(&store, "old", "admin", Some("1ms")).await;
    let revoked = token(&store, "gone", "admin", None).await;
    let revoked_id = token_id(&store, "gone").await;
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

    // Refused tokens are rate-limited per address, but a valid token from
    // the same address is never locked out, even during a brute force.
    let mut config = fast_config();
    config.auth_failure_limit = 3;
    let server = TestServer::start(&db, config).await;
    for guess in [
        "glv_bad_bad",
        "glv_0000000000_00000000000000000000000000000001",
        "x",
    ] {
        let (status, _) = server.call("GET", "/api/runs", Some(guess), None).await;
        assert_eq!(status, 401);
    }
    let resp = server
        .client
        .get(server.url("/api/runs"))
        .bearer_auth("glv_0000000000_00000000000000000000000000000002")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 429, "the address is limited");
    assert!(resp.headers().get("retry-after").is_some());
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    let brute_force = {
        let client = server.client.clone();
        let url = server.url("/api/runs");
        tokio::spawn(async move {
            let mut limited = 0;
            for i in 0..300u32 {
                let resp = client
                    .get(&url)
                    .bearer_auth(format!("glv_0000000000_{i:032x}"))
                    .send()
                    .await
                    .expect("guess");
                limited += usize::from(resp.status().as_u16() == 429);
            }
            limited
        })
    };
    for _ in 0..20 {
        let (status, v) = server.call("GET", "/api/runs", Some(&viewer), None).await;
        assert_eq!(status, 200, "a valid token works during a brute force: {v}");
    }
    let limited = brute_force.await.expect("brute force");
    assert_eq!(limited, 300, "every guess from the limited address got 429");
    let (status, _) = server.call("GET", "/api/runs", Some(&viewer), None).await;
    assert_eq!(status, 200, "and after it");
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
    let admin = token(&store, "ada", "admin", None).await;
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
    // A plan that runs commands acts as the server's user: an admin's.
    let (s, v) = server
        .call("POST", "/api/runs", o, Some(json!({"plan": PLAN})))
        .await;
    assert_eq!((s, &v["error"]["code"]), (403, &json!("forbidden")), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("`done`"),
        "{v}"
    );
    // A secret the server cannot resolve refuses the plan before a run
    // exists.
    let (s, v) = server
        .call(
            "POST",
            "/api/runs",
            o,
            Some(json!({"plan": "name: needs-a-secret\nsecrets:\n  TOKEN: env:GOLIVE_TEST_NEVER_SET\nphases:\n  - title: One\n    items:\n      - { id: t, title: T, task: {} }\n"})),
        )
        .await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (422, &json!("invalid_vars")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("GOLIVE_TEST_NEVER_SET")),
        "{v}"
    );
    let (_, runs) = server.call("GET", "/api/runs", o, None).await;
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(0), "{runs}");
    let run = start_run(&server, &admin, PLAN).await;
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
            Some(json!({"evidence": "s3://backups/1 <script>alert(1)</script>"})),
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
    assert!(
        md.contains("&lt;script>alert(1)&lt;/script>") && !md.contains("<script"),
        "HTML in evidence is escaped: {md}"
    );
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
    // Operators may start plans with commands where the server allows it.
    let mut config = fast_config();
    config.allow_api_commands = true;
    let server = TestServer::start(&db, config).await;
    let o = Some(operator.as_str());
    let run = start_run(&server, &operator, PLAN).await;
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
    // Keys no flag has: one series, however many; a custom method: `other`.
    for i in 0..50 {
        let (s, _) = server
            .call(
                "POST",
                &format!("/ofrep/v1/evaluate/flags/guess_{i}"),
                Some(&viewer),
                Some(json!({"context": {}})),
            )
            .await;
        assert_eq!(s, 404);
    }
    for method in ["FOO", "BAR"] {
        let (s, _) = server.call(method, "/health", None, None).await;
        assert_eq!(s, 405);
    }
    let (s, v) = server.call("GET", "/metrics", None, None).await;
    assert_eq!(s, 200);
    let text = v.as_str().expect("text");
    assert!(text.contains(r#"golive_http_requests_total{route="/ofrep/v1/evaluate/flags/{key}",method="POST",status="404"} 51"#), "{text}");
    assert!(
        text.contains(
            r#"golive_http_requests_total{route="/health",method="other",status="405"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"golive_flag_evaluations_total{result="FLAG_NOT_FOUND"} 51"#),
        "{text}"
    );
    assert!(
        !text.contains("nope") && !text.contains("guess_") && !text.contains("flag="),
        "no flag names for an anonymous scrape: {text}"
    );
    assert!(
        text.contains("golive_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    let (s, v) = server.call("GET", "/metrics", Some(&viewer), None).await;
    assert_eq!(s, 200);
    let text = v.as_str().expect("text");
    assert!(
        text.contains(
            r#"golive_flag_evaluations_by_flag_total{flag="(unknown)",result="FLAG_NOT_FOUND"} 51"#
        ),
        "{text}"
    );
    assert_eq!(text.matches("flag=").count(), 1, "one series: {text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    let (s, v) = server.call("GET", "/metrics", Some("glv_x"), None).await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (401, &json!("unauthorized")),
        "a bad token is refused: {v}"
    );

    // The document lists exactly the routes the router serves: each method
    // listed answers (401 without a token where one is needed, never 404
    // or 405), each one not listed is 405, and a path not listed is 404.
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
    let paths = doc["paths"].as_object().expect("paths");
    let mut listed = 0;
    for (path, ops) in paths {
        let ops = ops.as_object().expect("operations");
        let concrete = concrete(path);
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let (s, v) = server.call(method, &concrete, None, None).await;
            if ops.contains_key(&method.to_lowercase()) {
                listed += 1;
                assert!(
                    s != 404 && s != 405,
                    "{method} {path} is in the document but answered {s}: {v}"
                );
                assert!(
                    ROUTES.iter().any(|r| r.method == method && r.path == path),
                    "{method} {path} is in the document but not in the table"
                );
            } else {
                assert_eq!(s, 405, "{method} {path} is not in the document: {v}");
                assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
            }
        }
    }
    assert_eq!(listed, ROUTES.len(), "every route once");
    for (method, path) in [
        ("GET", "/api/runs/{run}/status"),
        ("POST", "/api/runs/{run}/promote"),
        ("POST", "/api/runs/{run}/pause"),
        ("POST", "/api/runs/{run}/resume-rollout"),
        ("POST", "/api/runs/{run}/abort"),
    ] {
        assert!(
            doc["paths"][path][method.to_lowercase()].is_object(),
            "{method} {path} is documented"
        );
    }
    let (s, v) = server.call("GET", "/api/nothing-here", None, None).await;
    assert_eq!((s, &v["error"]["code"]), (404, &json!("not_found")), "{v}");
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
    let admin = token(&store, "ada", "admin", None).await;
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
    let run = start_run(&a, &admin, PLAN).await;
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

/// Every refusal, axum's own included, in the one JSON shape with a short
/// message; internal errors without their cause; role names checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_short_json() {
    let db = Db::sqlite();
    let store = db.open().await;
    let admin = token(&store, "ada", "admin", None).await;
    let viewer = token(&store, "vera", "viewer", None).await;
    // A stored token whose role this version cannot read: an internal error.
    let odd = "glv_00000000aa_0123456789abcdef0123456789abcdef";
    store
        .create_token(
            &golive_store::NewToken {
                id: "00000000aa".into(),
                name: "odd".into(),
                role: "Not A Role".into(),
                secret_sha256: golive_server::auth::hash(odd),
                expires_at: None,
            },
            &Actor {
                name: "test".into(),
                source: None,
            },
        )
        .await
        .expect("odd token");
    store.close().await;
    let server = TestServer::start(&db, fast_config()).await;
    let a = Some(admin.as_str());
    let json_type = Some("application/json");
    let huge = "k".repeat(1 << 20);
    let body = |v: Value| v.to_string().into_bytes();
    /// Status and code wanted; method, path, content type and body sent.
    type Case<'a> = (u16, &'a str, &'a str, String, Option<&'a str>, Vec<u8>);
    let cases: Vec<Case> = vec![
        (
            400,
            "invalid",
            "POST",
            "/api/runs".into(),
            json_type,
            b"{not json".to_vec(),
        ),
        (
            415,
            "unsupported_media_type",
            "POST",
            "/api/runs".into(),
            Some("text/plain"),
            b"{}".to_vec(),
        ),
        (
            422,
            "invalid",
            "POST",
            "/api/tokens".into(),
            json_type,
            body(json!({"name": 5, "role": "viewer"})),
        ),
        (
            413,
            "too_large",
            "POST",
            "/api/plans/validate".into(),
            json_type,
            body(json!({"plan": "x".repeat(3 << 20)})),
        ),
        (
            405,
            "method_not_allowed",
            "DELETE",
            "/api/runs".into(),
            None,
            Vec::new(),
        ),
        (404, "not_found", "GET", "/nowhere".into(), None, Vec::new()),
        (
            400,
            "invalid",
            "POST",
            "/api/admin/feature-flags".into(),
            json_type,
            body(json!({"flag": huge, "enabled": true})),
        ),
        (
            400,
            "invalid",
            "GET",
            format!("/api/runs/{}", "r".repeat(4000)),
            None,
            Vec::new(),
        ),
        (
            400,
            "invalid",
            "POST",
            "/api/tokens".into(),
            json_type,
            body(json!({"name": "x", "role": huge})),
        ),
        (
            400,
            "invalid",
            "POST",
            "/api/tokens".into(),
            json_type,
            body(json!({"name": "x", "role": "Admin"})),
        ),
    ];
    let mut texts = Vec::new();
    for (want, code, method, path, content_type, body) in cases {
        let answer = server.send(method, &path, &admin, content_type, body).await;
        let kind = answer.content_type();
        let (status, text) = (answer.status, answer.text);
        assert_eq!(status, want, "{method} {path}: {text}");
        assert!(
            kind.starts_with("application/json"),
            "{status}: {kind}: {text}"
        );
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["error"]["code"], code, "{v}");
        let message = v["error"]["message"].as_str().expect("message");
        assert!(
            !message.is_empty() && message.len() <= 300,
            "short: {message}"
        );
        assert!(
            !text.contains(&"k".repeat(100)),
            "a 1 MB value is not echoed: {message}"
        );
        texts.push(text);
    }
    assert!(
        texts[9].contains("did you mean `admin`"),
        "`Admin` is not silently a sign-off role: {}",
        texts[9]
    );
    // 401, 403, 429 are in the same shape (401 and 429 above and in
    // every_route_checks_its_token); 403:
    let (s, v) = server
        .call(
            "POST",
            "/api/tokens",
            Some(&viewer),
            Some(json!({"name": "x", "role": "viewer"})),
        )
        .await;
    assert_eq!((s, &v["error"]["code"]), (403, &json!("forbidden")), "{v}");
    // 500: the cause stays in the log; the answer names the request id.
    let resp = server
        .client
        .get(server.url("/api/runs"))
        .bearer_auth(odd)
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 500);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-1");
    let text = resp.text().await.expect("body");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["error"]["code"], "internal", "{v}");
    assert!(
        !text.contains("Not A Role") && !text.contains("00000000aa"),
        "no cause in the answer: {text}"
    );
    // Every answer has a request id; a client's own sane one is kept.
    let resp = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .expect("health");
    let id = resp.headers()["x-request-id"].to_str().expect("ascii");
    assert_eq!(id.len(), 16, "{id}");
    let resp = server
        .client
        .get(server.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .expect("health");
    assert_ne!(resp.headers()["x-request-id"], "bad id with spaces");
    let (s, _) = server.call("GET", "/api/tokens", a, None).await;
    assert_eq!(s, 200);
    server.stop().await;

    // `/metrics` behind a token when the server says so.
    let mut config = fast_config();
    config.metrics_need_token = true;
    let server = TestServer::start(&db, config).await;
    let (s, v) = server.call("GET", "/metrics", None, None).await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (401, &json!("unauthorized")),
        "{v}"
    );
    let (s, _) = server.call("GET", "/metrics", Some(&viewer), None).await;
    assert_eq!(s, 200);
    server.stop().await;
}

/// A flood of idle connections does not starve the server: at its cap it
/// closes the longest-idle ones to serve newcomers, `/health` answers,
/// and the idle ones are closed after the idle timeout; a client that
/// never finishes its request head is dropped after the header timeout;
/// an event stream opened before the flood is neither idle nor evicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_starve_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let files = golive_server::raise_file_limit().unwrap_or(1024);
    let db = Db::sqlite();
    let store = db.open().await;
    let viewer = token(&store, "vera", "viewer", None).await;
    let operator = token(&store, "olga", "operator", None).await;
    store.close().await;
    let mut config = fast_config();
    config.max_connections = 400;
    config.idle_timeout = Duration::from_secs(3);
    config.header_read_timeout = Duration::from_secs(2);
    let server = TestServer::start(&db, config).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let fresh = golive_runtime::api_client(Duration::from_secs(10)).expect("client");
    // Its own client: a request's time limit covers its whole body.
    let mut events = golive_runtime::api_client(Duration::from_secs(300))
        .expect("client")
        .get(server.url("/api/events"))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("events");
    assert_eq!(events.status().as_u16(), 200);
    // 20,000 idle connections held at once, half of them by a second
    // process: one process may open only so many files (each connection
    // in this one is two up to the server's cap: ours and the server's).
    let wanted = usize::try_from(files.saturating_sub(3000))
        .unwrap_or(0)
        .min(IDLE_TOTAL / 2);
    assert!(wanted >= 1000, "only {files} files may be open");
    // The second process's first: the server evicts the longest-idle, and
    // some of ours, the newest, must still be open to be counted below.
    let mut holder = Holder::start(&addr, IDLE_TOTAL - wanted);
    let held = tokio::task::spawn_blocking(move || {
        let n = holder.expect("held");
        (holder, n)
    });
    let (mut holder, held_there) = held.await.expect("holder");
    let mut idle = Vec::with_capacity(wanted);
    while idle.len() < wanted {
        // Few at a time: a burst of SYNs overflows the listen queue and
        // costs a one-second retransmit.
        let batch = (wanted - idle.len()).min(32);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let addr = addr.clone();
            set.spawn(async move { tokio::net::TcpStream::connect(addr).await });
        }
        while let Some(c) = set.join_next().await {
            idle.push(c.expect("task").expect("connect"));
        }
    }
    assert_eq!(idle.len() + held_there, IDLE_TOTAL);
    // A slow client: half a request head, never finished.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.expect("slow");
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a head");
    // With every one of them still open on our side, the server answers.
    let resp = fresh
        .get(server.url("/health"))
        .send()
        .await
        .expect("/health answers");
    assert_eq!(resp.status().as_u16(), 200);
    let resp = fresh
        .get(server.url("/api/runs"))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("the API answers");
    assert_eq!(resp.status().as_u16(), 200);
    let still_open = |idle: &[tokio::net::TcpStream]| {
        idle.iter()
            .filter(|c| {
                let mut b = [0u8; 1];
                matches!(c.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            })
            .count()
    };
    // A close the server made to keep its cap reaches this side a moment
    // later: give the last evictions 5 s to arrive before counting.
    let settle = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut open_now = still_open(&idle);
    while open_now > 400 && tokio::time::Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
        open_now = still_open(&idle);
    }
    assert!(
        open_now > 0 && open_now <= 400,
        "the server keeps at most its cap open ({open_now} of {wanted} still open)"
    );
    // After the idle timeout, every idle connection has been closed, in
    // both processes.
    holder.send("check");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for c in &mut idle {
        let mut b = [0u8; 64];
        let n = tokio::time::timeout_at(deadline, c.read(&mut b))
            .await
            .expect("closed by the server in time");
        assert!(matches!(n, Ok(0) | Err(_)), "closed: {n:?}");
    }
    let mut rest = Vec::new();
    let n = tokio::time::timeout_at(deadline, slow.read_to_end(&mut rest))
        .await
        .expect("the slow client is dropped in time");
    drop(n);
    // The event stream, the oldest connection, was kept all along.
    let resp = fresh
        .post(server.url("/api/admin/feature-flags"))
        .bearer_auth(&operator)
        .json(&json!({"flag": "after_the_flood", "enabled": true}))
        .send()
        .await
        .expect("flag");
    assert_eq!(resp.status().as_u16(), 201);
    let mut seen = String::new();
    while !seen.contains("after_the_flood") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .expect("the event stream still sends")
            .expect("chunk")
            .expect("the event stream is open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(events);
    drop(idle);
    let closed = tokio::task::spawn_blocking(move || holder.expect("closed"))
        .await
        .expect("holder");
    assert_eq!(
        closed, held_there,
        "closed by the server in the second process"
    );
    let resp = fresh
        .get(server.url("/health"))
        .send()
        .await
        .expect("/health");
    assert_eq!(resp.status().as_u16(), 200);
    server.stop().await;
}

/// Idle connections held at once by [`idle_connections_do_not_starve_the_server`].
const IDLE_TOTAL: usize = 20_000;

/// Where [`idle_connection_holder`] connects to, and how many times.
const HOLD_ENV: &str = "GOLIVE_TEST_HOLD";

/// This test binary run again as [`idle_connection_holder`]: a second
/// process holding idle connections, answering on its stdout.
struct Holder {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Holder {
    fn start(addr: &str, count: usize) -> Holder {
        use std::io::BufRead;
        // Its name as the harness lists it: this module's path without the
        // crate's name (the tests are modules of one binary).
        let name = match module_path!().split_once("::") {
            Some((_, module)) => format!("{module}::idle_connection_holder"),
            None => "idle_connection_holder".to_string(),
        };
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(HOLD_ENV, format!("{addr} {count}"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("holder process");
        let stdout = child.stdout.take().expect("stdout");
        Holder {
            child,
            lines: std::io::BufReader::new(stdout).lines(),
        }
    }

    /// Waits for the holder's `{word} N` line; N.
    fn expect(&mut self, word: &str) -> usize {
        for line in self.lines.by_ref() {
            let line = line.expect("holder's stdout");
            // The test harness may have written `test … ... ` before it.
            let said = line.find(word).map(|at| &line[at + word.len()..]);
            if let Some(n) = said.and_then(|r| r.trim().parse().ok()) {
                return n;
            }
        }
        let status = self.child.wait().expect("holder ends");
        panic!("the holder process ended ({status}) without saying `{word}`");
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("to the holder");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The second process of [`idle_connections_do_not_starve_the_server`]
/// (run by it with [`HOLD_ENV`] set; without it there is nothing to do):
/// opens the connections asked for and says `held N`; on `check` from
/// stdin, waits up to 20 s for the server to close each and says
/// `closed N`, the number it closed.
#[test]
fn idle_connection_holder() {
    use std::io::{BufRead, Read};
    let Ok(job) = std::env::var(HOLD_ENV) else {
        return;
    };
    let (addr, count) = job.split_once(' ').expect("ADDR COUNT");
    let count: usize = count.parse().expect("count");
    golive_server::raise_file_limit();
    // A few threads, each one connection at a time (as the first process
    // does): quick, without overflowing the listen queue.
    let threads = 16;
    let held: Vec<std::net::TcpStream> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let n = count / threads + usize::from(t < count % threads);
                scope.spawn(move || {
                    (0..n)
                        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("connecting thread"))
            .collect()
    });
    println!("held {}", held.len());
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).expect("stdin");
    assert_eq!(line.trim(), "check");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut closed = 0;
    for mut c in held {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        c.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        let mut b = [0u8; 64];
        match c.read(&mut b) {
            Ok(0) => closed += 1,
            Err(e)
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut =>
            {
                closed += 1
            }
            _ => {}
        }
    }
    println!("closed {closed}");
}
