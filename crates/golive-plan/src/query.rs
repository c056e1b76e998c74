//! Scrape expressions, as a plan writes them: the subset of PromQL golive
//! evaluates itself over the scrapes it takes of a target, for plans that
//! read the services' `/metrics` directly instead of asking Prometheus.
//!
//! This module owns the syntax: parsing (errors point at the column, so
//! `golive validate` shows the offending token) and the typed tree the
//! evaluator in `golive_rollout::analysis::query` walks. The subset, chosen
//! so the queries a plan would send to Prometheus for the common cases run
//! unchanged:
//!
//! - numbers (`0.5`, `1e3`, `Inf`, `NaN`), `( … )`, unary `-`;
//! - selectors `name` and `name{label="v", label!="v", label=~"5..",
//!   label!~"2.."}` (regular expressions are anchored at both ends, as in
//!   Prometheus, and compiled here, so a bad one is a plan error);
//! - `rate(sel[window])` and `increase(sel[window])`;
//! - `sum`, `avg`, `min`, `max`, `count`, each with an optional
//!   `by (l1, l2)` or `without (l1)`, before or after the parentheses;
//! - `+ - * /` between numbers and vectors;
//! - `a or b` and `vector(n)`, for the `… or vector(0)` idiom;
//! - `histogram_quantile(q, v)`;
//! - `ratio(a, b)` (golive's own).
//!
//! What each form means on data is documented with the evaluator.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// A series' labels (without the metric name).
pub type Labels = BTreeMap<String, String>;

/// The most operators, operands and calls an expression may hold. Real
/// queries have a few dozen at most; the bound keeps the recursive
/// evaluation of a pathological plan (`1+1+…+1`) well inside a thread's stack.
pub const MAX_NODES: usize = 200;

/// The deepest nesting of parentheses and calls, for the same reason.
pub const MAX_DEPTH: usize = 32;

/// A parsed scrape expression.
#[derive(Clone, Debug)]
pub struct Query {
    text: String,
    expr: Expr,
}

/// A parse error with the column it concerns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct QueryError {
    /// 1-based column (in characters) of the offending token.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl Query {
    /// Parses an expression.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let mut p = Parser {
            s: text,
            pos: 0,
            nodes: 0,
            depth: 0,
        };
        p.ws();
        if p.pos == text.len() {
            return Err(p.err(0, "the expression is empty"));
        }
        let expr = p.expr()?;
        p.ws();
        if p.pos < text.len() {
            let at = p.pos;
            return Err(p.err(at, format!("unexpected `{}`", p.shown_token())));
        }
        Ok(Query {
            text: text.to_string(),
            expr,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every metric name the expression reads.
    pub fn metric_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        self.expr.visit(&mut |e| match e {
            Expr::Select(s) | Expr::Range { sel: s, .. } => {
                names.insert(s.name.clone());
            }
            Expr::Ratio { num, den, .. } => {
                names.insert(num.name.clone());
                names.insert(den.name.clone());
            }
            _ => {}
        });
        names
    }

    /// The longest range window the expression uses, if any.
    pub fn longest_window(&self) -> Option<Duration> {
        let mut longest = None;
        self.expr.visit(&mut |e| {
            if let Expr::Range {
                window: Window::For(d),
                ..
            }
            | Expr::Ratio {
                window: Window::For(d),
                ..
            } = e
            {
                longest = longest.max(Some(*d));
            }
        });
        longest
    }

    /// The parsed tree, for the evaluator.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl std::str::FromStr for Query {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Query, QueryError> {
        Query::parse(s)
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

// ---------------------------------------------------------------- syntax

/// A node of a parsed expression.
#[derive(Clone, Debug)]
#[allow(missing_docs)] // the variants are the forms of the module doc
pub enum Expr {
    Number(f64),
    Select(Selector),
    /// `rate(sel[w])` (`increase: false`) or `increase(sel[w])`.
    Range {
        increase: bool,
        sel: Selector,
        window: Window,
    },
    /// `ratio(num, den)`, optionally `ratio(num[w], den[w])`.
    Ratio {
        num: Selector,
        den: Selector,
        window: Window,
    },
    Agg {
        op: AggOp,
        grouping: Grouping,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Or(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    /// `histogram_quantile(q, expr)`.
    Quantile {
        q: Box<Expr>,
        expr: Box<Expr>,
    },
    /// `vector(n)`.
    Vector(Box<Expr>),
}

impl Expr {
    /// Calls `f` on this node and every node below it.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Agg { expr, .. } | Expr::Neg(expr) | Expr::Vector(expr) => expr.visit(f),
            Expr::Binary { lhs, rhs, .. } | Expr::Or(lhs, rhs) => {
                lhs.visit(f);
                rhs.visit(f);
            }
            Expr::Quantile { q, expr } => {
                q.visit(f);
                expr.visit(f);
            }
            Expr::Number(_) | Expr::Select(_) | Expr::Range { .. } | Expr::Ratio { .. } => {}
        }
    }

    /// Whether the expression is a vector (else a scalar).
    pub fn is_vector(&self) -> bool {
        match self {
            Expr::Number(_) => false,
            Expr::Neg(e) => e.is_vector(),
            Expr::Binary { lhs, rhs, .. } => lhs.is_vector() || rhs.is_vector(),
            _ => true,
        }
    }
}

/// `name{label="v", …}`.
#[derive(Clone, Debug)]
pub struct Selector {
    /// The metric name.
    pub name: String,
    /// Label matchers, all of which must hold.
    pub matchers: Vec<(String, LabelMatch)>,
}

/// One label matcher: `=`, `!=`, `=~`, `!~` (regexes anchored, as in
/// Prometheus).
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum LabelMatch {
    Equal(String),
    NotEqual(String),
    Regex(regex::Regex),
    NotRegex(regex::Regex),
}

impl Selector {
    /// Whether a series' labels satisfy every matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|(label, m)| {
            let have = labels.get(label).map(String::as_str).unwrap_or("");
            match m {
                LabelMatch::Equal(v) => have == v,
                LabelMatch::NotEqual(v) => have != v,
                LabelMatch::Regex(re) => re.is_match(have),
                LabelMatch::NotRegex(re) => !re.is_match(have),
            }
        })
    }
}

/// The range of a `rate`, `increase` or `ratio`.
#[derive(Clone, Copy, Debug)]
pub enum Window {
    /// Since the previous scrape.
    Last,
    /// `[5m]`.
    For(Duration),
}

/// An aggregation.
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
}

/// An aggregation's grouping.
#[derive(Clone, Debug)]
pub enum Grouping {
    /// Everything into one series.
    All,
    /// `by (…)`.
    By(Vec<String>),
    /// `without (…)`.
    Without(Vec<String>),
}

/// An arithmetic operator.
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

const FUNCTIONS: &str =
    "rate, increase, ratio, histogram_quantile, vector, sum, avg, min, max and count";

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    /// Nodes made so far (bounded by [`MAX_NODES`]).
    nodes: usize,
    /// Current nesting (bounded by [`MAX_DEPTH`]).
    depth: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    fn err(&self, at: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            column: self.s.get(..at).map(|s| s.chars().count()).unwrap_or(0) + 1,
            message: message.into(),
        }
    }

    /// The token at the cursor, for messages.
    fn shown_token(&self) -> String {
        let r = self.rest();
        let ident: String = r
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        if ident.is_empty() {
            r.chars().take(1).collect()
        } else {
            ident
        }
    }

    /// Consumes `tok` (after blanks) if it is next.
    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.rest().starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &str, context: &str) -> Result<(), QueryError> {
        if self.eat(tok) {
            return Ok(());
        }
        let at = self.pos;
        let found = if self.rest().is_empty() {
            "the end".to_string()
        } else {
            format!("`{}`", self.shown_token())
        };
        Err(self.err(at, format!("expected `{tok}` {context}, found {found}")))
    }

    /// An identifier at the cursor, without consuming blanks first.
    fn ident(&mut self, colon: bool) -> &'a str {
        let r = self.rest();
        let mut n = 0;
        for (i, c) in r.char_indices() {
            let ok = c.is_ascii_alphabetic()
                || c == '_'
                || (colon && c == ':')
                || (i > 0 && c.is_ascii_digit());
            if !ok {
                break;
            }
            n = i + c.len_utf8();
        }
        self.pos += n;
        &r[..n]
    }

    /// Peeks the identifier at the cursor (after blanks) without consuming it.
    fn peek_ident(&mut self) -> &'a str {
        self.ws();
        let save = self.pos;
        let id = self.ident(true);
        self.pos = save;
        id
    }

    /// Counts a node at `at`, refusing an expression that is too large.
    fn node(&mut self, at: usize) -> Result<(), QueryError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.err(
                at,
                format!("the expression is too long (more than {MAX_NODES} terms)"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        self.ws();
        let at = self.pos;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(
                at,
                format!("the expression is nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        let e = self.or_expr();
        self.depth -= 1;
        e
    }

    fn or_expr(&mut self) -> Result<Expr, QueryError> {
        let mut lhs = self.additive()?;
        loop {
            self.ws();
            let at = self.pos;
            let word = self.peek_ident();
            match word {
                "or" => {
                    self.node(at)?;
                    self.pos += 2;
                    let rhs = self.additive()?;
                    if !lhs.is_vector() || !rhs.is_vector() {
                        return Err(self.err(at, "`or` needs a vector on both sides"));
                    }
                    lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
                }
                "and" | "unless" => {
                    return Err(self.err(
                        at,
                        format!("`{word}` is not supported in scrape expressions; only `or` is"),
                    ));
                }
                _ => return Ok(lhs),
            }
        }
    }

    fn additive(&mut self) -> Result<Expr, QueryError> {
        let mut lhs = self.multiplicative()?;
        loop {
            let op = if self.eat("+") {
                BinOp::Add
            } else if self.eat("-") {
                BinOp::Sub
            } else {
                self.refuse_operator()?;
                return Ok(lhs);
            };
            let at = self.pos;
            self.node(at)?;
            self.refuse_modifier()?;
            let rhs = self.multiplicative()?;
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, QueryError> {
        let mut lhs = self.unary()?;
        loop {
            let op = if self.eat("*") {
                BinOp::Mul
            } else if self.eat("/") {
                BinOp::Div
            } else {
                return Ok(lhs);
            };
            let at = self.pos;
            self.node(at)?;
            self.refuse_modifier()?;
            let rhs = self.unary()?;
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    /// Operators PromQL has and this subset does not: a clear error rather
    /// than "unexpected `>`".
    fn refuse_operator(&mut self) -> Result<(), QueryError> {
        self.ws();
        let at = self.pos;
        let r = self.rest();
        for op in ["==", "!=", ">=", "<=", ">", "<", "%", "^"] {
            if r.starts_with(op) {
                let why = if "=!<>".contains(&op[..1]) {
                    "comparisons belong in the plan's `rules`, e.g. `error_rate > 0.05`"
                } else {
                    "only + - * / are supported"
                };
                return Err(self.err(at, format!("operator `{op}` is not supported here: {why}")));
            }
        }
        Ok(())
    }

    /// `on(…)`, `ignoring(…)`, `bool` after an operator: PromQL's matching
    /// modifiers, refused by name rather than read as metric names.
    fn refuse_modifier(&mut self) -> Result<(), QueryError> {
        let word = self.peek_ident();
        let at = self.pos;
        let called = self
            .rest()
            .get(word.len()..)
            .is_some_and(|r| r.trim_start().starts_with('('));
        if word == "bool" || (matches!(word, "on" | "ignoring") && called) {
            return Err(self.err(
                at,
                format!("`{word}` is not supported: vectors match on identical label sets"),
            ));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        self.ws();
        let at = self.pos;
        if self.eat("-") {
            self.node(at)?;
            return Ok(match self.unary()? {
                Expr::Number(n) => Expr::Number(-n),
                e => Expr::Neg(Box::new(e)),
            });
        }
        if self.eat("+") {
            self.node(at)?;
            return self.unary();
        }
        let e = self.primary()?;
        self.refuse_suffix()?;
        Ok(e)
    }

    /// `offset`, `@` and subqueries after an operand.
    fn refuse_suffix(&mut self) -> Result<(), QueryError> {
        self.ws();
        let at = self.pos;
        if self.rest().starts_with('@') {
            return Err(self.err(at, "`@` is not supported: queries read the latest scrapes"));
        }
        if self.peek_ident() == "offset" {
            return Err(self.err(
                at,
                "`offset` is not supported: queries read the latest scrapes",
            ));
        }
        if self.rest().starts_with('[') {
            return Err(self.err(
                at,
                "a range `[…]` only goes on a selector inside rate(…), increase(…) or ratio(…)",
            ));
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        self.ws();
        let at = self.pos;
        self.node(at)?;
        match self.peek() {
            None => Err(self.err(at, "the expression ends too early")),
            Some('(') => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect(")", "to close `(`")?;
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some('{') => Err(self.err(
                at,
                "a selector needs a metric name before `{`, e.g. `http_requests_total{code=\"500\"}`",
            )),
            Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let word = self.ident(true);
                let lower = word.to_ascii_lowercase();
                if lower == "inf" || lower == "nan" {
                    return Ok(Expr::Number(if lower == "inf" {
                        f64::INFINITY
                    } else {
                        f64::NAN
                    }));
                }
                let after = self.pos;
                self.ws();
                let call = self.peek() == Some('(');
                let agg = match word {
                    "sum" => Some(AggOp::Sum),
                    "avg" => Some(AggOp::Avg),
                    "min" => Some(AggOp::Min),
                    "max" => Some(AggOp::Max),
                    "count" => Some(AggOp::Count),
                    _ => None,
                };
                if let Some(op) = agg {
                    let modifier = self.peek_ident();
                    if call || modifier == "by" || modifier == "without" {
                        return self.aggregation(op);
                    }
                }
                if call {
                    return self.function(word, at);
                }
                self.pos = after;
                Ok(Expr::Select(self.selector_rest(word, at)?))
            }
            Some(_) => Err(self.err(at, format!("unexpected `{}`", self.shown_token()))),
        }
    }

    fn number(&mut self) -> Result<Expr, QueryError> {
        let at = self.pos;
        let r = self.rest();
        let bytes = r.as_bytes();
        let mut n = 0;
        while n < bytes.len() && (bytes[n].is_ascii_digit() || bytes[n] == b'.') {
            n += 1;
        }
        if n < bytes.len() && (bytes[n] == b'e' || bytes[n] == b'E') {
            let mut m = n + 1;
            if m < bytes.len() && (bytes[m] == b'+' || bytes[m] == b'-') {
                m += 1;
            }
            if m < bytes.len() && bytes[m].is_ascii_digit() {
                while m < bytes.len() && bytes[m].is_ascii_digit() {
                    m += 1;
                }
                n = m;
            }
        }
        let text = &r[..n];
        let value = text
            .parse::<f64>()
            .map_err(|_| self.err(at, format!("`{text}` is not a number")))?;
        self.pos += n;
        if self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            let unit_at = self.pos;
            return Err(self.err(
                unit_at,
                format!(
                    "unexpected `{}` after the number; durations only go inside `[…]`",
                    self.shown_token()
                ),
            ));
        }
        Ok(Expr::Number(value))
    }

    /// The rest of a selector whose name has been read.
    fn selector_rest(&mut self, name: &str, at: usize) -> Result<Selector, QueryError> {
        if matches!(
            name,
            "by" | "without" | "or" | "and" | "unless" | "offset" | "bool"
        ) {
            return Err(self.err(
                at,
                format!("expected an expression, found the keyword `{name}`"),
            ));
        }
        let mut matchers = Vec::new();
        if self.eat("{") {
            loop {
                self.ws();
                if self.eat("}") {
                    break;
                }
                let label_at = self.pos;
                let label = self.ident(false);
                if label.is_empty() {
                    let found = if self.rest().is_empty() {
                        "the end".to_string()
                    } else {
                        format!("`{}`", self.shown_token())
                    };
                    return Err(self.err(label_at, format!("expected a label name, found {found}")));
                }
                self.ws();
                let op_at = self.pos;
                #[derive(PartialEq)]
                enum Kind {
                    Eq,
                    Ne,
                    Re,
                    NotRe,
                }
                let kind = if self.eat("=~") {
                    Kind::Re
                } else if self.eat("!~") {
                    Kind::NotRe
                } else if self.eat("!=") {
                    Kind::Ne
                } else if self.eat("==") {
                    return Err(self.err(op_at, "use `=` to match a label, not `==`"));
                } else if self.eat("=") {
                    Kind::Eq
                } else {
                    return Err(self.err(
                        op_at,
                        format!("expected `=`, `!=`, `=~` or `!~` after label `{label}`"),
                    ));
                };
                let value_at = self.pos;
                let value = self.string()?;
                let regex = |s: &mut Self| {
                    regex::Regex::new(&format!("^(?:{value})$"))
                        .map_err(|e| s.err(value_at, format!("invalid regular expression: {e}")))
                };
                let m = match kind {
                    Kind::Eq => LabelMatch::Equal(value.clone()),
                    Kind::Ne => LabelMatch::NotEqual(value.clone()),
                    Kind::Re => LabelMatch::Regex(regex(self)?),
                    Kind::NotRe => LabelMatch::NotRegex(regex(self)?),
                };
                matchers.push((label.to_string(), m));
                if self.eat(",") {
                    continue;
                }
                self.expect("}", "to close the selector")?;
                break;
            }
        }
        Ok(Selector {
            name: name.to_string(),
            matchers,
        })
    }

    /// A quoted string: `"…"` or `'…'` with Go escapes, or a raw `` `…` ``.
    fn string(&mut self) -> Result<String, QueryError> {
        self.ws();
        let start = self.pos;
        let Some(quote) = self.peek().filter(|c| matches!(c, '"' | '\'' | '`')) else {
            return Err(self.err(start, "expected a quoted value"));
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            let at = self.pos;
            let Some(c) = self.peek() else {
                return Err(self.err(start, "unclosed quote"));
            };
            self.pos += c.len_utf8();
            if c == quote {
                return Ok(out);
            }
            if c == '\\' && quote != '`' {
                let Some(e) = self.peek() else {
                    return Err(self.err(start, "unclosed quote"));
                };
                self.pos += e.len_utf8();
                out.push(match e {
                    '\\' => '\\',
                    '"' => '"',
                    '\'' => '\'',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => {
                        return Err(self.err(at, format!("unknown escape `\\{other}`")));
                    }
                });
            } else {
                out.push(c);
            }
        }
    }

    /// `[5m]` after a selector; `None` when there is none.
    fn window(&mut self) -> Result<Option<Duration>, QueryError> {
        if !self.eat("[") {
            return Ok(None);
        }
        self.ws();
        let at = self.pos;
        let r = self.rest();
        let Some(end) = r.find(']') else {
            return Err(self.err(at, "expected `]` to close the range"));
        };
        let text = r[..end].trim();
        if text.contains(':') {
            return Err(self.err(at, "subqueries (`[range:step]`) are not supported"));
        }
        let d = crate::time::parse_duration(text).map_err(|m| self.err(at, m))?;
        if d.is_zero() {
            return Err(self.err(at, "a range must be longer than 0s"));
        }
        self.pos += end + 1;
        Ok(Some(d))
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, QueryError> {
        let word = self.peek_ident();
        let without = match word {
            "by" => false,
            "without" => true,
            _ => return Ok(None),
        };
        self.pos += word.len();
        self.expect("(", &format!("after `{word}`"))?;
        let mut labels = Vec::new();
        loop {
            self.ws();
            if self.eat(")") {
                break;
            }
            let at = self.pos;
            let l = self.ident(false);
            if l.is_empty() {
                return Err(self.err(at, format!("expected a label name in `{word} (…)`")));
            }
            labels.push(l.to_string());
            if !self.eat(",") {
                self.expect(")", &format!("to close `{word} (`"))?;
                break;
            }
        }
        Ok(Some(if without {
            Grouping::Without(labels)
        } else {
            Grouping::By(labels)
        }))
    }

    fn aggregation(&mut self, op: AggOp) -> Result<Expr, QueryError> {
        let before = self.grouping()?;
        self.expect("(", "to open the aggregation")?;
        self.ws();
        let at = self.pos;
        let expr = self.expr()?;
        if !expr.is_vector() {
            return Err(self.err(at, "an aggregation needs a vector, not a number"));
        }
        self.expect(")", "to close the aggregation")?;
        let after = self.grouping()?;
        let grouping = match (before, after) {
            (Some(_), Some(_)) => {
                let at = self.pos;
                return Err(self.err(
                    at,
                    "give `by`/`without` once, before or after the parentheses",
                ));
            }
            (Some(g), None) | (None, Some(g)) => g,
            (None, None) => Grouping::All,
        };
        Ok(Expr::Agg {
            op,
            grouping,
            expr: Box::new(expr),
        })
    }

    /// A selector with an optional range, as a function argument.
    fn range_arg(&mut self, function: &str) -> Result<(Selector, Option<Duration>), QueryError> {
        self.ws();
        let at = self.pos;
        let name = self.ident(true);
        if name.is_empty() {
            return Err(self.err(
                at,
                format!("{function}(…) takes a metric selector, e.g. `{function}(http_requests_total[1m])`"),
            ));
        }
        let sel = self.selector_rest(name, at)?;
        self.ws();
        if self.peek() == Some('(') {
            return Err(self.err(
                at,
                format!("{function}(…) takes a metric selector, not a function call"),
            ));
        }
        let window = self.window()?;
        Ok((sel, window))
    }

    fn function(&mut self, name: &str, at: usize) -> Result<Expr, QueryError> {
        self.expect("(", "")?;
        let e = match name {
            "rate" | "increase" => {
                let (sel, window) = self.range_arg(name)?;
                let Some(window) = window else {
                    let at = self.pos;
                    return Err(self.err(
                        at,
                        format!("{name}(…) needs a range, e.g. `{name}({}[1m])`", sel.name),
                    ));
                };
                Expr::Range {
                    increase: name == "increase",
                    sel,
                    window: Window::For(window),
                }
            }
            "ratio" => {
                let (num, w1) = self.range_arg(name)?;
                self.expect(",", "between the two selectors of ratio(…)")?;
                let den_at = {
                    self.ws();
                    self.pos
                };
                let (den, w2) = self.range_arg(name)?;
                let window = match (w1, w2) {
                    (None, None) => Window::Last,
                    (Some(a), Some(b)) if a == b => Window::For(a),
                    _ => {
                        return Err(self.err(
                            den_at,
                            "give both selectors of ratio(…) the same range, or none",
                        ));
                    }
                };
                Expr::Ratio { num, den, window }
            }
            "histogram_quantile" => {
                self.ws();
                let q_at = self.pos;
                let q = self.expr()?;
                if q.is_vector() {
                    return Err(self.err(q_at, "the quantile must be a number, e.g. 0.95"));
                }
                self.expect(",", "after the quantile")?;
                self.ws();
                let v_at = self.pos;
                let v = self.expr()?;
                if !v.is_vector() {
                    return Err(self.err(v_at, "histogram_quantile needs the bucket series"));
                }
                Expr::Quantile {
                    q: Box::new(q),
                    expr: Box::new(v),
                }
            }
            "vector" => {
                self.ws();
                let v_at = self.pos;
                let v = self.expr()?;
                if v.is_vector() {
                    return Err(self.err(v_at, "vector(…) takes a number"));
                }
                Expr::Vector(Box::new(v))
            }
            _ => {
                return Err(self.err(
                    at,
                    format!(
                        "unknown or unsupported function `{name}`; scrape expressions support {FUNCTIONS}"
                    ),
                ));
            }
        };
        self.expect(")", &format!("to close `{name}(`"))?;
        Ok(e)
    }
}
