//! `GET /api/audit`: the audit log of every mutation (who, from where, what,
//! when, before and after), filtered and paged; and the token routes, whose
//! changes it records.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use golive_store::{AuditEntry, AuditFilter, NewToken, Store};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{self, AdminToken, Authed, OperatorToken, Role};
use crate::body::JsonBody;
use crate::error::{ApiError, clip};
use crate::state::AppState;

/// Filters of `GET /api/audit`; all optional, combined with AND.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct AuditQuery {
    /// Only this actor (a token's name, a person, an engine).
    pub actor: Option<String>,
    /// Only actions starting with this, e.g. `flag.` or `item.approved`.
    pub action: Option<String>,
    /// Only this target: a flag's key, a run's id, a token's id.
    pub target: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only entries after this seq (for paging forward).
    pub after: Option<i64>,
    /// Only entries before this seq (for paging back with `order=newest`).
    pub before: Option<i64>,
    /// `newest` for the newest entries first (default `oldest`).
    pub order: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// `GET /api/audit`, oldest first (or `order=newest`).
pub async fn list(
    State(state): State<AppState>,
    _: OperatorToken,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let since = match q.since.as_deref() {
        Some(s) => Some(s.parse::<Timestamp>().map_err(|e| {
            ApiError::invalid(format!("since: `{}` is not an RFC 3339 time: {e}", clip(s)))
        })?),
        None => None,
    };
    let newest_first = match q.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "order: `{}` is neither `oldest` nor `newest`",
                clip(other)
            )));
        }
    };
    let filter = AuditFilter {
        actor: q.actor,
        action_prefix: q.action,
        target: q.target,
        since,
        after_seq: q.after.unwrap_or(0),
        before_seq: q.before,
        newest_first,
        limit: q.limit.unwrap_or(100).min(1000),
    };
    Ok(Json(state.store().audit(&filter).await?))
}

/// `POST /api/tokens` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// Who or what holds it (a person for sign-off roles).
    pub name: String,
    /// viewer, operator, admin, or a plan's sign-off role.
    pub role: String,
    /// Lifetime, e.g. `30d`, `12h` (default: no expiry).
    pub expires: Option<String>,
}

/// `POST /api/tokens`: the token text is in the answer, once.
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): AdminToken,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<Response, ApiError> {
    let (token, record) = create_token(
        state.store(),
        &body.name,
        &body.role,
        body.expires.as_deref(),
        &caller.actor(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "id": record.id, "name": record.name, "role": record.role, "expires_at": record.expires_at })),
    )
        .into_response())
}

/// Makes and stores a token; returns its text (shown once) and record.
/// Shared by the API and `golive token create`.
pub async fn create_token<S: Store>(
    store: &S,
    name: &str,
    role: &str,
    expires: Option<&str>,
    actor: &golive_store::Actor,
) -> Result<(String, golive_store::TokenRecord), ApiError> {
    if name.trim().is_empty() || name.len() > 128 {
        return Err(ApiError::invalid("name: 1 to 128 characters"));
    }
    // The name is who answered in the journal, the audit log and the
    // record: a line break or escape sequence there would forge lines.
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name: no control characters (line breaks, tabs, escapes)",
        ));
    }
    Role::parse(role).map_err(ApiError::invalid)?;
    let expires_at = match expires {
        Some(text) => {
            let d = golive_plan::time::parse_duration(text)
                .map_err(|e| ApiError::invalid(format!("expires: {e}")))?;
            let span = jiff::SignedDuration::try_from(d)
                .map_err(|e| ApiError::invalid(format!("expires: {e}")))?;
            Some(
                Timestamp::now()
                    .checked_add(span)
                    .map_err(|e| ApiError::invalid(format!("expires: {e}")))?,
            )
        }
        None => None,
    };
    let secret =
        auth::generate().map_err(|e| ApiError::internal(format!("no random source: {e}")))?;
    let record = store
        .create_token(
            &NewToken {
                id: secret.id.clone(),
                name: name.to_string(),
                role: role.to_string(),
                secret_sha256: secret.sha256.clone(),
                expires_at,
            },
            actor,
        )
        .await?;
    Ok((secret.token, record))
}

/// `GET /api/tokens` (never the secrets).
pub async fn list_tokens(
    State(state): State<AppState>,
    _: AdminToken,
) -> Result<Json<Vec<golive_store::TokenRecord>>, ApiError> {
    Ok(Json(state.store().list_tokens().await?))
}

/// `DELETE /api/tokens/{id}`: revoke.
pub async fn revoke(
    State(state): State<AppState>,
    Authed(caller): AdminToken,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store().revoke_token(&id, &caller.actor()).await? {
        state.auth.forget(&id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no live token `{}`",
            clip(&id)
        )))
    }
}
