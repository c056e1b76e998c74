//! The plan as written: serde types that mirror the YAML one to one.
//!
//! These types are the single source of the JSON Schema (`golive schema`),
//! of what the importer writes, and of what the reader accepts. They are
//! deliberately loose where a mistake should be reported *with the others*
//! rather than stop the read: durations, T-offsets and conditions are kept as
//! [`Spanned`] text and checked by [`crate::compile`], which turns a
//! `RawPlan` into a [`crate::Plan`] whose types admit no invalid state.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de::{Deferred, Spanned};

/// Text with its position in the plan.
pub type Text = Spanned<String>;

/// A go-live plan (`golive.yaml`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "golive plan", description = "A go-live plan run by golive.")]
pub struct RawPlan {
    /// What is going live, e.g. `checkout-v2`.
    pub name: Text,
    /// The version being released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Text>,
    /// Target environment, e.g. `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Text>,
    /// The team or person accountable for the go-live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Text>,
    /// Free text shown at the top of the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The go-live moment (RFC 3339, e.g. `2026-12-01T14:00:00Z`); phases are placed relative to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t0: Option<Text>,
    /// Roles and their members, e.g. `tech-lead: {members: [alice]}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Deferred<RawRole>>,
    /// Plan variables, referenced as `${NAME}`; the environment and `--var` override them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, Text>,
    /// Secrets by reference (`env:NAME` or `file:PATH`), referenced as `${NAME}`; never printed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, Text>,
    /// Notification channels, referenced by `notify` items and escalation rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, Deferred<RawChannel>>,
    /// Blanks of the go-live record filled in during the run, e.g. `Deployment Date`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record: Vec<Text>,
    /// Phases, in order.
    #[serde(default)]
    pub phases: Vec<Deferred<RawPhase>>,
    /// What to do when the go-live is rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Deferred<RawRollback>>,
    /// The watch window after go-live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Deferred<RawMonitor>>,
    /// The communication schedule: messages sent at T-offsets while the
    /// run is live, e.g. `{at: T+15m, channel: stakeholders, message:
    /// "{{plan}} is {{status}}, error rate {{metrics.error_rate}}"}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comms: Vec<RawComm>,
}

/// A message of the communication schedule.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawComm {
    /// When, relative to T-0: `T-24h`, `T-30m`, `T+15m`, `T+1h`.
    pub at: Text,
    /// The channel it goes to.
    pub channel: Text,
    /// The text, with `{{plan}}`, `{{run}}`, `{{status}}`, `{{phase}}`,
    /// `{{t0}}`, `{{t}}`, `{{signed}}`, `{{step}}` and
    /// `{{metrics.NAME}}` replaced by the run's facts when it is sent.
    pub message: Text,
}

/// A role and the people who hold it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    /// People (names, handles or e-mail addresses) who may act for this role.
    #[serde(default)]
    pub members: Vec<Text>,
    /// What the role is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A phase of the go-live.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    /// Stable identifier; derived from the title when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Text>,
    /// Title, e.g. `Pre-deployment validation`.
    pub title: Text,
    /// When the phase starts, relative to T-0: `T-72h`, `T-24h`, `T+0`, `T+30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Text>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default failure policy of the phase's items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// What must hold before the run leaves this phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<RawGate>,
    /// Blanks of the record that belong to this phase, e.g. `Start Time`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record: Vec<Text>,
    /// The phase's items, in order.
    #[serde(default)]
    pub items: Vec<Deferred<RawItem>>,
}

/// Conditions for leaving a phase.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGate {
    /// Every check of the phase must pass.
    #[serde(default)]
    pub checks: bool,
    /// Every approval of the phase must be given.
    #[serde(default)]
    pub approvals: bool,
}

/// What to do when an item fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Stop the run and wait for a person.
    Stop,
    /// Roll the go-live back.
    Rollback,
    /// Record the failure and go on.
    Continue,
}

/// What to do with an item that was running when golive stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnInterrupt {
    /// Run it again.
    Rerun,
    /// Ask a person whether to rerun or skip it.
    Ask,
    /// Mark it skipped.
    Skip,
}

/// One step of the go-live. Exactly one of the kind fields (`task`, `check`,
/// `run`, `approval`, `wait`, `notify`, `flag`, `rollout`) must be present.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawItem {
    /// Identifier, unique in the plan (letters, digits, `-`, `_`, `.`).
    pub id: Text,
    /// What the step is, as a person reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Text>,
    /// Longer explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The role responsible for this item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Text>,
    /// Free labels, for `--tag` selection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// A failing critical item fails the go-live (and the readiness report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<bool>,
    /// Overrides the phase's failure policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// What to do if golive stopped while this item was running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_interrupt: Option<OnInterrupt>,
    /// Marks an item drafted by `golive import` that a person should review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<bool>,
    /// Items nested under this one in the source checklist, confirmed with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtasks: Vec<Text>,
    /// A manual step confirmed by a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<RawTask>,
    /// An automated probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<RawCheck>,
    /// A shell command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RawRun>,
    /// A sign-off by roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<RawApproval>,
    /// A pause for a duration or until a T-offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<RawWait>,
    /// A message to a channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<RawNotify>,
    /// A feature-flag change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<RawFlag>,
    /// A progressive traffic shift with analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RawRollout>,
}

impl RawItem {
    /// Which kind fields are present, in the order of [`crate::ItemKind::NAMES`].
    pub fn kinds_present(&self) -> [bool; 8] {
        [
            self.task.is_some(),
            self.check.is_some(),
            self.run.is_some(),
            self.approval.is_some(),
            self.wait.is_some(),
            self.notify.is_some(),
            self.flag.is_some(),
            self.rollout.is_some(),
        ]
    }
}

/// A manual task.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    /// What the person should do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Whether confirming needs evidence (a link, a value, a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// Blanks the person fills in when confirming, e.g. `Backup file`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Text>,
}

/// Evidence policy of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// Confirming without evidence is refused.
    Required,
    /// Evidence may be attached.
    Optional,
}

/// An automated probe: exactly one probe kind, plus conditions on its result.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// HTTP(S) request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<RawHttp>,
    /// TCP connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<RawTcp>,
    /// DNS lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<RawDns>,
    /// TLS handshake and certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RawTls>,
    /// PostgreSQL connection and query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<RawPostgres>,
    /// Redis connection, auth, persistence, memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RawRedis>,
    /// Prometheus query or alert state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<RawPrometheus>,
    /// A command's exit code and output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<RawCommand>,
    /// Environment variables set and non-empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<RawEnvCheck>,
    /// A file present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<RawFileCheck>,
    /// Conditions that must all hold, e.g. `status == 200`, `response_time < 500ms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<Text>,
    /// Per-attempt timeout (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Text>,
    /// Extra attempts after a failure (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Pause between attempts (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<Text>,
}

/// An HTTP probe.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// The URL; may use `${VAR}`.
    pub url: Text,
    /// Method (default GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Text>,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Verify the server's certificate (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    /// Extra CA certificate (PEM file) to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// A TCP probe.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    /// `host:port`.
    pub address: Text,
}

/// A DNS probe.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    /// Name to resolve.
    pub name: Text,
    /// Record type (default A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<DnsRecord>,
    /// Resolver `ip:port` (default: the system's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<Text>,
}

/// DNS record types golive can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[allow(missing_docs, clippy::upper_case_acronyms)]
pub enum DnsRecord {
    A,
    AAAA,
    CNAME,
    TXT,
    MX,
}

/// A TLS probe.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// `host:port`.
    pub address: Text,
    /// Name the certificate must be valid for (default: the host of `address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<Text>,
    /// Extra CA certificate (PEM file) to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// A PostgreSQL probe.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    /// Connection URL; use a secret (`${DB_URL}`) for credentials.
    pub url: Text,
    /// A query whose first column of the first row is the check's `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// A Redis probe.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// Connection URL (`redis://[:password@]host:port`).
    pub url: Text,
}

/// A Prometheus probe.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheus {
    /// Base URL of the Prometheus server.
    pub url: Text,
    /// Instant PromQL query; its value is the check's `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Text>,
    /// Check firing alerts (optionally filtered by these labels) instead of a query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<BTreeMap<String, String>>,
}

/// A command probe.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    /// Shell command.
    pub command: Text,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

/// Environment variables that must be set and non-empty.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvCheck {
    /// Variable names.
    pub vars: Vec<Text>,
}

/// A file that must exist.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFileCheck {
    /// Path.
    pub path: Text,
}

/// A shell command run by the engine.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    /// The command, run by `sh -c`. Plan variables reach it as environment variables.
    pub command: Text,
    /// Time limit per attempt (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Text>,
    /// Extra attempts after a failure (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// First pause between attempts, doubled each time (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Text>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// A sign-off gate.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApproval {
    /// Roles whose sign-off counts.
    pub roles: Vec<Text>,
    /// How many of those roles must sign (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Spanned<u32>>,
    /// What the approvers are asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A pause: exactly one of `duration` and `until`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWait {
    /// How long, e.g. `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Text>,
    /// Until a T-offset, e.g. `T+0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Text>,
}

/// A message to a channel.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// A channel declared under `channels`.
    pub channel: Text,
    /// The message; may use `${VAR}`.
    pub message: String,
    /// PagerDuty channels: `trigger` (default), `acknowledge`, `resolve`, or
    /// `change` (a change event, e.g. at deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Text>,
    /// PagerDuty channels: the alert's dedup key, required to `acknowledge`
    /// or `resolve`; may use `${VAR}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<Text>,
    /// PagerDuty channels: `critical`, `error`, `warning` or `info` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Text>,
}

/// A feature-flag change.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFlag {
    /// Flag key.
    pub key: Text,
    /// On or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Share of users who get it, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Spanned<f64>>,
    /// Variant to serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A progressive rollout.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRollout {
    /// `canary` or `blue-green`.
    pub strategy: Spanned<Strategy>,
    /// Traffic steps (canary). Blue-green switches at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<RawStep>,
    /// How traffic is moved.
    pub traffic: RawTraffic,
    /// Go/no-go analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RawAnalysis>,
    /// Blue-green: how long blue is kept ready for an instant switch back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_previous: Option<Text>,
}

/// A rollout strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Shift traffic in steps.
    #[default]
    Canary,
    /// Switch all traffic at once, keep the old version ready.
    BlueGreen,
}

/// One canary step.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Share of traffic on the new version, 0–100.
    pub weight: Spanned<u32>,
    /// How long to hold the step (`5m`), or `manual` to wait for `golive promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Text>,
    /// Roles that must sign before the next step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approve: Vec<Text>,
    /// Check items (by id) that must pass before the next step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Text>,
}

/// A traffic actuator: exactly one field.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTraffic {
    /// HAProxy runtime API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub haproxy: Option<RawHaproxy>,
    /// nginx upstream weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<RawNginx>,
    /// golive's own feature flag percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<RawFlagTraffic>,
    /// A shell command given `GOLIVE_WEIGHT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Text>,
    /// An HTTP POST of `{"weight": N}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Text>,
}

/// HAProxy actuator settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHaproxy {
    /// Admin socket: a path or `host:port`.
    pub socket: Text,
    /// Backend name.
    pub backend: Text,
    /// Server of the current version.
    pub stable: Text,
    /// Server of the new version.
    pub canary: Text,
}

/// nginx actuator settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNginx {
    /// The upstream file golive owns and rewrites.
    pub upstream_file: Text,
    /// Upstream name.
    pub upstream: Text,
    /// Address of the current version.
    pub stable: Text,
    /// Address of the new version.
    pub canary: Text,
    /// Reload command (default `nginx -s reload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<String>,
}

/// Flag actuator settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFlagTraffic {
    /// Flag key whose percentage is the canary weight.
    pub key: Text,
}

/// Go/no-go analysis of a rollout.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAnalysis {
    /// How often metrics are evaluated (default 30s, at least 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Text>,
    /// Where metrics come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Text>,
    /// Scrape the services' own metrics endpoints instead of Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape: Option<RawScrape>,
    /// Named metrics used by the rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<RawMetric>,
    /// Rules such as `error_rate > 0.05 for 2m`; any rule that holds fails the step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Text>,
    /// Failed evaluations tolerated before rolling back (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<u32>,
    /// Canary-versus-baseline comparisons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judge: Vec<RawJudge>,
    /// After each weight change, how long evaluations are recorded without
    /// a verdict while the metrics' windows fill with the new weight's
    /// traffic, e.g. `10s` (default 0s; at least the longest window is
    /// advised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Text>,
    /// The fewest requests a version must have served in the window before
    /// its values decide anything; fewer make the evaluation inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<RawMinRequests>,
    /// Inconclusive evaluations in a row, after the warm-up, before the
    /// rollout pauses for a person (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<Spanned<u32>>,
    /// How the Prometheus series name the two versions (default: label
    /// `version`, values `stable` and `canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<RawVersions>,
}

/// The minimum sample size of an analysis.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMinRequests {
    /// A metric (from `metrics`) giving the requests a version served in
    /// its window, e.g. `sum by (version) (increase(http_requests_total[30s]))`.
    pub metric: Text,
    /// The fewest requests, e.g. 50.
    pub count: Spanned<u32>,
}

/// How series name the versions: `{{version}}` in a query is replaced by
/// `stable` or `canary` (the value of that version), and a query without it
/// gives the two sides by the label's value.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVersions {
    /// The label that tells the versions apart (default `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Text>,
    /// Its value on the stable version's series (default `stable`), e.g. `v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<Text>,
    /// Its value on the canary's series (default `canary`), e.g. `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Text>,
}

/// Metrics endpoints of the two versions.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScrape {
    /// Metrics URL of the current version.
    pub stable: Text,
    /// Metrics URL of the new version.
    pub canary: Text,
}

/// A named metric.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetric {
    /// Name used in rules, e.g. `error_rate`.
    pub name: Text,
    /// PromQL (with Prometheus); `{{version}}` is replaced by `stable` or `canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Text>,
    /// With `scrape`: a computed metric, e.g. `ratio(http_requests_total{code=~"5.."}, http_requests_total)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<Text>,
}

/// A canary-versus-baseline comparison (Mann-Whitney U).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJudge {
    /// Metric name (from `metrics`).
    pub metric: Text,
    /// Which direction is bad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_when: Option<Direction>,
    /// Confidence level, e.g. 0.95.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Spanned<f64>>,
    /// Relative effect tolerated before failing, e.g. 0.1 for 10%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Spanned<f64>>,
}

/// Which direction of change is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Higher is worse (errors, latency).
    Increase,
    /// Lower is worse (throughput, success rate).
    Decrease,
}

/// Rollback: items to run and the decision tree that triggers them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRollback {
    /// Items run, in order, on rollback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Deferred<RawItem>>,
    /// Decision levels, mildest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<Deferred<RawLevel>>,
}

/// One level of the rollback decision tree.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLevel {
    /// Short name, e.g. `degraded`.
    pub name: Text,
    /// Conditions, any of which triggers the level, e.g. `error_rate > 0.05 for 2m`.
    pub when: Vec<Text>,
    /// Actions, in order.
    pub actions: Vec<Spanned<Action>>,
    /// Drafted by `golive import`; a person should review the thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<bool>,
}

/// A rollback action.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Turn a feature flag off and go on.
    DisableFlag(String),
    /// Stop moving traffic and wait for a person.
    Pause,
    /// Stop moving traffic, never roll back (irreversible migrations).
    Freeze,
    /// Send a message to a channel.
    Notify(String),
    /// Roll back unless the condition clears within this duration.
    RollbackAfter(String),
    /// Roll back now.
    Rollback,
    /// Record and go on.
    Continue,
}

/// The watch window after go-live.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    /// How long to watch, e.g. `24h`.
    pub window: Text,
    /// Check items (by id) re-run during the window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Text>,
    /// How often to re-run them (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Text>,
    /// A cadence that changes over the window, e.g. every 2m until 30m,
    /// every 5m until 1h, then hourly: `[{every: 2m, until: 30m}, {every:
    /// 5m, until: 1h}, {every: 1h}]`. Times count from the window's start;
    /// past the last `until`, `interval` applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cadence: Vec<RawCadence>,
    /// Escalation rules, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalation: Vec<RawEscalation>,
    /// Metric rules watched in the window, e.g. `{when: "error_rate > 5% for
    /// 2m", severity: critical, level: On-call engineer}`: the rules of
    /// rollout analysis, over the version serving traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RawWatchRule>,
    /// Where the rules' metrics come from: a Prometheus URL. Without it (and
    /// without `scrape`), the analysis of the plan's last rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Text>,
    /// Scrape the services' own metrics endpoints instead of Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape: Option<RawScrape>,
    /// Named metrics read by the rules (with `prometheus` or `scrape`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<RawMetric>,
}

/// A metric rule of the watch window.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWatchRule {
    /// The condition, e.g. `error_rate > 5% for 2m`.
    pub when: Text,
    /// `critical`, `error` (default), `warning` or `info`: the severity of
    /// its incident's pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Text>,
    /// The escalation level (by `name`) paged at once when it fires; the
    /// incident climbs from there. Without it, the escalation from the
    /// first level, as for a failing check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Text>,
}

/// One stretch of the watch window's cadence.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCadence {
    /// How often, e.g. `2m`.
    pub every: Text,
    /// Until when, from the window's start, e.g. `30m`; the last stretch
    /// may leave it out (to the window's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Text>,
}

/// An escalation rule.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    /// Name, e.g. `Level 1: on-call engineer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How long a problem lasts unacknowledged before this rule fires.
    pub after: Text,
    /// Channel to notify.
    pub notify: Text,
    /// Role or person to reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Text>,
}

/// An email channel: recipients, sender and the SMTP server.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    /// Recipients, plain addresses (`oncall@example.com`).
    #[serde(default)]
    pub to: Vec<Text>,
    /// Sender, a plain address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Text>,
    /// SMTP server URL, by reference (`${SMTP_URL}`): `smtp://user:pass@host:587`
    /// (STARTTLS required, default port 587), `smtps://user:pass@host` (TLS
    /// from the start, default port 465) or `smtp://host:25?tls=none` (plain,
    /// for a local relay; default port 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<Text>,
}

/// A notification channel: exactly one kind.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    /// Slack-compatible incoming webhook URL (`text` + `blocks`; also
    /// Mattermost, Rocket.Chat). Use a secret: `${SLACK_URL}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<Text>,
    /// PagerDuty Events API v2 routing key. Use a secret: `${PD_KEY}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<Text>,
    /// PagerDuty channels: base URL of the Events API (default
    /// `https://events.pagerduty.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_url: Option<Text>,
    /// Generic JSON webhook URL (Standard Webhooks envelope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Text>,
    /// Webhook channels: Standard Webhooks signing secret `whsec_<base64>`,
    /// by reference (`${WEBHOOK_SECRET}`); requests are then signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Text>,
    /// Email over SMTP: `{to: [addresses], from: address, smtp: "${SMTP_URL}"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Deferred<RawEmail>>,
    /// Write to golive's own journal only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<bool>,
    /// Retries after a failed delivery, with doubling backoff from 500 ms
    /// (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// A failed delivery fails the `notify` item (default false: the failure
    /// is journaled and the run goes on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}
