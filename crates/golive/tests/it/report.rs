//! `golive report` end to end: an imported Markdown checklist, run with
//! every task confirmed from a second process, comes back as a completed
//! copy of itself; the demo go-live's record in each format (Markdown with
//! filled blanks and sign-offs, HTML escaped, JUnit that parses, JSON with
//! its documented fields); failures and skips in JUnit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::util::Running;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn command(args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GOLIVE_DATABASE_URL");
    if args.first() != Some(&"import") {
        cmd.arg("--db").arg(dir.join("journal.db"));
    }
    cmd
}

fn golive(args: &[&str], dir: &Path) -> Output {
    command(args, dir).output().expect("golive runs")
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("UTF-8 output")
}

fn start(dir: &Path, args: &[&str]) -> Running {
    Running::spawn(command(args, dir), Duration::from_secs(60))
}

/// Waits for the run to end; it must have succeeded.
fn finish(running: Running) -> i32 {
    let (code, seen) = running.finish();
    assert!(
        seen.iter().any(|l| l.contains(" succeeded")),
        "{}",
        seen.join("\n")
    );
    code
}

#[test]
fn an_imported_checklist_comes_back_as_a_completed_copy() {
    let dir = scratch("report-imported");
    let source = workspace().join("examples/checklists/pager-system-go-live.md");
    let source_text = std::fs::read_to_string(&source).expect("checklist");
    let source_arg = source.display().to_string();
    ok(golive(&["import", &source_arg, "-o", "plan.yaml"], &dir));
    // "Stakeholder approval" is drafted as an approval by a role nobody was
    // named for: name someone, as the import asks.
    let plan = std::fs::read_to_string(dir.join("plan.yaml")).expect("plan");
    assert!(plan.contains("TODO-stakeholder"), "{plan}");
    std::fs::write(
        dir.join("plan.yaml"),
        plan.replace("TODO-stakeholder", "carol"),
    )
    .expect("plan");

    let mut running = start(&dir, &["run", "plan.yaml"]);
    let run = running.run_id();
    // Every task of the phases, confirmed from a second process.
    let status: Value =
        serde_json::from_str(&ok(golive(&["status", &run, "--output", "json"], &dir)))
            .expect("status JSON");
    let items = status["items"].as_array().expect("items");
    let mut confirmed = 0;
    for item in items
        .iter()
        .filter(|i| i["phase"] != "rollback" && i["kind"] == "task")
    {
        let id = item["id"].as_str().expect("id");
        let by = if confirmed % 2 == 0 { "alice" } else { "bob" };
        ok(golive(&["confirm", &run, id, "--by", by], &dir));
        confirmed += 1;
    }
    assert_eq!(confirmed, 83);
    let approvals: Vec<&str> = items
        .iter()
        .filter(|i| i["kind"] == "approval")
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(approvals, ["stakeholder-approval"]);
    ok(golive(
        &[
            "approve",
            &run,
            approvals[0],
            "--as",
            "stakeholder",
            "--by",
            "carol",
        ],
        &dir,
    ));
    assert_eq!(finish(running), 0);

    let report = ok(golive(&["report", &run], &dir));
    // Every checklist item of the source, ticked.
    let mut checked = 0;
    for line in source_text.lines() {
        if let Some(title) = line.trim_start().strip_prefix("- [ ] ") {
            let ticked = format!("- [x] {}", title.trim());
            assert!(report.contains(&ticked), "no `{ticked}` in:\n{report}");
            checked += 1;
        }
    }
    assert_eq!(checked, 84);
    assert!(report.contains("— confirmed by alice at "), "{report}");
    // The same headings, in the same order.
    let mut at = 0;
    for heading in [
        "## Pre-Deployment Validation\n",
        "### Infrastructure Readiness\n",
        "### Security Validation\n",
        "## Phase 1: Infrastructure (Day -7)\n",
        "## Phase 5: Go-Live (Day 0)\n",
        "## Post-Deployment Validation\n",
        "### Monitoring Setup\n",
        "## Success Criteria\n",
        "### Security Metrics\n",
        "## Rollback\n",
        "## Lessons learned\n",
        "### What went well\n",
        "### What could be improved\n",
        "### Action items\n",
    ] {
        let found = report[at..]
            .find(heading)
            .unwrap_or_else(|| panic!("no `{heading}` after byte {at} in:\n{report}"));
        at += found + heading.len();
    }
}

/// Runs the demo go-live with two signers and a confirmation with fields;
/// the directory and the run id.
fn demo_run(name: &str) -> (PathBuf, String) {
    let dir = scratch(name);
    let plan = workspace().join("examples/golive-demo.yaml");
    let plan = plan.display().to_string();
    let out = format!("OUT={}", dir.join("out").display());
    let mut running = start(
        &dir,
        &["run", &plan, "--var", &out, "--t0", "2026-12-01T14:00:00Z"],
    );
    let run = running.run_id();
    running.wait_for("waiting     go-no-go");
    ok(golive(
        &[
            "approve",
            &run,
            "go-no-go",
            "--as",
            "release-manager",
            "--by",
            "alice",
            "--comment",
            "ship <it> & go",
        ],
        &dir,
    ));
    ok(golive(
        &["approve", &run, "go-no-go", "--as", "ops", "--by", "bob"],
        &dir,
    ));
    running.wait_for("waiting     smoke-test");

    // A blank the task does not have is refused, naming those it has.
    let o = golive(
        &[
            "confirm",
            &run,
            "smoke-test",
            "--by",
            "bob",
            "--evidence",
            "x",
            "--field",
            "Start Time=14:02",
        ],
        &dir,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`Orders placed`, `Verified at`, `Change Ticket`"),
        "{err}"
    );

    ok(golive(
        &[
            "confirm",
            &run,
            "smoke-test",
            "--by",
            "bob",
            "--evidence",
            "<script>alert(1)</script>",
            "--field",
            "Orders placed=3",
            "--field",
            "Verified at=14:02",
            "--field",
            "Change Ticket=CHG-1042",
        ],
        &dir,
    ));
    assert_eq!(finish(running), 0);
    (dir, run)
}

#[test]
fn the_demo_record_in_every_format() {
    let (dir, run) = demo_run("report-demo");

    // Markdown: blanks filled with who gave them, sign-offs, output, checks.
    let md = ok(golive(&["report", &run], &dir));
    for needle in [
        "# Go-live record: hello-shop",
        "| Status | **succeeded** |",
        "**Change Ticket**: CHG-1042 (by bob)",
        "**Verified at**: 14:02 (by bob)",
        "  - **Orders placed**: 3 (by bob)",
        // Nobody gave the deployment phase's start time: the journal does.
        "**Start Time**: 20",
        "(by the journal)",
        "- [x] Release manager and ops agree to go live — approved",
        "  - **release-manager**: approved by alice at ",
        "— “ship &lt;it> & go”",
        "  - **ops**: approved by bob at ",
        "- [x] Smoke test the shop by hand — confirmed by bob at ",
        "migrated batch 12/12",
        "… 4 more lines …",
        "  - ✓ `size > 10` (observed `",
        "_planned T+0 (2026-12-01 14:00:00 UTC)",
        "_Not needed: the go-live did not roll back._",
        "## Lessons learned",
    ] {
        assert!(md.contains(needle), "no `{needle}` in:\n{md}");
    }

    // HTML: self-contained, every text escaped.
    let html = ok(golive(&["report", &run, "--format", "html"], &dir));
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("ship &lt;it&gt; &amp; go"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    // JUnit: parses; one test case per item (rollback not run: not listed).
    let xml = ok(golive(&["report", &run, "--format", "junit"], &dir));
    let doc = roxmltree::Document::parse(&xml).expect("JUnit parses as XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 9, "{xml}");
    assert_eq!(doc.root_element().attribute("failures"), Some("0"));

    // JSON: the documented shape.
    let out = dir.join("report.json");
    let out_arg = out.display().to_string();
    ok(golive(
        &["report", &run, "--format", "json", "-o", &out_arg],
        &dir,
    ));
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report file")).expect("JSON");
    assert_eq!(j["report_version"], 1);
    assert_eq!(j["run"]["id"], run.as_str());
    assert_eq!(j["run"]["status"], "succeeded");
    for k in [
        "t0",
        "created_at",
        "started_at",
        "finished_at",
        "plan_sha256",
    ] {
        assert!(j["run"].get(k).is_some(), "run.{k} in {j}");
    }
    assert_eq!(j["plan"]["name"], "hello-shop");
    assert_eq!(j["plan"]["version"], "1.4.0");
    assert_eq!(j["record"][0]["name"], "Change Ticket");
    assert_eq!(j["record"][0]["value"], "CHG-1042");
    assert_eq!(j["record"][0]["by"], "bob");
    let phases = j["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 4);
    let sign_off = &phases[1]["items"][0];
    assert_eq!(sign_off["kind"], "approval");
    assert_eq!(sign_off["result"], "passed");
    assert_eq!(sign_off["signatures"][0]["role"], "release-manager");
    assert_eq!(sign_off["signatures"][0]["by"], "alice");
    assert_eq!(sign_off["signatures"][0]["decision"], "approve");
    let deploy = &phases[2]["items"][1];
    assert_eq!(deploy["id"], "deploy");
    assert_eq!(deploy["command"]["exit_code"], 0);
    assert_eq!(deploy["command"]["stdout"]["lines"], 14);
    assert_eq!(deploy["command"]["stdout"]["tail"][4], "deployed");
    assert!(phases[2]["planned_start"].is_string(), "{j}");
    let check = &phases[3]["items"][0];
    assert_eq!(check["check"]["conditions"][1]["passed"], true);
    assert_eq!(check["check"]["conditions"][1]["observed"], "\"1.4.0\\n\"");
    let smoke = &phases[3]["items"][1];
    assert_eq!(smoke["confirmation"]["by"], "bob");
    assert_eq!(
        smoke["confirmation"]["evidence"],
        "<script>alert(1)</script>"
    );
    assert_eq!(smoke["fields"][0]["value"], "3");
    assert_eq!(phases[3]["record"][0]["value"], "14:02");
    assert_eq!(j["rollback"][0]["result"], "pending");
    assert_eq!(j["summary"]["passed"], 9);
    assert_eq!(j["summary"]["pending"], 1);
    assert_eq!(j["lessons"]["action_items"], serde_json::json!([]));
}

#[test]
fn junit_shows_failures_and_skips() {
    let dir = scratch("report-junit");
    std::fs::write(
        dir.join("plan.yaml"),
        r#"name: mixed
phases:
  - title: Steps
    items:
      - id: fine
        run: {command: "true"}
      - id: broken
        title: A step that breaks
        on_failure: continue
        run: {command: "echo 'it <broke> & stopped' >&2; exit 3"}
      - id: later
        task: {}
"#,
    )
    .expect("plan");
    let mut running = start(&dir, &["run", "plan.yaml"]);
    let run = running.run_id();
    running.wait_for("waiting     later");
    ok(golive(
        &[
            "confirm",
            &run,
            "later",
            "--by",
            "carol",
            "--skip",
            "--reason",
            "not today",
        ],
        &dir,
    ));
    assert_eq!(finish(running), 0);

    let xml = ok(golive(&["report", &run, "--format", "junit"], &dir));
    let doc = roxmltree::Document::parse(&xml).expect("JUnit parses as XML");
    let case = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no testcase {name} in {xml}"))
    };
    assert_eq!(
        case("fine").children().filter(|n| n.is_element()).count(),
        0
    );
    let failure = case("A step that breaks")
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure");
    assert!(
        failure
            .text()
            .unwrap_or_default()
            .contains("it <broke> & stopped"),
        "{xml}"
    );
    let skipped = case("later")
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .expect("skipped");
    assert_eq!(
        skipped.attribute("message"),
        Some("skipped by carol: not today")
    );
    assert_eq!(doc.root_element().attribute("failures"), Some("1"));
    assert_eq!(doc.root_element().attribute("skipped"), Some("1"));

    let md = ok(golive(&["report", &run], &dir));
    assert!(
        md.contains("- [ ] A step that breaks — **failed**: exit code 3"),
        "{md}"
    );
    assert!(md.contains("- [ ] later — skipped by carol at "), "{md}");
}
