//! `golive serve` against clients that are hostile or broken: bodies that
//! are malformed, truncated, nested too deep, too large, of the wrong type
//! or with fields the route does not have; absurd numbers; NUL and other
//! control characters, invalid UTF-8, traversal and SQL in paths, queries,
//! headers and bodies; heads too large; tokens revoked or expired while
//! cached; every route called with a role too weak; two people answering
//! the same thing at once; an event stream that is never read.
//!
//! Every refusal must be the one short JSON error with a status a client
//! can act on (never a 500, never a panic), and leave the store as it was:
//! the stories compare flags, tokens, the audit log and the runs' answers
//! before and after.

use std::time::Duration;

use golive_server::auth::Need;
use golive_server::openapi::ROUTES;
use golive_store::Store;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{
    Db, TestServer, eventually, fast_config, fill, serve_with_tokens, start_run, token, token_id,
};

on_both!(
    weaker_roles_change_nothing_on_any_route,
    two_people_answering_at_once_are_recorded_once,
    nul_is_refused_everywhere_before_the_store,
    free_text_past_its_bound_is_refused_and_nothing_is_recorded,
);

/// A plan an operator may start (no commands): a task, and an approval
/// two people may sign for one role.
const PLAN: &str = r#"
name: hostile
roles:
  security: { members: [sam, sue] }
phases:
  - title: Prep
    items:
      - id: backup
        title: Take a backup
        task: {}
      - id: signoff
        title: Security sign-off
        approval: { roles: [security] }
"#;

/// What a refused request must not have changed: the flags, the tokens,
/// the audit log, and each run's answers and item states.
async fn recorded(server: &TestServer, admin: &str) -> Value {
    let a = Some(admin);
    let (_, flags) = server
        .call("GET", "/api/admin/feature-flags", a, None)
        .await;
    let (_, tokens) = server.call("GET", "/api/tokens", a, None).await;
    let (_, audit) = server.call("GET", "/api/audit?limit=1000", a, None).await;
    let (_, runs) = server.call("GET", "/api/runs", a, None).await;
    let mut answers = Vec::new();
    for run in runs["runs"].as_array().into_iter().flatten() {
        let id = run["id"].as_str().unwrap_or_default();
        let (_, v) = server
            .call("GET", &format!("/api/runs/{id}"), a, None)
            .await;
        let items: Vec<Value> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| json!([i["item_id"], i["status"]]))
            .collect();
        answers.push(json!({"run": id, "items": items, "requests": v["requests"]}));
    }
    json!({"flags": flags, "tokens": tokens, "audit": audit, "runs": answers})
}

/// Asserts the store is as [`recorded`] before.
async fn unchanged(server: &TestServer, admin: &str, before: &Value) {
    let after = recorded(server, admin).await;
    assert_eq!(*before, after, "a refused request changed the store");
}

/// Waits until `item` of `run` waits for a person.
async fn waiting(server: &TestServer, tok: &str, run: &str, item: &str) {
    eventually(Duration::from_secs(15), "the item waiting", || async {
        let (_, v) = server
            .call("GET", &format!("/api/runs/{run}"), Some(tok), None)
            .await;
        v["items"]
            .as_array()?
            .iter()
            .any(|i| i["item_id"] == item && i["status"] == "waiting")
            .then_some(())
    })
    .await;
}

/// Asserts the one error shape with a short message; its code.
fn short_error(status: u16, v: &Value, what: &str) -> String {
    assert!(
        (400..500).contains(&status),
        "{what}: a client error, got {status}: {v}"
    );
    let code = v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: the JSON error shape: {v}"));
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty() && message.len() <= 300,
        "{what}: a short message: {message}"
    );
    code.to_string()
}

async fn weaker_roles_change_nothing_on_any_route(db: Db) {
    let store = db.open().await;
    let admin = token(&store, "ada", "admin", None).await;
    let operator = token(&store, "olga", "operator", None).await;
    let viewer = token(&store, "vera", "viewer", None).await;
    let signer = token(&store, "sam", "security", None).await;
    let victim = token_id(&store, "vera").await;
    store.close().await;
    let server = TestServer::start(&db, fast_config()).await;
    let run = start_run(&server, &operator, PLAN).await;
    waiting(&server, &operator, &run, "backup").await;
    let (s, v) = server
        .call(
            "POST",
            "/api/admin/feature-flags",
            Some(&operator),
            Some(json!({"flag": "kept", "enabled": true, "percentage": 5})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let before = recorded(&server, &admin).await;
    let mut refused = 0;
    for route in ROUTES {
        let path = fill(route.path, &run, "backup", "kept", &victim);
        // A body the route would take from a strong enough token.
        let body = match route.path.rsplit('/').next() {
            Some("runs") => Some(json!({"plan": PLAN})),
            Some("tokens") => Some(json!({"name": "mallory", "role": "admin"})),
            Some("feature-flags") | Some("{key}") => {
                Some(json!({"flag": "kept", "enabled": false}))
            }
            Some("confirm") => Some(json!({"evidence": "done"})),
            Some("resume") => None,
            _ if route.body.is_some() => Some(json!({"reason": "because"})),
            _ => None,
        };
        let body = body.filter(|_| route.method != "GET" && route.method != "DELETE");
        let weaker: &[(&str, &str)] = match route.need {
            Need::Operator => &[("viewer", &viewer), ("sign-off", &signer)],
            Need::Admin => &[("viewer", &viewer), ("operator", &operator)],
            _ => &[],
        };
        for (who, tok) in weaker {
            let (s, v) = server
                .call(route.method, &path, Some(tok), body.clone())
                .await;
            let what = format!("{} {path} as {who}", route.method);
            assert_eq!(s, 403, "{what}: {v}");
            assert_eq!(short_error(s, &v, &what), "forbidden");
            refused += 1;
        }
    }
    assert!(refused >= 30, "only {refused} refusals checked");
    unchanged(&server, &admin, &before).await;
    server.stop().await;
}

/// Sends the same answer from two clients at once; both statuses, sorted.
async fn race(server: &TestServer, path: &str, one: (&str, Value), two: (&str, Value)) -> [u16; 2] {
    let (a, b) = tokio::join!(
        server.call("POST", path, Some(one.0), Some(one.1)),
        server.call("POST", path, Some(two.0), Some(two.1)),
    );
    for (s, v) in [&a, &b] {
        if *s != 200 {
            assert_eq!(short_error(*s, v, path), "conflict", "{v}");
        }
    }
    let mut both = [a.0, b.0];
    both.sort_unstable();
    both
}

/// The audit entries of `run` with this action.
async fn audited(server: &TestServer, admin: &str, run: &str, action: &str) -> usize {
    let (_, v) = server
        .call(
            "GET",
            &format!("/api/audit?target={run}&action={action}"),
            Some(admin),
            None,
        )
        .await;
    v.as_array().map_or(0, Vec::len)
}

async fn two_people_answering_at_once_are_recorded_once(db: Db) {
    let (server, tokens) = serve_with_tokens(
        &db,
        &[
            ("ada", "admin"),
            ("olga", "operator"),
            ("otto", "operator"),
            ("sam", "security"),
            ("sue", "security"),
        ],
    )
    .await;
    let [admin, olga, otto, sam, sue] = tokens.try_into().expect("tokens");
    let run = start_run(&server, &olga, PLAN).await;
    waiting(&server, &olga, &run, "backup").await;

    // Confirm: the first stands, the other is told so.
    let path = format!("/api/runs/{run}/items/backup/confirm");
    let both = race(
        &server,
        &path,
        (&olga, json!({"evidence": "olga's"})),
        (&otto, json!({"evidence": "otto's"})),
    )
    .await;
    assert_eq!(both, [200, 409]);
    assert_eq!(audited(&server, &admin, &run, "item.confirmed").await, 1);

    // Two members of one role sign at once: one decision for the role.
    waiting(&server, &olga, &run, "signoff").await;
    let path = format!("/api/runs/{run}/items/signoff/approve");
    let both = race(&server, &path, (&sam, json!({})), (&sue, json!({}))).await;
    assert_eq!(both, [200, 409]);
    assert_eq!(audited(&server, &admin, &run, "item.approved").await, 1);

    // A run waiting on a task for the rollout requests (they are
    // lease-free: any unfinished run takes them).
    let run = start_run(&server, &olga, PLAN).await;
    waiting(&server, &olga, &run, "backup").await;
    let path = format!("/api/runs/{run}/promote");
    let both = race(&server, &path, (&olga, json!({})), (&otto, json!({}))).await;
    assert_eq!(both, [200, 409], "two promotes at once");
    // One just after the other, for the same pause: still one promote,
    // not two steps.
    let (s, v) = server
        .call("POST", &path, Some(&otto), Some(json!({})))
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("has not been used yet")),
        "{v}"
    );
    let path = format!("/api/runs/{run}/pause");
    let both = race(&server, &path, (&olga, json!({})), (&otto, json!({}))).await;
    assert_eq!(both, [200, 409], "two pauses at once");
    let (_, v) = server
        .call("GET", &format!("/api/runs/{run}"), Some(&olga), None)
        .await;
    let mut kinds: Vec<&str> = v["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["pause:1", "promote:1"], "{v}");
    assert_eq!(audited(&server, &admin, &run, "rollout.promote").await, 1);
    assert_eq!(audited(&server, &admin, &run, "rollout.pause").await, 1);

    // Revoking one token twice at once: one revocation.
    let (s, v) = server
        .call(
            "POST",
            "/api/tokens",
            Some(&admin),
            Some(json!({"name": "temp", "role": "viewer"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let path = format!("/api/tokens/{id}");
    let (a, b) = tokio::join!(
        server.call("DELETE", &path, Some(&admin), None),
        server.call("DELETE", &path, Some(&admin), None),
    );
    let mut both = [a.0, b.0];
    both.sort_unstable();
    assert_eq!(both, [204, 404], "{a:?} {b:?}");

    // Two replacements of one flag version: one applies, the other is
    // told the version moved.
    let put = "/api/admin/feature-flags/raced";
    let (s, v) = server
        .call("PUT", put, Some(&olga), Some(json!({"enabled": true})))
        .await;
    assert_eq!(s, 201, "{v}");
    let send = |tok: &str, pct: u8| {
        server
            .client
            .put(server.url(put))
            .bearer_auth(tok)
            .header("If-Match", "1")
            .json(&json!({"enabled": true, "percentage": pct}))
            .send()
    };
    let (a, b) = tokio::join!(send(&olga, 10), send(&otto, 20));
    let mut both = [
        a.expect("put").status().as_u16(),
        b.expect("put").status().as_u16(),
    ];
    both.sort_unstable();
    assert_eq!(both, [200, 412]);
    let (_, v) = server.call("GET", put, Some(&olga), None).await;
    assert_eq!(v["version"], 2, "{v}");

    // Rolling back twice at once: the first request stands; the second
    // is told whose it was (documented: `already-requested`, not an
    // error) or, once the rollback has ended the run, that it has.
    let path = format!("/api/runs/{run}/rollback");
    let (a, b) = tokio::join!(
        server.call("POST", &path, Some(&olga), Some(json!({"reason": "a"}))),
        server.call("POST", &path, Some(&otto), Some(json!({"reason": "b"}))),
    );
    let outcome = |(s, v): &(u16, Value)| match s {
        200 => v["outcome"].as_str().unwrap_or_default().to_string(),
        _ => short_error(*s, v, "a second rollback"),
    };
    let mut outcomes = [outcome(&a), outcome(&b)];
    outcomes.sort_unstable();
    assert!(
        outcomes == ["already-requested", "requested"] || outcomes == ["conflict", "requested"],
        "{a:?} {b:?}"
    );
    assert_eq!(
        audited(&server, &admin, &run, "run.rollback-requested").await,
        1
    );
    server.stop().await;
}

async fn nul_is_refused_everywhere_before_the_store(db: Db) {
    let (server, tokens) = serve_with_tokens(&db, &[("ada", "admin"), ("olga", "operator")]).await;
    let [admin, operator] = tokens.try_into().expect("tokens");
    let run = start_run(&server, &operator, PLAN).await;
    waiting(&server, &operator, &run, "backup").await;
    let (s, _) = server
        .call(
            "PUT",
            "/api/admin/feature-flags/kept",
            Some(&operator),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 201);
    let before = recorded(&server, &admin).await;
    let nul = "a\u{0}b";
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/api/admin/feature-flags".into(),
            Some(json!({"flag": "fresh", "enabled": true, "reason": nul})),
        ),
        (
            "PATCH",
            "/api/admin/feature-flags/kept".into(),
            Some(json!({"description": nul})),
        ),
        (
            "POST",
            "/api/tokens".into(),
            Some(json!({"name": nul, "role": "viewer"})),
        ),
        (
            "POST",
            format!("/api/runs/{run}/items/backup/confirm"),
            Some(json!({"evidence": nul})),
        ),
        (
            "POST",
            format!("/api/runs/{run}/items/backup/confirm"),
            Some(json!({"fields": {nul: "x"}})),
        ),
        (
            "POST",
            format!("/api/runs/{run}/rollback"),
            Some(json!({"reason": nul})),
        ),
        ("DELETE", "/api/tokens/%00".into(), None),
        (
            "DELETE",
            "/api/admin/feature-flags/kept?reason=a%00b".into(),
            None,
        ),
        ("GET", "/api/audit?actor=a%00b".into(), None),
        ("GET", "/api/audit?target=%00".into(), None),
        ("GET", format!("/api/runs/{run}/items/%00"), None),
    ];
    for (method, path, body) in cases {
        let (s, v) = server.call(method, &path, Some(&admin), body).await;
        let what = format!("{method} {path}");
        assert_eq!(s, 400, "{what}: {v}");
        assert_eq!(short_error(s, &v, &what), "invalid");
    }
    // A tab or a line break is text; in a token's name it would forge lines.
    let (s, v) = server
        .call(
            "POST",
            "/api/tokens",
            Some(&admin),
            Some(json!({"name": "ada\nrevoked by: root", "role": "viewer"})),
        )
        .await;
    assert_eq!(short_error(s, &v, "a name with a line break"), "invalid");
    unchanged(&server, &admin, &before).await;
    server.stop().await;
}

/// Reasons, comments, evidence, blanks' values and flag descriptions past
/// their bounds (`golive_engine::answers::limits`, the flag's 4 KiB
/// description) are refused with a message that gives both sizes, and
/// nothing is recorded; text at the bound is kept whole.
async fn free_text_past_its_bound_is_refused_and_nothing_is_recorded(db: Db) {
    use golive_engine::answers::limits;
    let (server, tokens) = serve_with_tokens(
        &db,
        &[("ada", "admin"), ("olga", "operator"), ("sam", "security")],
    )
    .await;
    let [admin, operator, sam] = tokens.try_into().expect("tokens");
    let run = start_run(&server, &operator, PLAN).await;
    waiting(&server, &operator, &run, "backup").await;
    let (s, _) = server
        .call(
            "PUT",
            "/api/admin/feature-flags/kept",
            Some(&operator),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 201);
    let before = recorded(&server, &admin).await;
    let note = "n".repeat(limits::NOTE + 1);
    let evidence = "e".repeat(limits::EVIDENCE + 1);
    let cases: Vec<(&str, String, Option<Value>, usize, &str)> = vec![
        (
            "POST",
            "/api/admin/feature-flags".into(),
            Some(json!({"flag": "fresh", "enabled": true, "reason": note})),
            note.len(),
            &admin,
        ),
        (
            "PATCH",
            "/api/admin/feature-flags/kept".into(),
            Some(json!({"description": note})),
            note.len(),
            &admin,
        ),
        (
            "DELETE",
            format!("/api/admin/feature-flags/kept?reason={note}"),
            None,
            note.len(),
            &admin,
        ),
        (
            "POST",
            format!("/api/runs/{run}/items/backup/confirm"),
            Some(json!({"evidence": evidence})),
            evidence.len(),
            &admin,
        ),
        (
            "POST",
            format!("/api/runs/{run}/items/backup/confirm"),
            Some(json!({"skip": true, "reason": note})),
            note.len(),
            &admin,
        ),
        (
            "POST",
            format!("/api/runs/{run}/items/backup/confirm"),
            Some(json!({"fields": {"ticket": note}})),
            note.len(),
            &admin,
        ),
        (
            "POST",
            format!("/api/runs/{run}/items/signoff/reject"),
            Some(json!({"role": "security", "comment": note})),
            note.len(),
            &sam,
        ),
        (
            "POST",
            format!("/api/runs/{run}/rollback"),
            Some(json!({"reason": note})),
            note.len(),
            &admin,
        ),
    ];
    for (method, path, body, len, tok) in cases {
        let (s, v) = server.call(method, &path, Some(tok), body).await;
        let what = format!("{method} {}", &path[..path.len().min(60)]);
        assert!(s == 400 || s == 422, "{what}: {s} {v}");
        short_error(s, &v, &what);
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&len.to_string()),
            "{what}: names the size: {message}"
        );
    }
    unchanged(&server, &admin, &before).await;

    let most = "e".repeat(limits::EVIDENCE);
    let (s, v) = server
        .call(
            "POST",
            &format!("/api/runs/{run}/items/backup/confirm"),
            Some(&operator),
            Some(json!({"evidence": most})),
        )
        .await;
    assert_eq!(s, 200, "evidence at the bound: {v}");
    let store = db.open().await;
    let id: golive_store::RunId = run.parse().expect("run id");
    let kept = store
        .confirmation(&id, "backup")
        .await
        .expect("read")
        .and_then(|c| c.evidence)
        .unwrap_or_default();
    assert_eq!(kept.len(), most.len(), "the evidence kept whole");
    store.close().await;
    server.stop().await;
}

/// Bodies, numbers, fields, ids and methods a route does not take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_short_json_refusals() {
    let db = Db::sqlite();
    let (server, tokens) = serve_with_tokens(&db, &[("ada", "admin")]).await;
    let [admin] = tokens.try_into().expect("tokens");
    let run = start_run(&server, &admin, PLAN).await;
    waiting(&server, &admin, &run, "backup").await;
    let before = recorded(&server, &admin).await;
    let flags = "/api/admin/feature-flags";
    let json_type = Some("application/json");
    let flag = |extra: &str| format!(r#"{{"flag": "odd", "enabled": true{extra}}}"#).into_bytes();
    let deep = format!(
        r#"{{"flag": "deep", "enabled": true, "targeting": {}"#,
        "[".repeat(100_000)
    );
    let nested = format!(
        r#"{{"flag": "nested", "enabled": true, "description": {}1{}}}"#,
        r#"{"a":"#.repeat(200),
        "}".repeat(200)
    );
    let huge_array = format!(r#"{{"plan": [{}0]}}"#, "0,".repeat(300_000));
    let confirm = format!("/api/runs/{run}/items/backup/confirm");
    let many_fields: serde_json::Map<String, Value> = (0..20_000)
        .map(|i| (format!("field{i}"), json!("x")))
        .collect();
    /// Wanted status and code; method, path, content type, body.
    type Case = (
        u16,
        &'static str,
        &'static str,
        String,
        Option<&'static str>,
        Vec<u8>,
    );
    let cases: Vec<Case> = vec![
        // Truncated, empty, nested past the parser's limit.
        (
            400,
            "invalid",
            "POST",
            flags.into(),
            json_type,
            br#"{"flag": "a", "enab"#.to_vec(),
        ),
        (400, "invalid", "POST", flags.into(), json_type, Vec::new()),
        (
            400,
            "invalid",
            "POST",
            flags.into(),
            json_type,
            deep.into_bytes(),
        ),
        (
            400,
            "invalid",
            "POST",
            flags.into(),
            json_type,
            nested.into_bytes(),
        ),
        // Content types: none, a form, JSON's name misspelt.
        (
            415,
            "unsupported_media_type",
            "POST",
            flags.into(),
            None,
            flag(""),
        ),
        (
            415,
            "unsupported_media_type",
            "POST",
            flags.into(),
            Some("application/x-www-form-urlencoded"),
            flag(""),
        ),
        (
            415,
            "unsupported_media_type",
            "POST",
            "/api/runs".into(),
            Some("application/jsn"),
            br#"{"plan": "x"}"#.to_vec(),
        ),
        // Not UTF-8; a raw control character in a string (JSON forbids it).
        (
            400,
            "invalid",
            "POST",
            flags.into(),
            json_type,
            b"{\"flag\": \"\xff\xfe\", \"enabled\": true}".to_vec(),
        ),
        (
            400,
            "invalid",
            "POST",
            flags.into(),
            json_type,
            b"{\"flag\": \"a\x01b\", \"enabled\": true}".to_vec(),
        ),
        // Absurd numbers.
        (
            400,
            "invalid",
            "POST",
            flags.into(),
            json_type,
            flag(r#", "percentage": 1e309"#),
        ),
        (
            400,
            "invalid",
            "POST",
            flags.into(),
            json_type,
            flag(r#", "percentage": NaN"#),
        ),
        (
            422,
            "invalid_flag",
            "POST",
            flags.into(),
            json_type,
            flag(r#", "percentage": -1"#),
        ),
        (
            422,
            "invalid_flag",
            "POST",
            flags.into(),
            json_type,
            flag(r#", "percentage": 1e308"#),
        ),
        (
            422,
            "invalid_flag",
            "POST",
            flags.into(),
            json_type,
            flag(r#", "percentage": "NaN""#),
        ),
        (
            422,
            "invalid_flag",
            "POST",
            flags.into(),
            json_type,
            flag(r#", "percentage": 0.001"#),
        ),
        (
            400,
            "invalid",
            "POST",
            "/api/tokens".into(),
            json_type,
            br#"{"name": "t", "role": "viewer", "expires": "1e309s"}"#.to_vec(),
        ),
        (
            400,
            "invalid",
            "POST",
            "/api/tokens".into(),
            json_type,
            br#"{"name": "t", "role": "viewer", "expires": "-1d"}"#.to_vec(),
        ),
        (
            400,
            "invalid",
            "POST",
            "/api/tokens".into(),
            json_type,
            br#"{"name": "t", "role": "viewer", "expires": "99999999999999d"}"#.to_vec(),
        ),
        // Huge arrays and maps.
        (
            422,
            "invalid",
            "POST",
            "/api/plans/validate".into(),
            json_type,
            huge_array.into_bytes(),
        ),
        (
            422,
            "invalid",
            "POST",
            confirm.clone(),
            json_type,
            json!({"fields": many_fields}).to_string().into_bytes(),
        ),
        // Unknown or misspelt fields are refused, never dropped silently.
        (
            422,
            "invalid_flag",
            "POST",
            flags.into(),
            json_type,
            flag(r#", "percentag": 5"#),
        ),
        (
            422,
            "invalid",
            "POST",
            "/api/runs".into(),
            json_type,
            json!({"plan": PLAN, "var": {"A": "1"}})
                .to_string()
                .into_bytes(),
        ),
        (
            422,
            "invalid",
            "POST",
            confirm.clone(),
            json_type,
            br#"{"evidense": "typo"}"#.to_vec(),
        ),
        (
            422,
            "invalid",
            "POST",
            "/api/tokens".into(),
            json_type,
            br#"{"name": "t", "role": "viewer", "expire": "1d"}"#.to_vec(),
        ),
        (
            422,
            "invalid",
            "POST",
            format!("/api/runs/{run}/rollback"),
            json_type,
            br#"{"reason": "x", "force": true}"#.to_vec(),
        ),
        // Wrong shapes.
        (
            400,
            "invalid",
            "POST",
            flags.into(),
            json_type,
            b"[1, 2]".to_vec(),
        ),
        (
            400,
            "invalid",
            "PUT",
            format!("{flags}/odd"),
            json_type,
            b"\"enabled\"".to_vec(),
        ),
        (
            422,
            "invalid",
            "POST",
            "/api/runs".into(),
            json_type,
            br#"{"plan": null}"#.to_vec(),
        ),
        // Ids with traversal or SQL in them.
        (
            400,
            "invalid",
            "POST",
            flags.into(),
            json_type,
            br#"{"flag": "../../etc/passwd", "enabled": true}"#.to_vec(),
        ),
        (
            400,
            "invalid",
            "POST",
            flags.into(),
            json_type,
            br#"{"flag": "x'; DROP TABLE flags; --", "enabled": true}"#.to_vec(),
        ),
        (
            400,
            "invalid",
            "GET",
            format!("{flags}/..%2F..%2Fapi%2Ftokens"),
            None,
            Vec::new(),
        ),
        (
            400,
            "invalid",
            "PUT",
            format!("{flags}/x'%20OR%20'1'='1"),
            json_type,
            br#"{"enabled": true}"#.to_vec(),
        ),
        (
            400,
            "invalid",
            "GET",
            "/api/runs/r-00000000'%20OR%201=1".into(),
            None,
            Vec::new(),
        ),
        (
            400,
            "invalid",
            "GET",
            "/api/runs/%FF%FE".into(),
            None,
            Vec::new(),
        ),
        (
            404,
            "not_found",
            "DELETE",
            "/api/tokens/'%20OR%20'1'='1".into(),
            None,
            Vec::new(),
        ),
        (
            404,
            "not_found",
            "DELETE",
            "/api/tokens/..%2F..%2Fetc%2Fpasswd".into(),
            None,
            Vec::new(),
        ),
        (
            404,
            "not_found",
            "POST",
            format!("/api/runs/{run}/items/..%2F..%2Fetc/confirm"),
            json_type,
            b"{}".to_vec(),
        ),
        (
            404,
            "not_found",
            "POST",
            format!("/api/runs/{run}/items/{}/confirm", "x".repeat(4000)),
            json_type,
            b"{}".to_vec(),
        ),
        (
            404,
            "not_found",
            "POST",
            format!("/api/runs/{run}/items/backup'--/approve"),
            json_type,
            b"{}".to_vec(),
        ),
        // Absurd numbers in queries.
        (
            400,
            "invalid",
            "GET",
            "/api/runs?limit=-1".into(),
            None,
            Vec::new(),
        ),
        (
            400,
            "invalid",
            "GET",
            "/api/runs?limit=1e309".into(),
            None,
            Vec::new(),
        ),
        (
            400,
            "invalid",
            "GET",
            "/api/runs?limit=99999999999".into(),
            None,
            Vec::new(),
        ),
        (
            400,
            "invalid",
            "GET",
            format!("/api/runs/{run}/events?after=NaN"),
            None,
            Vec::new(),
        ),
        (
            400,
            "invalid",
            "GET",
            "/api/audit?since=yesterday".into(),
            None,
            Vec::new(),
        ),
        (
            400,
            "invalid",
            "GET",
            format!("/api/runs/{run}/report?format=../../etc"),
            None,
            Vec::new(),
        ),
        // Methods a route does not have, a standard one and an invented one.
        (
            405,
            "method_not_allowed",
            "PUT",
            "/api/runs".into(),
            json_type,
            b"{}".to_vec(),
        ),
        (
            405,
            "method_not_allowed",
            "TRACE",
            "/api/tokens".into(),
            None,
            Vec::new(),
        ),
        (
            405,
            "method_not_allowed",
            "FROB",
            format!("/api/runs/{run}"),
            None,
            Vec::new(),
        ),
    ];
    for (want, code, method, path, kind, body) in cases {
        let what = format!("{method} {}", &path[..path.len().min(80)]);
        let answer = server.send(method, &path, &admin, kind, body).await;
        let allow = answer.headers.contains_key("allow");
        let (status, text) = (answer.status, answer.text);
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{what}: not JSON ({status}): {text}"));
        assert_eq!(status, want, "{what}: {v}");
        assert_eq!(short_error(status, &v, &what), code, "{what}: {v}");
        if status == 405 {
            assert!(allow, "{what}: 405 names the methods there are");
        }
    }
    // Queries a lenient reader takes: clamped, or simply matching nothing.
    for path in [
        "/api/audit?limit=4294967295",
        "/api/audit?after=-9223372036854775808",
        "/api/audit?actor=%27%20OR%201%3D1%20--",
        "/api/audit?actor=%FF",
    ] {
        let (s, v) = server.call("GET", path, Some(&admin), None).await;
        assert_eq!(s, 200, "{path}: {v}");
        assert!(v.is_array(), "{path}: {v}");
    }
    let (_, v) = server
        .call(
            "GET",
            "/api/audit?actor=%27%20OR%201%3D1%20--",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(v, json!([]), "SQL in a filter is a name nobody has");
    // Headers: If-Match that is not a version.
    for bad in ["abc", "99999999999999999999", "1, 2"] {
        let resp = server
            .client
            .patch(server.url(&format!("{flags}/kept")))
            .bearer_auth(&admin)
            .header("If-Match", bad)
            .json(&json!({"enabled": true}))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.expect("json");
        assert_eq!(short_error(status, &v, bad), "invalid");
    }
    unchanged(&server, &admin, &before).await;
    server.stop().await;
}

/// Bytes sent as they are (what reqwest would refuse to send), answered on
/// a connection the server closes; the status, the head, the body.
async fn raw(server: &TestServer, request: &[u8]) -> (u16, String, Vec<u8>) {
    let addr = server.base.trim_start_matches("http://");
    let conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rx, mut tx) = conn.into_split();
    // Written while the answer is read: the server may answer (and close)
    // before it has read all of a huge head.
    let request = request.to_vec();
    let writer = tokio::spawn(async move {
        let _ = tx.write_all(&request).await;
        tx
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            // Closed, or reset after the answer (unread request bytes).
            Ok(_) => break,
            Err(_) => panic!("the server neither answers nor closes"),
        }
    }
    drop(writer);
    let at = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("a head: {:?}", String::from_utf8_lossy(&answer)));
    let head = String::from_utf8_lossy(&answer[..at]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, head, answer[at + 4..].to_vec())
}

/// Bytes no client library would send, and heads too large: JSON from the
/// server; hyper's own refusals (a head it cannot parse, or beyond its
/// buffer) are its bodiless answers, and the server stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bytes_and_huge_heads_are_refused_cleanly() {
    let db = Db::sqlite();
    let (server, tokens) = serve_with_tokens(&db, &[("vera", "viewer")]).await;
    let [viewer] = tokens.try_into().expect("tokens");
    let json_answer = |status: u16, head: &str, body: &[u8], what: &str| {
        assert!(
            head.contains("content-type: application/json"),
            "{what}: {head}"
        );
        let v: Value = serde_json::from_slice(body).expect("json");
        short_error(status, &v, what)
    };
    let get = |target: &str, extra: &str| {
        format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}\r\n").into_bytes()
    };
    // A token that is not UTF-8: no token, not a panic.
    let mut req = b"GET /api/runs HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer \xff\xfe\r\n\r\n".to_vec();
    let (s, head, body) = raw(&server, &req).await;
    assert_eq!(
        (s, json_answer(s, &head, &body, "token bytes").as_str()),
        (401, "unauthorized")
    );
    // A reason header that is not UTF-8 is not a reason; the request is
    // still judged on its token.
    req = b"DELETE /api/admin/feature-flags/none HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-golive-reason: \xff\r\n".to_vec();
    req.extend_from_slice(format!("authorization: Bearer {viewer}\r\n\r\n").as_bytes());
    let (s, head, body) = raw(&server, &req).await;
    assert_eq!(
        (s, json_answer(s, &head, &body, "reason bytes").as_str()),
        (403, "forbidden")
    );
    // Headers a bit too large, and a target too long: JSON, from the server.
    let big = format!("x-junk: {}\r\n", "j".repeat(40 * 1024));
    let (s, head, body) = raw(&server, &get("/health", &big)).await;
    assert_eq!(
        (s, json_answer(s, &head, &body, "40 KiB header").as_str()),
        (431, "too_large")
    );
    let long = format!("/api/runs?x={}", "y".repeat(10 * 1024));
    let (s, head, body) = raw(&server, &get(&long, "")).await;
    assert_eq!(
        (s, json_answer(s, &head, &body, "10 KiB target").as_str()),
        (414, "too_large")
    );
    // Beyond hyper's limits hyper answers itself, without a body (the
    // known gap): a 500 KiB header, 150 headers, a control byte in the
    // target, a request line that is not HTTP.
    let huge = format!("x-junk: {}\r\n", "j".repeat(500 * 1024));
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    for (want, request) in [
        (431, get("/health", &huge)),
        (431, get("/health", &many)),
        (400, get("/api/runs/\x01", "")),
        (
            400,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
        ),
    ] {
        let (s, _, body) = raw(&server, &request).await;
        assert_eq!(
            s,
            want,
            "{:?}",
            String::from_utf8_lossy(&request[..40.min(request.len())])
        );
        assert!(body.is_empty(), "hyper's own answer has no body");
    }
    let (s, _) = server.call("GET", "/health", None, None).await;
    assert_eq!(s, 200, "the server is still up");
    server.stop().await;
}

/// A token revoked or expired while this server has it cached is refused
/// at once by the server that revoked it, for reads and for changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_expired_tokens_are_refused_while_cached() {
    let db = Db::sqlite();
    let (server, tokens) = serve_with_tokens(&db, &[("ada", "admin")]).await;
    let [admin] = tokens.try_into().expect("tokens");
    let make = |expires: Option<&str>| {
        let mut body = json!({"name": "leaked", "role": "operator"});
        if let Some(e) = expires {
            body["expires"] = json!(e);
        }
        server.call("POST", "/api/tokens", Some(&admin), Some(body))
    };
    let (s, v) = make(None).await;
    assert_eq!(s, 201, "{v}");
    let leaked = v["token"].as_str().expect("token").to_string();
    let id = v["id"].as_str().expect("id").to_string();
    let (s, v) = make(Some("1s")).await;
    assert_eq!(s, 201, "{v}");
    let brief = v["token"].as_str().expect("token").to_string();
    for tok in [&leaked, &brief] {
        let (s, _) = server.call("GET", "/api/runs", Some(tok), None).await;
        assert_eq!(s, 200, "it works (and is now cached)");
    }
    let (s, v) = server
        .call("DELETE", &format!("/api/tokens/{id}"), Some(&admin), None)
        .await;
    assert_eq!(s, 204, "{v}");
    let before = recorded(&server, &admin).await;
    for (method, path, body) in [
        ("GET", "/api/runs", None),
        (
            "POST",
            "/api/admin/feature-flags",
            Some(json!({"flag": "by_a_leaked_token", "enabled": true})),
        ),
    ] {
        let (s, v) = server.call(method, path, Some(&leaked), body).await;
        assert_eq!(s, 401, "{method} {path} with the revoked token: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("revoked")),
            "{v}"
        );
    }
    // Revoked again: there is no live token of that id.
    let (s, v) = server
        .call("DELETE", &format!("/api/tokens/{id}"), Some(&admin), None)
        .await;
    assert_eq!(short_error(s, &v, "revoked twice"), "not_found");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = server
        .call(
            "POST",
            "/api/admin/feature-flags",
            Some(&brief),
            Some(json!({"flag": "by_an_expired_token", "enabled": true})),
        )
        .await;
    assert_eq!(s, 401, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{v}"
    );
    unchanged(&server, &admin, &before).await;
    server.stop().await;
}

/// An event stream whose client never reads: the server stops producing
/// for it when the socket is full (the stream is pulled, not pushed), keeps
/// answering everyone else, and the stream still holds its events, in
/// order, when the client reads at last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_never_read_does_not_hold_the_server() {
    let db = Db::sqlite();
    let (server, tokens) =
        serve_with_tokens(&db, &[("vera", "viewer"), ("olga", "operator")]).await;
    let [viewer, operator] = tokens.try_into().expect("tokens");
    let addr: std::net::SocketAddr = server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let mut stalled = socket.connect(addr).await.expect("connect");
    stalled
        .write_all(
            format!(
                "GET /api/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {viewer}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("request");
    // Let the stream start (it only reports changes from now on).
    tokio::time::sleep(Duration::from_millis(500)).await;
    // More than the socket buffers hold: 120 changes of 64 KiB each (a
    // variant's value: a reason is at most 4 KiB).
    let value = "v".repeat(64 * 1024);
    let mut slowest = Duration::ZERO;
    for i in 0..120 {
        let (s, v) = server
            .call(
                "POST",
                "/api/admin/feature-flags",
                Some(&operator),
                Some(json!({
                    "flag": format!("f{i:03}"),
                    "enabled": true,
                    "variants": [{"name": "big", "value": value, "weight": 1}],
                    "default_variant": "big",
                })),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        if i % 20 == 0 {
            let started = std::time::Instant::now();
            let (s, _) = server.call("GET", "/health", None, None).await;
            assert_eq!(s, 200);
            slowest = slowest.max(started.elapsed());
        }
    }
    assert!(slowest < Duration::from_secs(2), "/health took {slowest:?}");
    // The events are all there, in order, for a client that reads at last.
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains("\"f119\"") {
        let n = tokio::time::timeout_at(deadline, stalled.read(&mut buf))
            .await
            .expect("the stream goes on")
            .expect("read");
        assert!(n > 0, "the stream was closed");
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    let order: Vec<usize> = (0..120)
        .map(|i| text.find(&format!("\"f{i:03}\"")).expect("every change"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "in order");
    server.stop().await;
}
