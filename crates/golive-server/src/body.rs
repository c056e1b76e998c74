//! The JSON bodies handlers take: [`JsonBody`] is axum's `Json` (the same
//! refusals for a body that is not JSON, too large or of the wrong content
//! type) plus one check every text field needs and serde cannot make: no
//! NUL character anywhere. PostgreSQL cannot store one in a text column, so
//! a `\u0000` in a reason or a name used to reach the database and come
//! back as a 500 there, while SQLite stored it: the same request must be
//! refused the same way on both, before anything is written.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A request's JSON body, parsed into `T` after the checks above.
pub struct JsonBody<T>(pub T);

/// The message of a refused NUL character; also used for paths and queries.
pub const NUL_MESSAGE: &str = "text must not contain NUL characters (\\u0000)";

/// Does any string or key of `value` contain a NUL character? Iterative:
/// the parser already bounds the depth, and this must not add a limit of
/// its own.
fn has_nul(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.contains('\0') => return true,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    false
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        // axum's own refusals (400, 413, 415) are put in the one error
        // shape by `error::json_errors`, which also closes the connection
        // after a 413 whose body was not read.
        let axum::Json(value) = axum::Json::<Value>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if has_nul(&value) {
            return Err(ApiError::invalid(NUL_MESSAGE).into_response());
        }
        serde_json::from_value(value).map(JsonBody).map_err(|e| {
            // serde quotes the value it refused: cut short like axum's.
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                crate::error::clip_text(&format!("the body does not fit this route: {e}")),
            )
            .into_response()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::has_nul;
    use serde_json::json;

    #[test]
    fn nul_is_found_in_keys_and_nested_strings() {
        assert!(!has_nul(&json!({"a": ["b", {"c": "d"}], "n": 1})));
        assert!(has_nul(&json!({"a": ["b", {"c": "d\u{0}"}]})));
        assert!(has_nul(&json!({"a\u{0}": 1})));
    }
}
