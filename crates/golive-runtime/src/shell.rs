//! Running `/bin/sh -c COMMAND` the way go-live steps need it: in its own
//! process group, with a given environment and working directory, output
//! captured and capped, an optional time limit.
//!
//! Shared by the command probe and the run engine's `run` items. The whole
//! process group is killed when the shell exits, when the time limit passes
//! and when the future is dropped (a cancelled attempt), so a step never
//! leaves a `sleep` or a stuck `curl` behind holding its output pipes open.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct Shell<'a> {
    /// The command text, given to `sh -c`.
    pub command: &'a str,
    /// Environment variables added to golive's own (to what plans may see
    /// of it: see [`crate::host_env`]).
    pub env: Vec<(String, String)>,
    /// Working directory; must exist.
    pub workdir: Option<String>,
    /// Time limit; the group is killed when it passes.
    pub timeout: Option<Duration>,
    /// Bytes kept per output stream; the rest is read and dropped.
    pub max_output: usize,
}

/// Output of one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captured {
    /// The kept bytes, as text (invalid UTF-8 replaced).
    pub text: String,
    /// More was written than kept.
    pub truncated: bool,
}

/// How a command ended.
#[derive(Clone, Debug)]
pub struct Finished {
    /// Exit code; 128 + signal when killed by a signal; `None` when timed out.
    pub exit_code: Option<i32>,
    /// The time limit passed and the group was killed.
    pub timed_out: bool,
    /// Standard output.
    pub stdout: Captured,
    /// Standard error.
    pub stderr: Captured,
    /// Wall time.
    pub duration: Duration,
}

/// Kills a process group when dropped, including when the future running the
/// command is dropped.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            // ESRCH (the group is already gone) is the common, fine case.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

/// Runs the command to its end (or its time limit). `Err` when it could not
/// start: a missing working directory, no `/bin/sh`.
pub async fn run(shell: Shell<'_>) -> Result<Finished, String> {
    run_with(shell, |_| {}).await
}

/// Like [`run`], calling `on_start` with the shell's pid (also its process
/// group) once it runs: a supervisor records it before anything else.
pub async fn run_with(shell: Shell<'_>, on_start: impl FnOnce(u32)) -> Result<Finished, String> {
    // `/bin/sh` as system(3) uses: no PATH search.
    let mut command = Command::new("/bin/sh");
    crate::host_env::apply(&mut command);
    command
        .arg("-c")
        .arg(shell.command)
        .envs(shell.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &shell.workdir {
        if !std::path::Path::new(dir).is_dir() {
            return Err(format!("workdir `{dir}` is not a directory"));
        }
        command.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start `sh -c`: {e}"))?;
    if let Some(id) = child.id() {
        on_start(id);
    }
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw),
    );
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let limit = shell.timeout;
    let wait = async {
        let status = match limit {
            Some(limit) => tokio::select! {
                s = child.wait() => Some(s),
                _ = tokio::time::sleep(limit) => None,
            },
            None => Some(child.wait().await),
        };
        // Done or out of time: the whole group goes, which also closes the
        // pipes the reads wait on.
        drop(std::mem::replace(&mut guard, GroupGuard(None)));
        match status {
            Some(s) => (s, false),
            None => (child.wait().await, true),
        }
    };
    let max = shell.max_output;
    let ((status, timed_out), stdout, stderr) =
        tokio::join!(wait, read_capped(stdout, max), read_capped(stderr, max));
    let status = status.map_err(|e| format!("waiting for the command: {e}"))?;
    let exit_code = status.code().or_else(|| status.signal().map(|s| 128 + s));
    Ok(Finished {
        exit_code: if timed_out { None } else { exit_code },
        timed_out,
        stdout,
        stderr,
        duration: started.elapsed(),
    })
}

async fn read_capped(stream: Option<impl AsyncRead + Unpin>, max: usize) -> Captured {
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
                let room = max.saturating_sub(kept.len());
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
