//! A run's journal apart from its hot path: creating and reading runs,
//! their status and leases, events, people's answers (confirmations and
//! signatures) and requests. Every write first holds the run (its row
//! updated, so writes to one run are serialized and `seq` stays gap-free)
//! and journals its event in the same transaction.
//!
//! The hot path, an item's moves, is each backend's own (one statement on
//! PostgreSQL, one in-place transaction on SQLite); it reads items back
//! with [`item_from`].

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::dialect::{Cells, Dialect, Stmt, Tx, millis};
use crate::error::is_unique_violation;
use crate::model::{checked_run, sha256_hex, to_millis};
use crate::{
    Confirmation, Event, ItemState, ItemStatus, NewConfirmation, NewEvent, NewRequest, NewRun,
    NewSignature, Request, Run, RunId, RunStatus, RunSummary, Signature, StoreError, kind,
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

const RUN_COLUMNS: &str = "id, plan_name, plan_sha256, t0, status, created_at, updated_at, \
                           lease_owner, lease_expires_at, last_seq";
pub(crate) const ITEM_COLUMNS: &str =
    "item_id, status, attempts, started_at, finished_at, result?text AS result, updated_at";
const EVENT_COLUMNS: &str = "seq, at, kind, item_id, actor, data?text AS data";

fn summary_from(row: &impl Cells) -> Result<RunSummary> {
    Ok(RunSummary {
        id: RunId::stored(row.text("id")?),
        plan_name: row.text("plan_name")?,
        plan_sha256: row.text("plan_sha256")?,
        t0: row.opt_time("t0")?,
        status: row.text("status")?.parse()?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        lease_owner: row.opt_text("lease_owner")?,
        lease_expires_at: row.opt_time("lease_expires_at")?,
        last_seq: row.int("last_seq")?,
    })
}

/// An item's state from its row ([`ITEM_COLUMNS`]).
pub(crate) fn item_from(row: &impl Cells) -> Result<ItemState> {
    let attempts = row.int("attempts")?;
    Ok(ItemState {
        item_id: row.text("item_id")?,
        status: row.text("status")?.parse()?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("{attempts} attempts")))?,
        started_at: row.opt_time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        result: row.opt_json("result")?,
        updated_at: row.time("updated_at")?,
    })
}

fn event_from(row: &impl Cells) -> Result<Event> {
    Ok(Event {
        seq: row.int("seq")?,
        at: row.time("at")?,
        kind: row.text("kind")?,
        item_id: row.opt_text("item_id")?,
        actor: row.opt_text("actor")?,
        data: row.json("data")?,
    })
}

fn confirmation_from(row: &impl Cells) -> Result<Confirmation> {
    Ok(Confirmation {
        item_id: row.text("item_id")?,
        by: row.text("by")?,
        at: row.time("at")?,
        evidence: row.opt_text("evidence")?,
        skipped: row.boolean("skipped")?,
        reason: row.opt_text("reason")?,
    })
}

fn signature_from(row: &impl Cells) -> Result<Signature> {
    Ok(Signature {
        item_id: row.text("item_id")?,
        role: row.text("role")?,
        by: row.text("by")?,
        at: row.time("at")?,
        decision: row.text("decision")?.parse()?,
        comment: row.opt_text("comment")?,
    })
}

fn request_from(row: &impl Cells) -> Result<Request> {
    Ok(Request {
        kind: row.text("kind")?,
        by: row.text("by")?,
        at: row.time("at")?,
        reason: row.opt_text("reason")?,
    })
}

pub(crate) fn run_not_found(run: &RunId) -> StoreError {
    StoreError::NotFound(format!("run {run}"))
}

async fn run_exists<D: Dialect>(tx: &mut Tx<'_, D>, run: &RunId) -> Result<bool> {
    Ok(tx
        .opt_row(Stmt::new("SELECT 1 AS one FROM runs WHERE id = ?").text(run.as_str()))
        .await?
        .is_some())
}

/// The item's status; NotFound names whichever of run and item is missing.
async fn item_status<D: Dialect>(
    tx: &mut Tx<'_, D>,
    run: &RunId,
    item: &str,
) -> Result<ItemStatus> {
    let row = tx
        .opt_row(
            Stmt::new("SELECT status FROM items WHERE run_id = ? AND item_id = ?")
                .text(run.as_str())
                .text(item),
        )
        .await?;
    match row {
        Some(row) => row.text("status")?.parse(),
        None if run_exists(tx, run).await? => {
            Err(StoreError::NotFound(format!("item `{item}` in run {run}")))
        }
        None => Err(run_not_found(run)),
    }
}

/// Holds the run's row for this transaction, checking that `owner` holds
/// its lease (`None`: only that the run exists), and marks it updated.
async fn hold<D: Dialect>(tx: &mut Tx<'_, D>, run: &RunId, owner: Option<&str>) -> Result<()> {
    let stmt = match owner {
        Some(owner) => Stmt::new(
            "UPDATE runs SET updated_at = ?now \
             WHERE id = ? AND lease_owner = ? AND lease_expires_at > ?now",
        )
        .text(run.as_str())
        .text(owner),
        None => Stmt::new("UPDATE runs SET updated_at = ?now WHERE id = ?").text(run.as_str()),
    };
    if tx.execute(stmt).await? == 1 {
        return Ok(());
    }
    match owner {
        Some(owner) if run_exists(tx, run).await? => Err(StoreError::LeaseLost {
            run: run.clone(),
            owner: owner.to_string(),
        }),
        _ => Err(run_not_found(run)),
    }
}

/// Appends the run's next event (seq = last_seq + 1).
async fn append<D: Dialect>(
    tx: &mut Tx<'_, D>,
    run: &RunId,
    kind: &str,
    item: Option<&str>,
    actor: Option<&str>,
    data: Value,
) -> Result<Event> {
    let seq = tx
        .row(
            Stmt::new(
                "UPDATE runs SET last_seq = last_seq + 1, updated_at = ?now WHERE id = ? \
                 RETURNING last_seq",
            )
            .text(run.as_str()),
        )
        .await?
        .int("last_seq")?;
    let at = tx
        .row(
            Stmt::new(
                "INSERT INTO events (run_id, seq, at, kind, item_id, actor, data) \
                 VALUES (?, ?, ?now, ?, ?, ?, ?json) RETURNING at",
            )
            .text(run.as_str())
            .int(seq)
            .text(kind)
            .opt_text(item)
            .opt_text(actor)
            .json(&data),
        )
        .await?
        .time("at")?;
    Ok(Event {
        seq,
        at,
        kind: kind.to_string(),
        item_id: item.map(str::to_string),
        actor: actor.map(str::to_string),
        data,
    })
}

/// See [`crate::Store::create_run`].
pub(crate) async fn create_run<D: Dialect>(store: &D, new: &NewRun) -> Result<Run> {
    let mut seen = HashSet::new();
    if let Some(dup) = new.items.iter().find(|i| !seen.insert(i.as_str())) {
        return Err(StoreError::Conflict(format!(
            "item `{dup}` is listed twice"
        )));
    }
    let mut tries = 0;
    loop {
        let id = RunId::generate()?;
        match insert_run(store, new, &id).await {
            Err(StoreError::Backend(e)) if is_unique_violation(&e) && tries < 5 => {
                tries += 1;
            }
            other => return other,
        }
    }
}

async fn insert_run<D: Dialect>(store: &D, new: &NewRun, id: &RunId) -> Result<Run> {
    let sha = sha256_hex(&new.plan_text);
    let t0 = new.t0.map(to_millis).transpose()?;
    let mut tx = Tx::begin(store).await?;
    tx.execute(
        Stmt::new(
            "INSERT INTO runs (id, plan_name, plan_text, plan_sha256, t0, status, created_at, \
             updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?now, ?now)",
        )
        .text(id.as_str())
        .text(&new.plan_name)
        .text(&new.plan_text)
        .text(&sha)
        .opt_time(t0),
    )
    .await?;
    tx.insert_items(id.as_str(), &new.items).await?;
    let data = json!({
        "plan_name": new.plan_name,
        "plan_sha256": sha,
        "t0": t0,
        "items": new.items.len(),
    });
    append(
        &mut tx,
        id,
        kind::RUN_CREATED,
        None,
        new.actor.as_deref(),
        data,
    )
    .await?;
    let row = tx
        .row(Stmt::new(format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?")).text(id.as_str()))
        .await?;
    let summary = summary_from(&row)?;
    tx.commit().await?;
    Ok(Run {
        summary,
        plan_text: new.plan_text.clone(),
    })
}

/// See [`crate::Store::get_run`].
pub(crate) async fn get_run<D: Dialect>(store: &D, run: &RunId) -> Result<Run> {
    let row = Tx::read(store)
        .opt_row(
            Stmt::new(format!(
                "SELECT {RUN_COLUMNS}, plan_text FROM runs WHERE id = ?"
            ))
            .text(run.as_str()),
        )
        .await?
        .ok_or_else(|| run_not_found(run))?;
    checked_run(summary_from(&row)?, row.text("plan_text")?)
}

/// See [`crate::Store::list_runs`].
pub(crate) async fn list_runs<D: Dialect>(store: &D, limit: u32) -> Result<Vec<RunSummary>> {
    Tx::read(store)
        .rows(
            Stmt::new(format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY num DESC LIMIT ?"
            ))
            .int(i64::from(limit)),
        )
        .await?
        .iter()
        .map(summary_from)
        .collect()
}

/// See [`crate::Store::set_run_status`].
pub(crate) async fn set_run_status<D: Dialect>(
    store: &D,
    run: &RunId,
    owner: &str,
    status: RunStatus,
) -> Result<()> {
    let mut tx = Tx::begin(store).await?;
    hold(&mut tx, run, Some(owner)).await?;
    let from: RunStatus = tx
        .row(Stmt::new("SELECT status FROM runs WHERE id = ?").text(run.as_str()))
        .await?
        .text("status")?
        .parse()?;
    if from == status {
        return Ok(());
    }
    tx.execute(
        Stmt::new("UPDATE runs SET status = ? WHERE id = ?")
            .text(status.as_str())
            .text(run.as_str()),
    )
    .await?;
    let data = json!({ "from": from, "to": status });
    append(&mut tx, run, kind::RUN_STATUS, None, Some(owner), data).await?;
    tx.commit().await
}

/// See [`crate::Store::acquire_lease`].
pub(crate) async fn acquire_lease<D: Dialect>(
    store: &D,
    run: &RunId,
    owner: &str,
    ttl: Duration,
) -> Result<bool> {
    let mut tx = Tx::begin(store).await?;
    // Locked where writers are not serialized already: a racing acquirer
    // waits here, then sees this one's lease.
    let row = tx
        .opt_row(
            Stmt::new(
                "SELECT lease_owner, \
                 (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at < ?now) AS free \
                 FROM runs WHERE id = ?",
            )
            .text(owner)
            .text(run.as_str())
            .push(D::LOCK_ROW.unwrap_or_default()),
        )
        .await?
        .ok_or_else(|| run_not_found(run))?;
    if !row.boolean("free")? {
        return Ok(false);
    }
    let previous = row.opt_text("lease_owner")?;
    tx.execute(
        Stmt::new("UPDATE runs SET lease_owner = ?, lease_expires_at = ?later WHERE id = ?")
            .text(owner)
            .later(ttl)
            .text(run.as_str()),
    )
    .await?;
    if previous.as_deref() != Some(owner) {
        let data = json!({ "previous": previous, "ttl_ms": millis(ttl) });
        append(&mut tx, run, kind::LEASE_ACQUIRED, None, Some(owner), data).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// See [`crate::Store::renew_lease`].
pub(crate) async fn renew_lease<D: Dialect>(
    store: &D,
    run: &RunId,
    owner: &str,
    ttl: Duration,
) -> Result<()> {
    let mut tx = Tx::begin(store).await?;
    hold(&mut tx, run, Some(owner)).await?;
    tx.execute(
        Stmt::new("UPDATE runs SET lease_expires_at = ?later WHERE id = ?")
            .later(ttl)
            .text(run.as_str()),
    )
    .await?;
    tx.commit().await
}

/// See [`crate::Store::release_lease`].
pub(crate) async fn release_lease<D: Dialect>(store: &D, run: &RunId, owner: &str) -> Result<bool> {
    let mut tx = Tx::begin(store).await?;
    let released = tx
        .execute(
            Stmt::new(
                "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = ? AND lease_owner = ?",
            )
            .text(run.as_str())
            .text(owner),
        )
        .await?;
    if released == 0 {
        return if run_exists(&mut tx, run).await? {
            Ok(false)
        } else {
            Err(run_not_found(run))
        };
    }
    append(
        &mut tx,
        run,
        kind::LEASE_RELEASED,
        None,
        Some(owner),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// See [`crate::Store::mark_interrupted`].
pub(crate) async fn mark_interrupted<D: Dialect>(
    store: &D,
    run: &RunId,
    owner: &str,
) -> Result<Vec<String>> {
    let mut tx = Tx::begin(store).await?;
    hold(&mut tx, run, Some(owner)).await?;
    let rows = tx
        .rows(
            Stmt::new(
                "UPDATE items SET status = 'interrupted', updated_at = ?now \
                 WHERE run_id = ? AND status = 'running' RETURNING item_id, attempts, position",
            )
            .text(run.as_str()),
        )
        .await?;
    let mut interrupted = Vec::with_capacity(rows.len());
    for row in &rows {
        interrupted.push((
            row.int("position")?,
            row.text("item_id")?,
            row.int("attempts")?,
        ));
    }
    interrupted.sort();
    for (_, item, attempts) in &interrupted {
        let data = json!({ "attempt": attempts });
        append(
            &mut tx,
            run,
            kind::ITEM_INTERRUPTED,
            Some(item),
            Some(owner),
            data,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(interrupted.into_iter().map(|(_, item, _)| item).collect())
}

/// See [`crate::Store::item_states`].
pub(crate) async fn item_states<D: Dialect>(store: &D, run: &RunId) -> Result<Vec<ItemState>> {
    let mut read = Tx::read(store);
    let rows = read
        .rows(
            Stmt::new(format!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE run_id = ? ORDER BY position"
            ))
            .text(run.as_str()),
        )
        .await?;
    if rows.is_empty() && !run_exists(&mut read, run).await? {
        return Err(run_not_found(run));
    }
    rows.iter().map(item_from).collect()
}

/// See [`crate::Store::append_event`].
pub(crate) async fn append_event<D: Dialect>(
    store: &D,
    run: &RunId,
    owner: &str,
    event: &NewEvent,
) -> Result<Event> {
    let mut tx = Tx::begin(store).await?;
    hold(&mut tx, run, Some(owner)).await?;
    if let Some(item) = &event.item_id {
        item_status(&mut tx, run, item).await?;
    }
    let event = append(
        &mut tx,
        run,
        &event.kind,
        event.item_id.as_deref(),
        Some(owner),
        event.data.clone(),
    )
    .await?;
    tx.commit().await?;
    Ok(event)
}

/// See [`crate::Store::events_after`].
pub(crate) async fn events_after<D: Dialect>(
    store: &D,
    run: &RunId,
    after: i64,
    limit: u32,
) -> Result<Vec<Event>> {
    let mut read = Tx::read(store);
    let rows = read
        .rows(
            Stmt::new(format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE run_id = ? AND seq > ? \
                 ORDER BY seq LIMIT ?"
            ))
            .text(run.as_str())
            .int(after)
            .int(i64::from(limit)),
        )
        .await?;
    if rows.is_empty() && !run_exists(&mut read, run).await? {
        return Err(run_not_found(run));
    }
    rows.iter().map(event_from).collect()
}

/// A person's answer (a confirmation, a signature): `insert` adds its row
/// unless one is there for the same key, and the answer's `event` is
/// journaled with it, in one transaction. `false`: the answer was there
/// already, and nothing is written.
async fn answer<D: Dialect>(
    store: &D,
    run: &RunId,
    item: &str,
    by: &str,
    event: &str,
    data: Value,
    insert: Stmt<'_>,
) -> Result<bool> {
    let mut tx = Tx::begin(store).await?;
    hold(&mut tx, run, None).await?;
    item_status(&mut tx, run, item).await?;
    if tx.execute(insert).await? == 0 {
        return Ok(false);
    }
    append(&mut tx, run, event, Some(item), Some(by), data).await?;
    tx.commit().await?;
    Ok(true)
}

/// See [`crate::Store::confirm`].
pub(crate) async fn confirm<D: Dialect>(
    store: &D,
    run: &RunId,
    item: &str,
    confirmation: &NewConfirmation,
) -> Result<bool> {
    let c = confirmation;
    let data = json!({ "evidence": c.evidence, "skipped": c.skipped, "reason": c.reason });
    let insert = Stmt::new(
        "INSERT INTO confirmations (run_id, item_id, by, at, evidence, skipped, reason) \
         VALUES (?, ?, ?, ?now, ?, ?, ?) ON CONFLICT (run_id, item_id) DO NOTHING",
    )
    .text(run.as_str())
    .text(item)
    .text(&c.by)
    .opt_text(c.evidence.as_deref())
    .boolean(c.skipped)
    .opt_text(c.reason.as_deref());
    answer(store, run, item, &c.by, kind::ITEM_CONFIRMED, data, insert).await
}

/// See [`crate::Store::confirmation`].
pub(crate) async fn confirmation<D: Dialect>(
    store: &D,
    run: &RunId,
    item: &str,
) -> Result<Option<Confirmation>> {
    let mut read = Tx::read(store);
    item_status(&mut read, run, item).await?;
    read.opt_row(
        Stmt::new(
            "SELECT item_id, by, at, evidence, skipped, reason FROM confirmations \
             WHERE run_id = ? AND item_id = ?",
        )
        .text(run.as_str())
        .text(item),
    )
    .await?
    .as_ref()
    .map(confirmation_from)
    .transpose()
}

/// See [`crate::Store::sign`].
pub(crate) async fn sign<D: Dialect>(
    store: &D,
    run: &RunId,
    item: &str,
    signature: &NewSignature,
) -> Result<bool> {
    let s = signature;
    let data = json!({ "role": s.role, "decision": s.decision, "comment": s.comment });
    let insert = Stmt::new(
        "INSERT INTO signatures (run_id, item_id, role, by, at, decision, comment) \
         VALUES (?, ?, ?, ?, ?now, ?, ?) ON CONFLICT (run_id, item_id, role) DO NOTHING",
    )
    .text(run.as_str())
    .text(item)
    .text(&s.role)
    .text(&s.by)
    .text(s.decision.as_str())
    .opt_text(s.comment.as_deref());
    answer(store, run, item, &s.by, kind::ITEM_SIGNED, data, insert).await
}

/// See [`crate::Store::signatures`].
pub(crate) async fn signatures<D: Dialect>(
    store: &D,
    run: &RunId,
    item: &str,
) -> Result<Vec<Signature>> {
    let mut read = Tx::read(store);
    item_status(&mut read, run, item).await?;
    read.rows(
        Stmt::new(
            "SELECT item_id, role, by, at, decision, comment FROM signatures \
             WHERE run_id = ? AND item_id = ? ORDER BY at, role",
        )
        .text(run.as_str())
        .text(item),
    )
    .await?
    .iter()
    .map(signature_from)
    .collect()
}

/// See [`crate::Store::request`].
pub(crate) async fn request<D: Dialect>(
    store: &D,
    run: &RunId,
    request: &NewRequest,
) -> Result<bool> {
    let mut tx = Tx::begin(store).await?;
    hold(&mut tx, run, None).await?;
    let added = tx
        .execute(
            Stmt::new(
                "INSERT INTO requests (run_id, kind, by, at, reason) VALUES (?, ?, ?, ?now, ?) \
                 ON CONFLICT (run_id, kind) DO NOTHING",
            )
            .text(run.as_str())
            .text(&request.kind)
            .text(&request.by)
            .opt_text(request.reason.as_deref()),
        )
        .await?;
    if added == 0 {
        return Ok(false);
    }
    let data = json!({ "kind": request.kind, "reason": request.reason });
    append(
        &mut tx,
        run,
        kind::RUN_REQUESTED,
        None,
        Some(&request.by),
        data,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// See [`crate::Store::requests`].
pub(crate) async fn requests<D: Dialect>(store: &D, run: &RunId) -> Result<Vec<Request>> {
    let mut read = Tx::read(store);
    if !run_exists(&mut read, run).await? {
        return Err(run_not_found(run));
    }
    read.rows(
        Stmt::new("SELECT kind, by, at, reason FROM requests WHERE run_id = ? ORDER BY at, kind")
            .text(run.as_str()),
    )
    .await?
    .iter()
    .map(request_from)
    .collect()
}
