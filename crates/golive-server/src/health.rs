//! The server's own health: `/health` (the process answers), `/ready` (the
//! store answers, its migrations applied — they are applied or checked when
//! it opens — and the flags loaded), `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use golive_store::Store;
use serde_json::json;

use crate::auth::MaybeToken;
use crate::error::ApiError;
use crate::runs;
use crate::state::AppState;

/// `GET /health`: liveness; touches nothing.
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when the store answers, else 503 with why.
pub async fn ready(State(state): State<AppState>) -> Response {
    let checks = async {
        state.store().list_runs(1).await?;
        state.store().flags_revision().await
    };
    match checks.await {
        Ok(revision) => {
            Json(json!({ "status": "ready", "flags_revision": revision })).into_response()
        }
        Err(e) => {
            // Public route: the cause (hosts, paths) only in the log.
            tracing::warn!(error = %e, "not ready: the journal does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "error": "the journal does not answer; see the server log" })),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: flag names only with a token; nothing without one when
/// `metrics_need_token` is set.
pub async fn metrics(State(state): State<AppState>, MaybeToken(caller): MaybeToken) -> Response {
    if caller.is_none() && state.config.metrics_need_token {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server's /metrics needs a token: send `Authorization: Bearer TOKEN`",
        )
        .into_response();
    }
    match runs::counts(&state).await {
        Ok((by_run, by_item)) => {
            state.metrics.runs.clear();
            state.metrics.items.clear();
            for (status, n) in by_run {
                state
                    .metrics
                    .runs
                    .get_or_create(&crate::metrics::StateLabels { state: status })
                    .set(n);
            }
            for (status, n) in by_item {
                state
                    .metrics
                    .items
                    .get_or_create(&crate::metrics::StateLabels { state: status })
                    .set(n);
            }
        }
        Err(e) => tracing::warn!(error = %e.log_text(), "/metrics cannot count runs"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(caller.is_some()),
    )
        .into_response()
}
