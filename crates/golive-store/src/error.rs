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
    /// The URL names no backend golive has.
    #[error("unsupported database URL `{url}`: {reason}")]
    BadUrl {
        /// The URL (password hidden).
        url: DbUrl,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored value golive cannot read back (an unknown status, say).
    #[error("the database holds a value golive cannot read: {0}")]
    Corrupt(String),
    /// The operating system gave no random bytes for a run id.
    #[error("no random source for a run id")]
    Random(#[source] getrandom::Error),
    /// Any other database error.
    #[error(transparent)]
    Backend(sqlx::Error),
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
            other => other,
        }
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
