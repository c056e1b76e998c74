//! Riding out the journal's passing faults: [`Retrying`] wraps a store and
//! retries a statement that failed with a fault that passes by itself (a
//! PostgreSQL restart or outage, a SQLite file locked past its busy
//! timeout: [`StoreError::is_transient`]) with backoff, for up to a budget
//! (`GOLIVE_DB_RETRY`, 60 s by default). Meanwhile the caller simply
//! waits: a run pauses instead of failing, and goes on when the database
//! answers again.
//!
//! A statement cut off by a lost connection may or may not have committed.
//! Before it is tried again the wrapper checks whether it did, so that no
//! write is applied twice:
//! - idempotent by construction (a second application changes nothing):
//!   acquiring, renewing or releasing a lease, setting the run's status,
//!   marking running items interrupted, confirmations, signatures,
//!   requests, deleting a flag, revoking a token;
//! - checked against the state: a start is done if the item is `running`
//!   (only the lease holder starts items, and a resume turns every
//!   `running` item `interrupted` first, so a `running` item under our
//!   lease is ours); a finish is done if the item has that outcome; a
//!   finish with the next start, if both are (they commit together); a
//!   flag write is done if the flag holds that definition;
//! - checked against the journal: a wait or an engine event is done if an
//!   event with the same kind, item, actor and data follows the last event
//!   seen before the first try (only the lease holder writes such events);
//! - not retried, since a second application cannot be told from the
//!   first: creating a run, appending an audit entry, creating a token.
//!
//! A lease that expired while the database was away is taken back if it is
//! still ours (nobody else took the run meanwhile), and the statement is
//! tried again; otherwise [`StoreError::LeaseLost`] stands. When the
//! database answers again, a `journal.paused` event records the pause.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    Actor, AuditEntry, AuditFilter, Confirmation, Event, FlagRecord, ItemState, ItemStatus,
    NewAudit, NewConfirmation, NewEvent, NewRequest, NewRun, NewSignature, NewToken, Outcome,
    Request, Run, RunId, RunStatus, RunSummary, Signature, Store, StoreError, TokenRecord, kind,
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long (`60s`, `2m`, `500ms`, or seconds; `0` turns retrying off) a
/// statement is retried after a passing fault before its error is returned.
pub const DB_RETRY_ENV: &str = "GOLIVE_DB_RETRY";

/// How long one try may take during a pause, even past the budget: a
/// call that comes after the run gave up still gets one short try.
const GRACE: Duration = Duration::from_secs(1);

/// The budget when [`DB_RETRY_ENV`] is not set.
pub const DEFAULT_DB_RETRY: Duration = Duration::from_secs(60);

/// How long a statement is retried, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// From the first failure of a statement to giving up.
    pub budget: Duration,
    /// The first pause between tries; it doubles each time.
    pub first_delay: Duration,
    /// The longest pause between tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::with_budget(DEFAULT_DB_RETRY)
    }
}

impl RetryPolicy {
    /// Retries for `budget`, from 100 ms doubling to 2 s between tries.
    pub fn with_budget(budget: Duration) -> RetryPolicy {
        RetryPolicy {
            budget,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }

    /// The policy [`DB_RETRY_ENV`] asks for, else the default; an
    /// unreadable value is an error naming the variable.
    pub fn from_env() -> std::result::Result<RetryPolicy, String> {
        match std::env::var(DB_RETRY_ENV) {
            Ok(text) if !text.trim().is_empty() => parse_budget(&text)
                .map(RetryPolicy::with_budget)
                .ok_or_else(|| {
                    format!(
                        "{DB_RETRY_ENV}={text:?} is not a duration (e.g. 60s, 2m, 500ms, 0 for no retries)"
                    )
                }),
            _ => Ok(RetryPolicy::default()),
        }
    }
}

/// `60`, `60s`, `2m`, `500ms`, `1m30s`, …
fn parse_budget(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let d: jiff::SignedDuration = text.parse().ok()?;
    Duration::try_from(d).ok()
}

/// What a [`Retrying`] store reports about a pause.
#[derive(Debug)]
pub enum Pause<'a> {
    /// The database stopped answering; statements are retried.
    Waiting {
        /// The run a statement was for, if any.
        run: Option<&'a RunId>,
        /// The fault.
        error: &'a StoreError,
        /// How long a statement is retried.
        budget: Duration,
    },
    /// The database answers again.
    Resumed {
        /// The run the pause was noticed for, if any.
        run: Option<&'a RunId>,
        /// How long it was away.
        waited: Duration,
    },
    /// A statement was retried for the whole budget; its error is returned
    /// (reported once per pause).
    GaveUp {
        /// The run, if any.
        run: Option<&'a RunId>,
        /// The last fault.
        error: &'a StoreError,
        /// The budget.
        budget: Duration,
    },
}

/// Receives [`Pause`] reports.
pub type PauseObserver = Arc<dyn Fn(&Pause<'_>) + Send + Sync>;

/// A pause under way: since when, the first fault, and a run and lease
/// owner to journal it under once the database answers.
#[derive(Debug)]
struct Paused {
    since: Instant,
    error: String,
    run: Option<(RunId, Option<String>)>,
}

#[derive(Default)]
struct Shared {
    paused: Mutex<Option<Paused>>,
    /// The lease ttl last asked for, to take an expired lease back.
    ttl: Mutex<Option<Duration>>,
    /// The database was away since the lease was last written: it may have
    /// expired meanwhile, and may be taken back.
    lease_at_risk: AtomicBool,
    /// A call spent its budget during the pause under way: the others fail
    /// at their first fault instead of waiting again (so that a run that
    /// gave up releases its lease and ends without waiting once more per
    /// call), until the database answers.
    gave_up: AtomicBool,
    /// The latest finish, to write again should a restart of the database
    /// have lost it (it commits lazily: see [`Store::finish_item`]).
    last_finish: Mutex<Option<Finish>>,
    /// The database restarted or was away: check the latest finish.
    finish_in_doubt: AtomicBool,
    /// Pauses that ended but are not in the journal yet (at most
    /// [`UNJOURNALED`], the oldest dropped first).
    unjournaled: Mutex<Vec<Unjournaled>>,
}

/// A pause not yet journaled: the call the database answered first after
/// it was a read, which holds no lease to write under. The next call that
/// has a lease for its run writes it.
struct Unjournaled {
    /// `None`: the pause met no call for any run.
    run: Option<RunId>,
    /// The lease the pause's first call held, if it was a leased write.
    owner: Option<String>,
    waited: Duration,
    error: String,
}

/// How many pauses wait for a leased call at most (a process that only
/// reads, such as a server, never writes them).
const UNJOURNALED: usize = 16;

#[derive(Clone)]
struct Finish {
    run: RunId,
    item: String,
    owner: String,
    outcome: Outcome,
    result: Value,
}

/// A store whose statements ride out passing faults (see the module docs).
/// Cheap to clone when the inner store is; clones share their pause.
#[derive(Clone)]
pub struct Retrying<S> {
    inner: S,
    policy: RetryPolicy,
    observer: Option<PauseObserver>,
    shared: Arc<Shared>,
    /// Once it holds a signal number, a pause ends at once (with its fault).
    stop: Option<tokio::sync::watch::Receiver<Option<i32>>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Retrying<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retrying")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The run and lease owner a statement writes for.
#[derive(Clone, Copy)]
struct For<'a> {
    run: Option<&'a RunId>,
    owner: Option<&'a str>,
}

const NONE: For<'static> = For {
    run: None,
    owner: None,
};

fn run_for(run: &RunId) -> For<'_> {
    For {
        run: Some(run),
        owner: None,
    }
}

fn leased<'a>(run: &'a RunId, owner: &'a str) -> For<'a> {
    For {
        run: Some(run),
        owner: Some(owner),
    }
}

impl<S: Store> Retrying<S> {
    /// Wraps `inner`, retrying as `policy` says.
    pub fn new(inner: S, policy: RetryPolicy) -> Retrying<S> {
        Retrying {
            inner,
            policy,
            observer: None,
            shared: Arc::default(),
            stop: None,
        }
    }

    /// Ends any pause at once, with its fault, once `signal` holds a signal
    /// number (SIGINT/SIGTERM in `golive run`): a stop asked for while the
    /// database is away does not wait out the budget.
    pub fn with_stop_signal(mut self, signal: tokio::sync::watch::Receiver<Option<i32>>) -> Self {
        self.stop = Some(signal);
        self
    }

    /// Resolves once the stop signal is set; never without one.
    async fn stopped(&self) {
        let Some(rx) = &self.stop else {
            return std::future::pending().await;
        };
        let mut rx = rx.clone();
        loop {
            if rx.borrow_and_update().is_some() {
                return;
            }
            if rx.changed().await.is_err() {
                // The sender is gone: no stop can come any more.
                return std::future::pending().await;
            }
        }
    }

    /// Reports pauses to `observer`.
    pub fn with_observer(mut self, observer: PauseObserver) -> Retrying<S> {
        self.observer = Some(observer);
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn report(&self, pause: &Pause<'_>) {
        if let Some(observer) = &self.observer {
            observer(pause);
        }
    }

    /// Notes a passing fault: the first one of a pause is reported.
    /// Since when the pause under way has lasted.
    fn pausing(&self, at: For<'_>, error: &StoreError) -> Instant {
        self.shared.lease_at_risk.store(true, Ordering::SeqCst);
        let mut paused = self.shared.paused.lock().unwrap_or_else(|e| e.into_inner());
        match paused.as_mut() {
            Some(p) => {
                if p.run.is_none() {
                    p.run = at.run.map(|r| (r.clone(), at.owner.map(str::to_string)));
                }
                p.since
            }
            None => {
                let since = Instant::now();
                *paused = Some(Paused {
                    since,
                    error: error.to_string(),
                    run: at.run.map(|r| (r.clone(), at.owner.map(str::to_string))),
                });
                drop(paused);
                self.report(&Pause::Waiting {
                    run: at.run,
                    error,
                    budget: self.policy.budget,
                });
                since
            }
        }
    }

    /// Since when the pause under way, if any, has lasted.
    fn paused_since(&self) -> Option<Instant> {
        let paused = self.shared.paused.lock().unwrap_or_else(|e| e.into_inner());
        paused.as_ref().map(|p| p.since)
    }

    /// The database answered: ends the pause, if one was under way, and
    /// journals it (best effort: the lease may be gone, or the database
    /// away again).
    async fn answered(&self, at: For<'_>) {
        if at.owner.is_some() {
            // A leased write went through: the lease is held.
            self.shared.lease_at_risk.store(false, Ordering::SeqCst);
        }
        self.shared.gave_up.store(false, Ordering::SeqCst);
        let Some(paused) = self
            .shared
            .paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            self.journal_pauses(at).await;
            return;
        };
        self.shared.finish_in_doubt.store(true, Ordering::SeqCst);
        self.check_finish().await;
        let waited = paused.since.elapsed();
        let (run, owner) = match paused.run {
            Some((run, owner)) => (Some(run), owner),
            None => (at.run.cloned(), None),
        };
        self.report(&Pause::Resumed {
            run: run.as_ref(),
            waited,
        });
        {
            let mut queue = self
                .shared
                .unjournaled
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if queue.len() == UNJOURNALED {
                queue.remove(0);
            }
            queue.push(Unjournaled {
                run,
                owner,
                waited,
                error: paused.error,
            });
        }
        self.journal_pauses(at).await;
    }

    /// Journals the pauses that ended unjournaled and now have a lease to
    /// be written under: `at`'s for its run (and for a pause that met no
    /// run), else the one the pause's first call held. Best effort: the
    /// lease may be gone again, or the database away.
    async fn journal_pauses(&self, at: For<'_>) {
        let due: Vec<(RunId, String, Unjournaled)> = {
            let mut queue = self
                .shared
                .unjournaled
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if queue.is_empty() {
                return;
            }
            let mut due = Vec::new();
            let mut keep = Vec::new();
            for pause in std::mem::take(&mut *queue) {
                let here = match (at.run, at.owner) {
                    (Some(run), Some(owner)) if pause.run.as_ref().is_none_or(|r| r == run) => {
                        Some((run.clone(), owner.to_string()))
                    }
                    _ => pause.run.clone().zip(pause.owner.clone()),
                };
                match here {
                    Some((run, owner)) => due.push((run, owner, pause)),
                    None => keep.push(pause),
                }
            }
            *queue = keep;
            due
        };
        for (run, owner, pause) in due {
            let event = NewEvent {
                kind: kind::JOURNAL_PAUSED.into(),
                item_id: None,
                data: json!({
                    "waited_ms": u64::try_from(pause.waited.as_millis()).unwrap_or(u64::MAX),
                    "error": pause.error,
                }),
            };
            let _ = self.inner.append_event(&run, &owner, &event).await;
        }
    }

    /// After a restart of the database (or a pause, which may have been
    /// one), writes the latest finish again if it was lost: its item is
    /// `running` again. Only the lease holder moves items, and a finished
    /// item never runs again, so a `running` item whose finish this store
    /// saw succeed lost it. Best effort: on failure it is checked again at
    /// the next call.
    async fn check_finish(&self) {
        if self.inner.database_restarted() {
            self.shared.finish_in_doubt.store(true, Ordering::SeqCst);
        }
        if !self.shared.finish_in_doubt.load(Ordering::SeqCst) {
            return;
        }
        let last = self
            .shared
            .last_finish
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let checked = match last {
            None => true,
            Some(f) => match self.item_in(&f.run, &f.item, ItemStatus::Running).await {
                Ok(None) => true,
                Ok(Some(_)) => matches!(
                    self.inner
                        .finish_item(&f.run, &f.item, &f.owner, f.outcome, &f.result)
                        .await,
                    Ok(_) | Err(StoreError::Conflict(_) | StoreError::LeaseLost { .. })
                ),
                Err(_) => false,
            },
        };
        if checked {
            self.shared.finish_in_doubt.store(false, Ordering::SeqCst);
        }
    }

    /// Takes back `owner`'s lease on `run` if it expired while the database
    /// was away and nobody took the run meanwhile (the engine never lets go
    /// of a run it drives, so a lease still naming `owner` was not taken).
    async fn reclaim(&self, run: &RunId, owner: &str) -> Result<bool> {
        let ttl = *self.shared.ttl.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ttl) = ttl else {
            return Ok(false);
        };
        if self
            .inner
            .get_run(run)
            .await?
            .summary
            .lease_owner
            .as_deref()
            != Some(owner)
        {
            return Ok(false);
        }
        self.inner.acquire_lease(run, owner, ttl).await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the budget of
    /// the pause is spent. Before each retry, `done` says whether the
    /// failed try took effect after all (`Some`: its result, nothing is
    /// tried again). The budget counts from the pause's first fault, for
    /// every call caught in it; during a pause each try is cut short when
    /// the budget runs out (a server that is down can hold a try for the
    /// pool's whole acquire timeout), though never below [`GRACE`].
    async fn retry<T, A, AF, D, DF>(&self, at: For<'_>, mut attempt: A, mut done: D) -> Result<T>
    where
        A: FnMut() -> AF,
        AF: Future<Output = Result<T>>,
        D: FnMut() -> DF,
        DF: Future<Output = Result<Option<T>>>,
    {
        // This call's latest fault.
        let mut failed: Option<StoreError> = None;
        let mut delay = self.policy.first_delay;
        let mut reclaimed = false;
        loop {
            self.check_finish().await;
            let since = self.paused_since();
            let Some(tried) = self.within(since, attempt()).await else {
                return Err(self.give_up(at, failed));
            };
            let error = match tried {
                Ok(value) => {
                    self.answered(at).await;
                    self.check_finish().await;
                    return Ok(value);
                }
                Err(StoreError::LeaseLost { run, owner })
                    if !reclaimed
                        && (failed.is_some()
                            || self.shared.lease_at_risk.load(Ordering::SeqCst)) =>
                {
                    // The lease may have run out while the database was away.
                    reclaimed = true;
                    match self.within(since, self.reclaim(&run, &owner)).await {
                        None => return Err(self.give_up(at, failed)),
                        Some(Ok(true)) => continue,
                        Some(Ok(false)) => return Err(StoreError::LeaseLost { run, owner }),
                        Some(Err(e)) if e.is_transient() => e,
                        Some(Err(e)) => return Err(self.named(at, e)),
                    }
                }
                Err(e) if e.is_transient() && !self.policy.budget.is_zero() => e,
                Err(e) => return Err(self.named(at, e)),
            };
            let since = self.pausing(at, &error);
            if self.shared.gave_up.load(Ordering::SeqCst) {
                return Err(self.named(at, error));
            }
            let left = self.policy.budget.saturating_sub(since.elapsed());
            failed = Some(error);
            if left.is_zero() {
                return Err(self.give_up(at, failed));
            }
            if self
                .within(Some(since), tokio::time::sleep(delay.min(left)))
                .await
                .is_none()
            {
                return Err(self.give_up(at, failed));
            }
            delay = (delay * 2).min(self.policy.max_delay);
            match self.within(Some(since), done()).await {
                None => return Err(self.give_up(at, failed)),
                Some(Ok(Some(value))) => {
                    self.answered(at).await;
                    return Ok(value);
                }
                Some(Ok(None)) => {}
                // Still away: the next try says so.
                Some(Err(e)) if e.is_transient() => {}
                Some(Err(e)) => return Err(self.named(at, e)),
            }
        }
    }

    /// `work`, cut short (`None`) once the budget of the pause that began
    /// at `since` is spent (but not before [`GRACE`]); unbounded when no
    /// pause is under way.
    /// Cut short as well when the stop signal is set.
    async fn within<T>(&self, since: Option<Instant>, work: impl Future<Output = T>) -> Option<T> {
        match since {
            None => Some(work.await),
            Some(since) => {
                let left = self.policy.budget.saturating_sub(since.elapsed());
                tokio::select! {
                    biased;
                    () = self.stopped() => None,
                    done = tokio::time::timeout(left.max(GRACE), work) => done.ok(),
                }
            }
        }
    }

    /// Ends a call's retries with its latest fault, reporting it (unless a
    /// stop ended them).
    fn give_up(&self, at: For<'_>, failed: Option<StoreError>) -> StoreError {
        let waited = self.paused_since().map(|s| s.elapsed()).unwrap_or_default();
        let error = failed.unwrap_or(StoreError::Unanswered { waited });
        let stopping = self.stop.as_ref().is_some_and(|rx| rx.borrow().is_some());
        if !self.shared.gave_up.swap(true, Ordering::SeqCst) && !stopping {
            self.report(&Pause::GaveUp {
                run: at.run,
                error: &error,
                budget: self.policy.budget,
            });
        }
        self.named(at, error)
    }

    /// Retries a statement that is safe to apply twice.
    async fn idempotent<T, A, AF>(&self, at: For<'_>, attempt: A) -> Result<T>
    where
        A: FnMut() -> AF,
        AF: Future<Output = Result<T>>,
    {
        self.retry(at, attempt, || async { Ok(None) }).await
    }

    /// Names the run in an error that stops it.
    fn named(&self, at: For<'_>, e: StoreError) -> StoreError {
        match at.run {
            Some(run) => e.for_run(run),
            None => e,
        }
    }

    /// The item's state, if it is `want`.
    async fn item_in(
        &self,
        run: &RunId,
        item: &str,
        want: ItemStatus,
    ) -> Result<Option<ItemState>> {
        Ok(self
            .inner
            .item_states(run)
            .await?
            .into_iter()
            .find(|s| s.item_id == item && s.status == want))
    }

    /// The run's newest seq, so that a write cut off can be looked for.
    async fn last_seq(&self, run: &RunId) -> Result<i64> {
        let at = run_for(run);
        self.idempotent(at, || async {
            Ok(self.inner.get_run(run).await?.summary.last_seq)
        })
        .await
    }

    /// The first event after `after` that `matches`.
    async fn journaled(
        &self,
        run: &RunId,
        after: i64,
        matches: impl Fn(&Event) -> bool,
    ) -> Result<Option<Event>> {
        let events = self.inner.events_after(run, after, 1000).await?;
        Ok(events.into_iter().find(|e| matches(e)))
    }
}

impl<S: Store> Store for Retrying<S> {
    async fn create_run(&self, new: &NewRun) -> Result<Run> {
        // Not retried: a run created twice would be two runs.
        self.inner.create_run(new).await
    }

    async fn get_run(&self, run: &RunId) -> Result<Run> {
        self.idempotent(run_for(run), || self.inner.get_run(run))
            .await
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>> {
        self.idempotent(NONE, || self.inner.list_runs(limit)).await
    }

    async fn set_run_status(&self, run: &RunId, owner: &str, status: RunStatus) -> Result<()> {
        self.idempotent(leased(run, owner), || {
            self.inner.set_run_status(run, owner, status)
        })
        .await
    }

    async fn acquire_lease(&self, run: &RunId, owner: &str, ttl: Duration) -> Result<bool> {
        *self.shared.ttl.lock().unwrap_or_else(|e| e.into_inner()) = Some(ttl);
        self.idempotent(leased(run, owner), || {
            self.inner.acquire_lease(run, owner, ttl)
        })
        .await
    }

    async fn renew_lease(&self, run: &RunId, owner: &str, ttl: Duration) -> Result<()> {
        *self.shared.ttl.lock().unwrap_or_else(|e| e.into_inner()) = Some(ttl);
        self.idempotent(leased(run, owner), || {
            self.inner.renew_lease(run, owner, ttl)
        })
        .await
    }

    async fn release_lease(&self, run: &RunId, owner: &str) -> Result<bool> {
        self.idempotent(leased(run, owner), || self.inner.release_lease(run, owner))
            .await
    }

    async fn start_item(&self, run: &RunId, item: &str, owner: &str) -> Result<ItemState> {
        self.retry(
            leased(run, owner),
            || self.inner.start_item(run, item, owner),
            || self.item_in(run, item, ItemStatus::Running),
        )
        .await
    }

    async fn finish_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
    ) -> Result<ItemState> {
        let state = self
            .retry(
                leased(run, owner),
                || self.inner.finish_item(run, item, owner, outcome, result),
                || self.item_in(run, item, outcome.into()),
            )
            .await?;
        *self
            .shared
            .last_finish
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Finish {
            run: run.clone(),
            item: item.to_string(),
            owner: owner.to_string(),
            outcome,
            result: result.clone(),
        });
        Ok(state)
    }

    async fn finish_and_start(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
        next: &str,
    ) -> Result<(ItemState, ItemState)> {
        let states = self
            .retry(
                leased(run, owner),
                || {
                    self.inner
                        .finish_and_start(run, item, owner, outcome, result, next)
                },
                // Done if both moves are: they commit together (only the
                // lease holder moves items, as for each move alone).
                || async {
                    let states = self.inner.item_states(run).await?;
                    let find = |id: &str, want: ItemStatus| {
                        states
                            .iter()
                            .find(|s| s.item_id == id && s.status == want)
                            .cloned()
                    };
                    Ok(find(item, outcome.into()).zip(find(next, ItemStatus::Running)))
                },
            )
            .await?;
        // Committed durably, and with it every lazy finish before it: no
        // finish is left for a restart of the database to lose.
        *self
            .shared
            .last_finish
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        Ok(states)
    }

    async fn set_item_waiting(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        detail: &Value,
    ) -> Result<ItemState> {
        let before = self.last_seq(run).await?;
        self.retry(
            leased(run, owner),
            || self.inner.set_item_waiting(run, item, owner, detail),
            || async {
                let wrote = self
                    .journaled(run, before, |e| {
                        e.kind == kind::ITEM_WAITING
                            && e.item_id.as_deref() == Some(item)
                            && e.actor.as_deref() == Some(owner)
                            && e.data.get("detail") == Some(detail)
                    })
                    .await?;
                match wrote {
                    Some(_) => self.item_in(run, item, ItemStatus::Waiting).await,
                    None => Ok(None),
                }
            },
        )
        .await
    }

    async fn mark_interrupted(&self, run: &RunId, owner: &str) -> Result<Vec<String>> {
        let before = self.last_seq(run).await?;
        let mut retried = false;
        let ids = self
            .idempotent(leased(run, owner), || {
                let first = !retried;
                retried = true;
                async move { Ok((first, self.inner.mark_interrupted(run, owner).await?)) }
            })
            .await?;
        match ids {
            (true, ids) => Ok(ids),
            // A try cut off may have marked some: the journal names them all.
            (false, _) => Ok(self
                .inner
                .events_after(run, before, u32::MAX)
                .await?
                .into_iter()
                .filter(|e| e.kind == kind::ITEM_INTERRUPTED && e.actor.as_deref() == Some(owner))
                .filter_map(|e| e.item_id)
                .collect()),
        }
    }

    async fn item_states(&self, run: &RunId) -> Result<Vec<ItemState>> {
        self.idempotent(run_for(run), || self.inner.item_states(run))
            .await
    }

    async fn append_event(&self, run: &RunId, owner: &str, event: &NewEvent) -> Result<Event> {
        let before = self.last_seq(run).await?;
        self.retry(
            leased(run, owner),
            || self.inner.append_event(run, owner, event),
            || {
                self.journaled(run, before, |e| {
                    e.kind == event.kind
                        && e.item_id == event.item_id
                        && e.actor.as_deref() == Some(owner)
                        && e.data == event.data
                })
            },
        )
        .await
    }

    async fn events_after(&self, run: &RunId, after: i64, limit: u32) -> Result<Vec<Event>> {
        self.idempotent(run_for(run), || self.inner.events_after(run, after, limit))
            .await
    }

    async fn confirm(
        &self,
        run: &RunId,
        item: &str,
        confirmation: &NewConfirmation,
    ) -> Result<bool> {
        self.idempotent(run_for(run), || self.inner.confirm(run, item, confirmation))
            .await
    }

    async fn confirmation(&self, run: &RunId, item: &str) -> Result<Option<Confirmation>> {
        self.idempotent(run_for(run), || self.inner.confirmation(run, item))
            .await
    }

    async fn sign(&self, run: &RunId, item: &str, signature: &NewSignature) -> Result<bool> {
        self.idempotent(run_for(run), || self.inner.sign(run, item, signature))
            .await
    }

    async fn signatures(&self, run: &RunId, item: &str) -> Result<Vec<Signature>> {
        self.idempotent(run_for(run), || self.inner.signatures(run, item))
            .await
    }

    async fn request(&self, run: &RunId, request: &NewRequest) -> Result<bool> {
        self.idempotent(run_for(run), || self.inner.request(run, request))
            .await
    }

    async fn requests(&self, run: &RunId) -> Result<Vec<Request>> {
        self.idempotent(run_for(run), || self.inner.requests(run))
            .await
    }

    async fn put_flag(
        &self,
        key: &str,
        definition: &Value,
        expected_version: Option<i64>,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<FlagRecord> {
        self.retry(
            NONE,
            || {
                self.inner
                    .put_flag(key, definition, expected_version, actor, reason)
            },
            || async {
                let flag = self.inner.get_flag(key).await?;
                Ok(flag.filter(|f| f.definition == *definition))
            },
        )
        .await
    }

    async fn delete_flag(&self, key: &str, actor: &Actor, reason: Option<&str>) -> Result<bool> {
        self.idempotent(NONE, || self.inner.delete_flag(key, actor, reason))
            .await
    }

    async fn get_flag(&self, key: &str) -> Result<Option<FlagRecord>> {
        self.idempotent(NONE, || self.inner.get_flag(key)).await
    }

    async fn list_flags(&self) -> Result<Vec<FlagRecord>> {
        self.idempotent(NONE, || self.inner.list_flags()).await
    }

    async fn flags_revision(&self) -> Result<i64> {
        self.idempotent(NONE, || self.inner.flags_revision()).await
    }

    async fn audit_head(&self) -> Result<i64> {
        self.idempotent(NONE, || self.inner.audit_head()).await
    }

    async fn append_audit(&self, actor: &Actor, entry: &NewAudit) -> Result<AuditEntry> {
        // Not retried: an entry appended twice would be two entries.
        self.inner.append_audit(actor, entry).await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.idempotent(NONE, || self.inner.audit(filter)).await
    }

    async fn create_token(&self, token: &NewToken, actor: &Actor) -> Result<TokenRecord> {
        // Not retried: a second try would be refused as a duplicate.
        self.inner.create_token(token, actor).await
    }

    async fn token_by_secret(&self, secret_sha256: &str) -> Result<Option<TokenRecord>> {
        self.idempotent(NONE, || self.inner.token_by_secret(secret_sha256))
            .await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.idempotent(NONE, || self.inner.list_tokens()).await
    }

    async fn revoke_token(&self, id: &str, actor: &Actor) -> Result<bool> {
        self.idempotent(NONE, || self.inner.revoke_token(id, actor))
            .await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::{ManualClock, SqliteStore, model::leased_run};

    /// Where an injected fault cuts a statement off.
    #[derive(Clone, Copy, Debug)]
    enum Cut {
        /// Before it reaches the database: nothing was written.
        Before,
        /// After its commit, before the answer: it was written, but the
        /// caller cannot know.
        AfterCommit,
    }

    /// A real store whose next call of a named operation is cut off once,
    /// with the error a lost connection gives.
    struct Faulty<S> {
        inner: S,
        cuts: Mutex<Vec<(&'static str, Cut)>>,
    }

    impl<S: Store> Faulty<S> {
        fn new(inner: S) -> Faulty<S> {
            Faulty {
                inner,
                cuts: Mutex::new(Vec::new()),
            }
        }

        fn cut(&self, op: &'static str, how: Cut) {
            self.cuts.lock().expect("cuts").push((op, how));
        }

        async fn call<T>(&self, op: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
            let cut = {
                let mut cuts = self.cuts.lock().expect("cuts");
                let i = cuts.iter().position(|(o, _)| *o == op);
                i.map(|i| cuts.remove(i).1)
            };
            let lost = || StoreError::Unavailable {
                url: crate::DbUrl::new("faulty"),
                source: sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection lost (injected)",
                )),
            };
            match cut {
                None => call.await,
                Some(Cut::Before) => Err(lost()),
                Some(Cut::AfterCommit) => {
                    call.await?;
                    Err(lost())
                }
            }
        }
    }

    /// Every operation through [`Faulty::call`].
    macro_rules! faulty_store {
        ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
            impl<S: Store> Store for Faulty<S> {
                $(async fn $name(&self, $($arg: $ty),*) -> Result<$ret> {
                    self.call(stringify!($name), self.inner.$name($($arg),*)).await
                })*
                async fn close(&self) {
                    self.inner.close().await
                }
            }
        };
    }

    crate::with_store_ops!(faulty_store);

    fn quick() -> RetryPolicy {
        RetryPolicy {
            budget: Duration::from_secs(5),
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    async fn store() -> (
        tempfile::TempDir,
        ManualClock,
        Retrying<Faulty<SqliteStore>>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(jiff::Timestamp::now());
        let sqlite = SqliteStore::open(dir.path().join("j.db"))
            .await
            .expect("open")
            .with_clock(clock.clone());
        (dir, clock, Retrying::new(Faulty::new(sqlite), quick()))
    }

    /// The run's events of `kind`.
    async fn count(store: &Retrying<Faulty<SqliteStore>>, run: &RunId, kind: &str) -> usize {
        let events = store.events_after(run, 0, 1000).await.expect("events");
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        let gap_free: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, gap_free, "gap-free");
        events.iter().filter(|e| e.kind == kind).count()
    }

    /// Each write cut off before or after its commit is retried to exactly
    /// one application: one event, the state moved once.
    #[tokio::test]
    async fn a_write_cut_off_is_applied_exactly_once() {
        for how in [Cut::Before, Cut::AfterCommit] {
            let (_dir, _clock, store) = store().await;
            let faulty = store.inner();
            let run = leased_run(&store, &["a", "b", "w"]).await;
            let owner = "me";

            faulty.cut("start_item", how);
            let a = store.start_item(&run, "a", owner).await.expect("start");
            assert_eq!((a.status, a.attempts), (ItemStatus::Running, 1), "{how:?}");
            assert_eq!(count(&store, &run, kind::ITEM_STARTED).await, 1, "{how:?}");

            faulty.cut("finish_item", how);
            let r = json!({"exit_code": 0});
            let a = store
                .finish_item(&run, "a", owner, Outcome::Passed, &r)
                .await
                .expect("finish");
            assert_eq!(a.status, ItemStatus::Passed, "{how:?}");
            assert_eq!(count(&store, &run, kind::ITEM_FINISHED).await, 1, "{how:?}");

            faulty.cut("set_item_waiting", how);
            let detail = json!({"awaiting": "confirmation"});
            let w = store
                .set_item_waiting(&run, "w", owner, &detail)
                .await
                .expect("wait");
            assert_eq!(w.status, ItemStatus::Waiting, "{how:?}");
            assert_eq!(count(&store, &run, kind::ITEM_WAITING).await, 1, "{how:?}");

            faulty.cut("append_event", how);
            let event = NewEvent {
                kind: "notify.sent".into(),
                item_id: Some("b".into()),
                data: json!({"message": "hello"}),
            };
            store
                .append_event(&run, owner, &event)
                .await
                .expect("event");
            assert_eq!(count(&store, &run, "notify.sent").await, 1, "{how:?}");

            store.start_item(&run, "b", owner).await.expect("start b");
            faulty.cut("mark_interrupted", how);
            let ids = store
                .mark_interrupted(&run, owner)
                .await
                .expect("interrupt");
            assert_eq!(ids, ["b"], "{how:?}");
            assert_eq!(
                count(&store, &run, kind::ITEM_INTERRUPTED).await,
                1,
                "{how:?}"
            );

            faulty.cut("set_run_status", how);
            store
                .set_run_status(&run, owner, RunStatus::Running)
                .await
                .expect("status");
            assert_eq!(count(&store, &run, kind::RUN_STATUS).await, 1, "{how:?}");

            faulty.cut("put_flag", how);
            let who = Actor {
                name: "me".into(),
                source: None,
            };
            let flag = store
                .put_flag("f", &json!(true), Some(0), &who, None)
                .await
                .expect("flag");
            assert_eq!(flag.version, 1, "{how:?}");
            assert_eq!(store.audit_head().await.expect("audit"), 1, "{how:?}");

            faulty.cut("release_lease", how);
            store.release_lease(&run, owner).await.expect("release");
            assert_eq!(
                count(&store, &run, kind::LEASE_RELEASED).await,
                1,
                "{how:?}"
            );
            store.close().await;
        }
    }

    /// A finish with the next start, cut off before or after its commit, is
    /// applied exactly once: one event each, both items moved once.
    #[tokio::test]
    async fn a_finish_and_start_cut_off_is_applied_exactly_once() {
        for how in [Cut::Before, Cut::AfterCommit] {
            let (_dir, _clock, store) = store().await;
            let run = leased_run(&store, &["a", "b"]).await;
            store.start_item(&run, "a", "me").await.expect("start");
            store.inner().cut("finish_and_start", how);
            let r = json!({"exit_code": 0});
            let (a, b) = store
                .finish_and_start(&run, "a", "me", Outcome::Passed, &r, "b")
                .await
                .expect("finish and start");
            assert_eq!(a.status, ItemStatus::Passed, "{how:?}");
            assert_eq!((b.status, b.attempts), (ItemStatus::Running, 1), "{how:?}");
            assert_eq!(count(&store, &run, kind::ITEM_FINISHED).await, 1, "{how:?}");
            assert_eq!(count(&store, &run, kind::ITEM_STARTED).await, 2, "{how:?}");
            store.close().await;
        }
    }

    /// A lease that ran out while the database was away is taken back when
    /// nobody else took the run; when someone did, the lease stays lost.
    #[tokio::test]
    async fn an_expired_lease_is_taken_back_only_if_nobody_took_the_run() {
        let (_dir, clock, store) = store().await;
        let ttl = Duration::from_secs(15);
        let run = leased_run(&store, &["a", "b"]).await;
        store.renew_lease(&run, "me", ttl).await.expect("renew");
        // The database goes away for longer than the lease.
        store.inner().cut("start_item", Cut::Before);
        clock.advance(Duration::from_secs(20));
        let a = store.start_item(&run, "a", "me").await.expect("start");
        assert_eq!(a.status, ItemStatus::Running);
        let summary = store.get_run(&run).await.expect("run").summary;
        assert_eq!(summary.lease_owner.as_deref(), Some("me"));
        assert_eq!(count(&store, &run, kind::LEASE_ACQUIRED).await, 1);

        // Away again, and meanwhile another process takes the run over.
        clock.advance(Duration::from_secs(20));
        assert!(
            store
                .inner()
                .inner
                .acquire_lease(&run, "other", ttl)
                .await
                .expect("takeover")
        );
        store.inner().cut("finish_item", Cut::Before);
        let lost = store
            .finish_item(&run, "a", "me", Outcome::Passed, &Value::Null)
            .await;
        assert!(
            matches!(lost, Err(StoreError::LeaseLost { .. })),
            "{lost:?}"
        );
        store.close().await;
    }

    /// A pause is reported once when it starts and once when it ends, and
    /// journaled; a fault that outlasts the budget is returned.
    #[tokio::test]
    async fn pauses_are_reported_and_journaled_and_the_budget_holds() {
        let (_dir, _clock, store) = store().await;
        let waiting = Arc::new(AtomicUsize::new(0));
        let resumed = Arc::new(AtomicUsize::new(0));
        let gave_up = Arc::new(AtomicUsize::new(0));
        let counters = (waiting.clone(), resumed.clone(), gave_up.clone());
        let store = store.with_observer(Arc::new(move |p: &Pause<'_>| {
            let counter = match p {
                Pause::Waiting { .. } => &counters.0,
                Pause::Resumed { .. } => &counters.1,
                Pause::GaveUp { .. } => &counters.2,
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        let run = leased_run(&store, &["a"]).await;
        for _ in 0..3 {
            store.inner().cut("start_item", Cut::Before);
        }
        store.start_item(&run, "a", "me").await.expect("start");
        assert_eq!(waiting.load(Ordering::SeqCst), 1);
        assert_eq!(resumed.load(Ordering::SeqCst), 1);
        assert_eq!(count(&store, &run, kind::JOURNAL_PAUSED).await, 1);

        let mut short = store;
        short.policy = RetryPolicy {
            budget: Duration::from_millis(30),
            ..quick()
        };
        for _ in 0..1000 {
            short.inner().cut("item_states", Cut::Before);
        }
        let away = short.item_states(&run).await;
        assert!(
            matches!(away, Err(StoreError::Unavailable { .. })),
            "{away:?}"
        );
        assert_eq!(gave_up.load(Ordering::SeqCst), 1);
        // Until the database answers, other calls fail at their first fault.
        let left = || short.inner().cuts.lock().expect("cuts").len();
        let before = left();
        let away = short.item_states(&run).await;
        assert!(
            matches!(away, Err(StoreError::Unavailable { .. })),
            "{away:?}"
        );
        assert_eq!(left(), before - 1);
        short.inner().cuts.lock().expect("cuts").clear();
        short.item_states(&run).await.expect("answers again");
        short.inner().cut("item_states", Cut::Before);
        short.item_states(&run).await.expect("retried again");
        // A fault that does not pass is not retried.
        let none = short.get_run(&"r-zzzzzzzz".parse().expect("id")).await;
        assert!(matches!(none, Err(StoreError::NotFound(_))), "{none:?}");
        short.close().await;
    }

    /// A pause that a read met and ended holds no lease to journal it
    /// under: the run's next leased call writes it, once.
    #[tokio::test]
    async fn a_pause_seen_only_by_reads_is_journaled_by_the_next_leased_call() {
        let (_dir, _clock, store) = store().await;
        let run = leased_run(&store, &["a", "b"]).await;
        for _ in 0..3 {
            store.inner().cut("item_states", Cut::Before);
        }
        store.item_states(&run).await.expect("read after the pause");
        assert_eq!(count(&store, &run, kind::JOURNAL_PAUSED).await, 0);
        store.start_item(&run, "a", "me").await.expect("start");
        assert_eq!(count(&store, &run, kind::JOURNAL_PAUSED).await, 1);
        store.start_item(&run, "b", "me").await.expect("start b");
        assert_eq!(count(&store, &run, kind::JOURNAL_PAUSED).await, 1);
        store.close().await;
    }

    #[test]
    fn budgets_read_as_durations() {
        assert_eq!(parse_budget("60"), Some(Duration::from_secs(60)));
        assert_eq!(parse_budget("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_budget("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_budget("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_budget("1m 30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_budget("0"), Some(Duration::ZERO));
        assert_eq!(parse_budget("soon"), None);
        assert_eq!(parse_budget("-5s"), None);
    }
}
