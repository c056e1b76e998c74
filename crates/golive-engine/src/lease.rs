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

/// A lease owner name unique to this process: `host:pid:random`.
pub fn owner_name() -> Result<String, EngineError> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
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
