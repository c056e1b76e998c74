//! Judging a condition against an observation, and the conditions a probe
//! kind checks when a plan gives none.
//!
//! This module owns how a probe's observation answers the references of a
//! condition (a field, with the note a probe left on it) and how the
//! evaluation reads in a report. What a comparison means is
//! `golive_plan::value`'s, the same for checks and analysis rules: mixed
//! types are judged where the meaning is clear and otherwise fail with the
//! reason in `observed`, never with a panic.

use golive_plan::Probe;
use golive_plan::cond::{self, Condition, Context, Outcome, Ref, Term};

use crate::ConditionResult;
use crate::observation::{Lookup, Observation, Value};

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
    texts
        .iter()
        .filter_map(|t| cond::parse(t, Context::Check).ok())
        .collect()
}

/// What a reference of a check reads in an observation; an absent field
/// says why, with the probe's note on it.
fn resolve(obs: &Observation, r: &Ref) -> Result<Value, String> {
    let Ref::Path(p) = r else {
        return Err("a check reads fields, not metrics".into());
    };
    match obs.lookup(&p.path) {
        Lookup::Found(v) => Ok(v),
        Lookup::Absent(why) => Err(match obs.note_of(&p.path) {
            Some(note) if why == "not observed" => note.to_string(),
            Some(note) => format!("{why} ({note})"),
            None => why,
        }),
    }
}

/// Judges one condition.
pub(crate) fn judge(c: &Condition, obs: &Observation) -> ConditionResult {
    let e = c.evaluate(&mut |r| resolve(obs, r));
    let observed = match (&e.outcome, e.lhs) {
        (Outcome::NoValue, _) | (_, None) => e.why.unwrap_or_default(),
        (_, Some(value)) => {
            let mut shown = value.to_string();
            // The note a probe left on a field explains its value (`false
            // (connection refused)`), not a count or a sum of it.
            if let Term::Ref(Ref::Path(p)) = &c.lhs
                && !p.len
                && let Some(note) = obs.note_of(&p.path)
            {
                shown = format!("{shown} ({note})");
            }
            match e.why {
                Some(why) => format!("{shown} ({why})"),
                None => shown,
            }
        }
    };
    ConditionResult {
        condition: c.to_string(),
        passed: e.outcome == Outcome::Held,
        observed: Some(observed),
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
        let c = cond::parse(text, Context::Check).expect("condition parses");
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
