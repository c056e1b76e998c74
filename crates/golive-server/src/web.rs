//! The war room in a browser: `GET /ui`, one page (HTML, CSS and a small
//! vanilla-JS app compiled into the binary; no Node, no build step, no
//! outside assets) that reads the same JSON API the CLI reads and acts only
//! through it, so the API's role checks stay the only gate. The page hides
//! what a token's role cannot do, from `GET /api/whoami`.
//!
//! The token a person pastes stays in the tab's `sessionStorage` and goes
//! in `Authorization: Bearer` on every call, never in a URL: the live
//! stream (`/api/events?run=`) is read with `fetch()` and a stream reader,
//! since `EventSource` cannot send headers.
//!
//! Also here: `GET /api/whoami` (the caller's name, role and what it may
//! do) and `GET /api/runs/{run}/outline` (the plan's phases with their
//! planned start relative to T-0, and each item's owner), which the run
//! page needs and the status document does not carry.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use golive_store::Store;
use serde_json::{Value, json};

use crate::auth::{AnyToken, Authed, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// The page's script and style, embedded.
pub const APP_JS: &str = include_str!("web/app.js");
/// The page's style sheet.
pub const APP_CSS: &str = include_str!("web/app.css");

/// The page's strict policy: nothing from outside, scripts only ours.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The HTML shell; the app fills `main`.
pub fn shell() -> String {
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>golive war room</title>
<link rel="stylesheet" href="/ui/app.css?v={v}">
<script src="/ui/app.js?v={v}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="#/">golive</a>
  <nav aria-label="Pages" id="nav" hidden>
    <a href="#/">Runs</a>
    <a href="#/flags">Flags</a>
    <a href="#/audit" id="nav-audit">Audit log</a>
  </nav>
  <span id="who" class="who" aria-live="polite"></span>
  <button type="button" id="signout" hidden>Sign out</button>
</header>
<main id="main" tabindex="-1">
  <noscript>The war room needs JavaScript; <a href="/status">the public status page</a> does not.</noscript>
</main>
<div id="toast" role="status" aria-live="polite"></div>
</body>
</html>
"##,
        v = env!("CARGO_PKG_VERSION")
    )
}

fn with_headers(kind: &'static str, body: impl Into<String>) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body.into(),
    )
        .into_response()
}

/// `GET /ui`
pub async fn page() -> Response {
    with_headers("text/html; charset=utf-8", shell())
}

/// `GET /ui/app.js`
pub async fn script() -> Response {
    with_headers("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /ui/app.css`
pub async fn style() -> Response {
    with_headers("text/css; charset=utf-8", APP_CSS)
}

/// `GET /api/whoami`: who the token is and what the page may offer it.
pub async fn whoami(Authed(caller): AnyToken) -> Json<Value> {
    let operate = matches!(caller.role, Role::Operator | Role::Admin);
    let sign = match &caller.role {
        Role::SignOff(r) => Some(r.clone()),
        _ => None,
    };
    Json(json!({
        "name": caller.name,
        "role": caller.role.to_string(),
        "token_id": caller.token_id,
        "may": {
            "read": true,
            "operate": operate,
            "audit": operate,
            "flags": operate,
            "delete_flags": caller.role == Role::Admin,
            "tokens": caller.role == Role::Admin,
            "sign_as": sign,
        }
    }))
}

/// `GET /api/runs/{run}/outline`: the run's plan as the page draws it:
/// phases (title, planned start as seconds from T-0) and their items
/// (id, title, kind, owner and its members), rollback items last.
pub async fn outline(
    State(state): State<AppState>,
    _: AnyToken,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = crate::runs::run_id(&raw)?;
    let run = state.store().get_run(&id).await?;
    let plan = golive_engine::stored_plan(&run)
        .map_err(|e| ApiError::internal(format!("run {id}: {e}")))?;
    let members = |role: Option<&golive_plan::RoleName>| -> Value {
        role.and_then(|r| plan.roles.get(r.as_str()))
            .map(|r| json!(r.members))
            .unwrap_or_else(|| json!([]))
    };
    let item = |i: &golive_plan::Item| {
        json!({
            "id": i.id.as_str(),
            "title": i.title,
            "kind": i.kind.name(),
            "owner": i.owner.as_ref().map(|o| o.as_str()),
            "members": members(i.owner.as_ref()),
            "critical": i.critical,
        })
    };
    let mut phases: Vec<Value> = plan
        .phases
        .iter()
        .map(|p| {
            json!({
                "title": p.title,
                "at": p.at.map(|t| t.0),
                "items": p.items.iter().map(item).collect::<Vec<_>>(),
            })
        })
        .collect();
    if !plan.rollback.items.is_empty() {
        phases.push(json!({
            "title": "rollback",
            "at": null,
            "items": plan.rollback.items.iter().map(item).collect::<Vec<_>>(),
        }));
    }
    Ok(Json(json!({ "name": plan.name, "phases": phases })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_loads_nothing_from_outside() {
        let html = shell();
        assert!(html.contains(r#"<html lang="en">"#));
        assert!(html.contains("viewport"));
        for bad in ["http://", "https://", "//cdn", "<style", "onclick"] {
            assert!(!html.contains(bad), "{bad} in the shell");
        }
        for text in [APP_JS, APP_CSS] {
            // The SVG namespace is a name, not a place anything is loaded from.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }
}
