//! Thresholds written in prose → draft conditions in golive's condition
//! language (`Error rate > 5%` → `error_rate > 5%`).
//!
//! Rollback criteria in checklists are sentences; the rollback decision tree
//! needs conditions. The importer drafts one per criterion, checks that
//! [`Rule::parse`] (what a level's `when` compiles with) accepts it, and
//! marks the level for review: the
//! subject names (`api_downtime`) still have to be wired to real metrics.

use crate::rule::Rule;

/// Comparison words and symbols, with the operator they mean.
const OPS: [(&str, &str); 15] = [
    ("≥", ">="),
    (">=", ">="),
    ("≤", "<="),
    ("<=", "<="),
    (">", ">"),
    ("<", "<"),
    (" above ", ">"),
    (" exceeds ", ">"),
    (" exceeding ", ">"),
    (" over ", ">"),
    (" greater than ", ">"),
    (" more than ", ">"),
    (" below ", "<"),
    (" under ", "<"),
    (" less than ", "<"),
];

/// A condition identifier from prose: `API downtime` → `api_downtime`.
/// Empty when the text has no ASCII letters or digits.
pub(crate) fn snake(text: &str, max_words: usize) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(max_words)
        .map(str::to_ascii_lowercase)
        .collect();
    let s = words.join("_");
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("m_{s}")
    } else {
        s
    }
}

/// `5 minutes` → `5m`, `5%` → `5%`, `1000ms` → `1000ms`, `100` → `100`;
/// also returns the rest of the text after the value.
fn value(text: &str) -> Option<(String, &str)> {
    let t = text.trim_start();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let number = &t[..digits];
    if number.is_empty() || number.parse::<f64>().is_err() {
        return None;
    }
    let after = &t[digits..];
    let trimmed = after.trim_start();
    if let Some(rest) = trimmed.strip_prefix('%') {
        return Some((format!("{number}%"), rest));
    }
    let word_len = trimmed
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(trimmed.len());
    let word = trimmed[..word_len].to_ascii_lowercase();
    let short = match word.as_str() {
        "ms" | "millisecond" | "milliseconds" => Some("ms"),
        "s" | "sec" | "secs" | "second" | "seconds" => Some("s"),
        "m" | "min" | "mins" | "minute" | "minutes" => Some("m"),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some("h"),
        "d" | "day" | "days" => Some("d"),
        _ => None,
    };
    match short {
        // Durations are whole numbers in golive.
        Some(_) if number.contains('.') => None,
        Some(u) => Some((format!("{number}{u}"), &trimmed[word_len..])),
        None => Some((number.to_string(), after)),
    }
}

/// `for 2 minutes` at the start of `rest` → ` for 2m`.
fn hold(rest: &str) -> String {
    let r = rest.trim_start();
    let Some(after_for) = r.strip_prefix("for ") else {
        return String::new();
    };
    match value(after_for) {
        Some((v, _)) if !v.ends_with('%') && v.ends_with(|c: char| c.is_ascii_alphabetic()) => {
            format!(" for {v}")
        }
        _ => String::new(),
    }
}

/// Drafts a condition from a threshold sentence, e.g. `Error rate > 5% for
/// any endpoint` → `error_rate > 5%`, `< 1% error rate` → `error_rate < 1%`.
/// `None` when no threshold is found or the draft does not parse.
pub(crate) fn threshold(text: &str) -> Option<String> {
    let padded = format!(" {} ", text.trim());
    let lower = padded.to_ascii_lowercase();
    let (at, pat, op) = OPS
        .iter()
        .filter_map(|(pat, op)| lower.find(pat).map(|at| (at, *pat, *op)))
        .min_by_key(|(at, pat, _)| (*at, usize::MAX - pat.len()))?;
    let before = padded.get(..at)?;
    let after = padded.get(at + pat.len()..)?;
    let (v, rest) = value(after)?;
    let mut subject = snake(before, 6);
    if subject.is_empty() {
        // `< 1% error rate`: the subject follows the value.
        subject = snake(rest, 4);
    }
    if subject.is_empty() {
        return None;
    }
    let condition = format!("{subject} {op} {v}{}", hold(rest));
    Rule::parse(&condition).is_ok().then_some(condition)
}

/// A bare condition (`database_corruption_or_data_loss_detected`, meaning
/// `== true`) for a criterion without a threshold.
pub(crate) fn flag(text: &str) -> Option<String> {
    let s = snake(text, 8);
    (!s.is_empty() && Rule::parse(&s).is_ok()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_become_rules() {
        let table = [
            ("Error rate > 5%", Some("error_rate > 5%")),
            ("p95 latency > 1000ms", Some("p95_latency > 1000ms")),
            ("API downtime > 5 minutes", Some("api_downtime > 5m")),
            ("Error rate > 5% for any endpoint", Some("error_rate > 5%")),
            (
                "Error rate above 2% for 10 minutes",
                Some("error_rate > 2% for 10m"),
            ),
            ("< 1% error rate", Some("error_rate < 1%")),
            ("CPU utilization >= 90 %", Some("cpu_utilization >= 90%")),
            (
                "Response time exceeds 2 seconds",
                Some("response_time > 2s"),
            ),
            ("Queue depth > 1000", Some("queue_depth > 1000")),
            ("Latency > 1.5 hours", None),
            ("Database corruption or data loss detected", None),
            ("Critical business function not working", None),
            ("> 5%", None),
            ("", None),
        ];
        for (text, want) in table {
            let got = threshold(text);
            assert_eq!(got.as_deref(), want, "{text}");
            if let Some(c) = got {
                Rule::parse(&c).expect("drafts parse");
            }
        }
    }

    #[test]
    fn criteria_without_threshold_become_flags() {
        assert_eq!(
            flag("Database corruption or data loss detected").as_deref(),
            Some("database_corruption_or_data_loss_detected")
        );
        assert_eq!(flag("99.9% uptime").as_deref(), Some("m_99_9_uptime"));
        assert_eq!(flag("✅ —"), None);
    }
}
