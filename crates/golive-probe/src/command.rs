//! The command probe: `sh -c` in its own process group, with the plan's
//! variables and secrets in its environment — `exit_code`, `stdout`,
//! `stderr`, `duration`.
//!
//! The whole group is killed when the shell exits or the attempt times out,
//! so a check never leaves a `sleep` (or a stuck `curl`) behind.

use std::process::Stdio;
use std::time::Instant;

use golive_plan::RawCommand;
use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::Outcome;
use crate::observation::{Observation, Value};
use crate::vars::Vars;

/// Output kept per stream; the rest is read and dropped.
const MAX_OUTPUT: usize = 1 << 20;

/// Kills a process group when dropped, including when the attempt's future
/// is dropped on timeout.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // ESRCH (the group is already gone) is the common, fine case.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

pub(crate) async fn observe(p: &RawCommand, vars: &Vars) -> Outcome {
    let text = vars.expand(&p.command.value);
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&text)
        .envs(vars.pairs())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let workdir = p.workdir.as_ref().map(|d| vars.expand(d));
    if let Some(dir) = &workdir {
        if !std::path::Path::new(dir).is_dir() {
            return Err(format!("workdir `{dir}` is not a directory"));
        }
        command.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start `sh -c`: {e}"))?;
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw),
    );
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let wait = async {
        let status = child.wait().await;
        // The shell is done: whatever it left in the background goes too,
        // which also closes the pipes the reads below wait on.
        drop(std::mem::replace(&mut guard, GroupGuard(None)));
        status
    };
    let (status, out, err) = tokio::join!(wait, read_capped(stdout), read_capped(stderr));
    let status = status.map_err(|e| format!("waiting for the command: {e}"))?;
    let duration = started.elapsed();
    let exit_code = match status.code() {
        Some(code) => f64::from(code),
        None => {
            use std::os::unix::process::ExitStatusExt;
            // Killed by a signal: 128 + signal, as shells report it.
            f64::from(128 + status.signal().unwrap_or(0))
        }
    };
    let mut obs = Observation::default();
    obs.set("exit_code", Value::Number(exit_code))
        .set("stdout", Value::Text(out))
        .set("stderr", Value::Text(err))
        .set("duration", Value::duration(duration));
    Ok(obs)
}

async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}
