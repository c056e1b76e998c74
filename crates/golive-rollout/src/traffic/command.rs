//! The command actuator: the plan's command, run by `sh -c` (through
//! [`golive_runtime::shell`], in its own process group, killed at the time
//! limit), with `GOLIVE_WEIGHT` (the canary's percent) and
//! `GOLIVE_STABLE_WEIGHT` (the stable's) in its environment. Exit code 0 is
//! success; anything else, or running out of time, is an error quoting the
//! end of its output. golive cannot ask a command what is in effect, so
//! `current()` is always `None` and the command itself must be idempotent.

use std::time::Duration;

use golive_runtime::Vars;
use golive_runtime::shell::{self, Shell};
use serde_json::json;

use super::{Applied, DEFAULT_TIMEOUT, TrafficError, outcome, output_tail, tail};

/// Output kept per stream.
const MAX_OUTPUT: usize = 64 * 1024;
/// Output quoted in an error or the journal.
const QUOTED_OUTPUT: usize = 2000;

/// A command that moves traffic.
pub struct ShellCommand {
    command: String,
    timeout: Duration,
    /// For redacting secrets from the command and its output.
    vars: Vars,
}

/// Shows the command with secrets redacted: `{:?}` ends up in logs.
impl std::fmt::Debug for ShellCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellCommand")
            .field("command", &self.vars.redact(&self.command))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ShellCommand {
    pub(super) fn new(command: &str, vars: &Vars) -> ShellCommand {
        ShellCommand {
            command: command.to_string(),
            timeout: DEFAULT_TIMEOUT,
            vars: vars.clone(),
        }
    }

    pub(super) fn with_timeout(mut self, timeout: Duration) -> ShellCommand {
        self.timeout = timeout;
        self
    }

    /// `command `…``.
    pub(super) fn describe(&self) -> String {
        format!("command `{}`", self.vars.redact(&self.command))
    }

    /// Runs the command once for this weight.
    pub(super) async fn set_weight(&self, canary: u8) -> Result<Applied, TrafficError> {
        let stable = 100 - canary;
        let command = self.vars.redact(&self.command);
        let done = shell::run(Shell {
            command: &self.command,
            env: vec![
                ("GOLIVE_WEIGHT".to_string(), canary.to_string()),
                ("GOLIVE_STABLE_WEIGHT".to_string(), stable.to_string()),
            ],
            workdir: None,
            timeout: Some(self.timeout),
            max_output: MAX_OUTPUT,
        })
        .await
        .map_err(|e| TrafficError::Command {
            command: command.clone(),
            outcome: format!("could not start: {e}"),
            output: "(none)".to_string(),
        })?;
        if done.timed_out || done.exit_code != Some(0) {
            return Err(TrafficError::Command {
                command,
                outcome: outcome(&done, self.timeout),
                output: self.vars.redact(&output_tail(&done, QUOTED_OUTPUT)),
            });
        }
        Ok(Applied {
            canary,
            stable,
            detail: json!({
                "backend": "command",
                "command": command,
                "exit_code": 0,
                "duration_ms": u64::try_from(done.duration.as_millis()).unwrap_or(u64::MAX),
                "stdout": self.vars.redact(&tail(&done.stdout.text, QUOTED_OUTPUT)),
                "stderr": self.vars.redact(&tail(&done.stderr.text, QUOTED_OUTPUT)),
            }),
        })
    }
}
