//! The SQLite backend: golive's default, one file and no set-up.
//!
//! Durability is the point: the journal is in WAL mode with
//! `synchronous = FULL`, so a committed step survives `kill -9` and a power
//! cut (a finish excepted, which the next commit makes durable: see
//! [`Store::finish_item`](crate::Store::finish_item)). Every write transaction starts with `BEGIN
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
//!
//! The store's operations are written once (`crate::ops`); this module
//! gives them SQLite's spelling, transactions and cells (`Dialect`) and
//! makes item moves its own way (`Backend`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row};
use tokio::sync::OwnedMutexGuard;

mod mover;

pub(crate) use mover::MoveError;

use crate::dialect::{Arg, Cells, Dialect};
use crate::error::{is_busy, is_cant_open, is_read_only};
use crate::model::{Move, ceil_millis, from_millis};
use crate::ops::Backend;
use crate::ops::journal::{item_from, run_not_found};
use crate::{DbUrl, ItemState, Outcome, RunId, StoreError, migrations};

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
pub(crate) struct Tx {
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
}

impl Dialect for SqliteStore {
    type Row = SqliteRow;
    type Tx = Tx;

    const JSON_IN: &'static str = "";
    const JSON_OUT: &'static str = "";
    const LOCK_ROW: Option<&'static str> = None;

    fn now_ms(&self) -> Option<i64> {
        Some(SqliteStore::now_ms(self))
    }

    async fn begin(&self) -> Result<Tx> {
        SqliteStore::begin(self).await
    }

    async fn commit(tx: Tx) -> Result<()> {
        tx.commit().await
    }

    async fn fetch<'a>(
        &'a self,
        tx: Option<&'a mut Tx>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> Result<Vec<SqliteRow>, sqlx::Error> {
        let query = bound(sql, args);
        match tx {
            Some(tx) => query.fetch_all(&mut **tx).await,
            None => query.fetch_all(&self.pool).await,
        }
    }

    async fn execute<'a>(
        &'a self,
        tx: Option<&'a mut Tx>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> Result<u64, sqlx::Error> {
        let query = bound(sql, args);
        Ok(match tx {
            Some(tx) => query.execute(&mut **tx).await?,
            None => query.execute(&self.pool).await?,
        }
        .rows_affected())
    }

    async fn insert_items<'a>(
        tx: &'a mut Tx,
        run: &'a str,
        items: &'a [String],
        now: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        for (position, item) in items.iter().enumerate() {
            sqlx::query(
                "INSERT INTO items (run_id, item_id, position, status, updated_at) \
                 VALUES ($1, $2, $3, 'pending', $4)",
            )
            .bind(run)
            .bind(item)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// `sql` with `args` bound as SQLite keeps them: times in milliseconds,
/// JSON as text.
fn bound<'a>(
    sql: &'a str,
    args: Vec<Arg<'a>>,
) -> sqlx::query::Query<'a, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'a>> {
    args.into_iter().fold(sqlx::query(sql), |q, arg| match arg {
        Arg::Text(v) => q.bind(v),
        Arg::Int(v) => q.bind(v),
        Arg::Bool(v) => q.bind(v),
        Arg::Json(v) => q.bind(v),
        Arg::Time(v) => q.bind(v.map(Timestamp::as_millisecond)),
        Arg::AtLeast(v) => q.bind(ceil_millis(v)),
        Arg::Now(ms) => q.bind(ms),
        // Rendered as `Now` where the store's clock stamps changes.
        Arg::Later(d) => q.bind(crate::dialect::millis(d)),
    })
}

impl Cells for SqliteRow {
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.try_get(column)?)
    }

    fn opt_bool(&self, column: &str) -> Result<Option<bool>> {
        Ok(self.try_get(column)?)
    }

    fn opt_time(&self, column: &str) -> Result<Option<Timestamp>> {
        opt_time(self.try_get(column)?)
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

/// An item's row as the mover reads it back, in `mover::ItemRow`'s order.
const ITEM_COLUMNS: &str = "item_id, status, attempts, started_at, finished_at, result, updated_at";

fn opt_time(ms: Option<i64>) -> Result<Option<Timestamp>> {
    ms.map(from_millis).transpose()
}

/// The mover's rows read as the journal's own, so that one
/// [`item_from`] says what an item's row means.
impl Cells for mover::ItemRow {
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        match column {
            "item_id" => Ok(Some(self.item_id.clone())),
            "status" => Ok(Some(self.status.clone())),
            "result" => Ok(self.result.clone()),
            _ => Err(not_an_item_column(column)),
        }
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        match column {
            "attempts" => Ok(Some(self.attempts)),
            _ => Err(not_an_item_column(column)),
        }
    }

    fn opt_bool(&self, column: &str) -> Result<Option<bool>> {
        Err(not_an_item_column(column))
    }

    fn opt_time(&self, column: &str) -> Result<Option<Timestamp>> {
        opt_time(match column {
            "started_at" => self.started_at,
            "finished_at" => self.finished_at,
            "updated_at" => Some(self.updated_at),
            _ => return Err(not_an_item_column(column)),
        })
    }
}

fn not_an_item_column(column: &str) -> StoreError {
    StoreError::Corrupt(format!("an item's row has no column `{column}`"))
}

impl SqliteStore {
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
                    .map(|row| item_from(&row))
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

impl Backend for SqliteStore {
    fn url(&self) -> &DbUrl {
        &self.url
    }

    async fn move_one(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        mv: Move<'_>,
    ) -> Result<ItemState> {
        self.move_item(run, item, owner, mv).await
    }

    async fn finish_then_start(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
        next: &str,
    ) -> Result<(ItemState, ItemState)> {
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
    }

    async fn close_connections(&self) {
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
    use serde_json::json;

    use crate::{ItemStatus, NewRun, Store, kind};

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
