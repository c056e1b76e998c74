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
//! The war-room server keeps its feature flags and API tokens here too, and
//! an audit log of every mutation made through it or the CLI: each flag or
//! token change writes its audit entry in the same transaction.
//!
//! # Layout
//! - [`Store`] (this file): the one storage trait, its operations and their
//!   rules; [`AnyStore`], the backend chosen once by [`open`] from the URL.
//! - `ops`: every operation written once (runs, leases, events, answers,
//!   requests in `ops::journal`; flags, tokens and audit in `ops::server`),
//!   and the one `Store` implementation every backend gets from them.
//! - `dialect`: the seam under `ops`: how a statement is spelled, run and
//!   read back on each database.
//! - [`sqlite`]: [`SqliteStore`], the default: one file, zero set-up, WAL
//!   with `synchronous = FULL`; the process clock, or a [`ManualClock`].
//!   Its own: connecting, its one writer, item moves (`sqlite::mover`).
//! - [`postgres`]: [`PgStore`], for several processes sharing one database;
//!   the database's clock decides leases. Its own: connecting, restarts,
//!   item moves as one statement each.
//! - `model`: runs, item states, events, confirmations, signatures, and the
//!   item transitions both backends enforce; the server's feature flags, API
//!   tokens and audit log.
//! - `url`: [`DbUrl`] (never prints a password), backend choice,
//!   [`default_sqlite_path`].
//! - `error`: [`StoreError`] and the sorting of database errors.
//! - [`flags`]: changing a stored feature flag safely (read, merge,
//!   validate with golive-flags, write at the version read, retry), for the
//!   engine's flag items and actuator, the admin API and `golive flags`.
//! - `retry`: [`Retrying`], a store that rides out passing faults (a
//!   PostgreSQL restart, a locked SQLite file) by retrying with backoff,
//!   without applying any write twice.
//! - `migrations`: each backend's embedded `migrations/` directory, applied
//!   on open (or, on a read-only database, checked).

#![deny(missing_docs)]

mod dialect;
mod error;
pub mod flags;
mod migrations;
mod model;
mod ops;
pub mod postgres;
mod retry;
pub mod sqlite;
mod url;

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

pub use error::{StoreError, WriteFault};
pub use model::{
    Actor, AuditEntry, AuditFilter, Confirmation, Decision, Event, FlagRecord, InvalidRunId,
    ItemState, ItemStatus, NewAudit, NewConfirmation, NewEvent, NewRequest, NewRun, NewSignature,
    NewToken, Outcome, Request, Run, RunId, RunStatus, RunSummary, Signature, TokenRecord, action,
    kind,
};
pub use postgres::PgStore;
pub use retry::{DB_RETRY_ENV, DEFAULT_DB_RETRY, Pause, PauseObserver, RetryPolicy, Retrying};
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
    ///
    /// Visible to every reader at once and safe from a crash of this
    /// process, but made durable against a power cut by the next commit
    /// (SQLite `synchronous = NORMAL`, PostgreSQL `synchronous_commit =
    /// off`, for this transaction only): an engine always makes one before
    /// anything else happens — the next item's start, the run's status, the
    /// lease's release. A power cut in between can lose only this finish:
    /// the item then resumes as interrupted and follows its `on_interrupt`,
    /// as if the cut had come just before it ended. This saves one disk
    /// flush per item, half of a run's.
    fn finish_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
    ) -> impl Future<Output = Result<ItemState, StoreError>> + Send;

    /// [`Store::finish_item`] of `item` and [`Store::start_item`] of `next`
    /// in one transaction (on PostgreSQL one statement): the two events
    /// take consecutive seqs, and both moves happen or neither does. Each
    /// move is checked as its own call would check it; the first refusal
    /// (in that order: run, lease, `item`'s finish, `next`'s start) is
    /// returned and nothing is written. `item` and `next` must differ.
    ///
    /// Durable when it returns, the finish with the start (a start must be
    /// known before its step runs): one flush for both instead of the
    /// finish's lazy commit and the start's flush. The engine makes it when
    /// the next item's start is the very next thing it would journal, so a
    /// crash can no more lose the finish than it could before.
    ///
    /// The default makes the two calls one after the other (not atomic);
    /// both backends override it.
    fn finish_and_start(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
        next: &str,
    ) -> impl Future<Output = Result<(ItemState, ItemState), StoreError>> + Send {
        async move {
            let finished = self.finish_item(run, item, owner, outcome, result).await?;
            let started = self.start_item(run, next, owner).await?;
            Ok((finished, started))
        }
    }

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

    /// Creates or replaces a flag. `expected_version`: `None` creates or
    /// updates unconditionally; `Some(0)`: the flag must not exist yet;
    /// `Some(v)`: it must currently be at version `v`; otherwise
    /// [`StoreError::Conflict`] and nothing is written. The version starts
    /// at 1 and grows by 1 per change. The same transaction appends the
    /// audit entry ([`action::FLAG_CREATED`], or [`action::FLAG_UPDATED`]
    /// with the old definition as `before`; target: the key, after: the new
    /// definition) and bumps [`Store::flags_revision`]. An update whose
    /// definition equals the stored one writes nothing and returns the
    /// record unchanged.
    ///
    /// Flag writers are serialized (one at a time per database), so of two
    /// writers expecting the same version exactly one succeeds.
    fn put_flag(
        &self,
        key: &str,
        definition: &Value,
        expected_version: Option<i64>,
        actor: &Actor,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<FlagRecord, StoreError>> + Send;

    /// Deletes a flag, auditing [`action::FLAG_DELETED`] (before: the old
    /// definition) and bumping [`Store::flags_revision`] in the same
    /// transaction; `false` if there was none (nothing written).
    fn delete_flag(
        &self,
        key: &str,
        actor: &Actor,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The flag, if it exists.
    fn get_flag(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<FlagRecord>, StoreError>> + Send;

    /// All flags, by key.
    fn list_flags(&self) -> impl Future<Output = Result<Vec<FlagRecord>, StoreError>> + Send;

    /// A number that grows whenever any flag is created, updated or deleted,
    /// by any process sharing the database (a one-row counter bumped in the
    /// change's transaction; 0 before the first change). One primary-key
    /// lookup: servers poll it to refresh their in-memory flags. Read it
    /// before [`Store::list_flags`], so that a change made in between shows
    /// as a newer revision at the next poll.
    fn flags_revision(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// The seq of the newest audit entry (0 when there is none): where a
    /// reader that wants only entries from now on starts.
    fn audit_head(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Appends an audit entry for a mutation made elsewhere (run
    /// confirmations through the API, token changes, …).
    fn append_audit(
        &self,
        actor: &Actor,
        entry: &NewAudit,
    ) -> impl Future<Output = Result<AuditEntry, StoreError>> + Send;

    /// The audit entries `filter` selects, oldest first (by seq). On
    /// PostgreSQL, seqs are taken in write order but committed in commit
    /// order: a reader paging by seq may, rarely, miss an entry whose lower
    /// seq committed after it read a higher one.
    fn audit(
        &self,
        filter: &AuditFilter,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    /// Stores a token (the caller hashes the secret; the store never sees
    /// it), auditing [`action::TOKEN_CREATED`] (after: `id`, `name`, `role`,
    /// `expires_at`, never the hash) in the same transaction. A duplicate id
    /// or hash is a [`StoreError::Conflict`].
    fn create_token(
        &self,
        token: &NewToken,
        actor: &Actor,
    ) -> impl Future<Output = Result<TokenRecord, StoreError>> + Send;

    /// The token with this secret hash, if any: expired and revoked ones
    /// too, the caller decides and says why.
    fn token_by_secret(
        &self,
        secret_sha256: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;

    /// All tokens, oldest first (revoked and expired ones too).
    fn list_tokens(&self) -> impl Future<Output = Result<Vec<TokenRecord>, StoreError>> + Send;

    /// Revokes a token, auditing [`action::TOKEN_REVOKED`] (after: `id`,
    /// `name`, `role`, `revoked_at`) in the same transaction; `false` if it
    /// is unknown or already revoked (nothing written).
    fn revoke_token(
        &self,
        id: &str,
        actor: &Actor,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Closes the connections, waiting for them (SQLite checkpoints its WAL).
    fn close(&self) -> impl Future<Output = ()> + Send;

    /// Whether the database server restarted since this store last said so
    /// (each restart is told once). A restart is a crash for the commits
    /// not yet flushed: the latest [`Store::finish_item`] may be lost and
    /// needs checking ([`Retrying`] does). `false` for SQLite, which lives
    /// and dies with the process.
    fn database_restarted(&self) -> bool {
        false
    }
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

/// Every [`Store`] operation that returns a result, with its parameters
/// and success type, listed once for the impls that only pass calls on
/// ([`AnyStore`]; the retry tests' fault injector): `$then!` is called
/// with the list, each entry `name(param: Type, …) -> Success;`. A new
/// operation added to the trait and not here fails to compile there.
macro_rules! with_store_ops {
    ($then:ident) => {
        $then! {
            create_run(new: &NewRun) -> Run;
            get_run(run: &RunId) -> Run;
            list_runs(limit: u32) -> Vec<RunSummary>;
            set_run_status(run: &RunId, owner: &str, status: RunStatus) -> ();
            acquire_lease(run: &RunId, owner: &str, ttl: Duration) -> bool;
            renew_lease(run: &RunId, owner: &str, ttl: Duration) -> ();
            release_lease(run: &RunId, owner: &str) -> bool;
            start_item(run: &RunId, item: &str, owner: &str) -> ItemState;
            finish_item(run: &RunId, item: &str, owner: &str, outcome: Outcome, result: &Value) -> ItemState;
            finish_and_start(run: &RunId, item: &str, owner: &str, outcome: Outcome, result: &Value, next: &str) -> (ItemState, ItemState);
            set_item_waiting(run: &RunId, item: &str, owner: &str, detail: &Value) -> ItemState;
            mark_interrupted(run: &RunId, owner: &str) -> Vec<String>;
            item_states(run: &RunId) -> Vec<ItemState>;
            append_event(run: &RunId, owner: &str, event: &NewEvent) -> Event;
            events_after(run: &RunId, after: i64, limit: u32) -> Vec<Event>;
            confirm(run: &RunId, item: &str, confirmation: &NewConfirmation) -> bool;
            confirmation(run: &RunId, item: &str) -> Option<Confirmation>;
            sign(run: &RunId, item: &str, signature: &NewSignature) -> bool;
            signatures(run: &RunId, item: &str) -> Vec<Signature>;
            request(run: &RunId, request: &NewRequest) -> bool;
            requests(run: &RunId) -> Vec<Request>;
            put_flag(key: &str, definition: &Value, expected_version: Option<i64>, actor: &Actor, reason: Option<&str>) -> FlagRecord;
            delete_flag(key: &str, actor: &Actor, reason: Option<&str>) -> bool;
            get_flag(key: &str) -> Option<FlagRecord>;
            list_flags() -> Vec<FlagRecord>;
            flags_revision() -> i64;
            audit_head() -> i64;
            append_audit(actor: &Actor, entry: &NewAudit) -> AuditEntry;
            audit(filter: &AuditFilter) -> Vec<AuditEntry>;
            create_token(token: &NewToken, actor: &Actor) -> TokenRecord;
            token_by_secret(secret_sha256: &str) -> Option<TokenRecord>;
            list_tokens() -> Vec<TokenRecord>;
            revoke_token(id: &str, actor: &Actor) -> bool;
        }
    };
}

// For the retry tests' fault injector (this file uses the macro by name).
#[cfg(test)]
pub(crate) use with_store_ops;

/// [`AnyStore`]'s impl: each operation on whichever backend is open.
macro_rules! any_store {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        impl Store for AnyStore {
            $(async fn $name(&self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                match self {
                    AnyStore::Sqlite(s) => s.$name($($arg),*).await,
                    AnyStore::Postgres(s) => s.$name($($arg),*).await,
                }
            })*

            async fn close(&self) {
                match self {
                    AnyStore::Sqlite(s) => s.close().await,
                    AnyStore::Postgres(s) => s.close().await,
                }
            }

            fn database_restarted(&self) -> bool {
                match self {
                    AnyStore::Sqlite(s) => s.database_restarted(),
                    AnyStore::Postgres(s) => s.database_restarted(),
                }
            }
        }
    };
}

with_store_ops!(any_store);
