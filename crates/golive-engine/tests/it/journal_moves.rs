//! How the engine journals its items' moves: the finish of one item and the
//! start of the next in one call (`Store::finish_and_start`) whenever the
//! run goes on with the next item at once, and apart otherwise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use golive_engine::{Engine, item_ids};
use golive_store::{
    Actor, AuditEntry, AuditFilter, Confirmation, Event, FlagRecord, ItemState, ItemStatus,
    NewAudit, NewConfirmation, NewEvent, NewRequest, NewRun, NewSignature, NewToken, Outcome,
    Request, Run, RunId, RunStatus, RunSummary, Signature, SqliteStore, Store, StoreError,
    TokenRecord,
};
use serde_json::Value;

/// A store that records its item moves: `start a`, `finish a`,
/// `finish a + start b`.
struct Moves {
    inner: SqliteStore,
    seen: Mutex<Vec<String>>,
}

impl Moves {
    fn note(&self, what: String) {
        self.seen.lock().expect("moves").push(what);
    }
}

/// Every operation but the moves forwarded as it is.
macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(async fn $name(&self, $($arg: $ty),*) -> Result<$ret, StoreError> {
            self.inner.$name($($arg),*).await
        })*
    };
}

impl Store for Moves {
    async fn start_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
    ) -> Result<ItemState, StoreError> {
        self.note(format!("start {item}"));
        self.inner.start_item(run, item, owner).await
    }

    async fn finish_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
    ) -> Result<ItemState, StoreError> {
        self.note(format!("finish {item}"));
        self.inner
            .finish_item(run, item, owner, outcome, result)
            .await
    }

    async fn finish_and_start(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
        next: &str,
    ) -> Result<(ItemState, ItemState), StoreError> {
        self.note(format!("finish {item} + start {next}"));
        self.inner
            .finish_and_start(run, item, owner, outcome, result, next)
            .await
    }

    async fn close(&self) {
        self.inner.close().await
    }

    forward! {
        create_run(new: &NewRun) -> Run;
        get_run(run: &RunId) -> Run;
        list_runs(limit: u32) -> Vec<RunSummary>;
        set_run_status(run: &RunId, owner: &str, status: RunStatus) -> ();
        acquire_lease(run: &RunId, owner: &str, ttl: Duration) -> bool;
        renew_lease(run: &RunId, owner: &str, ttl: Duration) -> ();
        release_lease(run: &RunId, owner: &str) -> bool;
        set_item_waiting(run: &RunId, item: &str, owner: &str, detail: &Value) -> ItemState;
        mark_interrupted(run: &RunId, owner: &str) -> Vec<String>;
        item_states(run: &RunId) -> Vec<ItemState>;
        append_event(run: &RunId, owner: &str, event: &NewEvent) -> Event;
        events_after(run: &RunId, after: i64, limit: u32) -> Vec<Event>;
        confirm(run: &RunId, item: &str, confirmation: &NewConfirmation) -> bool;
        confirmation(run: &RunId, item: &str) -> Option<Confirmation>;
        sign(run: &RunId, item: &str, signature: &NewSignature) -> bool;
        signatures(run: &RunId, item: &str) -> Vec<Signature>;
        request(run: &RunId, request: &NewRequest) -> bool;
        requests(run: &RunId) -> Vec<Request>;
        put_flag(key: &str, definition: &Value, expected_version: Option<i64>, actor: &Actor, reason: Option<&str>) -> FlagRecord;
        delete_flag(key: &str, actor: &Actor, reason: Option<&str>) -> bool;
        get_flag(key: &str) -> Option<FlagRecord>;
        list_flags() -> Vec<FlagRecord>;
        flags_revision() -> i64;
        audit_head() -> i64;
        append_audit(actor: &Actor, entry: &NewAudit) -> AuditEntry;
        audit(filter: &AuditFilter) -> Vec<AuditEntry>;
        create_token(token: &NewToken, actor: &Actor) -> TokenRecord;
        token_by_secret(secret_sha256: &str) -> Option<TokenRecord>;
        list_tokens() -> Vec<TokenRecord>;
        revoke_token(id: &str, actor: &Actor) -> bool;
    }
}

/// Items in two phases: a failure that continues, one that stops the run.
const PLAN: &str = "name: p\nphases:\n  - title: a\n    items:\n      - id: one\n        run: {command: 'true'}\n      - id: two\n        on_failure: continue\n        run: {command: 'exit 1'}\n      - id: three\n        wait: {duration: 0s}\n  - title: b\n    items:\n      - id: four\n        run: {command: 'true'}\n      - id: five\n        run: {command: 'exit 2'}\n      - id: six\n        run: {command: 'true'}\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_finish_carries_the_next_start_while_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Moves {
        inner: SqliteStore::open(dir.path().join("j.db"))
            .await
            .expect("journal"),
        seen: Mutex::new(Vec::new()),
    });
    let compiled = golive_plan::compile(PLAN, &|_: &str| true);
    let plan = compiled
        .plan
        .unwrap_or_else(|| panic!("plan: {:?}", compiled.diagnostics));
    let run = store
        .create_run(&NewRun {
            plan_name: plan.name.clone(),
            plan_text: PLAN.to_string(),
            t0: None,
            items: item_ids(&plan),
            actor: None,
        })
        .await
        .expect("run")
        .summary
        .id;
    let engine = Engine::new(Arc::clone(&store)).expect("engine");
    let status = engine.resume(&run, &[]).await.expect("run");
    assert_eq!(status, RunStatus::Failed);
    assert_eq!(
        *store.seen.lock().expect("moves"),
        [
            "start one",
            "finish one + start two",
            // A failure with `on_failure: continue` goes on at once.
            "finish two + start three",
            // From one phase to the next.
            "finish three + start four",
            "finish four + start five",
            // A failure that stops the run starts nothing.
            "finish five",
        ]
    );
    let states: Vec<(String, ItemStatus, u32)> = store
        .item_states(&run)
        .await
        .expect("states")
        .into_iter()
        .map(|s| (s.item_id, s.status, s.attempts))
        .collect();
    let want = [
        ("one", ItemStatus::Passed, 1),
        ("two", ItemStatus::Failed, 1),
        ("three", ItemStatus::Passed, 1),
        ("four", ItemStatus::Passed, 1),
        ("five", ItemStatus::Failed, 1),
        ("six", ItemStatus::Pending, 0),
    ];
    let want: Vec<(String, ItemStatus, u32)> = want
        .iter()
        .map(|(id, s, n)| (id.to_string(), *s, *n))
        .collect();
    assert_eq!(states, want);
    store.close().await;
}
