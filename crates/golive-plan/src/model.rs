//! The validated plan: what the engine, the probes and the server consume.
//!
//! Every value here has been checked by [`crate::compile`]: ids are unique
//! and well-formed, references resolve, durations are `Duration`s, an item
//! has exactly one kind. Code downstream matches on enums and never
//! re-validates.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::cond::Condition;
use crate::query::Query;
pub use crate::raw::{
    Action, DnsRecord, Evidence, OnFailure, OnInterrupt, RawCommand, RawDns, RawEnvCheck,
    RawFileCheck, RawHttp, RawPostgres, RawPrometheus, RawRedis, RawTcp, RawTls, Strategy,
};
use crate::rule::Rule;
use crate::time::TOffset;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a name already known to be valid (checked by the compiler).
            pub(crate) fn new(s: impl Into<String>) -> Self {
                $name(s.into())
            }

            /// The id as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// An item's id, unique in the plan.
    ItemId
);
id_type!(
    /// A phase's id, unique in the plan.
    PhaseId
);
id_type!(
    /// A role declared under `roles`.
    RoleName
);
id_type!(
    /// A channel declared under `channels`.
    ChannelName
);

/// A validated go-live plan.
#[derive(Clone, Debug)]
pub struct Plan {
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
    /// The go-live moment, if fixed in the plan.
    pub t0: Option<jiff::Timestamp>,
    /// Roles and members.
    pub roles: BTreeMap<RoleName, Role>,
    /// Variables (plan values, overridden by the environment and `--var`).
    pub variables: BTreeMap<String, String>,
    /// Secret references.
    pub secrets: BTreeMap<String, SecretRef>,
    /// Notification channels.
    pub channels: BTreeMap<ChannelName, Channel>,
    /// Plan-level blanks of the record.
    pub record: Vec<String>,
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// Rollback items and decision tree.
    pub rollback: Rollback,
    /// Watch window after go-live.
    pub monitor: Option<Monitor>,
    /// The communication schedule, in the order of its times.
    pub comms: Vec<Comm>,
}

/// A message of the communication schedule.
#[derive(Clone, Debug)]
pub struct Comm {
    /// When, relative to T-0.
    pub at: TOffset,
    /// The channel.
    pub channel: ChannelName,
    /// The text, with the run's facts filled in when sent.
    pub message: crate::template::Template,
}

impl Plan {
    /// Every item of every phase, in order (rollback items excluded).
    pub fn items(&self) -> impl Iterator<Item = (&Phase, &Item)> {
        self.phases
            .iter()
            .flat_map(|p| p.items.iter().map(move |i| (p, i)))
    }
}

/// A role.
#[derive(Clone, Debug)]
pub struct Role {
    /// Members who may act for it.
    pub members: Vec<String>,
    /// What it is for.
    pub description: Option<String>,
}

/// Where a secret's value comes from. The value itself is never stored in the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file's contents (trailing newline removed).
    File(String),
}

/// A notification channel: where messages go and how hard golive tries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Kind and address.
    pub kind: ChannelKind,
    /// Retries after a failed delivery (backoff doubles from 500 ms).
    pub retries: u32,
    /// A failed delivery fails the `notify` item; otherwise it is journaled
    /// and the run goes on.
    pub required: bool,
}

/// A channel's kind and address. Strings are templates, usually `${SECRET}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// Slack-compatible incoming webhook URL.
    Slack(String),
    /// PagerDuty Events API v2.
    PagerDuty {
        /// Routing (integration) key.
        routing_key: String,
        /// Base URL of the Events API (default PagerDuty's own).
        events_url: Option<String>,
    },
    /// Generic JSON webhook.
    Webhook {
        /// Endpoint URL.
        url: String,
        /// Standard Webhooks signing secret, `whsec_<base64>`.
        secret: Option<String>,
    },
    /// Email over SMTP.
    Email {
        /// Recipients (templates).
        to: Vec<String>,
        /// Sender (template).
        from: String,
        /// SMTP server URL (template, usually `${SMTP_URL}`).
        smtp: String,
    },
    /// golive's own journal only.
    Log,
}

/// What a `notify` item asks of a PagerDuty channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NotifyEvent {
    /// Open an alert.
    #[default]
    Trigger,
    /// Acknowledge the alert with the same dedup key.
    Acknowledge,
    /// Resolve the alert with the same dedup key.
    Resolve,
    /// Record a change (a deployment).
    Change,
}

impl NotifyEvent {
    /// Every event, in the order the plan format lists them.
    pub const ALL: [NotifyEvent; 4] = [
        NotifyEvent::Trigger,
        NotifyEvent::Acknowledge,
        NotifyEvent::Resolve,
        NotifyEvent::Change,
    ];

    /// The plan's (and the Events API's) name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Trigger => "trigger",
            NotifyEvent::Acknowledge => "acknowledge",
            NotifyEvent::Resolve => "resolve",
            NotifyEvent::Change => "change",
        }
    }
}

/// PagerDuty alert severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AlertSeverity {
    /// `critical`.
    Critical,
    /// `error`.
    Error,
    /// `warning`.
    Warning,
    /// `info`.
    #[default]
    Info,
}

impl AlertSeverity {
    /// Every severity, highest first.
    pub const ALL: [AlertSeverity; 4] = [
        AlertSeverity::Critical,
        AlertSeverity::Error,
        AlertSeverity::Warning,
        AlertSeverity::Info,
    ];

    /// The Events API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Critical => "critical",
            AlertSeverity::Error => "error",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Info => "info",
        }
    }
}

/// A phase.
#[derive(Clone, Debug)]
pub struct Phase {
    /// Id (given or derived from the title).
    pub id: PhaseId,
    /// Title.
    pub title: String,
    /// Start relative to T-0.
    pub at: Option<TOffset>,
    /// Free text.
    pub description: Option<String>,
    /// Gate to leave the phase.
    pub gate: Gate,
    /// Phase-level blanks of the record.
    pub record: Vec<String>,
    /// Items in order.
    pub items: Vec<Item>,
}

/// What must hold to leave a phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    /// All checks passing.
    pub checks: bool,
    /// All approvals given.
    pub approvals: bool,
}

/// A step of the go-live.
#[derive(Clone, Debug)]
pub struct Item {
    /// Unique id.
    pub id: ItemId,
    /// Title.
    pub title: String,
    /// Longer text.
    pub description: Option<String>,
    /// Responsible role.
    pub owner: Option<RoleName>,
    /// Labels.
    pub tags: Vec<String>,
    /// Whether failure fails the go-live.
    pub critical: bool,
    /// Failure policy (item's own, else the phase's, else `stop`).
    pub on_failure: OnFailure,
    /// Interruption policy (default: ask for commands, rerun for everything else).
    pub on_interrupt: OnInterrupt,
    /// Drafted by the importer; needs a person's review.
    pub review: bool,
    /// Nested checklist lines confirmed with this item.
    pub subtasks: Vec<String>,
    /// 1-based line in the plan file (0 when built in code).
    pub line: usize,
    /// What the item does.
    pub kind: ItemKind,
}

/// The kinds of item.
#[derive(Clone, Debug)]
pub enum ItemKind {
    /// Manual step confirmed by a person.
    Task(Task),
    /// Automated probe.
    Check(Check),
    /// Shell command.
    Run(Run),
    /// Sign-off.
    Approval(Approval),
    /// Pause.
    Wait(Wait),
    /// Message to a channel.
    Notify(Notify),
    /// Feature-flag change.
    Flag(FlagChange),
    /// Progressive rollout.
    Rollout(Rollout),
}

impl ItemKind {
    /// The kind's name as written in a plan.
    pub fn name(&self) -> &'static str {
        match self {
            ItemKind::Task(_) => "task",
            ItemKind::Check(_) => "check",
            ItemKind::Run(_) => "run",
            ItemKind::Approval(_) => "approval",
            ItemKind::Wait(_) => "wait",
            ItemKind::Notify(_) => "notify",
            ItemKind::Flag(_) => "flag",
            ItemKind::Rollout(_) => "rollout",
        }
    }

    /// Every kind name, in the order used for counts.
    pub const NAMES: [&'static str; 8] = [
        "task", "check", "run", "approval", "wait", "notify", "flag", "rollout",
    ];
}

/// A manual task.
#[derive(Clone, Debug, Default)]
pub struct Task {
    /// What to do.
    pub instructions: Option<String>,
    /// Whether evidence is required.
    pub evidence_required: bool,
    /// Blanks to fill when confirming.
    pub fields: Vec<String>,
}

/// An automated probe with its conditions.
#[derive(Clone, Debug)]
pub struct Check {
    /// What is probed.
    pub probe: Probe,
    /// Conditions that must all hold.
    pub expect: Vec<Condition>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Extra attempts.
    pub retries: u32,
    /// Pause between attempts.
    pub retry_delay: Duration,
}

/// A probe and its settings.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum Probe {
    Http(RawHttp),
    Tcp(RawTcp),
    Dns(RawDns),
    Tls(RawTls),
    Postgres(RawPostgres),
    Redis(RawRedis),
    Prometheus(RawPrometheus),
    Command(RawCommand),
    Env(RawEnvCheck),
    File(RawFileCheck),
}

impl Probe {
    /// The probe kind's name.
    pub fn name(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Tcp(_) => "tcp",
            Probe::Dns(_) => "dns",
            Probe::Tls(_) => "tls",
            Probe::Postgres(_) => "postgres",
            Probe::Redis(_) => "redis",
            Probe::Prometheus(_) => "prometheus",
            Probe::Command(_) => "command",
            Probe::Env(_) => "env",
            Probe::File(_) => "file",
        }
    }
}

/// A shell command.
#[derive(Clone, Debug)]
pub struct Run {
    /// Command text for `sh -c`.
    pub command: String,
    /// Per-attempt limit.
    pub timeout: Duration,
    /// Extra attempts.
    pub retries: u32,
    /// First pause between attempts (doubles).
    pub backoff: Duration,
    /// Working directory.
    pub workdir: Option<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
}

/// A sign-off gate: `min` of `roles` must sign.
#[derive(Clone, Debug)]
pub struct Approval {
    /// Roles whose sign-off counts (non-empty, each with members).
    pub roles: Vec<RoleName>,
    /// How many must sign, 1..=roles.len().
    pub min: u32,
    /// Question to the approvers.
    pub message: Option<String>,
}

/// A pause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// For a duration.
    For(Duration),
    /// Until a T-offset.
    Until(TOffset),
}

/// A message to a channel.
#[derive(Clone, Debug)]
pub struct Notify {
    /// Channel.
    pub channel: ChannelName,
    /// Message template.
    pub message: String,
    /// PagerDuty event (other channels ignore it).
    pub event: NotifyEvent,
    /// PagerDuty dedup key template; always set for acknowledge and resolve.
    pub dedup_key: Option<String>,
    /// PagerDuty severity of a trigger.
    pub severity: AlertSeverity,
}

/// A feature-flag change.
#[derive(Clone, Debug)]
pub struct FlagChange {
    /// Flag key.
    pub key: String,
    /// On or off (None keeps the current state).
    pub enabled: Option<bool>,
    /// Rollout percentage, 0–100.
    pub percentage: Option<f64>,
    /// Variant to serve.
    pub variant: Option<String>,
}

/// A progressive rollout.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// Canary or blue-green.
    pub strategy: Strategy,
    /// Steps; for blue-green a single step to 100.
    pub steps: Vec<Step>,
    /// How traffic moves.
    pub traffic: Traffic,
    /// Go/no-go analysis (boxed: it is most of a rollout's size).
    pub analysis: Box<Analysis>,
    /// Blue-green: how long the previous version stays ready.
    pub keep_previous: Option<Duration>,
}

/// One traffic step.
#[derive(Clone, Debug)]
pub struct Step {
    /// Percentage of traffic on the new version, 0–100.
    pub weight: u8,
    /// How long to hold it.
    pub pause: Pause,
    /// Roles to sign before moving on.
    pub approve: Vec<RoleName>,
    /// Checks to pass before moving on.
    pub checks: Vec<ItemId>,
}

/// How long a step is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// Move on at once (after gates).
    None,
    /// Hold for a duration while analysing.
    For(Duration),
    /// Hold until `golive promote`.
    Manual,
}

/// A traffic actuator.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum Traffic {
    Haproxy {
        socket: String,
        backend: String,
        stable: String,
        canary: String,
    },
    Nginx {
        upstream_file: String,
        upstream: String,
        stable: String,
        canary: String,
        reload: String,
    },
    Flag {
        key: String,
    },
    Command {
        command: String,
    },
    Webhook {
        url: String,
    },
}

/// Where analysis metrics come from.
#[derive(Clone, Debug)]
pub enum MetricSource {
    /// A Prometheus server (base URL).
    Prometheus(String),
    /// Scraped directly from the services.
    Scrape {
        /// Metrics URL of the stable version.
        stable: String,
        /// Metrics URL of the canary version.
        canary: String,
    },
}

/// Go/no-go analysis.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Evaluation period.
    pub interval: Duration,
    /// Metric source.
    pub source: MetricSource,
    /// Named metrics, unique by name.
    pub metrics: Vec<Metric>,
    /// Rules; one that fires (held for its `for`) fails the evaluation.
    pub rules: Vec<Rule>,
    /// Failed evaluations tolerated.
    pub failure_limit: u32,
    /// Canary-versus-baseline judges.
    pub judges: Vec<Judge>,
    /// After each weight change, how long evaluations are journaled
    /// without a verdict (the windows fill with the new weight's traffic).
    pub warmup: Duration,
    /// The fewest requests in the window before a verdict.
    pub min_requests: Option<MinRequests>,
    /// Inconclusive evaluations in a row (after the warm-up) before a
    /// person is asked.
    pub inconclusive_limit: u32,
    /// How the metrics' series name the two versions.
    pub versions: Versions,
}

/// The fewest requests a side must have served, in the metric's window,
/// before its values decide anything.
#[derive(Clone, Debug)]
pub struct MinRequests {
    /// A metric of the analysis counting the requests in its window.
    pub metric: String,
    /// The fewest.
    pub count: f64,
}

/// How Prometheus series name the two versions: a label and its value
/// for each (default `version`, `stable`, `canary`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versions {
    /// The label (`version`).
    pub label: String,
    /// Its value on the stable version's series.
    pub stable: String,
    /// Its value on the canary's series.
    pub canary: String,
}

impl Default for Versions {
    fn default() -> Versions {
        Versions {
            label: "version".into(),
            stable: "stable".into(),
            canary: "canary".into(),
        }
    }
}

/// A named metric.
#[derive(Clone, Debug)]
pub struct Metric {
    /// Name used in rules.
    pub name: String,
    /// How its value is obtained.
    pub query: MetricQuery,
}

/// A metric's query, by source.
#[derive(Clone, Debug)]
pub enum MetricQuery {
    /// PromQL sent to Prometheus (`{{version}}` replaced per side).
    Prometheus(String),
    /// A scrape expression, parsed.
    Scrape(Query),
}

impl MetricQuery {
    /// The query as written.
    pub fn text(&self) -> &str {
        match self {
            MetricQuery::Prometheus(q) => q,
            MetricQuery::Scrape(q) => q.text(),
        }
    }
}

/// A canary-versus-baseline comparison.
#[derive(Clone, Debug)]
pub struct Judge {
    /// Metric compared.
    pub metric: String,
    /// Which direction is a regression.
    pub fail_when_increase: bool,
    /// Confidence, in (0, 1).
    pub confidence: f64,
    /// Relative effect tolerated.
    pub tolerance: f64,
}

/// Rollback items and decision tree.
#[derive(Clone, Debug, Default)]
pub struct Rollback {
    /// Items run on rollback.
    pub items: Vec<Item>,
    /// Levels, mildest first.
    pub levels: Vec<Level>,
}

/// A level of the decision tree.
#[derive(Clone, Debug)]
pub struct Level {
    /// Name.
    pub name: String,
    /// Any of these, held for its `for`, triggers the level.
    pub when: Vec<Rule>,
    /// Actions in order.
    pub actions: Vec<LevelAction>,
    /// Drafted by the importer.
    pub review: bool,
}

impl Level {
    /// Whether the level stops the rollout from going on by itself
    /// (pauses, rolls back now or after a grace, or freezes).
    pub fn stops(&self) -> bool {
        self.actions.iter().any(|a| {
            matches!(
                a,
                LevelAction::Pause
                    | LevelAction::Freeze
                    | LevelAction::Rollback
                    | LevelAction::RollbackAfter(_)
            )
        })
    }
}

/// A level's action, compiled.
#[derive(Clone, Debug, PartialEq)]
pub enum LevelAction {
    /// Turn a feature flag off and go on.
    DisableFlag(String),
    /// Hold the rollout (analysis goes on) until a person promotes, or the
    /// level clears.
    Pause,
    /// Stop moving traffic, never roll back.
    Freeze,
    /// Send a message to a channel.
    Notify(String),
    /// Roll back unless the level clears within this long of being entered.
    RollbackAfter(Duration),
    /// Roll back now.
    Rollback,
    /// Record and go on.
    Continue,
}

/// Watch window after go-live.
#[derive(Clone, Debug)]
pub struct Monitor {
    /// Length.
    pub window: Duration,
    /// Checks re-run.
    pub checks: Vec<ItemId>,
    /// Re-run period (past the cadence's stretches).
    pub interval: Duration,
    /// Stretches of another period, in order, from the window's start.
    pub cadence: Vec<Cadence>,
    /// Escalation rules, in the order an unacknowledged incident climbs
    /// them.
    pub escalation: Vec<Escalation>,
    /// Metric rules, with the analysis they are evaluated by (its `rules`
    /// are theirs, in the same order); `None` without rules.
    pub analysis: Option<Analysis>,
    /// What each rule's incident does, by the index of its rule in
    /// `analysis.rules`.
    pub rules: Vec<WatchRule>,
}

/// What a metric rule of the watch window does when it fires.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchRule {
    /// The condition (also `analysis.rules[i]`).
    pub rule: Rule,
    /// Its pages' severity.
    pub severity: AlertSeverity,
    /// The escalation level paged at once (an index into `escalation`);
    /// `None`: the escalation from the start.
    pub level: Option<usize>,
}

impl Monitor {
    /// Every period the window re-runs its checks at, over its length.
    pub fn periods(&self) -> Vec<Duration> {
        let mut out: Vec<Duration> = self.cadence.iter().map(|c| c.every).collect();
        if self.cadence.last().is_none_or(|c| c.until.is_some()) {
            out.push(self.interval);
        }
        out
    }

    /// Whether the window has anything to watch (checks or rules).
    pub fn watches(&self) -> bool {
        !self.checks.is_empty() || !self.rules.is_empty()
    }

    /// When escalation level `level` fires for an incident that entered the
    /// ladder at `entry`, counted from the incident's opening: the entry
    /// level at once, the next ones as far apart as their `after`s are.
    /// `None` for a level below the entry.
    pub fn escalates_after(&self, entry: Option<usize>, level: usize) -> Option<Duration> {
        let after = self.escalation.get(level)?.after;
        match entry {
            None => Some(after),
            Some(e) if level < e => None,
            Some(e) => {
                let base = self.escalation.get(e).map_or(Duration::ZERO, |l| l.after);
                Some(after.saturating_sub(base))
            }
        }
    }
}

/// A stretch of the watch window's cadence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    /// The period.
    pub every: Duration,
    /// Until when, from the window's start (`None`: to its end).
    pub until: Option<Duration>,
}

impl Monitor {
    /// The re-run period `elapsed` into the window.
    pub fn period_at(&self, elapsed: Duration) -> Duration {
        self.cadence
            .iter()
            .find(|c| c.until.is_none_or(|u| elapsed < u))
            .map_or(self.interval, |c| c.every)
    }
}

/// An escalation rule.
#[derive(Clone, Debug)]
pub struct Escalation {
    /// Name.
    pub name: Option<String>,
    /// Delay before it fires.
    pub after: Duration,
    /// Channel.
    pub notify: ChannelName,
    /// Role or person.
    pub to: Option<String>,
}
