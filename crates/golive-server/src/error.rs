//! The one error shape every API route answers with:
//! `{"error": {"code": "...", "message": "..."}}` and a fitting status.
//! OFREP routes answer in their own protocol's shape (see `ofrep`).

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
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
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
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
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
        let body = json!({ "error": { "code": self.code, "message": self.message } });
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
