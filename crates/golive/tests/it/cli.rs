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

/// The binary's own argument definition, to parse the commands the docs
/// show exactly as `golive` would.
#[allow(dead_code)]
#[path = "../../src/cli.rs"]
mod cli_definition;

/// What users copy — README.md, docs/, examples/, `golive init` — is safe
/// to copy: every plan validates with `--strict`, every `golive` command
/// in a shell block parses, every relative link and repository path
/// mentioned exists.
mod docs {
    use std::path::{Path, PathBuf};

    use clap::Parser;

    use super::{golive, scratch, stderr};

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                files_under(&path, ext, out);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }

    /// The Markdown users read: README.md, docs/ and examples/.
    fn documents() -> Vec<PathBuf> {
        let mut out = vec![repo().join("README.md")];
        files_under(&repo().join("docs"), "md", &mut out);
        files_under(&repo().join("examples"), "md", &mut out);
        out
    }

    /// The plan files users copy: examples/, docs/examples/ and the demo's.
    fn plan_files() -> Vec<PathBuf> {
        let mut out = Vec::new();
        files_under(&repo().join("examples"), "yaml", &mut out);
        files_under(&repo().join("docs/examples"), "yaml", &mut out);
        out.push(repo().join("crates/golive-demo/demo-plan.yaml"));
        out
    }

    fn name(path: &Path) -> String {
        path.strip_prefix(repo())
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// A fenced block: its language, its first line's number, its text.
    struct Block {
        lang: String,
        line: usize,
        text: String,
    }

    /// The fenced blocks of a Markdown text, and its text outside them.
    fn blocks(markdown: &str) -> (Vec<Block>, String) {
        let mut out = Vec::new();
        let mut prose = String::new();
        let mut open: Option<Block> = None;
        for (n, line) in markdown.lines().enumerate() {
            let fence = line.trim_start().strip_prefix("```");
            match (&mut open, fence) {
                (None, Some(lang)) => {
                    open = Some(Block {
                        lang: lang.trim().to_string(),
                        line: n + 2,
                        text: String::new(),
                    });
                }
                (Some(_), Some(_)) => out.extend(open.take()),
                (Some(b), None) => {
                    b.text.push_str(line);
                    b.text.push('\n');
                }
                (None, None) => {
                    prose.push_str(line);
                    prose.push('\n');
                }
            }
        }
        (out, prose)
    }

    fn is_plan(yaml: &str) -> bool {
        yaml.lines().any(|l| l.starts_with("phases:"))
    }

    /// `golive validate --strict` of each plan; the failures.
    fn validate(plans: &[(String, PathBuf)], dir: &Path) -> Vec<String> {
        let mut failed = Vec::new();
        for (what, path) in plans {
            let path = path.to_str().expect("utf-8 path");
            let o = golive(&["validate", "--strict", path], dir);
            if !o.status.success() {
                failed.push(format!("{what}:\n{}", stderr(&o)));
            }
        }
        failed
    }

    #[test]
    fn every_plan_shown_validates_strictly() {
        let dir = scratch("docs-plans");
        let mut plans: Vec<(String, PathBuf)> =
            plan_files().into_iter().map(|p| (name(&p), p)).collect();
        for doc in documents() {
            let text = std::fs::read_to_string(&doc).expect("read");
            for b in blocks(&text).0 {
                if (b.lang == "yaml" || b.lang == "yml") && is_plan(&b.text) {
                    let file = dir.join(format!("block-{}.yaml", plans.len()));
                    std::fs::write(&file, &b.text).expect("write");
                    plans.push((format!("{}:{}", name(&doc), b.line), file));
                }
            }
        }
        let o = golive(&["init"], &dir);
        assert!(o.status.success(), "{}", stderr(&o));
        plans.push(("`golive init`".into(), dir.join("golive.yaml")));
        assert!(plans.len() >= 7, "only {} plans found", plans.len());
        let failed = validate(&plans, &dir);
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    /// The decision tree docs/rollout.md calls safe to copy: every rule and
    /// level condition judges the canary against the stable version (a
    /// fault both share fails nothing) and holds for a while (one noisy
    /// evaluation decides nothing); a level that pauses rolls back after a
    /// grace (a pause never waits forever); the most severe level rolls
    /// back.
    fn unsafe_parts(plan: &golive_plan::Plan) -> Vec<String> {
        fn judged(what: &str, rule: &golive_plan::rule::Rule) -> Vec<String> {
            let mut found = Vec::new();
            if !rule.reads_baseline() {
                found.push(format!("{what} `{rule}` does not compare with stable"));
            }
            if rule.hold.is_zero() {
                found.push(format!("{what} `{rule}` has no `for`"));
            }
            found
        }
        use golive_plan::LevelAction as A;
        let mut found = Vec::new();
        let rollouts: Vec<&golive_plan::Rollout> = plan
            .phases
            .iter()
            .flat_map(|p| &p.items)
            .filter_map(|i| match &i.kind {
                golive_plan::ItemKind::Rollout(r) => Some(r),
                _ => None,
            })
            .collect();
        for rule in rollouts.iter().flat_map(|r| &r.analysis.rules) {
            found.extend(judged("rule", rule));
        }
        for level in &plan.rollback.levels {
            for rule in &level.when {
                found.extend(judged(&format!("level `{}`", level.name), rule));
            }
            let pauses = level.actions.contains(&A::Pause);
            let grace = level
                .actions
                .iter()
                .any(|a| matches!(a, A::RollbackAfter(_)));
            if pauses && !grace {
                found.push(format!(
                    "level `{}` pauses without `rollback-after`",
                    level.name
                ));
            }
        }
        let any = !rollouts.is_empty();
        let last_rolls_back = plan
            .rollback
            .levels
            .last()
            .is_some_and(|l| l.actions.contains(&A::Rollback));
        if !any || !last_rolls_back {
            found.push("no rollout, or its most severe level does not roll back".into());
        }
        found
    }

    #[test]
    fn init_and_the_plans_called_safe_to_copy_have_safe_decision_trees() {
        let rollout_doc = std::fs::read_to_string(repo().join("docs/rollout.md")).expect("read");
        let (shown, _) = blocks(&rollout_doc);
        let copied = shown
            .iter()
            .find(|b| b.lang == "yaml" && is_plan(&b.text))
            .expect("docs/rollout.md shows a plan");
        for (what, text) in [
            ("`golive init`", golive_plan::EXAMPLE_PLAN),
            ("docs/rollout.md's plan", copied.text.as_str()),
        ] {
            let compiled = golive_plan::compile(text, &|_: &str| true);
            let plan = compiled.plan.unwrap_or_else(|| panic!("{what} compiles"));
            let found = unsafe_parts(&plan);
            assert!(found.is_empty(), "{what}: {}", found.join("; "));
        }
        // The check itself: an absolute rule without `for` is found.
        let risky = golive_plan::EXAMPLE_PLAN.replace(
            "canary.error_rate - stable.error_rate > 2% for 1m",
            "canary.error_rate > 2%",
        );
        assert_ne!(
            risky,
            golive_plan::EXAMPLE_PLAN,
            "the example still has that rule"
        );
        let plan = golive_plan::compile(&risky, &|_: &str| true)
            .plan
            .expect("compiles");
        assert!(!unsafe_parts(&plan).is_empty());
    }

    /// Shell words of one command line, split at `;`, `&`, `|`, `$(`,
    /// `)` and a comment, as sh would (quotes and backslashes honoured).
    fn commands(line: &str) -> Vec<Vec<String>> {
        let mut out = vec![Vec::new()];
        let mut word: Option<String> = None;
        let mut chars = line.chars().peekable();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                } else if c == '\\' && q == '"' {
                    word.get_or_insert_default().extend(chars.next());
                } else {
                    word.get_or_insert_default().push(c);
                }
                continue;
            }
            let end_word = |word: &mut Option<String>, out: &mut Vec<Vec<String>>| {
                if let (Some(w), Some(cmd)) = (word.take(), out.last_mut()) {
                    cmd.push(w);
                }
            };
            match c {
                '\'' | '"' => {
                    quote = Some(c);
                    word.get_or_insert_default();
                }
                '\\' => word.get_or_insert_default().extend(chars.next()),
                '#' if word.is_none() => break,
                ' ' | '\t' => end_word(&mut word, &mut out),
                ';' | '&' | '|' | ')' => {
                    end_word(&mut word, &mut out);
                    out.push(Vec::new());
                }
                '$' if chars.peek() == Some(&'(') => {
                    chars.next();
                    // `TOKEN=$(golive …)`: the assignment is not a command.
                    word = None;
                    out.push(Vec::new());
                }
                _ => word.get_or_insert_default().push(c),
            }
        }
        if let (Some(w), Some(cmd)) = (word, out.last_mut()) {
            cmd.push(w);
        }
        out.retain(|c| !c.is_empty());
        out
    }

    /// `golive`'s arguments in a command, if it runs golive (directly or
    /// through `cargo run -p golive --`).
    fn golive_args(words: &[String]) -> Option<Vec<String>> {
        match words.first().map(String::as_str) {
            Some("golive") => Some(words[1..].to_vec()),
            Some("cargo") if words.windows(2).any(|w| w[0] == "-p" && w[1] == "golive") => {
                let at = words.iter().position(|w| w == "--")?;
                Some(words[at + 1..].to_vec())
            }
            _ => None,
        }
    }

    #[test]
    fn every_command_shown_parses() {
        let mut checked = 0;
        let mut failed = Vec::new();
        for doc in documents() {
            let text = std::fs::read_to_string(&doc).expect("read");
            for b in blocks(&text).0 {
                if !["sh", "bash", "shell", "console"].contains(&b.lang.as_str()) {
                    continue;
                }
                let joined = b.text.replace("\\\n", " ");
                for (n, line) in joined.lines().enumerate() {
                    let line = line.trim_start();
                    let line = line.strip_prefix("$ ").unwrap_or(line);
                    for words in commands(line) {
                        let Some(args) = golive_args(&words) else {
                            continue;
                        };
                        // The docs' placeholder for a run id.
                        let args = args
                            .iter()
                            .map(|a| if a == "RUN" { "r-aaaaaaaa" } else { a });
                        let parsed = super::cli_definition::Cli::try_parse_from(
                            std::iter::once("golive").chain(args),
                        );
                        checked += 1;
                        if let Err(e) = parsed {
                            failed.push(format!(
                                "{} (block at line {}, line {}): {}\n{e}",
                                name(&doc),
                                b.line,
                                n + 1,
                                words.join(" ")
                            ));
                        }
                    }
                }
            }
        }
        assert!(checked >= 8, "only {checked} commands found");
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    /// Repository paths a text mentions: words (links' targets included)
    /// starting with a top-level directory of the repository, `./` or `../`.
    fn mentioned_paths(text: &str) -> Vec<String> {
        const TOP: &[&str] = &[
            "crates/",
            "docs/",
            "examples/",
            "scripts/",
            "schema/",
            "./",
            "../",
        ];
        text.split(|c: char| c.is_whitespace() || "`()[]<>\"'".contains(c))
            .map(|w| w.trim_end_matches([',', '.', ';', ':', '!', '?']))
            .map(|w| w.split('#').next().unwrap_or(w))
            .filter(|w| TOP.iter().any(|t| w.starts_with(t)))
            .filter(|w| !w.contains("://") && !w.contains(['*', '{', '$', '=']))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_path_and_link_mentioned_exists() {
        let dir = scratch("docs-paths");
        let o = golive(&["init"], &dir);
        assert!(o.status.success(), "{}", stderr(&o));
        // Documents whole; plans by their comments only: a plan's commands
        // (`./scripts/deploy.sh`) are the user's project's, not ours. The
        // checklists under examples/ are other projects' (input for
        // `golive import`), so are not searched.
        let comments = |yaml: &str| -> String {
            yaml.lines()
                .filter(|l| l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut texts: Vec<(PathBuf, String)> = Vec::new();
        for doc in documents() {
            if doc.starts_with(repo().join("examples/checklists")) {
                continue;
            }
            let text = std::fs::read_to_string(&doc).expect("read");
            texts.push((doc, text));
        }
        for plan in plan_files() {
            let text = std::fs::read_to_string(&plan).expect("read");
            texts.push((plan, comments(&text)));
        }
        // `golive init`'s plan is written into the user's directory: the
        // paths it names are the repository's.
        let init = std::fs::read_to_string(dir.join("golive.yaml")).expect("init plan");
        texts.push((repo().join("golive.yaml"), comments(&init)));
        let mut checked = 0;
        let mut missing = Vec::new();
        for (doc, text) in &texts {
            let here = doc.parent().unwrap_or(Path::new("."));
            // Markdown links: relative to the document.
            let mut paths: Vec<(String, bool)> = Vec::new();
            for part in text.split("](").skip(1) {
                let target = part.split(')').next().unwrap_or_default();
                let target = target.split('#').next().unwrap_or_default();
                if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
                    paths.push((target.to_string(), true));
                }
            }
            // Paths in the text: from the repository's root, or the file's.
            paths.extend(mentioned_paths(text).into_iter().map(|p| (p, false)));
            for (path, link) in paths {
                checked += 1;
                let found = here.join(&path).exists() || (!link && repo().join(&path).exists());
                if !found {
                    missing.push(format!("{}: {path}", name(doc)));
                }
            }
        }
        assert!(checked >= 20, "only {checked} paths found");
        missing.sort();
        missing.dedup();
        assert!(missing.is_empty(), "missing:\n{}", missing.join("\n"));
    }
}
