//! The one evaluator of rules held for a duration (`error_rate > 5% for 2m`,
//! `canary.error_rate - stable.error_rate > 2%`): the analysis' rules and
//! the rollback levels' conditions both go through [`Held`]; [`RuleSet`]
//! adds the failure limit.
//!
//! This module owns when a rule fires and when firing fails the step:
//!
//! - A rule *holds* on an evaluation when its metric has a value and the
//!   comparison is true. It *fires* once it has held continuously for its
//!   `for` duration (no `for`: as soon as it holds), `held_for` being the
//!   time since the first evaluation of the current run of holds.
//! - Before it fires, an evaluation where the rule is false ends the run (a
//!   dip resets the hold). An evaluation without a value (no data, NaN)
//!   resets nothing — the run goes on if the next value holds again — but
//!   the rule does not fire on it, and the evaluation counts as
//!   inconclusive.
//! - Once it fired, a rule *keeps firing* until it has been false for as
//!   long as it had to hold (its `for`; at once without one), like
//!   Prometheus' `keep_firing_for`. On noisy, low-traffic data a
//!   regression's error rate dips below the threshold now and then; without
//!   this, one dip cleared a level and restarted its `rollback-after`
//!   clock, and a step could promote between two dips. No data while it
//!   keeps firing is not a sign of recovery: the rule goes on firing (with
//!   the values it last held with). A rule without `for` fires exactly on
//!   the evaluations where it holds. `quiet_for` in [`RuleStatus`] says how
//!   long it has been false.
//! - An evaluation *fails* when at least one rule fires. The step fails
//!   ([`Verdict::Fail`]) on the `failure_limit + 1`-th consecutive failing
//!   evaluation: `failure_limit: 0` fails on the first one, `2` tolerates two
//!   and fails on the third. A passing evaluation (every rule has data and
//!   none fires) resets the count; an inconclusive one (some rule without
//!   data, none firing) leaves it as it is — missing data is not evidence of
//!   health. Failing evaluations within the limit are
//!   [`Verdict::Tolerated`], with the same numbers as a failure.
//!
//! A rule *has a value* when both of its terms have one: a baseline rule
//! needs the stable version's value too. The syntax and the arithmetic are
//! `golive_plan::rule`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use golive_plan::rule::{Rule, Side};
use serde::Serialize;

use super::SideValues;

/// Consecutive failing evaluations, against a limit.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Streak {
    count: u32,
}

impl Streak {
    /// Records a failing evaluation; the new count.
    pub(crate) fn fail(&mut self) -> u32 {
        self.count = self.count.saturating_add(1);
        self.count
    }

    /// Records a passing evaluation.
    pub(crate) fn pass(&mut self) {
        self.count = 0;
    }
}

/// The outcome of the rules on one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every rule has data and none fires.
    Pass,
    /// A rule fires, within the failure limit: the step goes on.
    Tolerated {
        /// The first firing rule, as written.
        rule: String,
        /// The value of its left term.
        value: f64,
        /// The value of its right term (the threshold, or the baseline's).
        against: f64,
        /// How long it has held.
        #[serde(serialize_with = "super::secs")]
        held_for: Duration,
        /// Consecutive failing evaluations so far.
        failures: u32,
        /// The failure limit.
        failure_limit: u32,
    },
    /// A rule fires beyond the failure limit: the step fails.
    Fail {
        /// The first firing rule, as written.
        rule: String,
        /// The value of its left term.
        value: f64,
        /// The value of its right term (the threshold, or the baseline's).
        against: f64,
        /// How long it has held.
        #[serde(serialize_with = "super::secs")]
        held_for: Duration,
        /// Consecutive failing evaluations.
        failures: u32,
        /// The failure limit.
        failure_limit: u32,
    },
    /// No rule fires, but some rule has no data.
    Inconclusive {
        /// Which metrics had no value.
        why: String,
    },
}

/// One rule's state after an evaluation, for the journal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleStatus {
    /// The rule as written.
    pub rule: String,
    /// Its left term's value on this evaluation, if any.
    pub value: Option<f64>,
    /// Its right term's value (the threshold, or the baseline's), if any.
    pub against: Option<f64>,
    /// Whether the comparison held on this evaluation.
    pub holds: bool,
    /// How long the current run of holds has lasted (0 when not holding).
    #[serde(serialize_with = "super::secs")]
    pub held_for: Duration,
    /// Whether the rule fires: it held for its whole `for`, or it fired
    /// and has not been false for that long since (`holds` is then false).
    pub fires: bool,
    /// While it keeps firing without holding: how long it has been false
    /// (it stops firing when this reaches its `for`); 0 otherwise.
    #[serde(serialize_with = "super::secs")]
    pub quiet_for: Duration,
    /// Its `for` (how long it must hold to fire, and be false to clear).
    #[serde(skip)]
    pub hold: Duration,
}

impl RuleStatus {
    /// Why it fires, with its numbers: "`RULE` holds: V against A, held
    /// for D", or, while it keeps firing after it stopped holding, how long
    /// it has been false of the `for` it must be false to clear.
    pub fn why(&self) -> String {
        let n = |v: Option<f64>| v.map_or_else(|| "-".into(), super::num);
        let d = golive_plan::time::format_duration;
        if self.holds {
            format!(
                "`{}` holds: {} against {}, held for {}",
                self.rule,
                n(self.value),
                n(self.against),
                d(self.held_for)
            )
        } else {
            format!(
                "`{}` fired and is not clear yet: {} against {}, false for {} of the {} that clear it",
                self.rule,
                n(self.value),
                n(self.against),
                d(self.quiet_for),
                d(self.hold)
            )
        }
    }
}

/// A rule with its hold timer: the evaluator of analysis rules and level
/// conditions alike.
#[derive(Clone, Debug)]
pub struct Held {
    rule: Rule,
    /// Start of the current run of holds.
    since: Option<Instant>,
    /// Since it fired: the last evaluation on which it held, and the
    /// values it had then (shown while no data comes).
    fired: Option<Fired>,
}

#[derive(Clone, Copy, Debug)]
struct Fired {
    last_held: Instant,
    value: f64,
    against: f64,
}

/// A metric's value on one side, from an evaluation's values.
pub fn lookup(values: &BTreeMap<String, SideValues>, side: Side, name: &str) -> Option<f64> {
    let v = values.get(name)?;
    match side {
        Side::Canary => v.canary,
        Side::Stable => v.stable,
    }
    .filter(|x| !x.is_nan())
}

impl Held {
    /// A rule that has not held yet.
    pub fn new(rule: Rule) -> Held {
        Held {
            rule,
            since: None,
            fired: None,
        }
    }

    /// The rule.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// Forgets the current run of holds, and that it fired.
    pub fn reset(&mut self) {
        self.since = None;
        self.fired = None;
    }

    /// Judges one evaluation's values, taken at `now`.
    pub fn observe(&mut self, now: Instant, values: &BTreeMap<String, SideValues>) -> RuleStatus {
        let since = |t: Option<Instant>| {
            t.map(|s| now.saturating_duration_since(s))
                .unwrap_or_default()
        };
        let Some((sides, holds)) = self.rule.judge(&|side, name| lookup(values, side, name)) else {
            // No data resets nothing: the run goes on if the next value
            // holds again, but the rule does not newly fire on it; one
            // that fired goes on firing.
            let kept = self.fired.filter(|_| !self.rule.hold.is_zero());
            return RuleStatus {
                rule: self.rule.text.clone(),
                value: kept.map(|f| f.value),
                against: kept.map(|f| f.against),
                holds: false,
                held_for: since(self.since),
                fires: kept.is_some(),
                quiet_for: since(self.fired.map(|f| f.last_held)),
                hold: self.rule.hold,
            };
        };
        if holds {
            let start = *self.since.get_or_insert(now);
            if self.fired.is_some() || since(Some(start)) >= self.rule.hold {
                self.fired = Some(Fired {
                    last_held: now,
                    value: sides.lhs,
                    against: sides.rhs,
                });
            }
        } else {
            self.since = None;
            if self
                .fired
                .is_some_and(|f| now.saturating_duration_since(f.last_held) >= self.rule.hold)
            {
                self.fired = None;
            }
        }
        let quiet_for = match self.fired {
            Some(f) if !holds => now.saturating_duration_since(f.last_held),
            _ => Duration::ZERO,
        };
        RuleStatus {
            rule: self.rule.text.clone(),
            value: Some(sides.lhs),
            against: Some(sides.rhs),
            holds,
            held_for: since(self.since),
            fires: self.fired.is_some(),
            quiet_for,
            hold: self.rule.hold,
        }
    }
}

/// The analysis rules of a rollout, with their hold timers.
#[derive(Clone, Debug)]
pub struct RuleSet {
    rules: Vec<Held>,
    failure_limit: u32,
    streak: Streak,
    last: Vec<RuleStatus>,
}

impl RuleSet {
    /// The compiled rules, none held yet.
    pub fn new(rules: &[Rule], failure_limit: u32) -> RuleSet {
        RuleSet {
            rules: rules.iter().cloned().map(Held::new).collect(),
            failure_limit,
            streak: Streak::default(),
            last: Vec::new(),
        }
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Each rule's state after the last [`observe`](RuleSet::observe).
    pub fn statuses(&self) -> &[RuleStatus] {
        &self.last
    }

    /// Judges one evaluation's values (a metric missing from the map, or
    /// a side without a value, is "no data"), taken at `now`.
    pub fn observe(&mut self, now: Instant, values: &BTreeMap<String, SideValues>) -> Verdict {
        let mut firing: Option<(String, f64, f64, Duration)> = None;
        let mut missing: Vec<String> = Vec::new();
        self.last.clear();
        for held in &mut self.rules {
            let status = held.observe(now, values);
            if status.value.is_none() {
                for (side, name) in held.rule().metrics() {
                    let what = match side {
                        Side::Canary => name.to_string(),
                        Side::Stable => format!("stable.{name}"),
                    };
                    if lookup(values, side, name).is_none() && !missing.contains(&what) {
                        missing.push(what);
                    }
                }
            }
            if status.fires
                && firing.is_none()
                && let (Some(v), Some(a)) = (status.value, status.against)
            {
                firing = Some((status.rule.clone(), v, a, status.held_for));
            }
            self.last.push(status);
        }
        if let Some((rule, value, against, held_for)) = firing {
            let failures = self.streak.fail();
            return if failures > self.failure_limit {
                Verdict::Fail {
                    rule,
                    value,
                    against,
                    held_for,
                    failures,
                    failure_limit: self.failure_limit,
                }
            } else {
                Verdict::Tolerated {
                    rule,
                    value,
                    against,
                    held_for,
                    failures,
                    failure_limit: self.failure_limit,
                }
            };
        }
        if !missing.is_empty() {
            return Verdict::Inconclusive {
                why: format!("no data for {}", missing.join(", ")),
            };
        }
        self.streak.pass();
        Verdict::Pass
    }
}
