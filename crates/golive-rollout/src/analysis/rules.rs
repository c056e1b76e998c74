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
//! - An evaluation where the rule is false ends the run (a dip resets the
//!   hold). An evaluation without a value (no data, NaN) resets nothing —
//!   the run goes on if the next value holds again — but the rule does not
//!   fire on it, and the evaluation counts as inconclusive.
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
    /// Whether the rule fires (held for its whole `for`).
    pub fires: bool,
}

/// A rule with its hold timer: the evaluator of analysis rules and level
/// conditions alike.
#[derive(Clone, Debug)]
pub struct Held {
    rule: Rule,
    /// Start of the current run of holds.
    since: Option<Instant>,
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
        Held { rule, since: None }
    }

    /// The rule.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// Forgets the current run of holds.
    pub fn reset(&mut self) {
        self.since = None;
    }

    /// Judges one evaluation's values, taken at `now`.
    pub fn observe(&mut self, now: Instant, values: &BTreeMap<String, SideValues>) -> RuleStatus {
        let held_for = |since: Option<Instant>| {
            since
                .map(|s| now.saturating_duration_since(s))
                .unwrap_or_default()
        };
        let Some((sides, holds)) = self.rule.judge(&|side, name| lookup(values, side, name)) else {
            // No data resets nothing: the run goes on if the next value
            // holds again, but the rule does not fire on it.
            return RuleStatus {
                rule: self.rule.text.clone(),
                value: None,
                against: None,
                holds: false,
                held_for: held_for(self.since),
                fires: false,
            };
        };
        if !holds {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(now);
        }
        let held = held_for(self.since);
        RuleStatus {
            rule: self.rule.text.clone(),
            value: Some(sides.lhs),
            against: Some(sides.rhs),
            holds,
            held_for: held,
            fires: holds && held >= self.rule.hold,
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
