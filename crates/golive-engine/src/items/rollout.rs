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
//! silently to a weight nobody recorded. A rollout stopped while rolling
//! back (its rollback decision journaled), or aborted or asked to roll back
//! while it was down, goes straight to weight 0 instead: a decided
//! rollback is finished, never undone by the canary's last weight.

use std::time::{Duration, Instant};

use golive_plan::{Item, LevelAction, Pause, Rollout};
use golive_rollout::analysis::{Analyzer, Change, Decision, Evaluation, Tree, TreeState};
use golive_rollout::traffic::Actuator;
use golive_store::{Actor, Outcome, Request, Store};
use serde_json::{Value, json};

use super::Host;
use crate::EngineError;

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
    /// The flags the rollout may change, as they were when it first
    /// started: `{before: {KEY: definition or null}}`.
    pub const FLAGS: &str = "rollout.flags";
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
    host: Host<'a, S>,
    item: &'a Item,
    rollout: &'a Rollout,
    actuator: Actuator,
    analyzer: Analyzer,
    /// The plan's rollback levels, observed every evaluation.
    tree: Tree,
    /// Why the last evaluation without a verdict had none.
    last_why: String,
    /// The pause reasons `golive status` shows now ("" when running).
    shown_pause: String,
    /// When the current step (its weight) started.
    step_started: Instant,
    /// The record of each step held so far, for the item's result.
    record: Vec<Value>,
    /// The last evaluation's values (canary and stable) of this step.
    last_values: Value,
    /// Evaluations in this step.
    evaluations: u32,
    /// When the first failing evaluation (or stopping level) was seen, and
    /// how long after its step started.
    detected: Option<(Instant, Duration)>,
    /// From detection to the canary's weight 0.
    rolled_back_after: Option<Duration>,
    actor: Actor,
    /// Promote requests already used.
    promotes_used: usize,
    step: usize,
    weight: u8,
}

/// Runs the rollout to its end; the outcome and the stored result.
pub(crate) async fn run<S: Store + 'static>(
    host: &Host<'_, S>,
    item: &Item,
    rollout: &Rollout,
) -> Result<(Outcome, Value), EngineError> {
    let actuator = match Actuator::from_plan(&rollout.traffic, host.vars()) {
        Ok(a) => a,
        Err(e) => return Ok(failed(&format!("traffic: {e}"), json!({}))),
    };
    let analyzer = match Analyzer::new(&rollout.analysis, host.vars()) {
        Ok(a) => a,
        Err(e) => return Ok(failed(&format!("analysis: {e}"), json!({}))),
    };
    // Where a previous process left it: the last weight journaled, and the
    // promotes it already used.
    let events = host.store().events_after(host.run(), 0, u32::MAX).await?;
    let mine = |kind: &'static str| {
        events
            .iter()
            .filter(move |e| e.kind == kind && e.item_id.as_deref() == Some(item.id.as_str()))
    };
    // A rollback this item decided before a stop: finished on resume,
    // never undone by setting the canary's weight again.
    let decided_rollback = mine(event::DECISION)
        .rfind(|e| e.data["action"] == "rollback")
        .map(|e| e.data["why"].as_str().unwrap_or("rollback").to_string());
    let last = mine(event::WEIGHT).next_back().map(|e| {
        (
            e.data["step"].as_u64().unwrap_or(0) as usize,
            u8::try_from(e.data["weight"].as_u64().unwrap_or(0)).unwrap_or(0),
        )
    });
    let mut r = Rolling {
        host: *host,
        item,
        rollout,
        actuator,
        analyzer,
        tree: Tree::new(&host.plan().rollback.levels),
        last_why: String::new(),
        shown_pause: String::new(),
        step_started: Instant::now(),
        record: Vec::new(),
        last_values: Value::Null,
        evaluations: 0,
        detected: None,
        rolled_back_after: None,
        // Automatic changes are golive's, not the worker process's.
        actor: Actor {
            name: "golive".into(),
            source: Some(format!("rollout {}", item.id)),
        },
        // Promote requests are the run's, not an item's: one a rollout of
        // an earlier item used is not this one's to take.
        promotes_used: events.iter().filter(|e| e.kind == event::PROMOTED).count(),
        step: 0,
        weight: 0,
    };
    // The flags it may change, as they were before it first started (on a
    // resume, as the first process journaled them).
    let flag_keys = flag_keys(rollout, &host.plan().rollback.levels);
    let flags_before = match mine(event::FLAGS).next().map(|e| e.data["before"].clone()) {
        Some(before) => before,
        None => {
            let before = flag_states(host.store(), &flag_keys).await?;
            if !flag_keys.is_empty() {
                host.journal(Some(item), event::FLAGS, json!({ "before": before }))
                    .await?;
            }
            before
        }
    };
    let mut ended = r.drive(last, decided_rollback).await;
    if let Ok((_, Value::Object(result))) = &mut ended
        && !flag_keys.is_empty()
    {
        let after = flag_states(host.store(), &flag_keys).await?;
        let flags: serde_json::Map<String, Value> = flag_keys
            .iter()
            .map(|k| {
                let side = |v: &Value| v.get(k).cloned().unwrap_or(Value::Null);
                (
                    k.clone(),
                    json!({ "before": side(&flags_before), "after": side(&after) }),
                )
            })
            .collect();
        result.insert("flags".into(), Value::Object(flags));
    }
    // A paused item is running again before it finishes (the store only
    // finishes a running item).
    if matches!(ended, Ok(_) | Err(EngineError::RollbackRequested { .. })) {
        r.show_paused(&[], false).await?;
    }
    match ended {
        // A person asked for the plan's rollback (in any state, paused
        // included): the canary goes back to 0 before the rollback items run.
        Err(e @ EngineError::RollbackRequested { .. }) => {
            if r.weight != 0 {
                let step = r.step;
                let _ = r.set(step, 0, "rollback requested").await?;
            }
            Err(e)
        }
        other => other,
    }
}

/// The flags a rollout may change: its traffic flag, and those its
/// plan's levels disable.
fn flag_keys(rollout: &Rollout, levels: &[golive_plan::Level]) -> Vec<String> {
    let mut keys: Vec<String> = match &rollout.traffic {
        golive_plan::Traffic::Flag { key } => vec![key.clone()],
        _ => Vec::new(),
    };
    for action in levels.iter().flat_map(|l| &l.actions) {
        if let LevelAction::DisableFlag(key) = action
            && !keys.contains(key)
        {
            keys.push(key.clone());
        }
    }
    keys
}

/// Each flag's stored definition (`null`: no such flag).
async fn flag_states<S: Store>(store: &S, keys: &[String]) -> Result<Value, EngineError> {
    let mut states = serde_json::Map::new();
    for key in keys {
        let definition = store.get_flag(key).await?.map(|f| f.definition);
        states.insert(key.clone(), definition.unwrap_or(Value::Null));
    }
    Ok(Value::Object(states))
}

fn failed(why: &str, extra: Value) -> (Outcome, Value) {
    let mut v = json!({ "error": why });
    if let (Some(map), Value::Object(more)) = (v.as_object_mut(), extra) {
        map.extend(more);
    }
    (Outcome::Failed, v)
}

impl<S: Store + 'static> Rolling<'_, S> {
    /// The steps, then blue-green's watch; `last` is the weight a previous
    /// process journaled, `decided_rollback` why it rolled back, if it did.
    async fn drive(
        &mut self,
        last: Option<(usize, u8)>,
        decided_rollback: Option<String>,
    ) -> Result<(Outcome, Value), EngineError> {
        let rollout = self.rollout;
        let r = self;
        if let Some((step, weight)) = last {
            r.step = step;
            r.weight = weight;
            // Stopped while rolling back, or asked to since: traffic goes to
            // the stable version, never back to the canary's last weight.
            if let Some(why) = decided_rollback {
                return r.reset_traffic(&why).await;
            }
            if let Some(StepEnd::Rollback(why)) = r.check().await? {
                return r.roll_back(&why).await;
            }
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
            r.analyzer.start_step(Instant::now(), r.weight);
            match r.hold(step, None).await? {
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
            let step = r.step.saturating_sub(1);
            match r.hold(step, Some(keep)).await? {
                StepEnd::Next => {
                    r.journal(
                        event::DECISION,
                        json!({ "action": "retire-previous", "by": "golive", "why": format!("healthy for {}", golive_plan::time::format_duration(keep)) }),
                    )
                    .await?;
                }
                StepEnd::Freeze(why) => {
                    return Ok((
                        Outcome::Failed,
                        r.result(json!({ "frozen": true, "why": why })),
                    ));
                }
                StepEnd::Rollback(why) => return r.roll_back(&why).await,
            }
        }
        Ok((Outcome::Passed, r.result(json!({ "completed": true }))))
    }

    fn result(&self, extra: Value) -> Value {
        let secs = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0);
        let mut v = json!({
            "strategy": format!("{:?}", self.rollout.strategy).to_lowercase(),
            "traffic": self.actuator.describe(),
            "step": self.step,
            "weight": self.weight,
            "steps": self.record,
            "detected_after_step_start_s": secs(self.detected.map(|(_, d)| d)),
            "rolled_back_after_detection_s": secs(self.rolled_back_after),
        });
        if let (Some(map), Value::Object(more)) = (v.as_object_mut(), extra) {
            map.extend(more);
        }
        v
    }

    async fn journal(&self, kind: &str, data: Value) -> Result<(), EngineError> {
        if kind != event::ANALYSIS {
            self.host.report(&crate::Progress::Note {
                item: self.item,
                kind,
                data: &data,
            });
        }
        self.host.journal(Some(self.item), kind, data).await
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
            .host
            .guarded(async {
                Ok(self
                    .actuator
                    .set_weight(self.host.store(), weight, &self.actor)
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
        self.journal(
            event::DECISION,
            json!({ "action": "rollback", "by": "golive", "step": self.step, "weight": self.weight, "why": why }),
        )
        .await?;
        self.reset_traffic(why).await
    }

    /// The rollback decided (and journaled): canary to 0, the item failed.
    async fn reset_traffic(&mut self, why: &str) -> Result<(Outcome, Value), EngineError> {
        let step = self.step;
        let reset = match self.set(step, 0, "rollback").await? {
            Ok(()) if self.detected.is_some() => {
                self.rolled_back_after = self.detected.map(|(at, _)| at.elapsed());
                Value::Bool(true)
            }
            Ok(()) => Value::Bool(true),
            Err(e) => Value::String(e),
        };
        let result = self.result(json!({ "rolled_back": true, "traffic_reset": reset }));
        Ok(failed(why, result))
    }

    /// The requests as they stand.
    async fn asked(&self) -> Result<Asked, EngineError> {
        Ok(asked(&self.host.store().requests(self.host.run()).await?))
    }

    /// Looks at the lease, a rollback request (the canary goes back to 0
    /// before the engine runs the plan's rollback items), and `abort`.
    async fn check(&mut self) -> Result<Option<StepEnd>, EngineError> {
        if let Err(e) = self.host.check().await {
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

    /// Holds a step (or the watch) and records it: its weight, how long,
    /// how many evaluations, the last values of both versions, how it ended.
    async fn hold(&mut self, step: usize, watch: Option<Duration>) -> Result<StepEnd, EngineError> {
        let started = Instant::now();
        self.step_started = started;
        self.evaluations = 0;
        self.last_values = Value::Null;
        let end = self.hold_step(step, watch).await?;
        let (ended, why) = match &end {
            StepEnd::Next => ("next", None),
            StepEnd::Rollback(why) => ("rollback", Some(why.clone())),
            StepEnd::Freeze(why) => ("freeze", Some(why.clone())),
        };
        self.record.push(json!({
            "step": step,
            "weight": self.weight,
            "watch": watch.is_some(),
            "held_s": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "evaluations": self.evaluations,
            "values": self.last_values,
            "ended": ended,
            "why": why,
        }));
        Ok(end)
    }

    /// Holds a step (or, with `watch`, the blue-green watch after the
    /// switch) while analysing every interval; how it ended.
    async fn hold_step(
        &mut self,
        step: usize,
        watch: Option<Duration>,
    ) -> Result<StepEnd, EngineError> {
        let spec = &self.rollout.steps[step];
        let (pause, gated) = match watch {
            Some(d) => (Pause::For(d), false),
            None => (
                spec.pause,
                !spec.approve.is_empty() || !spec.checks.is_empty(),
            ),
        };
        let started = Instant::now();
        let interval = self.analyzer.interval().max(Duration::from_millis(100));
        let limit = self.rollout.analysis.inconclusive_limit;
        let mut inconclusive = 0u32;
        let mut passed = 0u32;
        let mut for_person = matches!(pause, Pause::Manual) || gated;
        let mut stuck: Option<String> = None;
        // A level a person let go on (promote) while it held.
        let mut acked: Option<usize> = None;
        loop {
            if let Some(end) = self.check().await? {
                return Ok(end);
            }
            let held = self.asked().await?.paused;
            let evaluation = self.evaluate(step).await?;
            let now = Instant::now();
            let pause_over = match pause {
                Pause::None => true,
                Pause::For(d) => started.elapsed() >= d,
                Pause::Manual => false,
            };
            let mut rules_fail = None;
            match &evaluation.decision {
                Decision::Continue => {
                    inconclusive = 0;
                    passed += 1;
                }
                Decision::Fail { why } => {
                    inconclusive = 0;
                    rules_fail = Some(why.clone());
                }
                Decision::Inconclusive { why } => {
                    inconclusive += 1;
                    self.last_why = why.clone();
                }
                // Waiting is expected while the step's pause runs; past
                // it, a step without a verdict is inconclusive.
                Decision::Wait { why } => {
                    if pause_over {
                        inconclusive += 1;
                    }
                    self.last_why = why.clone();
                }
            }
            if !matches!(evaluation.decision, Decision::Wait { .. }) {
                let state = self.tree.observe(now, &evaluation.values);
                if !matches!(state.change, Change::Same) {
                    acked = None;
                }
                if let Some(end) = self.act(&state, step, acked).await? {
                    return Ok(end);
                }
                let stops = state
                    .acting
                    .and_then(|i| self.tree.level(i))
                    .is_some_and(golive_plan::Level::stops);
                // A failing rule is a no-go: only a level that stops the
                // rollout (pause, rollback-after, freeze) may hold it
                // instead of rolling back; a milder level never lets it pass.
                if let Some(why) = &rules_fail
                    && !stops
                {
                    return Ok(StepEnd::Rollback(why.clone()));
                }
            }
            if inconclusive >= limit && stuck.is_none() {
                let why = format!(
                    "the analysis is inconclusive ({inconclusive} evaluations in a row): {}",
                    self.last_why
                );
                self.journal(
                    event::DECISION,
                    json!({ "action": "pause", "by": "golive", "why": why }),
                )
                .await?;
                stuck = Some(why);
            }
            let level_pause = self
                .tree
                .acting()
                .filter(|i| acked != Some(*i))
                .and_then(|i| self.tree.level(i).map(|l| (i, l)))
                .filter(|(_, l)| l.stops())
                .map(|(i, l)| (i, format!("level `{}` holds", l.name)));
            let mut reasons = Vec::new();
            if for_person {
                reasons.push(match pause {
                    Pause::Manual => format!("step {step} holds until promoted (pause: manual)"),
                    _ => format!("step {step} has gates (approve/checks): promote to go on"),
                });
            }
            if let Some(why) = &stuck {
                reasons.push(why.clone());
            }
            if let Some((_, why)) = &level_pause {
                reasons.push(why.clone());
            }
            if held {
                reasons.push("paused by a person: resume to go on".into());
            }
            self.show_paused(&reasons, held && reasons.len() == 1)
                .await?;
            let waiting = for_person || stuck.is_some() || level_pause.is_some();
            if waiting && self.take_promote().await? {
                for_person = false;
                stuck = None;
                acked = level_pause.map(|(i, _)| i);
                inconclusive = 0;
                if watch.is_none() {
                    self.show_paused(&[], false).await?;
                    return self.gate_checks(step).await;
                }
                continue;
            }
            // A rule that holds but has not yet held for its `for` is a
            // verdict still coming, and one that fired is not clear until it
            // has been false for its `for` (within a `failure_limit` too):
            // the step waits for either, never promotes past it.
            let unsettled = evaluation.rule_statuses.iter().any(|r| r.holds || r.fires);
            let verdict = passed > 0 && rules_fail.is_none() && !unsettled;
            if pause_over && verdict && !waiting && !held {
                return match watch {
                    Some(_) => Ok(StepEnd::Next),
                    None => self.gate_checks(step).await,
                };
            }
            self.sleep(interval).await?;
        }
    }

    /// Shows the item as waiting for a person with `reasons` (`golive
    /// status` says why and how to go on), or as running again when there
    /// are none; only changes are written.
    async fn show_paused(&mut self, reasons: &[String], resume: bool) -> Result<(), EngineError> {
        let why = reasons.join("; ");
        if why == self.shown_pause {
            return Ok(());
        }
        let run = self.host.run();
        if reasons.is_empty() {
            self.host.start(self.item).await?;
        } else {
            let (awaiting, how) = if resume {
                (
                    "resume",
                    format!("golive resume {run} (or golive abort {run} --reason TEXT)"),
                )
            } else {
                (
                    "promote",
                    format!("golive promote {run} (or golive abort {run} --reason TEXT)"),
                )
            };
            let detail = json!({
                "awaiting": awaiting,
                "paused": true,
                "why": why,
                "step": self.step,
                "weight": self.weight,
                "how": how,
            });
            self.host.wait_for(self.item, &detail).await?;
        }
        self.shown_pause = why;
        Ok(())
    }

    /// The step's `checks` (check items of the plan, by id), run before the
    /// next step: one failing rolls back.
    async fn gate_checks(&mut self, step: usize) -> Result<StepEnd, EngineError> {
        for id in &self.rollout.steps[step].checks {
            let Some(golive_plan::ItemKind::Check(check)) = self
                .host
                .plan()
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
                .host
                .guarded(async { Ok(super::check::run(check, self.host.vars()).await) })
                .await?;
            self.journal(
                event::DECISION,
                json!({ "action": "gate", "by": "golive", "check": id.as_str(), "outcome": outcome, "result": result, "why": format!("step gate `{id}`") }),
            )
            .await?;
            if outcome != Outcome::Passed {
                return Ok(StepEnd::Rollback(format!("step gate: check `{id}` failed")));
            }
        }
        Ok(StepEnd::Next)
    }

    async fn sleep(&self, d: Duration) -> Result<(), EngineError> {
        self.host.sleep(d).await
    }

    async fn evaluate(&mut self, step: usize) -> Result<Evaluation, EngineError> {
        let evaluation = self
            .host
            .guarded(async { Ok(self.analyzer.evaluate(Instant::now()).await) })
            .await?;
        let data = serde_json::to_value(&evaluation).unwrap_or(Value::Null);
        self.evaluations += 1;
        self.last_values = data["values"].clone();
        if matches!(evaluation.decision, Decision::Fail { .. }) {
            self.detect();
        }
        self.journal(
            event::ANALYSIS,
            json!({ "step": step, "weight": self.weight, "evaluation": data }),
        )
        .await?;
        Ok(evaluation)
    }

    /// Notes the first sign of a bad canary (a failing evaluation, or a
    /// level that stops the rollout).
    fn detect(&mut self) {
        if self.detected.is_none() {
            self.detected = Some((Instant::now(), self.step_started.elapsed()));
        }
    }

    /// Carries out what changed in the decision tree: entering a level runs
    /// its actions, a cleared level is recorded, a `rollback-after` that
    /// ran out rolls back. `Some` when the rollout ends.
    async fn act(
        &mut self,
        state: &TreeState,
        step: usize,
        acked: Option<usize>,
    ) -> Result<Option<StepEnd>, EngineError> {
        let why_of = |i: usize| {
            state
                .statuses
                .get(i)
                .map(|s| {
                    s.conditions
                        .iter()
                        .filter(|c| c.fires)
                        .map(|c| c.why())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default()
        };
        match state.change {
            Change::Same => {}
            Change::Cleared { index } => {
                let name = self.tree.level(index).map(|l| l.name.clone());
                self.journal(
                    event::DECISION,
                    json!({ "level": name, "action": "recovered", "by": "golive", "step": step, "why": "no condition of the level holds any more" }),
                )
                .await?;
            }
            Change::Entered { index, escalated } => {
                let Some(level) = self.tree.level(index).cloned() else {
                    return Ok(None);
                };
                let why = format!("{}: {}", level.name, why_of(index));
                if level.stops() {
                    self.detect();
                }
                self.journal(
                    event::DECISION,
                    json!({
                        "level": level.name,
                        "action": if escalated { "escalate" } else { "de-escalate" },
                        "by": "golive",
                        "step": step,
                        "weight": self.weight,
                        "why": why,
                        "actions": level.actions.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
                    }),
                )
                .await?;
                for action in &level.actions {
                    match action {
                        LevelAction::Rollback => return Ok(Some(StepEnd::Rollback(why))),
                        LevelAction::Freeze => return Ok(Some(StepEnd::Freeze(why))),
                        LevelAction::Notify(channel) => {
                            // Delivered like a `notify` item, journaled with
                            // who decided; a failed delivery never changes
                            // the rollout's decision.
                            let out = super::notify::Outgoing {
                                channel,
                                text: format!("{}: level `{}`: {why}", self.item.id, level.name),
                                event: golive_plan::NotifyEvent::Trigger,
                                dedup_key: Some(format!(
                                    "golive/{}/{}/{}",
                                    self.host.run(),
                                    self.item.id,
                                    level.name
                                )),
                                severity: if level.stops() {
                                    golive_plan::AlertSeverity::Error
                                } else {
                                    golive_plan::AlertSeverity::Warning
                                },
                                extra: json!({ "by": "golive", "level": level.name }),
                            };
                            super::notify::deliver(&self.host, Some(self.item), out).await?;
                        }
                        LevelAction::DisableFlag(key) => {
                            let actor = Actor {
                                name: format!("golive (level {})", level.name),
                                source: Some("rollout".into()),
                            };
                            let outcome = match key.parse() {
                                Ok(k) => golive_store::flags::upsert(
                                    self.host.store(),
                                    &k,
                                    &json!({ "enabled": false }),
                                    None,
                                    false,
                                    &actor,
                                    Some(&why),
                                )
                                .await
                                .map(|_| ())
                                .map_err(|e| e.to_string()),
                                Err(e) => Err(format!("{e}")),
                            };
                            self.journal(
                                event::DECISION,
                                json!({ "action": "disable-flag", "by": "golive", "level": level.name, "flag": key, "error": outcome.err() }),
                            )
                            .await?;
                        }
                        LevelAction::Pause
                        | LevelAction::RollbackAfter(_)
                        | LevelAction::Continue => {}
                    }
                }
            }
        }
        if let (Some(d), Some(i)) = (state.expired, state.acting)
            && acked != Some(i)
        {
            let name = self
                .tree
                .level(i)
                .map(|l| l.name.clone())
                .unwrap_or_default();
            return Ok(Some(StepEnd::Rollback(format!(
                "{name}: not recovered within {}: {}",
                golive_plan::time::format_duration(d),
                why_of(i)
            ))));
        }
        Ok(None)
    }
}
