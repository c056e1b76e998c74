//! What of golive's own environment a plan sees: `${NAME}`s, variables
//! overridden from the environment, `env:` secrets, `env` checks, and the
//! environment every command inherits.
//!
//! By default, all of it: `golive run` is the user's own process, in the
//! user's own shell. `golive serve` runs plans that others submit and
//! others read the reports of, so it calls [`isolate`]: from then on plans
//! see only a few harmless names ([`BASE`]) and those the server's admin
//! lists, and commands start from that environment, not the server's —
//! so no `env` step, `${AWS_SECRET_ACCESS_KEY}` or variable named like a
//! server setting can copy the server's environment into a report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

/// Names always kept: what a shell command needs to find its tools and
/// write text, and nothing that is usually secret.
pub const BASE: &[&str] = &["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"];

/// `None`: plans see the whole environment; else only these names.
static KEPT: RwLock<Option<BTreeSet<String>>> = RwLock::new(None);

/// From now on, plans in this process see only [`BASE`] and `keep`.
pub fn isolate(keep: &[String]) {
    let names = BASE
        .iter()
        .map(|n| (*n).to_string())
        .chain(keep.iter().cloned())
        .collect();
    match KEPT.write() {
        Ok(mut k) => *k = Some(names),
        Err(poisoned) => *poisoned.into_inner() = Some(names),
    }
}

fn visible(name: &str) -> bool {
    match KEPT.read() {
        Ok(k) => k.as_ref().is_none_or(|names| names.contains(name)),
        // Poisoned by a panic elsewhere: show nothing rather than all.
        Err(_) => false,
    }
}

fn isolated() -> bool {
    KEPT.read().map_or(true, |k| k.is_some())
}

/// The environment plans see.
pub fn vars() -> BTreeMap<String, String> {
    std::env::vars().filter(|(k, _)| visible(k)).collect()
}

/// One variable of the environment plans see.
pub fn var(name: &str) -> Option<String> {
    visible(name).then(|| std::env::var(name).ok()).flatten()
}

/// Gives a command the environment plans see (when isolated, instead of
/// golive's own). Also for processes that start commands on golive's
/// behalf (the supervisor), so they pass on no more than plans see.
pub fn apply(command: &mut tokio::process::Command) {
    if isolated() {
        command.env_clear().envs(vars());
    }
}
