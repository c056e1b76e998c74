//! `golive serve`: the war-room server (see the golive-server crate) on the
//! journal the other commands use, until SIGTERM or SIGINT.

use std::process::ExitCode;

use anyhow::Result;
use golive_server::ServerConfig;

use crate::cli::ServeArgs;
use crate::cmd::journal;

pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let store = journal::open_db(args.store.db.as_deref()).await?;
        let config = ServerConfig {
            listen: args.listen,
            cors_origins: args.cors_origins.clone(),
            flags_refresh: args.flags_refresh,
            lease_ttl: args.lease_ttl,
            ..ServerConfig::default()
        };
        let shutdown = shutdown_signal()?;
        golive_server::serve(store, config, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves to the number of the first SIGTERM or SIGINT.
fn shutdown_signal() -> Result<impl std::future::Future<Output = i32> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => 2,
            _ = term.recv() => 15,
        }
    })
}
