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

/// Opens the journal at `--db PATH`, else as [`open`] does.
pub async fn open_db(db: Option<&std::path::Path>) -> Result<AnyStore> {
    let url = match (db, std::env::var(DATABASE_URL_ENV)) {
        (Some(path), _) => path.display().to_string(),
        (None, Ok(url)) if !url.is_empty() => url,
        (None, _) => golive_store::default_sqlite_path()
            .context("no journal: pass --db PATH or set GOLIVE_DATABASE_URL (HOME is not set)")?
            .display()
            .to_string(),
    };
    Ok(golive_store::open(&url).await?)
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
