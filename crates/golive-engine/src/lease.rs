//! The run's lease: who this engine is, and the background task that keeps
//! the lease alive while the run executes.
//!
//! Every write the engine makes is conditioned on the lease by the store, so
//! a lost lease stops the engine at its next write; the keeper also raises a
//! flag so that an engine blocked waiting for people notices at its next poll.

use std::sync::Arc;
use std::time::Duration;

use golive_store::{RunId, Store, StoreError};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::EngineError;

/// This host's name, as lease owner names carry it.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The lease owner `holder` is a process of this host that is gone: its
/// lease may be taken over at once (an engine does so when it drives the
/// run).
pub fn holder_gone(holder: &str) -> bool {
    gone_from_this_host(holder, &format!("{}:0:0", host()))
}

/// The host part of a lease owner name (`host:pid:random`).
pub(crate) fn host_of(owner: &str) -> Option<&str> {
    let mut parts = owner.rsplitn(3, ':');
    let (_random, _pid) = (parts.next()?, parts.next()?);
    parts.next()
}

/// `holder` (a lease owner name) names a process of the same host as `me`
/// that is gone (no such pid, or a zombie). A pid reused by another
/// process since reads as alive: the lease then simply runs out.
pub(crate) fn gone_from_this_host(holder: &str, me: &str) -> bool {
    let (Some(host), Some(mine)) = (host_of(holder), host_of(me)) else {
        return false;
    };
    let pid = holder
        .rsplit(':')
        .nth(1)
        .and_then(|p| p.parse::<i32>().ok());
    host == mine && pid.is_some_and(|pid| pid > 0 && !crate::supervise::running(pid))
}

/// A lease owner name unique to this process: `host:pid:random`.
pub fn owner_name() -> Result<String, EngineError> {
    let host = host();
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|e| EngineError::Random(e.to_string()))?;
    let random: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{host}:{}:{random}", std::process::id()))
}

/// Renews the lease every ttl/3 until stopped or until the lease is lost.
/// Dropped without [`Keeper::stop`] (the run's future was cancelled), it
/// aborts its task, so a cancelled run stops holding its lease.
pub(crate) struct Keeper {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    lost: watch::Receiver<bool>,
}

impl Keeper {
    /// Starts renewing `owner`'s lease on `run`.
    pub(crate) fn spawn<S: Store + 'static>(
        store: Arc<S>,
        run: RunId,
        owner: String,
        ttl: Duration,
    ) -> Keeper {
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let (lost_tx, lost_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(ttl / 3);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate; the lease was just acquired.
            interval.tick().await;
            loop {
                tokio::select! {
                    _ = &mut stop_rx => return,
                    _ = interval.tick() => {}
                }
                match store.renew_lease(&run, &owner, ttl).await {
                    Ok(()) => {}
                    Err(StoreError::LeaseLost { .. }) => {
                        let _ = lost_tx.send(true);
                        return;
                    }
                    // A passing database error: try again at the next tick;
                    // if it lasts past the ttl, the renewal reports LeaseLost.
                    Err(_) => {}
                }
            }
        });
        Keeper {
            stop: Some(stop_tx),
            task,
            lost: lost_rx,
        }
    }

    /// A flag that turns true when the lease is lost.
    pub(crate) fn lost(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Stops renewing and waits for the task; whether the lease was lost.
    pub(crate) async fn stop(mut self) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        *self.lost.borrow()
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_on_this_host_whose_process_is_gone_is_recognized() {
        let me = owner_name().expect("owner");
        let host = host_of(&me).expect("host");
        // This process is alive.
        assert!(!gone_from_this_host(&me, &me));
        // A child that has exited and been reaped is gone.
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        child.wait().expect("wait");
        assert!(gone_from_this_host(&format!("{host}:{pid}:00"), &me));
        // Another host's holder, or a name that is not `host:pid:random`, is never judged.
        assert!(!gone_from_this_host(&format!("{host}x:{pid}:00"), &me));
        assert!(!gone_from_this_host("nonsense", &me));
        assert_eq!(host_of("h:o:st:12:ab"), Some("h:o:st"));
    }
}
