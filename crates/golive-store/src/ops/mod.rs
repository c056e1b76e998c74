//! The store's operations written once, over [`crate::dialect`]: what each
//! reads and writes, in which transaction, and what it answers. A backend
//! ([`Backend`]) keeps what truly differs between the databases:
//! connecting, migrating, transactions and their locks, and the hot path of
//! a run (an item's moves), which each does in its own fastest way; every
//! backend is a [`Store`] through the one implementation here.
//!
//! - [`journal`]: runs, their status and leases, events, confirmations,
//!   signatures and requests.
//! - [`server`]: the war-room server's feature flags, API tokens and audit
//!   log.

pub(crate) mod journal;
pub(crate) mod server;

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::dialect::Dialect;
use crate::model::Move;
use crate::{
    Actor, AuditEntry, AuditFilter, Confirmation, DbUrl, Event, FlagRecord, ItemState, NewAudit,
    NewConfirmation, NewEvent, NewRequest, NewRun, NewSignature, NewToken, Outcome, Request, Run,
    RunId, RunStatus, RunSummary, Signature, Store, StoreError, TokenRecord,
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A database golive keeps its journal in: its statements ([`Dialect`])
/// and what it does its own way.
pub(crate) trait Backend: Dialect + Send + Sync {
    /// The URL it was opened with, named in its errors.
    fn url(&self) -> &DbUrl;

    /// One move of one item, journaled with its event in one commit: the
    /// hot path of a run (see [`Store::start_item`], [`Store::finish_item`],
    /// [`Store::set_item_waiting`]).
    fn move_one(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        mv: Move<'_>,
    ) -> impl Future<Output = Result<ItemState>> + Send;

    /// A finish and the next start in one commit (`item != next`); see
    /// [`Store::finish_and_start`].
    fn finish_then_start(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
        next: &str,
    ) -> impl Future<Output = Result<(ItemState, ItemState)>> + Send;

    /// See [`Store::close`].
    fn close_connections(&self) -> impl Future<Output = ()> + Send;

    /// See [`Store::database_restarted`].
    fn restarted(&self) -> bool {
        false
    }
}

/// Runs one operation of `backend`, naming its database in its errors.
async fn at<B: Backend, T>(backend: &B, op: impl Future<Output = Result<T>>) -> Result<T> {
    op.await.map_err(|e| e.at(backend.url()))
}

impl<B: Backend> Store for B {
    async fn create_run(&self, new: &NewRun) -> Result<Run> {
        at(self, journal::create_run(self, new)).await
    }

    async fn get_run(&self, run: &RunId) -> Result<Run> {
        at(self, journal::get_run(self, run)).await
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>> {
        at(self, journal::list_runs(self, limit)).await
    }

    async fn set_run_status(&self, run: &RunId, owner: &str, status: RunStatus) -> Result<()> {
        at(self, journal::set_run_status(self, run, owner, status)).await
    }

    async fn acquire_lease(&self, run: &RunId, owner: &str, ttl: Duration) -> Result<bool> {
        at(self, journal::acquire_lease(self, run, owner, ttl)).await
    }

    async fn renew_lease(&self, run: &RunId, owner: &str, ttl: Duration) -> Result<()> {
        at(self, journal::renew_lease(self, run, owner, ttl)).await
    }

    async fn release_lease(&self, run: &RunId, owner: &str) -> Result<bool> {
        at(self, journal::release_lease(self, run, owner)).await
    }

    async fn start_item(&self, run: &RunId, item: &str, owner: &str) -> Result<ItemState> {
        at(self, self.move_one(run, item, owner, Move::Start)).await
    }

    async fn finish_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
    ) -> Result<ItemState> {
        at(
            self,
            self.move_one(run, item, owner, Move::Finish(outcome, result)),
        )
        .await
    }

    async fn finish_and_start(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
        next: &str,
    ) -> Result<(ItemState, ItemState)> {
        if item == next {
            return Err(StoreError::Conflict(format!(
                "item `{item}` cannot finish and start in one move"
            )));
        }
        at(
            self,
            self.finish_then_start(run, item, owner, outcome, result, next),
        )
        .await
    }

    async fn set_item_waiting(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        detail: &Value,
    ) -> Result<ItemState> {
        at(self, self.move_one(run, item, owner, Move::Wait(detail))).await
    }

    async fn mark_interrupted(&self, run: &RunId, owner: &str) -> Result<Vec<String>> {
        at(self, journal::mark_interrupted(self, run, owner)).await
    }

    async fn item_states(&self, run: &RunId) -> Result<Vec<ItemState>> {
        at(self, journal::item_states(self, run)).await
    }

    async fn append_event(&self, run: &RunId, owner: &str, event: &NewEvent) -> Result<Event> {
        at(self, journal::append_event(self, run, owner, event)).await
    }

    async fn events_after(&self, run: &RunId, after: i64, limit: u32) -> Result<Vec<Event>> {
        at(self, journal::events_after(self, run, after, limit)).await
    }

    async fn confirm(
        &self,
        run: &RunId,
        item: &str,
        confirmation: &NewConfirmation,
    ) -> Result<bool> {
        at(self, journal::confirm(self, run, item, confirmation)).await
    }

    async fn confirmation(&self, run: &RunId, item: &str) -> Result<Option<Confirmation>> {
        at(self, journal::confirmation(self, run, item)).await
    }

    async fn sign(&self, run: &RunId, item: &str, signature: &NewSignature) -> Result<bool> {
        at(self, journal::sign(self, run, item, signature)).await
    }

    async fn signatures(&self, run: &RunId, item: &str) -> Result<Vec<Signature>> {
        at(self, journal::signatures(self, run, item)).await
    }

    async fn request(&self, run: &RunId, request: &NewRequest) -> Result<bool> {
        at(self, journal::request(self, run, request)).await
    }

    async fn requests(&self, run: &RunId) -> Result<Vec<Request>> {
        at(self, journal::requests(self, run)).await
    }

    async fn put_flag(
        &self,
        key: &str,
        definition: &Value,
        expected_version: Option<i64>,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<FlagRecord> {
        at(
            self,
            server::put_flag(self, key, definition, expected_version, actor, reason),
        )
        .await
    }

    async fn delete_flag(&self, key: &str, actor: &Actor, reason: Option<&str>) -> Result<bool> {
        at(self, server::delete_flag(self, key, actor, reason)).await
    }

    async fn get_flag(&self, key: &str) -> Result<Option<FlagRecord>> {
        at(self, server::get_flag(self, key)).await
    }

    async fn list_flags(&self) -> Result<Vec<FlagRecord>> {
        at(self, server::list_flags(self)).await
    }

    async fn flags_revision(&self) -> Result<i64> {
        at(self, server::flags_revision(self)).await
    }

    async fn audit_head(&self) -> Result<i64> {
        at(self, server::audit_head(self)).await
    }

    async fn append_audit(&self, actor: &Actor, entry: &NewAudit) -> Result<AuditEntry> {
        at(self, server::append_audit(self, actor, entry)).await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        at(self, server::audit(self, filter)).await
    }

    async fn create_token(&self, token: &NewToken, actor: &Actor) -> Result<TokenRecord> {
        at(self, server::create_token(self, token, actor)).await
    }

    async fn token_by_secret(&self, secret_sha256: &str) -> Result<Option<TokenRecord>> {
        at(self, server::token_by_secret(self, secret_sha256)).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        at(self, server::list_tokens(self)).await
    }

    async fn revoke_token(&self, id: &str, actor: &Actor) -> Result<bool> {
        at(self, server::revoke_token(self, id, actor)).await
    }

    async fn close(&self) {
        self.close_connections().await;
    }

    fn database_restarted(&self) -> bool {
        self.restarted()
    }
}
