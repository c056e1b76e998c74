//! Each backend's schema, embedded from its own `migrations/` directory at
//! compile time and applied when a store opens.
//!
//! A read-only database cannot be migrated; it is still opened, for reading,
//! when it already has every migration this build knows.

use sqlx::migrate::{Migrate, MigrateError, Migrator};

use crate::error::is_read_only;
use crate::{DbUrl, StoreError};

/// The SQLite schema (`migrations/sqlite`).
pub(crate) static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// The PostgreSQL schema (`migrations/postgres`).
pub(crate) static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Applies the pending migrations; on a database that refuses writes,
/// checks instead that none is pending. A migration that fails because
/// another process is applying the same migrations at the same moment (two
/// `golive` commands opening a fresh SQLite file together) is retried: the
/// next pass skips what the other process applied.
pub(crate) async fn apply<C: Migrate>(
    migrator: &Migrator,
    conn: &mut C,
    url: &DbUrl,
) -> Result<(), StoreError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let err = match migrator.run_direct(conn).await {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        let refused = matches!(&err, MigrateError::Execute(e) if is_read_only(e));
        let raced = matches!(
            &err,
            MigrateError::Execute(_) | MigrateError::ExecuteMigration(..)
        );
        if (refused || raced) && all_applied(migrator, conn).await {
            return Ok(());
        }
        if refused || !raced || attempts >= 20 {
            return Err(StoreError::Migration {
                url: url.clone(),
                source: err,
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

async fn all_applied<C: Migrate>(migrator: &Migrator, conn: &mut C) -> bool {
    let Ok(applied) = conn.list_applied_migrations().await else {
        return false;
    };
    migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| {
            applied
                .iter()
                .any(|a| a.version == m.version && a.checksum == m.checksum)
        })
}
