//! The one error type of the store, and the sorting of database errors into
//! what a caller can act on: retry later, stop writing, give up the run.

use sqlx::error::DatabaseError;

use crate::model::RunId;
use crate::url::DbUrl;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The run or item does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The move is not allowed from the current state (starting a finished
    /// item, finishing an item that is not running, …). Nothing was written.
    #[error("{0}")]
    Conflict(String),
    /// The caller no longer holds the run's lease: it expired or another
    /// process took the run over. Nothing was written; stop driving the run.
    #[error(
        "run {run}: `{owner}` no longer holds the lease (it expired or another process took the run over)"
    )]
    LeaseLost {
        /// The run.
        run: RunId,
        /// The owner that asked.
        owner: String,
    },
    /// The database cannot be reached or opened.
    #[error("cannot reach the database at {url}")]
    Unavailable {
        /// Where (password hidden).
        url: DbUrl,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The database (a read-only SQLite file or directory, a read-only
    /// PostgreSQL session or replica) refuses writes; reads still work.
    #[error("the database at {url} is read-only: its runs can be read but nothing can be recorded")]
    ReadOnly {
        /// Where (password hidden).
        url: DbUrl,
        /// The refusal.
        #[source]
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date (or, read-only, is not).
    #[error("cannot bring the database at {url} up to date")]
    Migration {
        /// Where (password hidden).
        url: DbUrl,
        /// Why.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The database was away for the whole retry budget and a try was
    /// cut short (see [`crate::Retrying`]).
    #[error("the database did not answer for {:.1}s", waited.as_secs_f64())]
    Unanswered {
        /// How long the database had been away.
        waited: std::time::Duration,
    },
    /// The URL names no backend golive has.
    #[error("unsupported database URL `{url}`: {reason}")]
    BadUrl {
        /// The URL (password hidden).
        url: DbUrl,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored value golive cannot read back (an unknown status, say).
    /// Errors leaving a store name the journal instead
    /// ([`StoreError::CorruptJournal`]).
    #[error("the database holds a value golive cannot read: {0}")]
    Corrupt(String),
    /// The journal is damaged: its integrity check failed, the database
    /// reported corruption ("malformed", "not a database"), or a value in
    /// it cannot be read. Nothing is run or shown from such a journal.
    #[error(
        "the journal {url} is damaged ({detail}); golive will not run or show anything from it. \
         Restore it from a backup, or move it aside and start over with a new journal \
         (for SQLite, `sqlite3 FILE .recover` may save what it still holds)"
    )]
    CorruptJournal {
        /// Which journal (password hidden).
        url: DbUrl,
        /// What the check or the database said.
        detail: String,
    },
    /// The journal cannot be written: the disk (or the database server's
    /// disk) is full, or it failed to read or write. The run stops where
    /// it was; it can be resumed once the fault is fixed.
    #[error("{}", unwritable(url, run.as_ref(), *fault))]
    Unwritable {
        /// Which journal (password hidden).
        url: DbUrl,
        /// The run being written, when known.
        run: Option<RunId>,
        /// Full disk or I/O error.
        fault: WriteFault,
        /// The database's error (boxed: it keeps every `StoreError` small).
        #[source]
        source: Box<sqlx::Error>,
    },
    /// The operating system gave no random bytes for a run id.
    #[error("no random source for a run id")]
    Random(#[source] getrandom::Error),
    /// Any other database error.
    #[error(transparent)]
    Backend(sqlx::Error),
}

/// Why a journal cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// No space left (SQLite `SQLITE_FULL`, PostgreSQL `53100`).
    DiskFull,
    /// The disk failed to read or write (SQLite `SQLITE_IOERR`,
    /// PostgreSQL `58030`).
    Io,
}

fn unwritable(url: &DbUrl, run: Option<&RunId>, fault: WriteFault) -> String {
    let (what, fix) = match fault {
        WriteFault::DiskFull => ("the disk is full", "Free some space"),
        WriteFault::Io => (
            "the disk reported an I/O error",
            "Check the disk (dmesg, df)",
        ),
    };
    match run {
        Some(run) => format!(
            "run {run}: cannot write the journal {url}: {what}; the run stopped where it was. \
             {fix}, then resume it with `golive run --resume {run}`"
        ),
        None => format!("cannot write the journal {url}: {what}. {fix} and try again"),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
            e => StoreError::Backend(e),
        }
    }
}

impl StoreError {
    /// Sorts a raw database error by what the caller can do about it, naming
    /// the database it came from.
    pub(crate) fn at(self, url: &DbUrl) -> StoreError {
        match self {
            StoreError::Backend(e) if is_read_only(&e) => StoreError::ReadOnly {
                url: url.clone(),
                source: e,
            },
            StoreError::Backend(e) if is_unavailable(&e) => StoreError::Unavailable {
                url: url.clone(),
                source: e,
            },
            StoreError::Backend(e) if is_corrupt(&e) => StoreError::CorruptJournal {
                url: url.clone(),
                detail: database_message(&e),
            },
            StoreError::Backend(e) => match write_fault(&e) {
                Some(fault) => StoreError::Unwritable {
                    url: url.clone(),
                    run: None,
                    fault,
                    source: Box::new(e),
                },
                None => StoreError::Backend(e),
            },
            StoreError::Migration {
                source: sqlx::migrate::MigrateError::Execute(e),
                ..
            } if is_corrupt(&e) => StoreError::CorruptJournal {
                url: url.clone(),
                detail: database_message(&e),
            },
            StoreError::Corrupt(detail) => StoreError::CorruptJournal {
                url: url.clone(),
                detail,
            },
            other => other,
        }
    }

    /// Names the run in an error that stops it (a journal that cannot be
    /// written); other errors are returned as they are.
    pub fn for_run(self, run: &RunId) -> StoreError {
        match self {
            StoreError::Unwritable {
                url,
                run: None,
                fault,
                source,
            } => StoreError::Unwritable {
                url,
                run: Some(run.clone()),
                fault,
                source,
            },
            other => other,
        }
    }

    /// A fault that passes by itself: the database cannot be reached for
    /// now (connection refused, reset or closed, the server shutting down
    /// or starting up) or another writer holds it (SQLite busy or locked).
    /// Worth retrying; an unreachable SQLite file, a full disk or a damaged
    /// journal is not.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable { source, .. } => {
                !matches!(source, sqlx::Error::WorkerCrashed)
                    && !is_cant_open(source)
                    && sqlite_code(source).is_none()
            }
            StoreError::Backend(e) => is_busy(e),
            _ => false,
        }
    }
}

/// The database's own words for an error.
fn database_message(e: &sqlx::Error) -> String {
    match e.as_database_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_IOERR: i32 = 10;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_FULL: i32 = 13;
const SQLITE_NOTADB: i32 = 26;

/// A row refused because another holds its unique key.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// SQLite busy or locked: another connection holds the lock (after the
/// busy timeout).
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    matches!(sqlite_code(e), Some(SQLITE_BUSY | SQLITE_LOCKED))
}

/// The database says its file or data is damaged.
pub(crate) fn is_corrupt(e: &sqlx::Error) -> bool {
    matches!(sqlite_code(e), Some(SQLITE_CORRUPT | SQLITE_NOTADB))
        || matches!(pg_code(e).as_deref(), Some("XX001" | "XX002"))
}

/// The disk is full or failed.
fn write_fault(e: &sqlx::Error) -> Option<WriteFault> {
    match (sqlite_code(e), pg_code(e).as_deref()) {
        (Some(SQLITE_FULL), _) | (_, Some("53100")) => Some(WriteFault::DiskFull),
        (Some(SQLITE_IOERR), _) | (_, Some("58030")) => Some(WriteFault::Io),
        _ => None,
    }
}

/// The SQLite primary result code of an error, if it is a SQLite error.
pub(crate) fn sqlite_code(e: &sqlx::Error) -> Option<i32> {
    let db = e.as_database_error()?;
    if let Some(moved) = db.try_downcast_ref::<crate::sqlite::MoveError>() {
        return Some(moved.code() & 0xff);
    }
    let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    let code: i32 = sqlite.code()?.parse().ok()?;
    Some(code & 0xff)
}

/// The SQLSTATE of an error, if it is a PostgreSQL error.
fn pg_code(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    Some(pg.code().to_string())
}

const SQLITE_READONLY: i32 = 8;
const SQLITE_CANTOPEN: i32 = 14;

/// A write refused because the database is read-only.
pub(crate) fn is_read_only(e: &sqlx::Error) -> bool {
    sqlite_code(e) == Some(SQLITE_READONLY) || pg_code(e).as_deref() == Some("25006")
}

/// The database file cannot be opened at all (SQLite).
pub(crate) fn is_cant_open(e: &sqlx::Error) -> bool {
    sqlite_code(e) == Some(SQLITE_CANTOPEN)
}

/// The database cannot be reached: network, pool, server shutting down.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => {
            is_cant_open(e)
                || pg_code(e).is_some_and(|c| {
                    c.starts_with("08") || matches!(c.as_str(), "57P01" | "57P02" | "57P03")
                })
        }
    }
}
