//! One module per item kind; each turns an item into an outcome and the
//! result stored with it, through a [`Host`]: the part of the engine an
//! item may use.

pub(crate) mod check;
pub(crate) mod command;
pub(crate) mod flag;
pub(crate) mod notify;
pub(crate) mod person;
pub mod rollout;
pub(crate) mod wait;

use std::future::Future;
use std::time::Duration;

use golive_plan::{Item, ItemKind, Plan};
use golive_runtime::Vars;
use golive_store::{ItemState, NewEvent, Outcome, RunId, Store};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Ctx, Engine, EngineError, Progress, supervise::Supervisor};

/// What an item module sees of the engine while its item runs: the run's
/// plan, variables and t0; the store, written only under the engine's
/// lease; and the waits of the run loop, which end on a stop signal, a
/// lost lease or a rollback request. Not the run loop's own state (the
/// phase, the fused start, the rollback's progress), nor the lease.
pub(crate) struct Host<'a, S> {
    engine: &'a Engine<S>,
    ctx: &'a Ctx<'a>,
}

// By hand: a derive would ask for `S: Clone`.
impl<S> Clone for Host<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Host<'_, S> {}

impl<'a, S: Store + 'static> Host<'a, S> {
    pub(crate) fn new(engine: &'a Engine<S>, ctx: &'a Ctx<'a>) -> Self {
        Host { engine, ctx }
    }

    pub(crate) fn run(&self) -> &'a RunId {
        self.ctx.run
    }

    pub(crate) fn plan(&self) -> &'a Plan {
        self.ctx.plan
    }

    pub(crate) fn vars(&self) -> &'a Vars {
        self.ctx.vars
    }

    /// The run's T-0, if it has one.
    pub(crate) fn t0(&self) -> Option<Timestamp> {
        self.ctx.t0
    }

    /// `--var` overrides, the stored ones merged with this command's.
    pub(crate) fn overrides(&self) -> &'a [(String, String)] {
        self.ctx.overrides
    }

    /// For reads, and for writes that take the lease owner or an actor.
    pub(crate) fn store(&self) -> &'a S {
        &self.engine.store
    }

    /// The lease owner the engine writes as.
    pub(crate) fn owner(&self) -> &'a str {
        &self.engine.owner
    }

    /// How often the run loop looks at the store while it waits.
    pub(crate) fn poll(&self) -> Duration {
        self.engine.poll
    }

    /// The supervisor commands run under, when the process installed one.
    pub(crate) fn supervisor(&self) -> Option<&'a Supervisor> {
        self.engine.supervisor.as_ref()
    }

    pub(crate) fn report(&self, p: &Progress<'_>) {
        self.engine.report(p);
    }

    /// Journals an event of the run, under `item` if it has one.
    pub(crate) async fn journal(
        &self,
        item: Option<&Item>,
        kind: &str,
        data: Value,
    ) -> Result<(), EngineError> {
        let event = NewEvent {
            kind: kind.into(),
            item_id: item.map(|i| i.id.to_string()),
            data,
        };
        self.store()
            .append_event(self.run(), self.owner(), &event)
            .await?;
        Ok(())
    }

    /// Moves the item to `running` (people's items start once answered).
    pub(crate) async fn start(&self, item: &Item) -> Result<ItemState, EngineError> {
        Ok(self
            .store()
            .start_item(self.run(), item.id.as_str(), self.owner())
            .await?)
    }

    // The waits below hand out the engine's own futures rather than wrap
    // them in `async fn`s: each wrapping layer would hold its argument
    // beside the inner future, and a rollout's or a command's future is
    // large enough that the doubled size overflows a worker's stack.

    /// Records the item's outcome (people's items, which finish alone).
    pub(crate) fn finish(
        &self,
        item: &Item,
        outcome: Outcome,
        result: &Value,
    ) -> impl Future<Output = Result<(), EngineError>> {
        self.engine.finish(self.ctx, item, outcome, result)
    }

    /// Marks the item waiting for a person, with what it waits for.
    pub(crate) fn wait_for(
        &self,
        item: &Item,
        detail: &Value,
    ) -> impl Future<Output = Result<(), EngineError>> {
        self.engine.wait_for(self.ctx, item, detail)
    }

    /// Waits one poll interval, then [`Host::check`]s.
    pub(crate) fn tick(&self) -> impl Future<Output = Result<(), EngineError>> {
        self.engine.tick(self.ctx)
    }

    /// Fails once the lease is lost or a rollback was asked for.
    pub(crate) fn check(&self) -> impl Future<Output = Result<(), EngineError>> {
        self.engine.check(self.ctx)
    }

    /// Runs `work` unless a stop signal ends it first.
    pub(crate) fn guarded<T, W>(&self, work: W) -> impl Future<Output = Result<T, EngineError>>
    where
        W: Future<Output = Result<T, EngineError>>,
    {
        self.engine.guarded(self.ctx, work)
    }

    /// Sleeps for `d` unless a stop signal ends it first.
    pub(crate) fn sleep(&self, d: Duration) -> impl Future<Output = Result<(), EngineError>> {
        self.guarded(async move {
            tokio::time::sleep(d).await;
            Ok(())
        })
    }
}

/// People's items reaching the arm that runs the machines' kinds: never
/// (`Engine::execute_item` answers them first), but failed rather than a
/// panic should that change; listing them keeps the kinds' match whole,
/// so a new kind must be given an arm.
pub(crate) fn not_here(kind: &ItemKind) -> (Outcome, Value) {
    (
        Outcome::Failed,
        json!({ "error": format!("a {} item is answered by people, not run", kind.name()) }),
    )
}
