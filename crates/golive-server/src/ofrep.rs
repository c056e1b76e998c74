//! OpenFeature's Remote Evaluation Protocol (OFREP v1), so that OpenFeature
//! SDKs and their OFREP providers read golive's flags unchanged.
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}` `{"context": {...}}` → 200
//!   `{key, value, reason, variant, metadata}`, or an error
//!   `{key, errorCode, errorDetails}`: 404 `FLAG_NOT_FOUND`, 400
//!   `TARGETING_KEY_MISSING` / `INVALID_CONTEXT` / `PARSE_ERROR`, 500
//!   `GENERAL`.
//! - `POST /ofrep/v1/evaluate/flags` (bulk) → `{"flags": [...]}` with each
//!   flag's result or error, and an `ETag` that changes when the flags or the
//!   context change; `If-None-Match` with the current one gives 304.
//! - `GET /ofrep/v1/configuration` → what this server supports.
//!
//! Evaluation reads the in-memory snapshot (no store access per request).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use golive_flags::{Context, EvalError, Flag};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::auth::AnyToken;
use crate::error::clip;
use crate::flags::Snapshot;
use crate::state::AppState;

/// OFREP's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// No such flag.
    FlagNotFound,
    /// The flag needs a targeting key (or stickiness attribute).
    TargetingKeyMissing,
    /// The context is not usable.
    InvalidContext,
    /// The request body is not JSON.
    ParseError,
    /// Anything else.
    General,
}

impl ErrorCode {
    /// The protocol's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::General => "GENERAL",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorCode::FlagNotFound => StatusCode::NOT_FOUND,
            ErrorCode::General => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// One flag's answer: a value or an error.
type Outcome = Result<Value, (ErrorCode, String)>;

fn eval_error(e: &EvalError) -> (ErrorCode, String) {
    let code = match e {
        EvalError::TargetingKeyMissing => ErrorCode::TargetingKeyMissing,
        _ => ErrorCode::InvalidContext,
    };
    (code, e.to_string())
}

fn evaluate(flag: &Flag, key: &str, context: &Context) -> Outcome {
    let e = flag.evaluate(context).map_err(|e| eval_error(&e))?;
    let mut out = Map::with_capacity(5);
    out.insert("key".into(), Value::String(key.to_string()));
    out.insert("value".into(), e.value);
    out.insert("reason".into(), Value::String(e.reason.as_str().into()));
    if let Some(v) = e.variant {
        out.insert("variant".into(), Value::String(v));
    }
    out.insert("metadata".into(), json!({}));
    Ok(Value::Object(out))
}

fn one(snapshot: &Snapshot, key: &str, context: &Context) -> Outcome {
    match snapshot.flags.get(key) {
        Some(flag) => evaluate(flag, key, context),
        None => match snapshot.broken.get(key) {
            Some(why) => Err((
                ErrorCode::General,
                format!("flag `{key}` is stored but cannot be read: {why}"),
            )),
            None => Err((
                ErrorCode::FlagNotFound,
                format!("flag `{}` does not exist", clip(key)),
            )),
        },
    }
}

fn error_body(key: Option<&str>, code: ErrorCode, details: &str) -> Value {
    let mut body = json!({ "errorCode": code.as_str(), "errorDetails": details });
    if let (Some(k), Some(map)) = (key, body.as_object_mut()) {
        map.insert("key".into(), Value::String(k.to_string()));
    }
    body
}

/// Parses `{"context": {...}}`; an empty body is an empty context.
fn context_of(body: &Bytes) -> Result<(Context, Value), (ErrorCode, String)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Context::default(), Value::Null));
    }
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| (ErrorCode::ParseError, format!("the body is not JSON: {e}")))?;
    let Value::Object(mut map) = parsed else {
        return Err((
            ErrorCode::ParseError,
            "the body must be a JSON object {\"context\": {...}}".into(),
        ));
    };
    let raw = map.remove("context").unwrap_or(Value::Null);
    if raw.is_null() {
        return Ok((Context::default(), raw));
    }
    let context = Context::from_ofrep(&raw).map_err(|e| eval_error(&e))?;
    Ok((context, raw))
}

fn record(state: &AppState, key: &str, outcome: &Outcome) {
    let result = match outcome {
        Ok(v) => v.get("reason").and_then(Value::as_str).unwrap_or("UNKNOWN"),
        Err((code, _)) => code.as_str(),
    };
    // A key no flag has is counted under one label: clients choose keys,
    // and each would otherwise be a series of its own.
    let flag = match outcome {
        Err((ErrorCode::FlagNotFound, _)) => crate::metrics::UNKNOWN_FLAG,
        _ => key,
    };
    state.metrics.flag_evaluated(flag, result);
}

/// `POST /ofrep/v1/evaluate/flags/{key}`
pub async fn evaluate_one(
    State(state): State<AppState>,
    _: AnyToken,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let outcome = context_of(&body).and_then(|(context, _)| {
        let snapshot = state.flags.snapshot();
        one(&snapshot, &key, &context)
    });
    record(&state, &key, &outcome);
    match outcome {
        Ok(v) => Json(v).into_response(),
        Err((code, details)) => (
            code.status(),
            Json(error_body(Some(&clip(&key)), code, &details)),
        )
            .into_response(),
    }
}

/// `POST /ofrep/v1/evaluate/flags`
pub async fn evaluate_bulk(
    State(state): State<AppState>,
    _: AnyToken,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (context, raw) = match context_of(&body) {
        Ok(c) => c,
        Err((code, details)) => {
            return (code.status(), Json(error_body(None, code, &details))).into_response();
        }
    };
    let snapshot = state.flags.snapshot();
    // The answer depends on the flags (their revision) and the context only.
    let mut digest = Sha256::new();
    digest.update(snapshot.revision.to_le_bytes());
    digest.update(raw.to_string().as_bytes());
    let tag: String = digest.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let etag = format!("\"{}-{tag}\"", snapshot.revision);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let etag_header = HeaderValue::from_str(&etag).ok();
    if matches {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Some(h) = etag_header {
            response.headers_mut().insert(header::ETAG, h);
        }
        return response;
    }
    let keys = snapshot.flags.keys().chain(snapshot.broken.keys());
    let mut flags = Vec::with_capacity(snapshot.flags.len() + snapshot.broken.len());
    for key in keys {
        let outcome = one(&snapshot, key, &context);
        record(&state, key, &outcome);
        flags.push(match outcome {
            Ok(v) => v,
            Err((code, details)) => error_body(Some(key), code, &details),
        });
    }
    let mut response = Json(json!({ "flags": flags })).into_response();
    if let Some(h) = etag_header {
        response.headers_mut().insert(header::ETAG, h);
    }
    response
}

/// `GET /ofrep/v1/configuration`
pub async fn configuration(State(state): State<AppState>, _: AnyToken) -> Json<Value> {
    let ms = u64::try_from(state.config.flags_refresh.as_millis()).unwrap_or(u64::MAX);
    Json(json!({
        "name": "golive",
        "capabilities": {
            "cacheInvalidation": { "polling": { "enabled": true, "minPollingIntervalMs": ms } },
            "flagEvaluation": { "supportedTypes": ["boolean", "string", "integer", "float", "object"] }
        }
    }))
}
