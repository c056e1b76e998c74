//! The values a condition compares, and what comparing them means.
//!
//! This module owns the semantics of every comparison of the condition
//! language ([`crate::cond`]), whatever reads the values: a probe's
//! observation (numbers, durations, text, lists, JSON) or an analysis'
//! metrics (numbers). Mixed types are judged where the meaning is clear (a
//! number against a duration is seconds; text that reads as a number
//! compares as one) and otherwise fail with the reason, never with a panic:
//! a typo in a plan must not take a go-live down.

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use crate::cond::Op;
use crate::time::format_duration;

/// One value: observed, looked up, or a literal of the condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A count, a status code, a metric, a query result.
    Number(f64),
    /// A duration in seconds; negative for a certificate that has expired.
    Seconds(f64),
    /// Yes or no.
    Bool(bool),
    /// Text.
    Text(String),
    /// A list of texts (DNS answers, missing variables).
    List(Vec<String>),
    /// A JSON array, object or null reached by a JSONPath.
    Json(serde_json::Value),
}

impl Value {
    /// A duration.
    pub fn duration(d: Duration) -> Value {
        Value::Seconds(d.as_secs_f64())
    }

    /// A JSON value as the closest plain value.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                n.as_f64().map_or(Value::Json(v.clone()), Value::Number)
            }
            serde_json::Value::String(s) => Value::Text(s.clone()),
            other => Value::Json(other.clone()),
        }
    }

    /// The value without quotes, as `contains` and `matches` see scalars.
    pub fn plain(&self) -> String {
        match self {
            Value::Text(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// The value as a number: numbers and durations (seconds), and text
    /// that reads as a number.
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Number(n) | Value::Seconds(n) => Some(*n),
            Value::Text(s) => number(s),
            _ => None,
        }
    }

    /// `len(…)`: the number of items of a list, array or object, or of
    /// characters of text.
    pub fn count(&self) -> Result<usize, String> {
        match self {
            Value::List(items) => Ok(items.len()),
            Value::Text(s) => Ok(s.chars().count()),
            Value::Json(serde_json::Value::Array(a)) => Ok(a.len()),
            Value::Json(serde_json::Value::Object(o)) => Ok(o.len()),
            Value::Json(serde_json::Value::Null) => Ok(0),
            _ => Err("len() needs a list or text".into()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Value::Number(n) => format!("the number {}", format_number(*n)),
            Value::Seconds(_) => format!("the duration {self}"),
            Value::Bool(b) => format!("{b}"),
            Value::Text(t) => format!("the text {t:?}"),
            Value::List(_) => "a list".into(),
            Value::Json(_) => "JSON".into(),
        }
    }
}

const MAX_SHOWN: usize = 200;

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => f.write_str(&format_number(*n)),
            Value::Seconds(s) => {
                if *s < 0.0 {
                    f.write_str("-")?;
                }
                let d = Duration::try_from_secs_f64(s.abs()).unwrap_or(Duration::MAX);
                // Whole milliseconds: what a plan can write.
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                if ms == 0 {
                    return f.write_str("0ms");
                }
                f.write_str(&format_duration(Duration::from_millis(ms)))
            }
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(s) => write!(f, "{:?}", shorten(s)),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{:?}", shorten(item))?;
                }
                f.write_str("]")
            }
            Value::Json(v) => f.write_str(&shorten(&v.to_string())),
        }
    }
}

/// `200`, `0.5`, `1e21`: integers without a fraction.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_SHOWN {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_SHOWN).collect();
    out.push('…');
    out
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// Whether `a op b` holds; `Err` explains a comparison that makes no sense.
/// `pattern` is the compiled regular expression of `matches`.
pub(crate) fn holds(
    a: &Value,
    op: Op,
    b: &Value,
    pattern: Option<&regex::Regex>,
) -> Result<bool, String> {
    let ordering = matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge);
    let b_ok = match op {
        Op::Contains => contains(a, b),
        Op::NotContains => contains(a, b).map(|found| !found),
        Op::Matches => match pattern {
            Some(re) => Ok(matches(a, re)),
            None => Err("matches takes a quoted regular expression".into()),
        },
        _ => compare(a, b).map(|ord| match (op, ord) {
            (_, None) => false,
            (Op::Eq, Some(o)) => o == Ordering::Equal,
            (Op::Ne, Some(o)) => o != Ordering::Equal,
            (Op::Lt, Some(o)) => o == Ordering::Less,
            (Op::Le, Some(o)) => o != Ordering::Greater,
            (Op::Gt, Some(o)) => o == Ordering::Greater,
            (Op::Ge, Some(o)) => o != Ordering::Less,
            _ => false,
        }),
    }?;
    // Booleans are equal or not; `true < false` is a mistake, not a `false`.
    if ordering && (matches!(a, Value::Bool(_)) || matches!(b, Value::Bool(_))) {
        return Err("booleans can only be compared with == and !=".into());
    }
    Ok(b_ok)
}

fn contains(value: &Value, needle: &Value) -> Result<bool, String> {
    let text = needle.plain();
    match value {
        Value::Text(s) => Ok(s.contains(&text)),
        Value::List(items) => Ok(items.contains(&text)),
        Value::Json(serde_json::Value::Array(items)) => Ok(items
            .iter()
            .any(|i| compare(&Value::from_json(i), needle) == Ok(Some(Ordering::Equal)))),
        Value::Json(serde_json::Value::Object(o)) => Ok(o.contains_key(&text)),
        _ => Err("contains needs text or a list".into()),
    }
}

fn matches(value: &Value, re: &regex::Regex) -> bool {
    match value {
        Value::List(items) => items.iter().any(|i| re.is_match(i)),
        Value::Json(serde_json::Value::Array(items)) => items
            .iter()
            .any(|i| re.is_match(&Value::from_json(i).plain())),
        other => re.is_match(&other.plain()),
    }
}

/// Orders two values; `Ok(None)` for incomparable numbers (NaN), `Err` for
/// a type mismatch.
fn compare(value: &Value, other: &Value) -> Result<Option<Ordering>, String> {
    let mismatch = |what: &str| -> Result<Option<Ordering>, String> {
        Err(format!(
            "{what} cannot be compared with {}",
            other.describe()
        ))
    };
    match (value, other) {
        (Value::Number(a) | Value::Seconds(a), Value::Number(b) | Value::Seconds(b)) => {
            Ok(a.partial_cmp(b))
        }
        (Value::Number(a), Value::Text(t)) => match number(t) {
            Some(b) => Ok(a.partial_cmp(&b)),
            None => mismatch("a number"),
        },
        (Value::Text(s), Value::Number(b)) => match number(s) {
            Some(a) => Ok(a.partial_cmp(b)),
            None => mismatch("text"),
        },
        (Value::Text(s), Value::Text(t)) => match (number(s), number(t)) {
            (Some(a), Some(b)) => Ok(a.partial_cmp(&b)),
            _ => Ok(Some(s.as_str().cmp(t.as_str()))),
        },
        (Value::Text(s), Value::Bool(b)) => match s.trim() {
            "true" | "t" => Ok(Some(true.cmp(b))),
            "false" | "f" => Ok(Some(false.cmp(b))),
            _ => mismatch("text"),
        },
        (Value::Bool(a), Value::Bool(b)) => Ok(Some(a.cmp(b))),
        (Value::Bool(a), Value::Text(t)) if t == "true" || t == "false" => {
            Ok(Some(a.cmp(&(t == "true"))))
        }
        (Value::Bool(_), _) => mismatch("a boolean"),
        (Value::Number(_), _) => mismatch("a number"),
        (Value::Seconds(_), _) => mismatch("a duration"),
        (Value::Text(_), _) => mismatch("text"),
        (Value::List(_), _) => Err("a list: use len(…) or contains".into()),
        (Value::Json(serde_json::Value::Null), _) => mismatch("null"),
        (Value::Json(_), _) => Err("JSON array or object: use len(…) or contains".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        assert_eq!(Value::Number(200.0).to_string(), "200");
        assert_eq!(Value::Number(0.25).to_string(), "0.25");
        assert_eq!(Value::Seconds(0.8125).to_string(), "812ms");
        assert_eq!(Value::Seconds(-90.0).to_string(), "-1m30s");
        assert_eq!(Value::Seconds(0.0004).to_string(), "0ms");
        assert_eq!(Value::Text("DOWN".into()).to_string(), "\"DOWN\"");
        assert_eq!(
            Value::List(vec!["a".into(), "b".into()]).to_string(),
            r#"["a", "b"]"#
        );
    }

    #[test]
    fn mixed_types_compare_where_the_meaning_is_clear() {
        let eq = |a: Value, b: Value| holds(&a, Op::Eq, &b, None);
        assert_eq!(eq(Value::Seconds(0.5), Value::Number(0.5)), Ok(true));
        assert_eq!(eq(Value::Text("1.30".into()), Value::Number(1.3)), Ok(true));
        assert_eq!(eq(Value::Bool(true), Value::Text("true".into())), Ok(true));
        assert_eq!(eq(Value::Number(f64::NAN), Value::Number(1.0)), Ok(false));
        let e = eq(Value::Number(1.0), Value::Bool(true)).expect_err("mismatch");
        assert_eq!(e, "a number cannot be compared with true");
        let e = holds(&Value::Bool(true), Op::Gt, &Value::Bool(false), None);
        assert!(e.is_err_and(|e| e.contains("booleans")));
        let e = holds(&Value::Number(5.0), Op::Contains, &Value::Number(5.0), None);
        assert!(e.is_err_and(|e| e.contains("contains needs")));
    }
}
