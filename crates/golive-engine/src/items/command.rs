//! `run` items: `sh -c COMMAND` in its own process group, with the plan's
//! variables and secrets as environment variables, a timeout per attempt,
//! retries with a doubling backoff, and output captured, capped and redacted.
//!
//! Process handling — its own process group, killed when an attempt times
//! out, when the shell exits and when the attempt is cancelled (a stop
//! signal) — is `golive_probe::shell`'s, shared with the command probe.

use std::time::{Duration, Instant};

use golive_plan::{Item, Plan, Run};
use golive_probe::Vars;
use golive_probe::shell::{self, Captured, Shell};
use golive_store::{NewEvent, Outcome, Store};
use serde_json::{Value, json};

use crate::{Ctx, Engine, EngineError};

/// Output kept per stream; the rest is read and dropped.
const MAX_OUTPUT: usize = 64 * 1024;

/// What one attempt produced.
struct Attempt {
    exit_code: Option<i32>,
    timed_out: bool,
    error: Option<String>,
    stdout: Captured,
    stderr: Captured,
    duration: Duration,
}

/// Runs the command until an attempt exits 0 or the retries are used up.
/// Each failed attempt is journaled as a `run.attempt` event.
pub(crate) async fn run<S: Store + 'static>(
    engine: &Engine<S>,
    ctx: &Ctx<'_>,
    item: &Item,
    run: &Run,
) -> Result<(Outcome, Value), EngineError> {
    let env = environment(ctx.plan, ctx.vars, ctx.overrides);
    let mut delay = run.backoff;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let a = engine
            .guarded(ctx, async { Ok(attempt(run, ctx.vars, &env).await) })
            .await?;
        let passed = a.exit_code == Some(0) && !a.timed_out && a.error.is_none();
        let result = json!({
            "command": run.command,
            "exit_code": a.exit_code,
            "timed_out": a.timed_out,
            "error": a.error,
            "stdout": ctx.vars.redact(&a.stdout.text),
            "stderr": ctx.vars.redact(&a.stderr.text),
            "stdout_truncated": a.stdout.truncated,
            "stderr_truncated": a.stderr.truncated,
            "duration_ms": u64::try_from(a.duration.as_millis()).unwrap_or(u64::MAX),
            "attempts": attempts,
        });
        if passed {
            return Ok((Outcome::Passed, result));
        }
        if attempts > run.retries {
            return Ok((Outcome::Failed, result));
        }
        let event = NewEvent {
            kind: "run.attempt".into(),
            item_id: Some(item.id.to_string()),
            data: json!({
                "attempt": attempts,
                "exit_code": a.exit_code,
                "timed_out": a.timed_out,
                "error": a.error,
                "retry_in_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            }),
        };
        engine
            .store
            .append_event(ctx.run, &engine.owner, &event)
            .await?;
        engine
            .guarded(ctx, async {
                tokio::time::sleep(delay).await;
                Ok(())
            })
            .await?;
        delay = delay.saturating_mul(2);
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

async fn attempt(run: &Run, vars: &Vars, env: &[(String, String)]) -> Attempt {
    let mut env = env.to_vec();
    env.extend(run.env.iter().map(|(k, v)| (k.clone(), vars.expand(v))));
    let shell = Shell {
        command: &run.command,
        env,
        workdir: run.workdir.as_ref().map(|d| vars.expand(d)),
        timeout: Some(run.timeout),
        max_output: MAX_OUTPUT,
    };
    let started = Instant::now();
    match shell::run(shell).await {
        Ok(done) => Attempt {
            exit_code: done.exit_code,
            timed_out: done.timed_out,
            error: done.timed_out.then(|| {
                format!(
                    "timed out after {}",
                    golive_plan::time::format_duration(run.timeout)
                )
            }),
            stdout: done.stdout,
            stderr: done.stderr,
            duration: done.duration,
        },
        Err(error) => Attempt {
            exit_code: None,
            timed_out: false,
            error: Some(vars.redact(&error)),
            stdout: Captured::default(),
            stderr: Captured::default(),
            duration: started.elapsed(),
        },
    }
}
