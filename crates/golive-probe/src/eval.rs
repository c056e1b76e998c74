//! Judging a condition against an observation, and the conditions a probe
//! kind checks when a plan gives none.
//!
//! Mixed types are judged where the meaning is clear (a number against a
//! duration is seconds; text that reads as a number compares as one) and
//! otherwise fail with the reason in `observed`, never with a panic: a typo
//! in a plan must not take `golive ready` down.

use std::cmp::Ordering;

use golive_plan::Probe;
use golive_plan::cond::{self, Condition, Literal, Op};

use crate::ConditionResult;
use crate::observation::{Lookup, Observation, Value, format_number};

/// The conditions checked when a check's `expect` is empty.
pub(crate) fn defaults(probe: &Probe) -> Vec<Condition> {
    let texts: &[&str] = match probe {
        Probe::Http(_) => &["status >= 200", "status < 300"],
        Probe::Tcp(_) => &["connected == true"],
        Probe::Dns(_) => &["rcode == \"NoError\"", "len(answers) > 0"],
        Probe::Tls(_) => &["cert.valid == true", "cert.days_left > 0"],
        Probe::Postgres(_) => &["connected == true"],
        Probe::Redis(_) => &["ping == true"],
        Probe::Prometheus(p) if p.alerts.is_some() => &["alerts == 0"],
        // A query passes when it returns a sample; `no data` is an error.
        Probe::Prometheus(_) => &[],
        Probe::Command(_) => &["exit_code == 0"],
        Probe::Env(_) => &["len(missing) == 0"],
        Probe::File(_) => &["exists == true"],
    };
    texts.iter().filter_map(|t| cond::parse(t).ok()).collect()
}

/// Judges one condition.
pub(crate) fn judge(c: &Condition, obs: &Observation) -> ConditionResult {
    let (passed, observed) = match obs.lookup(&c.subject.path) {
        Lookup::Absent(why) => match obs.note_of(&c.subject.path) {
            Some(note) if why == "not observed" => (false, note.to_string()),
            Some(note) => (false, format!("{why} ({note})")),
            None => (false, why),
        },
        Lookup::Found(value) => {
            let value = if c.subject.len {
                match length(&value) {
                    Some(n) => Value::Number(n as f64),
                    None => {
                        return result(c, false, format!("{value} (len() needs a list or text)"));
                    }
                }
            } else {
                value
            };
            let mut shown = value.to_string();
            if let Some(note) = obs.note_of(&c.subject.path).filter(|_| !c.subject.len) {
                shown = format!("{shown} ({note})");
            }
            match holds(&value, c.op, &c.value) {
                Ok(passed) => (passed, shown),
                Err(why) => (false, format!("{shown} ({why})")),
            }
        }
    };
    result(c, passed, observed)
}

fn result(c: &Condition, passed: bool, observed: String) -> ConditionResult {
    ConditionResult {
        condition: c.to_string(),
        passed,
        observed: Some(observed),
    }
}

fn length(v: &Value) -> Option<usize> {
    match v {
        Value::List(items) => Some(items.len()),
        Value::Text(s) => Some(s.chars().count()),
        Value::Json(serde_json::Value::Array(a)) => Some(a.len()),
        Value::Json(serde_json::Value::Object(o)) => Some(o.len()),
        Value::Json(serde_json::Value::Null) => Some(0),
        _ => None,
    }
}

/// Whether `value op literal` holds; `Err` explains a comparison that makes no sense.
fn holds(value: &Value, op: Op, lit: &Literal) -> Result<bool, String> {
    match op {
        Op::Contains => contains(value, lit),
        Op::NotContains => contains(value, lit).map(|b| !b),
        Op::Matches => matches(value, lit),
        _ => compare(value, lit).map(|ord| match (op, ord) {
            (_, None) => false,
            (Op::Eq, Some(o)) => o == Ordering::Equal,
            (Op::Ne, Some(o)) => o != Ordering::Equal,
            (Op::Lt, Some(o)) => o == Ordering::Less,
            (Op::Le, Some(o)) => o != Ordering::Greater,
            (Op::Gt, Some(o)) => o == Ordering::Greater,
            (Op::Ge, Some(o)) => o != Ordering::Less,
            _ => false,
        }),
    }
    .and_then(|b| match (op, value, lit) {
        // Booleans are equal or not; `true < false` is a mistake, not a `false`.
        (Op::Lt | Op::Le | Op::Gt | Op::Ge, Value::Bool(_), _)
        | (Op::Lt | Op::Le | Op::Gt | Op::Ge, _, Literal::Bool(_)) => {
            Err("booleans can only be compared with == and !=".into())
        }
        _ => Ok(b),
    })
}

fn literal_text(lit: &Literal) -> String {
    match lit {
        Literal::Text(t) => t.clone(),
        Literal::Number(n) => format_number(*n),
        Literal::Bool(b) => b.to_string(),
        Literal::Duration(d) => golive_plan::time::format_duration(*d),
    }
}

fn contains(value: &Value, lit: &Literal) -> Result<bool, String> {
    let needle = literal_text(lit);
    match value {
        Value::Text(s) => Ok(s.contains(&needle)),
        Value::List(items) => Ok(items.contains(&needle)),
        Value::Json(serde_json::Value::Array(items)) => Ok(items
            .iter()
            .any(|i| compare(&Value::from_json(i), lit) == Ok(Some(Ordering::Equal)))),
        Value::Json(serde_json::Value::Object(o)) => Ok(o.contains_key(&needle)),
        _ => Err("contains needs text or a list".into()),
    }
}

fn matches(value: &Value, lit: &Literal) -> Result<bool, String> {
    let Literal::Text(pattern) = lit else {
        return Err("matches takes a quoted regular expression".into());
    };
    let re = regex::Regex::new(pattern)
        .map_err(|e| format!("invalid regular expression: {}", last_line(&e.to_string())))?;
    Ok(match value {
        Value::List(items) => items.iter().any(|i| re.is_match(i)),
        Value::Json(serde_json::Value::Array(items)) => items
            .iter()
            .any(|i| re.is_match(&Value::from_json(i).plain())),
        other => re.is_match(&other.plain()),
    })
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// Orders an observed value against a literal; `Ok(None)` for incomparable
/// numbers (NaN), `Err` for a type mismatch.
fn compare(value: &Value, lit: &Literal) -> Result<Option<Ordering>, String> {
    let mismatch = |what: &str| -> Result<Option<Ordering>, String> {
        Err(format!("{what} cannot be compared with {}", describe(lit)))
    };
    match (value, lit) {
        (Value::Number(a), Literal::Number(b)) | (Value::Seconds(a), Literal::Number(b)) => {
            Ok(a.partial_cmp(b))
        }
        (Value::Seconds(a) | Value::Number(a), Literal::Duration(d)) => {
            Ok(a.partial_cmp(&d.as_secs_f64()))
        }
        (Value::Number(a), Literal::Text(t)) => match number(t) {
            Some(b) => Ok(a.partial_cmp(&b)),
            None => mismatch("a number"),
        },
        (Value::Text(s), Literal::Number(b)) => match number(s) {
            Some(a) => Ok(a.partial_cmp(b)),
            None => mismatch("text"),
        },
        (Value::Text(s), Literal::Text(t)) => match (number(s), number(t)) {
            (Some(a), Some(b)) => Ok(a.partial_cmp(&b)),
            _ => Ok(Some(s.as_str().cmp(t.as_str()))),
        },
        (Value::Text(s), Literal::Bool(b)) => match s.trim() {
            "true" | "t" => Ok(Some(true.cmp(b))),
            "false" | "f" => Ok(Some(false.cmp(b))),
            _ => mismatch("text"),
        },
        (Value::Bool(a), Literal::Bool(b)) => Ok(Some(a.cmp(b))),
        (Value::Bool(a), Literal::Text(t)) if t == "true" || t == "false" => {
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

fn describe(lit: &Literal) -> String {
    match lit {
        Literal::Number(n) => format!("the number {}", format_number(*n)),
        Literal::Duration(d) => format!("the duration {}", golive_plan::time::format_duration(*d)),
        Literal::Bool(b) => format!("{b}"),
        Literal::Text(t) => format!("the text {t:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs() -> Observation {
        let mut o = Observation::default();
        o.set("status", Value::Number(503.0))
            .set("response_time", Value::Seconds(0.25))
            .set("connected", Value::Bool(false))
            .note("connected", "connection refused")
            .set("answers", Value::List(vec!["10.1.2.3".into()]))
            .set("version", Value::Text("1.3".into()))
            .set("cert.expires_in", Value::Seconds(-86400.0));
        o.body(r#"{"status":"UP","items":[1,2,"x"],"n":null}"#.into());
        o
    }

    fn check(text: &str) -> ConditionResult {
        let c = cond::parse(text).expect("condition parses");
        judge(&c, &obs())
    }

    fn pass(text: &str) -> bool {
        check(text).passed
    }

    #[test]
    fn numbers_durations_and_text() {
        assert!(pass("status == 503"));
        assert!(!pass("status == 200"));
        assert!(pass("status >= 500"));
        assert!(pass("status matches \"^5\""));
        assert!(pass("response_time < 500ms"));
        assert!(pass("response_time < 1"));
        assert!(!pass("response_time > 1s"));
        assert!(pass("cert.expires_in < 0s"));
        assert!(pass("version == \"1.3\""));
        assert!(pass("version >= 1.2"));
        assert!(pass("body contains \"UP\""));
        assert!(pass("body !contains \"DOWN\""));
        assert!(pass("body.$.status == UP"));
        assert!(pass("len(body.$.items) == 3"));
        assert!(pass("body.$.items contains 2"));
        assert!(pass("body.$.items contains x"));
        assert!(pass("body.$.items[0] < 2"));
        assert!(pass("len(answers) > 0"));
        assert!(pass("answers contains \"10.1.2.3\""));
        assert!(pass("answers !contains \"10.9.9.9\""));
        assert!(pass("connected == false"));
    }

    #[test]
    fn mismatches_fail_with_a_reason() {
        let r = check("connected > 1");
        assert!(!r.passed);
        let r = check("version == true");
        assert!(!r.passed, "{r:?}");
        assert!(
            r.observed
                .as_deref()
                .unwrap_or("")
                .contains("cannot be compared")
        );
        let r = check("answers == 1");
        assert!(
            r.observed.as_deref().unwrap_or("").contains("len("),
            "{r:?}"
        );
        let r = check("len(status) > 1");
        assert!(!r.passed);
        let r = check("status contains 5");
        assert!(!r.passed);
        let r = check("body.$.n == 1");
        assert!(!r.passed);
        let r = check("body matches \"(\"");
        assert!(
            r.observed
                .as_deref()
                .unwrap_or("")
                .contains("invalid regular"),
            "{r:?}"
        );
        let r = check("connected == true");
        assert_eq!(r.observed.as_deref(), Some("false (connection refused)"));
        let r = check("body.$.missing == 1");
        assert!(
            r.observed.as_deref().unwrap_or("").starts_with("absent"),
            "{r:?}"
        );
    }

    #[test]
    fn every_probe_kind_has_parseable_defaults() {
        let http = Probe::Http(Default::default());
        assert_eq!(defaults(&http).len(), 2);
        assert_eq!(defaults(&Probe::Tls(Default::default())).len(), 2);
        assert_eq!(defaults(&Probe::Dns(Default::default())).len(), 2);
        assert_eq!(defaults(&Probe::File(Default::default())).len(), 1);
    }
}
