//! `run` items through the engine: output capped at 64 KiB and redacted,
//! plan variables and secrets in the environment, `workdir` and `env`.

use std::sync::Arc;

use golive_engine::Engine;
use golive_store::{RunStatus, SqliteStore, Store};

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
    let compiled = golive_plan::compile(&src, &|_: &str| true);
    let plan = compiled
        .plan
        .unwrap_or_else(|| panic!("{:?}", compiled.diagnostics));
    let store = Arc::new(
        SqliteStore::open(dir.path().join("j.db"))
            .await
            .expect("journal"),
    );
    let engine = Engine::new(Arc::clone(&store)).expect("engine");
    let run = engine.create(&src, &plan, None).await.expect("create");
    let status = engine.execute(&run, &plan, &[]).await.expect("execute");
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
