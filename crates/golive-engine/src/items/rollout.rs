//! `rollout` items: move traffic to the canary step by step, judge every
//! step with the analysis, and fall back to the stable version by itself.
//!
//! Each step sets the canary's weight through the plan's actuator
//! (`golive_rollout::traffic`), then holds it for the step's pause while the
//! analyzer (`golive_rollout::analysis`) evaluates every `interval`. Every
//! weight set (`rollout.weight`) and every evaluation (`rollout.analysis`,
//! with the numbers that decided it) is journaled under the run's lease.
//!
//! # Decisions
//! - `continue`: the step goes on; after the pause, the next step.
//! - `fail`: the plan's rollback decision tree decides. The most severe
//!   level whose `when` holds on the canary's values acts (`rollback`,
//!   `rollback-after: D`, `pause`, `freeze`, `disable-flag: KEY`, `notify:
//!   CHANNEL`, `continue`); with no level, or none that holds, the rollout
//!   rolls back now.
//! - `inconclusive` five evaluations in a row (no data, a source down):
//!   the rollout pauses and asks a person instead of guessing.
//!
//! Rolling back sets the canary's weight to 0 and fails the item (its
//! `on_failure` decides whether the plan's rollback items run). An
//! actuator failure is itself a reason to roll back.
//!
//! # People
//! `golive promote` ends the current pause (a manual one, or a held step),
//! `golive pause` holds the rollout where it is (analysis goes on),
//! `golive resume` lets it go on, `golive abort` rolls it back; each is a
//! lease-free request in the store, numbered so that it can be repeated
//! (`promote:1`, `promote:2`, …), and journaled with who and why. `golive
//! rollback` stops the rollout too, after setting the canary's weight to 0.
//!
//! # Crashes
//! A resumed rollout first sets again the last weight it journaled, then
//! carries on from that step (its pause starts over): traffic never jumps
//! silently to a weight nobody recorded.

use std::time::{Duration, Instant};

use golive_plan::cond::{Condition, Literal};
use golive_plan::{Action, Item, Pause, Rollout};
use golive_rollout::analysis::{Analyzer, Decision, Evaluation};
use golive_rollout::traffic::Actuator;
use golive_store::{Actor, NewEvent, Outcome, Request, Store};
use serde_json::{Value, json};

use crate::{Ctx, Engine, EngineError};

/// The journal's event kinds for rollouts.
pub mod event {
    /// A weight was set: `{step, weight, stable, detail}`.
    pub const WEIGHT: &str = "rollout.weight";
    /// An evaluation: `{step, weight, evaluation}`.
    pub const ANALYSIS: &str = "rollout.analysis";
    /// A decision of the rollback tree, or a person's request acted on.
    pub const DECISION: &str = "rollout.decision";
    /// A promote request was used: `{n}`.
    pub const PROMOTED: &str = "rollout.promoted";
}

/// Request kinds (numbered: `promote:1`, `pause:2`, …; `abort` once).
pub mod request {
    /// Ends the current pause.
    pub const PROMOTE: &str = "promote";
    /// Holds the rollout.
    pub const PAUSE: &str = "pause";
    /// Lets a held rollout go on.
    pub const RESUME: &str = "resume";
    /// Rolls the rollout back.
    pub const ABORT: &str = "abort";
}

/// Inconclusive evaluations in a row before a person is asked.
const INCONCLUSIVE_LIMIT: u32 = 5;

/// How a step ended.
enum StepEnd {
    /// On to the next step.
    Next,
    /// Roll back now, because of this.
    Rollback(String),
    /// Stop moving traffic, leave it as it is (irreversible migrations).
    Freeze(String),
}

/// What people asked, read from the store's requests.
#[derive(Default)]
struct Asked {
    promotes: usize,
    paused: bool,
    abort: Option<Request>,
}

fn asked(requests: &[Request]) -> Asked {
    let count = |kind: &str| {
        requests
            .iter()
            .filter(|r| r.kind.split(':').next() == Some(kind))
            .count()
    };
    Asked {
        promotes: count(request::PROMOTE),
        paused: count(request::PAUSE) > count(request::RESUME),
        abort: requests.iter().find(|r| r.kind == request::ABORT).cloned(),
    }
}

struct Rolling<'a, S: Store + 'static> {
    engine: &'a Engine<S>,
    ctx: &'a Ctx<'a>,
    item: &'a Item,
    rollout: &'a Rollout,
    actuator: Actuator,
    analyzer: Analyzer,
    actor: Actor,
    /// Promote requests already used.
    promotes_used: usize,
    step: usize,
    weight: u8,
}

/// Runs the rollout to its end; the outcome and the stored result.
pub(crate) async fn run<S: Store + 'static>(
    engine: &Engine<S>,
    ctx: &Ctx<'_>,
    item: &Item,
    rollout: &Rollout,
) -> Result<(Outcome, Value), EngineError> {
    let actuator = match Actuator::from_plan(&rollout.traffic, ctx.vars) {
        Ok(a) => a,
        Err(e) => return Ok(failed(&format!("traffic: {e}"), json!({}))),
    };
    let analyzer = match Analyzer::new(&rollout.analysis, ctx.vars) {
        Ok(a) => a,
        Err(e) => return Ok(failed(&format!("analysis: {e}"), json!({}))),
    };
    // Where a previous process left it: the last weight journaled, and the
    // promotes it already used.
    let events = engine.store.events_after(ctx.run, 0, u32::MAX).await?;
    let mine = |kind: &'static str| {
        events
            .iter()
            .filter(move |e| e.kind == kind && e.item_id.as_deref() == Some(item.id.as_str()))
    };
    let last = mine(event::WEIGHT).next_back().map(|e| {
        (
            e.data["step"].as_u64().unwrap_or(0) as usize,
            u8::try_from(e.data["weight"].as_u64().unwrap_or(0)).unwrap_or(0),
        )
    });
    let mut r = Rolling {
        engine,
        ctx,
        item,
        rollout,
        actuator,
        analyzer,
        actor: Actor {
            name: engine.owner.clone(),
            source: None,
        },
        promotes_used: mine(event::PROMOTED).count(),
        step: 0,
        weight: 0,
    };
    if let Some((step, weight)) = last {
        r.step = step;
        if let Err(why) = r
            .set(
                step,
                weight,
                "resumed: the weight last journaled, set again",
            )
            .await?
        {
            return r.roll_back(&why).await;
        }
    }
    // Just set again on resume: the step's own weight needs no second call.
    let mut reapplied = last.is_some();
    while r.step < rollout.steps.len() {
        let step = r.step;
        let target = rollout.steps[step].weight;
        if !(reapplied && target == r.weight) {
            if let Err(why) = r.set(step, target, "step").await? {
                return r.roll_back(&why).await;
            }
        }
        reapplied = false;
        r.analyzer.start_step();
        match r.hold(step).await? {
            StepEnd::Next => r.step += 1,
            StepEnd::Rollback(why) => return r.roll_back(&why).await,
            StepEnd::Freeze(why) => {
                let result = r.result(json!({ "frozen": true, "why": why }));
                return Ok((Outcome::Failed, result));
            }
        }
    }
    // Blue-green: the previous version stays ready for an instant switch
    // back while the analysis watches the new one, then it is retired.
    if let Some(keep) = rollout.keep_previous {
        match r.watch(keep).await? {
            None => {
                r.journal(
                    event::DECISION,
                    json!({ "action": "retire-previous", "why": format!("healthy for {}", golive_plan::time::format_duration(keep)) }),
                )
                .await?;
            }
            Some(StepEnd::Freeze(why)) => {
                return Ok((
                    Outcome::Failed,
                    r.result(json!({ "frozen": true, "why": why })),
                ));
            }
            Some(StepEnd::Rollback(why)) => return r.roll_back(&why).await,
            Some(StepEnd::Next) => {}
        }
    }
    Ok((Outcome::Passed, r.result(json!({ "completed": true }))))
}

fn failed(why: &str, extra: Value) -> (Outcome, Value) {
    let mut v = json!({ "error": why });
    if let (Some(map), Value::Object(more)) = (v.as_object_mut(), extra) {
        map.extend(more);
    }
    (Outcome::Failed, v)
}

impl<S: Store + 'static> Rolling<'_, S> {
    fn result(&self, extra: Value) -> Value {
        let mut v = json!({
            "strategy": format!("{:?}", self.rollout.strategy).to_lowercase(),
            "traffic": self.actuator.describe(),
            "step": self.step,
            "weight": self.weight,
        });
        if let (Some(map), Value::Object(more)) = (v.as_object_mut(), extra) {
            map.extend(more);
        }
        v
    }

    async fn journal(&self, kind: &str, data: Value) -> Result<(), EngineError> {
        if kind != event::ANALYSIS {
            self.engine.report(&crate::Progress::Note {
                item: self.item,
                kind,
                data: &data,
            });
        }
        self.engine
            .store
            .append_event(
                self.ctx.run,
                &self.engine.owner,
                &NewEvent {
                    kind: kind.into(),
                    item_id: Some(self.item.id.to_string()),
                    data,
                },
            )
            .await?;
        Ok(())
    }

    /// Sets the canary's weight and journals it; `Err(why)` inside when the
    /// actuator failed.
    async fn set(
        &mut self,
        step: usize,
        weight: u8,
        why: &str,
    ) -> Result<Result<(), String>, EngineError> {
        let applied = self
            .engine
            .guarded(self.ctx, async {
                Ok(self
                    .actuator
                    .set_weight(&*self.engine.store, weight, &self.actor)
                    .await)
            })
            .await?;
        match applied {
            Ok(a) => {
                self.weight = weight;
                self.journal(
                    event::WEIGHT,
                    json!({ "step": step, "weight": a.canary, "stable": a.stable, "why": why, "detail": a.detail }),
                )
                .await?;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(format!("the traffic actuator failed: {e}"))),
        }
    }

    /// Canary back to 0 and the item failed, with why.
    async fn roll_back(&mut self, why: &str) -> Result<(Outcome, Value), EngineError> {
        self.journal(event::DECISION, json!({ "action": "rollback", "why": why }))
            .await?;
        let step = self.step;
        let reset = match self.set(step, 0, "rollback").await? {
            Ok(()) => Value::Bool(true),
            Err(e) => Value::String(e),
        };
        let result = self.result(json!({ "rolled_back": true, "traffic_reset": reset }));
        Ok(failed(why, result))
    }

    /// The requests as they stand.
    async fn asked(&self) -> Result<Asked, EngineError> {
        Ok(asked(&self.engine.store.requests(self.ctx.run).await?))
    }

    /// Looks at the lease, a rollback request (the canary goes back to 0
    /// before the engine runs the plan's rollback items), and `abort`.
    async fn check(&mut self) -> Result<Option<StepEnd>, EngineError> {
        if let Err(e) = self.engine.check(self.ctx).await {
            if matches!(e, EngineError::RollbackRequested { .. }) {
                let step = self.step;
                let _ = self.set(step, 0, "rollback requested").await?;
            }
            return Err(e);
        }
        let asked = self.asked().await?;
        if let Some(a) = asked.abort {
            let why = format!("aborted by {}: {}", a.by, a.reason.unwrap_or_default());
            return Ok(Some(StepEnd::Rollback(why)));
        }
        Ok(None)
    }

    /// A promote request not used yet: use it.
    async fn take_promote(&mut self) -> Result<bool, EngineError> {
        let asked = self.asked().await?;
        if asked.promotes > self.promotes_used {
            self.promotes_used += 1;
            self.journal(
                event::PROMOTED,
                json!({ "n": self.promotes_used, "step": self.step }),
            )
            .await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Holds a step for its pause, analysing every interval.
    async fn hold(&mut self, step: usize) -> Result<StepEnd, EngineError> {
        let pause = self.rollout.steps[step].pause;
        let gated = !self.rollout.steps[step].approve.is_empty()
            || !self.rollout.steps[step].checks.is_empty();
        let started = Instant::now();
        let interval = self.analyzer.interval().max(Duration::from_millis(100));
        let mut inconclusive = 0u32;
        let mut waiting_for_person = matches!(pause, Pause::Manual) || gated;
        let mut announced = false;
        loop {
            if let Some(end) = self.check().await? {
                return Ok(end);
            }
            let held = self.asked().await?.paused;
            let evaluation = self.evaluate(step).await?;
            match &evaluation.decision {
                Decision::Continue => inconclusive = 0,
                Decision::Inconclusive { .. } => inconclusive += 1,
                Decision::Fail { why } => match self.decide(&evaluation, why).await? {
                    Some(end) => return Ok(end),
                    None => inconclusive = 0,
                },
            }
            if inconclusive >= INCONCLUSIVE_LIMIT && !waiting_for_person {
                self.journal(
                    event::DECISION,
                    json!({ "action": "pause", "why": "the analysis is inconclusive; a person decides: promote to go on, abort to roll back" }),
                )
                .await?;
                waiting_for_person = true;
            }
            if waiting_for_person && !announced {
                self.ask(&format!("step {step} holds until promoted"))
                    .await?;
                announced = true;
            }
            if self.take_promote().await? {
                return self.gate_checks(step).await;
            }
            let elapsed = started.elapsed();
            let done = match pause {
                Pause::None => !waiting_for_person,
                Pause::For(d) => elapsed >= d && !waiting_for_person,
                Pause::Manual => false,
            };
            if done && !held {
                return self.gate_checks(step).await;
            }
            self.sleep(interval).await?;
        }
    }

    /// The step's `checks` (check items of the plan, by id), run before the
    /// next step: one failing rolls back.
    async fn gate_checks(&mut self, step: usize) -> Result<StepEnd, EngineError> {
        for id in &self.rollout.steps[step].checks {
            let Some(golive_plan::ItemKind::Check(check)) = self
                .ctx
                .plan
                .items()
                .map(|(_, i)| i)
                .find(|i| i.id == *id)
                .map(|i| &i.kind)
            else {
                return Ok(StepEnd::Rollback(format!(
                    "step gate: no check item `{id}`"
                )));
            };
            let (outcome, result) = self
                .engine
                .guarded(self.ctx, async {
                    Ok(super::check::run(check, self.ctx.vars).await)
                })
                .await?;
            self.journal(
                event::DECISION,
                json!({ "action": "gate", "check": id.as_str(), "outcome": outcome, "result": result, "why": format!("step gate `{id}`") }),
            )
            .await?;
            if outcome != Outcome::Passed {
                return Ok(StepEnd::Rollback(format!("step gate: check `{id}` failed")));
            }
        }
        Ok(StepEnd::Next)
    }

    /// Keeps analysing for `d` after the last step; `Some` if the analysis
    /// (or a person) ends it early.
    async fn watch(&mut self, d: Duration) -> Result<Option<StepEnd>, EngineError> {
        let until = Instant::now() + d;
        let interval = self.analyzer.interval().max(Duration::from_millis(100));
        while Instant::now() < until {
            if let Some(end) = self.check().await? {
                return Ok(Some(end));
            }
            let step = self.step.saturating_sub(1);
            let evaluation = self.evaluate(step).await?;
            if let Decision::Fail { why } = &evaluation.decision {
                if let Some(end) = self.decide(&evaluation, why).await? {
                    return Ok(Some(end));
                }
            }
            self.sleep(interval).await?;
        }
        Ok(None)
    }

    async fn sleep(&self, d: Duration) -> Result<(), EngineError> {
        self.engine
            .guarded(self.ctx, async {
                tokio::time::sleep(d).await;
                Ok(())
            })
            .await
    }

    async fn evaluate(&mut self, step: usize) -> Result<Evaluation, EngineError> {
        let evaluation = self
            .engine
            .guarded(self.ctx, async {
                Ok(self.analyzer.evaluate(Instant::now()).await)
            })
            .await?;
        let data = serde_json::to_value(&evaluation).unwrap_or(Value::Null);
        self.journal(
            event::ANALYSIS,
            json!({ "step": step, "weight": self.weight, "evaluation": data }),
        )
        .await?;
        Ok(evaluation)
    }

    /// The rollback decision tree: the most severe level whose `when`
    /// holds acts; `None` when the rollout goes on.
    async fn decide(
        &mut self,
        evaluation: &Evaluation,
        why: &str,
    ) -> Result<Option<StepEnd>, EngineError> {
        let canary = |metric: &str| evaluation.values.get(metric).and_then(|v| v.canary);
        let ctx = self.ctx;
        let level = ctx.plan.rollback.levels.iter().rev().find(|l| {
            l.when
                .iter()
                .any(|c| canary(&c.subject.path).is_some_and(|v| holds(c, v)))
        });
        let Some(level) = level else {
            return Ok(Some(StepEnd::Rollback(why.to_string())));
        };
        self.journal(
            event::DECISION,
            json!({ "level": level.name, "why": why, "actions": format!("{:?}", level.actions) }),
        )
        .await?;
        for action in &level.actions {
            match action {
                Action::Rollback => {
                    return Ok(Some(StepEnd::Rollback(format!("{}: {why}", level.name))));
                }
                Action::Freeze => {
                    return Ok(Some(StepEnd::Freeze(format!("{}: {why}", level.name))));
                }
                Action::Continue => {}
                Action::Notify(channel) => {
                    self.engine
                        .store
                        .append_event(
                            self.ctx.run,
                            &self.engine.owner,
                            &NewEvent {
                                kind: "notify.sent".into(),
                                item_id: Some(self.item.id.to_string()),
                                data: json!({ "channel": channel, "message": format!("{}: {why}", level.name), "delivered": "log" }),
                            },
                        )
                        .await?;
                }
                Action::DisableFlag(key) => {
                    let outcome = match key.parse() {
                        Ok(k) => golive_rollout::traffic::flagstore::upsert(
                            &*self.engine.store,
                            &k,
                            &json!({ "enabled": false }),
                            None,
                            false,
                            &self.actor,
                            Some(&format!("{}: {why}", level.name)),
                        )
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                        Err(e) => Err(format!("{e}")),
                    };
                    self.journal(
                        event::DECISION,
                        json!({ "action": "disable-flag", "flag": key, "error": outcome.err() }),
                    )
                    .await?;
                }
                Action::Pause => {
                    if let Some(end) = self
                        .wait_for_person(&format!("{}: {why}", level.name))
                        .await?
                    {
                        return Ok(Some(end));
                    }
                }
                Action::RollbackAfter(text) => {
                    let grace = golive_plan::time::parse_duration(text).unwrap_or(Duration::ZERO);
                    if let Some(end) = self.recover_within(grace, &level.name, why).await? {
                        return Ok(Some(end));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Shows the item as waiting for a person (`golive status` says who
    /// and how), while the rollout itself goes on running.
    async fn ask(&self, why: &str) -> Result<(), EngineError> {
        let run = self.ctx.run;
        let detail = json!({
            "awaiting": "promote",
            "why": why,
            "step": self.step,
            "weight": self.weight,
            "how": format!("golive promote {run} (or golive abort {run} --reason TEXT)"),
        });
        self.engine.wait_for(self.ctx, self.item, &detail).await?;
        self.engine
            .store
            .start_item(run, self.item.id.as_str(), &self.engine.owner)
            .await?;
        Ok(())
    }

    /// Holds the rollout until a person promotes (go on) or aborts.
    async fn wait_for_person(&mut self, why: &str) -> Result<Option<StepEnd>, EngineError> {
        self.ask(why).await?;
        loop {
            if let Some(end) = self.check().await? {
                return Ok(Some(end));
            }
            if self.take_promote().await? {
                return Ok(None);
            }
            self.engine.tick(self.ctx).await?;
        }
    }

    /// `rollback-after: D`: keeps analysing; the rollout goes on if an
    /// evaluation passes within `grace`, else rolls back.
    async fn recover_within(
        &mut self,
        grace: Duration,
        level: &str,
        why: &str,
    ) -> Result<Option<StepEnd>, EngineError> {
        let until = Instant::now() + grace;
        let interval = self.analyzer.interval().max(Duration::from_millis(100));
        while Instant::now() < until {
            if let Some(end) = self.check().await? {
                return Ok(Some(end));
            }
            self.sleep(interval).await?;
            let step = self.step;
            let e = self.evaluate(step).await?;
            if e.decision == Decision::Continue {
                self.journal(
                    event::DECISION,
                    json!({ "level": level, "action": "recovered" }),
                )
                .await?;
                return Ok(None);
            }
        }
        Ok(Some(StepEnd::Rollback(format!(
            "{level}: {why}; not recovered within {}",
            golive_plan::time::format_duration(grace)
        ))))
    }
}

/// Whether a level's condition holds on a metric's value.
fn holds(condition: &Condition, value: f64) -> bool {
    let Literal::Number(threshold) = condition.value else {
        return false;
    };
    golive_rollout::analysis::rules::compare(value, condition.op, threshold)
}
