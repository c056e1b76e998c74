//! Two engines on one PostgreSQL journal: while one drives a run, the other
//! cannot; once the first is gone (its future dropped, so it stops renewing)
//! the second takes the run over after the lease's ttl and finishes it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use golive_engine::{Engine, EngineError};
use golive_store::{ItemStatus, NewConfirmation, RunStatus, Store};

const PLAN: &str = "name: p\nphases:\n  - title: a\n    items:\n      - id: first\n        run: {command: 'true'}\n      - id: ok\n        task: {}\n      - id: last\n        run: {command: 'true'}\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_second_engine_takes_over_after_the_first_is_gone() {
    let schema = golive_testkit::PgSchema::create();
    let url = schema.url();
    let store = Arc::new(golive_store::open(&url).await.expect("journal"));

    let compiled = golive_plan::compile(PLAN, &|_: &str| true);
    let plan = compiled.plan.expect("plan");
    let ttl = Duration::from_millis(900);
    let a = Engine::new(Arc::clone(&store))
        .expect("engine")
        .with_lease_ttl(ttl)
        .with_poll_interval(Duration::from_millis(50));
    let run = a.create(PLAN, &plan, None).await.expect("create");
    let driven = {
        let (run, plan) = (run.clone(), plan.clone());
        tokio::spawn(async move { a.execute(&run, &plan, &[]).await })
    };
    // Wait until the first engine is blocked on the task.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let states = store.item_states(&run).await.expect("states");
        if states[1].status == ItemStatus::Waiting {
            break;
        }
        assert!(Instant::now() < deadline, "never waited: {states:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Well past one ttl: the first engine keeps its lease alive.
    tokio::time::sleep(ttl * 2).await;
    let b = Engine::new(Arc::clone(&store))
        .expect("engine")
        .with_lease_ttl(ttl)
        .with_poll_interval(Duration::from_millis(50));
    let held = b.resume(&run, &[]).await;
    assert!(
        matches!(held, Err(EngineError::LeaseHeld { .. })),
        "{held:?}"
    );

    driven.abort();
    let _ = driven.await;
    let started = Instant::now();
    let b_run = {
        let run = run.clone();
        tokio::spawn(async move {
            loop {
                match b.resume(&run, &[]).await {
                    Err(EngineError::LeaseHeld { .. }) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => return other,
                }
            }
        })
    };
    store
        .confirm(
            &run,
            "ok",
            &NewConfirmation {
                by: "carol".into(),
                ..Default::default()
            },
        )
        .await
        .expect("confirm");
    let status = tokio::time::timeout(Duration::from_secs(20), b_run)
        .await
        .expect("the second engine took over in time")
        .expect("join")
        .expect("takeover");
    assert_eq!(status, RunStatus::Succeeded);
    assert!(
        started.elapsed() < ttl * 4,
        "taken over once the lease expired"
    );
    let states = store.item_states(&run).await.expect("states");
    assert!(
        states.iter().all(|s| s.status == ItemStatus::Passed),
        "{states:?}"
    );
    assert_eq!(states[0].attempts, 1, "the finished item did not run again");
    store.close().await;
}
