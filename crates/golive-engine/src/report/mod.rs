//! The go-live record of a run: the plan filled in with what happened.
//!
//! A go-live is not over when the last item passes: someone has to hand in
//! the completed checklist — who confirmed what and when, who signed, what
//! the commands printed, what the checks observed, the blanks filled in.
//! [`build`] reads all of it from the journal into a [`Report`], one plain
//! data structure, which is also the stable JSON shape (`golive report
//! --format json`); the renderers only format it, so the CLI and, later,
//! the server print the same record.
//!
//! # Layout
//! - this file: the [`Report`] model and [`build`], and how field values
//!   travel inside a confirmation's evidence ([`encode_evidence`],
//!   [`decode_evidence`]).
//! - `markdown`: the record as a completed copy of the checklist.
//! - `html`: one self-contained page (inline CSS, every text escaped).
//! - `junit`: one test case per item, for CI systems.
//!
//! # The JSON shape (`report_version` 1)
//! `report_version`, `run` ({`id`, `status`, `t0`, `created_at`,
//! `started_at`, `finished_at`, `plan_sha256`}), `plan` ({`name`,
//! `version`, `environment`, `owner`, `description`}), `record` (plan-level
//! blanks: [`Blank`]), `phases` ([`PhaseReport`]: `id`, `title`, `at`,
//! `planned_start`, `started_at`, `finished_at`, `record`, `items`),
//! `rollback` (rollback items), `rollback_events`, `audit` (what was done
//! through the server: who, from where, what), `summary` (counts by
//! result) and `lessons` (empty lists for the retrospective). Each item
//! ([`ItemReport`]) has `id`, `title`, `kind`, `result` (passed | failed |
//! skipped | interrupted | pending), `status` (the journal's), `attempts`,
//! times, `subtasks`, `fields`, `confirmation`, `signatures`, `command`,
//! `check`, `rollout` (traffic changes and decisions) and `error`. Times
//! are RFC 3339 UTC. Fields are only ever added.

mod html;
mod junit;
mod markdown;

use std::collections::{BTreeMap, BTreeSet};

use golive_plan::{Item, ItemKind, Plan};
use golive_store::{Decision, ItemState, ItemStatus, RunId, RunStatus, Store, kind};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::{EngineError, stored_plan};

pub use html::to_html;
pub use junit::{to_junit, xml_escape};
pub use markdown::to_markdown;

/// The version of the JSON shape; raised only if a field changes meaning.
pub const REPORT_VERSION: u32 = 1;

/// How many lines of a command's output the report keeps at each end.
const EXCERPT_LINES: usize = 5;

/// The filled-in go-live record of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub report_version: u32,
    /// The run.
    pub run: RunInfo,
    /// What went live.
    pub plan: PlanInfo,
    /// The plan-level blanks (`record:`), filled in or not.
    pub record: Vec<Blank>,
    /// The phases in plan order.
    pub phases: Vec<PhaseReport>,
    /// The rollback items (run only when the go-live rolled back).
    pub rollback: Vec<ItemReport>,
    /// Every decision to roll back, and its end.
    pub rollback_events: Vec<RollbackEvent>,
    /// The watch window after the go-live, if it started.
    pub watch: Option<crate::monitor::WatchRecord>,
    /// The communication schedule: each message, sent or not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub comms: Vec<crate::comms::CommRecord>,
    /// What was done to the run through the server (who, from where, what),
    /// from the audit log, oldest first.
    pub audit: Vec<golive_store::AuditEntry>,
    /// How many items ended which way (phases and rollback).
    pub summary: BTreeMap<ResultKind, u32>,
    /// Empty lists for the retrospective, filled in by people.
    pub lessons: Lessons,
}

/// The run's identity and times.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    /// Its id.
    pub id: RunId,
    /// Where it is.
    pub status: RunStatus,
    /// The go-live moment, if known.
    pub t0: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its first item started.
    pub started_at: Option<Timestamp>,
    /// When it ended (the final status's event), if it has.
    pub finished_at: Option<Timestamp>,
    /// SHA-256 of the plan text it ran.
    pub plan_sha256: String,
}

/// The plan's metadata.
#[derive(Clone, Debug, Serialize)]
pub struct PlanInfo {
    /// What goes live.
    pub name: String,
    /// Version released.
    pub version: Option<String>,
    /// Target environment.
    pub environment: Option<String>,
    /// Accountable team or person.
    pub owner: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

/// One blank of the record (`record:` of the plan or a phase, a task's
/// `fields`) and the value a person gave it, if any.
#[derive(Clone, Debug, Serialize)]
pub struct Blank {
    /// The blank's name, e.g. `Start Time`.
    pub name: String,
    /// The value given.
    pub value: Option<String>,
    /// Who gave it.
    pub by: Option<String>,
    /// When.
    pub at: Option<Timestamp>,
}

/// One phase with its items.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its T-offset as written (`T-1d`).
    pub at: Option<String>,
    /// t0 + at, when both are known.
    pub planned_start: Option<Timestamp>,
    /// When its first item started.
    pub started_at: Option<Timestamp>,
    /// When its last item finished, once all have.
    pub finished_at: Option<Timestamp>,
    /// Its blanks.
    pub record: Vec<Blank>,
    /// Its items in order.
    pub items: Vec<ItemReport>,
}

/// How an item ended, as a record reader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultKind {
    /// Done and good.
    Passed,
    /// Done and bad.
    Failed,
    /// Not done, on purpose.
    Skipped,
    /// Its process died while it ran, and nobody answered yet.
    Interrupted,
    /// Not reached, or still running or waiting.
    Pending,
}

impl ResultKind {
    /// The word shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultKind::Passed => "passed",
            ResultKind::Failed => "failed",
            ResultKind::Skipped => "skipped",
            ResultKind::Interrupted => "interrupted",
            ResultKind::Pending => "pending",
        }
    }

    fn of(status: ItemStatus) -> ResultKind {
        match status {
            ItemStatus::Passed => ResultKind::Passed,
            ItemStatus::Failed => ResultKind::Failed,
            ItemStatus::Skipped => ResultKind::Skipped,
            ItemStatus::Interrupted => ResultKind::Interrupted,
            ItemStatus::Pending | ItemStatus::Running | ItemStatus::Waiting => ResultKind::Pending,
        }
    }
}

/// One item and what happened to it.
#[derive(Clone, Debug, Serialize)]
pub struct ItemReport {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its kind (`task`, `check`, …).
    pub kind: &'static str,
    /// How it ended.
    pub result: ResultKind,
    /// Its status in the journal.
    pub status: ItemStatus,
    /// How many times it started.
    pub attempts: u32,
    /// The responsible role.
    pub owner: Option<String>,
    /// Whether its failure fails the go-live.
    pub critical: bool,
    /// When its last attempt started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Nested checklist lines, done with the item.
    pub subtasks: Vec<String>,
    /// The task's blanks (`fields:`).
    pub fields: Vec<Blank>,
    /// Who confirmed (or skipped) it.
    pub confirmation: Option<ConfirmationNote>,
    /// Sign-offs, oldest first.
    pub signatures: Vec<SignatureNote>,
    /// A `run` item's command and output excerpts.
    pub command: Option<CommandNote>,
    /// A `check` item's conditions and observed values.
    pub check: Option<CheckNote>,
    /// A `rollout` item's traffic changes and decisions, in order.
    pub rollout: Vec<RolloutNote>,
    /// A `rollout` item's record: each step with its numbers, the times to
    /// detect and to roll back, the flags before and after.
    pub rollout_record: Option<RolloutRecord>,
    /// Why it failed, when the result says.
    pub error: Option<String>,
}

/// One moment of a rollout: traffic moved, or a decision taken (with the
/// numbers that decided it).
#[derive(Clone, Debug, Serialize)]
pub struct RolloutNote {
    /// When.
    pub at: Timestamp,
    /// `traffic` or `decision`.
    pub kind: &'static str,
    /// The canary's weight after a traffic change.
    pub weight: Option<u64>,
    /// What and why, in words.
    pub text: String,
}

/// What a rollout item's result records (`golive_engine`'s rollout item
/// writes it): the steps it held, and what it did to the flags.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RolloutRecord {
    /// Each step held, in order (a rolled-back step included).
    pub steps: Vec<StepRecord>,
    /// Seconds from the start of the step where something was first wrong
    /// to that moment.
    pub detected_after_step_start_s: Option<f64>,
    /// Seconds from then to the canary's weight 0.
    pub rolled_back_after_detection_s: Option<f64>,
    /// The flags the rollout could change (its traffic flag, those its
    /// levels disable), before it started and when it ended.
    pub flags: Vec<FlagChange>,
}

/// One step of a rollout, as held.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    /// Its index in the plan (0 first).
    pub step: u64,
    /// The canary's weight.
    pub weight: u64,
    /// Blue-green's watch after the switch rather than a step.
    pub watch: bool,
    /// How long it was held, in seconds.
    pub held_s: f64,
    /// How many evaluations it saw.
    pub evaluations: u64,
    /// Each metric's last values, canary and stable.
    pub values: BTreeMap<String, [Option<f64>; 2]>,
    /// How it ended: `next`, `rollback` or `freeze`.
    pub ended: String,
    /// Why, when it did not simply go on.
    pub why: Option<String>,
}

/// A flag before and after a rollout (`null`: no such flag).
#[derive(Clone, Debug, Serialize)]
pub struct FlagChange {
    /// The flag's key.
    pub key: String,
    /// Its definition when the rollout started.
    pub before: Value,
    /// Its definition when it ended.
    pub after: Value,
}

impl FlagChange {
    /// A definition in words: `absent`, `off`, `on`, `on at 25%`.
    pub fn describe(definition: &Value) -> String {
        if definition.is_null() {
            return "absent".into();
        }
        let on = definition.get("enabled").and_then(Value::as_bool) == Some(true);
        match (on, definition.get("percentage").and_then(Value::as_f64)) {
            (false, _) => "off".into(),
            (true, Some(p)) => format!("on at {p}%"),
            (true, None) => "on".into(),
        }
    }
}

impl RolloutRecord {
    fn of(result: &Value) -> Option<RolloutRecord> {
        let steps = result.get("steps")?.as_array()?;
        let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
        let steps = steps
            .iter()
            .map(|st| StepRecord {
                step: st.get("step").and_then(Value::as_u64).unwrap_or(0),
                weight: st.get("weight").and_then(Value::as_u64).unwrap_or(0),
                watch: st.get("watch").and_then(Value::as_bool).unwrap_or(false),
                held_s: num(st, "held_s").unwrap_or(0.0),
                evaluations: st.get("evaluations").and_then(Value::as_u64).unwrap_or(0),
                values: st
                    .get("values")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), [num(v, "canary"), num(v, "stable")]))
                            .collect()
                    })
                    .unwrap_or_default(),
                ended: st
                    .get("ended")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                why: st.get("why").and_then(Value::as_str).map(str::to_string),
            })
            .collect();
        let flags = result
            .get("flags")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| FlagChange {
                        key: k.clone(),
                        before: v.get("before").cloned().unwrap_or(Value::Null),
                        after: v.get("after").cloned().unwrap_or(Value::Null),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(RolloutRecord {
            steps,
            detected_after_step_start_s: num(result, "detected_after_step_start_s"),
            rolled_back_after_detection_s: num(result, "rolled_back_after_detection_s"),
            flags,
        })
    }

    /// The steps as a table, for every format alike: the header, then one
    /// row a step (values as `canary / stable`).
    pub fn table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let metrics: BTreeSet<&String> = self.steps.iter().flat_map(|s| s.values.keys()).collect();
        let mut header: Vec<String> = ["step", "canary weight", "held", "evaluations"]
            .map(String::from)
            .to_vec();
        header.extend(metrics.iter().map(|m| format!("{m} (canary / stable)")));
        header.push("ended".into());
        let value = |v: Option<f64>| v.map_or_else(|| "-".to_string(), short_number);
        let rows = self
            .steps
            .iter()
            .map(|s| {
                let mut row = vec![
                    if s.watch {
                        format!("{} (watch)", s.step + 1)
                    } else {
                        (s.step + 1).to_string()
                    },
                    format!("{}%", s.weight),
                    format!("{:.1} s", s.held_s),
                    s.evaluations.to_string(),
                ];
                for m in &metrics {
                    let [canary, stable] = s.values.get(*m).copied().unwrap_or_default();
                    row.push(format!("{} / {}", value(canary), value(stable)));
                }
                row.push(match &s.why {
                    Some(why) => format!("{}: {why}", s.ended),
                    None => s.ended.clone(),
                });
                row
            })
            .collect();
        (header, rows)
    }

    /// The lines below the table: detection and rollback times, flags.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(d) = self.detected_after_step_start_s {
            let mut line = format!("Detected {d:.1} s into the step");
            if let Some(r) = self.rolled_back_after_detection_s {
                line.push_str(&format!("; traffic back on stable {r:.1} s later"));
            }
            out.push(line);
        }
        for f in &self.flags {
            out.push(format!(
                "Flag `{}`: {} before, {} after",
                f.key,
                FlagChange::describe(&f.before),
                FlagChange::describe(&f.after)
            ));
        }
        out
    }
}

/// A metric value for a table: at most four significant digits.
fn short_number(v: f64) -> String {
    if !v.is_finite() || v == v.trunc() {
        return format!("{v}");
    }
    let digits = (4 - v.abs().log10().ceil() as i32).clamp(0, 8) as usize;
    let s = format!("{v:.digits$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn rollout_notes(events: &[golive_store::Event], item: &str) -> Vec<RolloutNote> {
    events
        .iter()
        .filter(|e| e.item_id.as_deref() == Some(item))
        .filter_map(|e| {
            let text = |k: &str| e.data.get(k).and_then(Value::as_str).unwrap_or_default();
            match e.kind.as_str() {
                "rollout.weight" => Some(RolloutNote {
                    at: e.at,
                    kind: "traffic",
                    weight: e.data.get("weight").and_then(Value::as_u64),
                    text: format!(
                        "canary {}%, stable {}% ({})",
                        e.data["weight"],
                        e.data["stable"],
                        text("why")
                    ),
                }),
                "rollout.decision" => Some(RolloutNote {
                    at: e.at,
                    kind: "decision",
                    weight: None,
                    text: match e.data.get("level").and_then(Value::as_str) {
                        Some(level) => format!("level `{level}`: {}", text("why")),
                        None => format!("{}: {}", text("action"), text("why")),
                    },
                }),
                _ => None,
            }
        })
        .collect()
}

/// A confirmation as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct ConfirmationNote {
    /// Who.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// The evidence text (field values taken out).
    pub evidence: Option<String>,
    /// Confirmed as not done on purpose.
    pub skipped: bool,
    /// Why it was skipped.
    pub reason: Option<String>,
}

/// A sign-off as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct SignatureNote {
    /// The role signed for.
    pub role: String,
    /// Who.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Approve or reject.
    pub decision: Decision,
    /// Free text.
    pub comment: Option<String>,
}

/// A command and the ends of its output (already redacted in the journal).
#[derive(Clone, Debug, Serialize)]
pub struct CommandNote {
    /// The command text.
    pub command: String,
    /// Its exit code, if it exited.
    pub exit_code: Option<i64>,
    /// Whether it ran out of time.
    pub timed_out: bool,
    /// How long the last attempt took.
    pub duration_ms: Option<u64>,
    /// Standard output's ends.
    pub stdout: Excerpt,
    /// Standard error's ends.
    pub stderr: Excerpt,
}

/// The first and last lines of a text; `tail` is empty when `head` holds it all.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Excerpt {
    /// How many lines there were.
    pub lines: usize,
    /// The first lines.
    pub head: Vec<String>,
    /// The last lines, when there were more than fit in `head` and `tail`.
    pub tail: Vec<String>,
}

impl Excerpt {
    fn of(text: &str) -> Excerpt {
        let all: Vec<&str> = text.lines().collect();
        let n = all.len();
        if n <= 2 * EXCERPT_LINES {
            return Excerpt {
                lines: n,
                head: all.iter().map(|l| l.to_string()).collect(),
                tail: Vec::new(),
            };
        }
        Excerpt {
            lines: n,
            head: all[..EXCERPT_LINES].iter().map(|l| l.to_string()).collect(),
            tail: all[n - EXCERPT_LINES..]
                .iter()
                .map(|l| l.to_string())
                .collect(),
        }
    }

    /// Whether there is no output at all.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }
}

/// A check's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct CheckNote {
    /// `pass`, `fail` or `error`.
    pub status: Option<String>,
    /// Why the probe could not observe its target.
    pub error: Option<String>,
    /// Each condition with what was observed.
    pub conditions: Vec<ConditionNote>,
}

/// One condition of a check.
#[derive(Clone, Debug, Serialize)]
pub struct ConditionNote {
    /// As written, e.g. `status == 200`.
    pub condition: String,
    /// Whether it held.
    pub passed: bool,
    /// The observed value.
    pub observed: Option<String>,
}

/// A move of the run into or out of rollback, from the journal.
#[derive(Clone, Debug, Serialize)]
pub struct RollbackEvent {
    /// The journal's seq.
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// The event kind (`run.status`, or a `rollback.*` event).
    pub kind: String,
    /// The status the run moved to, for `run.status`.
    pub to: Option<String>,
    /// Who (a person, or the engine's lease owner).
    pub by: Option<String>,
    /// Why, when given.
    pub reason: Option<String>,
}

/// The retrospective's three lists, empty until people fill them in.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Lessons {
    /// What went well.
    pub went_well: Vec<String>,
    /// What could be improved.
    pub could_improve: Vec<String>,
    /// Action items.
    pub action_items: Vec<String>,
}

/// Field values ride inside the confirmation's evidence as a JSON object
/// `{"evidence": TEXT|null, "fields": {NAME: VALUE}}`, so the journal needs
/// no new column. Without fields the evidence stays plain text.
pub fn encode_evidence(text: Option<&str>, fields: &[(String, String)]) -> Option<String> {
    if fields.is_empty() {
        return text.map(str::to_string);
    }
    let fields: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Some(serde_json::json!({ "evidence": text, "fields": fields }).to_string())
}

/// The evidence text and field values of a stored evidence (see
/// [`encode_evidence`]); plain text comes back as it is, with no fields.
pub fn decode_evidence(stored: Option<&str>) -> (Option<String>, BTreeMap<String, String>) {
    let Some(stored) = stored else {
        return (None, BTreeMap::new());
    };
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(stored)
        && let Some(Value::Object(fields)) = o.get("fields")
    {
        let text = o
            .get("evidence")
            .and_then(Value::as_str)
            .map(str::to_string);
        let fields = fields
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect();
        return (text, fields);
    }
    (Some(stored.to_string()), BTreeMap::new())
}

/// A field value someone gave, with who and when.
#[derive(Clone, Debug)]
struct Given {
    value: String,
    by: String,
    at: Timestamp,
}

/// Reads everything about `run` from the journal into a [`Report`].
pub async fn build<S: Store>(store: &S, run: &RunId) -> Result<Report, EngineError> {
    let stored = store.get_run(run).await?;
    let plan = stored_plan(&stored)?;
    let states: BTreeMap<String, ItemState> = store
        .item_states(run)
        .await?
        .into_iter()
        .map(|s| (s.item_id.clone(), s))
        .collect();
    let mut events = Vec::new();
    loop {
        let after = events.last().map_or(0, |e: &golive_store::Event| e.seq);
        let page = store.events_after(run, after, 1000).await?;
        if page.is_empty() {
            break;
        }
        events.extend(page);
    }

    let mut audit: Vec<golive_store::AuditEntry> = Vec::new();
    loop {
        let page = store
            .audit(&golive_store::AuditFilter {
                target: Some(run.to_string()),
                after_seq: audit.last().map_or(0, |e| e.seq),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        if page.is_empty() {
            break;
        }
        audit.extend(page);
    }

    // Every confirmation's fields, in the order they were given.
    let mut confirmations = BTreeMap::new();
    let mut given: Vec<(String, BTreeMap<String, String>, String, Timestamp)> = Vec::new();
    let all_items: Vec<&Item> = plan
        .items()
        .map(|(_, i)| i)
        .chain(plan.rollback.items.iter())
        .collect();
    for item in &all_items {
        if !matches!(item.kind, ItemKind::Task(_)) {
            continue;
        }
        if let Some(c) = store.confirmation(run, item.id.as_str()).await? {
            let (_, fields) = decode_evidence(c.evidence.as_deref());
            given.push((item.id.to_string(), fields, c.by.clone(), c.at));
            confirmations.insert(item.id.to_string(), c);
        }
    }
    given.sort_by_key(|g| g.3);
    let first_given = |name: &str, among: &dyn Fn(&str) -> bool| -> Option<Given> {
        given
            .iter()
            .filter(|(id, ..)| among(id))
            .find_map(|(_, fields, by, at)| {
                fields.get(name).map(|v| Given {
                    value: v.clone(),
                    by: by.clone(),
                    at: *at,
                })
            })
    };
    let blank = |name: &str, g: Option<Given>| Blank {
        name: name.to_string(),
        value: g.as_ref().map(|g| g.value.clone()),
        by: g.as_ref().map(|g| g.by.clone()),
        at: g.map(|g| g.at),
    };

    let mut reports = BTreeMap::new();
    for item in &all_items {
        let state = states.get(item.id.as_str());
        let signatures = if matches!(item.kind, ItemKind::Approval(_)) {
            store
                .signatures(run, item.id.as_str())
                .await?
                .into_iter()
                .map(|s| SignatureNote {
                    role: s.role,
                    by: s.by,
                    at: s.at,
                    decision: s.decision,
                    comment: s.comment,
                })
                .collect()
        } else {
            Vec::new()
        };
        let confirmation = confirmations.get(item.id.as_str());
        let own = |id: &str| id == item.id.as_str();
        let fields = match &item.kind {
            ItemKind::Task(t) => t
                .fields
                .iter()
                .map(|f| blank(f, first_given(f, &own)))
                .collect(),
            _ => Vec::new(),
        };
        let mut report = item_report(item, state, confirmation, signatures, fields);
        if matches!(item.kind, ItemKind::Rollout(_)) {
            report.rollout = rollout_notes(&events, item.id.as_str());
        }
        reports.insert(item.id.to_string(), report);
    }

    let t0 = stored.summary.t0;
    let mut phases = Vec::new();
    for phase in &plan.phases {
        let ids: Vec<&str> = phase.items.iter().map(|i| i.id.as_str()).collect();
        let in_phase = |id: &str| ids.contains(&id);
        let items: Vec<ItemReport> = ids.iter().filter_map(|id| reports.remove(*id)).collect();
        let started_at = items.iter().filter_map(|i| i.started_at).min();
        let all_done = items.iter().all(|i| i.status.is_finished());
        let finished_at = if all_done {
            items.iter().filter_map(|i| i.finished_at).max()
        } else {
            None
        };
        phases.push(PhaseReport {
            id: phase.id.to_string(),
            title: phase.title.clone(),
            at: phase.at.map(|a| a.to_string()),
            planned_start: match (t0, phase.at) {
                (Some(t0), Some(at)) => t0.checked_add(SignedDuration::from_secs(at.0)).ok(),
                _ => None,
            },
            started_at,
            finished_at,
            record: phase
                .record
                .iter()
                .map(|r| {
                    let b = blank(r, first_given(r, &in_phase));
                    from_journal(b, started_at, finished_at)
                })
                .collect(),
            items,
        });
    }
    let rollback: Vec<ItemReport> = plan
        .rollback
        .items
        .iter()
        .filter_map(|i| reports.remove(i.id.as_str()))
        .collect();

    let mut summary = BTreeMap::new();
    for i in phases.iter().flat_map(|p| &p.items).chain(&rollback) {
        *summary.entry(i.result).or_insert(0) += 1;
    }
    let rollback_events = events
        .iter()
        .filter_map(|e| {
            let to = e.data.get("to").and_then(Value::as_str);
            let is_rollback = e.kind.starts_with("rollback")
                || e.kind == crate::ROLLBACK_REQUESTED
                || e.kind == crate::ROLLBACK_TRIGGERED
                || (e.kind == kind::RUN_REQUESTED
                    && e.data.get("kind").and_then(Value::as_str) == Some(crate::ROLLBACK))
                || (e.kind == kind::RUN_STATUS
                    && matches!(to, Some("rolling-back" | "rolled-back")));
            is_rollback.then(|| RollbackEvent {
                seq: e.seq,
                at: e.at,
                kind: e.kind.clone(),
                to: to.map(str::to_string),
                // A status change's actor is the process that held the
                // run's lease, not a person: who decided is on the request
                // or trigger event beside it.
                by: e
                    .data
                    .get("by")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| e.actor.clone().filter(|_| e.kind != kind::RUN_STATUS)),
                reason: e
                    .data
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect();
    let finished_at = if stored.summary.status.is_final() {
        events
            .iter()
            .rev()
            .find(|e| e.kind == kind::RUN_STATUS)
            .map(|e| e.at)
    } else {
        None
    };
    let started_at = states.values().filter_map(|s| s.started_at).min();
    let anywhere = |_: &str| true;
    let record = plan
        .record
        .iter()
        .map(|r| {
            let b = blank(r, first_given(r, &anywhere));
            from_journal(b, started_at, finished_at)
        })
        .collect();

    Ok(Report {
        report_version: REPORT_VERSION,
        run: RunInfo {
            id: stored.summary.id.clone(),
            status: stored.summary.status,
            t0,
            created_at: stored.summary.created_at,
            started_at,
            finished_at,
            plan_sha256: stored.summary.plan_sha256.clone(),
        },
        plan: plan_info(&plan),
        record,
        phases,
        rollback,
        rollback_events,
        watch: crate::monitor::record(&events),
        comms: crate::comms::record(&plan.comms, &events),
        audit,
        summary,
        lessons: Lessons::default(),
    })
}

fn plan_info(plan: &Plan) -> PlanInfo {
    PlanInfo {
        name: plan.name.clone(),
        version: plan.version.clone(),
        environment: plan.environment.clone(),
        owner: plan.owner.clone(),
        description: plan.description.clone(),
    }
}

fn item_report(
    item: &Item,
    state: Option<&ItemState>,
    confirmation: Option<&golive_store::Confirmation>,
    signatures: Vec<SignatureNote>,
    fields: Vec<Blank>,
) -> ItemReport {
    let status = state.map_or(ItemStatus::Pending, |s| s.status);
    let result = state.and_then(|s| s.result.as_ref());
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let command = match (&item.kind, result) {
        (ItemKind::Run(run), Some(r)) => Some(CommandNote {
            command: text(r, "command").unwrap_or_else(|| run.command.clone()),
            exit_code: r.get("exit_code").and_then(Value::as_i64),
            timed_out: r.get("timed_out").and_then(Value::as_bool).unwrap_or(false),
            duration_ms: r.get("duration_ms").and_then(Value::as_u64),
            stdout: Excerpt::of(&text(r, "stdout").unwrap_or_default()),
            stderr: Excerpt::of(&text(r, "stderr").unwrap_or_default()),
        }),
        _ => None,
    };
    let check = match (&item.kind, result) {
        (ItemKind::Check(_), Some(r)) => Some(CheckNote {
            status: text(r, "status"),
            error: text(r, "error"),
            conditions: r
                .get("conditions")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| ConditionNote {
                            condition: text(c, "condition").unwrap_or_default(),
                            passed: c.get("passed").and_then(Value::as_bool).unwrap_or(false),
                            observed: text(c, "observed"),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }),
        _ => None,
    };
    ItemReport {
        id: item.id.to_string(),
        title: item.title.clone(),
        kind: item.kind.name(),
        result: ResultKind::of(status),
        status,
        attempts: state.map_or(0, |s| s.attempts),
        owner: item.owner.as_ref().map(|o| o.to_string()),
        critical: item.critical,
        started_at: state.and_then(|s| s.started_at),
        finished_at: state.and_then(|s| s.finished_at),
        subtasks: item.subtasks.clone(),
        fields,
        confirmation: confirmation.map(|c| ConfirmationNote {
            by: c.by.clone(),
            at: c.at,
            evidence: decode_evidence(c.evidence.as_deref()).0,
            skipped: c.skipped,
            reason: c.reason.clone(),
        }),
        signatures,
        check,
        rollout: Vec::new(),
        rollout_record: match &item.kind {
            ItemKind::Rollout(_) => result.and_then(RolloutRecord::of),
            _ => None,
        },
        error: result.and_then(|r| text(r, "error")).or_else(|| {
            // A command that ran and failed has no `error`; say how it ended.
            let cmd = command.as_ref().filter(|_| status == ItemStatus::Failed)?;
            match cmd.exit_code {
                _ if cmd.timed_out => Some("timed out".to_string()),
                Some(code) => Some(format!("exit code {code}")),
                None => None,
            }
        }),
        command,
    }
}

/// A time as people read it in a record: `2026-11-25 14:02:11 UTC`.
/// Who fills a blank that the journal answers.
pub const JOURNAL: &str = "the journal";

/// Fills a blank a checklist leaves for the go-live's own clock ("Start
/// Time", "Phase 1 Complete Time", "Deployment Date") from the journal, when
/// nobody gave it a value. Other blanks are left as they are.
fn from_journal(b: Blank, started: Option<Timestamp>, finished: Option<Timestamp>) -> Blank {
    if b.value.is_some() {
        return b;
    }
    let name = b.name.to_ascii_lowercase();
    let ends = |suffixes: &[&str]| suffixes.iter().any(|s| name.ends_with(s));
    let (at, date_only) = if ends(&["start time", "started", "started at"]) {
        (started, false)
    } else if ends(&[
        "complete time",
        "completion time",
        "end time",
        "finish time",
        "completed at",
        "finished at",
    ]) {
        (finished, false)
    } else if ends(&["deployment date", "go-live date", "release date"]) {
        (started, true)
    } else {
        return b;
    };
    let Some(at) = at else { return b };
    Blank {
        value: Some(if date_only {
            at.strftime("%Y-%m-%d").to_string()
        } else {
            when(at)
        }),
        by: Some(JOURNAL.to_string()),
        at: Some(at),
        ..b
    }
}

pub(crate) fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_result_reads_as_a_table_of_steps_with_flags() {
        // As the rollout item writes it (golive_engine::items::rollout).
        let result = serde_json::json!({
            "steps": [
                {"step": 0, "weight": 25, "watch": false, "held_s": 12.04, "evaluations": 12,
                 "values": {"requests": {"canary": 31.0, "stable": 92.0},
                            "error_rate": {"canary": 0.0, "stable": 0.0}},
                 "ended": "next", "why": null},
                {"step": 1, "weight": 50, "watch": false, "held_s": 7.5, "evaluations": 8,
                 "values": {"requests": {"canary": 60.0, "stable": 58.0},
                            "error_rate": {"canary": 0.123456, "stable": null}},
                 "ended": "rollback", "why": "failing: not recovered within 10s"}
            ],
            "detected_after_step_start_s": 2.25,
            "rolled_back_after_detection_s": 10.5,
            "flags": {"checkout-v2": {"before": null, "after": {"enabled": true, "percentage": 0}},
                      "kill": {"before": {"enabled": true}, "after": {"enabled": false}}}
        });
        let record = RolloutRecord::of(&result).expect("a record");
        let (header, rows) = record.table();
        assert_eq!(
            header,
            [
                "step",
                "canary weight",
                "held",
                "evaluations",
                "error_rate (canary / stable)",
                "requests (canary / stable)",
                "ended"
            ]
        );
        assert_eq!(
            rows[0],
            ["1", "25%", "12.0 s", "12", "0 / 0", "31 / 92", "next"]
        );
        assert_eq!(
            rows[1],
            [
                "2",
                "50%",
                "7.5 s",
                "8",
                "0.1235 / -",
                "60 / 58",
                "rollback: failing: not recovered within 10s"
            ]
        );
        assert_eq!(
            record.notes(),
            [
                "Detected 2.2 s into the step; traffic back on stable 10.5 s later",
                "Flag `checkout-v2`: absent before, on at 0% after",
                "Flag `kill`: on before, off after",
            ]
        );
        // Not a rollout's result: no record.
        assert!(RolloutRecord::of(&serde_json::json!({"exit_code": 0})).is_none());
    }

    #[test]
    fn evidence_round_trips_with_and_without_fields() {
        assert_eq!(
            encode_evidence(Some("CHG-1"), &[]),
            Some("CHG-1".to_string())
        );
        let fields = vec![("Start Time".to_string(), "14:02".to_string())];
        let stored = encode_evidence(Some("CHG-1"), &fields);
        let (text, got) = decode_evidence(stored.as_deref());
        assert_eq!(text.as_deref(), Some("CHG-1"));
        assert_eq!(got.get("Start Time").map(String::as_str), Some("14:02"));
        let (text, got) = decode_evidence(Some("{\"plain\": 1}"));
        assert_eq!(text.as_deref(), Some("{\"plain\": 1}"));
        assert!(got.is_empty());
    }

    #[test]
    fn clock_blanks_are_filled_from_the_journal_and_people_win() {
        let started: Timestamp = "2026-12-01T14:02:00Z".parse().expect("ts");
        let finished: Timestamp = "2026-12-01T14:17:30Z".parse().expect("ts");
        let empty = |name: &str| Blank {
            name: name.into(),
            value: None,
            by: None,
            at: None,
        };
        let filled = |name: &str| from_journal(empty(name), Some(started), Some(finished));
        assert_eq!(
            filled("Start Time").value.as_deref(),
            Some("2026-12-01 14:02:00 UTC")
        );
        assert_eq!(filled("Start Time").by.as_deref(), Some(JOURNAL));
        assert_eq!(
            filled("Phase 1 Complete Time").value.as_deref(),
            Some("2026-12-01 14:17:30 UTC")
        );
        assert_eq!(
            filled("Deployment Date").value.as_deref(),
            Some("2026-12-01")
        );
        // A person's blank stays a person's.
        assert_eq!(filled("Deployment Engineer").value, None);
        assert_eq!(filled("Date").value, None);
        let given = Blank {
            value: Some("14:00".into()),
            by: Some("alice".into()),
            ..empty("Start Time")
        };
        let kept = from_journal(given, Some(started), Some(finished));
        assert_eq!(
            (kept.value.as_deref(), kept.by.as_deref()),
            (Some("14:00"), Some("alice"))
        );
        // A phase not finished yet leaves its end blank.
        assert_eq!(
            from_journal(empty("End Time"), Some(started), None).value,
            None
        );
    }

    #[test]
    fn long_output_keeps_both_ends() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let e = Excerpt::of(&text);
        assert_eq!(e.lines, 30);
        assert_eq!(e.head.first().map(String::as_str), Some("line 1"));
        assert_eq!(e.tail.last().map(String::as_str), Some("line 30"));
        assert_eq!(Excerpt::of("a\nb").tail.len(), 0);
    }
}
