//! `golive ready` end to end: real servers on loopback, every output format, exit codes.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn golive(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_golive"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GOLIVE_TEST_SECRET")
        .output()
        .expect("golive runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ready-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A tiny HTTP server on loopback answering every request with a JSON health body.
/// It lives as long as the test process.
fn health_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = r#"{"status":"UP","items":[1,2]}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn plan(base: &str, closed: u16) -> String {
    format!(
        r#"name: shop
variables:
  BASE: {base}
secrets:
  TOKEN: env:GOLIVE_TEST_SECRET
phases:
  - title: Infra
    items:
      - id: db
        critical: true
        tags: [db]
        check:
          postgres: {{url: "postgres://postgres@127.0.0.1:5432/test", query: "select 41 + 1"}}
          expect: [value == 42]
      - id: cache
        check:
          redis: {{url: "redis://127.0.0.1:6379"}}
          expect: [ping == true]
  - title: App
    items:
      - id: health
        critical: true
        check:
          http: {{url: "${{BASE}}/health"}}
          expect: [status == 200, body.$.status == "UP", "len(body.$.items) == 2", header.X-Content-Type-Options == nosniff]
      - id: legacy-port
        check:
          tcp: {{address: "127.0.0.1:{closed}"}}
      - id: authed
        check:
          http: {{url: "${{BASE}}/private", headers: {{Authorization: "Bearer ${{TOKEN}}"}}}}
"#
    )
}

#[test]
fn ready_scores_real_checks_and_gates_on_critical_ones() {
    let dir = scratch("score");
    std::fs::write(
        dir.join("golive.yaml"),
        plan(&health_server(), closed_port()),
    )
    .expect("write");

    let o = golive(&["ready", "--output", "json"], &dir);
    let out = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let status = |id: &str| {
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(status("db"), "pass", "{out}");
    assert_eq!(status("cache"), "pass", "{out}");
    assert_eq!(status("health"), "pass", "{out}");
    assert_eq!(status("legacy-port"), "fail", "{out}");
    // The secret is unset: only the check that uses it fails, with the reason.
    assert_eq!(status("authed"), "error", "{out}");
    assert!(out.contains("GOLIVE_TEST_SECRET"), "{out}");
    // Weights: db 3 + cache 1 + health 3 pass; legacy-port 1 + authed 1 do not: 7/9.
    assert_eq!(v["score"], 77);
    assert_eq!(v["ready"], false, "77 is below the default 80");
    assert_eq!(v["critical_failures"], 0);
    assert_eq!(o.status.code(), Some(1));

    let o = golive(&["ready", "--min-score", "75"], &dir);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("READY: score 77/100 (bronze)"), "{table}");
    assert!(
        table.find("legacy-port").expect("listed") < table.find("health").expect("listed"),
        "failures come first:\n{table}"
    );
}

#[test]
fn filters_select_checks() {
    let dir = scratch("filters");
    std::fs::write(
        dir.join("golive.yaml"),
        plan(&health_server(), closed_port()),
    )
    .expect("write");
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ready", "--output", "json"];
        all.extend_from_slice(args);
        let o = golive(&all, &dir);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .map(|c| c["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(ids(&["--phase", "infra"]), ["db", "cache"]);
    assert_eq!(ids(&["--tag", "db"]), ["db"]);
    assert_eq!(ids(&["--only", "health,db"]), ["db", "health"]);
    let o = golive(&["ready", "--only", "nope"], &dir);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_failing_critical_check_fails_the_report() {
    let dir = scratch("critical");
    std::fs::write(
        dir.join("golive.yaml"),
        format!(
            "name: x\nphases:\n  - title: P\n    items:\n      - id: down\n        critical: true\n        check: {{tcp: {{address: '127.0.0.1:{}'}}}}\n",
            closed_port()
        ),
    )
    .expect("write");
    let o = golive(&["ready", "--min-score", "0", "--output", "json"], &dir);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        (v["ready"].as_bool(), v["critical_failures"].as_u64()),
        (Some(false), Some(1))
    );
}

#[test]
fn junit_and_markdown_reports() {
    let dir = scratch("formats");
    std::fs::write(
        dir.join("golive.yaml"),
        plan(&health_server(), closed_port()),
    )
    .expect("write");
    let o = golive(&["ready", "--output", "junit"], &dir);
    let xml = String::from_utf8(o.stdout).expect("utf8");
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 5);
    let failed = cases
        .iter()
        .find(|c| c.attribute("name") == Some("legacy-port"))
        .and_then(|c| c.children().find(|n| n.has_tag_name("failure")))
        .expect("legacy-port has a <failure>");
    assert!(
        failed
            .attribute("message")
            .unwrap_or_default()
            .contains("connected"),
        "{xml}"
    );
    let suites = doc.root_element();
    assert_eq!(suites.attribute("tests"), Some("5"));
    assert_eq!(suites.attribute("failures"), Some("1"));
    assert_eq!(suites.attribute("errors"), Some("1"));

    let o = golive(&["ready", "--output", "markdown"], &dir);
    let md = String::from_utf8(o.stdout).expect("utf8");
    assert!(md.starts_with("# Readiness: shop"), "{md}");
    assert!(md.contains("| ❌ fail |"), "{md}");
}

#[test]
fn an_invalid_plan_exits_2() {
    let dir = scratch("invalid");
    std::fs::write(dir.join("golive.yaml"), "name: x\nphases: []\nbogus: 1\n").expect("write");
    let o = golive(&["ready"], &dir);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown field `bogus`"));
}

#[test]
fn the_shipped_example_is_ready_on_this_machine() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let o = golive(
        &["ready", "examples/readiness.yaml", "--output", "json"],
        &root,
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["critical_failures"], 0, "{v:#}");
    assert_eq!(v["counts"]["total"], 8);
    // The machine's Redis keeps nothing on disk: the one finding the example documents.
    let failing: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] != "pass")
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(failing, ["cache-persistence"], "{v:#}");
    assert_eq!(o.status.code(), Some(0));
}

/// A go-live checklist as a team writes it, whose health commands point at `base`.
fn checklist(base: &str) -> String {
    format!(
        "# Shop go-live\n\n\
         ## T-1h: Readiness\n\n\
         - [ ] API answers: `curl -f {base}/health`\n\
         - [ ] Backups taken and restore-tested\n\n\
         ## T-0: Deploy\n\n\
         ```bash\n\
         # 1. Deploy the release\n\
         ./deploy.sh v2\n\
         # 2. Smoke test\n\
         curl -fsS {base}/ready\n\
         ```\n\n\
         ## Rollback\n\n\
         ```bash\n\
         kubectl rollout undo deployment/shop\n\
         ```\n"
    )
}

#[test]
fn a_plan_imported_from_a_checklist_with_health_commands_runs_real_checks() {
    let dir = scratch("imported");
    let up = health_server();
    std::fs::write(dir.join("up.md"), checklist(&up)).expect("checklist");
    let o = golive(&["import", "up.md", "-o", "up.yaml"], &dir);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert!(err.contains("drafted: 1 task, 2 check, 1 run"), "{err}");

    let o = golive(&["ready", "up.yaml", "--output", "json"], &dir);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    assert_eq!(o.status.code(), Some(0), "{report:#}");
    let checks = report["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 2, "{report:#}");
    for c in checks {
        assert_eq!(c["probe"], "http", "{c:#}");
        assert_eq!(c["status"], "pass", "{c:#}");
    }
    assert_eq!(report["level"], "gold");

    // The same checklist against a port nothing listens on: the checks run
    // and fail, and the plan is not ready.
    let down = format!("http://127.0.0.1:{}", closed_port());
    std::fs::write(dir.join("down.md"), checklist(&down)).expect("checklist");
    let o = golive(&["import", "down.md", "-o", "down.yaml"], &dir);
    assert!(o.status.success());
    let o = golive(&["ready", "down.yaml", "--output", "json"], &dir);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    assert_eq!(o.status.code(), Some(1), "{report:#}");
    assert_eq!(report["counts"]["pass"], 0, "{report:#}");
    assert_eq!(report["counts"]["total"], 2, "{report:#}");
}

#[test]
fn a_plan_without_checks_is_not_reported_ready() {
    let dir = scratch("no-checks");
    std::fs::write(
        dir.join("tasks.md"),
        "# Launch\n\n## Go\n\n- [ ] Tell the team\n- [ ] Flip the switch\n",
    )
    .expect("checklist");
    let o = golive(&["import", "tasks.md", "-o", "tasks.yaml"], &dir);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert!(err.contains("no checks"), "{err}");
    let o = golive(&["ready", "tasks.yaml"], &dir);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("has no checks"), "{err}");
    assert!(!out.contains("gold") && out.contains("NOT READY"), "{out}");
}
