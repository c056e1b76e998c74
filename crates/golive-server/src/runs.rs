//! Runs through the API: list, read, start, resume, and people's answers
//! (confirm, approve, reject, roll back), plus plan validation and reports.
//!
//! Answers go through `golive_engine::answers`, the same checks as the CLI.
//! The person answering is the token's name: a confirmation is recorded as
//! made by whoever holds the token, and an approval needs a token of the
//! sign-off role whose name is a member of that role in the plan. Every
//! accepted answer is also appended to the audit log with the client's
//! address.
//!
//! Runs started or resumed here execute inside the server process (under
//! the run's lease, so two servers never execute one run); on shutdown they
//! stop like `golive run` on SIGTERM — the item under way is marked
//! interrupted — and the next server to start resumes them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use golive_engine::answers::{self, Confirm, RollbackAnswer, Sign};
use golive_engine::{Engine, EngineError, Started, report};
use golive_plan::Plan;
use golive_store::{Actor, Decision, NewAudit, Pause, Retrying, RunId, RunStatus, Store};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::{AnyToken, Authed, Caller, OperatorToken, Role};
use crate::body::JsonBody;
use crate::error::{ApiError, clip};
use crate::state::AppState;

/// Audit action of a run a server was executing when it stopped; the next
/// server to start resumes it (`server.resumed`).
pub const INTERRUPTED: &str = "server.interrupted";
/// Audit action when a server resumes such a run.
pub const RESUMED: &str = "server.resumed";
/// Audit action when a server takes over a run whose driver died.
pub const ADOPTED: &str = "server.adopted";

/// Parses a run id from a path or query, quoting it short when it is not one.
pub fn run_id(raw: &str) -> Result<RunId, ApiError> {
    raw.parse::<RunId>().map_err(|_| {
        ApiError::invalid(format!(
            "`{}` is not a run id (expected `r-` and 8 characters from a-z, 2-7)",
            clip(raw)
        ))
    })
}

/// Refuses an item id from a path that no plan can have (plan ids are
/// letters, digits, `-`, `_` and `.`): answered as unknown without reading
/// the run, and quoted short — the engine's own answer quotes it whole.
fn item_in_path(run: &RunId, raw: &str) -> Result<(), ApiError> {
    let plausible = raw.len() <= 128
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if plausible {
        return Ok(());
    }
    Err(ApiError::not_found(format!(
        "run {run} has no item `{}`: item ids are letters, digits, `-`, `_` and `.`",
        clip(raw)
    )))
}

/// `?limit=`
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ListQuery {
    /// At most this many runs, newest first (default 50, at most 1000).
    pub limit: Option<u32>,
}

/// `GET /api/runs`
pub async fn list(
    State(state): State<AppState>,
    _: AnyToken,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let runs = state
        .store()
        .list_runs(q.limit.unwrap_or(50).min(1000))
        .await?;
    Ok(Json(json!({ "runs": runs })))
}

/// `GET /api/runs/{run}`: the run (without its plan text) and its items.
pub async fn get(
    State(state): State<AppState>,
    _: AnyToken,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = run_id(&raw)?;
    let run = state.store().get_run(&id).await?;
    let items = state.store().item_states(&id).await?;
    let requests = state.store().requests(&id).await?;
    Ok(Json(json!({
        "run": run.summary,
        "items": items,
        "requests": requests.iter().map(|r| json!({"kind": r.kind, "by": r.by, "at": r.at, "reason": r.reason})).collect::<Vec<_>>(),
    })))
}

/// `GET /api/runs/{run}/status`: where the run stands — its phase, each
/// item, who it waits for — as `golive status` shows it.
pub async fn status(
    State(state): State<AppState>,
    _: AnyToken,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = run_id(&raw)?;
    state.store().get_run(&id).await?;
    Ok(Json(
        golive_engine::status::status(state.store(), &id)
            .await
            .map_err(engine_error)?,
    ))
}

/// `?after=&limit=`
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EventsQuery {
    /// Only events with a greater seq.
    pub after: Option<i64>,
    /// At most this many (default 500, at most 5000).
    pub limit: Option<u32>,
}

/// `GET /api/runs/{run}/events`
pub async fn events(
    State(state): State<AppState>,
    _: AnyToken,
    Path(raw): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let id = run_id(&raw)?;
    state.store().get_run(&id).await?;
    let events = state
        .store()
        .events_after(&id, q.after.unwrap_or(0), q.limit.unwrap_or(500).min(5000))
        .await?;
    Ok(Json(json!({ "events": events })))
}

/// A plan sent to the server.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// The plan's YAML text.
    pub plan: String,
    /// A name for diagnostics (default `plan.yaml`).
    pub name: Option<String>,
}

/// A plan that does not compile: 422 with every diagnostic.
fn invalid_plan(source: &golive_plan::Source, diagnostics: &[golive_plan::Diagnostic]) -> Response {
    let diagnostics = located(source, diagnostics);
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({
            "error": {"code": "invalid_plan", "message": "the plan is invalid"},
            "diagnostics": diagnostics,
        })),
    )
        .into_response()
}

/// `POST /api/plans/validate`
pub async fn validate(_: AnyToken, JsonBody(body): JsonBody<PlanBody>) -> Response {
    let source = golive_plan::Source::new(
        body.name.unwrap_or_else(|| "plan.yaml".into()),
        body.plan.as_str(),
    );
    let compiled = golive_plan::compile(&body.plan, &|_: &str| true);
    let valid = compiled.plan.is_some();
    let diagnostics = located(&source, &compiled.diagnostics);
    Json(json!({ "valid": valid, "diagnostics": diagnostics })).into_response()
}

fn located(
    source: &golive_plan::Source,
    diagnostics: &[golive_plan::Diagnostic],
) -> Vec<golive_plan::Located> {
    diagnostics
        .iter()
        .map(|d| golive_plan::Located::new(source, d))
        .collect()
}

/// `POST /api/runs` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// The plan's YAML text.
    pub plan: String,
    /// The go-live moment (RFC 3339); overrides the plan's.
    pub t0: Option<String>,
    /// Variable overrides, like `--var NAME=VALUE`.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
}

/// `POST /api/runs`: create a run and execute it in this server.
pub async fn start(
    State(state): State<AppState>,
    Authed(caller): OperatorToken,
    JsonBody(body): JsonBody<StartBody>,
) -> Result<Response, ApiError> {
    let overrides: Vec<(String, String)> = body.vars.into_iter().collect();
    let names: Vec<String> = overrides.iter().map(|(k, _)| k.clone()).collect();
    let known = |name: &str| {
        names.iter().any(|n| n == name) || golive_runtime::host_env::var(name).is_some()
    };
    let compiled = golive_plan::compile(&body.plan, &known);
    let Some(plan) = compiled.plan else {
        let source = golive_plan::Source::new("plan.yaml", body.plan.as_str());
        return Ok(invalid_plan(&source, &compiled.diagnostics));
    };
    if caller.role != Role::Admin && !state.config.allow_api_commands {
        if let Some(item) = touches_host(&plan) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "item `{item}` runs a command or reads this server's environment or files: a plan with such items needs an admin token (or a server started with --allow-api-commands)"
                ),
            ));
        }
    }
    let t0 = match body.t0.as_deref() {
        Some(t) => Some(t.parse::<Timestamp>().map_err(|e| {
            ApiError::invalid(format!("t0: `{}` is not an RFC 3339 time: {e}", clip(t)))
        })?),
        None => None,
    };
    let engine = engine(&state)?;
    let started = engine
        .start(&body.plan, plan, overrides, t0)
        .await
        .map_err(engine_error)?;
    let run = started.run.clone();
    audit(
        &state,
        &caller.actor(),
        "run.started",
        run.as_str(),
        None,
        Some(json!({"plan": started.plan().name})),
    )
    .await;
    spawn(&state, engine, run.clone(), Some(started));
    Ok((StatusCode::CREATED, Json(json!({ "run": run }))).into_response())
}

/// The first item that would run a command on the server's host, or read
/// its environment or files (`run`; `command`, `env` and `file` checks).
/// Such a plan acts as the server's user, so it is an admin's to submit.
fn touches_host(plan: &Plan) -> Option<&str> {
    use golive_plan::{ItemKind, Probe};
    plan.phases
        .iter()
        .flat_map(|p| &p.items)
        .chain(&plan.rollback.items)
        .find(|item| match &item.kind {
            ItemKind::Run(_) => true,
            ItemKind::Check(c) => {
                matches!(c.probe, Probe::Command(_) | Probe::Env(_) | Probe::File(_))
            }
            _ => false,
        })
        .map(|item| item.id.as_str())
}

/// `POST /api/runs/{run}/resume`: continue a stopped run in this server.
pub async fn resume(
    State(state): State<AppState>,
    Authed(caller): OperatorToken,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = run_id(&raw)?;
    let run = state.store().get_run(&id).await?;
    if run.summary.status.is_final() {
        return Err(ApiError::conflict(format!(
            "run {id} has already finished ({})",
            run.summary.status
        )));
    }
    if let (Some(owner), Some(until)) = (&run.summary.lease_owner, run.summary.lease_expires_at) {
        if until > Timestamp::now() {
            return Err(ApiError::conflict(format!(
                "run {id} is being driven by `{owner}`"
            )));
        }
    }
    let engine = engine(&state)?;
    audit(
        &state,
        &caller.actor(),
        "run.resumed",
        id.as_str(),
        None,
        None,
    )
    .await;
    spawn(&state, engine, id.clone(), None);
    Ok((StatusCode::ACCEPTED, Json(json!({ "run": id }))).into_response())
}

/// The store a run's engine writes through: passing database faults pause
/// the run instead of failing it. One wrapper per run, since it keeps the
/// run's latest finish and lease to check after a fault.
type RunStore = Retrying<golive_store::AnyStore>;

fn engine(state: &AppState) -> Result<Engine<RunStore>, ApiError> {
    let store = Retrying::new(state.store().clone(), state.config.db_retry)
        .with_observer(Arc::new(log_pause))
        .with_stop_signal(state.stop.subscribe());
    Ok(Engine::new(Arc::new(store))
        .map_err(engine_error)?
        .with_lease_ttl(state.config.lease_ttl)
        .with_stop_signal(state.stop.subscribe()))
}

/// A run's journal pauses, in the server's log.
fn log_pause(p: &Pause<'_>) {
    match p {
        Pause::Waiting { run, error, budget } => tracing::warn!(
            run = ?run.map(ToString::to_string),
            error = %error,
            "the journal is not answering; the run waits for it for up to {}s, keeping its lease",
            budget.as_secs()
        ),
        Pause::Resumed { run, waited } => tracing::info!(
            run = ?run.map(ToString::to_string),
            "the journal answers again after {:.1}s; the run goes on",
            waited.as_secs_f64()
        ),
        Pause::GaveUp { run, error, budget } => tracing::error!(
            run = ?run.map(ToString::to_string),
            error = %error,
            "the journal did not answer for {}s; the run stops",
            budget.as_secs()
        ),
    }
}

fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Store(s) => s.into(),
        EngineError::Vars(v) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_vars",
            v.to_string(),
        ),
        EngineError::Finished { .. } | EngineError::LeaseHeld { .. } => {
            ApiError::conflict(e.to_string())
        }
        other => ApiError::internal(other.to_string()),
    }
}

/// Executes (`started` given) or resumes a run in the background. A run
/// stopped by the server's shutdown is audited as [`INTERRUPTED`] so the
/// next server resumes it.
pub fn spawn(state: &AppState, engine: Engine<RunStore>, run: RunId, started: Option<Started>) {
    let state2 = state.clone();
    driving(state).insert(run.to_string());
    let task = async move {
        let result = match &started {
            Some(started) => engine.run(started).await,
            None => engine.resume(&run, &[]).await,
        };
        driving(&state2).remove(run.as_str());
        match result {
            Ok(status) => tracing::info!(run = %run, status = %status, "run {status}"),
            Err(EngineError::Stopped { .. }) => {
                let actor = Actor {
                    name: engine.owner().to_string(),
                    source: None,
                };
                audit(&state2, &actor, INTERRUPTED, run.as_str(), None, None).await;
                tracing::info!(
                    run = %run,
                    "run stopped by the shutdown; the next server resumes it"
                );
            }
            Err(e) => tracing::error!(run = %run, error = %e, "run stopped"),
        }
    };
    match state.runs.lock() {
        Ok(mut set) => {
            set.spawn(task);
        }
        Err(poisoned) => {
            poisoned.into_inner().spawn(task);
        }
    }
}

/// The ids of the runs this process drives.
fn driving(state: &AppState) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
    state.driving.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resumes the runs a stopped server left interrupted (their
/// [`INTERRUPTED`] audit entry has no later [`RESUMED`] one). The lease
/// decides between servers starting together: the loser's engine refuses.
pub async fn resume_interrupted(state: &AppState) -> Result<Vec<RunId>, ApiError> {
    let entries = state
        .store()
        .audit(&golive_store::AuditFilter {
            action_prefix: Some("server.".into()),
            limit: 10_000,
            ..Default::default()
        })
        .await?;
    let mut pending: Vec<String> = Vec::new();
    for e in entries {
        match e.action.as_str() {
            INTERRUPTED if !pending.contains(&e.target) => pending.push(e.target),
            RESUMED => pending.retain(|t| *t != e.target),
            _ => {}
        }
    }
    let mut resumed = Vec::new();
    for target in pending {
        let Ok(id) = target.parse::<RunId>() else {
            continue;
        };
        let Ok(run) = state.store().get_run(&id).await else {
            continue;
        };
        if run.summary.status.is_final() {
            continue;
        }
        let engine = engine(state)?;
        let actor = Actor {
            name: engine.owner().to_string(),
            source: None,
        };
        audit(state, &actor, RESUMED, id.as_str(), None, None).await;
        spawn(state, engine, id.clone(), None);
        resumed.push(id);
    }
    Ok(resumed)
}

/// Resumes the runs started or resumed through the API (by any server on
/// this journal) whose driver died: not finished, not paused, and a lease
/// that expired or whose holder is a process of this host that is gone. A
/// run of `golive run` in a terminal is left to its user, who holds its
/// secrets; a paused run waits for a person. The lease decides between
/// servers adopting together.
pub async fn adopt_orphans(state: &AppState) -> Result<Vec<RunId>, ApiError> {
    let now = Timestamp::now();
    let mut adopted = Vec::new();
    for run in state.store().list_runs(1000).await? {
        let orphaned = match (&run.lease_owner, run.lease_expires_at) {
            (Some(owner), Some(until)) => until < now || golive_engine::holder_gone(owner),
            _ => false,
        };
        if run.status.is_final()
            || run.status == RunStatus::Paused
            || !orphaned
            || driving(state).contains(run.id.as_str())
        {
            continue;
        }
        let api = state
            .store()
            .audit(&golive_store::AuditFilter {
                action_prefix: Some("run.".into()),
                target: Some(run.id.to_string()),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        if !api
            .iter()
            .any(|e| e.action == "run.started" || e.action == "run.resumed")
        {
            continue;
        }
        let engine = engine(state)?;
        let actor = Actor {
            name: engine.owner().to_string(),
            source: None,
        };
        audit(state, &actor, ADOPTED, run.id.as_str(), None, None).await;
        spawn(state, engine, run.id.clone(), None);
        adopted.push(run.id);
    }
    Ok(adopted)
}

/// Looks for orphaned runs ([`adopt_orphans`]) every lease ttl, until
/// aborted.
pub async fn adopt_loop(state: AppState) {
    let mut every = tokio::time::interval(state.config.lease_ttl);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match adopt_orphans(&state).await {
            Ok(ids) if !ids.is_empty() => {
                let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
                let ids = ids.join(", ");
                tracing::info!(runs = %ids, "golive serve: resuming runs whose driver died: {ids}");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(
                error = %e.log_text(),
                "golive serve: cannot look for orphaned runs"
            ),
        }
    }
}

/// Appends to the audit log; a failure is logged, not returned, because
/// the change itself is already journaled.
pub async fn audit(
    state: &AppState,
    actor: &Actor,
    action: &str,
    target: &str,
    reason: Option<String>,
    after: Option<Value>,
) {
    let entry = NewAudit {
        action: action.into(),
        target: target.into(),
        before: None,
        after,
        reason,
    };
    if let Err(e) = state.store().append_audit(actor, &entry).await {
        tracing::error!(action, target, error = %e, "cannot append to the audit log");
    }
}

/// `POST /api/runs/{run}/items/{item}/confirm` body.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// Evidence: a link, a ticket, a note.
    pub evidence: Option<String>,
    /// Blanks of the record filled, by name.
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
    /// Confirmed as not done on purpose (needs `reason`).
    #[serde(default)]
    pub skip: bool,
    /// Why it was skipped.
    pub reason: Option<String>,
}

/// `POST /api/runs/{run}/items/{item}/confirm`, by the token's name.
pub async fn confirm(
    State(state): State<AppState>,
    Authed(caller): OperatorToken,
    Path((raw, item)): Path<(String, String)>,
    JsonBody(body): JsonBody<ConfirmBody>,
) -> Result<Json<Value>, ApiError> {
    let id = run_id(&raw)?;
    item_in_path(&id, &item)?;
    if body.skip && body.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(ApiError::invalid("skip needs a reason"));
    }
    let answer = Confirm {
        by: caller.name.clone(),
        evidence: body.evidence.clone(),
        fields: body.fields.clone().into_iter().collect(),
        skip: body.skip,
        reason: body.reason.clone(),
    };
    answers::confirm(state.store(), &id, &item, &answer).await?;
    let action = if body.skip {
        "item.skipped"
    } else {
        "item.confirmed"
    };
    let after = json!({"item": item, "evidence": body.evidence, "fields": body.fields});
    audit(
        &state,
        &caller.actor(),
        action,
        id.as_str(),
        body.reason,
        Some(after),
    )
    .await;
    Ok(Json(
        json!({ "run": id, "item": item, "by": caller.name, "skipped": body.skip }),
    ))
}

/// `POST /api/runs/{run}/items/{item}/approve|reject` body.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// The sign-off role; default the token's role.
    pub role: Option<String>,
    /// A comment (required to reject).
    pub comment: Option<String>,
}

/// Signs as the token: its role must be the sign-off role asked.
async fn sign(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    item: &str,
    body: SignBody,
    decision: Decision,
) -> Result<Json<Value>, ApiError> {
    let id = run_id(raw)?;
    item_in_path(&id, item)?;
    let token_role = match &caller.role {
        Role::SignOff(r) => r.clone(),
        other => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token `{}` has role `{other}`; approvals are signed with a token of the plan's sign-off role (`golive token create --role ROLE`)",
                    caller.name
                ),
            ));
        }
    };
    let role = body.role.unwrap_or_else(|| token_role.clone());
    if role != token_role {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token `{}` signs for `{token_role}`, not `{role}`",
                caller.name
            ),
        ));
    }
    if decision == Decision::Reject && body.comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
        return Err(ApiError::invalid("a rejection needs a comment saying why"));
    }
    let answer = Sign {
        role: role.clone(),
        by: caller.name.clone(),
        decision,
        comment: body.comment.clone(),
    };
    answers::sign(state.store(), &id, item, &answer).await?;
    let action = match decision {
        Decision::Approve => "item.approved",
        Decision::Reject => "item.rejected",
    };
    audit(
        state,
        &caller.actor(),
        action,
        id.as_str(),
        body.comment,
        Some(json!({"item": item, "role": role})),
    )
    .await;
    Ok(Json(
        json!({ "run": id, "item": item, "role": role, "by": caller.name, "decision": action }),
    ))
}

/// `POST /api/runs/{run}/items/{item}/approve`
pub async fn approve(
    State(state): State<AppState>,
    Authed(caller): AnyToken,
    Path((raw, item)): Path<(String, String)>,
    JsonBody(body): JsonBody<SignBody>,
) -> Result<Json<Value>, ApiError> {
    sign(&state, &caller, &raw, &item, body, Decision::Approve).await
}

/// `POST /api/runs/{run}/items/{item}/reject`
pub async fn reject(
    State(state): State<AppState>,
    Authed(caller): AnyToken,
    Path((raw, item)): Path<(String, String)>,
    JsonBody(body): JsonBody<SignBody>,
) -> Result<Json<Value>, ApiError> {
    sign(&state, &caller, &raw, &item, body, Decision::Reject).await
}

/// `POST /api/runs/{run}/rollback` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// Why; recorded in the journal and the audit log.
    pub reason: String,
}

/// The answer to a rollback request.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RollbackView {
    /// The run.
    pub run: String,
    /// `requested`, or `already-requested` (the first request stands).
    pub outcome: String,
    /// Who asked (the first asker when it was already requested).
    pub by: String,
    /// The process driving the run, which acts at its next poll; none means
    /// the next resume performs the rollback.
    pub driver: Option<String>,
}

/// `POST /api/runs/{run}/rollback`
pub async fn rollback(
    State(state): State<AppState>,
    Authed(caller): OperatorToken,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<RollbackBody>,
) -> Result<Json<RollbackView>, ApiError> {
    let id = run_id(&raw)?;
    let answer = answers::rollback(state.store(), &id, &caller.name, &body.reason).await?;
    let view = match answer {
        RollbackAnswer::Recorded { driver } => {
            audit(
                &state,
                &caller.actor(),
                "run.rollback-requested",
                id.as_str(),
                Some(body.reason),
                None,
            )
            .await;
            RollbackView {
                run: id.to_string(),
                outcome: "requested".into(),
                by: caller.name,
                driver,
            }
        }
        RollbackAnswer::AlreadyRequested { by } => RollbackView {
            run: id.to_string(),
            outcome: "already-requested".into(),
            by,
            driver: None,
        },
    };
    Ok(Json(view))
}

/// `?format=`
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ReportQuery {
    /// `json` (default), `markdown`, `html` or `junit`.
    pub format: Option<String>,
}

/// `GET /api/runs/{run}/report`: the filled-in record (with the run's audit
/// entries: who answered through the API, and from where).
pub async fn report(
    State(state): State<AppState>,
    _: AnyToken,
    Path(raw): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let id = run_id(&raw)?;
    state.store().get_run(&id).await?;
    let r = report::build(state.store(), &id)
        .await
        .map_err(engine_error)?;
    let (kind, body) = match q.format.as_deref().unwrap_or("json") {
        "markdown" | "md" => ("text/markdown; charset=utf-8", report::to_markdown(&r)),
        "html" => ("text/html; charset=utf-8", report::to_html(&r)),
        "junit" => ("application/xml; charset=utf-8", report::to_junit(&r)),
        "json" => (
            "application/json",
            serde_json::to_string(&r).map_err(|e| ApiError::internal(e.to_string()))?,
        ),
        other => {
            return Err(ApiError::invalid(format!(
                "format `{}`: use json, markdown, html or junit",
                clip(other)
            )));
        }
    };
    Ok(([(header::CONTENT_TYPE, kind)], body).into_response())
}

/// Runs by status (all) and items of unfinished runs by status, for
/// `/metrics`.
pub async fn counts(
    state: &AppState,
) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>), ApiError> {
    let runs = state.store().list_runs(1000).await?;
    let mut by_status: std::collections::BTreeMap<String, i64> = Default::default();
    let mut items: std::collections::BTreeMap<String, i64> = Default::default();
    for r in &runs {
        *by_status.entry(r.status.to_string()).or_default() += 1;
        if !r.status.is_final() && r.status != RunStatus::Pending {
            for i in state.store().item_states(&r.id).await? {
                *items.entry(i.status.to_string()).or_default() += 1;
            }
        }
    }
    Ok((by_status.into_iter().collect(), items.into_iter().collect()))
}

/// `POST /api/runs/{run}/promote|pause|resume|abort` body.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SteerBody {
    /// Why (required to abort).
    pub reason: Option<String>,
}

async fn steer(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    command: golive_engine::answers::RolloutCommand,
    body: SteerBody,
) -> Result<Json<Value>, ApiError> {
    let id = run_id(raw)?;
    let recorded = answers::rollout(
        state.store(),
        &id,
        command,
        &caller.name,
        body.reason.as_deref(),
    )
    .await?;
    if !recorded {
        // Someone made the same request at the same moment: theirs is the
        // one recorded, and this caller must know it was not.
        return Err(ApiError::conflict(format!(
            "run {id}: the same {} was just asked by someone else; theirs stands",
            command.kind()
        )));
    }
    audit(
        state,
        &caller.actor(),
        &format!("rollout.{}", command.kind()),
        id.as_str(),
        body.reason,
        None,
    )
    .await;
    Ok(Json(
        json!({ "run": id, "request": command.kind(), "by": caller.name, "recorded": recorded }),
    ))
}

/// `POST /api/runs/{run}/incidents/{incident}/ack`: acknowledges an
/// incident of the run's watch window as the token's holder.
pub async fn ack_incident(
    State(state): State<AppState>,
    Authed(caller): OperatorToken,
    Path((raw, incident)): Path<(String, String)>,
    JsonBody(body): JsonBody<SteerBody>,
) -> Result<Json<Value>, ApiError> {
    let id = run_id(&raw)?;
    let recorded = answers::ack(
        state.store(),
        &id,
        &incident,
        &caller.name,
        body.reason.as_deref(),
    )
    .await?;
    if recorded {
        audit(
            &state,
            &caller.actor(),
            "incident.ack",
            &format!("{id}/{incident}"),
            body.reason,
            None,
        )
        .await;
    }
    Ok(Json(
        json!({ "run": id, "incident": incident, "by": caller.name, "recorded": recorded }),
    ))
}

/// `POST /api/runs/{run}/promote|pause|resume-rollout|abort`: a person's
/// say over the run's rollout; which one is the route's last segment.
pub async fn steer_rollout(
    State(state): State<AppState>,
    Authed(caller): OperatorToken,
    matched: axum::extract::MatchedPath,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<SteerBody>,
) -> Result<Json<Value>, ApiError> {
    use golive_engine::answers::RolloutCommand;
    let command = match matched.as_str().rsplit('/').next() {
        Some("promote") => RolloutCommand::Promote,
        Some("pause") => RolloutCommand::Pause,
        Some("resume-rollout") => RolloutCommand::Resume,
        Some("abort") => RolloutCommand::Abort,
        _ => return Err(ApiError::not_found("no such rollout command")),
    };
    steer(&state, &caller, &raw, command, body).await
}
