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
//! - this file: the router (built from the route table), the request
//!   middleware (request ids and log spans, metrics, JSON errors, CORS) and
//!   [`serve`] with its graceful shutdown.
//! - `conn`: accepting connections: timeouts, a cap, room made for new
//!   clients by closing the longest-idle connections.
//! - `state`: [`AppState`] and [`ServerConfig`]; [`config`]: the settings
//!   file.
//! - [`auth`]: tokens, roles, the extractors that check them, the limit on
//!   refused tokens.
//! - `flags`: the in-memory flags and the admin API; `ofrep`: evaluation.
//! - `runs`: runs, answers, reports, and runs executing in the server.
//! - `alertmanager`: Alertmanager's webhook, whose alerts open incidents
//!   in the runs in their watch window.
//! - [`audit`]: the audit log and the token routes.
//! - [`statuspage`]: the public status page and its Statuspage-compatible
//!   JSON.
//! - `web`: the war room in a browser (`/ui`: one page and its embedded
//!   script and style), `/api/whoami` and a run's outline.
//! - `events`: Server-Sent Events. `health`: health, readiness, metrics
//!   (`metrics` keeps the counters). [`openapi`]: the route table and the
//!   document built from it, and the router too. `error`: the one error
//!   shape.
//!
//! Logs go through `tracing` (key/value fields; each request's lines carry
//! its `request_id`); the binary chooses text or JSON.

#![deny(missing_docs)]

mod alertmanager;
pub mod audit;
pub mod auth;
mod body;
pub mod config;
mod conn;
mod error;
mod events;
pub mod flags;
mod health;
mod metrics;
mod ofrep;
pub mod openapi;
mod runs;
mod state;
pub mod statuspage;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use golive_store::{AnyStore, Store, StoreError};
use tokio::net::TcpListener;
use tracing::Instrument;

pub use conn::raise_file_limit;
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

/// The router over `state`, built from the route table
/// ([`openapi::ROUTES`]) that also builds the OpenAPI document.
pub fn router(state: AppState) -> Router {
    let mut api = Router::new();
    for r in openapi::ROUTES {
        // Every method in the table is a standard one (tested).
        if let Some(filter) = r.filter() {
            api = api.route(r.path, (r.handler)(filter));
        }
    }
    api.fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// The id of a request: the client's `x-request-id` when it is a sane one
/// (1 to 64 of `[A-Za-z0-9._-]`), else a new random one. It is in the
/// response's `x-request-id` and in every log line of the request.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl RequestId {
    fn of(request: &Request) -> RequestId {
        let given = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        RequestId(match given {
            Some(id) => id.to_string(),
            None => {
                let mut bytes = [0u8; 8];
                // Without randomness, ids are still unique in this process.
                if getrandom::fill(&mut bytes).is_err() {
                    static NEXT: AtomicU64 = AtomicU64::new(1);
                    bytes = NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
                }
                bytes.iter().map(|b| format!("{b:02x}")).collect()
            }
        })
    }
}

const REQUEST_ID: &str = "x-request-id";

/// The shortest header-read and idle timeouts honoured.
const MIN_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

/// Gives every request an id and a log span, counts and times it by its
/// route, answers every refusal in the one JSON error shape, and applies
/// CORS: no cross-origin access unless the origin is configured.
async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().clone();
    let id = RequestId::of(&request);
    let span = tracing::info_span!("request", request_id = %id.0, method = %method, route = %route);
    request.extensions_mut().insert(id.clone());
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| state.config.cors_origins.iter().any(|a| a == o))
        .map(str::to_string);
    let mut response = if method == Method::OPTIONS && origin.is_some() {
        StatusCode::NO_CONTENT.into_response()
    } else if let Some(refusal) = span.in_scope(|| refused_head(&request)) {
        refusal.into_response()
    } else {
        let response = next.run(request).instrument(span.clone()).await;
        error::json_errors(response).await
    };
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    if let Some(origin) = origin.and_then(|o| HeaderValue::from_str(&o).ok()) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "authorization, content-type, x-api-key, if-match, if-none-match, x-golive-reason, x-request-id",
            ),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("etag, x-request-id"),
        );
    }
    let status = response.status().as_u16();
    let took = started.elapsed();
    span.in_scope(|| {
        tracing::debug!(
            status,
            took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            "request"
        );
    });
    state.metrics.request(&route, method.as_str(), status, took);
    response
}

/// The longest request target (path and query) answered, in bytes.
pub const MAX_URI: usize = 8 * 1024;
/// The most header bytes (names and values) a request may send.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// A request head refused before any handler sees it, in the one JSON
/// shape: a target or headers too long (hyper refuses only far larger
/// ones — about 400 KiB of head, or more than 100 headers — and answers
/// those itself, without a body: see docs/design/server.md), and a
/// percent-encoded NUL in the path or query, which no id, key or filter
/// contains and PostgreSQL could not store.
fn refused_head(request: &Request) -> Option<ApiError> {
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("");
    if target.len() > MAX_URI {
        tracing::debug!(bytes = target.len(), "request target too long");
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "too_large",
            format!("the request target is longer than {MAX_URI} bytes"),
        ));
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        tracing::debug!(bytes = header_bytes, "request headers too large");
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too_large",
            format!("the request's headers are larger than {MAX_HEADER_BYTES} bytes"),
        ));
    }
    if target.contains("%00") {
        return Some(ApiError::invalid(body::NUL_MESSAGE));
    }
    None
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
    let file_limit = conn::raise_file_limit();
    // Plans run here are submitted and read by others: the server's own
    // environment is not theirs to see or hand to commands.
    golive_runtime::host_env::isolate(&config.plan_env);
    let state = AppState::new(store, config);
    state.flags.refresh(state.store(), true).await?;
    let poller = tokio::spawn(flags::poll(state.clone(), state.config.flags_refresh));
    let addr = listener.local_addr()?;
    let limits = conn::Limits {
        // Each connection holds a file; keep some for the journal, the
        // commands runs start, and accepting the next connection.
        max_connections: match file_limit {
            Some(files) => state
                .config
                .max_connections
                .min(usize::try_from(files.saturating_sub(256).max(16)).unwrap_or(usize::MAX)),
            None => state.config.max_connections,
        }
        .max(1),
        // Zero would close every connection at once.
        header_read_timeout: state.config.header_read_timeout.max(MIN_TIMEOUT),
        idle_timeout: state.config.idle_timeout.max(MIN_TIMEOUT),
    };
    tracing::info!(
        %addr,
        journal = %state.store().url(),
        max_connections = limits.max_connections,
        "golive serve: listening on http://{addr}"
    );
    match runs::resume_interrupted(&state).await {
        Ok(ids) if !ids.is_empty() => {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            tracing::info!(
                runs = %ids.join(","),
                "golive serve: resuming runs stopped by a shutdown: {}",
                ids.join(", ")
            );
        }
        Ok(_) => {}
        Err(e) => tracing::error!(
            error = %e.log_text(),
            "golive serve: cannot resume interrupted runs"
        ),
    }
    let adopter = tokio::spawn(runs::adopt_loop(state.clone()));
    let stop = state.stop.clone();
    let signalled = tokio::spawn(async move {
        let signal = shutdown.await;
        tracing::info!(signal, "golive serve: stopping (signal {signal})");
        let _ = stop.send(Some(signal));
    });
    conn::serve(
        listener,
        router(state.clone()),
        limits,
        state.stop.subscribe(),
    )
    .await;
    signalled.abort();
    adopter.abort();
    // Let the runs record where they stopped before the store closes.
    let mut runs = match state.runs.lock() {
        Ok(mut r) => std::mem::take(&mut *r),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    while runs.join_next().await.is_some() {}
    poller.abort();
    state.store().close().await;
    Ok(())
}
