//! The public status page: `GET /status` (HTML, no token) and the
//! Atlassian Statuspage-compatible `GET /api/v2/status.json` and
//! `GET /api/v2/summary.json` that status widgets already read.
//!
//! Both are views of one [`Overall`] worked out from the journal's runs and
//! the `maintenance_mode` flag (the mapping is in `docs/design/web.md`):
//! the worst of
//! - a run rolling back now: critical (major outage);
//! - a run failed or rolled back within [`RECENT`]: major (partial outage);
//! - `maintenance_mode` enabled: under maintenance;
//! - a run paused, a rollout held by a `pause` request, or an open
//!   incident of a run's watch window: minor (degraded performance);
//! - else none (operational).
//!
//! What a public visitor sees is chosen field by field, never a run's
//! journal passed through: plan names, phase titles, run statuses, rollout
//! steps and weights, and times. Never evidence, people's names, commands,
//! requests' reasons or tokens.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use golive_engine::report::xml_escape as esc;
use golive_store::{RunStatus, RunSummary, Store};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a failed or rolled-back run keeps the page at major.
pub const RECENT: SignedDuration = SignedDuration::from_hours(6);

/// Runs read for the page (the current one and the history).
const HISTORY: u32 = 20;

/// The flag that puts the page under maintenance when enabled.
pub const MAINTENANCE_FLAG: &str = "maintenance_mode";

/// The page's id, and its one component's.
const PAGE_ID: &str = "golive";
const COMPONENT_ID: &str = "golive-go-live";

/// The overall state, worst last (the order is the precedence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Operational,
    Degraded,
    Maintenance,
    PartialOutage,
    MajorOutage,
}

impl Level {
    fn indicator(self) -> Indicator {
        match self {
            // Statuspage documents only none|minor|major|critical for the
            // page's indicator; maintenance shows in the component's status
            // and an in-progress scheduled maintenance instead.
            Level::Operational | Level::Maintenance => Indicator::None,
            Level::Degraded => Indicator::Minor,
            Level::PartialOutage => Indicator::Major,
            Level::MajorOutage => Indicator::Critical,
        }
    }

    fn component(self) -> ComponentStatus {
        match self {
            Level::Operational => ComponentStatus::Operational,
            Level::Degraded => ComponentStatus::DegradedPerformance,
            Level::Maintenance => ComponentStatus::UnderMaintenance,
            Level::PartialOutage => ComponentStatus::PartialOutage,
            Level::MajorOutage => ComponentStatus::MajorOutage,
        }
    }

    fn description(self) -> &'static str {
        match self {
            Level::Operational => "All Systems Operational",
            Level::Degraded => "Degraded Performance",
            Level::Maintenance => "Service Under Maintenance",
            Level::PartialOutage => "Partial System Outage",
            Level::MajorOutage => "Major Service Outage",
        }
    }

    /// The page's CSS class for the banner.
    fn class(self) -> &'static str {
        match self {
            Level::Operational => "ok",
            Level::Degraded => "minor",
            Level::Maintenance => "maint",
            Level::PartialOutage => "major",
            Level::MajorOutage => "critical",
        }
    }
}

/// Statuspage's page indicator.
#[derive(Clone, Copy, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// Operational (also under maintenance).
    None,
    /// Degraded.
    Minor,
    /// Partial outage.
    Major,
    /// Major outage.
    Critical,
}

/// Statuspage's component status.
#[derive(Clone, Copy, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    /// Working.
    Operational,
    /// Slower or held.
    DegradedPerformance,
    /// Partly down.
    PartialOutage,
    /// Down.
    MajorOutage,
    /// Under planned maintenance.
    UnderMaintenance,
}

/// Statuspage's impact of an incident or maintenance.
#[derive(Clone, Copy, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    /// No impact.
    None,
    /// Minor.
    Minor,
    /// Major.
    Major,
    /// Critical.
    Critical,
    /// Planned maintenance.
    Maintenance,
}

/// A time, in RFC 3339 (UTC).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(extend("format" = "date-time"))]
pub struct Time(String);

impl From<Timestamp> for Time {
    fn from(t: Timestamp) -> Time {
        Time(t.to_string())
    }
}

/// `page` of both documents.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Page {
    /// `golive`.
    pub id: String,
    /// The page's name.
    pub name: String,
    /// The HTML page's address, as the client reached this server.
    pub url: String,
    /// Times are UTC.
    pub time_zone: String,
    /// The latest change of a run shown, or now when there is none.
    pub updated_at: Time,
}

/// `status` of both documents.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PageStatus {
    /// `none`, `minor`, `major` or `critical`.
    pub indicator: Indicator,
    /// In words, as Statuspage words it.
    pub description: String,
}

/// `GET /api/v2/status.json`
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StatusDoc {
    /// The page.
    pub page: Page,
    /// Its overall status.
    pub status: PageStatus,
}

/// One component: golive has one, the go-live.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Component {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: ComponentStatus,
    /// When it was first shown (the oldest run shown, or now).
    pub created_at: Time,
    /// When its status last changed.
    pub updated_at: Time,
    /// Its place.
    pub position: u32,
    /// What it is.
    pub description: Option<String>,
    /// Shown on the page.
    pub showcase: bool,
    /// Not tracked.
    pub start_date: Option<String>,
    /// No groups.
    pub group_id: Option<String>,
    /// The page.
    pub page_id: String,
    /// Not a group.
    pub group: bool,
    /// Always shown.
    pub only_show_if_degraded: bool,
}

/// One update of an incident or maintenance.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct IncidentUpdate {
    /// Its id.
    pub id: String,
    /// The incident's status when written.
    pub status: String,
    /// What is known, in public words.
    pub body: String,
    /// The incident.
    pub incident_id: String,
    /// When.
    pub created_at: Time,
    /// When.
    pub updated_at: Time,
    /// When.
    pub display_at: Time,
}

/// An unresolved incident (a run failing or held) or an in-progress
/// maintenance (`maintenance_mode`).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Incident {
    /// The run's id (`maintenance` for the maintenance).
    pub id: String,
    /// In public words.
    pub name: String,
    /// `investigating`, `identified` or `monitoring`; `in_progress` for the
    /// maintenance.
    pub status: String,
    /// How bad.
    pub impact: Impact,
    /// When it began.
    pub created_at: Time,
    /// Last change.
    pub updated_at: Time,
    /// Not tracked.
    pub monitoring_at: Option<Time>,
    /// Unresolved.
    pub resolved_at: Option<Time>,
    /// When it began.
    pub started_at: Time,
    /// The HTML page.
    pub shortlink: String,
    /// The page.
    pub page_id: String,
    /// What was said.
    pub incident_updates: Vec<IncidentUpdate>,
    /// The components affected.
    pub components: Vec<Component>,
    /// Maintenances only: when it began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<Time>,
    /// Maintenances only: open-ended (null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_until: Option<Option<Time>>,
}

/// `GET /api/v2/summary.json`
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SummaryDoc {
    /// The page.
    pub page: Page,
    /// Its overall status.
    pub status: PageStatus,
    /// Its components.
    pub components: Vec<Component>,
    /// Unresolved incidents.
    pub incidents: Vec<Incident>,
    /// In-progress maintenances.
    pub scheduled_maintenances: Vec<Incident>,
}

/// Why one run affects the page.
#[derive(Clone)]
struct Finding {
    run: RunSummary,
    level: Level,
}

/// A run as the public sees it.
#[derive(Clone)]
struct Shown {
    plan: String,
    status: RunStatus,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// The run under way, as the public sees it.
#[derive(Clone)]
struct Current {
    plan: String,
    status: RunStatus,
    phase: Option<String>,
    /// `(step, weight %)` of the rollout's last weight.
    step: Option<(u64, u64)>,
    held: bool,
}

/// Everything both views show.
#[derive(Clone)]
struct Overall {
    level: Level,
    /// Since when `maintenance_mode` is on (its last change), if it is.
    maintenance: Option<Timestamp>,
    findings: Vec<Finding>,
    current: Option<Current>,
    history: Vec<Shown>,
    now: Timestamp,
    url: String,
}

/// Is a rollout of this run held by a `pause` request not yet resumed?
async fn held(state: &AppState, run: &RunSummary) -> Result<bool, ApiError> {
    Ok(golive_engine::answers::rollout_held(
        &state.store().requests(&run.id).await?,
    ))
}

/// Has this run's watch window an incident that has not resolved?
async fn open_incident(state: &AppState, run: &RunSummary) -> Result<bool, ApiError> {
    let events = state.store().events_after(&run.id, 0, u32::MAX).await?;
    Ok(golive_engine::monitor::record(&events).is_some_and(|w| {
        w.ended_at.is_none() && w.incidents.iter().any(|i| i.resolved_at.is_none())
    }))
}

/// How one run weighs on the page: `age` is the time since its last
/// change, `held` whether its rollout is held by a `pause` request or its
/// watch window has an open incident.
fn level_of(status: RunStatus, age: SignedDuration, held: bool) -> Option<Level> {
    Some(match status {
        RunStatus::RollingBack => Level::MajorOutage,
        RunStatus::Failed | RunStatus::RolledBack if age <= RECENT => Level::PartialOutage,
        RunStatus::Paused => Level::Degraded,
        _ if held && active(status) => Level::Degraded,
        _ => return None,
    })
}

fn active(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Pending | RunStatus::Running | RunStatus::Paused | RunStatus::RollingBack
    )
}

/// The status page's last view of the journal (its page URL left empty:
/// that comes from each request) and when it was read. One lock: requests
/// arriving while the view is read wait for that read instead of making
/// their own.
#[derive(Default)]
pub struct Cache(tokio::sync::Mutex<Option<(std::time::Instant, Overall)>>);

/// What the page shows: the cached view if it is younger than
/// `status_cache`, else a fresh one.
async fn overall(state: &AppState, headers: &HeaderMap) -> Result<Overall, ApiError> {
    let ttl = state.config.status_cache;
    let mut view = if ttl.is_zero() {
        read(state).await?
    } else {
        let mut cached = state.status_view.0.lock().await;
        match &*cached {
            Some((at, view)) if at.elapsed() < ttl => view.clone(),
            _ => {
                let view = read(state).await?;
                *cached = Some((std::time::Instant::now(), view.clone()));
                view
            }
        }
    };
    view.url = page_url(state, headers);
    Ok(view)
}

/// Reads the page's view from the journal and the flags.
async fn read(state: &AppState) -> Result<Overall, ApiError> {
    let now = Timestamp::now();
    let runs = state.store().list_runs(HISTORY).await?;
    let on = state
        .flags
        .snapshot()
        .flags
        .get(MAINTENANCE_FLAG)
        .is_some_and(|f| f.enabled());
    let maintenance = match on {
        true => Some(
            state
                .store()
                .get_flag(MAINTENANCE_FLAG)
                .await?
                .map_or(now, |f| f.updated_at),
        ),
        false => None,
    };
    let mut findings = Vec::new();
    for run in &runs {
        // Requests and incidents are read only for runs whose status alone
        // says nothing.
        let held = matches!(run.status, RunStatus::Pending | RunStatus::Running)
            && (held(state, run).await? || open_incident(state, run).await?);
        let Some(level) = level_of(run.status, now.duration_since(run.updated_at), held) else {
            continue;
        };
        findings.push(Finding {
            run: run.clone(),
            level,
        });
    }
    let mut level = findings
        .iter()
        .map(|f| f.level)
        .max()
        .unwrap_or(Level::Operational);
    if maintenance.is_some() {
        level = level.max(Level::Maintenance);
    }
    let current = match runs.iter().find(|r| active(r.status)) {
        Some(run) => Some(current(state, run).await?),
        None => None,
    };
    let history = runs
        .iter()
        .take(10)
        .map(|r| Shown {
            plan: r.plan_name.clone(),
            status: r.status,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect();
    Ok(Overall {
        level,
        maintenance,
        findings,
        current,
        history,
        now,
        url: String::new(),
    })
}

/// The run under way: its phase and the rollout's last step.
async fn current(state: &AppState, run: &RunSummary) -> Result<Current, ApiError> {
    // Only the phase's title is taken from the status document: the rest
    // (who is awaited, the commands that answer) is not for the public.
    let phase = match golive_engine::status::status(state.store(), &run.id).await {
        Ok(doc) => doc["phase"].as_str().map(str::to_string),
        Err(e) => {
            tracing::warn!(run = %run.id, error = %e, "status page: no phase for the run");
            None
        }
    };
    // The last weight is among the latest events; a long run's whole
    // journal is not read for it.
    let tail = state
        .store()
        .events_after(&run.id, (run.last_seq - 500).max(0), 500)
        .await?;
    let step = tail
        .iter()
        .rev()
        // `items::rollout::event::WEIGHT`, as the CLI's run output reads it.
        .find(|e| e.kind == "rollout.weight")
        .and_then(|e| Some((e.data["step"].as_u64()?, e.data["weight"].as_u64()?)));
    Ok(Current {
        plan: run.plan_name.clone(),
        status: run.status,
        phase,
        step,
        held: active(run.status) && held(state, run).await?,
    })
}

/// `http://HOST/status` from the request's Host when it is a plain
/// authority, else from the listening address.
fn page_url(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| state.config.listen.to_string());
    format!("http://{host}/status")
}

/// What the public reads about a run's state.
fn public_status(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Pending => "Scheduled",
        RunStatus::Running => "In progress",
        RunStatus::Paused => "Paused",
        RunStatus::Succeeded => "Completed",
        RunStatus::Failed => "Failed",
        RunStatus::RollingBack => "Rolling back",
        RunStatus::RolledBack => "Rolled back",
        RunStatus::Aborted => "Called off",
    }
}

impl Overall {
    fn updated_at(&self) -> Timestamp {
        self.history
            .iter()
            .map(|r| r.updated_at)
            .chain(self.maintenance)
            .max()
            .unwrap_or(self.now)
    }

    fn page(&self) -> Page {
        Page {
            id: PAGE_ID.into(),
            name: "golive".into(),
            url: self.url.clone(),
            time_zone: "Etc/UTC".into(),
            updated_at: self.updated_at().into(),
        }
    }

    fn status(&self) -> PageStatus {
        PageStatus {
            indicator: self.level.indicator(),
            description: self.level.description().into(),
        }
    }

    fn component(&self) -> Component {
        Component {
            id: COMPONENT_ID.into(),
            name: "Go-live".into(),
            status: self.level.component(),
            created_at: self
                .history
                .iter()
                .map(|r| r.created_at)
                .min()
                .unwrap_or(self.now)
                .into(),
            updated_at: self.updated_at().into(),
            position: 1,
            description: Some("The go-lives run by golive".into()),
            showcase: true,
            start_date: None,
            group_id: None,
            page_id: PAGE_ID.into(),
            group: false,
            only_show_if_degraded: false,
        }
    }

    fn incident(
        &self,
        id: String,
        name: String,
        status: &str,
        impact: Impact,
        since: Timestamp,
    ) -> Incident {
        let body = name.clone();
        Incident {
            incident_updates: vec![IncidentUpdate {
                id: format!("{id}-1"),
                status: status.into(),
                body,
                incident_id: id.clone(),
                created_at: since.into(),
                updated_at: since.into(),
                display_at: since.into(),
            }],
            id,
            name,
            status: status.into(),
            impact,
            created_at: since.into(),
            updated_at: since.into(),
            monitoring_at: None,
            resolved_at: None,
            started_at: since.into(),
            shortlink: self.url.clone(),
            page_id: PAGE_ID.into(),
            components: vec![self.component()],
            scheduled_for: None,
            scheduled_until: None,
        }
    }

    fn summary(&self) -> SummaryDoc {
        let incidents = self
            .findings
            .iter()
            .map(|f| {
                let (status, impact) = match f.level {
                    Level::MajorOutage => ("identified", Impact::Critical),
                    Level::PartialOutage => ("monitoring", Impact::Major),
                    _ => ("identified", Impact::Minor),
                };
                let name = format!(
                    "Go-live of {}: {}",
                    f.run.plan_name,
                    public_status(f.run.status).to_lowercase()
                );
                self.incident(f.run.id.to_string(), name, status, impact, f.run.updated_at)
            })
            .collect();
        let scheduled_maintenances = if let Some(since) = self.maintenance {
            let mut m = self.incident(
                "maintenance".into(),
                "Scheduled maintenance in progress".into(),
                "in_progress",
                Impact::Maintenance,
                since,
            );
            m.scheduled_for = Some(m.started_at.clone());
            m.scheduled_until = Some(None);
            vec![m]
        } else {
            Vec::new()
        };
        SummaryDoc {
            page: self.page(),
            status: self.status(),
            components: vec![self.component()],
            incidents,
            scheduled_maintenances,
        }
    }

    fn html(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_html(&mut out);
        out
    }

    fn write_html(&self, out: &mut String) -> std::fmt::Result {
        let level = self.level;
        write!(out, "{}", HEAD)?;
        writeln!(out, "<header><h1>golive status</h1></header>\n<main>")?;
        writeln!(
            out,
            "<section class=\"banner {}\" aria-labelledby=\"overall\"><h2 id=\"overall\" data-level=\"{}\">{}</h2><p>As of {}</p></section>",
            level.class(),
            level.class(),
            level.description(),
            self.now.strftime("%Y-%m-%d %H:%M UTC"),
        )?;
        writeln!(
            out,
            "<section aria-labelledby=\"current\"><h2 id=\"current\">Current go-live</h2>"
        )?;
        match &self.current {
            Some(c) => {
                writeln!(out, "<dl>")?;
                writeln!(out, "<dt>Plan</dt><dd>{}</dd>", esc(&c.plan))?;
                let state = if c.held {
                    "Rollout held"
                } else {
                    public_status(c.status)
                };
                writeln!(out, "<dt>State</dt><dd>{state}</dd>")?;
                if let Some(phase) = &c.phase {
                    writeln!(out, "<dt>Phase</dt><dd>{}</dd>", esc(phase))?;
                }
                if let Some((step, weight)) = c.step {
                    writeln!(
                        out,
                        "<dt>Rollout</dt><dd>step {step}, {weight}% of traffic</dd>"
                    )?;
                }
                writeln!(out, "</dl>")?;
            }
            None => writeln!(out, "<p>No go-live under way.</p>")?,
        }
        writeln!(out, "</section>")?;
        writeln!(
            out,
            "<section aria-labelledby=\"history\"><h2 id=\"history\">Recent go-lives</h2>"
        )?;
        if self.history.is_empty() {
            writeln!(out, "<p>None yet.</p>")?;
        } else {
            writeln!(
                out,
                "<table><caption class=\"sr\">Recent go-lives, newest first</caption>\n<thead><tr><th scope=\"col\">Plan</th><th scope=\"col\">Outcome</th><th scope=\"col\">Started</th><th scope=\"col\">Last change</th></tr></thead><tbody>"
            )?;
            for r in &self.history {
                writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&r.plan),
                    public_status(r.status),
                    r.created_at.strftime("%Y-%m-%d %H:%M"),
                    r.updated_at.strftime("%Y-%m-%d %H:%M"),
                )?;
            }
            writeln!(out, "</tbody></table>")?;
        }
        writeln!(out, "</section>\n</main>")?;
        writeln!(
            out,
            "<footer><p>Times in UTC. Machine-readable: <a href=\"/api/v2/summary.json\">summary.json</a>, <a href=\"/api/v2/status.json\">status.json</a>.</p></footer>\n</body></html>"
        )
    }
}

/// The document head and styles: no scripts, no external assets; colours
/// keep at least 4.5:1 contrast with their text; one column at any width.
const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>golive status</title>
<style>
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:48rem;padding:1rem;color:#1a1a1a;background:#fff;line-height:1.5}
h1{font-size:1.5rem;margin:.5rem 0}
.banner{border-radius:.5rem;padding:.75rem 1rem;color:#fff}
.banner h2{margin:0;font-size:1.25rem}.banner p{margin:0}
.ok{background:#1e6b34}.minor{background:#8a5300}.maint{background:#1f4f99}.major{background:#a33d00}.critical{background:#a0142a}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #767676}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
a{color:#0b4fa8}
@media (max-width:30rem){th:nth-child(3),td:nth-child(3){display:none}}
</style></head><body>
"#;

/// `GET /status`
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let overall = overall(&state, &headers).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        overall.html(),
    )
        .into_response())
}

/// `GET /api/v2/status.json`
pub async fn status_json(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<StatusDoc>, ApiError> {
    let overall = overall(&state, &headers).await?;
    Ok(Json(StatusDoc {
        page: overall.page(),
        status: overall.status(),
    }))
}

/// `GET /api/v2/summary.json`
pub async fn summary_json(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SummaryDoc>, ApiError> {
    Ok(Json(overall(&state, &headers).await?.summary()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_weighs_for_the_recent_window_only() {
        let hour = SignedDuration::from_hours(1);
        for status in [RunStatus::Failed, RunStatus::RolledBack] {
            assert_eq!(level_of(status, hour, false), Some(Level::PartialOutage));
            assert_eq!(level_of(status, RECENT, false), Some(Level::PartialOutage));
            assert_eq!(level_of(status, RECENT + hour, false), None);
        }
        // Rolling back weighs however long it takes.
        assert_eq!(
            level_of(RunStatus::RollingBack, RECENT * 4, false),
            Some(Level::MajorOutage)
        );
        assert_eq!(
            level_of(RunStatus::Running, hour, true),
            Some(Level::Degraded)
        );
        assert_eq!(level_of(RunStatus::Running, hour, false), None);
        // A finished run's old pause request does not hold anything.
        assert_eq!(level_of(RunStatus::Succeeded, hour, true), None);
        assert_eq!(level_of(RunStatus::Aborted, hour, false), None);
    }

    #[test]
    fn outages_outrank_maintenance_which_outranks_degraded() {
        assert!(Level::MajorOutage > Level::PartialOutage);
        assert!(Level::PartialOutage > Level::Maintenance);
        assert!(Level::Maintenance > Level::Degraded);
        assert!(Level::Degraded > Level::Operational);
    }
}
