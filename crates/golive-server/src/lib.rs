//! `golive serve`: the war-room server.
//!
//! A JSON API over the journal (runs, people's answers, reports), feature
//! flags with an admin API and OpenFeature's OFREP evaluation, role-based
//! API tokens, an audit log of every mutation, a live event stream, and the
//! server's own `/health`, `/ready` and `/metrics`. Several servers may
//! share one PostgreSQL: flags are re-read when the store's flag revision
//! moves, and a run is executed by one process at a time (the run's lease).
//!
//! # Layout
//! - this file: the router, the request middleware (metrics, CORS) and
//!   [`serve`] with its graceful shutdown.
//! - `state`: [`AppState`] and [`ServerConfig`]; [`config`]: the settings
//!   file.
//! - [`auth`]: tokens, roles, the extractors that check them, the limit on
//!   refused tokens.
//! - `flags`: the in-memory flags and the admin API; `ofrep`: evaluation.
//! - `runs`: runs, answers, reports, and runs executing in the server.
//! - [`audit`]: the audit log and the token routes.
//! - `events`: Server-Sent Events. `health`: health, readiness, metrics
//!   (`metrics` keeps the counters). [`openapi`]: the route table and the
//!   document built from it. `error`: the one error shape.

#![deny(missing_docs)]

pub mod audit;
pub mod auth;
pub mod config;
mod error;
mod events;
pub mod flags;
mod health;
mod metrics;
mod ofrep;
pub mod openapi;
mod runs;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use golive_store::{AnyStore, Store, StoreError};
use tokio::net::TcpListener;

pub use error::ApiError;
pub use golive_flags;
pub use state::{AppState, ServerConfig};

/// Why the server could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed at start.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Serving failed.
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The router over `state`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/api/runs", get(runs::list).post(runs::start))
        .route("/api/runs/{run}", get(runs::get))
        .route("/api/runs/{run}/status", get(runs::status))
        .route("/api/runs/{run}/events", get(runs::events))
        .route("/api/runs/{run}/report", get(runs::report))
        .route("/api/runs/{run}/resume", post(runs::resume))
        .route("/api/runs/{run}/rollback", post(runs::rollback))
        .route("/api/runs/{run}/promote", post(runs::steer_rollout))
        .route("/api/runs/{run}/pause", post(runs::steer_rollout))
        .route("/api/runs/{run}/resume-rollout", post(runs::steer_rollout))
        .route("/api/runs/{run}/abort", post(runs::steer_rollout))
        .route("/api/runs/{run}/items/{item}/confirm", post(runs::confirm))
        .route("/api/runs/{run}/items/{item}/approve", post(runs::approve))
        .route("/api/runs/{run}/items/{item}/reject", post(runs::reject))
        .route("/api/plans/validate", post(runs::validate))
        .route("/api/audit", get(audit::list))
        .route("/api/events", get(events::stream))
        .route("/api/tokens", get(audit::list_tokens).post(audit::create))
        .route("/api/tokens/{id}", axum::routing::delete(audit::revoke))
        .route(
            "/api/admin/feature-flags",
            get(flags::list).post(flags::post),
        )
        .route(
            "/api/admin/feature-flags/{key}",
            get(flags::get)
                .put(flags::put)
                .patch(flags::patch)
                .delete(flags::delete),
        )
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::evaluate_one))
        .route("/ofrep/v1/evaluate/flags", post(ofrep::evaluate_bulk))
        .route("/ofrep/v1/configuration", get(ofrep::configuration));
    api.layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn openapi_json() -> axum::Json<serde_json::Value> {
    axum::Json(openapi::document())
}

/// Counts and times every request by its route, and applies CORS: no
/// cross-origin access unless the origin is configured.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().clone();
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| state.config.cors_origins.iter().any(|a| a == o))
        .map(str::to_string);
    let mut response = if method == Method::OPTIONS && origin.is_some() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    if let Some(origin) = origin.and_then(|o| HeaderValue::from_str(&o).ok()) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "authorization, content-type, x-api-key, if-match, if-none-match, x-golive-reason",
            ),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("etag"),
        );
    }
    state.metrics.request(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Binds `config.listen` and serves until `shutdown` resolves (to a signal
/// number), then stops cleanly: no new requests, live event streams end,
/// runs executing here stop like `golive run` on SIGTERM (the item under
/// way marked interrupted, the lease released, resumed by the next server),
/// and the store is closed.
pub async fn serve(
    store: AnyStore,
    config: ServerConfig,
    shutdown: impl Future<Output = i32> + Send + 'static,
) -> Result<(), ServerError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    serve_on(listener, store, config, shutdown).await
}

/// [`serve`] on a listener already bound (port 0 in tests).
pub async fn serve_on(
    listener: TcpListener,
    store: AnyStore,
    config: ServerConfig,
    shutdown: impl Future<Output = i32> + Send + 'static,
) -> Result<(), ServerError> {
    let state = AppState::new(store, config);
    state.flags.refresh(state.store(), true).await?;
    let poller = tokio::spawn(flags::poll(state.clone(), state.config.flags_refresh));
    let addr = listener.local_addr()?;
    eprintln!(
        "golive serve: listening on http://{addr} (journal {})",
        state.store().url()
    );
    match runs::resume_interrupted(&state).await {
        Ok(ids) if !ids.is_empty() => {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            eprintln!(
                "golive serve: resuming runs stopped by a shutdown: {}",
                ids.join(", ")
            );
        }
        Ok(_) => {}
        Err(e) => eprintln!(
            "golive serve: cannot resume interrupted runs: {}",
            e.message
        ),
    }
    let adopter = tokio::spawn(runs::adopt_loop(state.clone()));
    let stop = state.stop.clone();
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let signal = shutdown.await;
            eprintln!("golive serve: stopping (signal {signal})");
            let _ = stop.send(Some(signal));
        })
        .await;
    adopter.abort();
    // Let the runs record where they stopped before the store closes.
    let mut runs = match state.runs.lock() {
        Ok(mut r) => std::mem::take(&mut *r),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    while runs.join_next().await.is_some() {}
    poller.abort();
    state.store().close().await;
    result.map_err(ServerError::Io)
}
