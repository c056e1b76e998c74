//! Threshold rules held for a duration (`error_rate > 0.05 for 2m`) and the
//! failure limit.
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
//! Rule values are plain numbers: a percentage literal is its fraction
//! (`5%` = 0.05), a duration literal is seconds (`latency_p95 > 500ms`
//! compares with 0.5, the unit of Prometheus latency metrics), `true` is 1
//! and `false` 0. Only `<`, `<=`, `>`, `>=`, `==` and `!=` apply to metrics.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use golive_plan::Metric;
use golive_plan::cond::{Condition, Literal, Op};
use serde::Serialize;

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
        /// The first firing rule, as written in canonical form.
        rule: String,
        /// The value that made it hold.
        value: f64,
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
        /// The first firing rule, as written in canonical form.
        rule: String,
        /// The value that made it hold.
        value: f64,
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
    /// The rule in canonical form (`error_rate > 0.05 for 2m`).
    pub rule: String,
    /// The value seen on this evaluation, if any.
    pub value: Option<f64>,
    /// Whether the comparison held on this evaluation.
    pub holds: bool,
    /// How long the current run of holds has lasted (0 when not holding).
    #[serde(serialize_with = "super::secs")]
    pub held_for: Duration,
    /// Whether the rule fires (held for its whole `for`).
    pub fires: bool,
}

#[derive(Clone, Debug)]
struct Rule {
    text: String,
    metric: String,
    op: Op,
    threshold: f64,
    hold: Duration,
    /// Start of the current run of holds.
    since: Option<Instant>,
}

/// The analysis rules of a rollout, with their hold timers.
#[derive(Clone, Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    failure_limit: u32,
    streak: Streak,
    last: Vec<RuleStatus>,
}

impl RuleSet {
    /// Compiles the rules; every problem at once (a rule naming an unknown
    /// metric, a text threshold, an operator that does not compare numbers).
    pub fn new(
        rules: &[Condition],
        metrics: &[Metric],
        failure_limit: u32,
    ) -> Result<RuleSet, Vec<String>> {
        let mut problems = Vec::new();
        let mut out = Vec::new();
        for c in rules {
            let text = c.to_string();
            let metric = c.subject.path.clone();
            if !metrics.iter().any(|m| m.name == metric) {
                let known: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
                problems.push(format!(
                    "rule `{text}`: no metric `{metric}` (metrics: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
                continue;
            }
            if c.subject.len {
                problems.push(format!("rule `{text}`: len(…) does not apply to a metric"));
                continue;
            }
            if !matches!(c.op, Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Eq | Op::Ne) {
                problems.push(format!(
                    "rule `{text}`: `{}` does not compare numbers; use <, <=, >, >=, == or !=",
                    c.op.as_str()
                ));
                continue;
            }
            let threshold = match &c.value {
                Literal::Number(n) => *n,
                Literal::Duration(d) => d.as_secs_f64(),
                Literal::Bool(b) => f64::from(u8::from(*b)),
                Literal::Text(t) => match t.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() => n,
                    _ => {
                        problems.push(format!(
                            "rule `{text}`: a metric is compared with a number, not {t:?}"
                        ));
                        continue;
                    }
                },
            };
            out.push(Rule {
                text,
                metric,
                op: c.op,
                threshold,
                hold: c.hold.unwrap_or_default(),
                since: None,
            });
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(RuleSet {
            rules: out,
            failure_limit,
            streak: Streak::default(),
            last: Vec::new(),
        })
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

    /// Judges one evaluation's values (per metric name; a name missing from
    /// the map is "no data"), taken at `now`.
    pub fn observe(&mut self, now: Instant, values: &HashMap<String, Option<f64>>) -> Verdict {
        let mut firing: Option<(String, f64, Duration)> = None;
        let mut missing: Vec<&str> = Vec::new();
        self.last.clear();
        for rule in &mut self.rules {
            let value = values
                .get(&rule.metric)
                .copied()
                .flatten()
                .filter(|v| !v.is_nan());
            let Some(v) = value else {
                if !missing.contains(&rule.metric.as_str()) {
                    missing.push(&rule.metric);
                }
                self.last.push(RuleStatus {
                    rule: rule.text.clone(),
                    value: None,
                    holds: false,
                    held_for: rule
                        .since
                        .map(|s| now.saturating_duration_since(s))
                        .unwrap_or_default(),
                    fires: false,
                });
                continue;
            };
            let holds = compare(v, rule.op, rule.threshold);
            if !holds {
                rule.since = None;
            } else if rule.since.is_none() {
                rule.since = Some(now);
            }
            let held_for = rule
                .since
                .map(|s| now.saturating_duration_since(s))
                .unwrap_or_default();
            let fires = holds && held_for >= rule.hold;
            if fires && firing.is_none() {
                firing = Some((rule.text.clone(), v, held_for));
            }
            self.last.push(RuleStatus {
                rule: rule.text.clone(),
                value: Some(v),
                holds,
                held_for,
                fires,
            });
        }
        if let Some((rule, value, held_for)) = firing {
            let failures = self.streak.fail();
            return if failures > self.failure_limit {
                Verdict::Fail {
                    rule,
                    value,
                    held_for,
                    failures,
                    failure_limit: self.failure_limit,
                }
            } else {
                Verdict::Tolerated {
                    rule,
                    value,
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

/// `value op threshold` for numbers. NaN never holds (IEEE comparisons).
/// Whether `value op threshold` holds (text operators never hold on numbers).
pub fn compare(value: f64, op: Op, threshold: f64) -> bool {
    match op {
        Op::Lt => value < threshold,
        Op::Le => value <= threshold,
        Op::Gt => value > threshold,
        Op::Ge => value >= threshold,
        Op::Eq => value == threshold,
        Op::Ne => value != threshold,
        Op::Contains | Op::NotContains | Op::Matches => false,
    }
}
