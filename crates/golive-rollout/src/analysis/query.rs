//! Scrape expressions: the subset of PromQL golive evaluates itself over
//! the scrapes it took of a target (see [`Series`]), for plans that read the
//! services' `/metrics` directly instead of asking Prometheus.
//!
//! The syntax is `golive_plan::query` (parsed when the plan is compiled);
//! this module owns evaluating it. The subset, chosen so the queries a plan would send
//! to Prometheus for the common cases run unchanged:
//!
//! - numbers (`0.5`, `1e3`, `Inf`, `NaN`), `( … )`, unary `-`;
//! - selectors `name` and `name{label="v", label!="v", label=~"5..",
//!   label!~"2.."}` (a missing label reads as `""`; regular expressions are
//!   anchored at both ends, as in Prometheus);
//! - `rate(sel[window])` and `increase(sel[window])` over the samples golive
//!   scraped inside `(now - window, now]`: the increase from the first to the
//!   last sample, a decrease counting as a counter reset (the new value is
//!   the increase since the reset, as Prometheus does). Unlike Prometheus,
//!   nothing is extrapolated to the window's edges: `increase` is what was
//!   observed and `rate` divides it by the time between those two samples.
//!   A series needs two samples in the window to give a rate;
//! - `sum`, `avg`, `min`, `max`, `count`, each with an optional
//!   `by (l1, l2)` or `without (l1)`, before or after the parentheses;
//! - `+ - * /` between numbers and vectors; two vectors match one-to-one on
//!   identical label sets (the metric name is never part of them). Dividing
//!   by zero gives NaN — unlike Prometheus's ±Inf — so a ratio over no
//!   traffic reads as "no data", not as an infinite error rate;
//! - `a or b` (the series of `a`, plus those of `b` whose labels `a` lacks)
//!   and `vector(n)`, for the `… or vector(0)` idiom;
//! - `histogram_quantile(q, v)`: per label set without `le`, linear
//!   interpolation inside the bucket holding the rank, as Prometheus does;
//! - `ratio(a, b)` (golive's own, offered in plan schemas): the increase of
//!   the counters selected by `a` over that of `b` since the previous scrape
//!   (or over `ratio(a[5m], b[5m])`'s window), each summed over its series.
//!   When `a` selects no series at all but `b` has traffic, the ratio is 0:
//!   an error counter a service has not created yet means no errors.
//!
//! A query's result is a scalar, or a vector that must hold at most one
//! series: more is an error asking to aggregate with `sum(…)`. No series,
//! or NaN, is "no data" (`None`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use golive_plan::query::{AggOp, BinOp, Expr, Grouping, Selector, Window};
pub use golive_plan::query::{Labels, MAX_DEPTH, MAX_NODES, Query, QueryError};

use super::series::{Scrape, Series};

/// How far back an instant selector looks for the latest scrape, as
/// Prometheus's default lookback delta.
pub const LOOKBACK: Duration = Duration::from_secs(300);

/// A query that parsed but cannot be evaluated on this data (too many
/// series, a quantile that is not a number, …).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// The value of an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryValue {
    /// A number.
    Scalar(f64),
    /// Series, each a label set (without the metric name) and a value.
    Vector(Vec<(Labels, f64)>),
}

/// Evaluating a [`Query`] over a target's scrapes.
pub trait Eval {
    /// Evaluates the expression at `now` over a target's scrapes.
    fn evaluate(&self, series: &Series, now: Instant) -> Result<QueryValue, EvalError>;

    /// Evaluates to one number: `None` is "no data" (no series, or NaN);
    /// more than one series is an error.
    fn eval(&self, series: &Series, now: Instant) -> Result<Option<f64>, EvalError>;
}

impl Eval for Query {
    fn evaluate(&self, series: &Series, now: Instant) -> Result<QueryValue, EvalError> {
        eval(self.expr(), series, now)
    }

    fn eval(&self, series: &Series, now: Instant) -> Result<Option<f64>, EvalError> {
        let value = match self.evaluate(series, now)? {
            QueryValue::Scalar(v) => v,
            QueryValue::Vector(v) => match v.as_slice() {
                [] => return Ok(None),
                [(_, value)] => *value,
                many => {
                    let shown: Vec<String> = many.iter().take(3).map(|(l, _)| show(l)).collect();
                    return Err(EvalError(format!(
                        "`{}` gives {} series ({}{}); aggregate them into one, e.g. with sum(…)",
                        self.text(),
                        many.len(),
                        shown.join(", "),
                        if many.len() > 3 { ", …" } else { "" }
                    )));
                }
            },
        };
        Ok(Some(value).filter(|v| !v.is_nan()))
    }
}

fn show(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn eval(e: &Expr, series: &Series, now: Instant) -> Result<QueryValue, EvalError> {
    Ok(match e {
        Expr::Number(n) => QueryValue::Scalar(*n),
        Expr::Select(sel) => QueryValue::Vector(instant(sel, series, now)),
        Expr::Range {
            increase,
            sel,
            window,
        } => {
            let per_series = increases(sel, *window, series, now);
            QueryValue::Vector(
                per_series
                    .into_iter()
                    .filter_map(|(labels, (inc, secs))| {
                        if *increase {
                            Some((labels, inc))
                        } else {
                            (secs > 0.0).then(|| (labels, inc / secs))
                        }
                    })
                    .collect(),
            )
        }
        Expr::Ratio { num, den, window } => {
            let total = |sel: &Selector| -> Option<f64> {
                let all = increases(sel, *window, series, now);
                (!all.is_empty()).then(|| all.values().map(|(inc, _)| inc).sum())
            };
            match total(den) {
                None => QueryValue::Vector(Vec::new()),
                Some(d) => {
                    let n = total(num).unwrap_or(0.0);
                    QueryValue::Vector(vec![(Labels::new(), divide(n, d))])
                }
            }
        }
        Expr::Agg { op, grouping, expr } => {
            let QueryValue::Vector(v) = eval(expr, series, now)? else {
                return Err(EvalError("an aggregation needs a vector".into()));
            };
            QueryValue::Vector(aggregate(*op, grouping, v))
        }
        Expr::Binary { op, lhs, rhs } => {
            binary(*op, eval(lhs, series, now)?, eval(rhs, series, now)?)?
        }
        Expr::Or(lhs, rhs) => {
            let (QueryValue::Vector(mut a), QueryValue::Vector(b)) =
                (eval(lhs, series, now)?, eval(rhs, series, now)?)
            else {
                return Err(EvalError("`or` needs a vector on both sides".into()));
            };
            let seen: BTreeSet<Labels> = a.iter().map(|(l, _)| l.clone()).collect();
            a.extend(b.into_iter().filter(|(l, _)| !seen.contains(l)));
            QueryValue::Vector(a)
        }
        Expr::Neg(inner) => match eval(inner, series, now)? {
            QueryValue::Scalar(v) => QueryValue::Scalar(-v),
            QueryValue::Vector(v) => {
                QueryValue::Vector(v.into_iter().map(|(l, x)| (l, -x)).collect())
            }
        },
        Expr::Quantile { q, expr } => {
            let QueryValue::Scalar(q) = eval(q, series, now)? else {
                return Err(EvalError("the quantile must be a number".into()));
            };
            let QueryValue::Vector(v) = eval(expr, series, now)? else {
                return Err(EvalError(
                    "histogram_quantile needs the bucket series".into(),
                ));
            };
            QueryValue::Vector(histogram_quantile(q, v))
        }
        Expr::Vector(inner) => match eval(inner, series, now)? {
            QueryValue::Scalar(v) => QueryValue::Vector(vec![(Labels::new(), v)]),
            v @ QueryValue::Vector(_) => v,
        },
    })
}

/// The latest scrape at or before `now`, if within the lookback.
fn latest(series: &Series, now: Instant) -> Option<&Scrape> {
    series
        .until(now)
        .next()
        .filter(|s| now.saturating_duration_since(s.at) <= LOOKBACK)
}

fn instant(sel: &Selector, series: &Series, now: Instant) -> Vec<(Labels, f64)> {
    latest(series, now)
        .and_then(|s| s.metrics.get(&sel.name))
        .map(|all| {
            all.iter()
                .filter(|(l, _)| sel.matches(l))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Per series: the increase over the window (resets handled) and the
/// seconds between its first and last sample. Series with fewer than two
/// samples in the window are left out.
fn increases(
    sel: &Selector,
    window: Window,
    series: &Series,
    now: Instant,
) -> BTreeMap<Labels, (f64, f64)> {
    let scrapes: Vec<&Scrape> = match window {
        Window::Last => series.until(now).take(2).collect(),
        Window::For(w) => series
            .until(now)
            .take_while(|s| now.saturating_duration_since(s.at) < w)
            .collect(),
    };
    // Oldest first, per series.
    let mut points: BTreeMap<Labels, Vec<(Instant, f64)>> = BTreeMap::new();
    for scrape in scrapes.iter().rev() {
        for (labels, value) in scrape.metrics.get(&sel.name).into_iter().flatten() {
            if sel.matches(labels) {
                points
                    .entry(labels.clone())
                    .or_default()
                    .push((scrape.at, *value));
            }
        }
    }
    points
        .into_iter()
        .filter_map(|(labels, pts)| {
            let (first, last) = (pts.first()?, pts.last()?);
            if pts.len() < 2 {
                return None;
            }
            let inc: f64 = pts
                .windows(2)
                .map(|w| {
                    let (prev, cur) = (w[0].1, w[1].1);
                    // A counter that went down was reset; it counted up from 0.
                    if cur < prev { cur } else { cur - prev }
                })
                .sum();
            let secs = last.0.saturating_duration_since(first.0).as_secs_f64();
            Some((labels, (inc, secs)))
        })
        .collect()
}

fn divide(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}

fn apply(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => divide(a, b),
    }
}

fn binary(op: BinOp, lhs: QueryValue, rhs: QueryValue) -> Result<QueryValue, EvalError> {
    Ok(match (lhs, rhs) {
        (QueryValue::Scalar(a), QueryValue::Scalar(b)) => QueryValue::Scalar(apply(op, a, b)),
        (QueryValue::Vector(v), QueryValue::Scalar(b)) => {
            QueryValue::Vector(v.into_iter().map(|(l, a)| (l, apply(op, a, b))).collect())
        }
        (QueryValue::Scalar(a), QueryValue::Vector(v)) => {
            QueryValue::Vector(v.into_iter().map(|(l, b)| (l, apply(op, a, b))).collect())
        }
        (QueryValue::Vector(a), QueryValue::Vector(b)) => {
            let mut right: HashMap<&Labels, f64> = HashMap::with_capacity(b.len());
            for (l, v) in &b {
                if right.insert(l, *v).is_some() {
                    return Err(EvalError(format!(
                        "two series with the labels {} on the right of an operator",
                        show(l)
                    )));
                }
            }
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for (l, a) in a {
                if !seen.insert(l.clone()) {
                    return Err(EvalError(format!(
                        "two series with the labels {} on the left of an operator",
                        show(&l)
                    )));
                }
                if let Some(b) = right.get(&l) {
                    let value = apply(op, a, *b);
                    out.push((l, value));
                }
            }
            QueryValue::Vector(out)
        }
    })
}

fn aggregate(op: AggOp, grouping: &Grouping, v: Vec<(Labels, f64)>) -> Vec<(Labels, f64)> {
    let mut groups: BTreeMap<Labels, Vec<f64>> = BTreeMap::new();
    for (labels, value) in v {
        let key: Labels = match grouping {
            Grouping::All => Labels::new(),
            Grouping::By(keep) => labels
                .into_iter()
                .filter(|(k, _)| keep.contains(k))
                .collect(),
            Grouping::Without(drop) => labels
                .into_iter()
                .filter(|(k, _)| !drop.contains(k))
                .collect(),
        };
        groups.entry(key).or_default().push(value);
    }
    groups
        .into_iter()
        .map(|(labels, values)| {
            let n = values.len() as f64;
            let value = match op {
                AggOp::Sum => values.iter().sum(),
                AggOp::Avg => values.iter().sum::<f64>() / n,
                AggOp::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
                AggOp::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                AggOp::Count => n,
            };
            (labels, value)
        })
        .collect()
}

/// Prometheus's `histogram_quantile` over classic buckets: per label set
/// without `le`, the buckets sorted by upper bound, the counts made
/// monotonic, and the value found by linear interpolation inside the
/// bucket where the rank `q × count` falls.
fn histogram_quantile(q: f64, v: Vec<(Labels, f64)>) -> Vec<(Labels, f64)> {
    let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for (mut labels, count) in v {
        // Series without a readable `le` are not buckets; Prometheus skips them too.
        let Some(le) = labels.remove("le").and_then(|le| parse_le(&le)) else {
            continue;
        };
        groups.entry(labels).or_default().push((le, count));
    }
    groups
        .into_iter()
        .map(|(labels, buckets)| (labels, bucket_quantile(q, buckets)))
        .collect()
}

fn parse_le(text: &str) -> Option<f64> {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" => Some(f64::INFINITY),
        _ => t.parse::<f64>().ok().filter(|v| !v.is_nan()),
    }
}

fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    // `le="1"` and `le="1.0"` are one bucket.
    buckets.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 += later.1;
            true
        } else {
            false
        }
    });
    let Some(&(last_le, total)) = buckets.last() else {
        return f64::NAN;
    };
    if last_le != f64::INFINITY || buckets.len() < 2 {
        return f64::NAN;
    }
    // Rates of cumulative buckets can come out slightly non-monotonic.
    let mut max = f64::NEG_INFINITY;
    for b in &mut buckets {
        max = max.max(b.1);
        b.1 = max;
    }
    let total = total.max(max);
    if total == 0.0 || total.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * total;
    let b = buckets
        .iter()
        .position(|(_, count)| *count >= rank)
        .unwrap_or(buckets.len() - 1);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    if count == 0.0 {
        return end;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantile_by_hand() {
        let b = vec![
            (0.1, 10.0),
            (0.25, 30.0),
            (0.5, 45.0),
            (1.0, 50.0),
            (f64::INFINITY, 50.0),
        ];
        // rank 47.5 falls in (0.5, 1]: 0.5 + 0.5 × (2.5 / 5).
        assert!((bucket_quantile(0.95, b.clone()) - 0.75).abs() < 1e-12);
        // rank 5 falls in [0, 0.1]: 0.1 × 5/10.
        assert!((bucket_quantile(0.1, b.clone()) - 0.05).abs() < 1e-12);
        // Only +Inf holds the top: the highest finite bound.
        let top = vec![(1.0, 5.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.99, top), 1.0);
        assert!(bucket_quantile(0.5, vec![(1.0, 5.0)]).is_nan());
        assert_eq!(bucket_quantile(-1.0, b.clone()), f64::NEG_INFINITY);
        assert!(bucket_quantile(0.5, vec![(1.0, 0.0), (f64::INFINITY, 0.0)]).is_nan());
    }
}
