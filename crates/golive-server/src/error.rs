//! The one error shape every API route answers with:
//! `{"error": {"code": "...", "message": "..."}}` and a fitting status.
//! OFREP routes answer in their own protocol's shape (see `ofrep`).
//!
//! Messages are short: values a client sent are quoted through [`clip`],
//! and a message is cut at [`MAX_MESSAGE`] characters, so a megabyte key is
//! not sent back. Refusals made by axum itself (a body that is not JSON,
//! too large, of the wrong type, an unknown route or method) are rewritten
//! into the same shape by [`json_errors`]. An internal error is logged with
//! its cause (and, through the request's span, its request id) and answered
//! with a generic message.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use golive_engine::answers::{AnswerClass, AnswerError};
use golive_store::StoreError;
use serde_json::json;

/// An API refusal or failure.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code, e.g. `forbidden`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// Seconds a rate-limited client should wait.
    pub retry_after: Option<u64>,
    /// What really went wrong, for the log only (internal errors).
    cause: Option<String>,
}

/// The longest message sent to a client, in characters.
pub const MAX_MESSAGE: usize = 1000;
/// The most of a client's own value quoted back in a message.
const MAX_QUOTE: usize = 64;

/// A value the client sent, cut to a length fit to quote back.
pub fn clip(value: &str) -> String {
    cut(value, MAX_QUOTE)
}

/// A refusal's text that may quote a client's value (a parser's message),
/// cut to a length fit for a message.
pub fn clip_text(text: &str) -> String {
    cut(text, 200)
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text.to_string(),
    }
}

/// The message of an internal error: the cause is in the log only.
pub const INTERNAL_MESSAGE: &str =
    "internal error; the server log has the cause under this response's x-request-id";

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            cause: None,
        }
    }

    /// The whole story for a log line: the cause of an internal error, else
    /// the message.
    pub fn log_text(&self) -> &str {
        self.cause.as_deref().unwrap_or(&self.message)
    }

    /// 400: the request cannot be understood or is not valid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 500, with the cause kept for the log and a generic message.
    pub fn internal(cause: impl Into<String>) -> Self {
        ApiError {
            cause: Some(cause.into()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                INTERNAL_MESSAGE,
            )
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::NotFound(_) => ApiError::not_found(err.to_string()),
            StoreError::Conflict(_) => ApiError::conflict(err.to_string()),
            StoreError::Unavailable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                err.to_string(),
            ),
            _ => ApiError::internal(err.to_string()),
        }
    }
}

impl From<AnswerError> for ApiError {
    fn from(err: AnswerError) -> Self {
        let message = err.to_string();
        match err.class() {
            AnswerClass::NotFound => ApiError::not_found(message),
            AnswerClass::Invalid => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            }
            AnswerClass::Conflict => ApiError::conflict(message),
            AnswerClass::Internal => ApiError::internal(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            // Inside the request's span: the line carries its request id.
            tracing::error!(status = self.status.as_u16(), cause = %cause, "internal error");
        }
        let message = cut(&self.message, MAX_MESSAGE);
        let body = json!({ "error": { "code": self.code, "message": message } });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"golive\""),
            );
        }
        response
    }
}

/// The code of a refusal made outside the handlers, by its status.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Rewrites an error answer that is not JSON (axum's own refusals: a body
/// that is not JSON or does not fit the type, too large, no JSON content
/// type, an unknown route or method) into the documented shape, with its
/// text cut short: such texts may quote the client's input.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Refusal texts are short; a longer body is not read further.
    let text = match axum::body::to_bytes(body, 16 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let message = match status {
        StatusCode::NOT_FOUND => "no such route".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => {
            "this route does not take this method (see the Allow header)".to_string()
        }
        _ if text.trim().is_empty() => status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase(),
        _ => clip_text(text.trim()),
    };
    let body = json!({ "error": { "code": code_of(status), "message": message } });
    parts.headers.remove(header::CONTENT_LENGTH);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body is not read: the connection cannot carry
        // another request, and a client must not try.
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}
