//! Traffic actuators: set the canary's share of traffic (0–100 %, the
//! stable version gets the rest) through whatever the plan's `traffic`
//! names, and read back the share in effect where the backend can tell.
//!
//! This file owns the one entry point, [`Actuator`], what a change reports
//! ([`Applied`], journaled by the engine) and why one fails
//! ([`TrafficError`]). Each backend lives in its own module:
//!
//! - `haproxy`: server weights through HAProxy's runtime API;
//! - `nginx`: an upstream file golive owns, then the plan's reload command;
//! - `flag`: the `percentage` of one of golive's own flags (through
//!   [`golive_store::flags::upsert`]);
//! - `command`: a command given the weights in its environment;
//! - `webhook`: a JSON POST.
//!
//! Every `set_weight` is idempotent — the engine re-applies the last
//! journaled weight after a crash — and an actuator failure is itself a
//! rollback condition, so errors name the backend and quote its answer.
//! Secret values (plan secrets expanded into a command or URL) are
//! redacted from errors, details and descriptions.

mod command;
mod flag;
mod haproxy;
mod nginx;
mod webhook;

use std::time::Duration;

use golive_runtime::Vars;
use golive_store::{Actor, Store};

pub use command::ShellCommand;
pub use flag::FlagPercentage;
pub use haproxy::Haproxy;
pub use nginx::Nginx;
pub use webhook::Webhook;

/// Default time limit of a traffic command, an nginx reload command and a
/// webhook call: a step that cannot move traffic within a minute is stuck.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What one traffic change did.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// The canary's share, in percent.
    pub canary: u8,
    /// The stable version's share, in percent (`100 - canary`).
    pub stable: u8,
    /// What was sent and answered, for the journal (secrets redacted).
    pub detail: serde_json::Value,
}

/// Why traffic could not be moved or read.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// A canary share above 100 % was asked for.
    #[error("canary weight {0}% is above 100%")]
    Weight(u8),
    /// The plan's traffic settings cannot be used as they are.
    #[error("{backend} traffic: {message}")]
    Config {
        /// `haproxy`, `nginx`, `flag`, `command` or `webhook`.
        backend: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// HAProxy's runtime API could not be reached or did not answer in time.
    #[error("haproxy runtime API at {socket}: {message}")]
    HaproxyUnreachable {
        /// The socket as the plan gives it.
        socket: String,
        /// What failed (connect, write, read, timeout).
        message: String,
    },
    /// HAProxy answered a command with something other than success.
    #[error(
        "haproxy runtime API at {socket}: `{command}` failed, HAProxy answered: {answer}{}",
        already(applied)
    )]
    HaproxyAnswer {
        /// The socket as the plan gives it.
        socket: String,
        /// The command sent.
        command: String,
        /// HAProxy's answer, trimmed.
        answer: String,
        /// Commands of this change that had already succeeded.
        applied: Vec<String>,
    },
    /// The nginx upstream file could not be read or written, or is not
    /// golive's to write.
    #[error("nginx upstream file {path}: {message}")]
    NginxFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The nginx reload command failed; the previous upstream file was put
    /// back (or `restored` says why not).
    #[error("nginx reload `{command}` {outcome}; {restored}; its output: {output}")]
    NginxReload {
        /// The reload command (secrets redacted).
        command: String,
        /// `exited with code 1`, `timed out after 60s`, `could not start: …`.
        outcome: String,
        /// What became of the upstream file.
        restored: String,
        /// The tail of its standard error and output.
        output: String,
    },
    /// The traffic command failed or ran out of time.
    #[error("traffic command `{command}` {outcome}; its output: {output}")]
    Command {
        /// The command (secrets redacted).
        command: String,
        /// `exited with code 3`, `timed out after 60s`, `could not start: …`.
        outcome: String,
        /// The tail of its standard error and output.
        output: String,
    },
    /// The webhook could not be reached or its answer could not be read.
    #[error("traffic webhook POST {url}: {message}")]
    WebhookUnreachable {
        /// The URL (secrets and passwords hidden).
        url: String,
        /// What failed.
        message: String,
    },
    /// The webhook answered with a status other than 2xx.
    #[error("traffic webhook POST {url} answered HTTP {status}: {body}")]
    WebhookStatus {
        /// The URL (secrets and passwords hidden).
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The flag the rollout drives does not exist.
    #[error(
        "flag `{key}` does not exist: create it before the rollout (a `flag` item in the plan does that)"
    )]
    FlagNotFound {
        /// The flag's key.
        key: String,
    },
    /// The flag could not be read or changed.
    #[error("flag `{key}`: {source}")]
    Flag {
        /// The flag's key.
        key: String,
        /// Why.
        source: golive_store::flags::FlagWriteError,
    },
}

/// `" (already applied: `a`, `b`)"`, or nothing: a failed HAProxy change
/// says how far it got, since the engine must know the state it left.
fn already(applied: &[String]) -> String {
    if applied.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = applied.iter().map(|c| format!("`{c}`")).collect();
        format!(" (already applied: {})", list.join(", "))
    }
}

/// Moves traffic between the stable and the canary version, one way per
/// plan `traffic` kind.
#[derive(Debug)]
pub enum Actuator {
    /// HAProxy server weights over the runtime API.
    Haproxy(Haproxy),
    /// An nginx upstream file golive owns, and a reload.
    Nginx(Nginx),
    /// The percentage of a golive flag.
    Flag(FlagPercentage),
    /// A command run with the weights in its environment.
    Command(ShellCommand),
    /// A JSON POST.
    Webhook(Webhook),
}

impl Actuator {
    /// The actuator the plan's `traffic` describes, with `${NAME}` expanded
    /// from `vars` in every setting. Checks the settings (names HAProxy or
    /// nginx could misread, a bad socket address, a bad flag key, a URL that
    /// does not parse) without touching the backend.
    pub fn from_plan(
        traffic: &golive_plan::Traffic,
        vars: &Vars,
    ) -> Result<Actuator, TrafficError> {
        use golive_plan::Traffic;
        Ok(match traffic {
            Traffic::Haproxy {
                socket,
                backend,
                stable,
                canary,
            } => Actuator::Haproxy(Haproxy::new(
                &vars.expand(socket),
                &vars.expand(backend),
                &vars.expand(stable),
                &vars.expand(canary),
            )?),
            Traffic::Nginx {
                upstream_file,
                upstream,
                stable,
                canary,
                reload,
            } => Actuator::Nginx(Nginx::new(
                &vars.expand(upstream_file),
                &vars.expand(upstream),
                &vars.expand(stable),
                &vars.expand(canary),
                &vars.expand(reload),
                vars,
            )?),
            Traffic::Flag { key } => Actuator::Flag(FlagPercentage::new(&vars.expand(key))?),
            Traffic::Command { command } => {
                Actuator::Command(ShellCommand::new(&vars.expand(command), vars))
            }
            Traffic::Webhook { url } => Actuator::Webhook(Webhook::new(&vars.expand(url), vars)?),
        })
    }

    /// The same actuator with another time limit for its command, reload
    /// command or webhook call ([`DEFAULT_TIMEOUT`] otherwise). HAProxy's
    /// socket has its own short limits; the flag store has none.
    pub fn with_timeout(self, timeout: Duration) -> Actuator {
        match self {
            Actuator::Nginx(n) => Actuator::Nginx(n.with_timeout(timeout)),
            Actuator::Command(c) => Actuator::Command(c.with_timeout(timeout)),
            Actuator::Webhook(w) => Actuator::Webhook(w.with_timeout(timeout)),
            other => other,
        }
    }

    /// Gives the canary `canary_percent` % of the traffic and the stable
    /// version the rest. Idempotent: applying the weight in effect again
    /// succeeds and changes nothing a client would notice (nginx does
    /// reload again, since a crash may have come between writing its file
    /// and reloading). `store` and `actor` are used by the flag actuator
    /// only (the audit log names the actor).
    pub async fn set_weight<S: Store>(
        &self,
        store: &S,
        canary_percent: u8,
        actor: &Actor,
    ) -> Result<Applied, TrafficError> {
        if canary_percent > 100 {
            return Err(TrafficError::Weight(canary_percent));
        }
        match self {
            Actuator::Haproxy(h) => h.set_weight(canary_percent).await,
            Actuator::Nginx(n) => n.set_weight(canary_percent).await,
            Actuator::Flag(f) => f.set_weight(store, canary_percent, actor).await,
            Actuator::Command(c) => c.set_weight(canary_percent).await,
            Actuator::Webhook(w) => w.set_weight(canary_percent).await,
        }
    }

    /// The canary's share in effect, in percent; `None` when the backend
    /// cannot tell (a command, a webhook, an nginx file that is missing or
    /// not golive's).
    pub async fn current<S: Store>(&self, store: &S) -> Result<Option<u8>, TrafficError> {
        match self {
            Actuator::Haproxy(h) => h.current().await,
            Actuator::Nginx(n) => n.current().await,
            Actuator::Flag(f) => f.current(store).await,
            Actuator::Command(_) | Actuator::Webhook(_) => Ok(None),
        }
    }

    /// One line for people: `haproxy /run/haproxy.sock backend app (stable
    /// s1, canary s2)`.
    pub fn describe(&self) -> String {
        match self {
            Actuator::Haproxy(h) => h.describe(),
            Actuator::Nginx(n) => n.describe(),
            Actuator::Flag(f) => f.describe(),
            Actuator::Command(c) => c.describe(),
            Actuator::Webhook(w) => w.describe(),
        }
    }
}

/// The canary's share of two weights, rounded half up; 0 when the canary
/// gets nothing (including when both are 0: then nobody is served by it).
fn share(canary: u32, stable: u32) -> u8 {
    let total = u64::from(canary) + u64::from(stable);
    if canary == 0 || total == 0 {
        return 0;
    }
    let percent = (200 * u64::from(canary) + total) / (2 * total);
    u8::try_from(percent).unwrap_or(100)
}

/// The last `max` bytes of `text` (on a character boundary), marked when
/// cut: the end of a command's output is where it says why it failed.
fn tail(text: &str, max: usize) -> String {
    let text = text.trim_end();
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// The tails of a finished command's standard error and output, one
/// labelled block each, for an error message.
fn output_tail(finished: &golive_runtime::shell::Finished, max: usize) -> String {
    let stderr = tail(&finished.stderr.text, max);
    let stdout = tail(&finished.stdout.text, max);
    match (stderr.is_empty(), stdout.is_empty()) {
        (true, true) => "(none)".to_string(),
        (false, true) => stderr,
        (true, false) => stdout,
        (false, false) => format!("{stderr}\n[stdout] {stdout}"),
    }
}

/// How a command that did not succeed ended, in words.
fn outcome(finished: &golive_runtime::shell::Finished, timeout: Duration) -> String {
    match finished.exit_code {
        _ if finished.timed_out => format!(
            "timed out after {} and was killed",
            golive_plan::time::format_duration(timeout)
        ),
        Some(code) => format!("exited with code {code}"),
        None => "ended without an exit code".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_rounds_and_handles_zero() {
        assert_eq!(share(0, 0), 0);
        assert_eq!(share(0, 100), 0);
        assert_eq!(share(25, 75), 25);
        assert_eq!(share(1, 3), 25);
        assert_eq!(share(1, 1), 50);
        assert_eq!(share(1, 2), 33);
        assert_eq!(share(2, 1), 67);
        assert_eq!(share(256, 0), 100);
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("short\n", 10), "short");
        assert_eq!(tail("abcdéfgh", 4), "…fgh");
        assert_eq!(tail("abcdefgh", 3), "…fgh");
    }

    #[test]
    fn partial_haproxy_changes_are_named() {
        let e = TrafficError::HaproxyAnswer {
            socket: "/s".into(),
            command: "set server b/s1 weight 75".into(),
            answer: "No such server.".into(),
            applied: vec!["set server b/s2 weight 25".into()],
        };
        assert_eq!(
            e.to_string(),
            "haproxy runtime API at /s: `set server b/s1 weight 75` failed, HAProxy answered: \
             No such server. (already applied: `set server b/s2 weight 25`)"
        );
    }
}
