//! The storage story: every story runs on SQLite and on PostgreSQL, with the
//! same assertions (`NAME::sqlite`, `NAME::postgres`).

mod util;

use std::collections::HashSet;
use std::time::Duration;

use golive_store::{
    Actor, AnyStore, AuditEntry, AuditFilter, Decision, ItemStatus, NewAudit, NewConfirmation,
    NewEvent, NewRequest, NewRun, NewSignature, NewToken, Outcome, RunId, RunStatus, Store,
    StoreError, action, kind,
};
use serde_json::json;
use util::Fixture;

stories!(
    runs_round_trip,
    item_lifecycle,
    a_finish_and_the_next_start_are_one_move,
    resume_marks_running_items_interrupted,
    journal_is_gap_free_and_atomic,
    confirmations_and_signatures_count_once,
    leases_expire_and_pass_on,
    data_survives_reopening,
    racing_processes_get_one_lease,
    racing_people_confirm_once,
    requests_count_once_and_need_no_lease,
    read_only_database_still_reads,
    unknown_runs_and_items_are_not_found,
    flags_round_trip,
    racing_flag_writers_one_wins,
    audit_filters_and_pages,
    tokens_round_trip,
);

const PLAN: &str = "# go-live\nname: shop\r\nphases:\n  - id: prep   \n    items: [\"é\", \"✓\"]\n\n\ttrailing tab\t\n";
const ME: &str = "host-a:1234";
const OTHER: &str = "host-b:99";
const LONG: Duration = Duration::from_secs(60);

fn new_run(items: &[&str]) -> NewRun {
    NewRun {
        plan_name: "shop".into(),
        plan_text: PLAN.into(),
        t0: Some("2030-05-01T08:30:00.123Z".parse().expect("timestamp")),
        items: items.iter().map(|s| s.to_string()).collect(),
        actor: Some("alice".into()),
    }
}

/// A run whose lease `ME` holds.
async fn leased_run(store: &AnyStore, items: &[&str]) -> RunId {
    let run = store.create_run(&new_run(items)).await.expect("create");
    let id = run.summary.id;
    assert!(store.acquire_lease(&id, ME, LONG).await.expect("lease"));
    id
}

async fn events(store: &AnyStore, run: &RunId) -> Vec<golive_store::Event> {
    store.events_after(run, 0, 10_000).await.expect("events")
}

async fn kinds(store: &AnyStore, run: &RunId) -> Vec<String> {
    events(store, run)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn runs_round_trip(fx: Fixture) {
    let s = &fx.store;
    let mut ids = Vec::new();
    for n in 0..3 {
        let mut new = new_run(&["a", "b"]);
        new.plan_name = format!("shop-{n}");
        let run = s.create_run(&new).await.expect("create");
        assert_eq!(run.summary.status, RunStatus::Pending);
        assert_eq!(run.summary.last_seq, 1);
        assert_eq!(run.plan_text, PLAN);
        ids.push(run.summary.id);
    }
    for id in &ids {
        assert_eq!(id.as_str().len(), 10, "{id}");
        assert!(id.as_str().parse::<RunId>().is_ok(), "{id}");
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3);

    let got = s.get_run(&ids[1]).await.expect("get");
    assert_eq!(
        got.plan_text, PLAN,
        "the plan text round-trips byte for byte"
    );
    assert_eq!(got.summary.plan_name, "shop-1");
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(PLAN.as_bytes())
    };
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got.summary.plan_sha256, hex);
    assert_eq!(
        got.summary.t0.map(|t| t.to_string()),
        Some("2030-05-01T08:30:00.123Z".to_string())
    );
    assert_eq!(got.summary.lease_owner, None);

    let listed: Vec<RunId> = s
        .list_runs(10)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let newest_first: Vec<RunId> = ids.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    assert_eq!(s.list_runs(2).await.expect("list").len(), 2);

    let created = &events(s, &ids[0]).await[0];
    assert_eq!(created.seq, 1);
    assert_eq!(created.kind, kind::RUN_CREATED);
    assert_eq!(created.actor.as_deref(), Some("alice"));
    assert_eq!(created.data["items"], json!(2));
    assert_eq!(created.data["plan_sha256"], json!(got.summary.plan_sha256));

    let dup = s.create_run(&new_run(&["a", "a"])).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
}

async fn item_lifecycle(fx: Fixture) {
    let s = &fx.store;
    let run = leased_run(s, &["build", "deploy", "smoke", "notify"]).await;

    let started = s.start_item(&run, "deploy", ME).await.expect("start");
    assert_eq!(started.status, ItemStatus::Running);
    assert_eq!(started.attempts, 1);
    assert!(started.started_at.is_some());
    let again = s.start_item(&run, "deploy", ME).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "running: {again:?}"
    );

    let result = json!({ "exit": 0, "stdout": "ok\n" });
    let done = s
        .finish_item(&run, "deploy", ME, Outcome::Passed, &result)
        .await
        .expect("finish");
    assert_eq!(done.status, ItemStatus::Passed);
    assert_eq!(done.result, Some(result.clone()));
    assert!(done.finished_at.is_some());

    for outcome in [Outcome::Failed, Outcome::Skipped] {
        let r = s.finish_item(&run, "deploy", ME, outcome, &json!({})).await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    }
    match s.start_item(&run, "deploy", ME).await {
        Err(StoreError::Conflict(msg)) => assert!(msg.contains("never runs again"), "{msg}"),
        other => panic!("a passed item started again: {other:?}"),
    }

    // waiting → running counts a second attempt
    s.start_item(&run, "smoke", ME).await.expect("start");
    let waiting = s
        .set_item_waiting(&run, "smoke", ME, &json!({ "until": "T+5m" }))
        .await
        .expect("wait");
    assert_eq!(waiting.status, ItemStatus::Waiting);
    let second = s.start_item(&run, "smoke", ME).await.expect("restart");
    assert_eq!(second.attempts, 2);
    s.finish_item(
        &run,
        "smoke",
        ME,
        Outcome::Failed,
        &json!({ "status": 500 }),
    )
    .await
    .expect("fail");

    // a pending item can be skipped, not passed
    let r = s
        .finish_item(&run, "notify", ME, Outcome::Passed, &json!({}))
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    s.finish_item(
        &run,
        "notify",
        ME,
        Outcome::Skipped,
        &json!({ "reason": "--only" }),
    )
    .await
    .expect("skip");

    let states = s.item_states(&run).await.expect("states");
    let seen: Vec<(&str, ItemStatus, u32)> = states
        .iter()
        .map(|i| (i.item_id.as_str(), i.status, i.attempts))
        .collect();
    assert_eq!(
        seen,
        [
            ("build", ItemStatus::Pending, 0),
            ("deploy", ItemStatus::Passed, 1),
            ("smoke", ItemStatus::Failed, 2),
            ("notify", ItemStatus::Skipped, 0),
        ]
    );
    assert_eq!(states[1].result, Some(result));
}

/// `finish_and_start`: the finish of one item and the start of the next
/// are journaled together, as consecutive events, or not at all — whichever
/// of the two moves is refused, and when the lease is not the writer's.
async fn a_finish_and_the_next_start_are_one_move(fx: Fixture) {
    let s = &fx.store;
    let run = leased_run(s, &["a", "b", "c", "d"]).await;
    s.start_item(&run, "a", ME).await.expect("start a");
    let before = s.get_run(&run).await.expect("run").summary.last_seq;
    let result = json!({ "exit": 0 });
    let (a, b) = s
        .finish_and_start(&run, "a", ME, Outcome::Passed, &result, "b")
        .await
        .expect("finish a, start b");
    assert_eq!((a.item_id.as_str(), a.status), ("a", ItemStatus::Passed));
    assert_eq!(a.result, Some(result.clone()));
    assert!(a.finished_at.is_some());
    assert_eq!(
        (b.item_id.as_str(), b.status, b.attempts),
        ("b", ItemStatus::Running, 1)
    );
    assert!(b.started_at.is_some() && b.result.is_none());
    let new = s.events_after(&run, before, 10).await.expect("events");
    let seen: Vec<(i64, &str, Option<&str>, Option<&str>)> = new
        .iter()
        .map(|e| {
            (
                e.seq,
                e.kind.as_str(),
                e.item_id.as_deref(),
                e.actor.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (before + 1, kind::ITEM_FINISHED, Some("a"), Some(ME)),
            (before + 2, kind::ITEM_STARTED, Some("b"), Some(ME)),
        ]
    );
    assert_eq!(
        new[0].data,
        json!({ "from": "running", "status": "passed", "result": result })
    );
    assert_eq!(new[1].data, json!({ "from": "pending", "attempt": 1 }));
    assert_eq!(
        s.get_run(&run).await.expect("run").summary.last_seq,
        before + 2
    );
    let stored = s.item_states(&run).await.expect("states");
    assert_eq!(stored[0], a);
    assert_eq!(stored[1], b);

    // Each refusal writes neither move: `b` stays running without a
    // result, the next item stays as it was, the journal unchanged.
    let unchanged = |what: &'static str| {
        let (run, stored) = (run.clone(), stored.clone());
        async move {
            let now = s.item_states(&run).await.expect("states");
            assert_eq!(now, stored, "{what}: the items moved");
            assert_eq!(
                s.get_run(&run).await.expect("run").summary.last_seq,
                before + 2,
                "{what}: something was journaled"
            );
        }
    };
    let ok = json!({});
    // The finish is refused: `a` has finished already.
    let r = s
        .finish_and_start(&run, "a", ME, Outcome::Passed, &ok, "c")
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    unchanged("a finished twice").await;
    // The start is refused: `a` never runs again, so `b` does not finish.
    match s
        .finish_and_start(&run, "b", ME, Outcome::Passed, &ok, "a")
        .await
    {
        Err(StoreError::Conflict(msg)) => assert!(msg.contains("never runs again"), "{msg}"),
        other => panic!("a passed item started again: {other:?}"),
    }
    unchanged("a started again").await;
    let r = s
        .finish_and_start(&run, "b", ME, Outcome::Passed, &ok, "nope")
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    unchanged("an unknown next item").await;
    let r = s
        .finish_and_start(&run, "nope", ME, Outcome::Passed, &ok, "c")
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    unchanged("an unknown item").await;
    let r = s
        .finish_and_start(&run, "b", ME, Outcome::Passed, &ok, "b")
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    unchanged("one item twice").await;
    let other = RunId::generate().expect("id");
    let r = s
        .finish_and_start(&other, "b", ME, Outcome::Passed, &ok, "c")
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    // The wrong owner, while `ME` holds the lease.
    let r = s
        .finish_and_start(&run, "b", OTHER, Outcome::Passed, &ok, "c")
        .await;
    assert!(matches!(r, Err(StoreError::LeaseLost { .. })), "{r:?}");
    unchanged("the wrong owner").await;
    // The lease lost to someone else.
    s.release_lease(&run, ME).await.expect("release");
    assert!(s.acquire_lease(&run, OTHER, LONG).await.expect("take"));
    let lost = s
        .finish_and_start(&run, "b", ME, Outcome::Passed, &ok, "c")
        .await;
    match lost {
        Err(StoreError::LeaseLost { run: r, owner }) => {
            assert_eq!((r, owner.as_str()), (run.clone(), ME));
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert_eq!(s.item_states(&run).await.expect("states"), stored);

    // The new holder fails `b` and starts `c`; a skip from pending may lead
    // too (`c` → skipped while `d` starts).
    let (b, c) = s
        .finish_and_start(&run, "b", OTHER, Outcome::Failed, &ok, "c")
        .await
        .expect("fail b, start c");
    assert_eq!(
        (b.status, c.status),
        (ItemStatus::Failed, ItemStatus::Running)
    );
    s.finish_item(&run, "c", OTHER, Outcome::Passed, &ok)
        .await
        .expect("finish c");
    let run2 = leased_run(s, &["x", "y"]).await;
    let (x, y) = s
        .finish_and_start(&run2, "x", ME, Outcome::Skipped, &ok, "y")
        .await
        .expect("skip x, start y");
    assert_eq!(
        (x.status, y.status),
        (ItemStatus::Skipped, ItemStatus::Running)
    );
    let all = events(s, &run).await;
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=all.len() as i64).collect::<Vec<_>>(), "gap-free");
}

async fn resume_marks_running_items_interrupted(fx: Fixture) {
    let s = &fx.store;
    let run = leased_run(s, &["a", "b", "c", "d"]).await;
    s.start_item(&run, "a", ME).await.expect("start a");
    s.finish_item(&run, "a", ME, Outcome::Passed, &json!({}))
        .await
        .expect("finish a");
    // started out of plan order: the answer is still in plan order
    s.start_item(&run, "c", ME).await.expect("start c");
    s.start_item(&run, "b", ME).await.expect("start b");

    let before = events(s, &run).await.len();
    let interrupted = s.mark_interrupted(&run, ME).await.expect("interrupt");
    assert_eq!(interrupted, ["b", "c"]);
    let new: Vec<_> = events(s, &run).await.split_off(before);
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|e| e.kind == kind::ITEM_INTERRUPTED));
    assert_eq!(new[0].item_id.as_deref(), Some("b"));

    let states = s.item_states(&run).await.expect("states");
    assert_eq!(states[0].status, ItemStatus::Passed);
    assert_eq!(states[1].status, ItemStatus::Interrupted);
    assert_eq!(states[2].status, ItemStatus::Interrupted);
    assert_eq!(states[3].status, ItemStatus::Pending);

    // an interrupted item runs again, as a new attempt
    let b = s.start_item(&run, "b", ME).await.expect("rerun b");
    assert_eq!((b.status, b.attempts), (ItemStatus::Running, 2));
    assert_eq!(s.mark_interrupted(&run, ME).await.expect("again"), ["b"]);

    let before = events(s, &run).await.len();
    assert!(s.mark_interrupted(&run, ME).await.expect("none").is_empty());
    assert_eq!(
        events(s, &run).await.len(),
        before,
        "nothing changed, nothing journaled"
    );

    let r = s.mark_interrupted(&run, OTHER).await;
    assert!(matches!(r, Err(StoreError::LeaseLost { .. })), "{r:?}");
}

async fn journal_is_gap_free_and_atomic(fx: Fixture) {
    let s = &fx.store;
    let run = leased_run(s, &["a", "b"]).await;
    s.set_run_status(&run, ME, RunStatus::Running)
        .await
        .expect("running");
    s.set_run_status(&run, ME, RunStatus::Running)
        .await
        .expect("unchanged");
    s.start_item(&run, "a", ME).await.expect("start");
    let note = NewEvent {
        kind: "command.output".into(),
        item_id: Some("a".into()),
        data: json!({ "line": "migrating…" }),
    };
    let appended = s.append_event(&run, ME, &note).await.expect("append");
    s.finish_item(&run, "a", ME, Outcome::Passed, &json!({ "exit": 0 }))
        .await
        .expect("finish");
    // refused moves write nothing
    assert!(s.start_item(&run, "a", ME).await.is_err());
    assert!(s.start_item(&run, "a", OTHER).await.is_err());

    let all = events(s, &run).await;
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=all.len() as i64).collect::<Vec<_>>(), "gap-free");
    assert_eq!(
        all.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        [
            kind::RUN_CREATED,
            kind::LEASE_ACQUIRED,
            kind::RUN_STATUS,
            kind::ITEM_STARTED,
            "command.output",
            kind::ITEM_FINISHED,
        ]
    );
    assert_eq!(appended.seq, 5);
    assert_eq!(all[4], appended);
    assert_eq!(all[2].data, json!({ "from": "pending", "to": "running" }));
    assert_eq!(all[3].actor.as_deref(), Some(ME));
    assert_eq!(all[5].data["result"], json!({ "exit": 0 }));
    let run_now = s.get_run(&run).await.expect("get");
    assert_eq!(run_now.summary.last_seq, 6);
    assert_eq!(run_now.summary.status, RunStatus::Running);

    // events after N, in pages
    let tail = s.events_after(&run, 4, 100).await.expect("after 4");
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6]);
    let page = s.events_after(&run, 1, 2).await.expect("page");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(s.events_after(&run, 6, 10).await.expect("none").is_empty());

    // a write whose lease is gone changes neither the state nor the journal
    s.start_item(&run, "b", ME).await.expect("start b");
    s.release_lease(&run, ME).await.expect("release");
    assert!(s.acquire_lease(&run, OTHER, LONG).await.expect("take"));
    let before = events(s, &run).await;
    let lost = s
        .finish_item(&run, "b", ME, Outcome::Passed, &json!({}))
        .await;
    match lost {
        Err(StoreError::LeaseLost { run: r, owner }) => {
            assert_eq!((r, owner.as_str()), (run.clone(), ME));
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert_eq!(events(s, &run).await, before);
    let b = &s.item_states(&run).await.expect("states")[1];
    assert_eq!((b.status, b.result.clone()), (ItemStatus::Running, None));
    assert!(
        s.append_event(&run, ME, &note).await.is_err(),
        "no lease, no event"
    );
    assert_eq!(events(s, &run).await, before);
}

async fn confirmations_and_signatures_count_once(fx: Fixture) {
    let s = &fx.store;
    let run = leased_run(s, &["backup", "go"]).await;
    let first = NewConfirmation {
        by: "bob".into(),
        evidence: Some("https://tickets.example/42".into()),
        ..Default::default()
    };
    assert!(s.confirm(&run, "backup", &first).await.expect("confirm"));
    let second = NewConfirmation {
        by: "carol".into(),
        skipped: true,
        reason: Some("not needed".into()),
        ..Default::default()
    };
    assert!(!s.confirm(&run, "backup", &second).await.expect("again"));
    let c = s
        .confirmation(&run, "backup")
        .await
        .expect("read")
        .expect("one confirmation");
    assert_eq!(c.by, "bob");
    assert_eq!(c.evidence.as_deref(), Some("https://tickets.example/42"));
    assert!(!c.skipped);
    assert!(s.confirmation(&run, "go").await.expect("read").is_none());

    let sign = |role: &str, by: &str, decision| NewSignature {
        role: role.into(),
        by: by.into(),
        decision,
        comment: Some(format!("{by} for {role}")),
    };
    assert!(
        s.sign(&run, "go", &sign("qa", "dana", Decision::Approve))
            .await
            .expect("qa")
    );
    assert!(
        !s.sign(&run, "go", &sign("qa", "dana", Decision::Approve))
            .await
            .expect("twice")
    );
    assert!(
        !s.sign(&run, "go", &sign("qa", "erin", Decision::Reject))
            .await
            .expect("other")
    );
    assert!(
        s.sign(&run, "go", &sign("ops", "erin", Decision::Reject))
            .await
            .expect("ops")
    );
    let sigs = s.signatures(&run, "go").await.expect("signatures");
    let mut got: Vec<(String, String, Decision)> = sigs
        .into_iter()
        .map(|s| (s.role, s.by, s.decision))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("ops".to_string(), "erin".to_string(), Decision::Reject),
            ("qa".to_string(), "dana".to_string(), Decision::Approve),
        ]
    );
    assert!(s.signatures(&run, "backup").await.expect("none").is_empty());

    let journal = events(s, &run).await;
    let confirmed: Vec<_> = journal
        .iter()
        .filter(|e| e.kind == kind::ITEM_CONFIRMED)
        .collect();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].actor.as_deref(), Some("bob"));
    assert_eq!(
        journal
            .iter()
            .filter(|e| e.kind == kind::ITEM_SIGNED)
            .count(),
        2
    );
    let seqs: Vec<i64> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=journal.len() as i64).collect::<Vec<_>>());

    // neither needs the lease, nor changes the item's status
    assert_eq!(
        s.item_states(&run).await.expect("states")[0].status,
        ItemStatus::Pending
    );
}

async fn leases_expire_and_pass_on(fx: Fixture) {
    let s = &fx.store;
    let run = s
        .create_run(&new_run(&["a"]))
        .await
        .expect("create")
        .summary
        .id;
    let r = s.start_item(&run, "a", ME).await;
    assert!(
        matches!(r, Err(StoreError::LeaseLost { .. })),
        "no lease yet: {r:?}"
    );

    assert!(s.acquire_lease(&run, ME, LONG).await.expect("A takes"));
    assert!(!s.acquire_lease(&run, OTHER, LONG).await.expect("B refused"));
    assert!(s.acquire_lease(&run, ME, LONG).await.expect("A again"));
    s.renew_lease(&run, ME, LONG).await.expect("A renews");
    assert!(!s.acquire_lease(&run, OTHER, LONG).await.expect("B refused"));
    let held = s.get_run(&run).await.expect("get").summary;
    assert_eq!(held.lease_owner.as_deref(), Some(ME));
    assert!(held.lease_expires_at > Some(held.updated_at));
    let r = s.renew_lease(&run, OTHER, LONG).await;
    assert!(matches!(r, Err(StoreError::LeaseLost { .. })), "{r:?}");

    // A stalls: its lease runs out and B takes the run over
    s.renew_lease(&run, ME, Duration::from_secs(1))
        .await
        .expect("short lease");
    s.start_item(&run, "a", ME).await.expect("A starts a");
    fx.pass_time(Duration::from_millis(1500)).await;
    assert!(
        s.acquire_lease(&run, OTHER, LONG)
            .await
            .expect("B takes over")
    );
    let taken = s.get_run(&run).await.expect("get").summary;
    assert_eq!(taken.lease_owner.as_deref(), Some(OTHER));

    for r in [
        s.finish_item(&run, "a", ME, Outcome::Passed, &json!({}))
            .await
            .map(|_| ()),
        s.renew_lease(&run, ME, LONG).await,
        s.set_run_status(&run, ME, RunStatus::Failed).await,
    ] {
        assert!(matches!(r, Err(StoreError::LeaseLost { .. })), "{r:?}");
    }
    assert!(!s.acquire_lease(&run, ME, LONG).await.expect("A refused"));
    assert!(!s.release_lease(&run, ME).await.expect("not A's"));
    // B resumes: A's running item was interrupted
    assert_eq!(
        s.mark_interrupted(&run, OTHER).await.expect("resume"),
        ["a"]
    );
    assert!(s.release_lease(&run, OTHER).await.expect("B releases"));
    assert!(s.acquire_lease(&run, ME, LONG).await.expect("free again"));

    let takeovers: Vec<_> = events(s, &run)
        .await
        .into_iter()
        .filter(|e| e.kind == kind::LEASE_ACQUIRED)
        .map(|e| (e.actor, e.data["previous"].clone()))
        .collect();
    assert_eq!(
        takeovers,
        [
            (Some(ME.to_string()), json!(null)),
            (Some(OTHER.to_string()), json!(ME)),
            (Some(ME.to_string()), json!(null)),
        ]
    );
}

async fn data_survives_reopening(fx: Fixture) {
    let run = leased_run(&fx.store, &["a", "b"]).await;
    let s = &fx.store;
    s.start_item(&run, "a", ME).await.expect("start");
    s.finish_item(&run, "a", ME, Outcome::Failed, &json!({ "exit": 3 }))
        .await
        .expect("finish");
    s.start_item(&run, "b", ME).await.expect("start b");
    let confirmation = NewConfirmation {
        by: "bob".into(),
        ..Default::default()
    };
    s.confirm(&run, "b", &confirmation).await.expect("confirm");
    let before = (
        s.get_run(&run).await.expect("run"),
        s.item_states(&run).await.expect("items"),
        events(s, &run).await,
    );
    s.close().await;

    let reopened = fx.open_another().await;
    let after = (
        reopened.get_run(&run).await.expect("run"),
        reopened.item_states(&run).await.expect("items"),
        events(&reopened, &run).await,
    );
    assert_eq!(after, before);
    assert_eq!(after.0.plan_text, PLAN);
    // and it goes on where it stopped
    assert_eq!(
        reopened.mark_interrupted(&run, ME).await.expect("resume"),
        ["b"]
    );
    reopened.close().await;
}

async fn racing_processes_get_one_lease(fx: Fixture) {
    let a = fx.store.clone();
    let b = fx.open_another().await;
    let run = a
        .create_run(&new_run(&["x"]))
        .await
        .expect("create")
        .summary
        .id;
    for round in 0..50 {
        let owners = [format!("a-{round}"), format!("b-{round}")];
        let tasks: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .zip(owners.clone())
            .map(|(store, owner)| {
                let run = run.clone();
                tokio::spawn(async move { store.acquire_lease(&run, &owner, LONG).await })
            })
            .collect();
        let mut won = Vec::new();
        for (task, owner) in tasks.into_iter().zip(&owners) {
            if task.await.expect("task").expect("acquire") {
                won.push(owner.clone());
            }
        }
        assert_eq!(won.len(), 1, "round {round}: winners {won:?}");
        let holder = a.get_run(&run).await.expect("get").summary.lease_owner;
        assert_eq!(holder.as_ref(), Some(&won[0]));
        assert!(a.release_lease(&run, &won[0]).await.expect("release"));
    }
    let journal = events(&a, &run).await;
    assert_eq!(
        journal.len(),
        1 + 50 * 2,
        "created, then acquired+released per round"
    );
    let seqs: Vec<i64> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=101).collect::<Vec<_>>());
    b.close().await;
}

async fn requests_count_once_and_need_no_lease(fx: Fixture) {
    let s = &fx.store;
    // The run is leased by ME; the request comes from someone else, with no lease.
    let run = leased_run(s, &["go"]).await;
    let before = events(s, &run).await.len();
    let ask = |by: &str, reason: &str| NewRequest {
        kind: "rollback".into(),
        by: by.into(),
        reason: Some(reason.into()),
    };
    assert!(
        s.request(&run, &ask("alice", "error rate up"))
            .await
            .expect("request")
    );
    assert!(!s.request(&run, &ask("bob", "me too")).await.expect("again"));
    let requests = s.requests(&run).await.expect("requests");
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].kind.as_str(), requests[0].by.as_str()),
        ("rollback", "alice")
    );
    assert_eq!(requests[0].reason.as_deref(), Some("error rate up"));
    let evs = events(s, &run).await;
    assert_eq!(
        evs.len(),
        before + 1,
        "one event, for the first request only"
    );
    let last = evs.last().expect("event");
    assert_eq!(last.kind, kind::RUN_REQUESTED);
    assert_eq!(last.actor.as_deref(), Some("alice"));
    assert_eq!(last.data["reason"], "error rate up");
    let unknown: RunId = "r-aaaaaaaa".parse().expect("id");
    assert!(matches!(
        s.requests(&unknown).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.request(&unknown, &ask("alice", "x")).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn racing_people_confirm_once(fx: Fixture) {
    let a = fx.store.clone();
    let b = fx.open_another().await;
    let run = a
        .create_run(&new_run(&["x", "y"]))
        .await
        .expect("create")
        .summary
        .id;
    let mut tasks = Vec::new();
    for n in 0..10 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let c = NewConfirmation {
                by: format!("person-{n}"),
                ..Default::default()
            };
            let first = store.confirm(&run, "x", &c).await.expect("confirm");
            let s = NewSignature {
                role: format!("role-{n}"),
                by: format!("person-{n}"),
                decision: Decision::Approve,
                comment: None,
            };
            let signed = store.sign(&run, "y", &s).await.expect("sign");
            (first, signed)
        }));
    }
    let mut firsts = 0;
    for t in tasks {
        let (first, signed) = t.await.expect("task");
        firsts += usize::from(first);
        assert!(signed, "each role signs once");
    }
    assert_eq!(firsts, 1, "exactly one confirmation wins");
    assert_eq!(a.signatures(&run, "y").await.expect("sigs").len(), 10);
    let journal = events(&a, &run).await;
    assert_eq!(journal.len(), 1 + 1 + 10);
    let seqs: Vec<i64> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=12).collect::<Vec<_>>(),
        "gap-free across processes"
    );
    b.close().await;
}

async fn read_only_database_still_reads(fx: Fixture) {
    let run = leased_run(&fx.store, &["a"]).await;
    fx.store.start_item(&run, "a", ME).await.expect("start");
    let before = kinds(&fx.store, &run).await;
    let Some(ro) = fx.reopen_read_only().await else {
        return;
    };
    assert_eq!(ro.get_run(&run).await.expect("read").plan_text, PLAN);
    assert_eq!(kinds(&ro, &run).await, before);
    assert_eq!(
        ro.item_states(&run).await.expect("items")[0].status,
        ItemStatus::Running
    );
    let writes = [
        ro.create_run(&new_run(&["a"])).await.map(|_| ()),
        ro.finish_item(&run, "a", ME, Outcome::Passed, &json!({}))
            .await
            .map(|_| ()),
        ro.confirm(&run, "a", &NewConfirmation::default())
            .await
            .map(|_| ()),
    ];
    for w in writes {
        match w {
            Err(e @ StoreError::ReadOnly { .. }) => {
                assert!(e.to_string().contains("read-only"), "{e}");
            }
            other => panic!("{:?}: expected ReadOnly, got {other:?}", fx.backend),
        }
    }
    assert_eq!(kinds(&ro, &run).await, before);
    ro.close().await;
}

async fn unknown_runs_and_items_are_not_found(fx: Fixture) {
    let s = &fx.store;
    let nobody: RunId = "r-aaaaaaaa".parse().expect("id");
    let not_found = |r: Result<(), StoreError>| {
        assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    };
    not_found(s.get_run(&nobody).await.map(|_| ()));
    not_found(s.item_states(&nobody).await.map(|_| ()));
    not_found(s.events_after(&nobody, 0, 10).await.map(|_| ()));
    not_found(s.acquire_lease(&nobody, ME, LONG).await.map(|_| ()));
    not_found(s.renew_lease(&nobody, ME, LONG).await);
    not_found(s.release_lease(&nobody, ME).await.map(|_| ()));
    not_found(s.start_item(&nobody, "a", ME).await.map(|_| ()));
    not_found(s.mark_interrupted(&nobody, ME).await.map(|_| ()));
    not_found(
        s.confirm(&nobody, "a", &NewConfirmation::default())
            .await
            .map(|_| ()),
    );

    let run = leased_run(s, &["a"]).await;
    not_found(s.start_item(&run, "zz", ME).await.map(|_| ()));
    not_found(
        s.confirm(&run, "zz", &NewConfirmation::default())
            .await
            .map(|_| ()),
    );
    not_found(s.signatures(&run, "zz").await.map(|_| ()));
    let msg = s
        .start_item(&run, "zz", ME)
        .await
        .expect_err("unknown item")
        .to_string();
    assert!(msg.contains("zz") && msg.contains(run.as_str()), "{msg}");
    assert_eq!(kinds(s, &run).await.len(), 2, "nothing journaled");
}

fn actor(name: &str, source: &str) -> Actor {
    Actor {
        name: name.into(),
        source: Some(source.into()),
    }
}

/// The whole audit log, oldest first.
async fn audit_log(store: &AnyStore) -> Vec<AuditEntry> {
    let all = AuditFilter {
        limit: 10_000,
        ..Default::default()
    };
    store.audit(&all).await.expect("audit")
}

async fn last_audit(store: &AnyStore) -> AuditEntry {
    audit_log(store).await.pop().expect("an audit entry")
}

async fn revision(store: &AnyStore) -> i64 {
    store.flags_revision().await.expect("revision")
}

fn conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
}

async fn flags_round_trip(fx: Fixture) {
    let s = &fx.store;
    let alice = actor("alice", "127.0.0.1:50312");
    let bob = actor("bob", "cli");
    assert_eq!(revision(s).await, 0);
    assert!(s.get_flag("checkout").await.expect("get").is_none());
    assert!(s.list_flags().await.expect("list").is_empty());

    // create
    let v1 = json!({ "enabled": true, "rollout": { "percent": 10 }, "note": "é ✓" });
    let created = s
        .put_flag("checkout", &v1, Some(0), &alice, Some("launch"))
        .await
        .expect("create");
    assert_eq!(
        (created.key.as_str(), created.version, &created.definition),
        ("checkout", 1, &v1)
    );
    assert_eq!(created.updated_by, "alice");
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        s.get_flag("checkout").await.expect("get"),
        Some(created.clone())
    );
    let r1 = revision(s).await;
    assert!(r1 > 0);
    let entry = last_audit(s).await;
    assert_eq!(
        (entry.action.as_str(), entry.target.as_str()),
        (action::FLAG_CREATED, "checkout")
    );
    assert_eq!((entry.before, entry.after), (None, Some(v1.clone())));
    assert_eq!(entry.reason.as_deref(), Some("launch"));
    assert_eq!(entry.actor, "alice");
    assert_eq!(entry.source.as_deref(), Some("127.0.0.1:50312"));

    // update
    fx.pass_time(Duration::from_millis(20)).await;
    let v2 = json!({ "enabled": true, "rollout": { "percent": 50 } });
    let updated = s
        .put_flag("checkout", &v2, Some(1), &bob, None)
        .await
        .expect("update");
    assert_eq!((updated.version, &updated.definition), (2, &v2));
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at > created.updated_at);
    assert_eq!(updated.updated_by, "bob");
    assert_eq!(
        s.get_flag("checkout").await.expect("get"),
        Some(updated.clone())
    );
    let r2 = revision(s).await;
    assert!(r2 > r1);
    let entry = last_audit(s).await;
    assert_eq!(entry.action, action::FLAG_UPDATED);
    assert_eq!(
        (entry.before, entry.after),
        (Some(v1.clone()), Some(v2.clone()))
    );
    assert_eq!((entry.actor.as_str(), entry.reason), ("bob", None));

    // an identical definition (key order aside) writes nothing
    let log = audit_log(s).await;
    let same = json!({ "rollout": { "percent": 50 }, "enabled": true });
    for expected in [None, Some(2)] {
        let r = s
            .put_flag("checkout", &same, expected, &alice, Some("again"))
            .await
            .expect("no-op");
        assert_eq!(r, updated, "returned unchanged");
    }
    assert_eq!(revision(s).await, r2, "a no-op does not bump the revision");
    assert_eq!(audit_log(s).await, log, "a no-op is not audited");

    // expected versions
    let v3 = json!({ "enabled": false });
    conflict(s.put_flag("checkout", &v3, Some(0), &alice, None).await);
    conflict(s.put_flag("checkout", &v3, Some(1), &alice, None).await);
    conflict(s.put_flag("checkout", &v3, Some(5), &alice, None).await);
    conflict(s.put_flag("nope", &v3, Some(3), &alice, None).await);
    assert_eq!(
        s.get_flag("checkout").await.expect("get"),
        Some(updated.clone())
    );
    assert!(s.get_flag("nope").await.expect("get").is_none());
    assert_eq!(revision(s).await, r2, "refused writes change nothing");
    assert_eq!(audit_log(s).await, log);

    // unconditional writes
    let search = s
        .put_flag("search", &json!(true), None, &alice, None)
        .await
        .expect("create");
    assert_eq!(search.version, 1);
    let search = s
        .put_flag("search", &json!(false), None, &alice, None)
        .await
        .expect("update");
    assert_eq!(search.version, 2);
    s.put_flag("banner", &json!({ "text": "hi" }), Some(0), &bob, None)
        .await
        .expect("banner");
    s.put_flag("Zeta", &json!([1, 2.5, null, "x"]), None, &bob, None)
        .await
        .expect("Zeta");
    let keys: Vec<String> = s
        .list_flags()
        .await
        .expect("list")
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(keys, ["Zeta", "banner", "checkout", "search"], "byte order");

    // delete
    let before = revision(s).await;
    assert!(
        s.delete_flag("checkout", &alice, Some("done"))
            .await
            .expect("delete")
    );
    assert!(s.get_flag("checkout").await.expect("get").is_none());
    let after_delete = revision(s).await;
    assert!(after_delete > before);
    let entry = last_audit(s).await;
    assert_eq!(
        (entry.action.as_str(), entry.target.as_str()),
        (action::FLAG_DELETED, "checkout")
    );
    assert_eq!((entry.before, entry.after), (Some(v2.clone()), None));
    assert_eq!(entry.reason.as_deref(), Some("done"));
    let log = audit_log(s).await;
    assert!(
        !s.delete_flag("checkout", &alice, None)
            .await
            .expect("again")
    );
    assert_eq!(revision(s).await, after_delete);
    assert_eq!(
        audit_log(s).await,
        log,
        "nothing to delete, nothing audited"
    );
    // created anew, from version 1
    let again = s
        .put_flag("checkout", &v3, Some(0), &alice, None)
        .await
        .expect("recreate");
    assert_eq!(again.version, 1);

    // another process sees the same flags and revision, and its changes
    let other = fx.open_another().await;
    assert_eq!(revision(&other).await, revision(s).await);
    assert_eq!(
        other.list_flags().await.expect("list"),
        s.list_flags().await.expect("list")
    );
    let before = revision(s).await;
    let banner = other
        .put_flag("banner", &json!({ "text": "bye" }), Some(1), &bob, None)
        .await
        .expect("other writes");
    assert!(revision(s).await > before, "seen by the first handle");
    assert_eq!(s.get_flag("banner").await.expect("get"), Some(banner));
    other.close().await;
}

async fn racing_flag_writers_one_wins(fx: Fixture) {
    let a = fx.store.clone();
    let b = fx.open_another().await;
    const ROUNDS: i64 = 20;
    for round in 0..ROUNDS {
        // round 0 creates (Some(0)); round n expects version n
        let expected = Some(round);
        let tasks: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .enumerate()
            .map(|(writer, store)| {
                tokio::spawn(async move {
                    let definition = json!({ "round": round, "writer": writer });
                    let who = actor(&format!("writer-{writer}"), "test");
                    let r = store
                        .put_flag("race", &definition, expected, &who, None)
                        .await;
                    (definition, r)
                })
            })
            .collect();
        let mut won = Vec::new();
        for task in tasks {
            match task.await.expect("task") {
                (definition, Ok(record)) => won.push((definition, record)),
                (_, Err(StoreError::Conflict(_))) => {}
                (_, Err(e)) => panic!("round {round}: {e:?}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        let (definition, record) = &won[0];
        assert_eq!(record.version, round + 1);
        let stored = a.get_flag("race").await.expect("get").expect("flag");
        assert_eq!(
            (&stored.definition, stored.version),
            (definition, round + 1)
        );
    }
    let audited = a
        .audit(&AuditFilter {
            target: Some("race".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(audited.len(), ROUNDS as usize, "one entry per winner");
    assert_eq!(revision(&a).await, ROUNDS);
    b.close().await;
}

async fn audit_filters_and_pages(fx: Fixture) {
    let s = &fx.store;
    let alice = actor("alice", "10.0.0.1:1");
    let bob = actor("bob", "cli");
    let carol = Actor {
        name: "carol".into(),
        source: None,
    };
    let note = |action: &str, target: &str| NewAudit {
        action: action.into(),
        target: target.into(),
        after: Some(json!({ "by": "test" })),
        ..Default::default()
    };
    assert_eq!(s.audit_head().await.expect("head"), 0, "an empty log");
    let mut appended = Vec::new();
    appended.push(
        s.append_audit(&alice, &note("run.confirmed", "r-1"))
            .await
            .expect("append"),
    );
    appended.push(
        s.append_audit(
            &bob,
            &NewAudit {
                reason: Some("looks good".into()),
                ..note("run.signed", "r-1")
            },
        )
        .await
        .expect("append"),
    );
    s.put_flag("f", &json!(1), None, &alice, None)
        .await
        .expect("flag");
    fx.pass_time(Duration::from_millis(50)).await;
    appended.push(
        s.append_audit(&carol, &note("flagship.launched", "f"))
            .await
            .expect("append"),
    );
    s.put_flag("f", &json!(2), None, &bob, None)
        .await
        .expect("flag");
    s.delete_flag("f", &alice, None).await.expect("delete");
    appended.push(
        s.append_audit(&bob, &note("run.confirmed", "r-2"))
            .await
            .expect("append"),
    );

    let all = audit_log(s).await;
    assert_eq!(all.len(), 7);
    assert_eq!(
        s.audit_head().await.expect("head"),
        all[6].seq,
        "the head is the newest entry"
    );
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "strictly increasing"
    );
    for entry in &appended {
        assert!(all.contains(entry), "{entry:?} is listed as appended");
    }
    assert_eq!(all[1].reason.as_deref(), Some("looks good"));
    assert_eq!(
        (all[3].actor.as_str(), all[3].source.as_deref()),
        ("carol", None)
    );

    let seqs = |entries: Vec<AuditEntry>| -> Vec<i64> { entries.iter().map(|e| e.seq).collect() };
    let pick = |idx: &[usize]| -> Vec<i64> { idx.iter().map(|i| all[*i].seq).collect() };
    let find = |filter: AuditFilter| async move {
        let filter = AuditFilter {
            limit: 100,
            ..filter
        };
        seqs(s.audit(&filter).await.expect("audit"))
    };
    assert_eq!(
        find(AuditFilter {
            actor: Some("alice".into()),
            ..Default::default()
        })
        .await,
        pick(&[0, 2, 5])
    );
    assert_eq!(
        find(AuditFilter {
            action_prefix: Some(action::FLAG_PREFIX.into()),
            ..Default::default()
        })
        .await,
        pick(&[2, 4, 5]),
        "`flag.` does not match `flagship.`"
    );
    assert_eq!(
        find(AuditFilter {
            action_prefix: Some("run.".into()),
            ..Default::default()
        })
        .await,
        pick(&[0, 1, 6])
    );
    assert_eq!(
        find(AuditFilter {
            action_prefix: Some("RUN.".into()),
            ..Default::default()
        })
        .await,
        Vec::<i64>::new(),
        "case-sensitive"
    );
    assert_eq!(
        find(AuditFilter {
            action_prefix: Some(String::new()),
            ..Default::default()
        })
        .await,
        seqs(all.clone()),
        "an empty prefix matches everything"
    );
    assert_eq!(
        find(AuditFilter {
            target: Some("f".into()),
            ..Default::default()
        })
        .await,
        pick(&[2, 3, 4, 5])
    );
    assert_eq!(
        find(AuditFilter {
            actor: Some("bob".into()),
            action_prefix: Some("run.".into()),
            ..Default::default()
        })
        .await,
        pick(&[1, 6]),
        "filters are AND-ed"
    );
    assert_eq!(
        find(AuditFilter {
            since: Some(all[3].at),
            ..Default::default()
        })
        .await,
        pick(&[3, 4, 5, 6]),
        "since is inclusive"
    );
    assert_eq!(
        find(AuditFilter {
            since: Some(all[3].at),
            actor: Some("alice".into()),
            ..Default::default()
        })
        .await,
        pick(&[5])
    );
    assert_eq!(
        find(AuditFilter {
            actor: Some("nobody".into()),
            ..Default::default()
        })
        .await,
        Vec::<i64>::new()
    );

    // paging by after_seq
    let mut paged = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = s
            .audit(&AuditFilter {
                after_seq,
                limit: 2,
                ..Default::default()
            })
            .await
            .expect("page");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after_seq = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, all);
    let page = s
        .audit(&AuditFilter {
            actor: Some("alice".into()),
            after_seq: all[0].seq,
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(seqs(page), pick(&[2]));

    // paging from the newest back by before_seq
    let mut back = Vec::new();
    let mut before_seq = None;
    loop {
        let page = s
            .audit(&AuditFilter {
                before_seq,
                newest_first: true,
                limit: 3,
                ..Default::default()
            })
            .await
            .expect("page");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before_seq = Some(last.seq);
        back.extend(page);
    }
    let mut newest_first = all.clone();
    newest_first.reverse();
    assert_eq!(back, newest_first, "every entry once, newest first");
    assert_eq!(
        find(AuditFilter {
            actor: Some("alice".into()),
            newest_first: true,
            before_seq: Some(all[5].seq),
            ..Default::default()
        })
        .await,
        pick(&[2, 0]),
        "before is exclusive and AND-ed with the other filters"
    );
    assert!(
        s.audit(&AuditFilter::default())
            .await
            .expect("limit 0")
            .is_empty()
    );
}

async fn tokens_round_trip(fx: Fixture) {
    use sha2::Digest;
    let s = &fx.store;
    let admin = actor("admin", "cli");
    let hash = |secret: &str| -> String {
        sha2::Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let (h1, h2) = (hash("secret-1"), hash("secret-2"));
    let expires: jiff::Timestamp = "2030-01-01T00:00:00.123456789Z".parse().expect("timestamp");
    let t1 = s
        .create_token(
            &NewToken {
                id: "tok_1".into(),
                name: "deploy-bot".into(),
                role: "operator".into(),
                secret_sha256: h1.clone(),
                expires_at: Some(expires),
            },
            &admin,
        )
        .await
        .expect("create");
    assert_eq!(
        (t1.id.as_str(), t1.name.as_str(), t1.role.as_str()),
        ("tok_1", "deploy-bot", "operator")
    );
    assert_eq!(t1.secret_sha256, h1);
    assert_eq!(t1.created_by, "admin");
    assert_eq!(t1.revoked_at, None);
    assert_eq!(
        t1.expires_at.map(|t| t.to_string()).as_deref(),
        Some("2030-01-01T00:00:00.123Z"),
        "stored to the millisecond"
    );
    let shown = serde_json::to_value(&t1).expect("serialize");
    assert!(shown.get("secret_sha256").is_none(), "{shown}");
    assert_eq!(shown["name"], "deploy-bot");

    assert_eq!(
        s.token_by_secret(&h1).await.expect("lookup"),
        Some(t1.clone())
    );
    assert!(s.token_by_secret(&h2).await.expect("lookup").is_none());

    let t2 = s
        .create_token(
            &NewToken {
                id: "tok_2".into(),
                name: "viewer".into(),
                role: "viewer".into(),
                secret_sha256: h2.clone(),
                expires_at: None,
            },
            &admin,
        )
        .await
        .expect("create");
    assert_eq!(
        s.list_tokens().await.expect("list"),
        [t1.clone(), t2.clone()]
    );

    // duplicates
    let log = audit_log(s).await;
    let same_hash = s
        .create_token(
            &NewToken {
                id: "tok_3".into(),
                name: "copy".into(),
                role: "admin".into(),
                secret_sha256: h1.clone(),
                expires_at: None,
            },
            &admin,
        )
        .await;
    match same_hash {
        Err(e @ StoreError::Conflict(_)) => assert!(!e.to_string().contains(&h1), "{e}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let same_id = s
        .create_token(
            &NewToken {
                id: "tok_1".into(),
                name: "copy".into(),
                role: "admin".into(),
                secret_sha256: hash("secret-3"),
                expires_at: None,
            },
            &admin,
        )
        .await;
    conflict(same_id);
    assert_eq!(s.list_tokens().await.expect("list").len(), 2);
    assert_eq!(audit_log(s).await, log, "refused tokens are not audited");

    // revoke
    let root = actor("root", "127.0.0.1:4000");
    assert!(s.revoke_token("tok_1", &root).await.expect("revoke"));
    assert!(!s.revoke_token("tok_1", &root).await.expect("twice"));
    assert!(!s.revoke_token("tok_9", &root).await.expect("unknown"));
    let revoked = s
        .token_by_secret(&h1)
        .await
        .expect("lookup")
        .expect("revoked tokens are still found");
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        s.token_by_secret(&h2).await.expect("lookup"),
        Some(t2.clone())
    );

    let audited = s
        .audit(&AuditFilter {
            action_prefix: Some("token.".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit");
    let what: Vec<(&str, &str, &str)> = audited
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        what,
        [
            (action::TOKEN_CREATED, "tok_1", "admin"),
            (action::TOKEN_CREATED, "tok_2", "admin"),
            (action::TOKEN_REVOKED, "tok_1", "root"),
        ]
    );
    assert_eq!(
        audited[0].after,
        Some(json!({
            "id": "tok_1",
            "name": "deploy-bot",
            "role": "operator",
            "expires_at": "2030-01-01T00:00:00.123Z",
        }))
    );
    assert_eq!(audited[0].before, None);
    assert_eq!(audited[2].source.as_deref(), Some("127.0.0.1:4000"));
    assert_eq!(
        audited[2].after.as_ref().map(|a| a["revoked_at"].clone()),
        Some(json!(revoked.revoked_at))
    );
    let everything = serde_json::to_string(&audit_log(s).await).expect("serialize");
    assert!(
        !everything.contains(&h1) && !everything.contains(&h2),
        "the audit log never holds a secret's hash"
    );
}

/// What only one backend has: files and directories, servers and URLs.
mod backend_specific {
    use std::time::Duration;

    use golive_store::{
        Actor, AnyStore, AuditFilter, NewConfirmation, NewRun, RunId, SqliteStore, Store,
        StoreError, default_sqlite_path, open,
    };
    use sqlx::migrate::Migrator;
    use sqlx::{Connection, Row};

    use crate::util::{PgSchema, SqliteDir};

    #[tokio::test]
    async fn sqlite_creates_its_directory_and_is_durable_by_default() {
        let dir = SqliteDir::new();
        let path = dir.path().join("nested/deeper/golive.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let run = store
            .create_run(&NewRun {
                plan_name: "p".into(),
                ..Default::default()
            })
            .await
            .expect("create");
        assert!(path.is_file());
        assert_eq!(store.path(), path);
        store.close().await;

        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("raw connection");
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .expect("pragma")
            .get(0);
        assert_eq!(mode, "wal");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE run_id = $1")
            .bind(&run.summary.id)
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(n, 1);
        let _ = conn.close().await;
    }

    /// A byte of a stored plan changed behind golive's back (which no
    /// page check sees: the record is still well formed) makes reading the
    /// run fail, naming the journal: a resume never runs a changed plan.
    #[tokio::test]
    async fn a_stored_plan_changed_behind_golives_back_is_refused() {
        let dir = SqliteDir::new();
        let path = dir.db_path();
        let store = SqliteStore::open(&path).await.expect("open");
        let run = store
            .create_run(&NewRun {
                plan_name: "p".into(),
                plan_text: "name: p\n# run: echo a\n".into(),
                ..Default::default()
            })
            .await
            .expect("create");
        let id = run.summary.id;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("raw connection");
        sqlx::query("UPDATE runs SET plan_text = replace(plan_text, 'echo a', 'echo b')")
            .execute(&mut conn)
            .await
            .expect("tamper");
        let _ = conn.close().await;
        let refused = store.get_run(&id).await;
        match refused {
            Err(e @ StoreError::CorruptJournal { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&path.display().to_string()), "{text}");
                assert!(text.contains("does not match its SHA-256"), "{text}");
            }
            other => panic!("not refused: {other:?}"),
        }
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn processes_opening_a_fresh_sqlite_file_together_all_succeed() {
        // `golive run` and `golive status` started together both migrate a
        // new file; the loser of that race must find the schema applied.
        for round in 0..5 {
            let dir = SqliteDir::new();
            let path = dir.path().join(format!("race-{round}.db"));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..8 {
                let path = path.clone();
                tasks.spawn(async move { SqliteStore::open(&path).await.map(|_| ()) });
            }
            while let Some(r) = tasks.join_next().await {
                r.expect("task").expect("every open succeeds");
            }
        }
    }

    #[tokio::test]
    async fn sqlite_in_a_read_only_directory_reads_and_refuses_writes() {
        let dir = SqliteDir::new();
        let url = format!("sqlite://{}", dir.db_path().display());
        let store = open(&url).await.expect("open");
        let run = store
            .create_run(&NewRun {
                plan_name: "p".into(),
                items: vec!["a".into()],
                ..Default::default()
            })
            .await
            .expect("create");
        store.close().await;
        if !dir.lock(dir.path(), true) {
            eprintln!("cannot make a directory read-only here; skipping");
            return;
        }
        assert!(!dir.path().join("golive.db-wal").exists());

        let ro = open(&url).await.expect("opens for reading");
        assert_eq!(ro.get_run(&run.summary.id).await.expect("read"), run);
        let w = ro
            .confirm(&run.summary.id, "a", &NewConfirmation::default())
            .await;
        assert!(matches!(w, Err(StoreError::ReadOnly { .. })), "{w:?}");
        ro.close().await;

        // a new database cannot be created there: a clear error at open
        let missing = format!("sqlite://{}", dir.path().join("other.db").display());
        match open(&missing).await {
            Err(e @ StoreError::Unavailable { .. }) => {
                assert!(e.to_string().contains("other.db"), "{e}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn unreachable_postgres_is_unavailable_and_hides_the_password() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let url = format!("postgres://golive:s3cr3t-pw@127.0.0.1:{port}/golive");
        let opened = tokio::time::timeout(Duration::from_secs(30), open(&url))
            .await
            .expect("fails fast, no endless retry");
        let err = match opened {
            Err(e) => e,
            Ok(_) => panic!("a closed port opened"),
        };
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
        let shown = format!("{err} / {err:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(
            err.to_string()
                .contains(&format!("postgres://golive:***@127.0.0.1:{port}/golive")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn urls_pick_the_backend() {
        let err = open("mysql://root@127.0.0.1/test").await.map(|_| ());
        assert!(matches!(err, Err(StoreError::BadUrl { .. })), "{err:?}");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let pg = open(&format!("postgresql://127.0.0.1:{port}/x"))
            .await
            .map(|_| ());
        assert!(matches!(pg, Err(StoreError::Unavailable { .. })), "{pg:?}");
        let dir = SqliteDir::new();
        let plain = dir.db_path().display().to_string();
        assert!(matches!(open(&plain).await, Ok(AnyStore::Sqlite(_))));
        if let Some(p) = default_sqlite_path() {
            assert!(p.ends_with("golive/golive.db"), "{}", p.display());
        }
    }

    /// The migrations of an earlier release: this crate's files up to
    /// `last` (the checksums match the embedded ones).
    async fn migrations_up_to(backend: &str, last: i64) -> (tempfile::TempDir, Migrator) {
        let dir = tempfile::tempdir().expect("temp dir");
        let source =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("migrations/{backend}"));
        for entry in std::fs::read_dir(&source).expect("migrations") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let version: i64 = name
                .split('_')
                .next()
                .and_then(|v| v.parse().ok())
                .expect("numbered migration");
            if version <= last {
                std::fs::copy(&path, dir.path().join(name)).expect("copy");
            }
        }
        let migrator = Migrator::new(dir.path()).await.expect("old migrations");
        (dir, migrator)
    }

    const OLD_RUN: &str = "INSERT INTO runs (id, plan_name, plan_text, plan_sha256, status, \
                           created_at, updated_at) VALUES ('r-aaaaaaaa', 'old', 'name: old', \
                           'eeadc6a81b0cd3bbd958fc46b67703a7dc8b88a57e81bca14cb024c44679db21', \
                           'pending', $1, $1)";

    /// A database made by the previous release keeps its runs and gains
    /// the server's tables.
    async fn upgraded_store_works(store: &AnyStore) {
        let old: RunId = "r-aaaaaaaa".parse().expect("id");
        assert_eq!(
            store.get_run(&old).await.expect("old run").plan_text,
            "name: old"
        );
        assert_eq!(store.flags_revision().await.expect("revision"), 0);
        let who = Actor {
            name: "upgrader".into(),
            source: None,
        };
        store
            .put_flag("f", &serde_json::json!(true), Some(0), &who, None)
            .await
            .expect("flag");
        assert_eq!(store.flags_revision().await.expect("revision"), 1);
        assert_eq!(store.list_flags().await.expect("list").len(), 1);
        let audit = AuditFilter {
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.audit(&audit).await.expect("audit").len(), 1);
    }

    #[tokio::test]
    async fn sqlite_databases_of_the_previous_release_are_migrated() {
        let dir = SqliteDir::new();
        let path = dir.db_path();
        let (_old_dir, old) = migrations_up_to("sqlite", 2).await;
        assert_eq!(old.iter().count(), 2);
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("connect");
        old.run(&mut conn).await.expect("previous schema");
        sqlx::query(OLD_RUN)
            .bind(0_i64)
            .execute(&mut conn)
            .await
            .expect("old run");
        let _ = conn.close().await;

        let url = format!("sqlite://{}", path.display());
        let store = open(&url).await.expect("migrates");
        upgraded_store_works(&store).await;
        store.close().await;
        // and opens again, with nothing left to apply
        let again = open(&url).await.expect("reopen");
        assert_eq!(again.list_flags().await.expect("list").len(), 1);
        again.close().await;
    }

    #[tokio::test]
    async fn postgres_databases_of_the_previous_release_are_migrated() {
        let schema = PgSchema::create();
        let (_old_dir, old) = migrations_up_to("postgres", 2).await;
        assert_eq!(old.iter().count(), 2);
        let mut conn = sqlx::PgConnection::connect(&schema.url())
            .await
            .expect("connect");
        old.run(&mut conn).await.expect("previous schema");
        sqlx::query(OLD_RUN)
            .bind(time::OffsetDateTime::UNIX_EPOCH)
            .execute(&mut conn)
            .await
            .expect("old run");
        let _ = conn.close().await;

        let store = open(&schema.url()).await.expect("migrates");
        upgraded_store_works(&store).await;
        store.close().await;
        let again = open(&schema.url()).await.expect("reopen");
        assert_eq!(again.list_flags().await.expect("list").len(), 1);
        again.close().await;
    }

    #[tokio::test]
    async fn an_open_postgres_store_never_prints_its_password() {
        let schema = PgSchema::create();
        // trust auth ignores the password, so a URL can carry one here
        let Some(url) = schema
            .url()
            .strip_prefix("postgres://postgres@")
            .map(|rest| format!("postgres://postgres:hunter2@{rest}"))
        else {
            eprintln!("GOLIVE_TEST_DATABASE_URL has another shape; skipping");
            return;
        };
        let store = open(&url).await.expect("open");
        let shown = format!("{store:?} {}", store.url());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres:***@"), "{shown}");
        store.close().await;
    }
}
