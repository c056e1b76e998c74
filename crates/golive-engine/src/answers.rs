//! People's answers to a running go-live — a confirmation, a sign-off, a
//! rollback request — checked against the stored plan and written to the
//! journal. `golive confirm/approve/reject/rollback` and the server's API
//! both come through here, so both refuse the same things in the same words.
//!
//! Everything that can be checked is checked before anything is written: the
//! run and the item exist, the run has not finished, the item is of the
//! right kind and not finished, evidence is given when the task requires it,
//! fields name blanks of the record, the signer is a member of a role the
//! approval asks, and free text fits its bound ([`limits`]). The engine
//! driving the run picks the answer up at its next poll.

use golive_plan::{Item, ItemKind, Plan};
use golive_store::{
    Decision, ItemStatus, NewConfirmation, NewSignature, Run, RunId, RunStatus, Store, StoreError,
};
use jiff::Timestamp;

use crate::{EngineError, item_ids, request, stored_plan};

/// How long people's free text may be, in bytes. The journal keeps every
/// answer for good, the report prints it and the dashboard's event stream
/// sends it in batches: text without a bound would let one request make
/// each of them large. Long evidence (a log, a screenshot) belongs in a
/// file or a link that the evidence names.
pub mod limits {
    /// A person's name (`by`).
    pub const NAME: usize = 200;
    /// A reason, a comment, a blank's value.
    pub const NOTE: usize = 4 * 1024;
    /// A confirmation's evidence.
    pub const EVIDENCE: usize = 64 * 1024;
}

/// Refuses `text` longer than `max` bytes, naming `what` and both sizes.
pub fn bounded(what: &str, text: &str, max: usize) -> Result<(), AnswerError> {
    if text.len() <= max {
        return Ok(());
    }
    Err(AnswerError::Invalid(format!(
        "{what} is {} bytes long; at most {max} are recorded (put long text in a file or a link, and give that)",
        text.len()
    )))
}

/// Why an answer was refused. [`AnswerError::class`] sorts them for HTTP.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// No such run.
    #[error("no run {0} in the journal")]
    NoRun(RunId),
    /// No such item in the run's plan.
    #[error("run {run} has no item `{item}`; its items are: {known}")]
    NoItem {
        /// The run.
        run: RunId,
        /// The id asked for.
        item: String,
        /// The ids there are, comma-separated.
        known: String,
    },
    /// The run has ended.
    #[error("run {run} has already finished ({status}); {what}")]
    RunFinished {
        /// The run.
        run: RunId,
        /// How it ended.
        status: RunStatus,
        /// What therefore cannot happen.
        what: &'static str,
    },
    /// The item has finished.
    #[error("item `{item}` of run {run} is already {status}")]
    ItemFinished {
        /// The run.
        run: RunId,
        /// The item.
        item: String,
        /// How it finished.
        status: ItemStatus,
    },
    /// The answer does not fit the item, or lacks something it needs.
    #[error("{0}")]
    Invalid(String),
    /// The run is not in its watch window (alerts are taken only there).
    #[error("run {0} is not in its watch window: alerts open incidents only there")]
    NotWatching(RunId),
    /// The same answer was already given: the first one stands.
    #[error("{0}")]
    AlreadyAnswered(String),
    /// The journal failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored plan no longer compiles.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// How an [`AnswerError`] should be reported to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerClass {
    /// Unknown run or item (HTTP 404).
    NotFound,
    /// Refused as given (HTTP 400 / 422).
    Invalid,
    /// Conflicts with the run's state (HTTP 409).
    Conflict,
    /// The journal failed (HTTP 500 / 503).
    Internal,
}

impl AnswerError {
    /// How to report it.
    pub fn class(&self) -> AnswerClass {
        match self {
            AnswerError::NoRun(_) | AnswerError::NoItem { .. } => AnswerClass::NotFound,
            AnswerError::Invalid(_) => AnswerClass::Invalid,
            AnswerError::RunFinished { .. }
            | AnswerError::ItemFinished { .. }
            | AnswerError::NotWatching(_)
            | AnswerError::AlreadyAnswered(_) => AnswerClass::Conflict,
            AnswerError::Store(StoreError::NotFound(_)) => AnswerClass::NotFound,
            AnswerError::Store(_) | AnswerError::Engine(_) => AnswerClass::Internal,
        }
    }
}

/// A confirmation of a task (or of an interrupted item's question).
#[derive(Clone, Debug, Default)]
pub struct Confirm {
    /// Who confirms.
    pub by: String,
    /// Evidence text (a file's content already read by the caller).
    pub evidence: Option<String>,
    /// Blanks of the record filled: `(name, value)`.
    pub fields: Vec<(String, String)>,
    /// Confirmed as not done on purpose.
    pub skip: bool,
    /// Why it was skipped.
    pub reason: Option<String>,
}

/// A sign-off for one role of an approval.
#[derive(Clone, Debug)]
pub struct Sign {
    /// The role signed for.
    pub role: String,
    /// Who signs; must be a member of the role in the plan.
    pub by: String,
    /// Approve or reject.
    pub decision: Decision,
    /// A comment (required by the CLI for a rejection).
    pub comment: Option<String>,
}

/// What a rollback request found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollbackAnswer {
    /// Recorded; `driver` is the process holding the run, if one is alive.
    Recorded {
        /// The live lease owner, who acts at its next poll.
        driver: Option<String>,
    },
    /// A rollback had already been requested by `by`; it stands.
    AlreadyRequested {
        /// Who asked first.
        by: String,
    },
}

async fn get_run<S: Store>(store: &S, run: &RunId) -> Result<Run, AnswerError> {
    match store.get_run(run).await {
        Ok(r) => Ok(r),
        Err(StoreError::NotFound(_)) => Err(AnswerError::NoRun(run.clone())),
        Err(e) => Err(e.into()),
    }
}

fn refuse_finished(run: &Run, what: &'static str) -> Result<(), AnswerError> {
    if run.summary.status.is_final() {
        return Err(AnswerError::RunFinished {
            run: run.summary.id.clone(),
            status: run.summary.status,
            what,
        });
    }
    Ok(())
}

/// The run's item with this id (phases and rollback).
pub fn find_item<'p>(plan: &'p Plan, run: &RunId, id: &str) -> Result<&'p Item, AnswerError> {
    plan.items()
        .map(|(_, i)| i)
        .chain(plan.rollback.items.iter())
        .find(|i| i.id.as_str() == id)
        .ok_or_else(|| AnswerError::NoItem {
            run: run.clone(),
            item: id.to_string(),
            known: item_ids(plan).join(", "),
        })
}

async fn open_item<S: Store>(store: &S, run: &Run, item: &str) -> Result<ItemStatus, AnswerError> {
    let status = store
        .item_states(&run.summary.id)
        .await?
        .into_iter()
        .find(|s| s.item_id == item)
        .map(|s| s.status)
        .ok_or_else(|| AnswerError::NoItem {
            run: run.summary.id.clone(),
            item: item.to_string(),
            known: String::new(),
        })?;
    if status.is_finished() {
        return Err(AnswerError::ItemFinished {
            run: run.summary.id.clone(),
            item: item.to_string(),
            status,
        });
    }
    Ok(status)
}

const NOT_SIGNED: &str = "nothing can be confirmed or signed";

/// Confirms (or skips) an item: a task, or an item interrupted with
/// `on_interrupt: ask` whose question is answered this way.
pub async fn confirm<S: Store>(
    store: &S,
    run_id: &RunId,
    item_id: &str,
    answer: &Confirm,
) -> Result<(), AnswerError> {
    if answer.by.trim().is_empty() {
        return Err(AnswerError::Invalid(
            "the confirmer's name must not be empty: the record says who did it".into(),
        ));
    }
    bounded("the confirmer's name", &answer.by, limits::NAME)?;
    if let Some(evidence) = &answer.evidence {
        bounded("the evidence", evidence, limits::EVIDENCE)?;
    }
    if let Some(reason) = &answer.reason {
        bounded("the reason", reason, limits::NOTE)?;
    }
    for (name, value) in &answer.fields {
        bounded("a blank's name", name, limits::NAME)?;
        bounded(&format!("blank `{name}`"), value, limits::NOTE)?;
    }
    let run = get_run(store, run_id).await?;
    refuse_finished(&run, NOT_SIGNED)?;
    let plan = stored_plan(&run)?;
    let item = find_item(&plan, run_id, item_id)?;
    let status = open_item(store, &run, item_id).await?;
    match &item.kind {
        ItemKind::Task(task) => {
            if task.evidence_required && !answer.skip && answer.evidence.is_none() {
                return Err(AnswerError::Invalid(format!(
                    "task `{item_id}` requires evidence: add --evidence TEXT or --evidence @FILE"
                )));
            }
            check_fields(&plan, item, &task.fields, &answer.fields)?;
        }
        _ if !answer.fields.is_empty() => {
            return Err(AnswerError::Invalid(format!(
                "item `{item_id}` is a {} item; only tasks take --field",
                item.kind.name()
            )));
        }
        ItemKind::Approval(_) => {
            return Err(AnswerError::Invalid(format!(
                "item `{item_id}` is an approval: sign it with `golive approve` or `golive reject`"
            )));
        }
        // An interrupted item's question (rerun or skip) is answered the same way.
        _ if matches!(status, ItemStatus::Interrupted | ItemStatus::Waiting) => {}
        kind => {
            return Err(AnswerError::Invalid(format!(
                "item `{item_id}` is a {} item ({status}); only tasks, and items interrupted with `on_interrupt: ask`, are confirmed",
                kind.name()
            )));
        }
    }
    let new = NewConfirmation {
        by: answer.by.clone(),
        evidence: crate::report::encode_evidence(answer.evidence.as_deref(), &answer.fields),
        skipped: answer.skip,
        reason: answer.reason.clone(),
    };
    if !store.confirm(run_id, item_id, &new).await? {
        return Err(AnswerError::AlreadyAnswered(format!(
            "item `{item_id}` of run {run_id} was already confirmed; the first confirmation stands"
        )));
    }
    Ok(())
}

/// `fields` fill blanks of the record: one of the task's `fields`, its
/// phase's `record` or the plan's `record`. The values ride in the
/// confirmation's evidence (see [`crate::report::encode_evidence`]).
fn check_fields(
    plan: &Plan,
    item: &Item,
    task_fields: &[String],
    given: &[(String, String)],
) -> Result<(), AnswerError> {
    let phase_record = plan
        .phases
        .iter()
        .find(|p| p.items.iter().any(|i| i.id == item.id))
        .map(|p| p.record.as_slice())
        .unwrap_or_default();
    let known: Vec<&String> = task_fields
        .iter()
        .chain(phase_record)
        .chain(&plan.record)
        .collect();
    for (name, _) in given {
        if !known.contains(&name) {
            let list = if known.is_empty() {
                "none: the task, its phase and the plan have no blanks".to_string()
            } else {
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(AnswerError::Invalid(format!(
                "`{name}` is not a blank of task `{}`; it can fill: {list}",
                item.id
            )));
        }
    }
    Ok(())
}

/// Signs an approval for one role. Only a member of a role the approval
/// asks may sign for it; the first decision of a role stands.
pub async fn sign<S: Store>(
    store: &S,
    run_id: &RunId,
    item_id: &str,
    answer: &Sign,
) -> Result<(), AnswerError> {
    bounded("the signer's name", &answer.by, limits::NAME)?;
    if let Some(comment) = &answer.comment {
        bounded("the comment", comment, limits::NOTE)?;
    }
    let run = get_run(store, run_id).await?;
    refuse_finished(&run, NOT_SIGNED)?;
    let plan = stored_plan(&run)?;
    let item = find_item(&plan, run_id, item_id)?;
    let ItemKind::Approval(approval) = &item.kind else {
        return Err(AnswerError::Invalid(format!(
            "item `{item_id}` is a {} item, not an approval",
            item.kind.name()
        )));
    };
    if !approval.roles.iter().any(|r| r.as_str() == answer.role) {
        let roles: Vec<&str> = approval.roles.iter().map(|r| r.as_str()).collect();
        return Err(AnswerError::Invalid(format!(
            "approval `{item_id}` does not ask role `{}`; it asks: {}",
            answer.role,
            roles.join(", ")
        )));
    }
    let members = plan
        .roles
        .get(answer.role.as_str())
        .map(|r| r.members.as_slice())
        .unwrap_or_default();
    if !members.contains(&answer.by) {
        return Err(AnswerError::Invalid(format!(
            "`{}` is not a member of role `{}` in the plan (members: {})",
            answer.by,
            answer.role,
            members.join(", ")
        )));
    }
    open_item(store, &run, item_id).await?;
    let new = NewSignature {
        role: answer.role.clone(),
        by: answer.by.clone(),
        decision: answer.decision,
        comment: answer.comment.clone(),
    };
    if !store.sign(run_id, item_id, &new).await? {
        return Err(AnswerError::AlreadyAnswered(format!(
            "role `{}` already signed `{item_id}` of run {run_id}; the first decision stands",
            answer.role
        )));
    }
    Ok(())
}

/// Asks for a run to be rolled back (see [`crate::request_rollback`]).
pub async fn rollback<S: Store>(
    store: &S,
    run_id: &RunId,
    by: &str,
    reason: &str,
) -> Result<RollbackAnswer, AnswerError> {
    if reason.trim().is_empty() || by.trim().is_empty() {
        return Err(AnswerError::Invalid(
            "--reason and --by must not be empty: the journal records who rolled back and why"
                .into(),
        ));
    }
    bounded("the name given by --by", by, limits::NAME)?;
    bounded("the reason", reason, limits::NOTE)?;
    let run = get_run(store, run_id).await?;
    refuse_finished(&run, "there is nothing to roll back")?;
    if !request::request_rollback(store, run_id, by, reason).await? {
        let earlier = request::rollback_request(store, run_id).await?;
        return Ok(RollbackAnswer::AlreadyRequested {
            by: earlier.map(|s| s.by).unwrap_or_default(),
        });
    }
    let driver = match (&run.summary.lease_owner, run.summary.lease_expires_at) {
        (Some(owner), Some(until)) if until > Timestamp::now() => Some(owner.clone()),
        _ => None,
    };
    Ok(RollbackAnswer::Recorded { driver })
}

/// A person's say over a rollout under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutCommand {
    /// End the current pause: on to the next step.
    Promote,
    /// Hold the rollout where it is (analysis goes on).
    Pause,
    /// Let a held rollout go on.
    Resume,
    /// Roll the rollout back (the canary's weight to 0).
    Abort,
}

impl RolloutCommand {
    /// The request kind's prefix (see `items::rollout::request`).
    pub fn kind(self) -> &'static str {
        use crate::items::rollout::request;
        match self {
            RolloutCommand::Promote => request::PROMOTE,
            RolloutCommand::Pause => request::PAUSE,
            RolloutCommand::Resume => request::RESUME,
            RolloutCommand::Abort => request::ABORT,
        }
    }
}

/// Is the run's rollout held: more `pause` requests than `resume` ones?
pub fn rollout_held(requests: &[golive_store::Request]) -> bool {
    requests_of(requests, RolloutCommand::Pause.kind())
        > requests_of(requests, RolloutCommand::Resume.kind())
}

/// How many requests are of the kind `prefix` (numbered `prefix:N`).
fn requests_of(requests: &[golive_store::Request], prefix: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.kind.split(':').next() == Some(prefix))
        .count()
}

/// Records `promote`, `pause`, `resume` or `abort` for the run's rollout
/// (lease-free, journaled with who and why); the engine acts at its next
/// evaluation. Numbered kinds (`promote:3`) let a command be repeated;
/// `false` when the same request was just made by someone else (the first
/// stands).
pub async fn rollout<S: Store>(
    store: &S,
    run_id: &RunId,
    command: RolloutCommand,
    by: &str,
    reason: Option<&str>,
) -> Result<bool, AnswerError> {
    if by.trim().is_empty() {
        return Err(AnswerError::Invalid(
            "--by must not be empty: the journal records who decided".into(),
        ));
    }
    bounded("the name given by --by", by, limits::NAME)?;
    if let Some(reason) = reason {
        bounded("the reason", reason, limits::NOTE)?;
    }
    if command == RolloutCommand::Abort && reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(AnswerError::Invalid(
            "abort needs --reason: the journal records why".into(),
        ));
    }
    let run = get_run(store, run_id).await?;
    refuse_finished(&run, "there is no rollout to steer")?;
    let requests = store.requests(run_id).await?;
    let count = |prefix: &str| requests_of(&requests, prefix);
    let paused = rollout_held(&requests);
    match command {
        RolloutCommand::Pause if paused => {
            return Err(AnswerError::AlreadyAnswered(format!(
                "run {run_id} is already paused; `golive resume {run_id}` lets it go on"
            )));
        }
        RolloutCommand::Resume if !paused => {
            return Err(AnswerError::Invalid(format!("run {run_id} is not paused")));
        }
        // Each promote ends one pause. Two people pressing promote for the
        // same pause, one just after the other, must not move the rollout
        // two steps: while a promote has not been used, another is refused.
        RolloutCommand::Promote => {
            let used = store
                .events_after(run_id, 0, u32::MAX)
                .await?
                .iter()
                .filter(|e| e.kind == crate::items::rollout::event::PROMOTED)
                .count();
            if count(command.kind()) > used {
                let by = requests
                    .iter()
                    .rev()
                    .find(|r| r.kind.split(':').next() == Some(command.kind()))
                    .map(|r| r.by.as_str())
                    .unwrap_or_default();
                return Err(AnswerError::AlreadyAnswered(format!(
                    "run {run_id}: a promote by `{by}` has not been used yet; it ends the rollout's current (or next) pause, once"
                )));
            }
        }
        _ => {}
    }
    let kind = match command {
        RolloutCommand::Abort => command.kind().to_string(),
        _ => format!("{}:{}", command.kind(), count(command.kind()) + 1),
    };
    Ok(store
        .request(
            run_id,
            &golive_store::NewRequest {
                kind,
                by: by.into(),
                reason: reason.map(str::to_string),
            },
        )
        .await?)
}

/// Acknowledges an open incident of the run's watch window (lease-free,
/// journaled with who and why): its escalation stops at the engine's next
/// look. `false` when someone else just asked the same (the first stands).
pub async fn ack<S: Store>(
    store: &S,
    run_id: &RunId,
    incident: &str,
    by: &str,
    reason: Option<&str>,
) -> Result<bool, AnswerError> {
    use crate::monitor::event;
    if by.trim().is_empty() {
        return Err(AnswerError::Invalid(
            "--by must not be empty: the journal records who acknowledged".into(),
        ));
    }
    bounded("the name given by --by", by, limits::NAME)?;
    if let Some(reason) = reason {
        bounded("the reason", reason, limits::NOTE)?;
    }
    let run = get_run(store, run_id).await?;
    refuse_finished(&run, "its watch window is over")?;
    let events = store.events_after(run_id, 0, u32::MAX).await?;
    let of = |kind: &'static str| {
        events
            .iter()
            .filter(move |e| e.kind == kind)
            .filter_map(|e| e.data["incident"].as_str())
    };
    if !of(event::OPENED).any(|i| i == incident) {
        let known: Vec<&str> = of(event::OPENED).collect();
        return Err(AnswerError::NoItem {
            run: run_id.clone(),
            item: format!("incident {incident}"),
            known: if known.is_empty() {
                "(no incident so far)".into()
            } else {
                known.join(", ")
            },
        });
    }
    for (kind, what) in [
        (event::RESOLVED, "resolved"),
        (event::ACKNOWLEDGED, "acknowledged"),
    ] {
        if of(kind).any(|i| i == incident) {
            return Err(AnswerError::AlreadyAnswered(format!(
                "incident {incident} of run {run_id} is already {what}"
            )));
        }
    }
    Ok(store
        .request(
            run_id,
            &golive_store::NewRequest {
                kind: format!("{}:{incident}", crate::monitor::ACK),
                by: by.into(),
                reason: reason.map(str::to_string),
            },
        )
        .await?)
}

/// Records alerts (Alertmanager's) for the run's watch window, lease-free:
/// each as the request `alert:KEY` or `alert-resolved:KEY` (see
/// [`crate::monitor::Alert`]), which the engine driving the run turns into
/// an incident opened or resolved at its next poll. A notification already
/// recorded is not recorded again — Alertmanager repeats them — so the
/// answer is how many were new.
pub async fn alerts<S: Store>(
    store: &S,
    run_id: &RunId,
    alerts: &[crate::monitor::Alert],
    by: &str,
) -> Result<usize, AnswerError> {
    let run = get_run(store, run_id).await?;
    refuse_finished(&run, "its watch window is over")?;
    let events = store.events_after(run_id, 0, u32::MAX).await?;
    if !crate::monitor::window_open(&events) {
        return Err(AnswerError::NotWatching(run_id.clone()));
    }
    let mut recorded = 0;
    for alert in alerts {
        // The firing notification carries the evidence; the resolved one
        // only has to name the key.
        let reason = if alert.firing {
            Some(serde_json::to_string(alert).map_err(|e| AnswerError::Invalid(e.to_string()))?)
        } else {
            None
        };
        let new = golive_store::NewRequest {
            kind: alert.request_kind(),
            by: by.into(),
            reason,
        };
        recorded += usize::from(store.request(run_id, &new).await?);
    }
    Ok(recorded)
}
