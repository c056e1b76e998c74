//! Opening the journal for the run commands, the same way everywhere:
//! `--db PATH` (SQLite), else `$GOLIVE_DATABASE_URL`, else the per-user
//! SQLite file. Also the run lookups `status` and `report` share.

use anyhow::{Context, Result, bail};
use golive_store::{AnyStore, DATABASE_URL_ENV, Run, RunId, Store, StoreError};

use crate::cli::StoreArgs;

/// A multi-threaded runtime for a command that talks to the journal.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Engines run as tasks on worker threads (`golive serve`); debug
        // builds make their futures' frames large.
        .thread_stack_size(8 << 20)
        .build()
        .context("cannot start the async runtime")
}

/// Opens (creating and migrating as needed) the selected journal.
pub async fn open(args: &StoreArgs) -> Result<AnyStore> {
    open_db(args.db.as_deref()).await
}

/// Opens the selected journal for reading only: a SQLite journal that does
/// not exist is an error, and nothing (file or directory) is created.
pub async fn open_existing(args: &StoreArgs) -> Result<AnyStore> {
    let url = url(args.db.as_deref())?;
    if let Some(path) = sqlite_path(&url)
        && !path.exists()
    {
        bail!(
            "no runs: there is no journal at {} (pass --db PATH or set {DATABASE_URL_ENV} to read another)",
            path.display()
        );
    }
    Ok(golive_store::open(&url).await?)
}

/// Opens the journal at `--db PATH`, else as [`open`] does.
pub async fn open_db(db: Option<&std::path::Path>) -> Result<AnyStore> {
    let url = url(db)?;
    install_supervisor(&url);
    Ok(golive_store::open(&url).await?)
}

/// The selected journal's URL: `--db PATH`, else `$GOLIVE_DATABASE_URL`,
/// else the per-user SQLite file.
fn url(db: Option<&std::path::Path>) -> Result<String> {
    Ok(match (db, std::env::var(DATABASE_URL_ENV)) {
        (Some(path), _) => path.display().to_string(),
        (None, Ok(url)) if !url.is_empty() => url,
        (None, _) => golive_store::default_sqlite_path()
            .context("no journal: pass --db PATH or set GOLIVE_DATABASE_URL (HOME is not set)")?
            .display()
            .to_string(),
    })
}

/// The file of a SQLite journal URL (`sqlite://PATH`, `sqlite:PATH` or a
/// plain path); `None` for PostgreSQL.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return None;
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    Some(std::path::absolute(path).unwrap_or_else(|_| path.into()))
}

/// Commands run by this process are supervised by golive itself, with
/// their records beside a SQLite journal (`JOURNAL.supervise/`) or, for
/// PostgreSQL, in the per-user data directory (`golive/supervise/`):
/// reattaching is only possible on the host that ran the command anyway.
/// Nothing is created until a command runs.
fn install_supervisor(url: &str) {
    let Ok(program) = std::env::current_exe() else {
        return;
    };
    let dir = match sqlite_path(url) {
        Some(path) => std::path::PathBuf::from(format!("{}.supervise", path.display())),
        None => match golive_store::default_sqlite_path() {
            Some(p) => p.with_file_name("supervise"),
            None => return,
        },
    };
    golive_engine::supervise::install(golive_engine::supervise::Supervisor { program, dir });
}

/// The run, or a clear error naming the journal.
/// The given run, or the newest in the journal when none is given.
pub async fn run_or_newest(store: &AnyStore, run: Option<&RunId>) -> Result<RunId> {
    match run {
        Some(id) => Ok(id.clone()),
        None => store
            .list_runs(1)
            .await?
            .into_iter()
            .next()
            .map(|r| r.id)
            .with_context(|| format!("no runs in the journal at {}", store.url())),
    }
}

pub async fn get_run(store: &AnyStore, run: &RunId) -> Result<Run> {
    match store.get_run(run).await {
        Ok(r) => Ok(r),
        Err(StoreError::NotFound(_)) => {
            bail!("no run {run} in the journal at {}", store.url())
        }
        Err(e) => Err(e.into()),
    }
}
