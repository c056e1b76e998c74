//! The condition language: `status == 200`, `response_time < 500ms`,
//! `body.$.status == "UP"`, `len(body.$.items) > 0`, `error_rate > 5% for 2m`.
//!
//! It serves check expectations (`expect:` of readiness checks), where the
//! subject is an observation of a probe and text, booleans and `contains`
//! / `matches` make sense. Analysis rules and rollback levels compare
//! numbers over metrics and have their own arithmetic grammar in
//! [`crate::rule`], which shares this module's error type and operator
//! hints. Parsing returns a byte
//! offset into the condition text with each error so the diagnostic can
//! point at the exact token.

use std::fmt;
use std::time::Duration;

use crate::time::{format_duration, parse_duration};

/// A parsed condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// What is measured.
    pub subject: Subject,
    /// How it is compared.
    pub op: Op,
    /// What it is compared with.
    pub value: Literal,
    /// How long it must hold before it counts (rules only).
    pub hold: Option<Duration>,
}

/// The measured side of a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// A dotted path: `status`, `body.$.status`, `cert.days_left`, `header.Server`.
    pub path: String,
    /// Wrapped in `len(…)`.
    pub len: bool,
}

impl Subject {
    /// The first segment of the path (`body` for `body.$.status`).
    pub fn root(&self) -> &str {
        self.path.split(['.', '[']).next().unwrap_or(&self.path)
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

/// The constant side of a condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A number; `5%` is read as 0.05.
    Number(f64),
    /// A duration such as `500ms` or `30d`.
    Duration(Duration),
    /// `true` or `false`.
    Bool(bool),
    /// Quoted text, or a bare word such as `UP`.
    Text(String),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Duration(d) => f.write_str(&format_duration(*d)),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Text(t) => write!(f, "{t:?}"),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.len {
            write!(f, "len({})", self.subject.path)?;
        } else {
            f.write_str(&self.subject.path)?;
        }
        write!(f, " {} {}", self.op.as_str(), self.value)?;
        if let Some(h) = self.hold {
            write!(f, " for {}", format_duration(h))?;
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

/// Parses a condition. A bare subject (`service_down`) means `service_down == true`.
pub fn parse(text: &str) -> Result<Condition, CondError> {
    let mut p = P { s: text, i: 0 };
    p.ws();
    let subject = p.subject()?;
    p.ws();
    if p.i == text.len() {
        return Ok(Condition {
            subject,
            op: Op::Eq,
            value: Literal::Bool(true),
            hold: None,
        });
    }
    let op = p.op()?;
    p.ws();
    let value = p.literal()?;
    p.ws();
    let mut hold = None;
    if p.rest().starts_with("for ") || p.rest() == "for" {
        p.i += 3;
        p.ws();
        let start = p.i;
        let word = p.word();
        if word.is_empty() {
            return Err(p.err("expected a duration after `for`, e.g. `for 2m`", start, 1));
        }
        hold = Some(parse_duration(word).map_err(|m| p.err(m, start, word.len()))?);
        p.ws();
    }
    if p.i < text.len() {
        let rest = p.rest();
        return Err(p.err(
            format!("unexpected `{}` after the condition", rest.trim()),
            p.i,
            rest.len(),
        ));
    }
    Ok(Condition {
        subject,
        op,
        value,
        hold,
    })
}

/// The operator a mistyped one probably meant, as a message suffix.
pub(crate) fn op_hint(bad: &str) -> &'static str {
    match bad {
        "=" => " (did you mean `==`?)",
        "=<" => " (did you mean `<=`?)",
        "=>" => " (did you mean `>=`?)",
        "<>" => " (did you mean `!=`?)",
        _ => "",
    }
}

struct P<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> P<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
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

    fn word(&mut self) -> &'a str {
        let r = self.rest();
        let n = r.find(char::is_whitespace).unwrap_or(r.len());
        let w = &self.s[self.i..self.i + n];
        self.i += n;
        w
    }

    fn path(&mut self) -> Result<String, CondError> {
        let start = self.i;
        let r = self.rest();
        let n = r
            .find(|c: char| !(c.is_alphanumeric() || "_.$[]-*'\"".contains(c)))
            .unwrap_or(r.len());
        if n == 0 || !r.starts_with(|c: char| c.is_alphabetic() || c == '_') {
            return Err(self.err(
                "expected what to measure, e.g. `status`, `response_time`, `body.$.status`",
                start,
                n,
            ));
        }
        self.i += n;
        Ok(r[..n].to_string())
    }

    fn subject(&mut self) -> Result<Subject, CondError> {
        if let Some(inner) = self.rest().strip_prefix("len(") {
            let _ = inner;
            self.i += 4;
            self.ws();
            let path = self.path()?;
            self.ws();
            if !self.rest().starts_with(')') {
                return Err(self.err("expected `)` to close `len(`", self.i, 1));
            }
            self.i += 1;
            return Ok(Subject { path, len: true });
        }
        Ok(Subject {
            path: self.path()?,
            len: false,
        })
    }

    fn op(&mut self) -> Result<Op, CondError> {
        let r = self.rest();
        for (text, op) in Op::ALL {
            if r.starts_with(text) {
                self.i += text.len();
                return Ok(op);
            }
        }
        let start = self.i;
        let bad = self.word().to_string();
        let hint = op_hint(&bad);
        Err(self.err(
            format!(
                "unknown operator `{bad}`{hint}; use ==, !=, <, <=, >, >=, contains, !contains or matches"
            ),
            start,
            bad.len(),
        ))
    }

    fn literal(&mut self) -> Result<Literal, CondError> {
        let start = self.i;
        let r = self.rest();
        if let Some(q) = r.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let body = &r[1..];
            let Some(end) = body.find(q) else {
                return Err(self.err("unclosed quote", start, r.len()));
            };
            self.i += end + 2;
            return Ok(Literal::Text(body[..end].to_string()));
        }
        // A value ends where `for <duration>` begins.
        let end = r
            .match_indices(" for")
            .map(|(i, _)| i)
            .find(|&i| r[i + 4..].is_empty() || r[i + 4..].starts_with(char::is_whitespace))
            .unwrap_or(r.len());
        let raw = r[..end].trim_end();
        if raw.is_empty() {
            return Err(self.err("expected a value after the operator", start, 1));
        }
        self.i += raw.len();
        Ok(match raw {
            "true" => Literal::Bool(true),
            "false" => Literal::Bool(false),
            _ => {
                if let Some(pct) = raw.strip_suffix('%') {
                    let n: f64 = pct.trim().parse().map_err(|_| {
                        self.err(format!("`{raw}` is not a percentage"), start, raw.len())
                    })?;
                    Literal::Number(n / 100.0)
                } else if let Ok(n) = raw.parse::<f64>() {
                    if !n.is_finite() {
                        return Err(self.err(
                            format!("`{raw}` is not a finite number"),
                            start,
                            raw.len(),
                        ));
                    }
                    Literal::Number(n)
                } else if raw.starts_with(|c: char| c.is_ascii_digit()) {
                    Literal::Duration(
                        parse_duration(raw).map_err(|m| self.err(m, start, raw.len()))?,
                    )
                } else if raw.contains(char::is_whitespace) {
                    return Err(self.err(
                        format!("`{raw}` has spaces; quote text values, e.g. \"{raw}\""),
                        start,
                        raw.len(),
                    ));
                } else {
                    Literal::Text(raw.to_string())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let c = parse("status == 200").expect("ok");
        assert_eq!(
            (c.subject.path.as_str(), c.op, c.value),
            ("status", Op::Eq, Literal::Number(200.0))
        );
        let c = parse("response_time < 500ms").expect("ok");
        assert_eq!(c.value, Literal::Duration(Duration::from_millis(500)));
        let c = parse(r#"body.$.status == "UP""#).expect("ok");
        assert_eq!(c.subject.root(), "body");
        assert_eq!(c.value, Literal::Text("UP".into()));
        let c = parse("len(body.$.items) > 0").expect("ok");
        assert!(c.subject.len);
        let c = parse("error_rate > 5% for 2m").expect("ok");
        assert_eq!(c.value, Literal::Number(0.05));
        assert_eq!(c.hold, Some(Duration::from_secs(120)));
        let c = parse("service_down").expect("ok");
        assert_eq!(c.value, Literal::Bool(true));
        assert_eq!(
            parse("cert.days_left > 30").expect("ok").to_string(),
            "cert.days_left > 30"
        );
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = parse("status = 200").expect_err("bad op");
        assert_eq!((e.at, e.len), (7, 1));
        assert!(e.message.contains("did you mean `==`"));
        let e = parse("status == 200 for").expect_err("no duration");
        assert!(e.message.contains("after `for`"), "{e:?}");
        let e = parse("== 200").expect_err("no subject");
        assert_eq!(e.at, 0);
        let e = parse(r#"body contains "UP"#).expect_err("quote");
        assert!(e.message.contains("unclosed"));
        let e = parse("body contains hello world").expect_err("spaces");
        assert!(e.message.contains("quote"), "{e:?}");
    }
}
