//! Item moves, the hot path of a run, on a connection of their own.
//!
//! sqlx's SQLite driver runs statements on a worker thread and sends each
//! statement's result back to the async side as its own message: a move
//! (`BEGIN IMMEDIATE`, three guarded writes, `COMMIT`) cost about ten
//! cross-thread wake-ups, more than SQLite's own work. Here the whole
//! transaction runs on one blocking thread through rusqlite (the same
//! bundled SQLite) and comes back once.
//!
//! A finish and the next start may go in one transaction
//! ([`Store::finish_and_start`](crate::Store::finish_and_start)): [`run`]
//! takes a list of moves.
//!
//! The connection belongs to the store's [`Writer`](super::Writer): a move
//! holds the writer for its whole run, so this process's writes stay in one
//! queue whichever connection makes them.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

/// One move's SQL: three writes that test the same thing (the lease is
/// held and the item's status is one the move starts from), then, only
/// when nothing moved, the query that says why. Binds, by name: `$1` run,
/// `$2` owner, `$3` now, `$4` item, `$5` event kind, then the finish's
/// outcome and result (`$6`, `$7`) or the wait's detail (`$6`).
pub(super) struct MoveSql {
    pub(super) writes: [String; 3],
    pub(super) why: String,
}

/// What the moves of one transaction wrote, or why they wrote nothing.
pub(super) enum Moved {
    /// Each move's item, its new row, in the order of the moves.
    Items(Vec<ItemRow>),
    /// Nothing was written: the move at `index` was refused; whether the
    /// lease is held (`None`: no such run) and its item's status (`None`:
    /// no such item), as that move found them.
    Refused {
        index: usize,
        held: Option<bool>,
        status: Option<String>,
    },
}

/// An item's row as stored (`ITEM_COLUMNS`, in order).
pub(super) struct ItemRow {
    pub(super) item_id: String,
    pub(super) status: String,
    pub(super) attempts: i64,
    pub(super) started_at: Option<i64>,
    pub(super) finished_at: Option<i64>,
    pub(super) result: Option<String>,
    pub(super) updated_at: i64,
}

/// A SQLite error from this connection, in the shape the store sorts (by
/// its result code) like sqlx's own.
#[derive(Debug)]
pub(crate) struct MoveError {
    code: i32,
    message: String,
}

impl MoveError {
    /// The extended result code.
    pub(crate) fn code(&self) -> i32 {
        self.code
    }

    /// A read-only store refuses the move before any connection is opened.
    pub(super) fn read_only() -> MoveError {
        MoveError {
            code: rusqlite::ffi::SQLITE_READONLY,
            message: "attempt to write a readonly database".into(),
        }
    }
}

impl From<rusqlite::Error> for MoveError {
    fn from(e: rusqlite::Error) -> Self {
        let code = match &e {
            rusqlite::Error::SqliteFailure(f, _) => f.extended_code,
            _ => rusqlite::ffi::SQLITE_ERROR,
        };
        MoveError {
            code,
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for MoveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for MoveError {}

impl sqlx::error::DatabaseError for MoveError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

/// Opens the move connection with the pool's settings: WAL (the file's
/// own), foreign keys, the busy timeout, `synchronous = FULL`.
pub(super) fn open(path: &Path, busy: Duration) -> Result<Connection, MoveError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")?;
    Ok(conn)
}

/// Runs moves, each with its binds, in order as one `BEGIN IMMEDIATE`
/// transaction: all of them or, at the first refusal, none (each move sees
/// the ones before it: the run's `last_seq` they bumped). `lazy` commits it
/// with `synchronous = NORMAL`: in the WAL (so it survives the process),
/// not yet fsynced; the next durable commit makes it durable too, the WAL
/// being synced up to that commit. The second value says whether the
/// connection may be used again: `false` once the move failed or FULL
/// could not be restored, and the caller drops it.
pub(super) fn run(
    conn: &mut Connection,
    moves: &[(&MoveSql, &[(&str, Sql)])],
    lazy: bool,
) -> (Result<Moved, MoveError>, bool) {
    if lazy && let Err(e) = conn.execute_batch("PRAGMA synchronous = NORMAL") {
        return (Err(e.into()), false);
    }
    let moved = transaction(conn, moves);
    let full = !lazy || conn.execute_batch("PRAGMA synchronous = FULL").is_ok();
    let reusable = full && moved.is_ok();
    (moved, reusable)
}

fn transaction(
    conn: &mut Connection,
    moves: &[(&MoveSql, &[(&str, Sql)])],
) -> Result<Moved, MoveError> {
    // Dropping the transaction before `commit` rolls it back.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut rows = Vec::with_capacity(moves.len());
    for (index, (sql, binds)) in moves.iter().enumerate() {
        match one(&tx, sql, binds)? {
            Some(row) => rows.push(row),
            None => {
                // This move wrote nothing; those before it are rolled back
                // when the transaction is dropped.
                let mut stmt = tx.prepare_cached(&sql.why)?;
                bind(&mut stmt, binds)?;
                let why = stmt
                    .raw_query()
                    .next()?
                    .map(|r| Ok::<_, rusqlite::Error>((r.get(0)?, r.get(1)?)))
                    .transpose()?;
                let (held, status) = why.unwrap_or((None, None));
                return Ok(Moved::Refused {
                    index,
                    held,
                    status,
                });
            }
        }
    }
    tx.commit()?;
    Ok(Moved::Items(rows))
}

/// One move's three writes; its item's new row, or `None` if it was
/// refused (and wrote nothing).
fn one(
    tx: &Connection,
    sql: &MoveSql,
    binds: &[(&str, Sql)],
) -> Result<Option<ItemRow>, MoveError> {
    let [seq, event, item] = &sql.writes;
    execute(tx, seq, binds)?;
    execute(tx, event, binds)?;
    let mut stmt = tx.prepare_cached(item)?;
    bind(&mut stmt, binds)?;
    let mut rows = stmt.raw_query();
    Ok(match rows.next()? {
        Some(r) => Some(ItemRow {
            item_id: r.get(0)?,
            status: r.get(1)?,
            attempts: r.get(2)?,
            started_at: r.get(3)?,
            finished_at: r.get(4)?,
            result: r.get(5)?,
            updated_at: r.get(6)?,
        }),
        None => None,
    })
}

fn execute(tx: &Connection, sql: &str, binds: &[(&str, Sql)]) -> Result<(), MoveError> {
    let mut stmt = tx.prepare_cached(sql)?;
    bind(&mut stmt, binds)?;
    stmt.raw_execute()?;
    Ok(())
}

/// Binds the parameters this statement names; the others are not in it.
fn bind(stmt: &mut rusqlite::CachedStatement<'_>, binds: &[(&str, Sql)]) -> Result<(), MoveError> {
    for (name, value) in binds {
        if let Some(i) = stmt.parameter_index(name)? {
            stmt.raw_bind_parameter(i, value)?;
        }
    }
    Ok(())
}
