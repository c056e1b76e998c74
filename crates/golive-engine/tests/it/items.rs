//! `run` items through the engine: output capped at 64 KiB and redacted,
//! plan variables and secrets in the environment, `workdir` and `env`.

use std::sync::Arc;

use golive_engine::Engine;
use golive_store::{RunId, RunStatus, SqliteStore, Store};

/// Runs the plan `src` to its end on a fresh journal in `dir`: the
/// journal, the run and its final status.
async fn executed(src: &str, dir: &std::path::Path) -> (Arc<SqliteStore>, RunId, RunStatus) {
    let compiled = golive_plan::compile(src, &|_: &str| true);
    let plan = compiled
        .plan
        .unwrap_or_else(|| panic!("{:?}", compiled.diagnostics));
    let store = Arc::new(SqliteStore::open(dir.join("j.db")).await.expect("journal"));
    let engine = Engine::new(Arc::clone(&store)).expect("engine");
    let run = engine.create(src, &plan, None).await.expect("create");
    let status = engine.execute(&run, &plan, &[]).await.expect("execute");
    (store, run, status)
}

#[tokio::test(flavor = "multi_thread")]
async fn command_output_is_capped_redacted_and_sees_variables() {
    let dir = tempfile::tempdir().expect("dir");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("workdir");
    let src = format!(
        "name: p\nvariables:\n  WHO: world\nsecrets:\n  KEY: file:{}\nphases:\n  - title: a\n    items:\n      - id: big\n        run: {{command: 'head -c 100000 /dev/zero | tr \"\\\\0\" x'}}\n      - id: env\n        run:\n          command: 'echo \"$WHO $KEY $EXTRA $(pwd)\"'\n          workdir: {}\n          env: {{EXTRA: \"x-${{WHO}}\"}}\n",
        dir.path().join("key.txt").display(),
        work.display()
    );
    std::fs::write(dir.path().join("key.txt"), "very-secret\n").expect("secret");
    let (store, run, status) = executed(&src, dir.path()).await;
    assert_eq!(status, RunStatus::Succeeded);
    let states = store.item_states(&run).await.expect("states");
    let big = states[0].result.clone().expect("result");
    assert_eq!(big["stdout"].as_str().map(str::len), Some(64 * 1024));
    assert_eq!(big["stdout_truncated"], true);
    let env = states[1].result.clone().expect("result");
    assert_eq!(
        env["stdout"],
        format!("world *** x-world {}\n", work.display())
    );
}

/// A phase's `gate:` holds the run in it: a check of a `checks` gate that
/// failed (its `on_failure: continue` lets the phase go on) keeps the run
/// from starting the next phase; without the gate the run goes on. The
/// held gate is journaled with the items that held it.
#[tokio::test(flavor = "multi_thread")]
async fn a_phase_gate_keeps_the_run_from_leaving_the_phase_on_a_failed_check() {
    for gated in [true, false] {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("missing");
        let marker = dir.path().join("deployed");
        let gate = if gated {
            "    gate: {checks: true}\n"
        } else {
            ""
        };
        let src = format!(
            "name: gated\nphases:\n  - title: Readiness\n{gate}    items:\n      - id: ready\n        check:\n          file: {{path: '{}'}}\n        on_failure: continue\n      - id: note\n        run: {{command: 'true'}}\n  - title: Deploy\n    items:\n      - id: deploy\n        run: {{command: 'touch {}'}}\n",
            missing.display(),
            marker.display()
        );
        let (store, run, status) = executed(&src, dir.path()).await;
        let events = store.events_after(&run, 0, 1000).await.expect("events");
        let held: Vec<_> = events
            .iter()
            .filter(|e| e.kind == golive_engine::GATE_HELD)
            .collect();
        if gated {
            assert_eq!(status, RunStatus::Failed);
            assert!(!marker.exists(), "the next phase did not start");
            assert_eq!(held.len(), 1, "{events:?}");
            assert_eq!(held[0].data["phase"], "Readiness");
            assert_eq!(held[0].data["items"], serde_json::json!(["ready"]));
            let states = store.item_states(&run).await.expect("states");
            let note = states.iter().find(|s| s.item_id == "note").expect("note");
            assert_eq!(
                note.status,
                golive_store::ItemStatus::Passed,
                "the phase itself goes on"
            );
        } else {
            // Without a gate a failure the plan lets go on only marks the run.
            assert!(marker.exists(), "the next phase ran");
            assert!(held.is_empty(), "{events:?}");
            assert_eq!(status, RunStatus::Succeeded);
        }
    }
}
