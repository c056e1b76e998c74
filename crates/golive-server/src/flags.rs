//! Feature flags: the in-memory copy every evaluation reads, and the admin
//! API that changes them.
//!
//! The store is the truth; each server keeps a parsed snapshot, swapped
//! whole. A change made here refreshes it at once; changes made by another
//! server sharing the database are picked up by [`poll`], which compares the
//! store's flag revision every `flags_refresh` (1 s by default), so two
//! servers agree within that time.
//!
//! The admin API takes the shape go-live documents already use:
//! `POST /api/admin/feature-flags {"flag": "maintenance_mode", "enabled": true,
//! "percentage": 5}` creates the flag, or, when it exists, changes only the
//! fields given (so `{"flag": "x", "enabled": false}` turns it off and keeps
//! its rollout). `PUT` replaces, `PATCH` merges, `DELETE` removes (admin).
//! Every change is audited with who, from where, why (`reason` in the body
//! or `X-Golive-Reason`), before and after. `If-Match: VERSION` makes a
//! change conditional; merges retry on a concurrent change so none is lost.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use golive_engine::answers;
use golive_flags::{Flag, FlagKey};
use golive_store::flags::{self as flagstore, FlagWriteError};
use golive_store::{Actor, FlagRecord, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{AdminToken, AnyToken, Authed, OperatorToken};
use crate::body::JsonBody;
use crate::error::{ApiError, clip};
use crate::state::AppState;

/// The parsed flags at one store revision.
#[derive(Default)]
pub struct Snapshot {
    /// The store's flag revision this was read at.
    pub revision: i64,
    /// The flags that parse, by key.
    pub flags: BTreeMap<String, Arc<Flag>>,
    /// Stored definitions that do not parse (written by a newer golive?),
    /// by key, with why: evaluated as a general error, never guessed.
    pub broken: BTreeMap<String, String>,
}

/// The current [`Snapshot`], swapped whole.
#[derive(Default)]
pub struct FlagCache {
    current: RwLock<Arc<Snapshot>>,
}

impl FlagCache {
    /// The snapshot evaluations read.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads from the store if its revision moved (or `force`).
    pub async fn refresh<S: Store>(&self, store: &S, force: bool) -> Result<(), StoreError> {
        let revision = store.flags_revision().await?;
        if !force && revision == self.snapshot().revision {
            return Ok(());
        }
        let records = store.list_flags().await?;
        let mut next = Snapshot {
            revision,
            ..Snapshot::default()
        };
        for record in records {
            match Flag::from_json(&record.definition) {
                Ok(flag) => {
                    next.flags.insert(record.key, Arc::new(flag));
                }
                Err(e) => {
                    next.broken.insert(record.key, e.to_string());
                }
            }
        }
        let mut current = match self.current.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        // A slower refresh must not replace a newer snapshot.
        if next.revision >= current.revision {
            *current = Arc::new(next);
        }
        Ok(())
    }
}

/// Keeps the cache in step with the store until the server stops.
pub async fn poll(state: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = state.stop.subscribe();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = state.flags.refresh(state.store(), false).await {
            tracing::warn!(error = %e, "cannot refresh flags");
        }
    }
}

/// A flag as the admin API shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FlagView {
    /// The definition, in its canonical form.
    #[schemars(with = "Map<String, Value>")]
    pub definition: Value,
    /// Grows by one per change; send it back as `If-Match`.
    pub version: i64,
    /// When it was last changed (RFC 3339).
    pub updated_at: String,
    /// Who changed it last.
    pub updated_by: String,
}

impl From<FlagRecord> for FlagView {
    fn from(r: FlagRecord) -> Self {
        FlagView {
            definition: r.definition,
            version: r.version,
            updated_at: r.updated_at.to_string(),
            updated_by: r.updated_by,
        }
    }
}

/// `?reason=` for `DELETE`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ReasonQuery {
    /// Why, for the audit log.
    pub reason: Option<String>,
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("").trim().trim_matches('"');
    text.parse::<i64>().map(Some).map_err(|_| {
        ApiError::invalid(format!(
            "If-Match must be a flag version (a number), got `{}`",
            clip(text)
        ))
    })
}

/// Splits `reason` (body or header) from a flag body.
fn take_reason(body: &mut Value, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let from_body = match body.as_object_mut() {
        Some(map) => match map.remove("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(ApiError::invalid("reason: must be a string")),
        },
        None => return Err(ApiError::invalid("the body must be a JSON object")),
    };
    bounded_reason(from_body.or_else(|| header_reason(headers)))
}

fn header_reason(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-golive-reason")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A reason as long as people's answers may give one.
fn bounded_reason(reason: Option<String>) -> Result<Option<String>, ApiError> {
    if let Some(r) = &reason {
        answers::bounded("the reason", r, answers::limits::NOTE)?;
    }
    Ok(reason)
}

fn flag_error(e: golive_flags::FlagError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_flag",
        e.to_string(),
    )
}

/// Writes a flag and refreshes this server's snapshot.
async fn write(
    state: &AppState,
    flag: &Flag,
    expected: Option<i64>,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<FlagRecord, StoreError> {
    let record = state
        .store()
        .put_flag(
            flag.key().as_str(),
            &flag.to_json(),
            expected,
            actor,
            reason,
        )
        .await?;
    refreshed(state).await;
    Ok(record)
}

async fn refreshed(state: &AppState) {
    if let Err(e) = state.flags.refresh(state.store(), true).await {
        tracing::warn!(error = %e, "cannot refresh flags");
    }
}

/// Merges `patch` into a stored flag (see
/// `golive_store::flags::upsert`), answering as the API does.
pub async fn upsert<S: Store>(
    store: &S,
    key: &FlagKey,
    patch: &Value,
    expected: Option<i64>,
    create: bool,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<(FlagRecord, bool), ApiError> {
    flagstore::upsert(store, key, patch, expected, create, actor, reason)
        .await
        .map_err(|e| match e {
            FlagWriteError::Invalid(e) => flag_error(e),
            FlagWriteError::NotFound(_) => ApiError::not_found(e.to_string()),
            FlagWriteError::VersionMismatch(m) => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "version_mismatch", m)
            }
            FlagWriteError::KeptChanging(_) => ApiError::conflict(e.to_string()),
            FlagWriteError::Store(e) => e.into(),
        })
}

/// Parses a flag key, refusing a bad one with why.
pub fn parse_key(raw: &str) -> Result<FlagKey, ApiError> {
    raw.parse::<FlagKey>()
        .map_err(|e| ApiError::invalid(format!("flag key `{}`: {e}", clip(raw))))
}

/// `GET /api/admin/feature-flags`
pub async fn list(
    State(state): State<AppState>,
    _: AnyToken,
) -> Result<Json<Vec<FlagView>>, ApiError> {
    let records = state.store().list_flags().await?;
    Ok(Json(records.into_iter().map(FlagView::from).collect()))
}

/// `GET /api/admin/feature-flags/{key}`
pub async fn get(
    State(state): State<AppState>,
    _: AnyToken,
    Path(raw): Path<String>,
) -> Result<Json<FlagView>, ApiError> {
    let key = parse_key(&raw)?;
    match state.store().get_flag(key.as_str()).await? {
        Some(r) => Ok(Json(r.into())),
        None => Err(ApiError::not_found(format!("no flag `{key}`"))),
    }
}

/// `POST /api/admin/feature-flags`: create, or merge into an existing flag.
pub async fn post(
    State(state): State<AppState>,
    Authed(caller): OperatorToken,
    headers: HeaderMap,
    JsonBody(mut body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let reason = take_reason(&mut body, &headers)?;
    let raw = body
        .get("flag")
        .or_else(|| body.get("key"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("flag: required (the flag's key)"))?
        .to_string();
    let key = parse_key(&raw)?;
    let (record, created) = upsert(
        state.store(),
        &key,
        &body,
        if_match(&headers)?,
        true,
        &caller.actor(),
        reason.as_deref(),
    )
    .await?;
    refreshed(&state).await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(FlagView::from(record))).into_response())
}

/// `PUT /api/admin/feature-flags/{key}`: replace.
pub async fn put(
    State(state): State<AppState>,
    Authed(caller): OperatorToken,
    Path(raw): Path<String>,
    headers: HeaderMap,
    JsonBody(mut body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let reason = take_reason(&mut body, &headers)?;
    let key = parse_key(&raw)?;
    if let Some(map) = body.as_object_mut() {
        let named = map.get("flag").or_else(|| map.get("key")).cloned();
        match named {
            Some(Value::String(k)) if k != key.as_str() => {
                return Err(ApiError::invalid(format!(
                    "flag: the body names `{}` but the path names `{key}`",
                    clip(&k)
                )));
            }
            Some(_) => {}
            None => {
                map.insert("flag".into(), Value::String(key.to_string()));
            }
        }
    }
    let flag = Flag::from_json(&body).map_err(flag_error)?;
    let record = match write(
        &state,
        &flag,
        if_match(&headers)?,
        &caller.actor(),
        reason.as_deref(),
    )
    .await
    {
        Ok(r) => r,
        Err(StoreError::Conflict(m)) => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "version_mismatch",
                m,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let status = if record.version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(FlagView::from(record))).into_response())
}

/// `PATCH /api/admin/feature-flags/{key}`: merge the fields given.
pub async fn patch(
    State(state): State<AppState>,
    Authed(caller): OperatorToken,
    Path(raw): Path<String>,
    headers: HeaderMap,
    JsonBody(mut body): JsonBody<Value>,
) -> Result<Json<FlagView>, ApiError> {
    let reason = take_reason(&mut body, &headers)?;
    let key = parse_key(&raw)?;
    let (record, _) = upsert(
        state.store(),
        &key,
        &body,
        if_match(&headers)?,
        false,
        &caller.actor(),
        reason.as_deref(),
    )
    .await?;
    refreshed(&state).await;
    Ok(Json(record.into()))
}

/// `DELETE /api/admin/feature-flags/{key}`
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): AdminToken,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ReasonQuery>,
) -> Result<StatusCode, ApiError> {
    let key = parse_key(&raw)?;
    let reason = bounded_reason(q.reason.or_else(|| header_reason(&headers)))?;
    if !state
        .store()
        .delete_flag(key.as_str(), &caller.actor(), reason.as_deref())
        .await?
    {
        return Err(ApiError::not_found(format!("no flag `{key}`")));
    }
    refreshed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
