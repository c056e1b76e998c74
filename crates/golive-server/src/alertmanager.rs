//! `POST /api/alertmanager`: Prometheus Alertmanager's webhook receiver
//! (payload version 4). Existing alerts open incidents in the watch window
//! of the runs that are in one, like a failing check does.
//!
//! This module owns the wire format and which runs hear an alert; what an
//! alert does to a run is `golive_engine::answers::alerts` (the record)
//! and `golive_engine::monitor` (the incident). Alertmanager authenticates
//! with an operator token (`http_config: {authorization: {credentials:
//! glv_…}}`): an alert pages people and changes the run's record, as an
//! operator's acknowledgement does, and the token's name is the `by` of
//! every incident it opens.
//!
//! Which runs: every run in its watch window (`watch.started`, no
//! `watch.ended`), or only `?run=r-…` when the receiver's URL names one.
//! No run in its window is not an error — the alert is not for golive then,
//! and a 4xx/5xx would only make Alertmanager retry it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use golive_engine::answers::{self, AnswerError};
use golive_engine::monitor::{self, Alert};
use golive_store::{RunId, Store};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Authed, OperatorToken};
use crate::body::JsonBody;
use crate::error::{ApiError, clip};
use crate::runs::{audit, run_id};
use crate::state::AppState;

/// Alertmanager's webhook body, version 4. Unknown fields are accepted, not
/// refused as on golive's own routes: Alertmanager adds fields over its
/// versions (`truncatedAlerts`), and a receiver that refused them would
/// drop real alerts.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Must be `"4"`.
    pub version: String,
    /// The alert group's key.
    pub group_key: Option<String>,
    /// `firing` or `resolved`, for the group.
    pub status: Option<String>,
    /// The receiver's name in Alertmanager's config.
    pub receiver: Option<String>,
    /// The group's labels.
    #[serde(default)]
    #[allow(dead_code)] // accepted and documented; the per-alert fields are used
    pub group_labels: BTreeMap<String, String>,
    /// Labels all its alerts share.
    #[serde(default)]
    #[allow(dead_code)] // accepted and documented; the per-alert fields are used
    pub common_labels: BTreeMap<String, String>,
    /// Annotations all its alerts share.
    #[serde(default)]
    #[allow(dead_code)] // accepted and documented; the per-alert fields are used
    pub common_annotations: BTreeMap<String, String>,
    /// Alertmanager's own URL.
    #[allow(dead_code)] // accepted and documented; the per-alert fields are used
    #[serde(rename = "externalURL")]
    pub external_url: Option<String>,
    /// Alerts left out by `max_alerts`.
    pub truncated_alerts: Option<u64>,
    /// The alerts.
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of a [`Webhook`].
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Its labels (`alertname`, …).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339; with the fingerprint, names this episode of the alert.
    pub starts_at: String,
    /// RFC 3339 (`0001-01-01T00:00:00Z` while firing).
    #[allow(dead_code)] // accepted and documented; the per-alert fields are used
    pub ends_at: Option<String>,
    /// The rule's expression in Prometheus.
    #[serde(rename = "generatorURL")]
    pub generator_url: Option<String>,
    /// Alertmanager's hash of the labels.
    pub fingerprint: String,
}

/// `?run=`
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// Only this run (default: every run in its watch window).
    pub run: Option<String>,
}

/// A body that is JSON but not a notification golive can take: 422, like
/// a body that does not fit a route's type.
fn unfit(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

/// The alerts as the engine records them; every one is checked before any
/// is recorded, so a refused notification records nothing.
fn parse(hook: Webhook) -> Result<Vec<Alert>, ApiError> {
    if hook.version != "4" {
        return Err(unfit(format!(
            "Alertmanager webhook version `{}` is not understood; this receiver takes version 4",
            clip(&hook.version)
        )));
    }
    hook.alerts
        .into_iter()
        .enumerate()
        .map(|(n, a)| {
            let firing = match a.status.as_str() {
                "firing" => true,
                "resolved" => false,
                other => {
                    return Err(unfit(format!(
                        "alerts[{n}].status is `{}`; expected `firing` or `resolved`",
                        clip(other)
                    )));
                }
            };
            // Part of a request kind: keep it to what Alertmanager makes
            // (16 hex digits), with room for other senders.
            let fingerprint_ok = !a.fingerprint.is_empty()
                && a.fingerprint.len() <= 64
                && a.fingerprint.chars().all(|c| c.is_ascii_alphanumeric());
            if !fingerprint_ok {
                return Err(unfit(format!(
                    "alerts[{n}].fingerprint `{}` is not a fingerprint (1 to 64 letters and digits)",
                    clip(&a.fingerprint)
                )));
            }
            let starts_at: Timestamp = a.starts_at.parse().map_err(|_| {
                unfit(format!(
                    "alerts[{n}].startsAt `{}` is not an RFC 3339 time",
                    clip(&a.starts_at)
                ))
            })?;
            let alertname = a
                .labels
                .get("alertname")
                .cloned()
                .unwrap_or_else(|| a.fingerprint.clone());
            Ok(Alert {
                fingerprint: a.fingerprint,
                starts_at,
                firing,
                alertname,
                labels: a.labels,
                annotations: a.annotations,
                generator_url: a.generator_url.filter(|u| !u.is_empty()),
            })
        })
        .collect()
}

/// `POST /api/alertmanager`: records the notification's alerts for the
/// runs in their watch window (see the module docs).
pub async fn receive(
    State(state): State<AppState>,
    Authed(caller): OperatorToken,
    Query(query): Query<AlertsQuery>,
    JsonBody(hook): JsonBody<Webhook>,
) -> Result<Json<Value>, ApiError> {
    tracing::info!(
        receiver = hook.receiver.as_deref().unwrap_or_default(),
        group = hook.group_key.as_deref().unwrap_or_default(),
        status = hook.status.as_deref().unwrap_or_default(),
        alerts = hook.alerts.len(),
        "alertmanager notification"
    );
    if let Some(left) = hook.truncated_alerts.filter(|n| *n > 0) {
        // Those alerts never reach golive: say so where someone looks.
        tracing::warn!(left, "alertmanager left alerts out (max_alerts)");
    }
    let alerts = parse(hook)?;
    let runs: Vec<RunId> = match &query.run {
        Some(raw) => vec![run_id(raw)?],
        None => watching(state.store()).await?,
    };
    let mut heard = Vec::new();
    for run in &runs {
        let recorded = match answers::alerts(state.store(), run, &alerts, &caller.name).await {
            Ok(n) => n,
            // Its window ended since it was listed: not one of the runs
            // this notification is for.
            Err(AnswerError::NotWatching(_)) if query.run.is_none() => continue,
            Err(e) => return Err(e.into()),
        };
        if recorded > 0 {
            let after = json!({ "recorded": recorded });
            audit(
                &state,
                &caller.actor(),
                "alerts.received",
                run.as_str(),
                None,
                Some(after),
            )
            .await;
        }
        heard.push(json!({ "run": run, "recorded": recorded }));
    }
    Ok(Json(json!({ "alerts": alerts.len(), "runs": heard })))
}

/// The runs in their watch window now.
async fn watching<S: Store>(store: &S) -> Result<Vec<RunId>, ApiError> {
    let mut out = Vec::new();
    for run in store.list_runs(1000).await? {
        if run.status.is_final() {
            continue;
        }
        let events = store.events_after(&run.id, 0, u32::MAX).await?;
        if monitor::window_open(&events) {
            out.push(run.id);
        }
    }
    Ok(out)
}
