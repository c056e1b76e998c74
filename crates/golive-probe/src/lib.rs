//! Readiness probes: run one `check` item of a plan against the real world
//! and judge its conditions.
//!
//! # Layout
//! - one module per probe kind (`http`, `tcp`, `dns`, `tls`, `postgres`,
//!   `redis`, `prometheus`, `command`, `env`, `file`), each turning its
//!   settings into an `Observation`.
//! - `observation`: what a probe saw, looked up by a condition's subject
//!   (`status`, `header.Server`, `body.$.items[0]`).
//! - `eval`: conditions (`status == 200`, `body.$.status == "UP"`) judged
//!   against an observation, and the default conditions of each probe kind.
//!
//! Variables, the shell, TLS settings and redaction are golive-runtime's.
//! The public surface is [`run_check`] and [`CheckResult`]; the `golive
//! ready` command and the run engine build on it.

#![deny(missing_docs)]

mod command;
mod dns;
mod env;
mod eval;
mod file;
mod http;
mod observation;
mod postgres;
mod prometheus;
mod redis;
mod tcp;
mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use golive_plan::{Check, Probe};
use golive_runtime::{Vars, mask_userinfo};
use serde::Serialize;

use observation::Observation;

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The probe ran and every condition held.
    Pass,
    /// The probe ran and at least one condition did not hold.
    Fail,
    /// The probe could not observe its target (refused, timed out, bad URL, ...).
    Error,
}

/// One condition and how it was judged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConditionResult {
    /// The condition as written, e.g. `status == 200`.
    pub condition: String,
    /// Whether it held.
    pub passed: bool,
    /// The observed value of its subject, as text (`503`, `812ms`, `"DOWN"`), if any.
    pub observed: Option<String>,
}

/// The outcome of one check item.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    /// Pass, fail or error.
    pub status: Status,
    /// Each condition with its observed value (empty when the probe errored).
    pub conditions: Vec<ConditionResult>,
    /// Why the probe could not observe its target (secrets redacted).
    pub error: Option<String>,
    /// Wall time of all attempts.
    #[serde(serialize_with = "as_millis")]
    pub duration: Duration,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What one probe attempt produced: an observation, or why there is none.
pub(crate) type Outcome = Result<Observation, String>;

/// Runs one check: probes its target, judges its conditions (or the probe
/// kind's defaults when `expect` is empty), and retries up to
/// `check.retries` times, `check.retry_delay` apart, until an attempt passes.
///
/// Each attempt is limited to `check.timeout` as a whole; a command probe's
/// whole process group is killed when its attempt runs out of time. Never
/// panics: a probe that panics is reported as an error. Errors and observed
/// values have secret values replaced by `***`.
pub async fn run_check(check: &Check, vars: &Vars) -> CheckResult {
    let started = Instant::now();
    let conditions = if check.expect.is_empty() {
        eval::defaults(&check.probe)
    } else {
        check.expect.clone()
    };
    let probe = Arc::new(check.probe.clone());
    let shared_vars = Arc::new(vars.clone());
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = attempt(&probe, &shared_vars, check.timeout).await;
        let (status, results, error) = match outcome {
            Ok(obs) => {
                let results: Vec<ConditionResult> = conditions
                    .iter()
                    .map(|c| {
                        let mut r = eval::judge(c, &obs);
                        r.observed = r.observed.map(|o| vars.redact(&o));
                        r
                    })
                    .collect();
                let status = if results.iter().all(|r| r.passed) {
                    Status::Pass
                } else {
                    Status::Fail
                };
                (status, results, None)
            }
            Err(e) => (
                Status::Error,
                Vec::new(),
                Some(vars.redact(&mask_userinfo(&e))),
            ),
        };
        if status == Status::Pass || attempts > check.retries {
            return CheckResult {
                status,
                conditions: results,
                error,
                duration: started.elapsed(),
                attempts,
            };
        }
        tokio::time::sleep(check.retry_delay).await;
    }
}

/// One attempt, in its own task so that a panicking probe becomes an error,
/// and cut off after `timeout`. Waiting for the aborted task makes sure its
/// resources (a command's process group) are released before returning.
async fn attempt(probe: &Arc<Probe>, vars: &Arc<Vars>, timeout: Duration) -> Outcome {
    let (probe, vars) = (Arc::clone(probe), Arc::clone(vars));
    let mut task = tokio::spawn(async move { observe(&probe, &vars, timeout).await });
    match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) if e.is_panic() => Err("the probe failed unexpectedly (panicked)".into()),
        Ok(Err(_)) => Err("the probe was cancelled".into()),
        Err(_) => {
            task.abort();
            let _ = task.await;
            Err(format!(
                "timed out after {}",
                golive_plan::time::format_duration(timeout)
            ))
        }
    }
}

/// Dispatches to the probe kind's module.
async fn observe(probe: &Probe, vars: &Vars, timeout: Duration) -> Outcome {
    match probe {
        Probe::Http(p) => http::observe(p, vars).await,
        Probe::Tcp(p) => tcp::observe(p, vars).await,
        Probe::Dns(p) => dns::observe(p, vars, timeout).await,
        Probe::Tls(p) => tls::observe(p, vars).await,
        Probe::Postgres(p) => postgres::observe(p, vars).await,
        Probe::Redis(p) => redis::observe(p, vars).await,
        Probe::Prometheus(p) => prometheus::observe(p, vars).await,
        Probe::Command(p) => command::observe(p, vars).await,
        Probe::Env(p) => Ok(env::observe(p, vars)),
        Probe::File(p) => file::observe(p, vars).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_check_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let check = golive_plan::Check {
            probe: Probe::Env(Default::default()),
            expect: Vec::new(),
            timeout: Duration::from_secs(1),
            retries: 0,
            retry_delay: Duration::from_secs(1),
        };
        let vars = Vars::default();
        assert_send(&run_check(&check, &vars));
    }
}
