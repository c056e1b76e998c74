//! The durable journal of go-live runs.
//!
//! A run's plan text, the state of each of its items, every confirmation
//! and signature, and an append-only journal of events live here, so that a
//! go-live survives `kill -9`, a reboot or a power cut, and so that several
//! golive processes can share one run through a lease.
//!
//! Every state change writes its journal event in the same transaction, so
//! the journal and the state never disagree; every write made on behalf of
//! an engine names the lease owner and fails with [`StoreError::LeaseLost`]
//! once that owner no longer holds the run.
//!
//! # Layout
//! - [`Store`] (this file): the one storage trait, its operations and their
//!   rules; [`AnyStore`], the backend chosen once by [`open`] from the URL.
//! - [`sqlite`]: [`SqliteStore`], the default: one file, zero set-up, WAL
//!   with `synchronous = FULL`; the process clock, or a [`ManualClock`].
//! - [`postgres`]: [`PgStore`], for several processes sharing one database;
//!   the database's clock decides leases.
//! - `model`: runs, item states, events, confirmations, signatures, and the
//!   item transitions both backends enforce.
//! - `url`: [`DbUrl`] (never prints a password), backend choice,
//!   [`default_sqlite_path`].
//! - `error`: [`StoreError`] and the sorting of database errors.
//! - `migrations`: each backend's embedded `migrations/` directory, applied
//!   on open (or, on a read-only database, checked).

#![deny(missing_docs)]

mod error;
mod migrations;
mod model;
pub mod postgres;
pub mod sqlite;
mod url;

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

pub use error::StoreError;
pub use model::{
    Confirmation, Decision, Event, InvalidRunId, ItemState, ItemStatus, NewConfirmation, NewEvent,
    NewRequest, NewRun, NewSignature, Outcome, Request, Run, RunId, RunStatus, RunSummary,
    Signature, kind,
};
pub use postgres::PgStore;
pub use sqlite::{ManualClock, SqliteStore};
pub use url::{DATABASE_URL_ENV, DbUrl, default_sqlite_path};

/// The operations the engine, the CLI and the server need from storage.
///
/// Item ids are the plan's ids as text; `owner` is the lease owner (one per
/// engine process). Unknown runs and items give [`StoreError::NotFound`].
/// All futures are `Send`, so callers may spawn them.
pub trait Store: Send + Sync {
    /// Creates a run with a fresh id, status `pending`, every listed item
    /// `pending`, and event 1 (`run.created`). Listing an item twice is a
    /// [`StoreError::Conflict`].
    fn create_run(&self, new: &NewRun) -> impl Future<Output = Result<Run, StoreError>> + Send;

    /// A run with its plan text.
    fn get_run(&self, run: &RunId) -> impl Future<Output = Result<Run, StoreError>> + Send;

    /// The newest runs first, at most `limit`.
    fn list_runs(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RunSummary>, StoreError>> + Send;

    /// Sets the run's status (`run.status` event); no event when unchanged.
    /// Needs the lease. Which moves make sense is the engine's business.
    fn set_run_status(
        &self,
        run: &RunId,
        owner: &str,
        status: RunStatus,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the run's lease for `ttl` if it is free, already `owner`'s, or
    /// expired; `false` if someone else holds it. A change of owner writes
    /// `lease.acquired`; re-acquiring one's own lease writes nothing.
    fn acquire_lease(
        &self,
        run: &RunId,
        owner: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Extends `owner`'s unexpired lease to `ttl` from now (not journaled);
    /// [`StoreError::LeaseLost`] if it expired or was taken.
    fn renew_lease(
        &self,
        run: &RunId,
        owner: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the lease up (`lease.released`); `false` if `owner` did not hold it.
    fn release_lease(
        &self,
        run: &RunId,
        owner: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// pending | interrupted | waiting → running, one more attempt
    /// (`item.started`). A running or finished item is a
    /// [`StoreError::Conflict`]: a finished step never runs twice.
    fn start_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
    ) -> impl Future<Output = Result<ItemState, StoreError>> + Send;

    /// running → passed | failed | skipped with its result, or pending |
    /// interrupted | waiting → skipped (`item.finished`). Anything else is a
    /// [`StoreError::Conflict`].
    fn finish_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
    ) -> impl Future<Output = Result<ItemState, StoreError>> + Send;

    /// Any unfinished status → waiting (`item.waiting`, with `detail`).
    fn set_item_waiting(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        detail: &Value,
    ) -> impl Future<Output = Result<ItemState, StoreError>> + Send;

    /// Every `running` item → interrupted, one `item.interrupted` each; the
    /// ids in plan order. The first thing a resume does.
    fn mark_interrupted(
        &self,
        run: &RunId,
        owner: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The run's items in plan order.
    fn item_states(
        &self,
        run: &RunId,
    ) -> impl Future<Output = Result<Vec<ItemState>, StoreError>> + Send;

    /// Adds an event of the engine's own (output, notifications, decisions);
    /// the actor is `owner`. Needs the lease.
    fn append_event(
        &self,
        run: &RunId,
        owner: &str,
        event: &NewEvent,
    ) -> impl Future<Output = Result<Event, StoreError>> + Send;

    /// The run's events with `seq > after`, in order, at most `limit`.
    fn events_after(
        &self,
        run: &RunId,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;

    /// Records a person's confirmation of an item (`item.confirmed`); needs
    /// no lease and does not change the item's status (the engine reads it).
    /// `false` if the item was already confirmed: nothing changes.
    fn confirm(
        &self,
        run: &RunId,
        item: &str,
        confirmation: &NewConfirmation,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The item's confirmation, if any.
    fn confirmation(
        &self,
        run: &RunId,
        item: &str,
    ) -> impl Future<Output = Result<Option<Confirmation>, StoreError>> + Send;

    /// Records a sign-off for one role (`item.signed`); needs no lease.
    /// `false` if that role already signed the item: the first decision
    /// stands and nothing changes.
    fn sign(
        &self,
        run: &RunId,
        item: &str,
        signature: &NewSignature,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The item's signatures, oldest first.
    fn signatures(
        &self,
        run: &RunId,
        item: &str,
    ) -> impl Future<Output = Result<Vec<Signature>, StoreError>> + Send;

    /// Records a request to the run from someone who does not drive it
    /// (`run.requested`); needs no lease. One per kind: `false` if that kind
    /// was already requested, and the first request stands.
    fn request(
        &self,
        run: &RunId,
        request: &NewRequest,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The run's requests, oldest first.
    fn requests(
        &self,
        run: &RunId,
    ) -> impl Future<Output = Result<Vec<Request>, StoreError>> + Send;

    /// Closes the connections, waiting for them (SQLite checkpoints its WAL).
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The backend chosen by [`open`].
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PgStore),
}

/// Opens the journal named by `url`, creating and migrating it as needed:
/// `postgres://…` or `postgresql://…` is PostgreSQL; `sqlite://PATH`,
/// `sqlite:PATH` or a plain path is a SQLite file.
pub async fn open(url: &str) -> Result<AnyStore, StoreError> {
    let url = DbUrl::new(url);
    match url.target()? {
        url::Target::Sqlite(path) => {
            Ok(AnyStore::Sqlite(SqliteStore::open_named(&path, url).await?))
        }
        url::Target::Postgres => Ok(AnyStore::Postgres(PgStore::open(url).await?)),
    }
}

impl AnyStore {
    /// The database's URL (password hidden when printed).
    pub fn url(&self) -> &DbUrl {
        match self {
            AnyStore::Sqlite(s) => s.url(),
            AnyStore::Postgres(s) => s.url(),
        }
    }
}

/// Forwards a call to whichever backend is open.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($store) => $call.await,
            AnyStore::Postgres($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn create_run(&self, new: &NewRun) -> Result<Run, StoreError> {
        delegate!(self, s => s.create_run(new))
    }

    async fn get_run(&self, run: &RunId) -> Result<Run, StoreError> {
        delegate!(self, s => s.get_run(run))
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>, StoreError> {
        delegate!(self, s => s.list_runs(limit))
    }

    async fn set_run_status(
        &self,
        run: &RunId,
        owner: &str,
        status: RunStatus,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.set_run_status(run, owner, status))
    }

    async fn acquire_lease(
        &self,
        run: &RunId,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.acquire_lease(run, owner, ttl))
    }

    async fn renew_lease(&self, run: &RunId, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        delegate!(self, s => s.renew_lease(run, owner, ttl))
    }

    async fn release_lease(&self, run: &RunId, owner: &str) -> Result<bool, StoreError> {
        delegate!(self, s => s.release_lease(run, owner))
    }

    async fn start_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
    ) -> Result<ItemState, StoreError> {
        delegate!(self, s => s.start_item(run, item, owner))
    }

    async fn finish_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
    ) -> Result<ItemState, StoreError> {
        delegate!(self, s => s.finish_item(run, item, owner, outcome, result))
    }

    async fn set_item_waiting(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        detail: &Value,
    ) -> Result<ItemState, StoreError> {
        delegate!(self, s => s.set_item_waiting(run, item, owner, detail))
    }

    async fn mark_interrupted(&self, run: &RunId, owner: &str) -> Result<Vec<String>, StoreError> {
        delegate!(self, s => s.mark_interrupted(run, owner))
    }

    async fn item_states(&self, run: &RunId) -> Result<Vec<ItemState>, StoreError> {
        delegate!(self, s => s.item_states(run))
    }

    async fn append_event(
        &self,
        run: &RunId,
        owner: &str,
        event: &NewEvent,
    ) -> Result<Event, StoreError> {
        delegate!(self, s => s.append_event(run, owner, event))
    }

    async fn events_after(
        &self,
        run: &RunId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        delegate!(self, s => s.events_after(run, after, limit))
    }

    async fn confirm(
        &self,
        run: &RunId,
        item: &str,
        confirmation: &NewConfirmation,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.confirm(run, item, confirmation))
    }

    async fn confirmation(
        &self,
        run: &RunId,
        item: &str,
    ) -> Result<Option<Confirmation>, StoreError> {
        delegate!(self, s => s.confirmation(run, item))
    }

    async fn sign(
        &self,
        run: &RunId,
        item: &str,
        signature: &NewSignature,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.sign(run, item, signature))
    }

    async fn signatures(&self, run: &RunId, item: &str) -> Result<Vec<Signature>, StoreError> {
        delegate!(self, s => s.signatures(run, item))
    }

    async fn request(&self, run: &RunId, request: &NewRequest) -> Result<bool, StoreError> {
        delegate!(self, s => s.request(run, request))
    }

    async fn requests(&self, run: &RunId) -> Result<Vec<Request>, StoreError> {
        delegate!(self, s => s.requests(run))
    }

    async fn close(&self) {
        delegate!(self, s => s.close())
    }
}
