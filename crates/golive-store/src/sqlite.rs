//! The SQLite backend: golive's default, one file and no set-up.
//!
//! Durability is the point: the journal is in WAL mode with
//! `synchronous = FULL`, so a committed step survives `kill -9` and a power
//! cut (a finish excepted, which the next commit makes durable: see
//! [`Store::finish_item`]). Every write transaction starts with `BEGIN
//! IMMEDIATE`, taking the write lock up front so concurrent writers (other
//! processes on the same file) wait out the busy timeout instead of failing
//! on a stale snapshot. A store writes through one writer of its own (its
//! writers queue for it) and reads through a small pool. An item's move,
//! the hot path of a run, is one transaction run in place on a connection
//! of the writer's own (`mover`); other writes go through sqlx's.
//!
//! Times come from the process clock, or a [`ManualClock`] that tests move
//! by hand. A file or directory golive may not write is opened read-only:
//! reads work, writes fail with [`StoreError::ReadOnly`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row};
use tokio::sync::OwnedMutexGuard;

mod mover;

pub(crate) use mover::MoveError;

use crate::error::{is_busy, is_cant_open, is_read_only};
use crate::model::{
    AuditRef, Move, ceil_millis, check_flag_version, checked_run, from_millis, json,
    prefix_upper_bound, revoked_json, sha256_hex, to_millis, token_insert_error, token_json,
    token_taken,
};
use crate::{
    Actor, AuditEntry, AuditFilter, Confirmation, DbUrl, Event, FlagRecord, ItemState, ItemStatus,
    NewAudit, NewConfirmation, NewEvent, NewRequest, NewRun, NewSignature, NewToken, Outcome,
    Request, Run, RunId, RunStatus, RunSummary, Signature, Store, StoreError, TokenRecord, action,
    kind, migrations,
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long a writer waits for another to finish before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A clock that stands still until a test moves it, for lease expiry
/// without sleeping. Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `start` (to the millisecond).
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(start.as_millisecond())))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The connection a store writes through. One per store and its clones,
/// so that this process's writers queue here, in order, instead of
/// sleeping in SQLite's busy handler; other processes still meet them at
/// SQLite's write lock.
#[derive(Debug, Default)]
struct Writer {
    conn: Option<SqliteConnection>,
    /// Item moves' own connection (see `mover`), opened on first use.
    mover: Option<rusqlite::Connection>,
    /// A transaction may still be open: its future was dropped before it
    /// ended and no task could roll it back.
    dirty: bool,
    /// `close` was called: no more writes.
    closed: bool,
}

/// The writer, held for one write; inside a transaction while `open`. A
/// transaction dropped before it ends (an error, or a caller that gave up
/// on its future) is rolled back by a task that keeps the writer until the
/// rollback is done, so the next write starts clean.
struct Tx {
    writer: Option<OwnedMutexGuard<Writer>>,
    open: bool,
}

impl Tx {
    fn writer(&mut self) -> &mut Writer {
        self.writer
            .as_mut()
            .expect("the writer is held until the Tx is dropped")
    }

    async fn commit(mut self) -> Result<()> {
        match sqlx::query("COMMIT").execute(&mut *self).await {
            Ok(_) => {
                self.open = false;
                Ok(())
            }
            Err(e) => {
                self.rollback().await;
                Err(e.into())
            }
        }
    }

    /// Rolls back whatever transaction is open, if any.
    async fn rollback(&mut self) {
        let writer = self.writer();
        writer.dirty = true;
        if let Some(conn) = writer.conn.as_mut() {
            // "no transaction is active" is fine; any other failure leaves a
            // connection whose state is unknown: drop it (SQLite rolls back
            // on close) and open a new one for the next write.
            match sqlx::query("ROLLBACK").execute(&mut *conn).await {
                Err(e) if !no_transaction(&e) => {
                    if let Some(conn) = writer.conn.take() {
                        let _ = conn.close().await;
                    }
                }
                _ => {}
            }
        }
        writer.dirty = false;
        self.open = false;
    }
}

impl std::ops::Deref for Tx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.writer
            .as_ref()
            .and_then(|w| w.conn.as_ref())
            .expect("a Tx holds a connected writer")
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.writer
            .as_mut()
            .and_then(|w| w.conn.as_mut())
            .expect("a Tx holds a connected writer")
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        writer.dirty = true;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut tx = Tx {
                    writer: Some(writer),
                    open: true,
                };
                tx.rollback().await;
            });
        }
    }
}

/// SQLite's answer to a ROLLBACK outside a transaction.
fn no_transaction(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.message().contains("no transaction is active"))
}

/// A journal in one SQLite file. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Readers.
    pool: SqlitePool,
    /// The one connection every write of this store (and its clones) goes
    /// through.
    writer: Arc<tokio::sync::Mutex<Writer>>,
    url: DbUrl,
    path: PathBuf,
    clock: Option<ManualClock>,
    /// Opened read-only: every write is refused.
    read_only: bool,
}

impl SqliteStore {
    /// Opens (creating the file and its directory if missing) and migrates
    /// the journal at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref();
        SqliteStore::open_named(path, DbUrl::new(path.display().to_string())).await
    }

    /// Uses `clock` instead of the process clock from now on.
    pub fn with_clock(mut self, clock: ManualClock) -> SqliteStore {
        self.clock = Some(clock);
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    pub(crate) async fn open_named(path: &Path, url: DbUrl) -> Result<SqliteStore> {
        let unavailable = |e: std::io::Error| StoreError::Unavailable {
            url: url.clone(),
            source: sqlx::Error::Io(e),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(unavailable)?;
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full)
            .disable_statement_logging();
        let writable = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        // A file we may not write is opened read-only from the start, not
        // through SQLite's silent fallback, so that no connection of the
        // pool can end up writable.
        let (pool, read_only) = if path.is_file() && !may_write(path) {
            (open_read_only(base, path, &url).await?, true)
        } else {
            match connect(writable, &url).await {
                Err(e) if cannot_write(&e) && path.is_file() => {
                    (open_read_only(base, path, &url).await?, true)
                }
                other => (other?, false),
            }
        };
        Ok(SqliteStore {
            pool,
            writer: Arc::default(),
            url,
            path: path.to_path_buf(),
            clock: None,
            read_only,
        })
    }

    fn now_ms(&self) -> i64 {
        match &self.clock {
            Some(clock) => clock.now_ms(),
            None => Timestamp::now().as_millisecond(),
        }
    }

    /// The writer, once the previous writer is done with it (connected on
    /// first use, with the pool's options), outside any transaction.
    async fn writer(&self) -> Result<Tx> {
        let mut writer = self.writer.clone().lock_owned().await;
        if writer.closed {
            return Err(sqlx::Error::PoolClosed.into());
        }
        if writer.conn.is_none() {
            writer.conn = Some(self.pool.connect_options().connect().await?);
        }
        let mut tx = Tx {
            writer: Some(writer),
            open: false,
        };
        if tx.writer().dirty {
            // A transaction whose future was dropped before it ended, and
            // that no task could roll back.
            tx.rollback().await;
        }
        Ok(tx)
    }

    /// A write transaction: `BEGIN IMMEDIATE` takes SQLite's write lock up
    /// front, so that a writer of another process waits out the busy timeout
    /// instead of failing on a stale snapshot.
    async fn begin(&self) -> Result<Tx> {
        let mut tx = self.writer().await?;
        tx.open = true;
        if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *tx).await {
            // No transaction was started.
            tx.open = false;
            return Err(e.into());
        }
        Ok(tx)
    }

    /// Runs one operation, naming this database in its errors.
    async fn ctx<T>(&self, op: impl Future<Output = Result<T>>) -> Result<T> {
        op.await.map_err(|e| e.at(&self.url))
    }
}

/// Connects once to migrate (or check) the schema, then hands out a pool.
async fn connect(options: SqliteConnectOptions, url: &DbUrl) -> Result<SqlitePool> {
    // Switching a fresh file to WAL takes an exclusive lock that SQLite's
    // busy timeout does not wait for, so processes opening the same new file
    // together see SQLITE_BUSY here: wait and try again.
    let mut attempt = 0u32;
    let mut conn = loop {
        match SqliteConnection::connect_with(&options).await {
            Ok(conn) => break conn,
            Err(source) if attempt < 50 && is_busy(&source) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(source) => {
                return Err(match StoreError::Backend(source).at(url) {
                    StoreError::Backend(source) => StoreError::Unavailable {
                        url: url.clone(),
                        source,
                    },
                    sorted => sorted,
                });
            }
        }
    };
    check_integrity(&mut conn, url).await?;
    migrations::apply(&migrations::SQLITE, &mut conn, url)
        .await
        .map_err(|e| e.at(url))?;
    conn.close()
        .await
        .map_err(|e| StoreError::from(e).at(url))?;
    // No ping before a connection is handed out: SQLite is in-process, a
    // ping only costs a round trip to the connection's worker thread.
    Ok(SqlitePoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .acquire_timeout(BUSY_TIMEOUT)
        .connect_lazy_with(options))
}

/// Refuses a damaged journal before anything is read from it or written to
/// it: `PRAGMA quick_check` walks every page of every table and index (not
/// comparing indexes with their tables, which the full `integrity_check`
/// does too, at a third more cost). About 5 ms per MiB: 35–40 ms on a
/// 10,000-item journal (BENCHMARKS.md).
async fn check_integrity(conn: &mut SqliteConnection, url: &DbUrl) -> Result<()> {
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA quick_check(5)")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| StoreError::Backend(e).at(url))?;
    match problems.as_slice() {
        [ok] if ok == "ok" => Ok(()),
        _ => Err(StoreError::CorruptJournal {
            url: url.clone(),
            detail: format!("integrity check: {}", problems.join("; ")),
        }),
    }
}

/// Opens an existing journal for reading only. In a directory where no
/// `-wal`/`-shm` can be created, SQLite can read a WAL database only as
/// immutable, which is safe only when no WAL file holds commits not yet in
/// the main file.
async fn open_read_only(
    base: SqliteConnectOptions,
    path: &Path,
    url: &DbUrl,
) -> Result<SqlitePool> {
    match connect(base.clone().read_only(true), url).await {
        Err(e) if cannot_write(&e) && !wal_path(path).exists() => {
            connect(base.read_only(true).immutable(true), url).await
        }
        other => other,
    }
}

/// Whether this process may open the file for writing.
fn may_write(path: &Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(path).is_ok()
}

/// The open or the migration failed because the file or its directory may
/// not be written.
fn cannot_write(e: &StoreError) -> bool {
    let sqlx_error = match e {
        StoreError::Unavailable { source, .. } | StoreError::ReadOnly { source, .. } => source,
        StoreError::Migration {
            source: sqlx::migrate::MigrateError::Execute(source),
            ..
        } => source,
        _ => return false,
    };
    is_read_only(sqlx_error) || is_cant_open(sqlx_error)
}

fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

const RUN_COLUMNS: &str = "id, plan_name, plan_sha256, t0, status, created_at, updated_at, \
                           lease_owner, lease_expires_at, last_seq";
const ITEM_COLUMNS: &str = "item_id, status, attempts, started_at, finished_at, result, updated_at";
const EVENT_COLUMNS: &str = "seq, at, kind, item_id, actor, data";

fn opt_time(ms: Option<i64>) -> Result<Option<Timestamp>> {
    ms.map(from_millis).transpose()
}

fn summary_from(row: &SqliteRow) -> Result<RunSummary> {
    Ok(RunSummary {
        id: row.try_get("id")?,
        plan_name: row.try_get("plan_name")?,
        plan_sha256: row.try_get("plan_sha256")?,
        t0: opt_time(row.try_get("t0")?)?,
        status: row.try_get::<&str, _>("status")?.parse()?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: opt_time(row.try_get("lease_expires_at")?)?,
        last_seq: row.try_get("last_seq")?,
    })
}

fn item_from(row: &SqliteRow) -> Result<ItemState> {
    mover::ItemRow {
        item_id: row.try_get("item_id")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        result: row.try_get("result")?,
        updated_at: row.try_get("updated_at")?,
    }
    .into_state()
}

impl mover::ItemRow {
    fn into_state(self) -> Result<ItemState> {
        let attempts = self.attempts;
        Ok(ItemState {
            item_id: self.item_id,
            status: self.status.parse()?,
            attempts: u32::try_from(attempts)
                .map_err(|_| StoreError::Corrupt(format!("{attempts} attempts")))?,
            started_at: opt_time(self.started_at)?,
            finished_at: opt_time(self.finished_at)?,
            result: self.result.as_deref().map(json).transpose()?,
            updated_at: from_millis(self.updated_at)?,
        })
    }
}

fn event_from(row: &SqliteRow) -> Result<Event> {
    Ok(Event {
        seq: row.try_get("seq")?,
        at: from_millis(row.try_get("at")?)?,
        kind: row.try_get("kind")?,
        item_id: row.try_get("item_id")?,
        actor: row.try_get("actor")?,
        data: json(row.try_get("data")?)?,
    })
}

fn confirmation_from(row: &SqliteRow) -> Result<Confirmation> {
    Ok(Confirmation {
        item_id: row.try_get("item_id")?,
        by: row.try_get("by")?,
        at: from_millis(row.try_get("at")?)?,
        evidence: row.try_get("evidence")?,
        skipped: row.try_get("skipped")?,
        reason: row.try_get("reason")?,
    })
}

fn signature_from(row: &SqliteRow) -> Result<Signature> {
    Ok(Signature {
        item_id: row.try_get("item_id")?,
        role: row.try_get("role")?,
        by: row.try_get("by")?,
        at: from_millis(row.try_get("at")?)?,
        decision: row.try_get::<&str, _>("decision")?.parse()?,
        comment: row.try_get("comment")?,
    })
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

fn run_not_found(run: &RunId) -> StoreError {
    StoreError::NotFound(format!("run {run}"))
}

async fn run_exists(conn: &mut SqliteConnection, run: &RunId) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM runs WHERE id = $1")
        .bind(run)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// The item's status; NotFound names whichever of run and item is missing.
async fn item_status(conn: &mut SqliteConnection, run: &RunId, item: &str) -> Result<ItemStatus> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM items WHERE run_id = $1 AND item_id = $2")
            .bind(run)
            .bind(item)
            .fetch_optional(&mut *conn)
            .await?;
    match status {
        Some(s) => s.parse(),
        None if run_exists(conn, run).await? => {
            Err(StoreError::NotFound(format!("item `{item}` in run {run}")))
        }
        None => Err(run_not_found(run)),
    }
}

/// Checks, inside the transaction, that `owner` holds the run's lease
/// (`None`: only that the run exists), and marks the run updated.
async fn hold(tx: &mut Tx, run: &RunId, owner: Option<&str>, now: i64) -> Result<()> {
    let done = match owner {
        Some(owner) => sqlx::query(
            "UPDATE runs SET updated_at = $3 \
             WHERE id = $1 AND lease_owner = $2 AND lease_expires_at > $3",
        )
        .bind(run)
        .bind(owner)
        .bind(now),
        None => sqlx::query("UPDATE runs SET updated_at = $2 WHERE id = $1")
            .bind(run)
            .bind(now),
    }
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
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
async fn append(
    tx: &mut Tx,
    run: &RunId,
    now: i64,
    kind: &str,
    item: Option<&str>,
    actor: Option<&str>,
    data: Value,
) -> Result<Event> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE runs SET last_seq = last_seq + 1, updated_at = $2 WHERE id = $1 \
         RETURNING last_seq",
    )
    .bind(run)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO events (run_id, seq, at, kind, item_id, actor, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(run)
    .bind(seq)
    .bind(now)
    .bind(kind)
    .bind(item)
    .bind(actor)
    .bind(data.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(Event {
        seq,
        at: from_millis(now)?,
        kind: kind.to_string(),
        item_id: item.map(str::to_string),
        actor: actor.map(str::to_string),
        data,
    })
}

const FLAG_COLUMNS: &str = "key, definition, version, created_at, updated_at, updated_by";
const AUDIT_COLUMNS: &str = "seq, at, actor, source, action, target, before, after, reason";
const TOKEN_COLUMNS: &str =
    "id, name, role, secret_sha256, created_at, expires_at, revoked_at, created_by";

fn flag_from(row: &SqliteRow) -> Result<FlagRecord> {
    Ok(FlagRecord {
        key: row.try_get("key")?,
        definition: json(row.try_get("definition")?)?,
        version: row.try_get("version")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        updated_by: row.try_get("updated_by")?,
    })
}

fn audit_from(row: &SqliteRow) -> Result<AuditEntry> {
    let opt_json = |column: &str| -> Result<Option<Value>> {
        row.try_get::<Option<&str>, _>(column)?
            .map(json)
            .transpose()
    };
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at: from_millis(row.try_get("at")?)?,
        actor: row.try_get("actor")?,
        source: row.try_get("source")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        before: opt_json("before")?,
        after: opt_json("after")?,
        reason: row.try_get("reason")?,
    })
}

fn token_from(row: &SqliteRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        secret_sha256: row.try_get("secret_sha256")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        expires_at: opt_time(row.try_get("expires_at")?)?,
        revoked_at: opt_time(row.try_get("revoked_at")?)?,
        created_by: row.try_get("created_by")?,
    })
}

/// Appends an audit entry inside the transaction of the change it records.
async fn audit_in(tx: &mut Tx, now: i64, actor: &Actor, entry: AuditRef<'_>) -> Result<AuditEntry> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO audit (at, actor, source, action, target, before, after, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
    )
    .bind(now)
    .bind(&actor.name)
    .bind(&actor.source)
    .bind(entry.action)
    .bind(entry.target)
    .bind(entry.before.map(Value::to_string))
    .bind(entry.after.map(Value::to_string))
    .bind(entry.reason)
    .fetch_one(&mut **tx)
    .await?;
    Ok(entry.entry(seq, from_millis(now)?, actor))
}

/// Tells pollers of `flags_revision` that the flags changed.
async fn bump_flags_revision(tx: &mut Tx) -> Result<()> {
    sqlx::query("UPDATE flags_revision SET revision = revision + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Refuses a token whose id or secret hash is already stored.
async fn check_token_is_new(tx: &mut Tx, token: &NewToken) -> Result<()> {
    let same_id: Option<bool> = sqlx::query_scalar(
        "SELECT id = $1 FROM tokens WHERE id = $1 OR secret_sha256 = $2 ORDER BY id = $1 DESC \
         LIMIT 1",
    )
    .bind(&token.id)
    .bind(&token.secret_sha256)
    .fetch_optional(&mut **tx)
    .await?;
    match same_id {
        None => Ok(()),
        Some(same_id) => Err(token_taken(&token.id, same_id)),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

impl SqliteStore {
    /// A person's answer (a confirmation, a signature): `insert` (given the
    /// time) adds its row unless one is there for the same key, and the
    /// answer's `event` is journaled with it, in one transaction. `false`:
    /// the answer was there already, and nothing is written.
    async fn answer<'q>(
        &self,
        run: &RunId,
        item: &str,
        by: &str,
        event: &str,
        data: Value,
        insert: impl FnOnce(
            i64,
        )
            -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<bool> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            hold(&mut tx, run, None, now).await?;
            item_status(&mut tx, run, item).await?;
            if insert(now).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(false);
            }
            append(&mut tx, run, now, event, Some(item), Some(by), data).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn insert_run(&self, new: &NewRun, id: &RunId) -> Result<Run> {
        let now = self.now_ms();
        let sha = sha256_hex(&new.plan_text);
        let t0 = new.t0.map(to_millis).transpose()?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO runs (id, plan_name, plan_text, plan_sha256, t0, status, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
        )
        .bind(id)
        .bind(&new.plan_name)
        .bind(&new.plan_text)
        .bind(&sha)
        .bind(t0.map(Timestamp::as_millisecond))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (position, item) in new.items.iter().enumerate() {
            sqlx::query(
                "INSERT INTO items (run_id, item_id, position, status, updated_at) \
                 VALUES ($1, $2, $3, 'pending', $4)",
            )
            .bind(id)
            .bind(item)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let data = json!({
            "plan_name": new.plan_name,
            "plan_sha256": sha,
            "t0": t0,
            "items": new.items.len(),
        });
        append(
            &mut tx,
            id,
            now,
            kind::RUN_CREATED,
            None,
            new.actor.as_deref(),
            data,
        )
        .await?;
        tx.commit().await?;
        Ok(Run {
            summary: RunSummary {
                id: id.clone(),
                plan_name: new.plan_name.clone(),
                plan_sha256: sha,
                t0,
                status: RunStatus::Pending,
                created_at: from_millis(now)?,
                updated_at: from_millis(now)?,
                lease_owner: None,
                lease_expires_at: None,
                last_seq: 1,
            },
            plan_text: new.plan_text.clone(),
        })
    }

    /// Moves one item and journals the move: one transaction, run in place
    /// (see `mover` and [`blocking`]), whose writes happen only if the lease
    /// is held and the move allowed, and which otherwise says why not.
    async fn move_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        mv: Move<'_>,
    ) -> Result<ItemState> {
        // A finish is made durable by the next commit, which always comes
        // before the next item starts or the run ends (see
        // `Store::finish_item`).
        let lazy = matches!(mv, Move::Finish(..));
        let [state] = self.moves(run, owner, [(item, mv)], lazy).await?;
        Ok(state)
    }

    /// Makes `moves` in order, in one transaction run in place (see `mover`
    /// and [`blocking`]): all of them, or none and the first refusal. Each
    /// move's writes happen only if the lease is held and the move allowed
    /// (seeing the moves before it). `lazy`: see `mover::run`.
    async fn moves<const N: usize>(
        &self,
        run: &RunId,
        owner: &str,
        moves: [(&str, Move<'_>); N],
        lazy: bool,
    ) -> Result<[ItemState; N]> {
        use rusqlite::types::Value as Sql;
        let now = self.now_ms();
        let binds: Vec<Vec<(&'static str, Sql)>> = moves
            .iter()
            .map(|(item, mv)| {
                let mut binds = vec![
                    ("$1", Sql::Text(run.to_string())),
                    ("$2", Sql::Text(owner.to_string())),
                    ("$3", Sql::Integer(now)),
                    ("$4", Sql::Text(item.to_string())),
                    ("$5", Sql::Text(mv.kind().to_string())),
                ];
                match mv {
                    Move::Start => {}
                    Move::Finish(outcome, result) => {
                        binds.push(("$6", Sql::Text(outcome.as_str().to_string())));
                        binds.push(("$7", Sql::Text(result.to_string())));
                    }
                    Move::Wait(detail) => binds.push(("$6", Sql::Text(detail.to_string()))),
                }
                binds
            })
            .collect();
        let sqls: Vec<&'static mover::MoveSql> =
            moves.iter().map(|(_, mv)| move_sql(*mv)).collect();
        let mut tx = self.writer().await?;
        // From here the guard lives in the blocking task: should this future
        // be dropped, the moves still end (committed or rolled back) before
        // the next write takes the writer.
        let Some(mut writer) = tx.writer.take() else {
            return Err(StoreError::Corrupt("the writer was not held".into()));
        };
        drop(tx);
        let (path, read_only) = (self.path.clone(), self.read_only);
        let work = move || {
            if read_only {
                return Err(mover::MoveError::read_only());
            }
            let mut conn = match writer.mover.take() {
                Some(conn) => conn,
                None => mover::open(&path, BUSY_TIMEOUT)?,
            };
            let list: Vec<(&mover::MoveSql, &[(&str, Sql)])> = sqls
                .iter()
                .zip(&binds)
                .map(|(sql, binds)| (*sql, binds.as_slice()))
                .collect();
            let (moved, reusable) = mover::run(&mut conn, &list, lazy);
            // A connection whose move failed may be left in any state
            // (`synchronous = NORMAL`, say): the next move opens a new one.
            if reusable {
                writer.mover = Some(conn);
            }
            moved
        };
        let moved = blocking(work)
            .await
            // Only a panic in the blocking pool ends up here: the move's
            // worker died, as sqlx says of its own.
            .map_err(|_| sqlx::Error::WorkerCrashed)?
            .map_err(sqlx::Error::from)?;
        match moved {
            mover::Moved::Items(rows) => {
                let states = rows
                    .into_iter()
                    .map(mover::ItemRow::into_state)
                    .collect::<Result<Vec<_>>>()?;
                states.try_into().map_err(|got: Vec<ItemState>| {
                    StoreError::Corrupt(format!("{N} moves in run {run} gave {} items", got.len()))
                })
            }
            mover::Moved::Refused {
                index,
                held,
                status,
            } => {
                let Some((item, mv)) = moves.get(index) else {
                    return Err(StoreError::Corrupt(format!(
                        "move {index} of {N} in run {run} refused"
                    )));
                };
                Err(refusal(held, status.as_deref(), run, item, owner, *mv)?)
            }
        }
    }
}

/// Runs blocking work where it costs the least: in place on a
/// multi-threaded runtime (the runtime moves its other tasks elsewhere; in
/// `block_on` it simply runs), on the blocking pool otherwise. `Err` if it
/// panicked.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => Ok(tokio::task::block_in_place(work)),
        _ => tokio::task::spawn_blocking(work).await,
    }
}

/// The SQL of [`SqliteStore::move_item`] for this kind of move (binds as
/// [`mover::MoveSql`] says).
///
/// Its three writes test the same thing (the lease is held and the item's
/// status is one the move starts from), so either all three happen or none
/// does: the run's `last_seq` goes up by one, the event takes that seq (its
/// data, as `Move::data` builds it, from the item's row before the move),
/// and the item moves, returning its new state. When nothing moved, the
/// `why` query is what [`refusal`] reads. The whole move is one
/// transaction (`BEGIN IMMEDIATE` … `COMMIT`): a refused move commits
/// nothing.
fn move_sql(mv: Move<'_>) -> &'static mover::MoveSql {
    static START: LazyLock<mover::MoveSql> = LazyLock::new(|| move_statements(Move::Start));
    static FINISH: LazyLock<mover::MoveSql> =
        LazyLock::new(|| move_statements(Move::Finish(Outcome::Passed, &Value::Null)));
    static SKIP: LazyLock<mover::MoveSql> =
        LazyLock::new(|| move_statements(Move::Finish(Outcome::Skipped, &Value::Null)));
    static WAIT: LazyLock<mover::MoveSql> =
        LazyLock::new(|| move_statements(Move::Wait(&Value::Null)));
    match mv {
        Move::Start => &START,
        Move::Finish(Outcome::Skipped, _) => &SKIP,
        Move::Finish(Outcome::Passed | Outcome::Failed, _) => &FINISH,
        Move::Wait(_) => &WAIT,
    }
}

fn move_statements(mv: Move<'_>) -> mover::MoveSql {
    let allowed = mv.allowed_from_sql();
    let (set, data) = match mv {
        Move::Start => (
            "status = 'running', attempts = attempts + 1, started_at = $3, \
             finished_at = NULL, result = NULL, updated_at = $3",
            "json_object('from', i.status, 'attempt', i.attempts + 1)",
        ),
        Move::Finish(..) => (
            "status = $6, finished_at = $3, result = $7, updated_at = $3",
            "json_object('from', i.status, 'status', $6, 'result', json($7))",
        ),
        Move::Wait(_) => (
            "status = 'waiting', updated_at = $3",
            "json_object('from', i.status, 'detail', json($6))",
        ),
    };
    let leased = "lease_owner = $2 AND lease_expires_at > $3";
    mover::MoveSql {
        writes: [
            format!(
                "UPDATE runs SET last_seq = last_seq + 1, updated_at = $3 \
                 WHERE id = $1 AND {leased} AND EXISTS (SELECT 1 FROM items \
                 WHERE run_id = $1 AND item_id = $4 AND status IN ({allowed}))"
            ),
            format!(
                "INSERT INTO events (run_id, seq, at, kind, item_id, actor, data) \
                 SELECT $1, r.last_seq, $3, $5, $4, $2, {data} \
                 FROM runs AS r JOIN items AS i ON i.run_id = r.id AND i.item_id = $4 \
                 WHERE r.id = $1 AND r.lease_owner = $2 AND r.lease_expires_at > $3 \
                 AND i.status IN ({allowed})"
            ),
            format!(
                "UPDATE items SET {set} \
                 WHERE run_id = $1 AND item_id = $4 AND status IN ({allowed}) \
                 AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND {leased}) \
                 RETURNING {ITEM_COLUMNS}"
            ),
        ],
        why: format!(
            "SELECT (SELECT coalesce({leased}, 0) FROM runs WHERE id = $1) AS held, \
             (SELECT status FROM items WHERE run_id = $1 AND item_id = $4) AS status"
        ),
    }
}

/// Why a move wrote nothing, from its `why` query (`held`: whether the
/// lease is `owner`'s, `None` for an unknown run; `status`: the item's,
/// `None` for an unknown item): the run is unknown, the lease is not
/// `owner`'s, the item is unknown, or the move is not allowed from the
/// item's status; in that order, as a move that checks each in turn finds.
fn refusal(
    held: Option<bool>,
    status: Option<&str>,
    run: &RunId,
    item: &str,
    owner: &str,
    mv: Move<'_>,
) -> Result<StoreError> {
    Ok(match (held, status) {
        (None, _) => run_not_found(run),
        (Some(false), _) => StoreError::LeaseLost {
            run: run.clone(),
            owner: owner.to_string(),
        },
        (Some(true), None) => StoreError::NotFound(format!("item `{item}` in run {run}")),
        (Some(true), Some(from)) => match mv.check(item, from.parse()?) {
            Err(refused) => refused,
            Ok(()) => StoreError::Corrupt(format!(
                "item `{item}` in run {run}: moving it from {from} wrote nothing"
            )),
        },
    })
}

impl Store for SqliteStore {
    async fn create_run(&self, new: &NewRun) -> Result<Run> {
        self.ctx(async {
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = new.items.iter().find(|i| !seen.insert(i.as_str())) {
                return Err(StoreError::Conflict(format!(
                    "item `{dup}` is listed twice"
                )));
            }
            let mut tries = 0;
            loop {
                let id = RunId::generate()?;
                match self.insert_run(new, &id).await {
                    Err(StoreError::Backend(e)) if is_unique_violation(&e) && tries < 5 => {
                        tries += 1;
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    async fn get_run(&self, run: &RunId) -> Result<Run> {
        self.ctx(async {
            let row = sqlx::query(&format!(
                "SELECT {RUN_COLUMNS}, plan_text FROM runs WHERE id = $1"
            ))
            .bind(run)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| run_not_found(run))?;
            checked_run(summary_from(&row)?, row.try_get("plan_text")?)
        })
        .await
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>> {
        self.ctx(async {
            sqlx::query(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY num DESC LIMIT $1"
            ))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(summary_from)
            .collect()
        })
        .await
    }

    async fn set_run_status(&self, run: &RunId, owner: &str, status: RunStatus) -> Result<()> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            hold(&mut tx, run, Some(owner), now).await?;
            let from: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
                .bind(run)
                .fetch_one(&mut *tx)
                .await?;
            let from: RunStatus = from.parse()?;
            if from == status {
                return Ok(());
            }
            sqlx::query("UPDATE runs SET status = $2 WHERE id = $1")
                .bind(run)
                .bind(status.as_str())
                .execute(&mut *tx)
                .await?;
            let data = json!({ "from": from, "to": status });
            append(&mut tx, run, now, kind::RUN_STATUS, None, Some(owner), data).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn acquire_lease(&self, run: &RunId, owner: &str, ttl: Duration) -> Result<bool> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            let row = sqlx::query(
                "SELECT lease_owner, \
                 (lease_owner IS NULL OR lease_owner = $2 OR lease_expires_at < $3) AS free \
                 FROM runs WHERE id = $1",
            )
            .bind(run)
            .bind(owner)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| run_not_found(run))?;
            if !row.try_get::<bool, _>("free")? {
                return Ok(false);
            }
            let previous: Option<String> = row.try_get("lease_owner")?;
            sqlx::query("UPDATE runs SET lease_owner = $2, lease_expires_at = $3 WHERE id = $1")
                .bind(run)
                .bind(owner)
                .bind(now.saturating_add(ttl_ms(ttl)))
                .execute(&mut *tx)
                .await?;
            if previous.as_deref() != Some(owner) {
                let data = json!({ "previous": previous, "ttl_ms": ttl_ms(ttl) });
                append(
                    &mut tx,
                    run,
                    now,
                    kind::LEASE_ACQUIRED,
                    None,
                    Some(owner),
                    data,
                )
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn renew_lease(&self, run: &RunId, owner: &str, ttl: Duration) -> Result<()> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            hold(&mut tx, run, Some(owner), now).await?;
            sqlx::query("UPDATE runs SET lease_expires_at = $2 WHERE id = $1")
                .bind(run)
                .bind(now.saturating_add(ttl_ms(ttl)))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn release_lease(&self, run: &RunId, owner: &str) -> Result<bool> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            let done = sqlx::query(
                "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(run)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return if run_exists(&mut tx, run).await? {
                    Ok(false)
                } else {
                    Err(run_not_found(run))
                };
            }
            append(
                &mut tx,
                run,
                now,
                kind::LEASE_RELEASED,
                None,
                Some(owner),
                json!({}),
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn start_item(&self, run: &RunId, item: &str, owner: &str) -> Result<ItemState> {
        self.ctx(self.move_item(run, item, owner, Move::Start))
            .await
    }

    async fn finish_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
    ) -> Result<ItemState> {
        self.ctx(self.move_item(run, item, owner, Move::Finish(outcome, result)))
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
        self.ctx(async {
            if item == next {
                return Err(StoreError::Conflict(format!(
                    "item `{item}` cannot finish and start in one move"
                )));
            }
            // Not lazy: the start must be durable before its step runs, and
            // the finish is synced with it.
            let [finished, started] = self
                .moves(
                    run,
                    owner,
                    [(item, Move::Finish(outcome, result)), (next, Move::Start)],
                    false,
                )
                .await?;
            Ok((finished, started))
        })
        .await
    }

    async fn set_item_waiting(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        detail: &Value,
    ) -> Result<ItemState> {
        self.ctx(self.move_item(run, item, owner, Move::Wait(detail)))
            .await
    }

    async fn mark_interrupted(&self, run: &RunId, owner: &str) -> Result<Vec<String>> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            hold(&mut tx, run, Some(owner), now).await?;
            let rows = sqlx::query(
                "UPDATE items SET status = 'interrupted', updated_at = $2 \
                 WHERE run_id = $1 AND status = 'running' RETURNING item_id, attempts, position",
            )
            .bind(run)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let mut interrupted = Vec::with_capacity(rows.len());
            for row in &rows {
                let position: i64 = row.try_get("position")?;
                let attempts: i64 = row.try_get("attempts")?;
                let item: String = row.try_get("item_id")?;
                interrupted.push((position, item, attempts));
            }
            interrupted.sort();
            for (_, item, attempts) in &interrupted {
                let data = json!({ "attempt": attempts });
                append(
                    &mut tx,
                    run,
                    now,
                    kind::ITEM_INTERRUPTED,
                    Some(item),
                    Some(owner),
                    data,
                )
                .await?;
            }
            tx.commit().await?;
            Ok(interrupted.into_iter().map(|(_, item, _)| item).collect())
        })
        .await
    }

    async fn item_states(&self, run: &RunId) -> Result<Vec<ItemState>> {
        self.ctx(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(&format!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE run_id = $1 ORDER BY position"
            ))
            .bind(run)
            .fetch_all(&mut *conn)
            .await?;
            if rows.is_empty() && !run_exists(&mut conn, run).await? {
                return Err(run_not_found(run));
            }
            rows.iter().map(item_from).collect()
        })
        .await
    }

    async fn append_event(&self, run: &RunId, owner: &str, event: &NewEvent) -> Result<Event> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            hold(&mut tx, run, Some(owner), now).await?;
            if let Some(item) = &event.item_id {
                item_status(&mut tx, run, item).await?;
            }
            let event = append(
                &mut tx,
                run,
                now,
                &event.kind,
                event.item_id.as_deref(),
                Some(owner),
                event.data.clone(),
            )
            .await?;
            tx.commit().await?;
            Ok(event)
        })
        .await
    }

    async fn events_after(&self, run: &RunId, after: i64, limit: u32) -> Result<Vec<Event>> {
        self.ctx(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE run_id = $1 AND seq > $2 \
                 ORDER BY seq LIMIT $3"
            ))
            .bind(run)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            if rows.is_empty() && !run_exists(&mut conn, run).await? {
                return Err(run_not_found(run));
            }
            rows.iter().map(event_from).collect()
        })
        .await
    }

    async fn confirm(
        &self,
        run: &RunId,
        item: &str,
        confirmation: &NewConfirmation,
    ) -> Result<bool> {
        let c = confirmation;
        let data = json!({ "evidence": c.evidence, "skipped": c.skipped, "reason": c.reason });
        self.answer(run, item, &c.by, kind::ITEM_CONFIRMED, data, |now| {
            sqlx::query(
                "INSERT INTO confirmations (run_id, item_id, by, at, evidence, skipped, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id, item_id) DO NOTHING",
            )
            .bind(run)
            .bind(item)
            .bind(&c.by)
            .bind(now)
            .bind(&c.evidence)
            .bind(c.skipped)
            .bind(&c.reason)
        })
        .await
    }

    async fn confirmation(&self, run: &RunId, item: &str) -> Result<Option<Confirmation>> {
        self.ctx(async {
            let mut conn = self.pool.acquire().await?;
            item_status(&mut conn, run, item).await?;
            sqlx::query(
                "SELECT item_id, by, at, evidence, skipped, reason FROM confirmations \
                 WHERE run_id = $1 AND item_id = $2",
            )
            .bind(run)
            .bind(item)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(confirmation_from)
            .transpose()
        })
        .await
    }

    async fn sign(&self, run: &RunId, item: &str, signature: &NewSignature) -> Result<bool> {
        let s = signature;
        let data = json!({ "role": s.role, "decision": s.decision, "comment": s.comment });
        self.answer(run, item, &s.by, kind::ITEM_SIGNED, data, |now| {
            sqlx::query(
                "INSERT INTO signatures (run_id, item_id, role, by, at, decision, comment) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (run_id, item_id, role) DO NOTHING",
            )
            .bind(run)
            .bind(item)
            .bind(&s.role)
            .bind(&s.by)
            .bind(now)
            .bind(s.decision.as_str())
            .bind(&s.comment)
        })
        .await
    }

    async fn signatures(&self, run: &RunId, item: &str) -> Result<Vec<Signature>> {
        self.ctx(async {
            let mut conn = self.pool.acquire().await?;
            item_status(&mut conn, run, item).await?;
            sqlx::query(
                "SELECT item_id, role, by, at, decision, comment FROM signatures \
                 WHERE run_id = $1 AND item_id = $2 ORDER BY at, role",
            )
            .bind(run)
            .bind(item)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(signature_from)
            .collect()
        })
        .await
    }

    async fn request(&self, run: &RunId, request: &NewRequest) -> Result<bool> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            hold(&mut tx, run, None, now).await?;
            let done = sqlx::query(
                "INSERT INTO requests (run_id, kind, by, at, reason) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (run_id, kind) DO NOTHING",
            )
            .bind(run)
            .bind(&request.kind)
            .bind(&request.by)
            .bind(now)
            .bind(&request.reason)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            let data = json!({ "kind": request.kind, "reason": request.reason });
            append(
                &mut tx,
                run,
                now,
                kind::RUN_REQUESTED,
                None,
                Some(&request.by),
                data,
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn requests(&self, run: &RunId) -> Result<Vec<Request>> {
        self.ctx(async {
            let mut conn = self.pool.acquire().await?;
            if !run_exists(&mut conn, run).await? {
                return Err(run_not_found(run));
            }
            sqlx::query(
                "SELECT kind, by, at, reason FROM requests WHERE run_id = $1 ORDER BY at, kind",
            )
            .bind(run)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| {
                Ok(Request {
                    kind: row.try_get("kind")?,
                    by: row.try_get("by")?,
                    at: from_millis(row.try_get("at")?)?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
        })
        .await
    }

    async fn put_flag(
        &self,
        key: &str,
        definition: &Value,
        expected_version: Option<i64>,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<FlagRecord> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            let current = sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags WHERE key = $1"))
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?
                .as_ref()
                .map(flag_from)
                .transpose()?;
            check_flag_version(key, expected_version, current.as_ref().map(|f| f.version))?;
            let audit = AuditRef {
                action: action::FLAG_CREATED,
                target: key,
                before: None,
                after: Some(definition),
                reason,
            };
            let record = match current {
                Some(current) if current.definition == *definition => return Ok(current),
                Some(current) => {
                    let row = sqlx::query(&format!(
                        "UPDATE flags SET definition = $2, version = version + 1, \
                         updated_at = $3, updated_by = $4 WHERE key = $1 \
                         RETURNING {FLAG_COLUMNS}"
                    ))
                    .bind(key)
                    .bind(definition.to_string())
                    .bind(now)
                    .bind(&actor.name)
                    .fetch_one(&mut *tx)
                    .await?;
                    let audit = AuditRef {
                        action: action::FLAG_UPDATED,
                        before: Some(&current.definition),
                        ..audit
                    };
                    audit_in(&mut tx, now, actor, audit).await?;
                    flag_from(&row)?
                }
                None => {
                    let row = sqlx::query(&format!(
                        "INSERT INTO flags (key, definition, version, created_at, updated_at, \
                         updated_by) VALUES ($1, $2, 1, $3, $3, $4) RETURNING {FLAG_COLUMNS}"
                    ))
                    .bind(key)
                    .bind(definition.to_string())
                    .bind(now)
                    .bind(&actor.name)
                    .fetch_one(&mut *tx)
                    .await?;
                    audit_in(&mut tx, now, actor, audit).await?;
                    flag_from(&row)?
                }
            };
            bump_flags_revision(&mut tx).await?;
            tx.commit().await?;
            Ok(record)
        })
        .await
    }

    async fn delete_flag(&self, key: &str, actor: &Actor, reason: Option<&str>) -> Result<bool> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            let old: Option<String> =
                sqlx::query_scalar("DELETE FROM flags WHERE key = $1 RETURNING definition")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(old) = old else {
                return Ok(false);
            };
            let audit = AuditRef {
                action: action::FLAG_DELETED,
                target: key,
                before: Some(&json(&old)?),
                after: None,
                reason,
            };
            audit_in(&mut tx, now, actor, audit).await?;
            bump_flags_revision(&mut tx).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn get_flag(&self, key: &str) -> Result<Option<FlagRecord>> {
        self.ctx(async {
            sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags WHERE key = $1"))
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(flag_from)
                .transpose()
        })
        .await
    }

    async fn list_flags(&self) -> Result<Vec<FlagRecord>> {
        self.ctx(async {
            sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags ORDER BY key"))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(flag_from)
                .collect()
        })
        .await
    }

    async fn flags_revision(&self) -> Result<i64> {
        self.ctx(async {
            Ok(
                sqlx::query_scalar("SELECT revision FROM flags_revision WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?,
            )
        })
        .await
    }

    async fn audit_head(&self) -> Result<i64> {
        self.ctx(async {
            Ok(
                sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit")
                    .fetch_one(&self.pool)
                    .await?,
            )
        })
        .await
    }

    async fn append_audit(&self, actor: &Actor, entry: &NewAudit) -> Result<AuditEntry> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            let entry = audit_in(&mut tx, now, actor, entry.into()).await?;
            tx.commit().await?;
            Ok(entry)
        })
        .await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.ctx(async {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > "
            ));
            q.push_bind(filter.after_seq);
            if let Some(actor) = &filter.actor {
                q.push(" AND actor = ").push_bind(actor.as_str());
            }
            if let Some(prefix) = filter.action_prefix.as_deref().filter(|p| !p.is_empty()) {
                // BINARY collation: byte order, so the prefix is an index range.
                q.push(" AND action >= ").push_bind(prefix);
                if let Some(upper) = prefix_upper_bound(prefix) {
                    q.push(" AND action < ").push_bind(upper);
                }
            }
            if let Some(target) = &filter.target {
                q.push(" AND target = ").push_bind(target.as_str());
            }
            if let Some(since) = filter.since {
                q.push(" AND at >= ").push_bind(ceil_millis(since));
            }
            if let Some(before) = filter.before_seq {
                q.push(" AND seq < ").push_bind(before);
            }
            q.push(if filter.newest_first {
                " ORDER BY seq DESC LIMIT "
            } else {
                " ORDER BY seq LIMIT "
            })
            .push_bind(i64::from(filter.limit));
            q.build()
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(audit_from)
                .collect()
        })
        .await
    }

    async fn create_token(&self, token: &NewToken, actor: &Actor) -> Result<TokenRecord> {
        self.ctx(async {
            let now = self.now_ms();
            let expires_at = token.expires_at.map(to_millis).transpose()?;
            let mut tx = self.begin().await?;
            check_token_is_new(&mut tx, token).await?;
            sqlx::query(
                "INSERT INTO tokens (id, name, role, secret_sha256, created_at, expires_at, \
                 created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&token.id)
            .bind(&token.name)
            .bind(&token.role)
            .bind(&token.secret_sha256)
            .bind(now)
            .bind(expires_at.map(Timestamp::as_millisecond))
            .bind(&actor.name)
            .execute(&mut *tx)
            .await
            .map_err(|e| token_insert_error(e, &token.id))?;
            let record = TokenRecord {
                id: token.id.clone(),
                name: token.name.clone(),
                role: token.role.clone(),
                secret_sha256: token.secret_sha256.clone(),
                created_at: from_millis(now)?,
                expires_at,
                revoked_at: None,
                created_by: actor.name.clone(),
            };
            let after = token_json(&record);
            let audit = AuditRef {
                action: action::TOKEN_CREATED,
                target: &record.id,
                before: None,
                after: Some(&after),
                reason: None,
            };
            audit_in(&mut tx, now, actor, audit).await?;
            tx.commit().await?;
            Ok(record)
        })
        .await
    }

    async fn token_by_secret(&self, secret_sha256: &str) -> Result<Option<TokenRecord>> {
        self.ctx(async {
            sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_sha256 = $1"
            ))
            .bind(secret_sha256)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(token_from)
            .transpose()
        })
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.ctx(async {
            sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id"
            ))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_from)
            .collect()
        })
        .await
    }

    async fn revoke_token(&self, id: &str, actor: &Actor) -> Result<bool> {
        self.ctx(async {
            let now = self.now_ms();
            let mut tx = self.begin().await?;
            let row = sqlx::query(&format!(
                "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
                 RETURNING {TOKEN_COLUMNS}"
            ))
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(false);
            };
            let token = token_from(&row)?;
            let after = revoked_json(&token);
            let audit = AuditRef {
                action: action::TOKEN_REVOKED,
                target: id,
                before: None,
                after: Some(&after),
                reason: None,
            };
            audit_in(&mut tx, now, actor, audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn close(&self) {
        self.pool.close().await;
        let mut writer = self.writer.lock().await;
        writer.closed = true;
        // Dropping it closes it; it has no transaction open between moves.
        writer.mover = None;
        if let Some(conn) = writer.conn.take() {
            let _ = conn.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("j.db"))
            .await
            .expect("open");
        (dir, store)
    }

    #[tokio::test]
    async fn moves_write_the_events_they_describe() {
        let (_dir, store) = fresh().await;
        crate::model::check_move_events(&store).await;
        store.close().await;
    }

    /// Many writers of one run at once, through two stores on one file:
    /// each store's writers queue for its writer, the two writers meet at
    /// SQLite's write lock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_moves_keep_the_journal_whole() {
        let (dir, store) = fresh().await;
        let other = SqliteStore::open(dir.path().join("j.db"))
            .await
            .expect("open");
        let stores = [Arc::new(store), Arc::new(other)];
        crate::model::check_concurrent_moves(stores.clone()).await;
        for store in stores {
            store.close().await;
        }
    }

    /// The `synchronous` setting of the moves' connection (2 = FULL).
    async fn mover_sync(store: &SqliteStore) -> i64 {
        let writer = store.writer.lock().await;
        let conn = writer
            .mover
            .as_ref()
            .expect("the moves' connection is open");
        conn.pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("pragma")
    }

    /// A finish commits without its own fsync, but whatever follows it —
    /// finished, refused or failed — is durable again.
    async fn check_only_a_finish_is_lazy(store: SqliteStore) {
        let id = crate::model::leased_run(&store, &["a", "b"]).await;
        store.start_item(&id, "a", "me").await.expect("start");
        assert_eq!(mover_sync(&store).await, 2);
        let r = json!({"exit_code": 0});
        let done = store.finish_item(&id, "a", "me", Outcome::Passed, &r).await;
        assert_eq!(done.expect("finish").status, ItemStatus::Passed);
        assert_eq!(mover_sync(&store).await, 2);
        // refused: not running
        let refused = store.finish_item(&id, "b", "me", Outcome::Passed, &r).await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
        assert_eq!(mover_sync(&store).await, 2);
        // refused: someone else's lease
        let lost = store
            .finish_item(&id, "a", "you", Outcome::Passed, &r)
            .await;
        assert!(
            matches!(lost, Err(StoreError::LeaseLost { .. })),
            "{lost:?}"
        );
        assert_eq!(mover_sync(&store).await, 2);
        let events = store.events_after(&id, 0, 100).await.expect("events");
        let run = store.get_run(&id).await.expect("run").summary;
        assert_eq!(events.len() as i64, run.last_seq);
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds[kinds.len() - 2..],
            [kind::ITEM_STARTED, kind::ITEM_FINISHED]
        );
        store.close().await;
    }

    /// On a current-thread runtime a move runs on the blocking pool.
    #[tokio::test]
    async fn only_a_finish_is_lazy_on_the_blocking_pool() {
        let (_dir, store) = fresh().await;
        check_only_a_finish_is_lazy(store).await;
    }

    /// On a multi-threaded runtime it runs in place, from `block_on` as
    /// from a worker.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_a_finish_is_lazy_in_place() {
        let (_dir, store) = fresh().await;
        check_only_a_finish_is_lazy(store).await;
        let (_dir, store) = fresh().await;
        tokio::spawn(check_only_a_finish_is_lazy(store))
            .await
            .expect("on a worker");
    }

    #[tokio::test]
    async fn a_transaction_dropped_before_its_end_is_rolled_back() {
        let (_dir, store) = fresh().await;
        let new = NewRun {
            plan_name: "p".into(),
            plan_text: "p".into(),
            items: vec!["a".into()],
            ..NewRun::default()
        };
        let run = store.create_run(&new).await.expect("create");
        let id = run.summary.id;
        // Dropped inside the transaction, as a caller giving up would.
        let mut tx = store.begin().await.expect("begin");
        sqlx::query("UPDATE runs SET plan_name = 'changed' WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .expect("update");
        drop(tx);
        // The next write waits for the rollback, then works.
        assert!(
            store
                .acquire_lease(&id, "me", Duration::from_secs(60))
                .await
                .expect("lease")
        );
        assert_eq!(
            store.get_run(&id).await.expect("run").summary.plan_name,
            "p"
        );
        // A move whose future is dropped at its first poll, or part-way:
        // the writer stays usable and the journal consistent.
        for polls in 0..4 {
            let mut fut = std::pin::pin!(store.start_item(&id, "a", "me"));
            for _ in 0..polls {
                let waker = std::task::Waker::noop();
                let _ = fut
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(waker));
            }
        }
        let state = store.start_item(&id, "a", "me").await;
        let run = store.get_run(&id).await.expect("run").summary;
        let events = store.events_after(&id, 0, 100).await.expect("events");
        assert_eq!(events.len() as i64, run.last_seq);
        match state {
            Ok(state) => assert_eq!(state.status, ItemStatus::Running),
            Err(e) => assert!(matches!(e, StoreError::Conflict(_)), "{e:?}"),
        }
        // With no runtime to roll back in, the next write does it.
        let mut tx = store.begin().await.expect("begin");
        sqlx::query("UPDATE runs SET plan_name = 'changed' WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .expect("update");
        tx.open = false;
        tx.writer().dirty = true;
        drop(tx);
        store
            .renew_lease(&id, "me", Duration::from_secs(60))
            .await
            .expect("renew");
        assert_eq!(
            store.get_run(&id).await.expect("run").summary.plan_name,
            "p"
        );
        store.close().await;
        let closed = store.renew_lease(&id, "me", Duration::from_secs(60)).await;
        assert!(closed.is_err(), "{closed:?}");
    }
}
