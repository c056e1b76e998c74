//! The communication schedule (the plan's `comms:`): messages sent to a
//! channel at T-offsets (T-24h, T-30m, T+15m, T+1h…) while the run is
//! live, each filled in with the run's facts when it goes out.
//!
//! It runs beside the run's items, for as long as the engine drives the
//! run (phases, rollback, watch window). T-0 is the run's `t0`, or the
//! time the run was created when it has none.
//!
//! State lives only in the journal:
//! - a message sent is its delivery's `notify.sent` / `notify.failed`
//!   with `comms: INDEX` and `at: T-OFFSET`, journaled after the delivery
//!   (a crash in between sends it again on resume: at least once, never
//!   lost);
//! - `comms.skipped {comms, at, why}`: its time had passed more than
//!   [`LATE`] before the run was created (a "go-live tomorrow" sent two
//!   hours before is wrong, not late), or the run was resumed more than
//!   [`LATE`] after it was due.
//!
//! Messages due after the run ends are not sent.

use std::time::Duration;

use golive_plan::template::Fact;
use golive_plan::{AlertSeverity, Comm, ItemKind, NotifyEvent};
use golive_store::{Event, NewEvent, Store};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::items::notify::{Outgoing, deliver};
use crate::monitor::since;
use crate::{Ctx, Engine, EngineError};

/// The journal event of a message not sent.
pub const SKIPPED: &str = "comms.skipped";

/// How late a message may still go out.
pub const LATE: Duration = Duration::from_secs(15 * 60);

/// The journal's word on message `index`: its delivery (sent or not) or
/// its skipping; `None` while it has not fallen due.
fn outcome(events: &[Event], index: usize) -> Option<&Event> {
    events.iter().find(|e| {
        matches!(e.kind.as_str(), "notify.sent" | "notify.failed" | SKIPPED)
            && e.data["comms"].as_u64() == u64::try_from(index).ok()
    })
}

impl<S: Store + 'static> Engine<S> {
    /// Sends the plan's messages as they fall due; returns once every one
    /// is sent or skipped (the caller keeps driving the run).
    pub(crate) async fn comms(&self, ctx: &Ctx<'_>) -> Result<(), EngineError> {
        if ctx.plan.comms.is_empty() {
            return Ok(());
        }
        let run = self.store.get_run(ctx.run).await?;
        let created = run.summary.created_at;
        let t0 = ctx.t0.unwrap_or(created);
        for (index, comm) in ctx.plan.comms.iter().enumerate() {
            let events = self.store.events_after(ctx.run, 0, u32::MAX).await?;
            if outcome(&events, index).is_some() {
                continue;
            }
            let due = t0
                .checked_add(SignedDuration::from_secs(comm.at.0))
                .unwrap_or(t0);
            let late = |now: Timestamp| since(due, now);
            let why = if late(created) > LATE {
                Some("its time had passed when the run was created")
            } else {
                tokio::time::sleep(since(Timestamp::now(), due)).await;
                (late(Timestamp::now()) > LATE).then_some("the run was not driven at its time")
            };
            let at = comm.at.to_string();
            match why {
                Some(why) => {
                    let data = json!({ "comms": index, "at": at, "why": why });
                    self.report(&crate::Progress::Watch {
                        kind: SKIPPED,
                        data: &data,
                    });
                    let event = NewEvent {
                        kind: SKIPPED.into(),
                        item_id: None,
                        data,
                    };
                    self.store
                        .append_event(ctx.run, &self.owner, &event)
                        .await?;
                }
                None => self.send_comm(ctx, index, comm, t0, &events).await?,
            }
        }
        Ok(())
    }

    async fn send_comm(
        &self,
        ctx: &Ctx<'_>,
        index: usize,
        comm: &Comm,
        t0: Timestamp,
        events: &[Event],
    ) -> Result<(), EngineError> {
        let facts = self.facts(ctx, events).await?;
        let text = comm.message.render(&mut |f| match f {
            Fact::Plan => ctx.plan.name.clone(),
            Fact::Run => ctx.run.to_string(),
            Fact::Status => facts.status.clone(),
            Fact::Phase => facts.phase.clone(),
            Fact::T0 => crate::report::when(t0),
            Fact::T => comm.at.to_string(),
            Fact::Signed => facts.signed.clone(),
            Fact::Step => facts.step.clone(),
            Fact::Metric(name) => last_value(events, name),
        });
        let out = Outgoing {
            channel: comm.channel.as_str(),
            text: ctx.vars.redact(&ctx.vars.expand(&text)),
            // A scheduled message is news, not an alert to page on.
            event: NotifyEvent::Change,
            dedup_key: None,
            severity: AlertSeverity::Info,
            extra: json!({ "by": "golive", "comms": index, "at": comm.at.to_string() }),
        };
        deliver(&crate::items::Host::new(self, ctx), None, out).await?;
        Ok(())
    }

    /// The run's facts a message may quote, as of now.
    async fn facts(&self, ctx: &Ctx<'_>, events: &[Event]) -> Result<Facts, EngineError> {
        let run = self.store.get_run(ctx.run).await?;
        let states = self.store.item_states(ctx.run).await?;
        let unfinished = |id: &str| {
            states
                .iter()
                .find(|s| s.item_id == id)
                .is_none_or(|s| !s.status.is_finished())
        };
        let phase = ctx
            .plan
            .phases
            .iter()
            .find(|p| p.items.iter().any(|i| unfinished(i.id.as_str())))
            .map_or_else(|| "all phases done".to_string(), |p| p.title.clone());
        let mut signed = Vec::new();
        for (_, item) in ctx.plan.items() {
            if matches!(item.kind, ItemKind::Approval(_)) {
                for s in self.store.signatures(ctx.run, item.id.as_str()).await? {
                    let verb = match s.decision {
                        golive_store::Decision::Approve => "",
                        golive_store::Decision::Reject => ", rejected",
                    };
                    signed.push(format!("{} ({}{verb})", s.by, s.role));
                }
            }
        }
        let step = events
            .iter()
            .rev()
            .find(|e| e.kind == crate::items::rollout::event::WEIGHT)
            .map_or_else(
                || "not started".to_string(),
                |e| match e.data["step"].as_u64() {
                    Some(step) => format!("step {} at {}%", step + 1, e.data["weight"]),
                    None => format!("{}%", e.data["weight"]),
                },
            );
        Ok(Facts {
            status: run.summary.status.to_string(),
            phase,
            signed: if signed.is_empty() {
                "nobody yet".into()
            } else {
                signed.join(", ")
            },
            step,
        })
    }
}

/// What [`Engine::facts`] found.
struct Facts {
    status: String,
    phase: String,
    signed: String,
    step: String,
}

/// The last analysed value of metric `name` (the canary's: the version
/// being judged, or serving), from the journal's rollout analyses.
fn last_value(events: &[Event], name: &str) -> String {
    events
        .iter()
        .rev()
        .filter(|e| e.kind == crate::items::rollout::event::ANALYSIS)
        .find_map(|e| {
            let v: &Value = &e.data["evaluation"]["values"][name]["canary"];
            v.as_f64()
        })
        .map_or_else(|| "no data".into(), golive_rollout::analysis::num)
}

/// One message of the schedule as the journal tells it, for the record.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CommRecord {
    /// Its T-offset, e.g. `T+15m`.
    pub at: String,
    /// Its channel.
    pub channel: String,
    /// `sent`, `not delivered`, `skipped`, or `not sent` (the run ended
    /// first, or is not there yet).
    pub outcome: String,
    /// When it went out (or was skipped).
    pub when: Option<Timestamp>,
    /// The text as sent, the delivery's error, or why it was skipped.
    pub detail: Option<String>,
}

/// The schedule of `comms` as `events` tell it.
pub fn record(comms: &[Comm], events: &[Event]) -> Vec<CommRecord> {
    comms
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let event = outcome(events, index);
            let text = |e: &Event, k: &str| e.data[k].as_str().map(str::to_string);
            let (outcome, detail) = match event {
                Some(e) if e.kind == "notify.sent" => ("sent", text(e, "message")),
                Some(e) if e.kind == SKIPPED => ("skipped", text(e, "why")),
                Some(e) => ("not delivered", text(e, "error")),
                None => ("not sent", None),
            };
            CommRecord {
                at: c.at.to_string(),
                channel: c.channel.as_str().to_string(),
                outcome: outcome.into(),
                when: event.map(|e| e.at),
                detail,
            }
        })
        .collect()
}

impl CommRecord {
    /// One line for the record.
    pub fn line(&self) -> String {
        let when = self
            .when
            .map(|t| format!(" at {}", crate::report::when(t)))
            .unwrap_or_default();
        let detail = self
            .detail
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        format!(
            "{} → {}: {}{when}{detail}",
            self.at, self.channel, self.outcome
        )
    }
}
