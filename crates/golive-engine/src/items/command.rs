//! `run` items: `sh -c COMMAND` in its own process group, with the plan's
//! variables and secrets as environment variables, a timeout per attempt,
//! retries with a doubling backoff, and output captured, capped and redacted.
//!
//! The whole process group is killed when an attempt times out and when the
//! shell exits (as the command probe does), so a step never leaves a stuck
//! child behind holding its output pipes open.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use golive_plan::{Item, Plan, Run};
use golive_probe::Vars;
use golive_store::{NewEvent, Outcome, Store};
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::{Ctx, Engine, EngineError};

/// Output kept per stream; the rest is read and dropped.
const MAX_OUTPUT: usize = 64 * 1024;

/// Kills a process group when dropped, also when the attempt is cancelled.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            // ESRCH (the group is already gone) is the common, fine case.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

/// What one attempt produced.
struct Attempt {
    exit_code: Option<i32>,
    timed_out: bool,
    error: Option<String>,
    stdout: Captured,
    stderr: Captured,
    duration: Duration,
}

#[derive(Default)]
struct Captured {
    text: String,
    truncated: bool,
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
    let started = Instant::now();
    let failed = |error: String| Attempt {
        exit_code: None,
        timed_out: false,
        error: Some(vars.redact(&error)),
        stdout: Captured::default(),
        stderr: Captured::default(),
        duration: started.elapsed(),
    };
    // `/bin/sh` as system(3) uses: no PATH search (eight failed `execve`s
    // per item on a typical PATH).
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&run.command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .envs(run.env.iter().map(|(k, v)| (k.clone(), vars.expand(v))))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &run.workdir {
        let dir = vars.expand(dir);
        if !std::path::Path::new(&dir).is_dir() {
            return failed(format!("workdir `{dir}` is not a directory"));
        }
        command.current_dir(dir);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start `sh -c`: {e}")),
    };
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw),
    );
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let wait = async {
        let status = tokio::select! {
            s = child.wait() => Some(s),
            _ = tokio::time::sleep(run.timeout) => None,
        };
        // Done or out of time: the whole group goes, which also closes the
        // pipes the reads wait on.
        drop(std::mem::replace(&mut guard, GroupGuard(None)));
        match status {
            Some(s) => (s, false),
            None => (child.wait().await, true),
        }
    };
    let ((status, timed_out), out, err) =
        tokio::join!(wait, read_capped(stdout), read_capped(stderr));
    let (exit_code, error) = match status {
        Ok(s) => (s.code().or_else(|| s.signal().map(|sig| 128 + sig)), None),
        Err(e) => (None, Some(format!("waiting for the command: {e}"))),
    };
    Attempt {
        exit_code: if timed_out { None } else { exit_code },
        timed_out,
        error: if timed_out {
            Some(format!(
                "timed out after {}",
                golive_plan::time::format_duration(run.timeout)
            ))
        } else {
            error
        },
        stdout: out,
        stderr: err,
        duration: started.elapsed(),
    }
}

async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> Captured {
    let Some(mut stream) = stream else {
        return Captured::default();
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                truncated |= n > room;
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    Captured {
        text: String::from_utf8_lossy(&kept).into_owned(),
        truncated,
    }
}
