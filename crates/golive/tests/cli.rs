//! The `golive` binary as a user runs it: exit codes, files written, output formats.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn golive(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_golive"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("golive runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory under the target dir, removed and recreated per test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn init_writes_a_plan_that_validates_and_refuses_to_overwrite() {
    let dir = scratch("init");
    let o = golive(&["init"], &dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = golive(&["validate"], &dir);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("golive.yaml is valid: 4 phases, 11 items"),
        "{}",
        stdout(&o)
    );
    let o = golive(&["init"], &dir);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
}

#[test]
fn validate_exit_codes_distinguish_invalid_from_usage_errors() {
    let dir = scratch("exit-codes");
    std::fs::write(dir.join("bad.yaml"), "name: x\nphases:\n  - title: p\n    items:\n      - id: a\n        run: {command: ls, tmeout: 5s}\n").expect("write");
    let o = golive(&["validate", "bad.yaml"], &dir);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("unknown field `tmeout`"), "{err}");
    assert!(err.contains("did you mean `timeout`?"), "{err}");
    assert!(err.contains("bad.yaml:6:"), "{err}");

    let o = golive(&["validate", "missing.yaml"], &dir);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read missing.yaml"),
        "{}",
        stderr(&o)
    );

    let o = golive(&["validate", "--no-such-flag"], &dir);
    assert_eq!(o.status.code(), Some(2));

    let huge = std::fs::File::create(dir.join("huge.yaml")).expect("create");
    huge.set_len(100 * 1024 * 1024).expect("100 MB sparse file");
    let o = golive(&["validate", "huge.yaml"], &dir);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("huge.yaml is larger than 8 MiB"),
        "{}",
        stderr(&o)
    );

    std::fs::write(dir.join("empty.yaml"), "").expect("write");
    let o = golive(&["validate", "empty.yaml"], &dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("the plan is empty"), "{}", stderr(&o));

    std::fs::write(dir.join("latin1.yaml"), b"name: caf\xe9\n").expect("write");
    let o = golive(&["validate", "latin1.yaml"], &dir);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not UTF-8 text: invalid byte at line 1, column 10"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn validate_json_lists_every_diagnostic_with_its_line() {
    let dir = scratch("json");
    std::fs::write(
        dir.join("p.yaml"),
        "name: x\nphases:\n  - title: p\n    at: T-2x\n    items:\n      - id: a\n        wait: {duration: 5 parsecs}\n",
    )
    .expect("write");
    let o = golive(&["validate", "p.yaml", "--output", "json"], &dir);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 2);
    let lines: Vec<u64> = v["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, [4, 7]);
}

#[test]
fn vars_from_the_command_line_define_variables() {
    let dir = scratch("vars");
    std::fs::write(
        dir.join("p.yaml"),
        "name: x\nphases:\n  - title: p\n    items:\n      - id: a\n        check: {http: {url: '${GOLIVE_TEST_URL}/health'}}\n",
    )
    .expect("write");
    assert_eq!(golive(&["validate", "p.yaml"], &dir).status.code(), Some(1));
    let o = golive(
        &["validate", "p.yaml", "--var", "GOLIVE_TEST_URL=http://x"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn plan_show_prints_the_timeline_in_both_formats() {
    let dir = scratch("show");
    assert!(golive(&["init"], &dir).status.success());
    let o = golive(&["plan", "show"], &dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "T-24h",
        "2026-11-30 14:00 UTC",
        "Readiness",
        "1 approval",
        "degraded → failing → down",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
    let o = golive(&["plan", "show", "--output", "json"], &dir);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["phases"][2]["at"], "T+0");
    assert_eq!(v["totals"]["check"], 3);
    assert_eq!(
        v["phases"][1]["owners"][0],
        "tech-lead+security+ops+business"
    );
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let dir = scratch("schema");
    let o = golive(&["schema"], &dir);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schema/golive.schema.json"
    ))
    .expect("committed schema");
    assert_eq!(stdout(&o), committed);
}

#[test]
fn completions_are_generated() {
    let o = golive(&["completions", "bash"], &scratch("completions"));
    assert!(o.status.success());
    assert!(stdout(&o).contains("golive"));
}

#[test]
fn diagnostics_read_well() {
    let dir = scratch("snapshot");
    std::fs::write(
        dir.join("golive.yaml"),
        "name: shop\nroles:\n  ops: {members: [carol]}\nphases:\n  - title: Go\n    at: T+0\n    items:\n      - id: health\n        owner: opps\n        check:\n          http: {url: 'http://127.0.0.1:8080/health'}\n          expect: [status = 200, latency < 5s]\n          tmeout: 5s\n",
    )
    .expect("write");
    let o = golive(&["validate"], &dir);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(stderr(&o));
}

/// `golive ARGS --db journal.db` in `dir` with stdout (and, if
/// `close_stderr`, stderr) a pipe whose reading end is closed at once, as
/// `golive … | true` does; its exit code and whatever stderr said.
fn with_closed_pipe(args: &[&str], dir: &Path, close_stderr: bool) -> (Option<i32>, String) {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_golive"))
        .args(args)
        .arg("--db")
        .arg(dir.join("journal.db"))
        .current_dir(dir)
        .env_remove("GOLIVE_DATABASE_URL")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("golive starts");
    drop(child.stdout.take());
    let mut err = String::new();
    if close_stderr {
        drop(child.stderr.take());
    } else if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).expect("stderr");
    }
    let status = child.wait().expect("golive ends");
    (status.code(), err)
}

/// Broken pipes end quietly with the right exit code (as ripgrep does): a
/// run's code is its outcome's, a read command's is 0; never a panic (101).
#[test]
fn broken_pipes_end_quietly_with_the_right_exit_code() {
    let dir = scratch("broken-pipe");
    std::fs::write(
        dir.join("plan.yaml"),
        "name: p\nphases:\n  - title: a\n    items:\n      - id: one\n        run: {command: 'echo one'}\n",
    )
    .expect("plan");
    let (code, err) = with_closed_pipe(&["run", "plan.yaml", "--output", "json"], &dir, false);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("succeeded") && !err.contains("panicked"),
        "{err}"
    );
    // stdout and stderr both closed: the run still completes, exit 0.
    let (code, _) = with_closed_pipe(&["run", "plan.yaml"], &dir, true);
    assert_eq!(code, Some(0));
    let o = golive(&["runs", "--db", "journal.db", "--output", "json"], &dir);
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(runs.as_array().map(Vec::len), Some(2));
    assert!(
        runs.as_array()
            .into_iter()
            .flatten()
            .all(|r| r["status"] == "succeeded"),
        "{runs}"
    );
    // A failing run keeps its exit code 1 with a closed stdout.
    std::fs::write(
        dir.join("fail.yaml"),
        "name: f\nphases:\n  - title: a\n    items:\n      - id: no\n        run: {command: 'exit 3'}\n",
    )
    .expect("plan");
    let (code, err) = with_closed_pipe(&["run", "fail.yaml", "--output", "json"], &dir, false);
    assert_eq!(code, Some(1), "{err}");
    for args in [
        &["status"][..],
        &["status", "--output", "json"],
        &["runs"],
        &["report"],
    ] {
        let (code, err) = with_closed_pipe(args, &dir, false);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// `runs`, `status` and `report` read: a journal that does not exist is a
/// clear error naming it, and no file or directory is created.
#[test]
fn read_commands_never_create_a_journal() {
    let dir = scratch("read-only-commands");
    let db = dir.join("missing/dir/x.db");
    let db = db.to_str().expect("utf-8");
    for args in [
        &["runs", "--db", db][..],
        &["status", "--db", db],
        &["report", "--db", db],
    ] {
        let o = golive(args, &dir);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("no journal at") && err.contains(db), "{err}");
        assert!(
            !dir.join("missing").exists(),
            "{args:?} created a directory"
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_golive"))
        .args(["runs"])
        .current_dir(&dir)
        .env_remove("GOLIVE_DATABASE_URL")
        .env("XDG_DATA_HOME", dir.join("data"))
        .output()
        .expect("golive runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        !dir.join("data").exists(),
        "the default journal was created"
    );
}

#[test]
fn import_refuses_a_checklist_too_large_before_writing_anything() {
    let dir = scratch("import-large");
    let line = "- [ ] Verify the service answers on every node of the cluster\n";
    std::fs::write(
        dir.join("huge.md"),
        line.repeat(5 * 1024 * 1024 / line.len()),
    )
    .expect("md");
    let o = golive(&["import", "huge.md", "-o", "plan.yaml"], &dir);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("huge.md") && err.contains("at most 1024 KiB"),
        "{err}"
    );
    assert!(!err.contains("bug"), "{err}");
    assert!(!dir.join("plan.yaml").exists(), "a plan was written");

    // Small in bytes, but more entries than a plan can hold.
    std::fs::write(dir.join("many.md"), "- [ ] x\n".repeat(30_000)).expect("md");
    let o = golive(&["import", "many.md", "-o", "plan.yaml"], &dir);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("30000 list items and headings"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.join("plan.yaml").exists(), "a plan was written");
}

#[test]
fn validate_strict_fails_on_what_the_import_left_to_review() {
    let dir = scratch("import-strict");
    let md = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../golive-plan/tests/checklists/ledger-api-helm.md");
    let md = md.display().to_string();
    let o = golive(&["import", &md, "-o", "plan.yaml"], &dir);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("needs review"), "{}", stderr(&o));
    let o = golive(&["validate", "plan.yaml"], &dir);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = golive(&["validate", "--strict", "plan.yaml"], &dir);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("placeholder member `TODO-payments-lead`"),
        "{err}"
    );
    assert!(err.contains("is marked for review"), "{err}");
}
