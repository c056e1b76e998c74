//! The readiness report: what `golive ready` found, scored, in four formats.
//!
//! Scoring (documented in the README): every check weighs 1, a critical
//! check weighs 3. The score is the weighted share of passing checks,
//! 0–100. The plan is ready when no critical check failed and the score
//! reaches `--min-score` (default 80). Levels: gold at 100, silver from 90,
//! bronze from 75.

use std::fmt::Write as _;

use comfy_table::{Cell, Table, presets::UTF8_FULL_CONDENSED};
use golive_engine::report::xml_escape as xml;
use golive_probe::{CheckResult, Status};
use serde::Serialize;

/// Weight of a critical check in the score.
pub const CRITICAL_WEIGHT: u32 = 3;

/// One check of the report.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// Item id.
    pub id: String,
    /// Item title.
    pub title: String,
    /// Phase id.
    pub phase: String,
    /// Probe kind (`http`, `tcp`, ...).
    pub probe: &'static str,
    /// A critical failure makes the plan not ready.
    pub critical: bool,
    /// Responsible role.
    pub owner: Option<String>,
    /// The probe's result.
    #[serde(flatten)]
    pub result: CheckResult,
}

impl CheckReport {
    /// Why it did not pass, in one line: the error or the failed conditions with observed values.
    pub fn reason(&self) -> String {
        if let Some(e) = &self.result.error {
            return e.clone();
        }
        self.result
            .conditions
            .iter()
            .filter(|c| !c.passed)
            .map(|c| match &c.observed {
                Some(o) => format!("{} (observed {o})", c.condition),
                None => c.condition.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Counts by status.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// All checks.
    pub total: usize,
    /// Passed.
    pub pass: usize,
    /// Conditions not met.
    pub fail: usize,
    /// Target not observable.
    pub error: usize,
}

/// The whole report; its JSON form is the documented `--output json` schema.
#[derive(Clone, Debug, Serialize)]
pub struct ReadinessReport {
    /// Schema version of this JSON document.
    pub schema: u32,
    /// Plan name.
    pub plan: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Wall time of the whole run.
    pub duration_ms: u64,
    /// The verdict.
    pub ready: bool,
    /// Weighted share of passing checks, 0–100.
    pub score: u32,
    /// `gold`, `silver`, `bronze` or none.
    pub level: Option<&'static str>,
    /// Score needed to be ready.
    pub min_score: u32,
    /// Critical checks that did not pass.
    pub critical_failures: usize,
    /// Counts by status.
    pub counts: Counts,
    /// Every check, in plan order.
    pub checks: Vec<CheckReport>,
}

impl ReadinessReport {
    /// Scores `checks` and gives the verdict.
    pub fn new(
        plan: String,
        started_at: String,
        duration_ms: u64,
        min_score: u32,
        checks: Vec<CheckReport>,
    ) -> Self {
        let mut counts = Counts {
            total: checks.len(),
            ..Counts::default()
        };
        let (mut got, mut of) = (0u32, 0u32);
        let mut critical_failures = 0;
        for c in &checks {
            let w = if c.critical { CRITICAL_WEIGHT } else { 1 };
            of += w;
            match c.result.status {
                Status::Pass => {
                    counts.pass += 1;
                    got += w;
                }
                Status::Fail => counts.fail += 1,
                Status::Error => counts.error += 1,
            }
            if c.critical && c.result.status != Status::Pass {
                critical_failures += 1;
            }
        }
        // No check is nothing verified, not a perfect score: a plan imported
        // from a checklist of manual steps must not read as gold.
        let score = (got * 100).checked_div(of).unwrap_or(0);
        let level = match score {
            _ if checks.is_empty() => None,
            100 => Some("gold"),
            90..=99 => Some("silver"),
            75..=89 => Some("bronze"),
            _ => None,
        };
        ReadinessReport {
            schema: 1,
            plan,
            started_at,
            duration_ms,
            ready: !checks.is_empty() && critical_failures == 0 && score >= min_score,
            score,
            level,
            min_score,
            critical_failures,
            counts,
            checks,
        }
    }

    /// Checks ordered for people: failures first (critical before others), then passes, each in plan order.
    fn for_people(&self) -> Vec<&CheckReport> {
        let mut v: Vec<&CheckReport> = self.checks.iter().collect();
        v.sort_by_key(|c| match (c.result.status, c.critical) {
            (Status::Pass, _) => 2,
            (_, true) => 0,
            (_, false) => 1,
        });
        v
    }

    fn verdict(&self) -> String {
        if self.counts.total == 0 {
            return "NOT READY: no checks ran, so nothing was verified; add `check` items (probes) to the plan".into();
        }
        let level = self.level.map(|l| format!(" ({l})")).unwrap_or_default();
        format!(
            "{}: score {}/100{level}, {} of {} checks passed, {} failed, {} errors, {} critical failure(s); needs {} with no critical failure",
            if self.ready { "READY" } else { "NOT READY" },
            self.score,
            self.counts.pass,
            self.counts.total,
            self.counts.fail,
            self.counts.error,
            self.critical_failures,
            self.min_score,
        )
    }

    /// A table for a terminal.
    pub fn terminal(&self) -> String {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["", "Check", "Phase", "Probe", "Time", "Reason / observed"]);
        for c in self.for_people() {
            let mark = match c.result.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::Error => "ERROR",
            };
            let detail = if c.result.status == Status::Pass {
                c.result
                    .conditions
                    .iter()
                    .filter_map(|k| {
                        k.observed
                            .as_ref()
                            .map(|o| format!("{}: {o}", subject(&k.condition)))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                c.reason()
            };
            table.add_row([
                Cell::new(mark),
                Cell::new(format!(
                    "{}{}",
                    c.id,
                    if c.critical { " (critical)" } else { "" }
                )),
                Cell::new(&c.phase),
                Cell::new(c.probe),
                Cell::new(format!("{}ms", c.result.duration.as_millis())),
                Cell::new(detail),
            ]);
        }
        format!("{table}\n{}\n", self.verdict())
    }

    /// A Markdown report, e.g. for a pull request or a change ticket.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Readiness: {}\n", self.plan);
        let _ = writeln!(s, "**{}**\n", self.verdict());
        let _ = writeln!(
            s,
            "Run at {} in {} ms.\n",
            self.started_at, self.duration_ms
        );
        let _ = writeln!(
            s,
            "| Status | Check | Phase | Probe | Time | Reason / observed |"
        );
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
        for c in self.for_people() {
            let status = match c.result.status {
                Status::Pass => "✅ pass",
                Status::Fail => "❌ fail",
                Status::Error => "⚠️ error",
            };
            let _ = writeln!(
                s,
                "| {status} | {}{} | {} | {} | {} ms | {} |",
                md(&c.title),
                if c.critical { " **(critical)**" } else { "" },
                md(&c.phase),
                c.probe,
                c.result.duration.as_millis(),
                md(&if c.result.status == Status::Pass {
                    String::new()
                } else {
                    c.reason()
                }),
            );
        }
        s
    }

    /// JUnit XML: one test suite, one test case per check; failures and errors carry the reason.
    pub fn junit(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let secs = |ms: u128| format!("{:.3}", ms as f64 / 1000.0);
        let _ = writeln!(
            s,
            "<testsuites name=\"golive ready\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
            self.counts.total,
            self.counts.fail,
            self.counts.error,
            secs(u128::from(self.duration_ms))
        );
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\" timestamp=\"{}\">",
            xml(&self.plan),
            self.counts.total,
            self.counts.fail,
            self.counts.error,
            secs(u128::from(self.duration_ms)),
            xml(&self.started_at)
        );
        for c in &self.checks {
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
                xml(&c.phase),
                xml(&c.id),
                secs(c.result.duration.as_millis())
            );
            let tag = match c.result.status {
                Status::Pass => {
                    s.push_str("/>\n");
                    continue;
                }
                Status::Fail => "failure",
                Status::Error => "error",
            };
            let reason = c.reason();
            let _ = writeln!(
                s,
                ">\n      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>\n    </testcase>",
                xml(&reason),
                c.probe,
                xml(&format!("{}\n{}", c.title, reason))
            );
        }
        s.push_str("  </testsuite>\n</testsuites>\n");
        s
    }
}

fn subject(condition: &str) -> &str {
    condition.split_whitespace().next().unwrap_or(condition)
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use golive_probe::ConditionResult;

    use super::*;

    fn check(id: &str, critical: bool, status: Status) -> CheckReport {
        CheckReport {
            id: id.into(),
            title: format!("Title of {id} <&> \"x\""),
            phase: "readiness".into(),
            probe: "http",
            critical,
            owner: None,
            result: CheckResult {
                status,
                conditions: vec![ConditionResult {
                    condition: "status == 200".into(),
                    passed: status == Status::Pass,
                    observed: Some(if status == Status::Pass { "200" } else { "503" }.into()),
                }],
                error: (status == Status::Error).then(|| "connection refused \u{1} <x>".into()),
                duration: Duration::from_millis(12),
                attempts: 1,
            },
        }
    }

    #[test]
    fn critical_failures_fail_the_report_whatever_the_score() {
        let mut checks: Vec<_> = (0..20)
            .map(|i| check(&format!("c{i}"), false, Status::Pass))
            .collect();
        checks.push(check("db", true, Status::Fail));
        let r = ReadinessReport::new("p".into(), "t".into(), 5, 80, checks);
        assert_eq!(r.score, 20 * 100 / 23);
        assert!(!r.ready);
        assert_eq!(r.critical_failures, 1);
    }

    #[test]
    fn non_critical_failures_weigh_into_the_score() {
        let mut checks: Vec<_> = (0..9)
            .map(|i| check(&format!("c{i}"), false, Status::Pass))
            .collect();
        checks.push(check("x", false, Status::Error));
        let r = ReadinessReport::new("p".into(), "t".into(), 5, 80, checks.clone());
        assert_eq!((r.score, r.level, r.ready), (90, Some("silver"), true));
        let r = ReadinessReport::new("p".into(), "t".into(), 5, 95, checks);
        assert!(!r.ready);
    }

    #[test]
    fn people_see_failures_first() {
        let r = ReadinessReport::new(
            "p".into(),
            "t".into(),
            5,
            80,
            vec![
                check("ok", false, Status::Pass),
                check("minor", false, Status::Fail),
                check("db", true, Status::Error),
            ],
        );
        let order: Vec<&str> = r.for_people().iter().map(|c| c.id.as_str()).collect();
        assert_eq!(order, ["db", "minor", "ok"]);
        let t = r.terminal();
        assert!(t.find("db").expect("db") < t.find("minor").expect("minor"));
        assert!(t.contains("status == 200 (observed 503)"), "{t}");
        assert!(t.contains("NOT READY"), "{t}");
    }

    #[test]
    fn junit_escapes_everything() {
        let r = ReadinessReport::new(
            "p&q".into(),
            "t".into(),
            5,
            80,
            vec![
                check("ok", false, Status::Pass),
                check("bad", false, Status::Error),
            ],
        );
        let x = r.junit();
        assert!(x.contains("tests=\"2\" failures=\"0\" errors=\"1\""), "{x}");
        assert!(x.contains("connection refused  &lt;x&gt;"), "{x}");
        assert!(!x.contains('\u{1}'));
        assert!(x.contains("p&amp;q"));
    }
}
