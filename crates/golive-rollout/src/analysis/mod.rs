//! Go/no-go analysis of a rollout step: the metrics a step is judged on,
//! the threshold rules held for a duration, and the canary-versus-baseline
//! judge. The engine builds one [`Analyzer`] per rollout item and calls
//! [`Analyzer::evaluate`] every `interval`; each [`Evaluation`] is
//! `Serialize` and carries the numbers behind its [`Decision`], for the
//! journal.
//!
//! # Where values come from
//!
//! - **`scrape`** (the services' own `/metrics`): each evaluation scrapes the
//!   stable and the canary target (concurrently), appends the samples to
//!   each target's [`Series`] stamped with the evaluation's `now`, and
//!   evaluates every metric's expression ([`query`], a PromQL subset)
//!   separately on the two. A failed scrape gives that side no values on
//!   this evaluation (older scrapes are not reused as if current) and an
//!   error in [`Evaluation::errors`].
//! - **`prometheus`** (a server's instant-query API): a query containing
//!   `{{version}}` is sent twice, with `stable` and with `canary` in its
//!   place. Otherwise it is sent as written; when the answer is a vector
//!   whose series carry a `version` label, the series with
//!   `version="canary"` and `version="stable"` give the two sides, and any
//!   other single value (a scalar, or a vector of one series) is the
//!   canary's, the stable side having none. Several series without a
//!   `version` label are an error asking to aggregate.
//!
//! `${NAME}` variables in the URLs and Prometheus queries are expanded from
//! the plan's [`Vars`] when the analyzer is built; error messages are
//! redacted with them.
//!
//! # How values are judged
//!
//! - Rules ([`rules`]) apply to the canary's values. Hold durations and the
//!   failure limit are described there: the step fails on the
//!   `failure_limit + 1`-th consecutive failing evaluation.
//! - Judges ([`judge`]) compare the two series of values gathered over the
//!   step (one value per side per evaluation, for the judged metric),
//!   re-judged on every evaluation. A failing judge counts as a failing
//!   evaluation under the same `failure_limit`, with its own count (a
//!   significant regression tends to stay significant as data accrues, so
//!   the count rises steadily). [`Analyzer::start_step`] clears what the
//!   judges gathered, for the next traffic step; rule hold timers carry on
//!   (a canary that has been failing for a minute still has).
//!
//! # The decision
//!
//! [`Decision::Fail`] when the rules fail or a judge has failed on more
//! than `failure_limit` consecutive evaluations; else
//! [`Decision::Inconclusive`] when a source failed or a rule had no data;
//! else [`Decision::Continue`]. A judge that is inconclusive because too
//! few values have been gathered does not make the decision inconclusive:
//! early in every step that is the normal state.

pub mod expo;
pub mod judge;
pub mod prometheus;
pub mod query;
pub mod rules;
pub mod scrape;
pub mod series;
pub mod tree;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use golive_plan::{Analysis, MetricQuery, MetricSource, Versions};
use golive_runtime::Vars;
use serde::{Serialize, Serializer};

pub use expo::Sample;
pub use judge::{JudgeResult, JudgeStats, JudgeVerdict};
pub use prometheus::{PromValue, PrometheusClient};
pub use query::{Eval, Query, QueryError, QueryValue};
pub use rules::{RuleSet, RuleStatus, Verdict};
pub use scrape::Scraper;
pub use series::{Labels, Series};
pub use tree::{Change, LevelStatus, Tree, TreeState};

use rules::Streak;

/// The most values a judge keeps per side (the oldest go first).
pub const MAX_JUDGE_VALUES: usize = 10_000;

/// The placeholder of a Prometheus query replaced by `stable` or `canary`.
pub const VERSION_PLACEHOLDER: &str = "{{version}}";

/// Serializes a duration as seconds (a float), the journal's unit.
pub(crate) fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Everything wrong with an analysis, found when building the analyzer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct AnalysisError {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// One metric's values on an evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SideValues {
    /// The stable version's value (`None`: no data).
    pub stable: Option<f64>,
    /// The canary's value (`None`: no data).
    pub canary: Option<f64>,
}

/// What the engine should do after an evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Nothing is wrong (so far): keep the step going.
    Continue,
    /// The step fails.
    Fail {
        /// What failed, with its numbers.
        why: String,
    },
    /// The data does not allow a judgement.
    Inconclusive {
        /// What is missing.
        why: String,
    },
    /// No verdict yet, as expected: the warm-up after a weight change, or
    /// too few requests so far.
    Wait {
        /// Why.
        why: String,
    },
}

/// The result of one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// Each metric's values, by name.
    pub values: BTreeMap<String, SideValues>,
    /// The metrics whose stable value is the last one the stable version
    /// had while it served traffic (it serves none at 100%).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub baseline_held: Vec<String>,
    /// Source and query failures of this evaluation.
    pub errors: Vec<String>,
    /// The rules' verdict.
    pub rules: Verdict,
    /// Each rule's state.
    pub rule_statuses: Vec<RuleStatus>,
    /// Each judge's result.
    pub judges: Vec<JudgeResult>,
    /// The decision.
    pub decision: Decision,
}

/// A target scraped directly.
#[derive(Debug)]
struct Target {
    scraper: Scraper,
    series: Series,
}

/// A Prometheus query, as sent.
#[derive(Clone, Debug)]
enum PromQuery {
    /// `{{version}}` replaced: (stable, canary).
    PerVersion(String, String),
    /// Sent once; sides read from the `version` label.
    Single(String),
}

#[derive(Debug)]
enum Source {
    Scrape {
        stable: Box<Target>,
        canary: Box<Target>,
        queries: Vec<(String, Query)>,
    },
    Prometheus {
        client: PrometheusClient,
        queries: Vec<(String, PromQuery)>,
        versions: Versions,
    },
}

/// Judge values gathered over a step.
#[derive(Clone, Debug, Default)]
struct Gathered {
    baseline: VecDeque<f64>,
    canary: VecDeque<f64>,
}

/// The analysis of one rollout item, compiled.
#[derive(Debug)]
pub struct Analyzer {
    interval: Duration,
    source: Source,
    rules: RuleSet,
    judges: Vec<golive_plan::Judge>,
    gathered: BTreeMap<String, Gathered>,
    judge_streak: Streak,
    failure_limit: u32,
    warmup: Duration,
    min_requests: Option<golive_plan::MinRequests>,
    /// Whether some rule reads the stable version (then its requests count too).
    baseline: bool,
    /// When the current traffic step started (its weight was set).
    step_started: Option<Instant>,
    /// The current step sends the stable version no traffic (100%).
    stable_idle: bool,
    /// Each metric's last stable value while the stable version served.
    last_stable: BTreeMap<String, f64>,
    vars: Vars,
}

impl Analyzer {
    /// Builds the analyzer of a compiled analysis: the URLs (with the
    /// plan's variables), the sources and the rules; every problem at once.
    pub fn new(analysis: &Analysis, vars: &Vars) -> Result<Analyzer, AnalysisError> {
        let mut problems = Vec::new();
        let interval = analysis.interval;
        let timeout = interval.clamp(Duration::from_secs(2), Duration::from_secs(10));
        let source = match &analysis.source {
            MetricSource::Scrape { stable, canary } => {
                let mut queries = Vec::new();
                for m in &analysis.metrics {
                    match &m.query {
                        MetricQuery::Scrape(q) => queries.push((m.name.clone(), q.clone())),
                        MetricQuery::Prometheus(_) => problems.push(format!(
                            "metric `{}`: a PromQL query needs a `prometheus` source",
                            m.name
                        )),
                    }
                }
                let longest = queries
                    .iter()
                    .filter_map(|(_, q)| q.longest_window())
                    .max()
                    .unwrap_or(interval);
                // The margin covers late scrapes; the cap assumes no more
                // than one scrape a second (the plan's minimum interval).
                let retention = longest.saturating_add(interval.saturating_mul(2));
                let max_scrapes = usize::try_from(retention.as_secs())
                    .unwrap_or(usize::MAX)
                    .saturating_add(10)
                    .min(10_000);
                let names: Vec<String> =
                    queries.iter().flat_map(|(_, q)| q.metric_names()).collect();
                let target = |side: &str, url: &str, problems: &mut Vec<String>| {
                    let url = vars.expand(url);
                    match Scraper::new(&url, timeout) {
                        Ok(scraper) => Some(Box::new(Target {
                            scraper,
                            series: Series::new(retention, max_scrapes).keep_only(names.clone()),
                        })),
                        Err(e) => {
                            problems.push(format!("scrape {side}: {}", vars.redact(&e)));
                            None
                        }
                    }
                };
                let stable = target("stable", stable, &mut problems);
                let canary = target("canary", canary, &mut problems);
                match (stable, canary) {
                    (Some(stable), Some(canary)) => Some(Source::Scrape {
                        stable,
                        canary,
                        queries,
                    }),
                    _ => None,
                }
            }
            MetricSource::Prometheus(base) => {
                let versions = &analysis.versions;
                let queries = analysis
                    .metrics
                    .iter()
                    .map(|m| {
                        let q = vars.expand(m.query.text());
                        let q = if q.contains(VERSION_PLACEHOLDER) {
                            PromQuery::PerVersion(
                                q.replace(VERSION_PLACEHOLDER, &versions.stable),
                                q.replace(VERSION_PLACEHOLDER, &versions.canary),
                            )
                        } else {
                            PromQuery::Single(q)
                        };
                        (m.name.clone(), q)
                    })
                    .collect();
                match PrometheusClient::new(&vars.expand(base), timeout) {
                    Ok(client) => Some(Source::Prometheus {
                        client,
                        queries,
                        versions: versions.clone(),
                    }),
                    Err(e) => {
                        problems.push(format!("prometheus: {}", vars.redact(&e)));
                        None
                    }
                }
            }
        };
        match source {
            Some(source) if problems.is_empty() => Ok(Analyzer {
                interval,
                source,
                rules: RuleSet::new(&analysis.rules, analysis.failure_limit),
                judges: analysis.judges.clone(),
                gathered: BTreeMap::new(),
                judge_streak: Streak::default(),
                failure_limit: analysis.failure_limit,
                warmup: analysis.warmup,
                min_requests: analysis.min_requests.clone(),
                baseline: analysis.rules.iter().any(|r| r.reads_baseline()),
                step_started: None,
                stable_idle: false,
                last_stable: BTreeMap::new(),
                vars: vars.clone(),
            }),
            _ => Err(AnalysisError { problems }),
        }
    }

    /// The evaluation period.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Starts a new traffic step at `now`, the canary's weight just set to
    /// `canary_weight`: forgets the values the judges gathered and starts
    /// the warm-up. At 100% the stable version serves nothing, so its
    /// windows empty out: from then on `stable.NAME` in rules and levels
    /// reads the last value it had while it served (the previous step's),
    /// and `min_requests` counts the canary only.
    pub fn start_step(&mut self, now: Instant, canary_weight: u8) {
        self.gathered.clear();
        self.judge_streak.pass();
        self.step_started = Some(now);
        self.stable_idle = canary_weight >= 100;
    }

    /// Why this evaluation gives no verdict yet (the warm-up after a weight
    /// change, too few requests), if so.
    fn waiting(&self, now: Instant, values: &BTreeMap<String, SideValues>) -> Option<String> {
        if let Some(started) = self.step_started {
            let since = now.saturating_duration_since(started);
            if since < self.warmup {
                return Some(format!(
                    "warming up after the weight change: {} of {}",
                    golive_plan::time::format_duration(since),
                    golive_plan::time::format_duration(self.warmup)
                ));
            }
        }
        let min = self.min_requests.as_ref()?;
        let v = values.get(&min.metric).copied().unwrap_or_default();
        let sides = [
            ("canary", v.canary, true),
            ("stable", v.stable, self.baseline && !self.stable_idle),
        ];
        for (side, n, needed) in sides {
            let n = n.unwrap_or(0.0);
            if needed && n < min.count {
                return Some(format!(
                    "too few requests for a verdict: the {side} served {} in the window (`{}`), \
                     at least {} are needed",
                    num(n),
                    min.metric,
                    num(min.count)
                ));
            }
        }
        None
    }

    /// Fetches every metric for both sides and judges them, as of `now`.
    pub async fn evaluate(&mut self, now: Instant) -> Evaluation {
        let (mut values, errors) = self.fetch(now).await;
        let judged = values.clone();
        let baseline_held = self.hold_baseline(&mut values);
        let errors: Vec<String> = errors.iter().map(|e| self.vars.redact(e)).collect();
        if errors.is_empty()
            && let Some(why) = self.waiting(now, &values)
        {
            return Evaluation {
                values,
                baseline_held,
                errors,
                rules: Verdict::Inconclusive { why: why.clone() },
                rule_statuses: Vec::new(),
                judges: Vec::new(),
                decision: Decision::Wait { why },
            };
        }
        let verdict = self.rules.observe(now, &values);

        // The judges compare samples of both versions, never a held value.
        let judges = self.judge(&judged);
        let judge_failure = judges.iter().find_map(|j| match &j.verdict {
            JudgeVerdict::Fail(s) => Some((j.metric.clone(), s.clone())),
            _ => None,
        });
        let judge_failures = match &judge_failure {
            Some(_) => self.judge_streak.fail(),
            None => {
                if judges
                    .iter()
                    .any(|j| matches!(j.verdict, JudgeVerdict::Pass(_)))
                {
                    self.judge_streak.pass();
                }
                0
            }
        };
        let decision = if let Verdict::Fail {
            rule,
            failures,
            failure_limit,
            ..
        } = &verdict
        {
            let status = self
                .rules
                .statuses()
                .iter()
                .find(|s| s.fires && s.rule == *rule);
            Decision::Fail {
                why: format!(
                    "rule {}; {failures} consecutive failing evaluation(s), failure_limit {failure_limit}",
                    status.map_or_else(|| format!("`{rule}` fires"), |s| s.why()),
                ),
            }
        } else if let Some((metric, s)) =
            judge_failure.filter(|_| judge_failures > self.failure_limit)
        {
            Decision::Fail {
                why: format!(
                    "judge `{metric}`: canary median {} (p95 {}) vs baseline median {} (p95 {}) \
                     ({}, tolerance {}), p = {} < {}; {judge_failures} consecutive failing \
                     evaluation(s), failure_limit {}",
                    num(s.canary_median),
                    num(s.canary_p95),
                    num(s.baseline_median),
                    num(s.baseline_p95),
                    percent(s.effect),
                    num(s.tolerance * 100.0) + "%",
                    num(s.p_value),
                    num(1.0 - s.confidence),
                    self.failure_limit
                ),
            }
        } else if !errors.is_empty() {
            Decision::Inconclusive {
                why: errors.join("; "),
            }
        } else if let Verdict::Inconclusive { why } = &verdict {
            Decision::Inconclusive { why: why.clone() }
        } else {
            Decision::Continue
        };
        Evaluation {
            values,
            baseline_held,
            errors,
            rules: verdict,
            rule_statuses: self.rules.statuses().to_vec(),
            judges,
            decision,
        }
    }

    /// Remembers the stable version's values while it serves; while it
    /// does not (100%), puts the last ones in their place. Which metrics
    /// were held, if any.
    fn hold_baseline(&mut self, values: &mut BTreeMap<String, SideValues>) -> Vec<String> {
        if !self.stable_idle {
            for (name, v) in values.iter() {
                if let Some(x) = v.stable.filter(|x| x.is_finite()) {
                    self.last_stable.insert(name.clone(), x);
                }
            }
            return Vec::new();
        }
        let mut held = Vec::new();
        for (name, v) in values.iter_mut() {
            if let Some(last) = self.last_stable.get(name) {
                v.stable = Some(*last);
                held.push(name.clone());
            }
        }
        held
    }

    /// Adds this evaluation's values to what the judges gathered, and
    /// judges.
    fn judge(&mut self, values: &BTreeMap<String, SideValues>) -> Vec<JudgeResult> {
        let mut out = Vec::with_capacity(self.judges.len());
        for j in &self.judges {
            let g = self.gathered.entry(j.metric.clone()).or_default();
            if let Some(v) = values.get(&j.metric) {
                for (queue, value) in [(&mut g.baseline, v.stable), (&mut g.canary, v.canary)] {
                    if let Some(x) = value.filter(|x| x.is_finite()) {
                        queue.push_back(x);
                        if queue.len() > MAX_JUDGE_VALUES {
                            queue.pop_front();
                        }
                    }
                }
            }
            let (b, c) = (g.baseline.make_contiguous(), g.canary.make_contiguous());
            let (b, c) = (b.to_vec(), c.to_vec());
            out.push(judge::compare(j, &b, &c));
        }
        out
    }

    /// Every metric's values for both sides, and the errors met.
    async fn fetch(&mut self, now: Instant) -> (BTreeMap<String, SideValues>, Vec<String>) {
        let mut values = BTreeMap::new();
        let mut errors = Vec::new();
        match &mut self.source {
            Source::Scrape {
                stable,
                canary,
                queries,
            } => {
                let (s, c) = tokio::join!(stable.scraper.fetch(), canary.scraper.fetch());
                let mut ok = [false, false];
                for (i, (side, target, result)) in
                    [("stable", &mut *stable, s), ("canary", &mut *canary, c)]
                        .into_iter()
                        .enumerate()
                {
                    match result {
                        Ok(samples) => {
                            ok[i] = target.series.push(now, samples);
                            if !ok[i] {
                                errors.push(format!(
                                    "{side}: a scrape older than the last one was ignored"
                                ));
                            }
                        }
                        Err(e) => errors.push(format!("scrape {side}: {e}")),
                    }
                }
                for (name, q) in queries.iter() {
                    let mut side = SideValues::default();
                    for (i, (label, target, slot)) in [
                        ("stable", &*stable, &mut side.stable),
                        ("canary", &*canary, &mut side.canary),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        if !ok[i] {
                            continue;
                        }
                        match q.eval(&target.series, now) {
                            Ok(v) => *slot = v,
                            Err(e) => errors.push(format!("metric `{name}` on {label}: {e}")),
                        }
                    }
                    values.insert(name.clone(), side);
                }
            }
            Source::Prometheus {
                client,
                queries,
                versions,
            } => {
                let mut tasks = tokio::task::JoinSet::new();
                for (i, (name, q)) in queries.iter().enumerate() {
                    let client = client.clone();
                    let (name, q, versions) = (name.clone(), q.clone(), versions.clone());
                    tasks.spawn(async move {
                        (i, prometheus_sides(&client, &name, &q, &versions).await)
                    });
                }
                let mut results = Vec::with_capacity(queries.len());
                while let Some(joined) = tasks.join_next().await {
                    match joined {
                        Ok(r) => results.push(r),
                        Err(e) => errors.push(format!("a Prometheus query task failed: {e}")),
                    }
                }
                // Plan order, whatever order the answers came in.
                results.sort_by_key(|(i, _)| *i);
                for (i, (side, errs)) in results {
                    if let Some((name, _)) = queries.get(i) {
                        values.insert(name.clone(), side);
                    }
                    errors.extend(errs);
                }
            }
        }
        (values, errors)
    }
}

/// The two sides of a metric from Prometheus, with the errors met.
async fn prometheus_sides(
    client: &PrometheusClient,
    name: &str,
    q: &PromQuery,
    versions: &Versions,
) -> (SideValues, Vec<String>) {
    let mut side = SideValues::default();
    let mut errors = Vec::new();
    match q {
        PromQuery::PerVersion(stable, canary) => {
            let (s, c) = tokio::join!(client.query(stable), client.query(canary));
            for (label, result, slot) in [
                ("stable", s, &mut side.stable),
                ("canary", c, &mut side.canary),
            ] {
                match result.and_then(|v| single(&v)) {
                    Ok(v) => *slot = v,
                    Err(e) => errors.push(format!("metric `{name}` ({label}): {e}")),
                }
            }
        }
        PromQuery::Single(query) => match client.query(query).await {
            Ok(PromValue::Vector(v)) if v.iter().any(|(l, _)| l.contains_key(&versions.label)) => {
                let label = versions.label.as_str();
                for (value, slot) in [
                    (versions.stable.as_str(), &mut side.stable),
                    (versions.canary.as_str(), &mut side.canary),
                ] {
                    let mine: Vec<f64> = v
                        .iter()
                        .filter(|(l, _)| l.get(label).map(String::as_str) == Some(value))
                        .map(|(_, x)| *x)
                        .collect();
                    match mine.as_slice() {
                        [] => {}
                        [x] => *slot = Some(*x).filter(|x| !x.is_nan()),
                        many => errors.push(format!(
                            "metric `{name}`: {} series with {label}=\"{value}\"; \
                             aggregate them, e.g. with sum by ({label}) (…)",
                            many.len()
                        )),
                    }
                }
            }
            Ok(v) => match single(&v) {
                Ok(x) => side.canary = x,
                Err(e) => errors.push(format!("metric `{name}`: {e}")),
            },
            Err(e) => errors.push(format!("metric `{name}`: {e}")),
        },
    }
    (side, errors)
}

/// The one value of an answer: `None` for no series or NaN.
fn single(v: &PromValue) -> Result<Option<f64>, String> {
    let x = match v {
        PromValue::Scalar(x) => *x,
        PromValue::Vector(series) => match series.as_slice() {
            [] => return Ok(None),
            [(_, x)] => *x,
            many => {
                return Err(format!(
                    "the query gives {} series; aggregate them into one, e.g. with sum(…), \
                     or keep a `version` label to compare the versions",
                    many.len()
                ));
            }
        },
    };
    Ok(Some(x).filter(|x| !x.is_nan()))
}

/// A number for messages: at most six significant decimals.
pub fn num(v: f64) -> String {
    if !v.is_finite() || v == v.trunc() {
        return format!("{v}");
    }
    if v.abs() < 1e-4 {
        return format!("{v:.2e}");
    }
    let digits = (6 - v.abs().log10().ceil() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A relative effect as a signed percentage.
fn percent(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 {
            "+∞%".into()
        } else {
            "-∞%".into()
        };
    }
    format!("{}{}%", if v > 0.0 { "+" } else { "" }, num(v * 100.0))
}
