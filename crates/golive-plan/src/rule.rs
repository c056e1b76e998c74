//! Analysis rules and rollback-level conditions: a comparison of two
//! arithmetic terms over the metrics of a rollout's analysis, optionally
//! held `for` a duration.
//!
//! ```text
//! error_rate > 5% for 30s
//! canary.error_rate - stable.error_rate > 2%
//! canary.p95_latency > 1.3 * stable.p95_latency for 10s
//! p95_latency > 500ms
//! service_down                      # the same as `service_down == true`
//! ```
//!
//! This module owns the syntax and the pure arithmetic: a bare metric name
//! is the canary's value, `canary.NAME` the same written out, `stable.NAME`
//! the stable version's value over the same minutes (the baseline). A
//! percentage is its fraction (`5%` = 0.05), a duration is seconds
//! (`500ms` = 0.5, the unit of Prometheus latency metrics), `true` is 1 and
//! `false` 0. `+ - * /` and parentheses combine terms. A term that names a
//! metric without a value, or that divides zero by zero, has no value: the
//! rule neither holds nor fails on that evaluation (no data). How long a
//! rule has held, and what holding means for a rollout, is the evaluator's
//! (`golive_rollout::analysis::rules`).

use std::fmt;
use std::time::Duration;

use crate::cond::CondError;
use crate::time::parse_duration;

/// Which version's value a metric reference reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The new version (a bare name, or `canary.NAME`).
    Canary,
    /// The current version, the baseline (`stable.NAME`).
    Stable,
}

impl Side {
    /// `canary` or `stable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Canary => "canary",
            Side::Stable => "stable",
        }
    }
}

/// An arithmetic operator between terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// A constant (percentages, durations and booleans already as numbers).
    Number(f64),
    /// A metric of the analysis, on one side.
    Metric {
        /// Which version.
        side: Side,
        /// The metric's name.
        name: String,
    },
    /// `-term`.
    Neg(Box<Term>),
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: ArithOp,
        /// Left operand.
        lhs: Box<Term>,
        /// Right operand.
        rhs: Box<Term>,
    },
}

impl Term {
    fn visit<'a>(&'a self, f: &mut impl FnMut(Side, &'a str)) {
        match self {
            Term::Number(_) => {}
            Term::Metric { side, name } => f(*side, name),
            Term::Neg(t) => t.visit(f),
            Term::Binary { lhs, rhs, .. } => {
                lhs.visit(f);
                rhs.visit(f);
            }
        }
    }

    /// The term's value; `None` when a metric has no value or the result
    /// is NaN.
    pub fn value(&self, lookup: &dyn Fn(Side, &str) -> Option<f64>) -> Option<f64> {
        let v = match self {
            Term::Number(n) => *n,
            Term::Metric { side, name } => lookup(*side, name)?,
            Term::Neg(t) => -t.value(lookup)?,
            Term::Binary { op, lhs, rhs } => {
                let (a, b) = (lhs.value(lookup)?, rhs.value(lookup)?);
                match op {
                    ArithOp::Add => a + b,
                    ArithOp::Sub => a - b,
                    ArithOp::Mul => a * b,
                    ArithOp::Div => a / b,
                }
            }
        };
        Some(v).filter(|v| !v.is_nan())
    }
}

/// How a rule compares its two terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Cmp {
    const ALL: [(&'static str, Cmp); 6] = [
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("==", Cmp::Eq),
        ("!=", Cmp::Ne),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
    ];

    /// Whether `a cmp b` holds (IEEE: nothing holds on NaN but `!=`).
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
        }
    }

    /// How the operator is written.
    pub fn as_str(self) -> &'static str {
        Cmp::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(s, _)| *s)
            .unwrap_or("==")
    }
}

/// A compiled rule or level condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The rule as written (trimmed), for messages and the journal.
    pub text: String,
    /// The measured side.
    pub lhs: Term,
    /// The comparison.
    pub cmp: Cmp,
    /// What it is compared with.
    pub rhs: Term,
    /// How long it must hold before it fires (zero: at once).
    pub hold: Duration,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
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
        let mut p = P { s: text, i: 0 };
        p.ws();
        if p.i == text.len() {
            return Err(p.err(
                "the rule is empty; write e.g. `error_rate > 5% for 1m`",
                0,
                1,
            ));
        }
        let lhs = p.sum(0)?;
        p.ws();
        let (cmp, rhs) = if p.i == text.len() || p.at_for() {
            (Cmp::Eq, Term::Number(1.0))
        } else {
            let cmp = p.cmp()?;
            p.ws();
            (cmp, p.sum(0)?)
        };
        p.ws();
        let mut hold = Duration::ZERO;
        if p.at_for() {
            p.i += 3;
            p.ws();
            let start = p.i;
            let word = p.word();
            if word.is_empty() {
                return Err(p.err("expected a duration after `for`, e.g. `for 2m`", start, 1));
            }
            hold = parse_duration(word).map_err(|m| p.err(m, start, word.len()))?;
            p.ws();
        }
        if p.i < text.len() {
            let rest = p.rest();
            return Err(p.err(
                format!("unexpected `{}` after the rule", rest.trim()),
                p.i,
                rest.len(),
            ));
        }
        Ok(Rule {
            text: text.trim().to_string(),
            lhs,
            cmp,
            rhs,
            hold,
        })
    }

    /// Every metric the rule reads, with the side it reads.
    pub fn metrics(&self) -> Vec<(Side, &str)> {
        let mut out = Vec::new();
        self.lhs.visit(&mut |s, n| out.push((s, n)));
        self.rhs.visit(&mut |s, n| out.push((s, n)));
        out
    }

    /// Whether the rule compares with the stable version (a baseline rule).
    pub fn reads_baseline(&self) -> bool {
        self.metrics().iter().any(|(s, _)| *s == Side::Stable)
    }

    /// Both terms' values, or `None` when either has no value.
    pub fn sides(&self, lookup: &dyn Fn(Side, &str) -> Option<f64>) -> Option<Sides> {
        Some(Sides {
            lhs: self.lhs.value(lookup)?,
            rhs: self.rhs.value(lookup)?,
        })
    }
}

/// The deepest nesting of parentheses (keeps recursion shallow).
const MAX_DEPTH: usize = 32;

struct P<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> P<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.i..).unwrap_or("")
    }

    fn ws(&mut self) {
        let r = self.rest();
        self.i += r.len() - r.trim_start().len();
    }

    fn err(&self, message: impl Into<String>, at: usize, len: usize) -> CondError {
        CondError {
            message: message.into(),
            at,
            len: len.max(1),
        }
    }

    fn at_for(&self) -> bool {
        let r = self.rest();
        r.strip_prefix("for")
            .is_some_and(|after| after.is_empty() || after.starts_with(char::is_whitespace))
    }

    fn word(&mut self) -> &'a str {
        let r = self.rest();
        let n = r.find(char::is_whitespace).unwrap_or(r.len());
        self.i += n;
        &r[..n]
    }

    fn cmp(&mut self) -> Result<Cmp, CondError> {
        let r = self.rest();
        for (text, cmp) in Cmp::ALL {
            if r.starts_with(text) {
                self.i += text.len();
                return Ok(cmp);
            }
        }
        let start = self.i;
        let bad = self.word().to_string();
        let hint = crate::cond::op_hint(&bad);
        Err(self.err(
            format!("expected a comparison, found `{bad}`{hint}; use <, <=, >, >=, == or !="),
            start,
            bad.len(),
        ))
    }

    /// `product (('+'|'-') product)*`
    fn sum(&mut self, depth: usize) -> Result<Term, CondError> {
        let mut lhs = self.product(depth)?;
        loop {
            self.ws();
            let op = match self.rest().chars().next() {
                Some('+') => ArithOp::Add,
                Some('-') => ArithOp::Sub,
                _ => return Ok(lhs),
            };
            self.i += 1;
            let rhs = self.product(depth)?;
            lhs = Term::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    /// `unary (('*'|'/') unary)*`
    fn product(&mut self, depth: usize) -> Result<Term, CondError> {
        let mut lhs = self.unary(depth)?;
        loop {
            self.ws();
            let op = match self.rest().chars().next() {
                Some('*') => ArithOp::Mul,
                Some('/') => ArithOp::Div,
                _ => return Ok(lhs),
            };
            self.i += 1;
            let rhs = self.unary(depth)?;
            lhs = Term::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Term, CondError> {
        self.ws();
        if depth > MAX_DEPTH {
            return Err(self.err(
                format!("the rule is nested too deeply (more than {MAX_DEPTH} levels)"),
                self.i,
                1,
            ));
        }
        let start = self.i;
        let r = self.rest();
        let Some(c) = r.chars().next() else {
            return Err(self.err(
                "expected a value: a metric, a number, a percentage or a duration",
                start,
                1,
            ));
        };
        if c == '-' {
            self.i += 1;
            return Ok(Term::Neg(Box::new(self.unary(depth + 1)?)));
        }
        if c == '(' {
            self.i += 1;
            let t = self.sum(depth + 1)?;
            self.ws();
            if !self.rest().starts_with(')') {
                return Err(self.err("expected `)` to close `(`", self.i, 1));
            }
            self.i += 1;
            return Ok(t);
        }
        if c.is_ascii_digit() || c == '.' {
            return self.number();
        }
        if c.is_ascii_alphabetic() || c == '_' {
            return self.metric();
        }
        Err(self.err(
            format!("unexpected `{c}`; expected a metric, a number, a percentage or a duration"),
            start,
            c.len_utf8(),
        ))
    }

    fn number(&mut self) -> Result<Term, CondError> {
        let start = self.i;
        let r = self.rest();
        let n = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or(r.len());
        let token = &r[..n];
        self.i += n;
        if self.rest().starts_with('%') {
            self.i += 1;
            return match token.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Term::Number(v / 100.0)),
                _ => Err(self.err(format!("`{token}%` is not a percentage"), start, n + 1)),
            };
        }
        if let Ok(v) = token.parse::<f64>() {
            if !v.is_finite() {
                return Err(self.err(format!("`{token}` is not a finite number"), start, n));
            }
            return Ok(Term::Number(v));
        }
        // `0.5s`, `1.5m`: a fraction of a unit (parse_duration takes whole numbers).
        let digits = token
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(token.len());
        let unit = match &token[digits..] {
            "ms" => Some(0.001),
            "s" => Some(1.0),
            "m" => Some(60.0),
            "h" => Some(3600.0),
            _ => None,
        };
        if let (Some(unit), Ok(v)) = (unit, token[..digits].parse::<f64>())
            && v.is_finite()
        {
            return Ok(Term::Number(v * unit));
        }
        match parse_duration(token) {
            Ok(d) => Ok(Term::Number(d.as_secs_f64())),
            Err(_) => Err(self.err(
                format!(
                    "`{token}` is not a number, a percentage (`5%`) or a duration (`500ms`, `2s`)"
                ),
                start,
                n,
            )),
        }
    }

    fn ident(&mut self) -> &'a str {
        let r = self.rest();
        let n = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(r.len());
        self.i += n;
        &r[..n]
    }

    fn metric(&mut self) -> Result<Term, CondError> {
        let start = self.i;
        let first = self.ident();
        match first {
            "true" => return Ok(Term::Number(1.0)),
            "false" => return Ok(Term::Number(0.0)),
            "for" => {
                return Err(self.err("expected a value before `for`", start, 3));
            }
            _ => {}
        }
        let side = match first {
            "canary" => Some(Side::Canary),
            "stable" => Some(Side::Stable),
            _ => None,
        };
        if let Some(side) = side
            && self.rest().starts_with('.')
        {
            self.i += 1;
            let at = self.i;
            let name = self.ident();
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(self.err(format!("expected a metric name after `{first}.`"), at, 1));
            }
            return Ok(Term::Metric {
                side,
                name: name.to_string(),
            });
        }
        if self.rest().starts_with('.') {
            return Err(self.err(
                format!(
                    "`{first}.` is not a version; write `canary.NAME` or `stable.NAME` (a bare NAME is the canary's)"
                ),
                start,
                first.len() + 1,
            ));
        }
        Ok(Term::Metric {
            side: Side::Canary,
            name: first.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
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
        r.sides(&values).map(|s| r.cmp.holds(s.lhs, s.rhs))
    }

    #[test]
    fn reads_baseline_rules_literals_and_holds() {
        assert_eq!(holds("error_rate > 5%"), Some(true));
        assert_eq!(
            holds("canary.error_rate - stable.error_rate > 2%"),
            Some(true)
        );
        assert_eq!(
            holds("canary.error_rate - stable.error_rate > 5%"),
            Some(false)
        );
        assert_eq!(holds("canary.p95 > 1.3 * stable.p95"), Some(false));
        assert_eq!(holds("canary.p95 >= 1.3 * stable.p95"), Some(true));
        assert_eq!(holds("p95 > 100ms"), Some(true));
        assert_eq!(holds("p95 < 0.2s"), Some(true));
        assert_eq!(holds("(error_rate - 0.01) * 100 > 5"), Some(true));
        assert_eq!(holds("missing > 1"), None);
        let r = Rule::parse("error_rate > 5% for 2m").expect("ok");
        assert_eq!(r.hold, Duration::from_secs(120));
        assert_eq!(r.text, "error_rate > 5% for 2m");
        let r = Rule::parse("service_down").expect("bare");
        assert_eq!((r.cmp, r.rhs), (Cmp::Eq, Term::Number(1.0)));
        let r = Rule::parse("ready == false for 10s").expect("bool");
        assert_eq!(r.rhs, Term::Number(0.0));
        assert!(
            Rule::parse("canary.p95 > 1.3 * stable.p95")
                .expect("ok")
                .reads_baseline()
        );
        assert!(!Rule::parse("p95 > 1").expect("ok").reads_baseline());
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = Rule::parse("error_rate = 5%").expect_err("op");
        assert_eq!((e.at, e.len), (11, 1));
        assert!(e.message.contains("did you mean `==`"), "{e:?}");
        let e = Rule::parse("error_rate > 5% for").expect_err("for");
        assert!(e.message.contains("after `for`"), "{e:?}");
        let e = Rule::parse("error_rate > 5x").expect_err("unit");
        assert_eq!(e.at, 13);
        let e = Rule::parse("baseline.p95 > 1").expect_err("side");
        assert!(e.message.contains("canary.NAME"), "{e:?}");
        let e = Rule::parse("p95 > (1 + 2").expect_err("paren");
        assert!(e.message.contains("`)`"), "{e:?}");
        let e = Rule::parse("p95 > 1 for 2m extra").expect_err("trailing");
        assert!(e.message.contains("extra"), "{e:?}");
        let deep = format!("p95 > {}1{}", "(".repeat(40), ")".repeat(40));
        assert!(Rule::parse(&deep).is_err());
    }
}
