//! The run engine: executes a compiled go-live [`Plan`] against the journal.
//!
//! Phases run in order and items in order. Every state change goes through
//! the [`Store`], which writes its journal event in the same transaction, so
//! a run killed at any moment can be resumed: items found `running` become
//! `interrupted` and follow their `on_interrupt` policy, and a finished item
//! never runs again.
//!
//! # Layout
//! - [`Engine`] (this file): starting ([`Engine::start`], for the CLI and
//!   the server alike), executing and resuming runs; the failure policy
//!   (stop, continue, rollback) and the interrupt policy (rerun, skip, ask);
//!   [`stored_plan`], a run's plan compiled once and kept.
//! - `lease`: the lease owner's name and the background task that renews
//!   the lease every ttl/3 until the run ends.
//! - `items`: one module per item kind — `command` (`run`), `check`,
//!   `person` (`task` and `approval`, which wait for people), `wait`,
//!   `notify`, `flag`, `rollout` (traffic steps judged by
//!   golive-rollout's analysis, with promote/pause/resume/abort requests).
//! - [`comms`]: the plan's communication schedule, sent beside the items.
//! - [`report`]: a run's filled-in go-live record, read from the journal,
//!   as Markdown, HTML, JSON or JUnit (here so the server can serve it too).
//! - `request`: a rollback asked for by another process (`golive rollback`),
//!   recorded without the lease and read by the engine while it works.
//! - `overrides`: the `--var` overrides kept with the run for `--resume`.
//! - [`supervise`]: commands run under a supervisor process that outlives
//!   golive and records their pid, start and result, so that a resume
//!   reattaches to a command instead of running it again.
//! - [`status`]: where a run stands (phase, items, who is awaited), as
//!   `golive status` and the server show it.
//! - [`answers`]: people's answers (confirm, sign, ask for a rollback,
//!   acknowledge an incident) and alerts from outside, checked against the stored plan; shared by
//!   the CLI and the server.
//! - [`monitor`]: the watch window after the last phase (`monitor:`): checks
//!   on a cadence, alerts, incidents, escalation, acknowledgements,
//!   resolution.
//!
//! # Stopping
//! [`Engine::with_stop_signal`] gives the engine a signal number to watch
//! (SIGINT/SIGTERM in `golive run`). When it turns set, the item's work (a
//! command, a pause, a poll) is dropped — which kills the command's process
//! group — but a journal write under way always completes; the items left
//! `running` are marked `interrupted` (so a resume follows `on_interrupt`),
//! the run becomes `paused` (unless it was rolling back), the lease is
//! released and [`EngineError::Stopped`] is returned.

#![deny(missing_docs)]

pub mod answers;
pub mod comms;
mod items;
mod lease;
pub mod monitor;
mod overrides;
pub mod report;
mod request;
pub mod status;
pub mod supervise;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

use golive_plan::{Item, ItemKind, OnFailure, OnInterrupt, Phase, Plan};
use golive_runtime::{VarError, Vars};
use golive_store::{
    ItemState, ItemStatus, NewRun, Outcome, Run, RunId, RunStatus, Store, StoreError,
};
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::watch;

use items::Host;

pub use lease::{holder_gone, owner_name};
pub use overrides::RUN_VARS;

/// The journal event of a resume that looked for an interrupted command's
/// supervisor: `{found: finished | never-started | unknown, attempt, why}`.
pub const REATTACHED: &str = "run.reattached";
pub use request::{
    ROLLBACK, ROLLBACK_REQUESTED, ROLLBACK_TRIGGERED, request_rollback, rollback_request,
};

/// What the engine reports while it works, for a progress display.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Resuming found these items `running` and marked them `interrupted`.
    Interrupted(&'a [String]),
    /// The item now waits for a person (a confirmation or signatures).
    Waiting {
        /// The item.
        item: &'a Item,
        /// What it waits for (the `item.waiting` event's detail).
        detail: &'a Value,
    },
    /// The item finished.
    Finished {
        /// The item.
        item: &'a Item,
        /// Passed, failed or skipped.
        status: ItemStatus,
        /// Its result as stored.
        result: &'a Value,
    },
    /// The run's status changed.
    Run(RunStatus),
    /// Something happened in the watch window (see [`monitor::event`]): the
    /// journal event's kind and data.
    Watch {
        /// The event's kind, e.g. `incident.opened`.
        kind: &'a str,
        /// Its data.
        data: &'a Value,
    },
    /// Something worth a line while an item works (a rollout's weight, a
    /// decision): the journal event's kind and data.
    Note {
        /// The item.
        item: &'a Item,
        /// The event's kind, e.g. `rollout.weight`.
        kind: &'a str,
        /// Its data.
        data: &'a Value,
    },
    /// A phase's gate held the run in it: these of its items failed.
    GateHeld {
        /// The phase's title.
        phase: &'a str,
        /// The items the gate names that failed.
        items: &'a [&'a str],
    },
}

/// Receives [`Progress`] reports.
pub type Observer = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

/// Why a run could not be created, executed or resumed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The journal refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run has already ended.
    #[error("run {run} has already finished ({status}); there is nothing to resume")]
    Finished {
        /// The run.
        run: RunId,
        /// How it ended.
        status: RunStatus,
    },
    /// Another live process holds the run's lease.
    #[error(
        "run {run} is being driven by `{owner}` (lease until {until}); if that process died, resume again once the lease has expired"
    )]
    LeaseHeld {
        /// The run.
        run: RunId,
        /// Who holds it.
        owner: String,
        /// Until when.
        until: String,
    },
    /// The lease was lost while the run was executing.
    #[error(
        "run {run}: the lease was lost (another process took the run over, or the database was unreachable for too long); stopped"
    )]
    LeaseLost {
        /// The run.
        run: RunId,
    },
    /// The plan stored with the run no longer compiles.
    #[error("the plan stored with run {run} does not compile: {message}")]
    StoredPlan {
        /// The run.
        run: RunId,
        /// The first error.
        message: String,
    },
    /// Variables or secrets could not be resolved.
    #[error(transparent)]
    Vars(#[from] VarError),
    /// A stop signal (SIGINT, SIGTERM) arrived: the running item was
    /// stopped and marked interrupted, and the lease released.
    #[error("run {run} stopped by signal {signal}; resume it with `golive run --resume {run}`")]
    Stopped {
        /// The run.
        run: RunId,
        /// The signal's number.
        signal: i32,
    },
    /// Someone asked for a rollback while an item was under way. The engine
    /// acts on it itself; `execute` and `resume` never return it.
    #[error("run {run}: rollback requested by {by}")]
    RollbackRequested {
        /// The run.
        run: RunId,
        /// Who asked.
        by: String,
        /// Why.
        reason: Option<String>,
    },
    /// No random source for the lease owner's name.
    #[error("no random source for the lease owner's name: {0}")]
    Random(String),
}

/// Compiles the plan text stored with a run (references to variables outside
/// the plan were checked when the run was created, so they are accepted).
/// A status, an answer, a report and the page's outline each read the
/// run's plan, and compiling it costs more than the journal reads around
/// it: compiled plans are kept by their text.
pub fn stored_plan(run: &Run) -> Result<Arc<Plan>, EngineError> {
    /// Enough for every run a server follows at once; emptied when full.
    const KEPT: usize = 64;
    static PLANS: std::sync::LazyLock<Mutex<HashMap<String, Arc<Plan>>>> =
        std::sync::LazyLock::new(Default::default);
    let cached = |plans: &Mutex<HashMap<String, Arc<Plan>>>| {
        plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&run.plan_text)
            .cloned()
    };
    if let Some(plan) = cached(&PLANS) {
        return Ok(plan);
    }
    let compiled = golive_plan::compile(&run.plan_text, &|_: &str| true);
    let plan = Arc::new(compiled.plan.ok_or_else(|| {
        EngineError::StoredPlan {
            run: run.summary.id.clone(),
            message: compiled
                .diagnostics
                .first()
                .map(|d| d.message.clone())
                .unwrap_or_default(),
        }
    })?);
    let mut plans = PLANS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if plans.len() >= KEPT {
        plans.clear();
    }
    plans.insert(run.plan_text.clone(), Arc::clone(&plan));
    Ok(plan)
}

/// A run made by [`Engine::start`], ready for [`Engine::run`]: its plan,
/// and its variables resolved once.
#[derive(Debug)]
pub struct Started {
    /// The run.
    pub run: RunId,
    plan: Plan,
    vars: Vars,
    overrides: Vec<(String, String)>,
}

impl Started {
    /// The run's plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

/// Every item id of a plan in run order: the phases' items, then rollback's.
pub fn item_ids(plan: &Plan) -> Vec<String> {
    plan.items()
        .map(|(_, i)| i)
        .chain(plan.rollback.items.iter())
        .map(|i| i.id.to_string())
        .collect()
}

/// Executes plans against a store. One engine is one lease owner.
pub struct Engine<S> {
    store: Arc<S>,
    owner: String,
    lease_ttl: Duration,
    poll: Duration,
    observer: Option<Observer>,
    stop: Option<watch::Receiver<Option<i32>>>,
    supervisor: Option<supervise::Supervisor>,
}

/// The plan's watch window, if it watches something: a `monitor` without
/// checks (as `golive import` drafts one, for its escalation rules) would
/// hold the run for its whole window with nothing that could open an
/// incident.
fn watched(plan: &Plan) -> Option<&golive_plan::Monitor> {
    plan.monitor.as_ref().filter(|m| m.watches())
}

/// Whether settling `item` from `state` starts it before anything else
/// ([`Engine::settle`] → [`Engine::execute_item`] → `start_item`), so that
/// its start may be journaled with the previous item's finish. Not a task
/// or an approval (they look for people's answers first), nor an
/// interrupted item that is skipped or asks first, nor a waiting one that
/// asks (only people's items wait), nor one already finished or running.
fn starts_at_once(item: &Item, state: Option<&ItemState>) -> bool {
    if matches!(item.kind, ItemKind::Task(_) | ItemKind::Approval(_)) {
        return false;
    }
    match state.map(|s| s.status) {
        Some(ItemStatus::Pending) => true,
        Some(ItemStatus::Interrupted) => {
            !matches!(item.on_interrupt, OnInterrupt::Skip | OnInterrupt::Ask)
        }
        _ => false,
    }
}

/// Whether `gate` holds its phase on `item`'s failure: a check under
/// `checks`, an approval under `approvals`.
fn gate_names(gate: &golive_plan::Gate, item: &Item) -> bool {
    (gate.checks && matches!(item.kind, ItemKind::Check(_)))
        || (gate.approvals && matches!(item.kind, ItemKind::Approval(_)))
}

/// A phase's gate refused to let the run leave it: the items it names
/// that failed.
pub const GATE_HELD: &str = "phase.gate-held";

/// Everything one execution of a run needs.
struct Ctx<'a> {
    run: &'a RunId,
    plan: &'a Plan,
    vars: &'a Vars,
    t0: Option<Timestamp>,
    lost: watch::Receiver<bool>,
    /// `--var` overrides (stored ones merged with this command's); names the
    /// plan does not declare go into commands' environment as they are.
    overrides: &'a [(String, String)],
    /// Rollback items are running: a rollback request changes nothing.
    rolling_back: AtomicBool,
    /// When a rollback request was last looked for between items.
    last_request_check: Mutex<Option<Instant>>,
    /// The next item, started in the same transaction as the previous
    /// item's finish (see [`Engine::finish_then`]): its state as started,
    /// for [`Engine::execute_item`] to run it from.
    started: Mutex<Option<ItemState>>,
}

impl<S: Store + 'static> Engine<S> {
    /// An engine with a fresh lease owner name (`host:pid:random`), a 15 s
    /// lease, a 250 ms poll for people's answers, and the
    /// [installed](supervise::install) supervisor for commands, if any.
    pub fn new(store: Arc<S>) -> Result<Self, EngineError> {
        Ok(Engine {
            store,
            owner: owner_name()?,
            lease_ttl: Duration::from_secs(15),
            poll: Duration::from_millis(250),
            observer: None,
            stop: None,
            supervisor: supervise::installed().cloned(),
        })
    }

    /// Runs commands under `supervisor` (`None`: as golive's own children).
    pub fn with_supervisor(mut self, supervisor: Option<supervise::Supervisor>) -> Self {
        self.supervisor = supervisor;
        self
    }

    /// Sets the lease's time to live (renewed every third of it).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(300));
        self
    }

    /// Sets how often the store is polled for confirmations and signatures.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Reports progress to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Stops the run once `signal` holds a signal number (see "Stopping").
    pub fn with_stop_signal(mut self, signal: watch::Receiver<Option<i32>>) -> Self {
        self.stop = Some(signal);
        self
    }

    /// The lease owner name this engine writes with.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Creates a run of `plan` (stored as `plan_text`) with every item
    /// pending; `t0` overrides the plan's. Nothing executes yet.
    pub async fn create(
        &self,
        plan_text: &str,
        plan: &Plan,
        t0: Option<Timestamp>,
    ) -> Result<RunId, EngineError> {
        let run = self
            .store
            .create_run(&NewRun {
                plan_name: plan.name.clone(),
                plan_text: plan_text.to_string(),
                t0: t0.or(plan.t0),
                items: item_ids(plan),
                actor: Some(self.owner.clone()),
            })
            .await?;
        Ok(run.summary.id)
    }

    /// Starts a run of `plan` (submitted as `text`): resolves its variables
    /// with the `--var` `overrides` (a missing one refuses before anything
    /// is journaled), then creates the run with every item pending; `t0`
    /// overrides the plan's. [`Engine::run`] executes it. The CLI and the
    /// server both start runs this way.
    pub async fn start(
        &self,
        text: &str,
        plan: Plan,
        overrides: Vec<(String, String)>,
        t0: Option<Timestamp>,
    ) -> Result<Started, EngineError> {
        let vars = Vars::resolve(&plan, &overrides)?;
        let run = self.create(text, &plan, t0).await?;
        Ok(Started {
            run,
            plan,
            vars,
            overrides,
        })
    }

    /// Executes a run made by [`Engine::start`] to its end (or until a
    /// failure stops it) with the variables resolved then; its final status.
    pub async fn run(&self, started: &Started) -> Result<RunStatus, EngineError> {
        let stored = self.store.get_run(&started.run).await?;
        let given = &started.overrides;
        self.drive(&stored, &started.plan, &started.vars, given, given, false)
            .await
    }

    /// Executes a run created by [`Engine::create`] to its end (or until a
    /// failure stops it) and returns its final status. The `--var`
    /// `overrides` are journaled with the run (declared secrets left out) so
    /// that a resume uses them again.
    pub async fn execute(
        &self,
        run: &RunId,
        plan: &Plan,
        overrides: &[(String, String)],
    ) -> Result<RunStatus, EngineError> {
        let stored = self.store.get_run(run).await?;
        let vars = Vars::resolve(plan, overrides)?;
        self.drive(&stored, plan, &vars, overrides, overrides, false)
            .await
    }

    /// Resumes a run from the journal: re-reads its stored plan, takes the
    /// lease, marks items that were running as interrupted and applies their
    /// `on_interrupt` policy; finished items are never run again.
    pub async fn resume(
        &self,
        run: &RunId,
        overrides: &[(String, String)],
    ) -> Result<RunStatus, EngineError> {
        let stored = self.store.get_run(run).await?;
        if stored.summary.status.is_final() {
            return Err(EngineError::Finished {
                run: run.clone(),
                status: stored.summary.status,
            });
        }
        let plan = stored_plan(&stored)?;
        let merged = overrides::merge(&overrides::stored(&*self.store, run).await?, overrides);
        let vars = Vars::resolve(&plan, &merged)?;
        self.drive(&stored, &plan, &vars, &merged, overrides, true)
            .await
    }

    /// Takes the lease, runs, and gives the lease back.
    async fn drive(
        &self,
        stored: &Run,
        plan: &Plan,
        vars: &Vars,
        merged: &[(String, String)],
        given: &[(String, String)],
        resuming: bool,
    ) -> Result<RunStatus, EngineError> {
        let run = &stored.summary.id;
        if !self.take_lease(run).await? {
            let now = self.store.get_run(run).await?;
            return Err(EngineError::LeaseHeld {
                run: run.clone(),
                owner: now.summary.lease_owner.unwrap_or_default(),
                until: now
                    .summary
                    .lease_expires_at
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            });
        }
        let keeper = lease::Keeper::spawn(
            Arc::clone(&self.store),
            run.clone(),
            self.owner.clone(),
            self.lease_ttl,
        );
        let ctx = Ctx {
            run,
            plan,
            vars,
            t0: stored.summary.t0,
            lost: keeper.lost(),
            overrides: merged,
            rolling_back: AtomicBool::new(false),
            last_request_check: Mutex::new(None),
            started: Mutex::new(None),
        };
        let mut result = async {
            if !given.is_empty()
                && let Some(event) = overrides::event(plan, merged)
            {
                self.store.append_event(run, &self.owner, &event).await?;
            }
            // The communication schedule runs beside the items, for as
            // long as the run is driven.
            let comms = Box::pin(async {
                self.comms(&ctx).await?;
                std::future::pending::<Result<RunStatus, EngineError>>().await
            });
            // Boxed: the run's future is large, and a thread's stack is not.
            let items = Box::pin(self.drive_held(&ctx, stored.summary.status, resuming));
            tokio::select! {
                biased;
                done = items => done,
                failed = comms => failed,
            }
        }
        // Every log line of the run (and of its items) names it.
        .instrument(tracing::info_span!("run", run = %run, owner = %self.owner))
        .await;
        if let Err(EngineError::Stopped { .. }) = &result {
            // The command was killed; say so in the journal before letting
            // go of the run. Should this fail, the resume's own
            // `mark_interrupted` does the same.
            match self.store.mark_interrupted(run, &self.owner).await {
                Ok(ids) if !ids.is_empty() => self.report(&Progress::Interrupted(&ids)),
                Ok(_) => {}
                Err(e) => result = Err(e.into()),
            }
            if matches!(result, Err(EngineError::Stopped { .. }))
                && !ctx.rolling_back.load(Ordering::SeqCst)
            {
                if let Err(e) = self
                    .store
                    .set_run_status(run, &self.owner, RunStatus::Paused)
                    .await
                {
                    tracing::warn!(run = %run, error = %e, "cannot mark the stopped run paused");
                }
            }
        }
        if let (Ok(status), Some(sup)) = (&result, &self.supervisor)
            && status.is_final()
        {
            // The final status is committed: no item will be reattached.
            sup.forget(run.as_str());
        }
        let lost = keeper.stop().await;
        let result = match result {
            Err(EngineError::Store(StoreError::LeaseLost { .. })) => {
                Err(EngineError::LeaseLost { run: run.clone() })
            }
            Err(e) if lost => Err(e),
            other => other,
        };
        if !lost {
            // Best effort: an unreleased lease only delays a resume by one ttl.
            if let Err(e) = self.store.release_lease(run, &self.owner).await {
                tracing::warn!(run = %run, error = %e, "cannot release the lease");
            }
        }
        result
    }

    /// Takes the run's lease: free, ours or expired — or held by a process
    /// of this host that is gone (killed, crashed), which is released on its
    /// behalf at once instead of after its ttl. Whether the lease is held.
    async fn take_lease(&self, run: &RunId) -> Result<bool, EngineError> {
        if self
            .store
            .acquire_lease(run, &self.owner, self.lease_ttl)
            .await?
        {
            return Ok(true);
        }
        let now = self.store.get_run(run).await?;
        let Some(holder) = now.summary.lease_owner else {
            return Ok(false);
        };
        if !lease::gone_from_this_host(&holder, &self.owner) {
            return Ok(false);
        }
        // Only the dead holder's lease is released (the store checks the
        // owner), so of two resumes racing here one acquires it.
        self.store.release_lease(run, &holder).await?;
        Ok(self
            .store
            .acquire_lease(run, &self.owner, self.lease_ttl)
            .await?)
    }

    fn report(&self, p: &Progress<'_>) {
        // Inside the run's span: the lines carry the run id.
        match p {
            Progress::Interrupted(items) => {
                tracing::info!(items = %items.join(","), "items interrupted by a stop")
            }
            Progress::Waiting { item, .. } => {
                tracing::info!(item = %item.id, "item waiting for a person")
            }
            Progress::Finished { item, status, .. } => {
                tracing::info!(item = %item.id, status = %status, "item finished")
            }
            Progress::Run(status) => tracing::info!(status = %status, "run status"),
            Progress::Note { item, kind, .. } => tracing::debug!(item = %item.id, kind, "note"),
            Progress::Watch { kind, data } => {
                let incident = data["incident"].as_str().unwrap_or_default();
                tracing::info!(kind, incident, "watch window")
            }
            Progress::GateHeld { phase, items } => {
                tracing::warn!(phase, items = %items.join(","), "phase gate held the run")
            }
        }
        if let Some(o) = &self.observer {
            o(p);
        }
    }

    async fn set_status(&self, ctx: &Ctx<'_>, status: RunStatus) -> Result<(), EngineError> {
        self.store
            .set_run_status(ctx.run, &self.owner, status)
            .await?;
        self.report(&Progress::Run(status));
        Ok(())
    }

    async fn drive_held(
        &self,
        ctx: &Ctx<'_>,
        status: RunStatus,
        resuming: bool,
    ) -> Result<RunStatus, EngineError> {
        if resuming {
            // Boxed: large futures, and a thread's stack is not.
            Box::pin(self.reattach(ctx)).await?;
            let ids = self.store.mark_interrupted(ctx.run, &self.owner).await?;
            if !ids.is_empty() {
                self.report(&Progress::Interrupted(&ids));
            }
        }
        let states: HashMap<String, ItemState> = self
            .store
            .item_states(ctx.run)
            .await?
            .into_iter()
            .map(|s| (s.item_id.clone(), s))
            .collect();
        if status == RunStatus::RollingBack {
            return self.rollback(ctx, &states).await;
        }
        self.set_status(ctx, RunStatus::Running).await?;
        let mut critical_failed = false;
        let items: Vec<(&Phase, &Item)> = ctx.plan.items().collect();
        // The items of the current phase that failed and that its gate
        // names (checks, approvals): the run does not leave the phase then.
        let mut held: Vec<&str> = Vec::new();
        for (n, &(phase, item)) in items.iter().enumerate() {
            self.check_stop(ctx)?;
            // An item started with the previous one's finish had this check
            // made just before (`finish_then`); nothing happened since.
            if !self.was_started(ctx, item)
                && let Some((by, reason)) = self.requested(ctx, false).await?
            {
                return self.requested_rollback(ctx, &states, &by, reason).await;
            }
            let last_of_phase = items
                .get(n + 1)
                .is_none_or(|(p, _)| !std::ptr::eq(*p, phase));
            let gated = phase.gate.checks || phase.gate.approvals;
            // The next item, if settling it would start it at once: its start
            // may then be journaled with this item's finish. Not across a
            // gate: the gate is judged between the two.
            let next = items
                .get(n + 1)
                .map(|(_, next)| *next)
                .filter(|_| !(last_of_phase && gated))
                .filter(|next| starts_at_once(next, states.get(next.id.as_str())));
            let outcome = match self
                .settle(ctx, item, states.get(item.id.as_str()), next)
                .await
            {
                Err(EngineError::RollbackRequested { by, reason, .. }) => {
                    self.abandon(ctx, item, &by, reason.as_deref()).await?;
                    return self.requested_rollback(ctx, &states, &by, reason).await;
                }
                other => other?,
            };
            if outcome == Some(Outcome::Failed) && gate_names(&phase.gate, item) {
                held.push(item.id.as_str());
            }
            if outcome != Some(Outcome::Failed) {
                if last_of_phase && self.leave_phase(ctx, phase, &held).await? {
                    return Ok(RunStatus::Failed);
                }
                continue;
            }
            match item.on_failure {
                OnFailure::Stop => {
                    self.set_status(ctx, RunStatus::Failed).await?;
                    return Ok(RunStatus::Failed);
                }
                OnFailure::Continue => {
                    critical_failed |= item.critical;
                    if last_of_phase && self.leave_phase(ctx, phase, &held).await? {
                        return Ok(RunStatus::Failed);
                    }
                }
                OnFailure::Rollback => {
                    let event = golive_store::NewEvent {
                        kind: ROLLBACK_TRIGGERED.into(),
                        item_id: Some(item.id.to_string()),
                        data: json!({
                            "by": "golive",
                            "item": item.id.as_str(),
                            "reason": format!("`{}` failed (on_failure: rollback)", item.id),
                        }),
                    };
                    self.store
                        .append_event(ctx.run, &self.owner, &event)
                        .await?;
                    return self.rollback(ctx, &states).await;
                }
            }
        }
        let end = if critical_failed {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        if let Some(monitor) = watched(ctx.plan) {
            match self.watch(ctx, monitor, monitor::Serving::New).await {
                Err(EngineError::RollbackRequested { by, reason, .. }) => {
                    return self.requested_rollback(ctx, &states, &by, reason).await;
                }
                other => other?,
            }
        }
        self.set_status(ctx, end).await?;
        Ok(end)
    }

    /// On resume, before anything is marked interrupted: each `run` item
    /// found `running` whose command this host supervised is settled from
    /// its supervisor's record (see [`supervise`]): a result recorded while
    /// golive was away is the item's result; a command still running is
    /// waited for; a command that never started runs now (once). Only an
    /// item whose outcome is truly unknown is left `running`, to be marked
    /// interrupted and follow its `on_interrupt`. Each finding is journaled
    /// as a `run.reattached` event.
    async fn reattach(&self, ctx: &Ctx<'_>) -> Result<(), EngineError> {
        let Some(sup) = &self.supervisor else {
            return Ok(());
        };
        let running: Vec<ItemState> = self
            .store
            .item_states(ctx.run)
            .await?
            .into_iter()
            .filter(|s| s.status == ItemStatus::Running)
            .collect();
        if running.is_empty() {
            return Ok(());
        }
        // Who started each item last: the records are on that host.
        let mut starters: HashMap<String, String> = HashMap::new();
        for e in self.store.events_after(ctx.run, 0, u32::MAX).await? {
            if let (golive_store::kind::ITEM_STARTED, Some(item), Some(actor)) =
                (e.kind.as_str(), e.item_id, e.actor)
            {
                starters.insert(item, actor);
            }
        }
        let here = lease::host_of(&self.owner);
        for state in running {
            let starter = starters.get(&state.item_id).map(String::as_str);
            if here.is_none() || starter.and_then(lease::host_of) != here {
                continue;
            }
            let Some(item) = ctx
                .plan
                .items()
                .map(|(_, i)| i)
                .chain(ctx.plan.rollback.items.iter())
                .find(|i| i.id.as_str() == state.item_id)
            else {
                continue;
            };
            let ItemKind::Run(r) = &item.kind else {
                continue;
            };
            let record = sup.record(ctx.run.as_str(), item.id.as_str(), state.attempts);
            let found = self
                .guarded(ctx, async {
                    Ok(supervise::reattach(&record, self.poll).await)
                })
                .await?;
            let (first, data) = match &found {
                supervise::Found::NeverStarted => (1, json!({ "found": "never-started" })),
                supervise::Found::Finished(rec) => (
                    rec.attempt + 1,
                    json!({ "found": "finished", "attempt": rec.attempt }),
                ),
                supervise::Found::Unknown(why) => (0, json!({ "found": "unknown", "why": why })),
            };
            let event = golive_store::NewEvent {
                kind: REATTACHED.into(),
                item_id: Some(item.id.to_string()),
                data,
            };
            self.store
                .append_event(ctx.run, &self.owner, &event)
                .await?;
            let recorded = match found {
                supervise::Found::Unknown(_) => continue,
                // A failed attempt with retries left: the retries go on.
                supervise::Found::Finished(rec) => rec.result.and_then(|a| {
                    let outcome = if a.passed() {
                        Outcome::Passed
                    } else {
                        Outcome::Failed
                    };
                    (a.passed() || rec.attempt > r.retries)
                        .then(|| (outcome, a.result(r, rec.attempt)))
                }),
                supervise::Found::NeverStarted => None,
            };
            let (outcome, result) = match recorded {
                Some(done) => done,
                None => {
                    Box::pin(items::command::run(
                        &Host::new(self, ctx),
                        item,
                        r,
                        state.attempts,
                        first,
                    ))
                    .await?
                }
            };
            self.finish(ctx, item, outcome, &result).await?;
        }
        Ok(())
    }

    /// Runs the rollback items in order, each whatever the others did; the
    /// run is rolled back when all of them passed (or were skipped), failed
    /// otherwise.
    async fn rollback(
        &self,
        ctx: &Ctx<'_>,
        states: &HashMap<String, ItemState>,
    ) -> Result<RunStatus, EngineError> {
        ctx.rolling_back.store(true, Ordering::SeqCst);
        self.set_status(ctx, RunStatus::RollingBack).await?;
        let mut failed = false;
        for item in &ctx.plan.rollback.items {
            self.check_stop(ctx)?;
            let outcome = self
                .settle(ctx, item, states.get(item.id.as_str()), None)
                .await?;
            failed |= outcome == Some(Outcome::Failed);
        }
        if let Some(monitor) = watched(ctx.plan) {
            self.watch(ctx, monitor, monitor::Serving::Previous).await?;
        }
        let end = if failed {
            RunStatus::Failed
        } else {
            RunStatus::RolledBack
        };
        self.set_status(ctx, end).await?;
        Ok(end)
    }

    /// Journals who asked for the rollback and why, then rolls back.
    async fn requested_rollback(
        &self,
        ctx: &Ctx<'_>,
        states: &HashMap<String, ItemState>,
        by: &str,
        reason: Option<String>,
    ) -> Result<RunStatus, EngineError> {
        let event = golive_store::NewEvent {
            kind: ROLLBACK_REQUESTED.into(),
            item_id: None,
            data: json!({ "by": by, "reason": reason }),
        };
        self.store
            .append_event(ctx.run, &self.owner, &event)
            .await?;
        self.rollback(ctx, states).await
    }

    /// The item under way when a rollback was requested ends skipped.
    async fn abandon(
        &self,
        ctx: &Ctx<'_>,
        item: &Item,
        by: &str,
        reason: Option<&str>,
    ) -> Result<(), EngineError> {
        let result = json!({ "skipped": "rollback requested", "by": by, "reason": reason });
        match self.finish(ctx, item, Outcome::Skipped, &result).await {
            // It had not started (or already ended): nothing to abandon.
            Err(EngineError::Store(StoreError::Conflict(_))) => Ok(()),
            other => other,
        }
    }

    /// A rollback request not yet acted on: who asked and why. Between
    /// items (`force` false) the store is asked at most once per poll
    /// interval, so fast items do not pay a read each.
    async fn requested(
        &self,
        ctx: &Ctx<'_>,
        force: bool,
    ) -> Result<Option<(String, Option<String>)>, EngineError> {
        if ctx.rolling_back.load(Ordering::SeqCst) {
            return Ok(None);
        }
        if !force {
            let now = Instant::now();
            let mut last = ctx
                .last_request_check
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| now.duration_since(t) < self.poll) {
                return Ok(None);
            }
            *last = Some(now);
        }
        Ok(rollback_request(&*self.store, ctx.run)
            .await?
            .map(|r| (r.by, r.reason)))
    }

    /// The stop signal's number, once it is set.
    fn stop_signal(&self) -> Option<i32> {
        self.stop.as_ref().and_then(|rx| *rx.borrow())
    }

    /// Fails with [`EngineError::Stopped`] once the stop signal is set.
    fn check_stop(&self, ctx: &Ctx<'_>) -> Result<(), EngineError> {
        match self.stop_signal() {
            Some(signal) => Err(EngineError::Stopped {
                run: ctx.run.clone(),
                signal,
            }),
            None => Ok(()),
        }
    }

    /// Runs `work` unless the stop signal comes first, in which case `work`
    /// is dropped (a command's process group with it). Only an item's own
    /// work goes through here, never a journal write, so no write is cut
    /// short.
    pub(crate) async fn guarded<T>(
        &self,
        ctx: &Ctx<'_>,
        work: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        self.check_stop(ctx)?;
        let Some(rx) = &self.stop else {
            return work.await;
        };
        let mut rx = rx.clone();
        let stopped = async move {
            loop {
                if let Some(signal) = *rx.borrow_and_update() {
                    return signal;
                }
                if rx.changed().await.is_err() {
                    // The sender is gone: no stop can come any more.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            biased;
            signal = stopped => Err(EngineError::Stopped { run: ctx.run.clone(), signal }),
            r = work => r,
        }
    }

    /// Brings one item to a finished state, given its state when the run was
    /// (re)started; `None` means nothing to judge (it cannot happen today but
    /// keeps an unknown item from stopping a run). `next`: the item the run
    /// goes on with, which [`Engine::finish_then`] may start with this
    /// item's finish.
    async fn settle(
        &self,
        ctx: &Ctx<'_>,
        item: &Item,
        state: Option<&ItemState>,
        next: Option<&Item>,
    ) -> Result<Option<Outcome>, EngineError> {
        let Some(state) = state else {
            return Ok(None);
        };
        let waits_for_people = matches!(item.kind, ItemKind::Task(_) | ItemKind::Approval(_));
        match state.status {
            ItemStatus::Passed => Ok(Some(Outcome::Passed)),
            ItemStatus::Skipped => Ok(Some(Outcome::Skipped)),
            // Finished before a crash that came before its policy was applied.
            ItemStatus::Failed => Ok(Some(Outcome::Failed)),
            ItemStatus::Interrupted => match item.on_interrupt {
                OnInterrupt::Skip => {
                    let result = json!({ "skipped": "interrupted; on_interrupt: skip" });
                    self.finish(ctx, item, Outcome::Skipped, &result).await?;
                    Ok(Some(Outcome::Skipped))
                }
                // Re-reading a recorded confirmation or signature is harmless.
                OnInterrupt::Ask if !waits_for_people => self.ask(ctx, item, next).await.map(Some),
                _ => self.execute_item(ctx, item, next).await.map(Some),
            },
            // A waiting item of a kind that does not wait for people was
            // asking whether to rerun it when the engine stopped.
            ItemStatus::Waiting if !waits_for_people => self.ask(ctx, item, next).await.map(Some),
            ItemStatus::Pending | ItemStatus::Waiting | ItemStatus::Running => {
                self.execute_item(ctx, item, next).await.map(Some)
            }
        }
    }

    /// `on_interrupt: ask`: waits for `golive confirm` (rerun) or
    /// `golive confirm --skip` (skip).
    async fn ask(
        &self,
        ctx: &Ctx<'_>,
        item: &Item,
        next: Option<&Item>,
    ) -> Result<Outcome, EngineError> {
        let detail = json!({
            "awaiting": "decision",
            "reason": "interrupted while running; on_interrupt: ask",
            "how": format!(
                "golive confirm {} {} --by NAME to run it again, or add --skip --reason TEXT to skip it",
                ctx.run, item.id
            ),
        });
        self.wait_for(ctx, item, &detail).await?;
        let confirmation = loop {
            if let Some(c) = self.store.confirmation(ctx.run, item.id.as_str()).await? {
                break c;
            }
            self.tick(ctx).await?;
        };
        if confirmation.skipped {
            let result = json!({
                "skipped": "interrupted; skipped on request",
                "by": confirmation.by,
                "reason": confirmation.reason,
            });
            self.finish(ctx, item, Outcome::Skipped, &result).await?;
            return Ok(Outcome::Skipped);
        }
        self.execute_item(ctx, item, next).await
    }

    /// Runs one item from pending, waiting or interrupted to finished;
    /// `next` as for [`Engine::settle`].
    async fn execute_item(
        &self,
        ctx: &Ctx<'_>,
        item: &Item,
        next: Option<&Item>,
    ) -> Result<Outcome, EngineError> {
        let host = Host::new(self, ctx);
        match &item.kind {
            ItemKind::Task(task) => items::person::task(&host, item, task).await,
            ItemKind::Approval(a) => items::person::approval(&host, item, a).await,
            kind => {
                let started = match self.take_started(ctx, item) {
                    Some(started) => started,
                    None => {
                        self.store
                            .start_item(ctx.run, item.id.as_str(), &self.owner)
                            .await?
                    }
                };
                let (outcome, result) = match kind {
                    ItemKind::Run(r) => {
                        Box::pin(items::command::run(&host, item, r, started.attempts, 1)).await?
                    }
                    ItemKind::Check(c) => {
                        host.guarded(async { Ok(items::check::run(c, ctx.vars).await) })
                            .await?
                    }
                    ItemKind::Wait(w) => items::wait::run(&host, w).await?,
                    ItemKind::Notify(n) => items::notify::run(&host, item, n).await?,
                    ItemKind::Flag(f) => items::flag::run(&host, item, f).await?,
                    // Boxed: a rollout's future is large, and a worker thread's stack is not.
                    ItemKind::Rollout(r) => Box::pin(items::rollout::run(&host, item, r)).await?,
                    // Answered by people, above.
                    ItemKind::Task(_) | ItemKind::Approval(_) => items::not_here(kind),
                };
                self.finish_then(ctx, item, outcome, &result, next).await?;
                Ok(outcome)
            }
        }
    }

    /// Records the item's end, and starts `next` in the same transaction
    /// when the run goes on with it at once — so one commit instead of two
    /// (on PostgreSQL one statement): see [`Store::finish_and_start`].
    ///
    /// Fused only when nothing else would come between the two: the item
    /// did not stop the run (a failure with `on_failure: continue` does
    /// not), no stop signal is set, and no rollback was asked for — the
    /// checks the loop makes before each item, made here instead, before
    /// the start is journaled. Otherwise, or should the store refuse the
    /// pair (a conflict or an unknown item, when nothing is written), the
    /// finish is recorded alone, as it would have been.
    async fn finish_then(
        &self,
        ctx: &Ctx<'_>,
        item: &Item,
        outcome: Outcome,
        result: &Value,
        next: Option<&Item>,
    ) -> Result<(), EngineError> {
        let goes_on = outcome != Outcome::Failed || item.on_failure == OnFailure::Continue;
        let Some(next) = next.filter(|_| goes_on && self.stop_signal().is_none()) else {
            return self.finish(ctx, item, outcome, result).await;
        };
        if !matches!(self.requested(ctx, false).await, Ok(None)) {
            // A request (or a failure to read one): the loop looks again,
            // and acts on it, once this finish is recorded alone.
            *ctx.last_request_check
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
            return self.finish(ctx, item, outcome, result).await;
        }
        let fused = self
            .store
            .finish_and_start(
                ctx.run,
                item.id.as_str(),
                &self.owner,
                outcome,
                result,
                next.id.as_str(),
            )
            .await;
        let started = match fused {
            Ok((_, started)) => started,
            // Nothing was written: the finish alone says what is wrong, if
            // anything, and the next item starts on its own.
            Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {
                return self.finish(ctx, item, outcome, result).await;
            }
            Err(e) => return Err(e.into()),
        };
        *ctx.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        self.report(&Progress::Finished {
            item,
            status: outcome.into(),
            result,
        });
        Ok(())
    }

    /// Whether `item` was started with the previous item's finish.
    fn was_started(&self, ctx: &Ctx<'_>, item: &Item) -> bool {
        ctx.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|s| s.item_id == item.id.as_str())
    }

    /// `item`'s state as started with the previous item's finish, if it was.
    fn take_started(&self, ctx: &Ctx<'_>, item: &Item) -> Option<ItemState> {
        ctx.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_if(|s| s.item_id == item.id.as_str())
    }

    /// The end of `phase`: with a gate item of it failed (`held`, items
    /// whose failure the plan let the run go on from), the run does not
    /// leave it: the gate is journaled ([`GATE_HELD`]) and the run fails,
    /// as an item failing with `on_failure: stop` does; `true` then.
    async fn leave_phase(
        &self,
        ctx: &Ctx<'_>,
        phase: &Phase,
        held: &[&str],
    ) -> Result<bool, EngineError> {
        if held.is_empty() {
            return Ok(false);
        }
        let event = golive_store::NewEvent {
            kind: GATE_HELD.into(),
            item_id: None,
            data: json!({
                "phase": phase.title,
                "items": held,
                "checks": phase.gate.checks,
                "approvals": phase.gate.approvals,
            }),
        };
        self.store
            .append_event(ctx.run, &self.owner, &event)
            .await?;
        self.report(&Progress::GateHeld {
            phase: &phase.title,
            items: held,
        });
        self.set_status(ctx, RunStatus::Failed).await?;
        Ok(true)
    }

    /// Records the item's end and reports it.
    async fn finish(
        &self,
        ctx: &Ctx<'_>,
        item: &Item,
        outcome: Outcome,
        result: &Value,
    ) -> Result<(), EngineError> {
        self.store
            .finish_item(ctx.run, item.id.as_str(), &self.owner, outcome, result)
            .await?;
        self.report(&Progress::Finished {
            item,
            status: outcome.into(),
            result,
        });
        Ok(())
    }

    /// Marks the item waiting (once) and reports it.
    async fn wait_for(
        &self,
        ctx: &Ctx<'_>,
        item: &Item,
        detail: &Value,
    ) -> Result<(), EngineError> {
        self.store
            .set_item_waiting(ctx.run, item.id.as_str(), &self.owner, detail)
            .await?;
        self.report(&Progress::Waiting { item, detail });
        Ok(())
    }

    /// One poll interval; fails once the lease is lost, so a run that was
    /// taken over stops waiting instead of waiting forever.
    async fn tick(&self, ctx: &Ctx<'_>) -> Result<(), EngineError> {
        self.guarded(ctx, async {
            tokio::time::sleep(self.poll).await;
            Ok(())
        })
        .await?;
        self.check(ctx).await
    }

    /// Fails once the lease is lost, or with
    /// [`EngineError::RollbackRequested`] once a rollback was asked for.
    async fn check(&self, ctx: &Ctx<'_>) -> Result<(), EngineError> {
        if *ctx.lost.borrow() {
            return Err(EngineError::LeaseLost {
                run: ctx.run.clone(),
            });
        }
        if let Some((by, reason)) = self.requested(ctx, true).await? {
            return Err(EngineError::RollbackRequested {
                run: ctx.run.clone(),
                by,
                reason,
            });
        }
        Ok(())
    }
}
