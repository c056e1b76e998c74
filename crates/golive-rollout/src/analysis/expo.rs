//! The Prometheus text exposition format (what a `/metrics` endpoint
//! serves), and the OpenMetrics text format read the same way.
//!
//! This module owns turning a scraped body into [`Sample`]s. It is strict:
//! a malformed line is an error naming the line, the column and what is
//! wrong, and the whole body is refused — as Prometheus refuses a scrape.
//! Skipping a bad line instead could silently drop the very series a rule
//! is about (say, the 5xx counter), and a canary whose errors cannot be read
//! must look like "no data", never like "no errors".
//!
//! What is read:
//! - sample lines `name{label="value",…} value [timestamp]`, with the
//!   escapes `\\`, `\"` and `\n` in label values, values such as `+Inf`,
//!   `-Inf` and `NaN`, and an optional trailing comma in the label set;
//! - the quoted-name form of Prometheus 3 (`{"my.metric",label="v"} 1`);
//! - `# HELP` and `# TYPE` lines (the type word is checked, the rest is
//!   not used) and any other comment; blank lines;
//! - OpenMetrics: `# EOF` ends the body (anything after it is an error),
//!   exemplars (` # {…} value`) after a sample are ignored, and suffixes
//!   such as `_total` or `_created` are just part of the name.
//!
//! Timestamps are checked and kept as written but golive does not use them:
//! a series is stamped with the time golive scraped it.

use std::collections::BTreeMap;
use std::fmt;

/// One sample of a scraped body.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name, e.g. `http_requests_total`.
    pub name: String,
    /// Label names and values (unescaped).
    pub labels: BTreeMap<String, String>,
    /// The value; `+Inf`, `-Inf` and `NaN` included.
    pub value: f64,
    /// The timestamp as written: milliseconds in the Prometheus format,
    /// seconds in OpenMetrics. Not used by golive.
    pub timestamp: Option<f64>,
}

/// A malformed line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ExpoError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// The metric types a `# TYPE` line may name (Prometheus and OpenMetrics).
const TYPES: [&str; 9] = [
    "counter",
    "gauge",
    "histogram",
    "summary",
    "untyped",
    "unknown",
    "gaugehistogram",
    "stateset",
    "info",
];

/// Parses a whole body. Blank lines and comments yield nothing; the first
/// malformed line is the error.
pub fn parse(text: &str) -> Result<Vec<Sample>, ExpoError> {
    let mut samples = Vec::new();
    let mut eof_line = None;
    for (i, raw) in text.split('\n').enumerate() {
        let number = i + 1;
        // Tolerate CRLF bodies: some hand-written exporters send them.
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.trim_end_matches([' ', '\t']).is_empty() {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(eof) = eof_line {
            return Err(ExpoError {
                line: number,
                column: 1,
                message: format!("text after `# EOF` (line {eof})"),
            });
        }
        let mut cur = Cursor {
            line,
            pos: indent,
            number,
        };
        if trimmed.starts_with('#') {
            if comment(&mut cur)? {
                eof_line = Some(number);
            }
            continue;
        }
        samples.push(sample(&mut cur)?);
    }
    Ok(samples)
}

/// A position in one line.
struct Cursor<'a> {
    line: &'a str,
    /// Byte offset into `line`.
    pos: usize,
    /// 1-based line number.
    number: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.line.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Skips spaces and tabs; whether any were skipped.
    fn blanks(&mut self) -> bool {
        let rest = self.rest();
        let n = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        self.pos += n;
        n > 0
    }

    /// The next run of non-blank characters.
    fn token(&mut self) -> &'a str {
        let rest = self.rest();
        let n = rest.find([' ', '\t']).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> ExpoError {
        let column = self.line.get(..at).map(|s| s.chars().count()).unwrap_or(0) + 1;
        ExpoError {
            line: self.number,
            column,
            message: message.into(),
        }
    }

    fn error(&self, message: impl Into<String>) -> ExpoError {
        self.error_at(self.pos, message)
    }

    /// A metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (no `:` for labels).
    fn name(&mut self, colon: bool) -> &'a str {
        let rest = self.rest();
        let ok = |c: char, first: bool| {
            c.is_ascii_alphabetic()
                || c == '_'
                || (colon && c == ':')
                || (!first && c.is_ascii_digit())
        };
        let mut n = 0;
        for (i, c) in rest.char_indices() {
            if !ok(c, i == 0) {
                break;
            }
            n = i + c.len_utf8();
        }
        self.pos += n;
        &rest[..n]
    }

    /// A double-quoted string with the exposition escapes; the cursor is on the `"`.
    fn quoted(&mut self) -> Result<String, ExpoError> {
        let start = self.pos;
        if !self.eat('"') {
            return Err(self.error("expected `\"`"));
        }
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(self.error_at(start, "unclosed quote")),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some('n') => out.push('\n'),
                    Some(c) => {
                        return Err(self.error_at(
                            at,
                            format!("invalid escape `\\{c}`; only \\\\, \\\" and \\n are allowed"),
                        ));
                    }
                    None => return Err(self.error_at(start, "unclosed quote")),
                },
                Some(c) => out.push(c),
            }
        }
    }
}

/// Reads a comment line; whether it was `# EOF`.
fn comment(cur: &mut Cursor<'_>) -> Result<bool, ExpoError> {
    cur.eat('#');
    cur.blanks();
    let keyword = cur.token();
    match keyword {
        "EOF" => {
            cur.blanks();
            if !cur.rest().is_empty() {
                return Err(cur.error("unexpected text after `# EOF`"));
            }
            Ok(true)
        }
        "HELP" | "TYPE" => {
            cur.blanks();
            let name = cur.token();
            if name.is_empty() {
                return Err(cur.error(format!("`# {keyword}` needs a metric name")));
            }
            if keyword == "TYPE" {
                cur.blanks();
                let type_at = cur.pos;
                let kind = cur.token();
                if kind.is_empty() {
                    return Err(cur.error(format!("`# TYPE {name}` needs a type, e.g. `counter`")));
                }
                if !TYPES.contains(&kind) {
                    return Err(cur.error_at(
                        type_at,
                        format!(
                            "unknown metric type `{kind}`; expected one of {}",
                            TYPES.join(", ")
                        ),
                    ));
                }
                cur.blanks();
                if !cur.rest().is_empty() {
                    return Err(cur.error("unexpected text after the metric type"));
                }
            }
            Ok(false)
        }
        // Any other comment is free text.
        _ => Ok(false),
    }
}

/// Reads a sample line.
fn sample(cur: &mut Cursor<'_>) -> Result<Sample, ExpoError> {
    let mut labels = BTreeMap::new();
    let name = if cur.peek() == Some('{') {
        // Prometheus 3: the name may be the first, quoted item of the braces.
        let (name, l) = label_set(cur, true)?;
        labels = l;
        name.ok_or_else(|| cur.error_at(0, "a sample needs a metric name"))?
    } else {
        let at = cur.pos;
        let name = cur.name(true);
        if name.is_empty() {
            let shown: String = cur.rest().chars().take(20).collect();
            return Err(cur.error_at(at, format!("expected a metric name, found `{shown}`")));
        }
        // Blanks may separate the name from its labels (Go's parser skips them).
        let before = cur.pos;
        cur.blanks();
        if cur.peek() == Some('{') {
            labels = label_set(cur, false)?.1;
        } else {
            cur.pos = before;
        }
        name.to_string()
    };
    // After the labels the value may follow directly (`a{b="1"}2`), as Go's
    // parser allows; after a bare name a blank is needed to end the name.
    let blank = cur.blanks();
    if !blank && !text_after_labels(cur) {
        return Err(match cur.peek() {
            None => cur.error(format!("`{name}` has no value")),
            Some(c) => cur.error(format!(
                "unexpected `{c}` after `{name}`; expected a space and the value"
            )),
        });
    }
    let value_at = cur.pos;
    let text = cur.token();
    if text.is_empty() {
        return Err(cur.error(format!("`{name}` has no value")));
    }
    let value =
        number(text).ok_or_else(|| cur.error_at(value_at, format!("`{text}` is not a number")))?;
    cur.blanks();
    let mut timestamp = None;
    if !cur.rest().is_empty() && cur.peek() != Some('#') {
        let at = cur.pos;
        let text = cur.token();
        timestamp = Some(
            number(text)
                .filter(|t| t.is_finite())
                .ok_or_else(|| cur.error_at(at, format!("`{text}` is not a timestamp")))?,
        );
        cur.blanks();
    }
    // An OpenMetrics exemplar (` # {trace_id="…"} 1.0`) is not used.
    if !cur.rest().is_empty() && cur.peek() != Some('#') {
        let shown: String = cur.rest().chars().take(20).collect();
        return Err(cur.error(format!("unexpected `{shown}` after the sample")));
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp,
    })
}

/// Whether the cursor is just after a label set's `}` with more text.
fn text_after_labels(cur: &Cursor<'_>) -> bool {
    cur.line.get(..cur.pos).is_some_and(|s| s.ends_with('}')) && !cur.rest().is_empty()
}

/// Go's `ParseFloat` forms as they appear in expositions; Rust's parser
/// takes `inf`/`nan` in any case, so only the Go spellings are let through.
fn number(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if body.starts_with(|c: char| c.is_ascii_alphabetic()) && body != "inf" && body != "nan" {
        return None;
    }
    text.parse::<f64>().ok()
}

/// `{label="v",…}`; with `name_first`, a leading quoted item without `=` is
/// the metric name.
fn label_set(
    cur: &mut Cursor<'_>,
    name_first: bool,
) -> Result<(Option<String>, BTreeMap<String, String>), ExpoError> {
    let open = cur.pos;
    cur.eat('{');
    let mut labels = BTreeMap::new();
    let mut name = None;
    let mut first = true;
    loop {
        cur.blanks();
        if cur.eat('}') {
            return Ok((name, labels));
        }
        if cur.rest().is_empty() {
            return Err(cur.error_at(open, "unclosed `{`"));
        }
        let at = cur.pos;
        let label = if cur.peek() == Some('"') {
            let quoted = cur.quoted()?;
            cur.blanks();
            if first && name_first && matches!(cur.peek(), Some(',' | '}')) {
                name = Some(quoted);
                first = false;
                cur.eat(',');
                continue;
            }
            quoted
        } else {
            let l = cur.name(false);
            if l.is_empty() {
                let c = cur.peek().map(String::from).unwrap_or_default();
                return Err(cur.error(format!("expected a label name, found `{c}`")));
            }
            l.to_string()
        };
        first = false;
        cur.blanks();
        if !cur.eat('=') {
            return Err(cur.error(format!("expected `=` after label `{label}`")));
        }
        cur.blanks();
        if cur.peek() != Some('"') {
            return Err(cur.error(format!("the value of label `{label}` must be quoted")));
        }
        let value = cur.quoted()?;
        if labels.insert(label.clone(), value).is_some() {
            return Err(cur.error_at(at, format!("label `{label}` appears twice")));
        }
        cur.blanks();
        if cur.eat(',') {
            continue;
        }
        if cur.peek() != Some('}') {
            return Err(match cur.peek() {
                None => cur.error_at(open, "unclosed `{`"),
                Some(c) => cur.error(format!("expected `,` or `}}` after a label, found `{c}`")),
            });
        }
    }
}

impl fmt::Display for Sample {
    /// The sample as an exposition line (without timestamp), for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}={v:?}")?;
            }
            f.write_str("}")?;
        }
        write!(f, " {}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_forms_only() {
        assert_eq!(number("+Inf"), Some(f64::INFINITY));
        assert_eq!(number("-Inf"), Some(f64::NEG_INFINITY));
        assert!(number("NaN").is_some_and(f64::is_nan));
        assert_eq!(number("1e3"), Some(1000.0));
        assert_eq!(number("infinity"), None);
        assert_eq!(number("abc"), None);
    }
}
