//! The watch window after the go-live (the plan's `monitor:`): the run
//! stays live for `window` after its last phase (or its rollback), re-runs
//! the monitor's checks on its cadence, opens an incident when one fails,
//! climbs the escalation rules while nobody acknowledges it, and resolves
//! it when the check passes again.
//!
//! This module owns the window's state, which lives only in the journal
//! (so a resume rebuilds it and goes on where the window stood):
//!
//! - `watch.started` `{window_s}` — its time is the window's start; the
//!   window ends `window` later, whatever happened in between (a crash
//!   does not stretch it).
//! - `incident.opened` `{incident, check, title, evidence}` — a check
//!   failed; `evidence` is the check's result (conditions and observed
//!   values). One incident a check while it is open: repeated failures of
//!   the same check are one incident, notified once a level.
//! - `incident.escalated` `{incident, level, name, to, channel}` — rule
//!   `level` of `monitor.escalation` fired: the incident had been open and
//!   unacknowledged for its `after`. Its channel got the message
//!   (`notify.sent`/`notify.failed`, PagerDuty trigger with the dedup key
//!   `golive/RUN/INCIDENT`).
//! - `incident.acknowledged` `{incident, by, reason}` — `golive ack` (or
//!   the API) asked; escalation stops, the channels already reached hear it
//!   (PagerDuty acknowledge).
//! - `incident.resolved` `{incident, check, open_s}` — its check passed
//!   again; the channels reached hear it (PagerDuty resolve).
//! - `watch.ended` `{incidents, open}`.
//!
//! A failed delivery never stops the window (`required` channels aside,
//! whose failure is journaled like any other). A rollback requested during
//! the window ends it and runs the plan's rollback.

use std::collections::BTreeMap;
use std::time::Duration;

use golive_plan::{AlertSeverity, ItemKind, Monitor, NotifyEvent};
use golive_store::{Event, NewEvent, Outcome, Store};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::items::notify::{Outgoing, deliver};
use crate::{Ctx, Engine, EngineError, Progress};

/// The journal's event kinds for the watch window.
pub mod event {
    /// The window started: `{window_s}`.
    pub const STARTED: &str = "watch.started";
    /// The window ended: `{incidents, open}`.
    pub const ENDED: &str = "watch.ended";
    /// A check failed: `{incident, check, title, evidence}`.
    pub const OPENED: &str = "incident.opened";
    /// An escalation rule fired: `{incident, level, name, to, channel}`.
    pub const ESCALATED: &str = "incident.escalated";
    /// A person acknowledged: `{incident, by, reason}`.
    pub const ACKNOWLEDGED: &str = "incident.acknowledged";
    /// The check passed again: `{incident, check, open_s}`.
    pub const RESOLVED: &str = "incident.resolved";
}

/// The request kind that acknowledges an incident: `ack:INCIDENT`.
pub const ACK: &str = "ack";

/// An incident as the journal tells it.
#[derive(Clone, Debug)]
struct Incident {
    id: String,
    check: String,
    opened: Timestamp,
    /// Escalation levels notified, by index.
    notified: Vec<usize>,
    acked: bool,
    resolved: bool,
}

/// The incidents of a run's journal, oldest first.
fn incidents(events: &[Event]) -> Vec<Incident> {
    let mut out: Vec<Incident> = Vec::new();
    let text = |e: &Event, k: &str| e.data[k].as_str().unwrap_or_default().to_string();
    for e in events {
        let id = text(e, "incident");
        match e.kind.as_str() {
            event::OPENED => out.push(Incident {
                id,
                check: text(e, "check"),
                opened: e.at,
                notified: Vec::new(),
                acked: false,
                resolved: false,
            }),
            event::ESCALATED => {
                if let (Some(i), Some(level)) = (
                    out.iter_mut().rfind(|i| i.id == id),
                    e.data["level"].as_u64(),
                ) {
                    i.notified.push(level as usize);
                }
            }
            event::ACKNOWLEDGED => {
                if let Some(i) = out.iter_mut().rfind(|i| i.id == id) {
                    i.acked = true;
                }
            }
            event::RESOLVED => {
                if let Some(i) = out.iter_mut().rfind(|i| i.id == id) {
                    i.resolved = true;
                }
            }
            _ => {}
        }
    }
    out
}

fn since(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or_default()
}

impl<S: Store + 'static> Engine<S> {
    /// Keeps the run live for the plan's watch window (see the module
    /// docs); returns when the window is over.
    pub(crate) async fn watch(&self, ctx: &Ctx<'_>, monitor: &Monitor) -> Result<(), EngineError> {
        let events = self.store.events_after(ctx.run, 0, u32::MAX).await?;
        if events.iter().any(|e| e.kind == event::ENDED) {
            return Ok(());
        }
        let started = match events.iter().find(|e| e.kind == event::STARTED) {
            Some(e) => e.at,
            None => {
                let data = json!({ "window_s": monitor.window.as_secs_f64() });
                self.watch_event(ctx, event::STARTED, data).await?;
                Timestamp::now()
            }
        };
        let mut open = incidents(&events);
        let mut opened_count = open.len();
        open.retain(|i| !i.resolved);
        // Checks at once on (re)start, then on the cadence.
        let mut next_check = Timestamp::now();
        loop {
            self.check(ctx).await?;
            let now = Timestamp::now();
            let elapsed = since(started, now);
            if elapsed >= monitor.window {
                break;
            }
            if now >= next_check {
                self.watch_checks(ctx, monitor, &mut open, &mut opened_count)
                    .await?;
                let period = monitor.period_at(elapsed);
                next_check = now
                    .checked_add(jiff::SignedDuration::try_from(period).unwrap_or_default())
                    .unwrap_or(now);
            }
            self.watch_acks(ctx, monitor, &mut open).await?;
            self.escalate(ctx, monitor, &mut open).await?;
            // Acks and escalations are looked at every poll, checks when due.
            let now = Timestamp::now();
            let nap = [
                since(now, next_check),
                monitor.window.saturating_sub(since(started, now)),
                self.poll,
            ]
            .into_iter()
            .min()
            .unwrap_or(self.poll)
            .max(Duration::from_millis(10));
            self.guarded(ctx, async {
                tokio::time::sleep(nap).await;
                Ok(())
            })
            .await?;
        }
        let still: Vec<&str> = open.iter().map(|i| i.id.as_str()).collect();
        let data = json!({ "incidents": opened_count, "open": still });
        self.watch_event(ctx, event::ENDED, data).await
    }

    /// Runs the monitor's checks: a failing one opens an incident (unless
    /// its incident is open), a passing one resolves its open incident.
    async fn watch_checks(
        &self,
        ctx: &Ctx<'_>,
        monitor: &Monitor,
        open: &mut Vec<Incident>,
        opened_count: &mut usize,
    ) -> Result<(), EngineError> {
        for id in &monitor.checks {
            let Some(item) = ctx.plan.items().map(|(_, i)| i).find(|i| i.id == *id) else {
                continue;
            };
            let ItemKind::Check(check) = &item.kind else {
                continue;
            };
            let (outcome, evidence) = self
                .guarded(ctx, async {
                    Ok(crate::items::check::run(check, ctx.vars).await)
                })
                .await?;
            let current = open.iter().position(|i| i.check == id.as_str());
            match (outcome, current) {
                (Outcome::Failed, None) => {
                    *opened_count += 1;
                    let incident = format!("INC-{opened_count}");
                    let data = json!({
                        "incident": incident,
                        "check": id.as_str(),
                        "title": item.title,
                        "evidence": evidence,
                    });
                    self.watch_event(ctx, event::OPENED, data).await?;
                    open.push(Incident {
                        id: incident,
                        check: id.to_string(),
                        opened: Timestamp::now(),
                        notified: Vec::new(),
                        acked: false,
                        resolved: false,
                    });
                }
                (Outcome::Passed, Some(at)) => {
                    let incident = open.remove(at);
                    let open_s = since(incident.opened, Timestamp::now()).as_secs_f64();
                    let data = json!({
                        "incident": incident.id,
                        "check": id.as_str(),
                        "open_s": (open_s * 10.0).round() / 10.0,
                    });
                    self.watch_event(ctx, event::RESOLVED, data).await?;
                    let text = format!(
                        "{}: resolved — check `{}` passes again (open {})",
                        incident.id,
                        id,
                        golive_plan::time::format_duration(Duration::from_secs(open_s as u64))
                    );
                    self.tell(ctx, monitor, &incident, NotifyEvent::Resolve, text)
                        .await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Acknowledgements asked for (`ack:INCIDENT` requests) of open
    /// incidents not yet acknowledged.
    async fn watch_acks(
        &self,
        ctx: &Ctx<'_>,
        monitor: &Monitor,
        open: &mut [Incident],
    ) -> Result<(), EngineError> {
        if open.iter().all(|i| i.acked) {
            return Ok(());
        }
        let requests = self.store.requests(ctx.run).await?;
        for r in &requests {
            let Some(id) = r.kind.strip_prefix("ack:") else {
                continue;
            };
            let Some(incident) = open.iter_mut().find(|i| i.id == id && !i.acked) else {
                continue;
            };
            incident.acked = true;
            let data = json!({ "incident": id, "by": r.by, "reason": r.reason });
            self.watch_event(ctx, event::ACKNOWLEDGED, data).await?;
            let text = format!("{id}: acknowledged by {}", r.by);
            let incident = incident.clone();
            self.tell(ctx, monitor, &incident, NotifyEvent::Acknowledge, text)
                .await?;
        }
        Ok(())
    }

    /// Climbs the escalation rules of each open, unacknowledged incident:
    /// every rule whose `after` has passed and that has not fired fires.
    async fn escalate(
        &self,
        ctx: &Ctx<'_>,
        monitor: &Monitor,
        open: &mut [Incident],
    ) -> Result<(), EngineError> {
        let now = Timestamp::now();
        for incident in open.iter_mut().filter(|i| !i.acked) {
            let age = since(incident.opened, now);
            for (level, rule) in monitor.escalation.iter().enumerate() {
                if age < rule.after || incident.notified.contains(&level) {
                    continue;
                }
                incident.notified.push(level);
                let name = rule
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("level {}", level + 1));
                let data = json!({
                    "incident": incident.id,
                    "level": level,
                    "name": name,
                    "to": rule.to,
                    "channel": rule.notify.as_str(),
                });
                self.watch_event(ctx, event::ESCALATED, data).await?;
                let to = rule
                    .to
                    .as_deref()
                    .map(|t| format!(" {t}:"))
                    .unwrap_or_default();
                let text = format!(
                    "{}:{to} check `{}` has been failing for {} ({name}). Acknowledge: golive ack {} {} --by NAME",
                    incident.id,
                    incident.check,
                    golive_plan::time::format_duration(Duration::from_secs(age.as_secs())),
                    ctx.run,
                    incident.id
                );
                let out = Outgoing {
                    channel: rule.notify.as_str(),
                    text: ctx.vars.redact(&text),
                    event: NotifyEvent::Trigger,
                    dedup_key: Some(format!("golive/{}/{}", ctx.run, incident.id)),
                    severity: AlertSeverity::Error,
                    extra: json!({ "by": "golive", "incident": incident.id, "level": name }),
                };
                deliver(self, ctx, None, out).await?;
            }
        }
        Ok(())
    }

    /// Tells every channel the incident reached (once each) that it was
    /// acknowledged or resolved.
    async fn tell(
        &self,
        ctx: &Ctx<'_>,
        monitor: &Monitor,
        incident: &Incident,
        event: NotifyEvent,
        text: String,
    ) -> Result<(), EngineError> {
        let mut told: Vec<&str> = Vec::new();
        for rule in incident
            .notified
            .iter()
            .filter_map(|l| monitor.escalation.get(*l))
        {
            let channel = rule.notify.as_str();
            if told.contains(&channel) {
                continue;
            }
            told.push(channel);
            let out = Outgoing {
                channel,
                text: ctx.vars.redact(&text),
                event,
                dedup_key: Some(format!("golive/{}/{}", ctx.run, incident.id)),
                severity: AlertSeverity::Info,
                extra: json!({ "by": "golive", "incident": incident.id }),
            };
            deliver(self, ctx, None, out).await?;
        }
        Ok(())
    }

    async fn watch_event(&self, ctx: &Ctx<'_>, kind: &str, data: Value) -> Result<(), EngineError> {
        self.report(&Progress::Watch { kind, data: &data });
        self.store
            .append_event(
                ctx.run,
                &self.owner,
                &NewEvent {
                    kind: kind.into(),
                    item_id: None,
                    data,
                },
            )
            .await?;
        Ok(())
    }
}

/// The watch window as the journal tells it, for the record.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct WatchRecord {
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// Its incidents, oldest first.
    pub incidents: Vec<IncidentRecord>,
}

/// One incident of the watch window.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IncidentRecord {
    /// `INC-1`, …
    pub id: String,
    /// The failing check.
    pub check: String,
    /// When it opened.
    pub opened_at: Timestamp,
    /// What the check saw (its conditions and observed values), in words.
    pub evidence: Vec<String>,
    /// Escalations, in order: (when, level name, to).
    pub escalations: Vec<(Timestamp, String, Option<String>)>,
    /// Who acknowledged, and when.
    pub acknowledged: Option<(Timestamp, String)>,
    /// When it resolved.
    pub resolved_at: Option<Timestamp>,
}

impl IncidentRecord {
    /// One line for the record: what failed, when, where it stands.
    pub fn headline(&self) -> String {
        let state = match (self.resolved_at, &self.acknowledged) {
            (Some(at), _) => format!("resolved at {}", crate::report::when(at)),
            (None, Some(_)) => "acknowledged, still open".into(),
            (None, None) => "still open".into(),
        };
        format!(
            "{} — check `{}` failed at {}; {state}",
            self.id,
            self.check,
            crate::report::when(self.opened_at)
        )
    }

    /// The lines below it: the evidence, each escalation, the
    /// acknowledgement.
    pub fn details(&self) -> Vec<String> {
        let when = crate::report::when;
        let mut out = self.evidence.clone();
        for (at, level, to) in &self.escalations {
            let to = to
                .as_deref()
                .map(|t| format!(" to {t}"))
                .unwrap_or_default();
            out.push(format!("{} — escalated: {level}{to}", when(*at)));
        }
        if let Some((at, by)) = &self.acknowledged {
            out.push(format!("{} — acknowledged by {by}", when(*at)));
        }
        out
    }
}

/// The watch window of a run's journal; `None` when it never started.
pub fn record(events: &[Event]) -> Option<WatchRecord> {
    let started = events.iter().find(|e| e.kind == event::STARTED)?;
    let mut rec = WatchRecord {
        started_at: Some(started.at),
        ended_at: events.iter().find(|e| e.kind == event::ENDED).map(|e| e.at),
        incidents: Vec::new(),
    };
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    let text = |e: &Event, k: &str| e.data[k].as_str().map(str::to_string);
    for e in events {
        let Some(id) = text(e, "incident") else {
            continue;
        };
        if e.kind == event::OPENED {
            let evidence = e.data["evidence"]["conditions"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            let ok = if c["passed"].as_bool() == Some(true) {
                                "✓"
                            } else {
                                "✗"
                            };
                            let seen = c["observed"]
                                .as_str()
                                .map(|o| format!(" (observed {o})"))
                                .unwrap_or_default();
                            format!("{ok} {}{seen}", c["condition"].as_str().unwrap_or_default())
                        })
                        .collect()
                })
                .unwrap_or_default();
            by_id.insert(id.clone(), rec.incidents.len());
            rec.incidents.push(IncidentRecord {
                id,
                check: text(e, "check").unwrap_or_default(),
                opened_at: e.at,
                evidence,
                escalations: Vec::new(),
                acknowledged: None,
                resolved_at: None,
            });
            continue;
        }
        let Some(incident) = by_id.get(&id).and_then(|i| rec.incidents.get_mut(*i)) else {
            continue;
        };
        match e.kind.as_str() {
            event::ESCALATED => incident.escalations.push((
                e.at,
                text(e, "name").unwrap_or_default(),
                text(e, "to"),
            )),
            event::ACKNOWLEDGED => {
                incident.acknowledged = Some((e.at, text(e, "by").unwrap_or_default()));
            }
            event::RESOLVED => incident.resolved_at = Some(e.at),
            _ => {}
        }
    }
    Some(rec)
}
