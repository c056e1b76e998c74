//! The condition language, one grammar and one evaluator for every
//! comparison of a plan: check expectations (`expect:` of readiness
//! checks), analysis rules and rollback-level conditions.
//!
//! ```text
//! status == 200                       # checks: fields of a probe's observation
//! body.$.status == "UP"
//! len(body.$.items) > 0
//! response_time < 2 * 250ms
//! canary.error_rate - stable.error_rate > 2%     # rules: metrics of a rollout
//! canary.p95 > 1.3 * stable.p95 for 10s
//! service_down                        # the same as `service_down == true`
//! ```
//!
//! A condition compares two terms with one [`Op`], optionally held `for` a
//! duration. A term is a literal (number, `5%` = 0.05, duration, `true` /
//! `false`, quoted text), a reference the caller resolves, or arithmetic
//! (`+ - * /`, parentheses) over numbers. This module owns the syntax, what
//! each [`Context`] may use (rejected at compile time with the offending
//! token's byte offset, so a diagnostic points at it) and the evaluation;
//! what comparing two values means is [`crate::value`]'s.
//!
//! The contexts differ only where their subjects differ:
//!
//! - [`Context::Check`]: references are dotted paths into an observation
//!   (`header.X-Request-Id`, `body.$['k-1']`, `len(answers)`), so a path
//!   may contain `-` and `*`: arithmetic operators need spaces around them.
//!   On the right of the operator a bare word is text (`== UP`). No `for`,
//!   no `canary.` / `stable.`.
//! - [`Context::Analysis`]: references are metrics (a bare name is the
//!   canary's, `canary.NAME` the same written out, `stable.NAME` the
//!   baseline's); durations are seconds and booleans 1 and 0, because
//!   metrics are numbers. No text, no `len(…)`, `contains` or `matches`.

use std::fmt;
use std::time::Duration;

use crate::time::parse_duration;
use crate::value::{self, Value};

/// What a condition is written for, which decides what it may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// A readiness check's `expect:`, judged against a probe's observation.
    Check,
    /// An analysis rule or a rollback level's condition, over metrics.
    Analysis,
}

impl Context {
    fn noun(self) -> &'static str {
        match self {
            Context::Check => "condition",
            Context::Analysis => "rule",
        }
    }

    fn expected_value(self) -> &'static str {
        match self {
            Context::Check => {
                "what to measure, e.g. `status`, `response_time`, `body.$.status`, or a value"
            }
            Context::Analysis => "a metric, a number, a percentage or a duration",
        }
    }
}

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

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    NotContains,
    Matches,
}

impl Op {
    const ALL: [(&'static str, Op); 9] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
        ("!contains", Op::NotContains),
        ("contains", Op::Contains),
        ("matches", Op::Matches),
    ];

    /// How the operator is written.
    pub fn as_str(self) -> &'static str {
        Op::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map(|(s, _)| *s)
            .unwrap_or("==")
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

impl ArithOp {
    fn as_char(self) -> char {
        match self {
            ArithOp::Add => '+',
            ArithOp::Sub => '-',
            ArithOp::Mul => '*',
            ArithOp::Div => '/',
        }
    }
}

/// A field of a probe's observation (checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    /// A dotted path: `status`, `body.$.status`, `cert.days_left`, `header.Server`.
    pub path: String,
    /// Wrapped in `len(…)`.
    pub len: bool,
    /// Byte offset of the path in the condition text.
    pub at: usize,
}

impl Path {
    /// The first segment of the path (`body` for `body.$.status`).
    pub fn root(&self) -> &str {
        self.path.split(['.', '[']).next().unwrap_or(&self.path)
    }
}

/// What a reference names; the caller of [`Condition::evaluate`] resolves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ref {
    /// A field of an observation ([`Context::Check`]).
    Path(Path),
    /// A metric of the analysis, on one side ([`Context::Analysis`]).
    Metric {
        /// Which version.
        side: Side,
        /// The metric's name.
        name: String,
    },
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// A constant: a number (percentages as fractions), a duration
    /// ([`Value::Seconds`]), a boolean or text.
    Lit(Value),
    /// What the caller looks up.
    Ref(Ref),
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
    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Ref)) {
        match self {
            Term::Lit(_) => {}
            Term::Ref(r) => f(r),
            Term::Neg(t) => t.visit(f),
            Term::Binary { lhs, rhs, .. } => {
                lhs.visit(f);
                rhs.visit(f);
            }
        }
    }

    fn value(&self, lookup: &mut dyn FnMut(&Ref) -> Result<Value, String>) -> Result<Value, Miss> {
        let v = match self {
            Term::Lit(v) => v.clone(),
            Term::Ref(r @ Ref::Path(p)) if p.len => {
                let v = lookup(r).map_err(Miss::NoValue)?;
                match v.count() {
                    Ok(n) => Value::Number(n as f64),
                    Err(why) => return Err(Miss::Wrong { shown: v, why }),
                }
            }
            Term::Ref(r) => lookup(r).map_err(Miss::NoValue)?,
            Term::Neg(t) => arith({
                let v = t.value(lookup)?;
                match v {
                    Value::Seconds(s) => Value::Seconds(-s),
                    other => Value::Number(-numeric(&other)?),
                }
            })?,
            Term::Binary { op, lhs, rhs } => arith({
                let (a, b) = (lhs.value(lookup)?, rhs.value(lookup)?);
                let (x, y) = (numeric(&a)?, numeric(&b)?);
                let secs = (
                    matches!(a, Value::Seconds(_)),
                    matches!(b, Value::Seconds(_)),
                );
                let n = match op {
                    ArithOp::Add => x + y,
                    ArithOp::Sub => x - y,
                    ArithOp::Mul => x * y,
                    ArithOp::Div => x / y,
                };
                // A duration scaled or shifted is still a duration (shown as one).
                let duration = match op {
                    ArithOp::Add | ArithOp::Sub => secs.0 || secs.1,
                    ArithOp::Mul => secs.0 != secs.1,
                    ArithOp::Div => secs.0 && !secs.1,
                };
                if duration {
                    Value::Seconds(n)
                } else {
                    Value::Number(n)
                }
            })?,
        };
        Ok(v)
    }
}

/// An arithmetic result; `0 / 0` has no value, as a metric without data.
fn arith(v: Value) -> Result<Value, Miss> {
    match v {
        Value::Number(n) | Value::Seconds(n) if n.is_nan() => {
            Err(Miss::NoValue("not a number".into()))
        }
        v => Ok(v),
    }
}

fn numeric(v: &Value) -> Result<f64, Miss> {
    v.number().ok_or_else(|| Miss::Wrong {
        shown: v.clone(),
        why: "arithmetic needs numbers".into(),
    })
}

/// Why a term has no usable value.
enum Miss {
    /// Nothing to read: the reason.
    NoValue(String),
    /// A value that the term cannot use, and why.
    Wrong { shown: Value, why: String },
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Lit(Value::Number(n)) => write!(f, "{n}"),
            Term::Lit(Value::Text(t)) => write!(f, "{t:?}"),
            Term::Lit(v) => write!(f, "{v}"),
            Term::Ref(Ref::Path(p)) if p.len => write!(f, "len({})", p.path),
            Term::Ref(Ref::Path(p)) => f.write_str(&p.path),
            Term::Ref(Ref::Metric { side, name }) => write!(f, "{}.{name}", side.as_str()),
            Term::Neg(t) if matches!(**t, Term::Binary { .. }) => write!(f, "-({t})"),
            Term::Neg(t) => write!(f, "-{t}"),
            Term::Binary { op, lhs, rhs } => {
                for (i, t) in [lhs, rhs].into_iter().enumerate() {
                    if i == 1 {
                        write!(f, " {} ", op.as_char())?;
                    }
                    if matches!(**t, Term::Binary { .. }) {
                        write!(f, "({t})")?;
                    } else {
                        write!(f, "{t}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The regular expression of `matches`, compiled once with the plan.
#[derive(Clone, Debug)]
struct Pattern {
    re: Result<regex::Regex, String>,
    at: usize,
    len: usize,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        (self.at, self.len) == (other.at, other.len)
    }
}

/// A compiled condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The condition as written (trimmed), for messages and the journal.
    pub text: String,
    /// The measured side.
    pub lhs: Term,
    /// The comparison.
    pub op: Op,
    /// What it is compared with.
    pub rhs: Term,
    /// How long it must hold before it counts (zero: at once; checks have none).
    pub hold: Duration,
    pattern: Option<Pattern>,
}

/// Whether a condition held on one evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The comparison is true.
    Held,
    /// The comparison is false, or makes no sense for the values (the
    /// evaluation's `why` says so).
    NotHeld,
    /// A term has no value: a reference with nothing behind it, or a
    /// result that is not a number (`0 / 0`).
    NoValue,
}

/// One evaluation of a condition, with what it saw for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Held, not held, or no value.
    pub outcome: Outcome,
    /// The left term's value, when it has one.
    pub lhs: Option<Value>,
    /// The right term's value, when it has one.
    pub rhs: Option<Value>,
    /// Why there is no value, or why the comparison makes no sense.
    pub why: Option<String>,
}

impl Condition {
    /// Evaluates the condition; `lookup` resolves each reference to its
    /// value, or says why there is none.
    pub fn evaluate(&self, lookup: &mut dyn FnMut(&Ref) -> Result<Value, String>) -> Evaluation {
        let miss = |m: Miss, lhs: Option<Value>| match m {
            Miss::NoValue(why) => Evaluation {
                outcome: Outcome::NoValue,
                lhs,
                rhs: None,
                why: Some(why),
            },
            Miss::Wrong { shown, why } => Evaluation {
                outcome: Outcome::NotHeld,
                lhs: Some(lhs.unwrap_or(shown)),
                rhs: None,
                why: Some(why),
            },
        };
        let lhs = match self.lhs.value(lookup) {
            Ok(v) => v,
            Err(m) => return miss(m, None),
        };
        let rhs = match self.rhs.value(lookup) {
            Ok(v) => v,
            Err(m) => return miss(m, Some(lhs)),
        };
        let result = match self.pattern.as_ref().map(|p| p.re.as_ref()) {
            Some(Err(e)) => Err(e.clone()),
            re => value::holds(&lhs, self.op, &rhs, re.and_then(Result::ok)),
        };
        let (outcome, why) = match result {
            Ok(true) => (Outcome::Held, None),
            Ok(false) => (Outcome::NotHeld, None),
            Err(why) => (Outcome::NotHeld, Some(why)),
        };
        Evaluation {
            outcome,
            lhs: Some(lhs),
            rhs: Some(rhs),
            why,
        }
    }

    /// Every reference the condition reads, left to right.
    pub fn refs(&self) -> Vec<&Ref> {
        let mut out = Vec::new();
        self.lhs.visit(&mut |r| out.push(r));
        self.rhs.visit(&mut |r| out.push(r));
        out
    }

    /// An invalid regular expression of `matches`, pointing at the pattern:
    /// `golive validate` reports it, so no check runs with it.
    pub fn pattern_error(&self) -> Option<CondError> {
        let p = self.pattern.as_ref()?;
        let e = p.re.as_ref().err()?;
        Some(CondError {
            message: e.clone(),
            at: p.at,
            len: p.len,
        })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.lhs, self.op.as_str(), self.rhs)?;
        if !self.hold.is_zero() {
            write!(f, " for {}", crate::time::format_duration(self.hold))?;
        }
        Ok(())
    }
}

/// A parse error with the byte offset (into the condition text) it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CondError {
    /// What is wrong.
    pub message: String,
    /// Byte offset of the offending token.
    pub at: usize,
    /// Length of the offending token.
    pub len: usize,
}

/// Parses a condition for `ctx`. A bare term (`service_down`) means
/// `service_down == true`.
pub fn parse(text: &str, ctx: Context) -> Result<Condition, CondError> {
    let mut p = P {
        s: text,
        i: 0,
        ctx,
        ops: 0,
    };
    p.ws();
    if p.i == text.len() {
        return Err(p.err(
            match ctx {
                Context::Check => "the condition is empty; write e.g. `status == 200`".to_string(),
                Context::Analysis => {
                    "the rule is empty; write e.g. `error_rate > 5% for 1m`".to_string()
                }
            },
            0,
            1,
        ));
    }
    let lhs = p.sum(0)?;
    p.ws();
    let (op, rhs, pattern) = if p.i == text.len() || p.at_for() {
        (Op::Eq, p.boolean(true), None)
    } else {
        let op = p.op()?;
        p.ws();
        let at = p.i;
        let rhs = p.operand()?;
        let pattern = match &rhs {
            Term::Lit(Value::Text(t)) if op == Op::Matches => Some(Pattern {
                re: regex::Regex::new(t).map_err(|e| {
                    let e = e.to_string();
                    let last = e.lines().last().unwrap_or(&e).trim();
                    let last = last.strip_prefix("error: ").unwrap_or(last);
                    format!("invalid regular expression: {last}")
                }),
                at,
                len: p.i - at,
            }),
            _ if op == Op::Matches => {
                return Err(p.err("`matches` takes a quoted regular expression", at, p.i - at));
            }
            _ => None,
        };
        (op, rhs, pattern)
    };
    p.ws();
    let mut hold = Duration::ZERO;
    if p.at_for() {
        if ctx == Context::Check {
            return Err(p.err(
                "`for` is only allowed in rollout rules and rollback levels",
                p.i,
                p.rest().trim_end().len(),
            ));
        }
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
            format!("unexpected `{}` after the {}", rest.trim(), ctx.noun()),
            p.i,
            rest.len(),
        ));
    }
    Ok(Condition {
        text: text.trim().to_string(),
        lhs,
        op,
        rhs,
        hold,
        pattern,
    })
}

/// The operator a mistyped one probably meant, as a message suffix.
fn op_hint(bad: &str) -> &'static str {
    match bad {
        "=" => " (did you mean `==`?)",
        "=<" => " (did you mean `<=`?)",
        "=>" => " (did you mean `>=`?)",
        "<>" => " (did you mean `!=`?)",
        _ => "",
    }
}

fn path_char(c: char) -> bool {
    c.is_alphanumeric() || "_.$[]-*'\"".contains(c)
}

/// The deepest nesting of parentheses (keeps recursion shallow).
const MAX_DEPTH: usize = 32;

/// The most arithmetic operators of one condition: a chain `1 + 1 + …`
/// nests as deep as it is long, and evaluating it recurses that deep.
const MAX_OPS: usize = 64;

struct P<'a> {
    s: &'a str,
    i: usize,
    ctx: Context,
    /// Arithmetic operators so far: each nests the tree one level deeper.
    ops: usize,
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

    /// `true` or `false`: a number in analysis, where metrics are numbers.
    fn boolean(&self, b: bool) -> Term {
        match self.ctx {
            Context::Check => Term::Lit(Value::Bool(b)),
            Context::Analysis => Term::Lit(Value::Number(if b { 1.0 } else { 0.0 })),
        }
    }

    fn op(&mut self) -> Result<Op, CondError> {
        let start = self.i;
        let r = self.rest();
        if let Some((text, op)) = Op::ALL.into_iter().find(|(t, _)| r.starts_with(t)) {
            self.i += text.len();
            if self.ctx == Context::Analysis
                && matches!(op, Op::Contains | Op::NotContains | Op::Matches)
            {
                return Err(self.err(
                    format!(
                        "`{text}` compares text; rules compare numbers: use <, <=, >, >=, == or !="
                    ),
                    start,
                    text.len(),
                ));
            }
            return Ok(op);
        }
        let bad = self.word().to_string();
        let hint = op_hint(&bad);
        Err(self.err(
            match self.ctx {
                Context::Check => format!(
                    "unknown operator `{bad}`{hint}; use ==, !=, <, <=, >, >=, contains, !contains or matches"
                ),
                Context::Analysis => format!(
                    "expected a comparison, found `{bad}`{hint}; use <, <=, >, >=, == or !="
                ),
            },
            start,
            bad.len(),
        ))
    }

    /// The right side of a comparison. In a check it is a value, and a
    /// bare word there reads as text (`== UP`, `contains text/html`).
    fn operand(&mut self) -> Result<Term, CondError> {
        let start = self.i;
        let r = self.rest();
        // `-5`, `.5`, `-(…)` are numbers; `--verbose` and `.env` are words.
        let numeric = r.trim_start_matches(['-', '.']);
        let bare = self.ctx == Context::Check
            && !r.starts_with(['(', '"', '\''])
            && !numeric.starts_with(|c: char| c.is_ascii_digit() || c == '(');
        if !bare {
            return self.sum(0);
        }
        // A value ends where `for <duration>` begins.
        let end = r
            .match_indices(" for")
            .map(|(i, _)| i)
            .find(|&i| r[i + 4..].is_empty() || r[i + 4..].starts_with(char::is_whitespace))
            .unwrap_or(r.len());
        let raw = r[..end].trim_end();
        match raw {
            "" => return Err(self.err("expected a value after the operator", start, 1)),
            "true" | "false" => return self.sum(0),
            _ if raw.contains(char::is_whitespace) => {
                return Err(self.err(
                    format!("`{raw}` has spaces; quote text values, e.g. \"{raw}\""),
                    start,
                    raw.len(),
                ));
            }
            _ => {}
        }
        self.i += raw.len();
        Ok(Term::Lit(Value::Text(raw.to_string())))
    }

    /// `product (('+'|'-') product)*`
    fn sum(&mut self, depth: usize) -> Result<Term, CondError> {
        self.chain(depth, true)
    }

    /// A sum, or with `sum` false a product: `unary (('*'|'/') unary)*`.
    fn chain(&mut self, depth: usize, sum: bool) -> Result<Term, CondError> {
        let operand = |p: &mut Self| {
            if sum {
                p.chain(depth, false)
            } else {
                p.unary(depth)
            }
        };
        let mut lhs = operand(self)?;
        loop {
            self.ws();
            let op = match (sum, self.rest().chars().next()) {
                (true, Some('+')) => ArithOp::Add,
                (true, Some('-')) => ArithOp::Sub,
                (false, Some('*')) => ArithOp::Mul,
                (false, Some('/')) => ArithOp::Div,
                _ => return Ok(lhs),
            };
            self.ops += 1;
            if self.ops > MAX_OPS {
                return Err(self.err(
                    format!(
                        "the {} has too many operators (more than {MAX_OPS})",
                        self.ctx.noun()
                    ),
                    self.i,
                    1,
                ));
            }
            self.i += 1;
            let rhs = operand(self)?;
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
                format!(
                    "the {} is nested too deeply (more than {MAX_DEPTH} levels)",
                    self.ctx.noun()
                ),
                self.i,
                1,
            ));
        }
        let start = self.i;
        let Some(c) = self.rest().chars().next() else {
            return Err(self.err(
                format!("expected a value: {}", self.ctx.expected_value()),
                start,
                1,
            ));
        };
        match c {
            '-' => {
                self.i += 1;
                Ok(Term::Neg(Box::new(self.unary(depth + 1)?)))
            }
            '(' => {
                self.i += 1;
                let t = self.sum(depth + 1)?;
                self.ws();
                if !self.rest().starts_with(')') {
                    return Err(self.err("expected `)` to close `(`", self.i, 1));
                }
                self.i += 1;
                Ok(t)
            }
            '"' | '\'' => self.text(c),
            c if c.is_ascii_digit() || c == '.' => self.number(),
            // Metric names are ASCII; a field may be any word (`header.Ünï`).
            c if (c.is_alphabetic() && (c.is_ascii() || self.ctx == Context::Check))
                || c == '_' =>
            {
                self.reference()
            }
            c => Err(self.err(
                format!("unexpected `{c}`; expected {}", self.ctx.expected_value()),
                start,
                c.len_utf8(),
            )),
        }
    }

    fn text(&mut self, quote: char) -> Result<Term, CondError> {
        let start = self.i;
        let r = self.rest();
        let body = &r[1..];
        let Some(end) = body.find(quote) else {
            return Err(self.err("unclosed quote", start, r.len()));
        };
        self.i += end + 2;
        if self.ctx == Context::Analysis {
            return Err(self.err(
                "text has no place in a rule: metrics are numbers",
                start,
                end + 2,
            ));
        }
        Ok(Term::Lit(Value::Text(body[..end].to_string())))
    }

    fn number(&mut self) -> Result<Term, CondError> {
        let start = self.i;
        let r = self.rest();
        let n = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or(r.len());
        let token = &r[..n];
        self.i += n;
        let pct = self.rest().trim_start();
        if pct.starts_with('%') {
            self.i += self.rest().len() - pct.len() + 1;
            return match token.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Term::Lit(Value::Number(v / 100.0))),
                _ => Err(self.err(format!("`{token}%` is not a percentage"), start, n + 1)),
            };
        }
        if let Some(d) = self.spaced_unit(token) {
            return Ok(Term::Lit(Value::duration(d)));
        }
        if let Ok(v) = token.parse::<f64>() {
            if !v.is_finite() {
                return Err(self.err(format!("`{token}` is not a finite number"), start, n));
            }
            return Ok(Term::Lit(Value::Number(v)));
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
            return Ok(Term::Lit(Value::Seconds(v * unit)));
        }
        match parse_duration(token) {
            Ok(d) => Ok(Term::Lit(Value::duration(d))),
            Err(_) => Err(self.err(
                format!(
                    "`{token}` is not a number, a percentage (`5%`) or a duration (`500ms`, `2s`)"
                ),
                start,
                n,
            )),
        }
    }

    /// `30 days`, `2 weeks`: whole units after a space, as durations are
    /// written in prose; consumed when they read as a duration.
    fn spaced_unit(&mut self, digits: &str) -> Option<Duration> {
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let after = self.rest();
        let unit = after.trim_start();
        let n = unit
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(unit.len());
        if unit.len() == after.len() || n == 0 || &unit[..n] == "for" {
            return None;
        }
        let d = parse_duration(&format!("{digits} {}", &unit[..n])).ok()?;
        self.i += after.len() - unit.len() + n;
        Some(d)
    }

    /// Scans while `keep` holds; the scanned text.
    fn scan(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let r = self.rest();
        let n = r.find(|c: char| !keep(c)).unwrap_or(r.len());
        self.i += n;
        &r[..n]
    }

    fn reference(&mut self) -> Result<Term, CondError> {
        let start = self.i;
        // Metric names are identifiers; a field path also takes the
        // characters of header names and JSONPath (`X-Request-Id`, `$['k']`).
        let word = match self.ctx {
            Context::Check => self.scan(path_char),
            Context::Analysis => self.scan(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        };
        match word {
            "true" => return Ok(self.boolean(true)),
            "false" => return Ok(self.boolean(false)),
            "for" => return Err(self.err("expected a value before `for`", start, 3)),
            _ => {}
        }
        if word == "len" && self.rest().starts_with('(') {
            return self.len(start);
        }
        let root = word.split(['.', '[']).next().unwrap_or(word);
        let side = match root {
            "canary" => Some(Side::Canary),
            "stable" => Some(Side::Stable),
            _ => None,
        };
        match self.ctx {
            Context::Check if side.is_some() && word.len() > root.len() => Err(self.err(
                format!(
                    "`{word}` reads a version of a rollout; only analysis rules and rollback levels read `canary.` and `stable.`"
                ),
                start,
                word.len(),
            )),
            Context::Check => Ok(Term::Ref(Ref::Path(Path {
                path: word.to_string(),
                len: false,
                at: start,
            }))),
            Context::Analysis => self.metric(start, word, side),
        }
    }

    fn len(&mut self, start: usize) -> Result<Term, CondError> {
        if self.ctx == Context::Analysis {
            return Err(self.err(
                "`len(…)` counts the items of a check's field; rules compare metrics",
                start,
                4,
            ));
        }
        self.i += 1;
        self.ws();
        let at = self.i;
        let path = self.scan(path_char);
        if !path.starts_with(|c: char| c.is_alphabetic() || c == '_') {
            return Err(self.err(
                "expected what to measure in `len(…)`, e.g. `len(body.$.items)`",
                at,
                path.len(),
            ));
        }
        self.ws();
        if !self.rest().starts_with(')') {
            return Err(self.err("expected `)` to close `len(`", self.i, 1));
        }
        self.i += 1;
        Ok(Term::Ref(Ref::Path(Path {
            path: path.to_string(),
            len: true,
            at,
        })))
    }

    fn metric(&mut self, start: usize, first: &str, side: Option<Side>) -> Result<Term, CondError> {
        if let Some(side) = side
            && self.rest().starts_with('.')
        {
            self.i += 1;
            let at = self.i;
            let name = self.scan(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(self.err(format!("expected a metric name after `{first}.`"), at, 1));
            }
            return Ok(Term::Ref(Ref::Metric {
                side,
                name: name.to_string(),
            }));
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
        Ok(Term::Ref(Ref::Metric {
            side: Side::Canary,
            name: first.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Condition {
        parse(text, Context::Check).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn rule(text: &str) -> Condition {
        parse(text, Context::Analysis).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn rejected(text: &str, ctx: Context) -> CondError {
        parse(text, ctx).expect_err(text)
    }

    /// A probe's fields, as a check's caller resolves them.
    fn field(r: &Ref) -> Result<Value, String> {
        let Ref::Path(p) = r else {
            return Err("not a field".into());
        };
        match p.path.as_str() {
            "status" => Ok(Value::Number(503.0)),
            "response_time" => Ok(Value::Seconds(0.25)),
            "connected" => Ok(Value::Bool(false)),
            "version" => Ok(Value::Text("1.3".into())),
            "answers" => Ok(Value::List(vec!["10.1.2.3".into()])),
            "header.X-Request-Id" => Ok(Value::Text("abc".into())),
            _ => Err("absent".into()),
        }
    }

    /// An analysis' metrics, as a rule's caller resolves them.
    fn metric(r: &Ref) -> Result<Value, String> {
        let Ref::Metric { side, name } = r else {
            return Err("not a metric".into());
        };
        match (side, name.as_str()) {
            (Side::Canary, "error_rate") => Ok(Value::Number(0.07)),
            (Side::Stable, "error_rate") => Ok(Value::Number(0.04)),
            (Side::Canary, "p95") => Ok(Value::Number(0.13)),
            (Side::Stable, "p95") => Ok(Value::Number(0.1)),
            (Side::Canary, "ready") => Ok(Value::Number(0.0)),
            (Side::Canary, "zero") => Ok(Value::Number(0.0)),
            _ => Err("no data".into()),
        }
    }

    fn outcome(c: &Condition, lookup: fn(&Ref) -> Result<Value, String>) -> Outcome {
        c.evaluate(&mut |r| lookup(r)).outcome
    }

    #[test]
    fn checks_judge_fields_of_an_observation() {
        let held = |t: &str| outcome(&check(t), field);
        assert_eq!(held("status == 503"), Outcome::Held);
        assert_eq!(held("status >= 500"), Outcome::Held);
        assert_eq!(held("status == 200"), Outcome::NotHeld);
        assert_eq!(held("status matches \"^5\""), Outcome::Held);
        assert_eq!(held("response_time < 500ms"), Outcome::Held);
        assert_eq!(held("response_time < 2 * 100ms"), Outcome::NotHeld);
        assert_eq!(held("response_time * 2 == 500ms"), Outcome::Held);
        assert_eq!(held("status - 3 == 500"), Outcome::Held);
        assert_eq!(held("version == \"1.3\""), Outcome::Held);
        assert_eq!(held("version >= 1.2"), Outcome::Held);
        assert_eq!(held("connected == false"), Outcome::Held);
        assert_eq!(held("connected"), Outcome::NotHeld);
        assert_eq!(held("answers contains \"10.1.2.3\""), Outcome::Held);
        assert_eq!(held("len(answers) == 1"), Outcome::Held);
        assert_eq!(held("response_time < 1 second"), Outcome::Held);
        assert_eq!(held("status > 50 %"), Outcome::Held);
        assert_eq!(
            check("version != --verbose").rhs,
            Term::Lit(Value::Text("--verbose".into()))
        );
        assert_eq!(
            check("version != .env").rhs,
            Term::Lit(Value::Text(".env".into()))
        );
        assert_eq!(check("status > -.5").to_string(), "status > -0.5");
        assert_eq!(held("response_time > 2 minutes"), Outcome::NotHeld);
        assert_eq!(held("header.X-Request-Id == abc"), Outcome::Held);
        assert_eq!(held("missing == 1"), Outcome::NoValue);

        let e = check("status == 200").evaluate(&mut field);
        assert_eq!(
            (e.lhs, e.rhs),
            (Some(Value::Number(503.0)), Some(Value::Number(200.0)))
        );
        let e = check("connected > 1").evaluate(&mut field);
        assert_eq!(e.outcome, Outcome::NotHeld);
        assert_eq!(
            e.why.as_deref(),
            Some("a boolean cannot be compared with the number 1")
        );
        let e = check("connected > true").evaluate(&mut field);
        assert!(e.why.is_some_and(|w| w.contains("booleans")));
        let e = check("len(status) > 1").evaluate(&mut field);
        assert_eq!(
            (e.lhs, e.why.as_deref()),
            (
                Some(Value::Number(503.0)),
                Some("len() needs a list or text")
            )
        );
        let e = check("connected + 1 > 1").evaluate(&mut field);
        assert_eq!(e.why.as_deref(), Some("arithmetic needs numbers"));
    }

    #[test]
    fn rules_judge_metrics_of_both_versions() {
        let held = |t: &str| outcome(&rule(t), metric);
        assert_eq!(held("error_rate > 5%"), Outcome::Held);
        assert_eq!(
            held("canary.error_rate - stable.error_rate > 2%"),
            Outcome::Held
        );
        assert_eq!(
            held("canary.error_rate - stable.error_rate > 5%"),
            Outcome::NotHeld
        );
        assert_eq!(held("canary.p95 > 1.3 * stable.p95"), Outcome::NotHeld);
        assert_eq!(held("canary.p95 >= 1.3 * stable.p95"), Outcome::Held);
        assert_eq!(
            held("canary.error_rate-stable.error_rate > 2%"),
            Outcome::Held
        );
        assert_eq!(held("p95 > 100ms"), Outcome::Held);
        assert_eq!(held("p95 < 0.2s"), Outcome::Held);
        assert_eq!(held("(error_rate - 0.01) * 100 > 5"), Outcome::Held);
        assert_eq!(held("ready == false"), Outcome::Held);
        assert_eq!(held("ready"), Outcome::NotHeld);
        assert_eq!(held("missing > 1"), Outcome::NoValue);
        assert_eq!(held("zero / zero > 1"), Outcome::NoValue);

        let r = rule("canary.p95 > 1.3 * stable.p95 for 2m");
        assert_eq!(r.hold, Duration::from_secs(120));
        assert_eq!(r.text, "canary.p95 > 1.3 * stable.p95 for 2m");
        let e = r.evaluate(&mut metric);
        let rhs = e.rhs.and_then(|v| v.number()).expect("a baseline value");
        assert!((rhs - 0.13).abs() < 1e-9, "{rhs}");
        let refs: Vec<&Ref> = r.refs();
        assert_eq!(
            refs,
            [
                &Ref::Metric {
                    side: Side::Canary,
                    name: "p95".into()
                },
                &Ref::Metric {
                    side: Side::Stable,
                    name: "p95".into()
                }
            ]
        );
    }

    #[test]
    fn the_documented_forms_parse_as_before() {
        let c = check("status == 200");
        assert_eq!((c.op, &c.rhs), (Op::Eq, &Term::Lit(Value::Number(200.0))));
        let c = check(r#"body.$.status == "UP""#);
        let Term::Ref(Ref::Path(p)) = &c.lhs else {
            panic!("{c:?}")
        };
        assert_eq!((p.root(), p.at), ("body", 0));
        assert_eq!(c.rhs, Term::Lit(Value::Text("UP".into())));
        assert_eq!(check("body.$.status == UP").rhs, c.rhs);
        let c = check("  len(body.$.items) > 0");
        assert!(matches!(&c.lhs, Term::Ref(Ref::Path(p)) if p.len && p.at == 6));
        assert_eq!(check("service_down").to_string(), "service_down == true");
        assert_eq!(
            check("cert.days_left > 30").to_string(),
            "cert.days_left > 30"
        );
        assert_eq!(
            check("body.$.status == UP").to_string(),
            r#"body.$.status == "UP""#
        );
        assert_eq!(
            check("response_time < 2 * (100ms + 150ms)").to_string(),
            "response_time < 2 * (100ms + 150ms)"
        );
        let r = rule("error_rate > 5% for 2m");
        assert_eq!(r.rhs, Term::Lit(Value::Number(0.05)));
        let r = rule("p95 > 5 for 2m");
        assert_eq!(
            (&r.rhs, r.hold),
            (&Term::Lit(Value::Number(5.0)), Duration::from_secs(120))
        );
        assert_eq!(
            check("cert.expires_in > 30 days").to_string(),
            "cert.expires_in > 30d"
        );
        let r = rule("service_down");
        assert_eq!((r.op, r.rhs), (Op::Eq, Term::Lit(Value::Number(1.0))));
    }

    #[test]
    fn each_context_rejects_what_it_cannot_read() {
        let e = rejected("stable.error_rate > 1", Context::Check);
        assert_eq!((e.at, e.len), (0, 17));
        assert!(e.message.contains("only analysis rules"), "{e:?}");
        let e = rejected("status == 200 for 2m", Context::Check);
        assert_eq!((e.at, e.len), (14, 6));
        assert!(e.message.contains("`for` is only allowed"), "{e:?}");
        let e = rejected("status matches 5", Context::Check);
        assert_eq!((e.at, e.len), (15, 1));
        assert!(e.message.contains("quoted regular expression"), "{e:?}");

        let e = rejected("error_rate matches \"^5\"", Context::Analysis);
        assert_eq!((e.at, e.len), (11, 7));
        assert!(e.message.contains("rules compare numbers"), "{e:?}");
        let e = rejected("error_rate contains 5", Context::Analysis);
        assert_eq!((e.at, e.len), (11, 8));
        let e = rejected("version == \"1.3\"", Context::Analysis);
        assert_eq!((e.at, e.len), (11, 5));
        assert!(e.message.contains("metrics are numbers"), "{e:?}");
        let e = rejected("len(body.$.items) > 0", Context::Analysis);
        assert_eq!((e.at, e.len), (0, 4));
        let e = rejected("body.$.status > 0", Context::Analysis);
        assert!(e.message.contains("not a version"), "{e:?}");
    }

    #[test]
    fn regexes_compile_once_with_the_plan() {
        let c = check(r#"body matches "^(UP|OK)$""#);
        assert_eq!(c.pattern_error(), None);
        let ok = c.evaluate(&mut |_| Ok(Value::Text("OK".into())));
        assert_eq!(ok.outcome, Outcome::Held);
        let bad = check(r#"body matches "(""#);
        let e = bad.pattern_error().expect("invalid");
        assert_eq!((e.at, e.len), (13, 3));
        assert!(e.message.starts_with("invalid regular expression"), "{e:?}");
        let judged = bad.evaluate(&mut |_| Ok(Value::Text("(".into())));
        assert_eq!(judged.outcome, Outcome::NotHeld);
        assert!(judged.why.is_some_and(|w| w.contains("invalid regular")));
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = rejected("status = 200", Context::Check);
        assert_eq!((e.at, e.len), (7, 1));
        assert!(
            e.message
                .contains("unknown operator `=` (did you mean `==`?)")
        );
        let e = rejected("error_rate = 5%", Context::Analysis);
        assert_eq!((e.at, e.len), (11, 1));
        assert!(
            e.message.contains("expected a comparison, found `=`"),
            "{e:?}"
        );
        let e = rejected("error_rate > 5% for", Context::Analysis);
        assert!(e.message.contains("after `for`"), "{e:?}");
        let e = rejected("== 200", Context::Check);
        assert_eq!(e.at, 0);
        let e = rejected(r#"body contains "UP"#, Context::Check);
        assert!(e.message.contains("unclosed"));
        let e = rejected("body contains hello world", Context::Check);
        assert!(e.message.contains("quote"), "{e:?}");
        let e = rejected("connected <", Context::Check);
        assert!(e.message.contains("expected a value"), "{e:?}");
        let e = rejected("error_rate > 5x", Context::Analysis);
        assert_eq!(e.at, 13);
        let e = rejected("baseline.p95 > 1", Context::Analysis);
        assert!(e.message.contains("canary.NAME"), "{e:?}");
        let e = rejected("p95 > (1 + 2", Context::Analysis);
        assert!(e.message.contains("`)`"), "{e:?}");
        let e = rejected("p95 > 1 for 2m extra", Context::Analysis);
        assert!(e.message.contains("extra"), "{e:?}");
        let deep = format!("p95 > {}1{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep, Context::Analysis).is_err());
        assert!(parse(&deep, Context::Check).is_err());
        let long = format!("p95 > 1{}", " + 1".repeat(10_000));
        let e = rejected(&long, Context::Analysis);
        assert!(e.message.contains("too many operators"), "{e:?}");
        let e = rejected("é > 1", Context::Analysis);
        assert_eq!((e.at, e.len), (0, 2));
        assert!(parse("  ", Context::Check).is_err());
    }
}
