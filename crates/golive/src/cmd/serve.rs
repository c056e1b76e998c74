//! `golive serve`: the war-room server (see the golive-server crate) on the
//! journal the other commands use, until SIGTERM or SIGINT.

use std::process::ExitCode;

use anyhow::Result;
use golive_server::ServerConfig;

use crate::cli::ServeArgs;
use crate::cmd::journal;

pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    let file = match &args.config {
        Some(path) => golive_server::config::load(path)?,
        None => golive_server::config::Settings::default(),
    };
    journal::runtime()?.block_on(async {
        // --db, then GOLIVE_DATABASE_URL, then the file, then the default.
        let env_set = std::env::var(golive_store::DATABASE_URL_ENV).is_ok_and(|v| !v.is_empty());
        let store = match (&args.store.db, &file.database) {
            (None, Some(db)) if !env_set => golive_store::open(&db.0).await?,
            _ => journal::open_db(args.store.db.as_deref()).await?,
        };
        let defaults = ServerConfig::default();
        let config = ServerConfig {
            listen: args.listen.or(file.listen).unwrap_or(defaults.listen),
            cors_origins: if args.cors_origins.is_empty() {
                file.cors_origins.clone().unwrap_or_default()
            } else {
                args.cors_origins.clone()
            },
            flags_refresh: args
                .flags_refresh
                .or(file.flags_refresh)
                .unwrap_or(defaults.flags_refresh),
            lease_ttl: args
                .lease_ttl
                .or(file.lease_ttl)
                .unwrap_or(defaults.lease_ttl),
            auth_failure_limit: file
                .auth_failure_limit
                .unwrap_or(defaults.auth_failure_limit),
            metrics_need_token: args.metrics_need_token
                || file
                    .metrics_need_token
                    .unwrap_or(defaults.metrics_need_token),
            allow_api_commands: args.allow_api_commands
                || file
                    .allow_api_commands
                    .unwrap_or(defaults.allow_api_commands),
            plan_env: if args.plan_env.is_empty() {
                file.plan_env.clone().unwrap_or_default()
            } else {
                args.plan_env.clone()
            },
            max_connections: file.max_connections.unwrap_or(defaults.max_connections),
            header_read_timeout: file
                .header_read_timeout
                .unwrap_or(defaults.header_read_timeout),
            idle_timeout: file.idle_timeout.unwrap_or(defaults.idle_timeout),
            db_retry: golive_store::RetryPolicy::from_env().map_err(anyhow::Error::msg)?,
            ..defaults
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
