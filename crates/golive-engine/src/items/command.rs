//! `run` items: `sh -c COMMAND` in its own process group, with the plan's
//! variables and secrets as environment variables, a timeout per attempt,
//! retries with a doubling backoff, and output captured, capped and redacted.
//!
//! Process handling — its own process group, killed when an attempt times
//! out, when the shell exits and when the attempt is cancelled (a stop
//! signal) — is `golive_runtime::shell`'s, shared with the command probe.

use std::time::{Duration, Instant};

use golive_plan::{Item, Plan, Run};
use golive_runtime::Vars;
use golive_runtime::shell::{self, Shell};
use golive_store::{Outcome, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Host;
use crate::{EngineError, supervise};

/// Output kept per stream; the rest is read and dropped.
const MAX_OUTPUT: usize = 64 * 1024;

/// One attempt's command, everything resolved: what a supervisor is handed.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Spec {
    command: String,
    env: Vec<(String, String)>,
    workdir: Option<String>,
    timeout_ms: u64,
    /// Secret values to redact from the output.
    secrets: Vec<String>,
}

/// What one attempt produced, output capped and redacted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attempt {
    exit_code: Option<i32>,
    timed_out: bool,
    error: Option<String>,
    stdout: String,
    stdout_truncated: bool,
    stderr: String,
    stderr_truncated: bool,
    duration_ms: u64,
}

impl Attempt {
    /// Exited 0 in time.
    pub(crate) fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && self.error.is_none()
    }

    /// The item's result after `attempts` attempts, this one the last.
    pub(crate) fn result(&self, run: &Run, attempts: u32) -> Value {
        json!({
            "command": run.command,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "error": self.error,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "duration_ms": self.duration_ms,
            "attempts": attempts,
        })
    }

    /// An attempt that could not run or whose result is lost.
    fn error(error: String, duration: Duration) -> Attempt {
        Attempt {
            exit_code: None,
            timed_out: false,
            error: Some(error),
            stdout: String::new(),
            stdout_truncated: false,
            stderr: String::new(),
            stderr_truncated: false,
            duration_ms: millis(duration),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs the command until an attempt exits 0 or the retries are used up,
/// starting at attempt `first` (a resume continues the retries of a start
/// whose earlier attempts finished while golive was away). `start` is the
/// item's start number, which names the supervisor's record. Each failed
/// attempt is journaled as a `run.attempt` event.
pub(crate) async fn run<S: Store + 'static>(
    host: &Host<'_, S>,
    item: &Item,
    run: &Run,
    start: u32,
    first: u32,
) -> Result<(Outcome, Value), EngineError> {
    let spec = spec(
        run,
        host.vars(),
        &environment(host.plan(), host.vars(), host.overrides()),
    );
    let mut delay = run.backoff;
    let mut attempts = first.max(1);
    loop {
        let a = host
            .guarded(async {
                Ok(match host.supervisor() {
                    Some(sup) => {
                        let started = Instant::now();
                        let record = sup.record(host.run().as_str(), item.id.as_str(), start);
                        supervise::attempt(sup, &record, attempts, &spec)
                            .await
                            .unwrap_or_else(|e| Attempt::error(e, started.elapsed()))
                    }
                    None => execute(&spec, |_| {}).await,
                })
            })
            .await?;
        let result = a.result(run, attempts);
        if a.passed() {
            return Ok((Outcome::Passed, result));
        }
        if attempts > run.retries {
            return Ok((Outcome::Failed, result));
        }
        let attempt = json!({
            "attempt": attempts,
            "exit_code": a.exit_code,
            "timed_out": a.timed_out,
            "error": a.error,
            "retry_in_ms": millis(delay),
        });
        host.journal(Some(item), "run.attempt", attempt).await?;
        host.sleep(delay).await?;
        delay = delay.saturating_mul(2);
        attempts += 1;
    }
}

/// The plan's variables and secrets, and `--var`s for names the plan does
/// not declare (so that the shell expands `${NAME}` for them too), as the
/// command's environment.
fn environment(plan: &Plan, vars: &Vars, overrides: &[(String, String)]) -> Vec<(String, String)> {
    let declared = |k: &str| plan.variables.contains_key(k) || plan.secrets.contains_key(k);
    overrides
        .iter()
        .filter(|(k, _)| !declared(k))
        .cloned()
        .chain(
            plan.variables
                .keys()
                .chain(plan.secrets.keys())
                .filter_map(|k| vars.get(k).map(|v| (k.clone(), v.to_string()))),
        )
        .collect()
}

/// The command of one attempt, resolved: environment and working
/// directory expanded, the secrets to redact listed.
fn spec(run: &Run, vars: &Vars, env: &[(String, String)]) -> Spec {
    let mut env = env.to_vec();
    env.extend(run.env.iter().map(|(k, v)| (k.clone(), vars.expand(v))));
    Spec {
        command: run.command.clone(),
        env,
        workdir: run.workdir.as_ref().map(|d| vars.expand(d)),
        timeout_ms: millis(run.timeout),
        secrets: vars.secret_values().to_vec(),
    }
}

/// Runs one attempt here (golive itself, or its supervisor); `started` is
/// called with the shell's pid once it runs.
pub(crate) async fn execute(spec: &Spec, started: impl FnOnce(u32)) -> Attempt {
    let redact = Vars::redacting(spec.secrets.clone());
    let timeout = Duration::from_millis(spec.timeout_ms);
    let shell = Shell {
        command: &spec.command,
        env: spec.env.clone(),
        workdir: spec.workdir.clone(),
        timeout: Some(timeout),
        max_output: MAX_OUTPUT,
    };
    let began = Instant::now();
    match shell::run_with(shell, started).await {
        Ok(done) => Attempt {
            exit_code: done.exit_code,
            timed_out: done.timed_out,
            error: done.timed_out.then(|| {
                format!(
                    "timed out after {}",
                    golive_plan::time::format_duration(timeout)
                )
            }),
            stdout: redact.redact(&done.stdout.text),
            stdout_truncated: done.stdout.truncated,
            stderr: redact.redact(&done.stderr.text),
            stderr_truncated: done.stderr.truncated,
            duration_ms: millis(done.duration),
        },
        Err(error) => Attempt::error(redact.redact(&error), began.elapsed()),
    }
}
