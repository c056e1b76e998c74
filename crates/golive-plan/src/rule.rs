//! Analysis rules and rollback-level conditions: conditions of the one
//! condition language ([`crate::cond`]) compiled for
//! [`Context::Analysis`], over the metrics of a rollout's analysis.
//!
//! ```text
//! error_rate > 5% for 30s
//! canary.error_rate - stable.error_rate > 2%
//! canary.p95_latency > 1.3 * stable.p95_latency for 10s
//! p95_latency > 500ms
//! service_down                      # the same as `service_down == true`
//! ```
//!
//! This module owns what a [`Rule`] guarantees over a plain
//! [`Condition`]: it was parsed for analysis, so it reads only metrics and
//! its terms are numbers. A term that names a metric without a value, or
//! that divides zero by zero, has no value: the rule neither holds nor
//! fails on that evaluation (no data). How long a rule has held, and what
//! holding means for a rollout, is the evaluator's
//! (`golive_rollout::analysis::rules`).

use std::fmt;
use std::ops::Deref;

pub use crate::cond::Side;
use crate::cond::{self, CondError, Condition, Context, Outcome, Ref};
use crate::value::Value;

/// A compiled rule or level condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule(Condition);

impl Deref for Rule {
    type Target = Condition;

    fn deref(&self) -> &Condition {
        &self.0
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.text)
    }
}

/// The two terms of a rule on one evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sides {
    /// The left term's value.
    pub lhs: f64,
    /// The right term's value.
    pub rhs: f64,
}

impl Rule {
    /// Parses a rule; the error's offset is into `text`.
    pub fn parse(text: &str) -> Result<Rule, CondError> {
        cond::parse(text, Context::Analysis).map(Rule)
    }

    /// Every metric the rule reads, with the side it reads.
    pub fn metrics(&self) -> Vec<(Side, &str)> {
        self.0
            .refs()
            .into_iter()
            .filter_map(|r| match r {
                Ref::Metric { side, name } => Some((*side, name.as_str())),
                Ref::Path(_) => None,
            })
            .collect()
    }

    /// Whether the rule compares with the stable version (a baseline rule).
    pub fn reads_baseline(&self) -> bool {
        self.metrics().iter().any(|(s, _)| *s == Side::Stable)
    }

    /// Both terms' values and whether the comparison holds, or `None` when
    /// either term has no value.
    pub fn judge(&self, lookup: &dyn Fn(Side, &str) -> Option<f64>) -> Option<(Sides, bool)> {
        let e = self.0.evaluate(&mut |r| match r {
            Ref::Metric { side, name } => lookup(*side, name)
                .map(Value::Number)
                .ok_or_else(|| "no data".to_string()),
            Ref::Path(p) => Err(format!("`{}` is not a metric", p.path)),
        });
        let sides = Sides {
            lhs: e.lhs?.number()?,
            rhs: e.rhs?.number()?,
        };
        match e.outcome {
            Outcome::NoValue => None,
            outcome => Some((sides, outcome == Outcome::Held)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn values(side: Side, name: &str) -> Option<f64> {
        match (side, name) {
            (Side::Canary, "error_rate") => Some(0.07),
            (Side::Stable, "error_rate") => Some(0.04),
            (Side::Canary, "p95") => Some(0.13),
            (Side::Stable, "p95") => Some(0.1),
            _ => None,
        }
    }

    fn holds(text: &str) -> Option<bool> {
        let r = Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        r.judge(&values).map(|(_, holds)| holds)
    }

    #[test]
    fn reads_baseline_rules_literals_and_holds() {
        assert_eq!(holds("error_rate > 5%"), Some(true));
        assert_eq!(
            holds("canary.error_rate - stable.error_rate > 2%"),
            Some(true)
        );
        assert_eq!(holds("canary.p95 > 1.3 * stable.p95"), Some(false));
        assert_eq!(holds("missing > 1"), None);
        assert_eq!(holds("error_rate > stable.missing"), None);
        let r = Rule::parse("canary.p95 > 1.3 * stable.p95 for 2m").expect("ok");
        assert_eq!(r.hold, Duration::from_secs(120));
        assert_eq!(r.to_string(), "canary.p95 > 1.3 * stable.p95 for 2m");
        let (sides, _) = r.judge(&values).expect("values");
        assert_eq!(sides.lhs, 0.13);
        assert!((sides.rhs - 0.13).abs() < 1e-9, "{sides:?}");
        assert!(r.reads_baseline());
        assert_eq!(r.metrics(), [(Side::Canary, "p95"), (Side::Stable, "p95")]);
        assert!(!Rule::parse("p95 > 1").expect("ok").reads_baseline());
        assert!(Rule::parse("status contains \"x\"").is_err());
    }
}
