//! The engine on a SQLite journal: interrupt policies on resume, a held
//! lease, and items that cannot run (a `wait until` without t0, `flag`).

use std::sync::Arc;
use std::time::Duration;

use golive_engine::{Engine, EngineError, item_ids};
use golive_plan::Plan;
use golive_store::{ItemStatus, NewRun, RunId, RunStatus, SqliteStore, Store};

fn plan(src: &str) -> Plan {
    let compiled = golive_plan::compile(src, &|_: &str| true);
    compiled
        .plan
        .unwrap_or_else(|| panic!("plan does not compile: {:?}", compiled.diagnostics))
}

async fn store(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(dir.path().join("j.db"))
            .await
            .expect("journal"),
    )
}

/// A run left by a process that died while `running` was under way.
async fn crashed_run(store: &SqliteStore, src: &str, running: &[&str]) -> RunId {
    let p = plan(src);
    let run = store
        .create_run(&NewRun {
            plan_name: p.name.clone(),
            plan_text: src.to_string(),
            t0: None,
            items: item_ids(&p),
            actor: None,
        })
        .await
        .expect("run");
    let id = run.summary.id;
    assert!(
        store
            .acquire_lease(&id, "dead", Duration::from_secs(60))
            .await
            .expect("lease")
    );
    store
        .set_run_status(&id, "dead", RunStatus::Running)
        .await
        .expect("status");
    for item in running {
        store.start_item(&id, item, "dead").await.expect("start");
    }
    store.release_lease(&id, "dead").await.expect("release");
    id
}

async fn status_of(store: &SqliteStore, run: &RunId, item: &str) -> ItemStatus {
    store
        .item_states(run)
        .await
        .expect("states")
        .into_iter()
        .find(|s| s.item_id == item)
        .map(|s| s.status)
        .expect("item")
}

const PLAN: &str = "name: p\nphases:\n  - title: a\n    items:\n      - id: done\n        run: {command: 'true'}\n      - id: skip-me\n        on_interrupt: skip\n        run: {command: 'exit 1'}\n      - id: last\n        run: {command: 'true'}\n";

#[tokio::test(flavor = "multi_thread")]
async fn resume_skips_an_interrupted_item_with_on_interrupt_skip() {
    let dir = tempfile::tempdir().expect("dir");
    let store = store(&dir).await;
    let run = crashed_run(&store, PLAN, &["skip-me"]).await;
    let engine = Engine::new(Arc::clone(&store)).expect("engine");
    let status = engine.resume(&run, &[]).await.expect("resume");
    assert_eq!(status, RunStatus::Succeeded);
    assert_eq!(
        status_of(&store, &run, "skip-me").await,
        ItemStatus::Skipped
    );
    assert_eq!(status_of(&store, &run, "last").await, ItemStatus::Passed);
    let again = engine.resume(&run, &[]).await;
    assert!(
        matches!(again, Err(EngineError::Finished { .. })),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_refuses_a_run_whose_lease_another_process_holds() {
    let dir = tempfile::tempdir().expect("dir");
    let store = store(&dir).await;
    let run = crashed_run(&store, PLAN, &[]).await;
    assert!(
        store
            .acquire_lease(&run, "alive", Duration::from_secs(60))
            .await
            .expect("lease")
    );
    let engine = Engine::new(Arc::clone(&store)).expect("engine");
    let err = engine.resume(&run, &[]).await.expect_err("held");
    assert!(err.to_string().contains("`alive`"), "{err}");
    assert_eq!(status_of(&store, &run, "done").await, ItemStatus::Pending);
}

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_and_impossible_items_fail_and_continue_keeps_going() {
    let src = "name: p\nphases:\n  - title: a\n    items:\n      - id: until\n        on_failure: continue\n        wait: {until: T+0}\n      - id: flag\n        on_failure: continue\n        critical: true\n        flag: {key: k, percentage: 5}\n      - id: last\n        run: {command: 'true'}\n";
    let dir = tempfile::tempdir().expect("dir");
    let store = store(&dir).await;
    let p = plan(src);
    let engine = Engine::new(Arc::clone(&store)).expect("engine");
    let run = engine.create(src, &p, None).await.expect("create");
    let status = engine.execute(&run, &p, &[]).await.expect("execute");
    assert_eq!(status, RunStatus::Failed, "a critical item failed");
    let states = store.item_states(&run).await.expect("states");
    let result = |id: &str| {
        states
            .iter()
            .find(|s| s.item_id == id)
            .and_then(|s| s.result.clone())
            .expect("result")
    };
    assert!(
        result("until")["error"]
            .as_str()
            .is_some_and(|e| e.contains("needs a t0"))
    );
    assert!(
        result("flag")["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not exist")),
        "a flag item that only sets a percentage does not create the flag"
    );
    assert_eq!(status_of(&store, &run, "last").await, ItemStatus::Passed);
    let summary = store.get_run(&run).await.expect("run").summary;
    assert_eq!(
        summary.lease_owner, None,
        "the lease is released at the end"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn flag_items_change_the_flag_store_and_are_audited() {
    let src = "name: p\nphases:\n  - title: a\n    items:\n      - id: create\n        flag: {key: new-checkout, enabled: true, percentage: 0}\n      - id: widen\n        flag: {key: new-checkout, percentage: 25}\n      - id: off\n        flag: {key: new-checkout, enabled: false}\n      - id: bad\n        on_failure: continue\n        flag: {key: new-checkout, percentage: 0.001}\n";
    let dir = tempfile::tempdir().expect("dir");
    let store = store(&dir).await;
    let p = plan(src);
    let engine = Engine::new(Arc::clone(&store)).expect("engine");
    let run = engine.create(src, &p, None).await.expect("create");
    let status = engine.execute(&run, &p, &[]).await.expect("execute");
    assert_eq!(status, RunStatus::Succeeded);
    let flag = store
        .get_flag("new-checkout")
        .await
        .expect("get")
        .expect("the first item created the flag");
    assert_eq!(flag.version, 3);
    assert_eq!(flag.definition["enabled"], false);
    assert_eq!(
        flag.definition["percentage"], 25,
        "turning it off keeps the rollout"
    );
    let states = store.item_states(&run).await.expect("states");
    let bad = states.iter().find(|s| s.item_id == "bad").expect("bad");
    assert_eq!(bad.status, ItemStatus::Failed);
    let error = bad.result.as_ref().expect("result")["error"].to_string();
    assert!(error.contains("percentage"), "{error}");
    let audit = store
        .audit(&golive_store::AuditFilter {
            target: Some("new-checkout".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["flag.created", "flag.updated", "flag.updated"]);
    assert!(
        audit.iter().all(|e| e.actor == engine.owner()
            && e.reason
                .as_deref()
                .is_some_and(|r| r.contains(run.as_str()))),
        "{audit:?}"
    );
}
