//! The values a condition compares: what a probe observed (numbers,
//! durations, text, lists, JSON), and how they read in a report.

use std::fmt;
use std::time::Duration;

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
}
