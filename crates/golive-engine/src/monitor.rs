//! The watch window after the go-live (the plan's `monitor:`): the run
//! stays live for `window` after its last phase (or its rollback), re-runs
//! the monitor's checks on its cadence, opens an incident when one fails,
//! climbs the escalation rules while nobody acknowledges it, and resolves
//! it when the check passes again. Alerts from outside (Alertmanager, via
//! `POST /api/alertmanager` and [`crate::answers::alerts`]) open and
//! resolve incidents the same way: an incident's `Source` is a check or
//! an alert.
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
//!   again (or `{incident, alert, open_s}`: a `resolved` notification of
//!   its alert came); the channels reached hear it (PagerDuty resolve).
//! - `watch.ended` `{incidents, open}`.
//!
//! An escalation, an acknowledgement or a resolution is journaled after
//! its notifications went out: a crash in between sends them again on
//! resume (at least once; PagerDuty de-duplicates by the dedup key), and
//! never loses a page.
//!
//! A failed delivery never stops the window (`required` channels aside,
//! whose failure is journaled like any other). A rollback requested during
//! the window ends it and runs the plan's rollback.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use golive_plan::{AlertSeverity, Analysis, ItemKind, MetricSource, Monitor, NotifyEvent};
use golive_rollout::analysis::Analyzer;
use golive_store::{Event, NewEvent, Outcome, Request, Store};
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

/// The request kind of a firing alert: `alert:KEY`, the alert as JSON in
/// the request's reason (see [`Alert`]).
pub const ALERT_FIRING: &str = "alert";

/// The request kind of a resolved alert: `alert-resolved:KEY`.
pub const ALERT_RESOLVED: &str = "alert-resolved";

/// An alert from outside the run (Alertmanager's), as recorded for the
/// watch window. Its key is `FINGERPRINT@STARTS_AT`: the fingerprint names
/// the label set, `startsAt` one episode of it (Alertmanager keeps it on
/// every repeat and on the resolved notification).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Alertmanager's fingerprint of the label set.
    pub fingerprint: String,
    /// When the alert started firing.
    #[serde(rename = "startsAt")]
    pub starts_at: Timestamp,
    /// `false` for a `resolved` notification.
    pub firing: bool,
    /// Its `alertname` label.
    pub alertname: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations (summary, description, runbook_url, …).
    pub annotations: BTreeMap<String, String>,
    /// The link to the rule's expression in Prometheus.
    #[serde(rename = "generatorURL")]
    pub generator_url: Option<String>,
}

impl Alert {
    /// `FINGERPRINT@STARTS_AT`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.fingerprint, self.starts_at)
    }

    /// The request kind recording it.
    pub fn request_kind(&self) -> String {
        let kind = if self.firing {
            ALERT_FIRING
        } else {
            ALERT_RESOLVED
        };
        format!("{kind}:{}", self.key())
    }
}

/// What opened an incident.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// A monitor check failed: its id.
    Check(String),
    /// An alert fired: its key and `alertname`.
    Alert { key: String, name: String },
    /// A metric rule fired: its index in `monitor.rules`, and its text.
    Rule { index: usize, text: String },
}

impl Source {
    /// As an `incident.opened` event's data names it.
    fn of(data: &Value) -> Source {
        let text = |k: &str| data[k].as_str().unwrap_or_default().to_string();
        if let Some(key) = data["alert"].as_str() {
            return Source::Alert {
                key: key.to_string(),
                name: text("title"),
            };
        }
        match data["rule"].as_u64() {
            Some(index) => Source::Rule {
                index: usize::try_from(index).unwrap_or(usize::MAX),
                text: text("title"),
            },
            None => Source::Check(text("check")),
        }
    }

    /// `check `x`` / `alert `x``, for messages.
    fn what(&self) -> String {
        match self {
            Source::Check(id) => format!("check `{id}`"),
            Source::Alert { name, .. } => format!("alert `{name}`"),
            Source::Rule { text, .. } => format!("rule `{text}`"),
        }
    }

    /// What is still wrong, for an escalation's message.
    fn ongoing(&self) -> String {
        match self {
            Source::Check(_) => format!("{} has been failing", self.what()),
            Source::Alert { .. } | Source::Rule { .. } => {
                format!("{} has been firing", self.what())
            }
        }
    }

    /// The field naming it in `incident.resolved`: `("check", id)`,
    /// `("alert", key)` or `("rule", index)`.
    fn field(&self) -> (&'static str, Value) {
        match self {
            Source::Check(id) => ("check", json!(id)),
            Source::Alert { key, .. } => ("alert", json!(key)),
            Source::Rule { index, .. } => ("rule", json!(index)),
        }
    }
}

/// An incident as the journal tells it.
#[derive(Clone, Debug)]
struct Incident {
    id: String,
    source: Source,
    opened: Timestamp,
    /// The escalation level it was paged at first (a rule's `level`).
    entry: Option<usize>,
    /// Its pages' severity.
    severity: AlertSeverity,
    /// Escalation levels notified, by index.
    notified: Vec<usize>,
    acked: bool,
    resolved: bool,
}

impl Incident {
    /// An incident just opened at `opened`, with the level and severity
    /// its `incident.opened` data names.
    fn opened(id: String, source: Source, opened: Timestamp, data: &Value) -> Incident {
        Incident {
            id,
            source,
            opened,
            entry: data["level"].as_u64().and_then(|l| usize::try_from(l).ok()),
            severity: severity_named(data["severity"].as_str()),
            notified: Vec::new(),
            acked: false,
            resolved: false,
        }
    }
}

/// The incidents of a run's journal, oldest first.
fn incidents(events: &[Event]) -> Vec<Incident> {
    let mut out: Vec<Incident> = Vec::new();
    let text = |e: &Event, k: &str| e.data[k].as_str().unwrap_or_default().to_string();
    for e in events {
        let id = text(e, "incident");
        match e.kind.as_str() {
            event::OPENED => out.push(Incident::opened(id, Source::of(&e.data), e.at, &e.data)),
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

/// Is the run's watch window open: `watch.started` journaled and
/// `watch.ended` not?
pub fn window_open(events: &[Event]) -> bool {
    events.iter().any(|e| e.kind == event::STARTED)
        && !events.iter().any(|e| e.kind == event::ENDED)
}

/// The severity an incident's journal entry names; `error` when it names
/// none (a check's incident) or one PagerDuty does not know.
fn severity_named(name: Option<&str>) -> AlertSeverity {
    AlertSeverity::ALL
        .into_iter()
        .find(|s| Some(s.as_str()) == name)
        .unwrap_or(AlertSeverity::Error)
}

/// Which version serves the traffic during the window, the one the metric
/// rules read: the new one after a go-live, the previous one after a
/// rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Serving {
    /// The rollout's canary, promoted (or no rollout at all).
    New,
    /// The stable version, rolled back to.
    Previous,
}

/// The analysis the window's rules are evaluated by, reading the version
/// that serves: rules name the canary's side, so after a rollback the two
/// sides of the source trade places.
fn serving_analysis(analysis: &Analysis, serving: Serving) -> Analysis {
    let mut a = analysis.clone();
    if serving == Serving::Previous {
        match &mut a.source {
            MetricSource::Scrape { stable, canary } => std::mem::swap(stable, canary),
            MetricSource::Prometheus(_) => {
                let v = &mut a.versions;
                std::mem::swap(&mut v.stable, &mut v.canary);
            }
        }
    }
    a
}

/// How long from `from` to `to`; zero when `to` is earlier.
pub(crate) fn since(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or_default()
}

impl<S: Store + 'static> Engine<S> {
    /// Keeps the run live for the plan's watch window (see the module
    /// docs); returns when the window is over.
    pub(crate) async fn watch(
        &self,
        ctx: &Ctx<'_>,
        monitor: &Monitor,
        serving: Serving,
    ) -> Result<(), EngineError> {
        let events = self.store.events_after(ctx.run, 0, u32::MAX).await?;
        if events.iter().any(|e| e.kind == event::ENDED) {
            return Ok(());
        }
        // Rule hold timers start afresh on a resume: a rule must hold its
        // `for` again before it opens an incident (an open one stays open).
        let mut analyzer = match &monitor.analysis {
            Some(a) => match Analyzer::new(&serving_analysis(a, serving), ctx.vars) {
                Ok(mut analyzer) => {
                    analyzer.start_step(std::time::Instant::now(), 100);
                    Some(analyzer)
                }
                Err(e) => {
                    let error = ctx.vars.redact(&e.to_string());
                    self.report(&Progress::Watch {
                        kind: "watch.rules-unavailable",
                        data: &json!({ "error": error }),
                    });
                    None
                }
            },
            None => None,
        };
        let started = match events.iter().find(|e| e.kind == event::STARTED) {
            Some(e) => e.at,
            None => {
                let serving = match serving {
                    Serving::New => "new",
                    Serving::Previous => "previous",
                };
                let data = json!({
                    "window_s": monitor.window.as_secs_f64(),
                    "serving": serving,
                });
                self.watch_event(ctx, event::STARTED, data).await?;
                Timestamp::now()
            }
        };
        let mut open = incidents(&events);
        let mut opened_count = open.len();
        // One incident an alert key, ever (see the module docs).
        let mut alerts_seen: BTreeSet<String> = open
            .iter()
            .filter_map(|i| match &i.source {
                Source::Alert { key, .. } => Some(key.clone()),
                Source::Check(_) | Source::Rule { .. } => None,
            })
            .collect();
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
                if let Some(analyzer) = analyzer.as_mut() {
                    self.watch_rules(ctx, monitor, analyzer, &mut open, &mut opened_count)
                        .await?;
                }
                let period = monitor.period_at(elapsed);
                next_check = now
                    .checked_add(jiff::SignedDuration::try_from(period).unwrap_or_default())
                    .unwrap_or(now);
            }
            // Alerts and acks are requests made from outside: read once a poll.
            let requests = self.store.requests(ctx.run).await?;
            self.watch_alerts(
                ctx,
                monitor,
                &requests,
                &mut open,
                &mut opened_count,
                &mut alerts_seen,
            )
            .await?;
            self.watch_acks(ctx, monitor, &requests, &mut open).await?;
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
            let source = Source::Check(id.to_string());
            let current = open.iter().position(|i| i.source == source);
            match (outcome, current) {
                (Outcome::Failed, None) => {
                    let data = json!({
                        "check": id.as_str(),
                        "title": item.title,
                        "evidence": evidence,
                    });
                    self.open_incident(ctx, open, opened_count, source, data)
                        .await?;
                }
                (Outcome::Passed, Some(at)) => {
                    let incident = open.remove(at);
                    self.resolve(ctx, monitor, &incident, "passes again")
                        .await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Evaluates the metric rules: one that fires opens an incident (unless
    /// its incident is open) at its rule's level and severity; one that
    /// has data, is false and no longer fires (false for its `for`)
    /// resolves it. No data changes nothing.
    async fn watch_rules(
        &self,
        ctx: &Ctx<'_>,
        monitor: &Monitor,
        analyzer: &mut Analyzer,
        open: &mut Vec<Incident>,
        opened_count: &mut usize,
    ) -> Result<(), EngineError> {
        let evaluation = self
            .guarded(ctx, async {
                Ok(analyzer.evaluate(std::time::Instant::now()).await)
            })
            .await?;
        for (index, status) in evaluation.rule_statuses.iter().enumerate() {
            let Some(rule) = monitor.rules.get(index) else {
                continue;
            };
            let source = Source::Rule {
                index,
                text: status.rule.clone(),
            };
            let current = open.iter().position(|i| i.source == source);
            match current {
                None if status.fires => {
                    let data = json!({
                        "rule": index,
                        "title": status.rule,
                        "severity": rule.severity.as_str(),
                        "level": rule.level,
                        "evidence": {
                            "why": ctx.vars.redact(&status.why()),
                            "values": evaluation.values.iter()
                                .map(|(k, v)| (k.clone(), json!(v.canary)))
                                .collect::<serde_json::Map<_, _>>(),
                        },
                    });
                    self.open_incident(ctx, open, opened_count, source, data)
                        .await?;
                }
                // Not firing is not clear: after a resume the hold timer
                // starts afresh, and a rule that holds but has not held its
                // `for` yet is still what opened the incident.
                Some(at) if !status.fires && !status.holds && status.value.is_some() => {
                    let incident = open.remove(at);
                    self.resolve(ctx, monitor, &incident, "is clear").await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Alerts recorded for the run ([`crate::answers::alerts`]): a firing
    /// one opens an incident (once a key, and not when its resolution is
    /// already in), a resolved one resolves its open incident.
    async fn watch_alerts(
        &self,
        ctx: &Ctx<'_>,
        monitor: &Monitor,
        requests: &[Request],
        open: &mut Vec<Incident>,
        opened_count: &mut usize,
        seen: &mut BTreeSet<String>,
    ) -> Result<(), EngineError> {
        let resolved = |key: &str| {
            requests
                .iter()
                .any(|r| r.kind.split_once(':') == Some((ALERT_RESOLVED, key)))
        };
        for r in requests {
            let Some((kind, key)) = r.kind.split_once(':') else {
                continue;
            };
            if kind == ALERT_FIRING && !seen.contains(key) && !resolved(key) {
                seen.insert(key.to_string());
                // Written by `answers::alerts`; a reason that does not parse
                // was not, and is not an alert.
                let Some(alert) = r
                    .reason
                    .as_deref()
                    .and_then(|t| serde_json::from_str::<Alert>(t).ok())
                else {
                    continue;
                };
                let source = Source::Alert {
                    key: key.to_string(),
                    name: alert.alertname.clone(),
                };
                let data = json!({
                    "alert": key,
                    "title": alert.alertname,
                    "by": r.by,
                    "severity": severity_named(alert.labels.get("severity").map(String::as_str)).as_str(),
                    "evidence": alert,
                });
                self.open_incident(ctx, open, opened_count, source, data)
                    .await?;
            } else if kind == ALERT_RESOLVED {
                let at = open
                    .iter()
                    .position(|i| matches!(&i.source, Source::Alert { key: k, .. } if k == key));
                if let Some(at) = at {
                    let incident = open.remove(at);
                    self.resolve(ctx, monitor, &incident, "was resolved")
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Journals `incident.opened` (`data` plus the new incident's id) and
    /// starts its escalation clock.
    async fn open_incident(
        &self,
        ctx: &Ctx<'_>,
        open: &mut Vec<Incident>,
        opened_count: &mut usize,
        source: Source,
        mut data: Value,
    ) -> Result<(), EngineError> {
        *opened_count += 1;
        let id = format!("INC-{opened_count}");
        data["incident"] = json!(id);
        let incident = Incident::opened(id, source, Timestamp::now(), &data);
        self.watch_event(ctx, event::OPENED, data).await?;
        open.push(incident);
        Ok(())
    }

    /// Journals `incident.resolved` and tells the channels it reached.
    async fn resolve(
        &self,
        ctx: &Ctx<'_>,
        monitor: &Monitor,
        incident: &Incident,
        why: &str,
    ) -> Result<(), EngineError> {
        let open_s = since(incident.opened, Timestamp::now()).as_secs_f64();
        let (field, name) = incident.source.field();
        let mut data = json!({
            "incident": incident.id,
            "open_s": (open_s * 10.0).round() / 10.0,
        });
        data[field] = name;
        let text = format!(
            "{}: resolved — {} {why} (open {})",
            incident.id,
            incident.source.what(),
            golive_plan::time::format_duration(Duration::from_secs(open_s as u64))
        );
        self.tell(ctx, monitor, incident, NotifyEvent::Resolve, text)
            .await?;
        self.watch_event(ctx, event::RESOLVED, data).await
    }

    /// Acknowledgements asked for (`ack:INCIDENT` requests) of open
    /// incidents not yet acknowledged.
    async fn watch_acks(
        &self,
        ctx: &Ctx<'_>,
        monitor: &Monitor,
        requests: &[Request],
        open: &mut [Incident],
    ) -> Result<(), EngineError> {
        for r in requests {
            let Some(id) = r.kind.strip_prefix("ack:") else {
                continue;
            };
            let Some(incident) = open.iter_mut().find(|i| i.id == id && !i.acked) else {
                continue;
            };
            incident.acked = true;
            let data = json!({ "incident": id, "by": r.by, "reason": r.reason });
            let text = format!("{id}: acknowledged by {}", r.by);
            let incident = incident.clone();
            self.tell(ctx, monitor, &incident, NotifyEvent::Acknowledge, text)
                .await?;
            self.watch_event(ctx, event::ACKNOWLEDGED, data).await?;
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
                let due = monitor.escalates_after(incident.entry, level);
                if due.is_none_or(|due| age < due) || incident.notified.contains(&level) {
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
                // A role of the plan is paged with the people who hold it.
                let to = rule
                    .to
                    .as_deref()
                    .map(|t| match ctx.plan.roles.get(t) {
                        Some(role) if !role.members.is_empty() => {
                            format!(" {t} ({}):", role.members.join(", "))
                        }
                        _ => format!(" {t}:"),
                    })
                    .unwrap_or_default();
                let text = format!(
                    "{}:{to} {} for {} ({name}). Acknowledge: golive ack {} {} --by NAME",
                    incident.id,
                    incident.source.ongoing(),
                    golive_plan::time::format_duration(Duration::from_secs(age.as_secs())),
                    ctx.run,
                    incident.id
                );
                let out = Outgoing {
                    channel: rule.notify.as_str(),
                    text: ctx.vars.redact(&text),
                    event: NotifyEvent::Trigger,
                    dedup_key: Some(format!("golive/{}/{}", ctx.run, incident.id)),
                    severity: incident.severity,
                    extra: json!({ "by": "golive", "incident": incident.id, "level": name }),
                };
                deliver(&crate::items::Host::new(self, ctx), None, out).await?;
                // Journaled once the page went out (see the module docs).
                self.watch_event(ctx, event::ESCALATED, data).await?;
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
            deliver(&crate::items::Host::new(self, ctx), None, out).await?;
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
    /// The failing check (empty for an alert's incident).
    pub check: String,
    /// The alert's `alertname`, for an incident an alert opened.
    pub alert: Option<String>,
    /// The metric rule, as written, for an incident a rule opened.
    pub rule: Option<String>,
    /// Its pages' severity (`critical`, `error`, `warning`, `info`).
    pub severity: String,
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
        let what = match (&self.alert, &self.rule) {
            (Some(name), _) => format!("alert `{name}` fired"),
            (None, Some(rule)) => format!("rule `{rule}` fired"),
            (None, None) => format!("check `{}` failed", self.check),
        };
        format!(
            "{} — {what} at {}; {state}",
            self.id,
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
            let alert = e.data["alert"]
                .is_string()
                .then(|| text(e, "title").unwrap_or_default());
            let rule = e.data["rule"]
                .is_u64()
                .then(|| text(e, "title").unwrap_or_default());
            let evidence = if alert.is_some() {
                alert_evidence(&e.data["evidence"])
            } else if rule.is_some() {
                rule_evidence(&e.data["evidence"])
            } else {
                check_evidence(&e.data["evidence"])
            };
            by_id.insert(id.clone(), rec.incidents.len());
            rec.incidents.push(IncidentRecord {
                id,
                check: text(e, "check").unwrap_or_default(),
                alert,
                rule,
                severity: severity_named(e.data["severity"].as_str())
                    .as_str()
                    .to_string(),
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

/// A check's evidence in words: each condition, passed or not, and what
/// was observed.
fn check_evidence(evidence: &Value) -> Vec<String> {
    evidence["conditions"]
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
        .unwrap_or_default()
}

/// A metric rule's evidence in words: why it fires, then each metric's
/// value on that evaluation.
fn rule_evidence(evidence: &Value) -> Vec<String> {
    let mut out: Vec<String> = evidence["why"]
        .as_str()
        .map(str::to_string)
        .into_iter()
        .collect();
    if let Some(values) = evidence["values"].as_object() {
        let values: Vec<String> = values
            .iter()
            .map(|(k, v)| match v.as_f64() {
                Some(x) => format!("{k} = {}", golive_rollout::analysis::num(x)),
                None => format!("{k}: no data"),
            })
            .collect();
        if !values.is_empty() {
            out.push(format!("values: {}", values.join(", ")));
        }
    }
    out
}

/// An alert's evidence in words: its labels, each annotation, the link
/// to its rule.
fn alert_evidence(alert: &Value) -> Vec<String> {
    let pairs = |k: &str| -> Vec<(String, String)> {
        alert[k]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let labels: Vec<String> = pairs("labels")
        .into_iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    let mut out = vec![format!("labels: {{{}}}", labels.join(", "))];
    out.extend(
        pairs("annotations")
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}")),
    );
    if let Some(url) = alert["generatorURL"].as_str() {
        out.push(format!("source: {url}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(src: &str) -> Analysis {
        let c = golive_plan::compile(src, &|_: &str| true);
        let plan = c.plan.unwrap_or_else(|| panic!("{:?}", c.diagnostics));
        plan.monitor
            .and_then(|m| m.analysis)
            .expect("the monitor's analysis")
    }

    /// After a rollback the rules read the previous version: the sides
    /// of the source trade places, and nothing else changes.
    #[test]
    fn after_a_rollback_the_rules_read_the_previous_version() {
        let head = "name: w\nphases:\n  - title: a\n    items:\n      - id: up\n        check: {tcp: {address: '127.0.0.1:9'}}\nmonitor:\n  window: 1h\n";
        let scraped = analysis(&format!(
            "{head}  scrape: {{stable: 'http://old/metrics', canary: 'http://new/metrics'}}\n  metrics: [{{name: e, expr: e}}]\n  rules: [{{when: e > 1}}]\n"
        ));
        let url = |a: &Analysis| match &a.source {
            MetricSource::Scrape { canary, .. } => canary.clone(),
            MetricSource::Prometheus(_) => String::new(),
        };
        assert_eq!(
            url(&serving_analysis(&scraped, Serving::New)),
            "http://new/metrics"
        );
        assert_eq!(
            url(&serving_analysis(&scraped, Serving::Previous)),
            "http://old/metrics"
        );
        let prom = analysis(&format!(
            "{head}  prometheus: http://127.0.0.1:9090\n  metrics: [{{name: e, query: 'e{{version=\"{{{{version}}}}\"}}'}}]\n  rules: [{{when: e > 1}}]\n"
        ));
        let back = serving_analysis(&prom, Serving::Previous);
        assert_eq!(
            (back.versions.canary.as_str(), back.versions.stable.as_str()),
            ("stable", "canary")
        );
        assert_eq!(back.rules, prom.rules);
        assert_eq!(
            serving_analysis(&prom, Serving::New).versions,
            prom.versions
        );
    }

    #[test]
    fn severities_named_in_the_journal_or_error() {
        assert_eq!(severity_named(Some("critical")), AlertSeverity::Critical);
        assert_eq!(severity_named(Some("page")), AlertSeverity::Error);
        assert_eq!(severity_named(None), AlertSeverity::Error);
    }
}
