//! Raw plan → validated [`Plan`], collecting every error before giving up.
//!
//! Each check here is one a release engineer would otherwise discover at
//! 2 a.m. during the go-live: a role nobody holds, an approval nobody can
//! give, a rollout with nothing watching it, a typo in a duration. The
//! compiler walks the whole plan, records each problem with its span, and
//! builds the plan only when there is no error left.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use crate::cond::{self, Condition, Context, Path, Ref};
use crate::de::{DeError, Sink, Spanned, from_node, suggest};
use crate::diag::{Diagnostic, LineIndex};
use crate::model::*;
use crate::query::Query;
use crate::raw::{self, RawItem, RawPlan, Text};
use crate::rule::Rule;
use crate::time::{TOffset, format_duration, parse_duration};
use crate::yaml::{self, Span};

/// The outcome of compiling a plan: the plan when there was no error, and every diagnostic.
#[derive(Debug)]
pub struct Compiled {
    /// The plan, if no diagnostic is an error.
    pub plan: Option<Plan>,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Where `${NAME}` references may be resolved from besides the plan.
pub trait VarLookup {
    /// True when `name` has a value outside the plan (environment, `--var`).
    fn defines(&self, name: &str) -> bool;
}

impl<F: Fn(&str) -> bool> VarLookup for F {
    fn defines(&self, name: &str) -> bool {
        self(name)
    }
}

/// Compiles plan text. `external` says which `${NAME}`s are defined outside the plan.
pub fn compile(src: &str, external: &dyn VarLookup) -> Compiled {
    let mut c = Compiler {
        src,
        diags: Vec::new(),
        external,
        declared_vars: HashSet::new(),
        item_ids: HashMap::new(),
        check_ids: HashSet::new(),
        roles: BTreeMap::new(),
        channels: BTreeMap::new(),
        deferred_refs: Vec::new(),
        lines: LineIndex::new(src),
        rollout_metrics: Vec::new(),
    };
    let plan = c.run();
    let mut diagnostics = c.diags;
    diagnostics.sort_by_key(|d| (d.span.map(|s| s.start).unwrap_or(0), d.severity));
    let has_error = diagnostics
        .iter()
        .any(|d| d.severity == crate::diag::Severity::Error);
    Compiled {
        plan: if has_error { None } else { plan },
        diagnostics,
    }
}

/// A reference to a check item that can only be resolved once all items are known.
struct CheckRef {
    id: String,
    span: Span,
    what: &'static str,
}

struct Compiler<'a> {
    src: &'a str,
    diags: Vec<Diagnostic>,
    external: &'a dyn VarLookup,
    declared_vars: HashSet<String>,
    item_ids: HashMap<String, Span>,
    check_ids: HashSet<String>,
    roles: BTreeMap<RoleName, Role>,
    channels: BTreeMap<ChannelName, Channel>,
    deferred_refs: Vec<CheckRef>,
    lines: LineIndex,
    /// Each rollout compiled so far (its id's span) and its metrics' names,
    /// for the levels' metric references.
    rollout_metrics: Vec<(Span, Vec<String>)>,
}

const ITEM_KINDS: [&str; 8] = ItemKind::NAMES;

impl Compiler<'_> {
    /// Keeps a span inside the source: a token "one past the end" (a
    /// condition missing its value at the end of the file) points at the end.
    fn clamp(&self, span: Span) -> Span {
        let end = span.end.min(self.src.len());
        Span::new(span.start.min(end), end)
    }

    fn error(&mut self, msg: impl Into<String>, span: Span) -> &mut Diagnostic {
        let span = self.clamp(span);
        self.diags.push(Diagnostic::error(msg, span));
        self.diags.last_mut().expect("just pushed")
    }

    fn warn(&mut self, msg: impl Into<String>, span: Span) -> &mut Diagnostic {
        let span = self.clamp(span);
        self.diags.push(Diagnostic::warning(msg, span));
        self.diags.last_mut().expect("just pushed")
    }

    fn drain(&mut self, sink: Sink) {
        for e in sink.into_inner() {
            self.push_de(e);
        }
    }

    fn push_de(&mut self, e: DeError) {
        let span = e.span.unwrap_or_default();
        let d = self.error(e.message, span);
        d.help = e.help;
    }

    fn run(&mut self) -> Option<Plan> {
        if self.src.trim().is_empty() {
            self.error("the plan is empty", Span::default()).help =
                Some("start from `golive init`, or import a checklist with `golive import`".into());
            return None;
        }
        let root = match yaml::parse(self.src) {
            Ok(n) => n,
            Err(e) => {
                self.error(e.message, e.span);
                return None;
            }
        };
        if !matches!(root.value, yaml::Value::Map(_)) {
            self.error(
                format!(
                    "a plan is a mapping with `name` and `phases`, but this is {}",
                    root.kind()
                ),
                root.span,
            );
            return None;
        }
        let sink = Sink::default();
        let raw: Result<RawPlan, DeError> = from_node(&root, &sink);
        self.drain(sink);
        let raw = match raw {
            Ok(r) => r,
            Err(e) => {
                self.push_de(e);
                return None;
            }
        };
        self.plan(raw)
    }

    fn read<T: serde::de::DeserializeOwned + Clone>(
        &mut self,
        d: &crate::de::Deferred<T>,
    ) -> Option<(T, Span)> {
        let sink = Sink::default();
        let r = d.read(&sink);
        self.drain(sink);
        r
    }

    fn nonempty(&mut self, t: &Text, what: &str) -> String {
        if t.value.trim().is_empty() {
            self.error(format!("{what} is empty"), t.span);
        }
        t.value.trim().to_string()
    }

    fn duration(&mut self, t: &Option<Text>, default: Duration) -> Duration {
        match t {
            None => default,
            Some(t) => match parse_duration(&t.value) {
                Ok(d) => d,
                Err(m) => {
                    self.error(m, t.span);
                    default
                }
            },
        }
    }

    fn required_duration(&mut self, t: &Text) -> Duration {
        self.duration(&Some(t.clone()), Duration::ZERO)
    }

    fn offset(&mut self, t: &Text) -> Option<TOffset> {
        match TOffset::parse(&t.value) {
            Ok(o) => Some(o),
            Err(m) => {
                self.error(m, t.span);
                None
            }
        }
    }

    /// Ids of check items, resolved once every item is known (they may come later in the plan).
    fn check_refs(&mut self, refs: &[Text], what: &'static str) -> Vec<ItemId> {
        refs.iter()
            .map(|c| {
                self.deferred_refs.push(CheckRef {
                    id: c.value.clone(),
                    span: c.span,
                    what,
                });
                ItemId::new(&c.value)
            })
            .collect()
    }

    fn check_id_format(&mut self, id: &Text, what: &str) -> bool {
        let ok = !id.value.is_empty()
            && id
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && id.value.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            self.error(
                format!(
                    "{what} `{}` may use only letters, digits, `-`, `_` and `.`",
                    id.value
                ),
                id.span,
            )
            .help = Some(format!("try `{}`", slug(&id.value)));
        }
        ok
    }

    fn role(&mut self, t: &Text) -> Option<RoleName> {
        if self.roles.contains_key(t.value.as_str()) {
            return Some(RoleName::new(&t.value));
        }
        let names: Vec<String> = self.roles.keys().map(|r| r.to_string()).collect();
        self.unknown("role", "roles", t, &names);
        None
    }

    fn channel(&mut self, t: &Text) -> Option<ChannelName> {
        if self.channels.contains_key(t.value.as_str()) {
            return Some(ChannelName::new(&t.value));
        }
        let names: Vec<String> = self.channels.keys().map(|r| r.to_string()).collect();
        self.unknown("channel", "channels", t, &names);
        None
    }

    /// `t` as one of `options`, found by name; `default` when absent.
    fn keyword<T: Copy>(
        &mut self,
        field: &str,
        t: Option<&Text>,
        options: &[T],
        name: fn(T) -> &'static str,
        default: T,
    ) -> Option<T> {
        let Some(t) = t else {
            return Some(default);
        };
        if let Some(o) = options.iter().find(|o| name(**o) == t.value) {
            return Some(*o);
        }
        let names: Vec<String> = options.iter().map(|o| format!("`{}`", name(*o))).collect();
        self.error(
            format!("unknown `{field}` `{}`: use {}", t.value, names.join(", ")),
            t.span,
        );
        None
    }

    /// A `notify` item; `event`, `dedup_key` and `severity` are PagerDuty's.
    fn notify(&mut self, n: &raw::RawNotify) -> Option<Notify> {
        let channel = self.channel(&n.channel)?;
        let pagerduty = matches!(
            self.channels.get(channel.as_str()).map(|c| &c.kind),
            Some(ChannelKind::PagerDuty { .. })
        );
        for t in [&n.event, &n.dedup_key, &n.severity].into_iter().flatten() {
            if !pagerduty {
                self.error(
                    format!("`event`, `dedup_key` and `severity` apply to PagerDuty channels; `{}` is not one", channel.as_str()),
                    t.span,
                );
                return None;
            }
        }
        let event = self.keyword(
            "event",
            n.event.as_ref(),
            &NotifyEvent::ALL,
            NotifyEvent::as_str,
            NotifyEvent::Trigger,
        )?;
        let severity = self.keyword(
            "severity",
            n.severity.as_ref(),
            &AlertSeverity::ALL,
            AlertSeverity::as_str,
            AlertSeverity::Info,
        )?;
        if let Some(t) = &n.dedup_key {
            self.vars(t);
        }
        if matches!(event, NotifyEvent::Acknowledge | NotifyEvent::Resolve) && n.dedup_key.is_none()
        {
            self.error(
                format!(
                    "`event: {}` needs the `dedup_key` of the alert it refers to",
                    n.event.as_ref().map_or("", |t| t.value.as_str())
                ),
                n.channel.span,
            );
            return None;
        }
        Some(Notify {
            channel,
            message: n.message.clone(),
            event,
            dedup_key: n.dedup_key.as_ref().map(|t| t.value.clone()),
            severity,
        })
    }

    /// Reports a reference to an undeclared role or channel, with the closest declared name.
    fn unknown(&mut self, what: &str, section: &str, t: &Text, declared: &[String]) {
        let names: Vec<&str> = declared.iter().map(String::as_str).collect();
        let help = match suggest(&t.value, &names) {
            Some(s) => format!("did you mean `{s}`?"),
            None if names.is_empty() => format!("declare it under `{section}:`"),
            None => format!("declared {section}: {}", names.join(", ")),
        };
        self.error(format!("unknown {what} `{}`", t.value), t.span)
            .help = Some(help);
    }

    /// An `email` channel, every mistake reported at once. It is compiled
    /// even when wrong, so a broken `email` is not also reported as a channel
    /// without a kind. Errors never repeat the `smtp` value: it may hold a
    /// password.
    fn email(&mut self, e: &crate::de::Deferred<raw::RawEmail>) -> ChannelKind {
        let Some((e, span)) = self.read(e) else {
            return ChannelKind::Email {
                to: Vec::new(),
                from: String::new(),
                smtp: String::new(),
            };
        };
        if e.to.is_empty() {
            self.error("`email` needs `to`: at least one recipient address", span);
        }
        let address = |this: &mut Self, t: &Text, field: &str| {
            this.vars(t);
            if let Some(problem) = address_problem(&t.value) {
                this.error(
                    format!(
                        "`{field}`: `{}` is not an email address ({problem})",
                        t.value
                    ),
                    t.span,
                )
                .help = Some("write a plain address such as `oncall@example.com`".into());
            }
            t.value.trim().to_string()
        };
        let to = e.to.iter().map(|t| address(self, t, "to")).collect();
        let from = match &e.from {
            Some(t) => address(self, t, "from"),
            None => {
                self.error("`email` needs `from`: the sender's address", span);
                String::new()
            }
        };
        let smtp = match &e.smtp {
            Some(t) => {
                self.vars(t);
                if let Some(problem) = smtp_problem(&t.value) {
                    self.error(format!("`smtp`: {problem}"), t.span).help = Some(
                        "`smtp://user:pass@host:587` (STARTTLS), `smtps://user:pass@host:465` (TLS) or `smtp://host:25?tls=none` (local relay), by reference: `smtp: \"${SMTP_URL}\"`".into(),
                    );
                }
                t.value.trim().to_string()
            }
            None => {
                self.error(
                    "`email` needs `smtp`: the server's URL, e.g. `${SMTP_URL}`",
                    span,
                );
                String::new()
            }
        };
        ChannelKind::Email { to, from, smtp }
    }

    /// Checks the `${NAME}` references of a text.
    fn vars(&mut self, t: &Text) {
        let inner = inner_offset(self.src, t);
        for (name, at, len) in var_refs(&t.value) {
            if self.declared_vars.contains(name) || self.external.defines(name) {
                continue;
            }
            let span = match inner {
                Some(base) => Span::new(base + at, base + at + len),
                None => t.span,
            };
            let declared: Vec<&str> = self.declared_vars.iter().map(String::as_str).collect();
            let help = match suggest(name, &declared) {
                Some(s) => format!("did you mean `${{{s}}}`?"),
                None => "declare it under `variables:` or `secrets:`, export it, or pass `--var NAME=value`".into(),
            };
            self.error(format!("undefined variable `{name}`"), span)
                .help = Some(help);
        }
    }

    fn condition(&mut self, t: &Text) -> Option<Condition> {
        cond::parse(&t.value, Context::Check)
            .map_err(|e| self.cond_error(t, e))
            .ok()
    }

    /// Whether a check's condition reads a field its probe offers; an
    /// error pointing at the path, with a suggestion, if not.
    fn probe_field(&mut self, t: &Text, path: &Path, probe: &Probe, fields: &[&str]) -> bool {
        let root = path.root();
        if fields.contains(&root) {
            return true;
        }
        let span = inner_offset(self.src, t)
            .map(|b| Span::new(b + path.at, b + path.at + path.path.len()))
            .unwrap_or(t.span);
        let alias = match root {
            "latency" | "response" | "elapsed" | "time" => {
                fields.iter().copied().find(|f| *f == "response_time")
            }
            "code" | "status_code" | "http_status" => {
                fields.iter().copied().find(|f| *f == "status")
            }
            _ => None,
        };
        let help = match alias.or_else(|| suggest(root, fields)) {
            Some(s) => format!(
                "did you mean `{s}`? ({} checks offer: {})",
                probe.name(),
                fields.join(", ")
            ),
            None => format!("{} checks offer: {}", probe.name(), fields.join(", ")),
        };
        self.error(
            format!(
                "unknown field `{root}` for {} {} check",
                article(probe.name()),
                probe.name()
            ),
            span,
        )
        .help = Some(help);
        false
    }

    /// A condition's or rule's parse error, pointing inside the text.
    fn cond_error(&mut self, t: &Text, e: cond::CondError) {
        let span = match inner_offset(self.src, t) {
            Some(base) => Span::new(base + e.at, base + e.at + e.len),
            None => t.span,
        };
        self.error(e.message, span);
    }

    fn plan(&mut self, raw: RawPlan) -> Option<Plan> {
        let name = self.nonempty(&raw.name, "`name`");
        let t0 = raw
            .t0
            .as_ref()
            .and_then(|t| match t.value.parse::<jiff::Timestamp>() {
                Ok(ts) => Some(ts),
                Err(e) => {
                    self.error(format!("`t0` is not an RFC 3339 timestamp: {e}"), t.span)
                        .help = Some("write e.g. `2026-12-01T14:00:00Z`".into());
                    None
                }
            });

        for (name, role) in &raw.roles {
            let Some((r, span)) = self.read(role) else {
                continue;
            };
            let members: Vec<String> = r
                .members
                .iter()
                .map(|m| m.value.trim().to_string())
                .collect();
            if members.is_empty() {
                self.warn(format!("role `{name}` has no members"), span);
            }
            // `golive import` writes `TODO-<role>` where the checklist named nobody.
            for m in r.members.iter().filter(|m| m.value.starts_with("TODO-")) {
                self.warn(
                    format!("role `{name}` has the placeholder member `{}`", m.value),
                    m.span,
                )
                .help = Some("replace it with the people who act for this role".into());
            }
            self.roles.insert(
                RoleName::new(name),
                Role {
                    members,
                    description: r.description,
                },
            );
        }

        let mut variables = BTreeMap::new();
        for (k, v) in &raw.variables {
            if !is_var_name(k) {
                self.error(
                    format!("variable name `{k}` must be letters, digits and `_`"),
                    v.span,
                );
            }
            self.declared_vars.insert(k.clone());
            variables.insert(k.clone(), v.value.clone());
        }
        let mut secrets = BTreeMap::new();
        for (k, v) in &raw.secrets {
            if !is_var_name(k) {
                self.error(
                    format!("secret name `{k}` must be letters, digits and `_`"),
                    v.span,
                );
            }
            self.declared_vars.insert(k.clone());
            let r = if let Some(n) = v.value.strip_prefix("env:") {
                Some(SecretRef::Env(n.trim().to_string()))
            } else if let Some(p) = v.value.strip_prefix("file:") {
                Some(SecretRef::File(p.trim().to_string()))
            } else {
                self.error(
                    format!("secret `{k}` must be a reference, `env:NAME` or `file:PATH`"),
                    v.span,
                )
                .help = Some("secret values never go in the plan itself".into());
                None
            };
            if let Some(r) = r {
                secrets.insert(k.clone(), r);
            }
        }

        for (name, ch) in &raw.channels {
            let Some((ch, span)) = self.read(ch) else {
                continue;
            };
            let mut kinds = Vec::new();
            if let Some(t) = &ch.slack {
                self.vars(t);
                kinds.push(ChannelKind::Slack(t.value.clone()));
            }
            if let Some(t) = &ch.pagerduty {
                self.vars(t);
                kinds.push(ChannelKind::PagerDuty {
                    routing_key: t.value.clone(),
                    events_url: ch.events_url.as_ref().map(|u| {
                        self.vars(u);
                        u.value.clone()
                    }),
                });
            } else if let Some(u) = &ch.events_url {
                self.error("`events_url` applies to `pagerduty` channels only", u.span);
            }
            if let Some(t) = &ch.webhook {
                self.vars(t);
                kinds.push(ChannelKind::Webhook {
                    url: t.value.clone(),
                    secret: ch.secret.as_ref().map(|s| {
                        self.vars(s);
                        s.value.clone()
                    }),
                });
            } else if let Some(s) = &ch.secret {
                self.error("`secret` applies to `webhook` channels only", s.span);
            }
            if let Some(e) = &ch.email {
                kinds.push(self.email(e));
            }
            if ch.log == Some(true) {
                kinds.push(ChannelKind::Log);
            }
            if kinds.len() != 1 {
                self.error(
                    format!("channel `{name}` needs exactly one of `slack`, `pagerduty`, `webhook`, `email`, `log`"),
                    span,
                );
                continue;
            }
            self.channels.insert(
                ChannelName::new(name),
                Channel {
                    kind: kinds.remove(0),
                    retries: ch.retries.unwrap_or(3),
                    required: ch.required.unwrap_or(false),
                },
            );
        }

        let mut phases = Vec::new();
        let mut phase_ids: HashMap<String, Span> = HashMap::new();
        let mut last_at: Option<(TOffset, String)> = None;
        for p in &raw.phases {
            let Some((p, span)) = self.read(p) else {
                continue;
            };
            let title = self.nonempty(&p.title, "phase `title`");
            let id = match &p.id {
                Some(id) => {
                    self.check_id_format(id, "phase id");
                    id.value.clone()
                }
                None => slug(&title),
            };
            let id_span = p.id.as_ref().map(|i| i.span).unwrap_or(p.title.span);
            if phase_ids.insert(id.clone(), id_span).is_some() {
                self.error(format!("duplicate phase id `{id}`"), id_span)
                    .help = Some("give the phase an explicit, unique `id`".into());
            }
            let at = p.at.as_ref().and_then(|t| self.offset(t));
            if let (Some(at), Some(t)) = (at, &p.at) {
                if let Some((prev, prev_title)) = &last_at
                    && at < *prev
                {
                    self.warn(
                        format!("phase starts at {at}, before the previous phase `{prev_title}` ({prev})"),
                        t.span,
                    )
                    .help = Some("phases run in the order written; reorder them or fix the offset".into());
                }
                last_at = Some((at, title.clone()));
            }
            let on_failure = p.on_failure.unwrap_or(OnFailure::Stop);
            let mut items = Vec::new();
            for it in &p.items {
                if let Some(item) = self.item(it, on_failure) {
                    items.push(item);
                }
            }
            if p.items.is_empty() {
                self.warn(format!("phase `{title}` has no items"), span);
            }
            phases.push(Phase {
                id: PhaseId::new(id),
                title,
                at,
                description: p.description,
                gate: p
                    .gate
                    .map(|g| Gate {
                        checks: g.checks,
                        approvals: g.approvals,
                    })
                    .unwrap_or_default(),
                record: p.record.iter().map(|r| r.value.clone()).collect(),
                items,
            });
        }
        if raw.phases.is_empty() {
            self.error("the plan has no phases", raw.name.span).help =
                Some("add `phases:` with at least one phase and its items".into());
        }

        let mut rollback = Rollback::default();
        if let Some(rb) = &raw.rollback
            && let Some((rb, _)) = self.read(rb)
        {
            for it in &rb.items {
                if let Some(item) = self.item(it, OnFailure::Continue) {
                    rollback.items.push(item);
                }
            }
            for l in &rb.levels {
                if let Some(level) = self.level(l) {
                    rollback.levels.push(level);
                }
            }
        }

        let monitor = raw
            .monitor
            .as_ref()
            .and_then(|m| self.read(m))
            .map(|(m, _)| {
                let window = self.required_duration(&m.window);
                let interval = self.duration(&m.interval, Duration::from_secs(60));
                let checks = self.check_refs(&m.checks, "monitor");
                let mut cadence: Vec<Cadence> = Vec::new();
                for (i, c) in m.cadence.iter().enumerate() {
                    let every = self.required_duration(&c.every);
                    if every.is_zero() {
                        self.error("a cadence's `every` must be longer than 0s", c.every.span);
                    }
                    let until = c
                        .until
                        .as_ref()
                        .map(|u| (self.required_duration(u), u.span));
                    let last = i + 1 == m.cadence.len();
                    match until {
                        None if !last => {
                            self.error(
                                "only the last stretch of a cadence may leave out `until`",
                                c.every.span,
                            );
                        }
                        Some((u, span))
                            if cadence.last().and_then(|p| p.until).is_some_and(|p| u <= p) =>
                        {
                            self.error(
                                "each `until` of a cadence must be later than the one before",
                                span,
                            );
                        }
                        _ => {}
                    }
                    cadence.push(Cadence {
                        every,
                        until: until.map(|(u, _)| u),
                    });
                }
                let escalation = m
                    .escalation
                    .iter()
                    .filter_map(|e| {
                        let after = self.required_duration(&e.after);
                        let notify = self.channel(&e.notify)?;
                        Some(Escalation {
                            name: e.name.clone(),
                            after,
                            notify,
                            to: e.to.as_ref().map(|t| t.value.clone()),
                        })
                    })
                    .collect();
                let mut monitor = Monitor {
                    window,
                    checks,
                    interval,
                    cadence,
                    escalation,
                    analysis: None,
                    rules: Vec::new(),
                };
                self.watch_rules(&m, &phases, &mut monitor);
                monitor
            });

        for r in std::mem::take(&mut self.deferred_refs) {
            if !self.check_ids.contains(&r.id) {
                let msg = if self.item_ids.contains_key(&r.id) {
                    format!("{} refers to `{}`, which is not a check", r.what, r.id)
                } else {
                    format!("{} refers to unknown check `{}`", r.what, r.id)
                };
                let ids: Vec<&str> = self.check_ids.iter().map(String::as_str).collect();
                let help = suggest(&r.id, &ids).map(|s| format!("did you mean `{s}`?"));
                let d = self.error(msg, r.span);
                d.help = help;
            }
        }

        let comms = self.comms(&raw.comms, &phases, monitor.as_ref());

        Some(Plan {
            name,
            version: raw.version.map(|v| v.value),
            environment: raw.environment.map(|v| v.value),
            owner: raw.owner.map(|v| v.value),
            description: raw.description,
            t0,
            roles: std::mem::take(&mut self.roles),
            variables,
            secrets,
            channels: std::mem::take(&mut self.channels),
            record: raw.record.into_iter().map(|r| r.value).collect(),
            phases,
            rollback,
            monitor,
            comms,
        })
    }

    fn item(&mut self, d: &crate::de::Deferred<RawItem>, phase_failure: OnFailure) -> Option<Item> {
        let (raw, span) = self.read(d)?;
        let id_ok = self.check_id_format(&raw.id, "item id");
        if id_ok && let Some(first) = self.item_ids.get(&raw.id.value).copied() {
            let (line, _) = self.lines.line_col(self.src, first.start);
            self.error(format!("duplicate item id `{}`", raw.id.value), raw.id.span)
                .help = Some(format!(
                "first used on line {line}; item ids must be unique in the plan"
            ));
        } else {
            self.item_ids.insert(raw.id.value.clone(), raw.id.span);
        }
        let owner = raw.owner.as_ref().and_then(|o| self.role(o));
        let kind = self.kind(&raw, span)?;
        if matches!(kind, ItemKind::Check(_)) {
            self.check_ids.insert(raw.id.value.clone());
        }
        let title = raw
            .title
            .as_ref()
            .map(|t| t.value.trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| raw.id.value.clone());
        if raw.review == Some(true) {
            self.warn(
                format!("item `{}` is marked for review", raw.id.value),
                raw.id.span,
            )
            .help = Some("check what `golive import` drafted, then remove `review: true`".into());
        }
        let on_interrupt = raw.on_interrupt.unwrap_or(match kind {
            ItemKind::Run(_) | ItemKind::Rollout(_) => OnInterrupt::Ask,
            _ => OnInterrupt::Rerun,
        });
        Some(Item {
            id: ItemId::new(raw.id.value.clone()),
            title,
            description: raw.description,
            owner,
            tags: raw.tags,
            critical: raw.critical.unwrap_or(false),
            on_failure: raw.on_failure.unwrap_or(phase_failure),
            on_interrupt,
            review: raw.review.unwrap_or(false),
            subtasks: raw.subtasks.into_iter().map(|s| s.value).collect(),
            line: self.lines.line_col(self.src, span.start).0,
            kind,
        })
    }

    fn kind(&mut self, raw: &RawItem, span: Span) -> Option<ItemKind> {
        let present: Vec<&str> = raw
            .kinds_present()
            .iter()
            .zip(ITEM_KINDS)
            .filter(|(p, _)| **p)
            .map(|(_, k)| k)
            .collect();
        match present.len() {
            1 => {}
            0 => {
                self.error(format!("item `{}` has no kind", raw.id.value), raw.id.span)
                    .help = Some(format!("add exactly one of: {}", ITEM_KINDS.join(", ")));
                return None;
            }
            _ => {
                self.error(
                    format!(
                        "item `{}` has several kinds: {}",
                        raw.id.value,
                        present.join(", ")
                    ),
                    raw.id.span,
                )
                .help = Some("split it into one item per kind".into());
                return None;
            }
        }
        if let Some(t) = &raw.task {
            return Some(ItemKind::Task(Task {
                instructions: t.instructions.clone(),
                evidence_required: t.evidence == Some(raw::Evidence::Required),
                fields: t.fields.iter().map(|f| f.value.clone()).collect(),
            }));
        }
        if let Some(c) = &raw.check {
            return self.check(c, span).map(ItemKind::Check);
        }
        if let Some(r) = &raw.run {
            // No `${NAME}` check here: commands get plan variables as environment
            // variables and the shell expands them, shell-local ones included.
            self.nonempty(&r.command, "`command`");
            return Some(ItemKind::Run(Run {
                command: r.command.value.clone(),
                timeout: self.duration(&r.timeout, Duration::from_secs(600)),
                retries: r.retries.unwrap_or(0),
                backoff: self.duration(&r.backoff, Duration::from_secs(1)),
                workdir: r.workdir.clone(),
                env: r.env.clone(),
            }));
        }
        if let Some(a) = &raw.approval {
            return self.approval(a, raw.id.span).map(ItemKind::Approval);
        }
        if let Some(w) = &raw.wait {
            return match (&w.duration, &w.until) {
                (Some(d), None) => Some(ItemKind::Wait(Wait::For(self.required_duration(d)))),
                (None, Some(u)) => self.offset(u).map(|o| ItemKind::Wait(Wait::Until(o))),
                _ => {
                    self.error("`wait` needs exactly one of `duration` and `until`", span);
                    None
                }
            };
        }
        if let Some(n) = &raw.notify {
            return self.notify(n).map(ItemKind::Notify);
        }
        if let Some(f) = &raw.flag {
            self.nonempty(&f.key, "flag `key`");
            if let Some(p) = &f.percentage
                && !(0.0..=100.0).contains(&p.value)
            {
                self.error(format!("percentage {} is outside 0–100", p.value), p.span);
            }
            if f.enabled.is_none() && f.percentage.is_none() && f.variant.is_none() {
                self.error(
                    "`flag` changes nothing; set `enabled`, `percentage` or `variant`",
                    f.key.span,
                );
            }
            return Some(ItemKind::Flag(FlagChange {
                key: f.key.value.clone(),
                enabled: f.enabled,
                percentage: f.percentage.as_ref().map(|p| p.value),
                variant: f.variant.clone(),
            }));
        }
        if let Some(r) = &raw.rollout {
            return self.rollout(r, raw.id.span).map(ItemKind::Rollout);
        }
        None
    }

    fn approval(&mut self, a: &raw::RawApproval, id_span: Span) -> Option<Approval> {
        if a.roles.is_empty() {
            self.error("approval names no `roles`", id_span);
            return None;
        }
        let mut roles = Vec::new();
        for r in &a.roles {
            if let Some(role) = self.role(r) {
                if self
                    .roles
                    .get(role.as_str())
                    .is_some_and(|x| x.members.is_empty())
                {
                    self.error(
                        format!(
                            "no one can give this approval: role `{}` has no members",
                            r.value
                        ),
                        r.span,
                    )
                    .help = Some(format!("add members under `roles: {}: members:`", r.value));
                }
                roles.push(role);
            }
        }
        let total = u32::try_from(a.roles.len()).unwrap_or(u32::MAX);
        let min = match &a.min {
            None => total,
            Some(m) if m.value >= 1 && m.value <= total => m.value,
            Some(m) => {
                self.error(
                    format!(
                        "`min` is {}, but the approval names {total} role(s)",
                        m.value
                    ),
                    m.span,
                )
                .help = Some(format!("use a number from 1 to {total}"));
                total
            }
        };
        (roles.len() == a.roles.len()).then(|| Approval {
            roles,
            min,
            message: a.message.clone(),
        })
    }

    fn check(&mut self, c: &raw::RawCheck, span: Span) -> Option<Check> {
        let mut probes = Vec::new();
        if let Some(p) = &c.http {
            self.vars(&p.url);
            probes.push(Probe::Http(p.clone()));
        }
        if let Some(p) = &c.tcp {
            self.vars(&p.address);
            probes.push(Probe::Tcp(p.clone()));
        }
        if let Some(p) = &c.dns {
            probes.push(Probe::Dns(p.clone()));
        }
        if let Some(p) = &c.tls {
            self.vars(&p.address);
            probes.push(Probe::Tls(p.clone()));
        }
        if let Some(p) = &c.postgres {
            self.vars(&p.url);
            probes.push(Probe::Postgres(p.clone()));
        }
        if let Some(p) = &c.redis {
            self.vars(&p.url);
            probes.push(Probe::Redis(p.clone()));
        }
        if let Some(p) = &c.prometheus {
            self.vars(&p.url);
            if p.query.is_some() == p.alerts.is_some() {
                self.error(
                    "a prometheus check needs exactly one of `query` and `alerts`",
                    p.url.span,
                );
            }
            probes.push(Probe::Prometheus(p.clone()));
        }
        if let Some(p) = &c.command {
            probes.push(Probe::Command(p.clone()));
        }
        if let Some(p) = &c.env {
            probes.push(Probe::Env(p.clone()));
        }
        if let Some(p) = &c.file {
            self.vars(&p.path);
            probes.push(Probe::File(p.clone()));
        }
        let probe = match probes.len() {
            1 => probes.remove(0),
            0 => {
                self.error("`check` names no probe", span).help = Some(
                    "add one of: http, tcp, dns, tls, postgres, redis, prometheus, command, env, file".into(),
                );
                return None;
            }
            _ => {
                let names: Vec<_> = probes.iter().map(Probe::name).collect();
                self.error(
                    format!("`check` names several probes: {}", names.join(", ")),
                    span,
                )
                .help = Some("one probe per check item".into());
                return None;
            }
        };
        let fields = probe_fields(&probe);
        let mut expect = Vec::new();
        for t in &c.expect {
            let Some(cond) = self.condition(t) else {
                continue;
            };
            let mut known = true;
            for r in cond.refs() {
                let Ref::Path(path) = r else { continue };
                known &= self.probe_field(t, path, &probe, fields);
            }
            if !known {
                continue;
            }
            if let Some(e) = cond.pattern_error() {
                self.cond_error(t, e);
                continue;
            }
            expect.push(cond);
        }
        Some(Check {
            probe,
            expect,
            timeout: self.duration(&c.timeout, Duration::from_secs(10)),
            retries: c.retries.unwrap_or(0),
            retry_delay: self.duration(&c.retry_delay, Duration::from_secs(1)),
        })
    }

    fn rollout(&mut self, r: &raw::RawRollout, id_span: Span) -> Option<Rollout> {
        let traffic = self.traffic(&r.traffic, id_span);
        let mut steps = Vec::new();
        let mut last = 0u32;
        for s in &r.steps {
            if s.weight.value > 100 {
                self.error(
                    format!("weight {} is above 100", s.weight.value),
                    s.weight.span,
                );
                continue;
            }
            if s.weight.value < last {
                self.warn(
                    format!("weight goes down from {last} to {}", s.weight.value),
                    s.weight.span,
                );
            }
            last = s.weight.value;
            let pause = match &s.pause {
                None => Pause::None,
                Some(p) if p.value == "manual" => Pause::Manual,
                Some(p) => Pause::For(self.required_duration(p)),
            };
            let approve = s.approve.iter().filter_map(|a| self.role(a)).collect();
            let checks = self.check_refs(&s.checks, "rollout step");
            steps.push(Step {
                weight: u8::try_from(s.weight.value).unwrap_or(100),
                pause,
                approve,
                checks,
            });
        }
        match r.strategy.value {
            Strategy::Canary if r.steps.is_empty() => {
                self.error("a canary rollout needs `steps`", r.strategy.span)
                    .help = Some(
                    "e.g. steps: [{weight: 5, pause: 5m}, {weight: 25, pause: 5m}, {weight: 100}]"
                        .into(),
                );
            }
            Strategy::Canary if last != 100 => {
                self.warn(
                    format!("the last step leaves the canary at {last}%, not 100%"),
                    r.strategy.span,
                );
            }
            Strategy::BlueGreen if steps.is_empty() => steps.push(Step {
                weight: 100,
                pause: Pause::None,
                approve: Vec::new(),
                checks: Vec::new(),
            }),
            _ => {}
        }
        let Some(a) = &r.analysis else {
            self.error(
                "this rollout has no `analysis`: nothing would stop a bad release",
                id_span,
            )
            .help = Some(
                "add `analysis:` with metrics and rules, e.g. `error_rate > 0.05 for 2m`".into(),
            );
            return None;
        };
        let analysis = self.analysis(a, id_span)?;
        let keep_previous = r.keep_previous.as_ref().map(|k| self.required_duration(k));
        Some(Rollout {
            strategy: r.strategy.value,
            steps,
            traffic: traffic?,
            analysis: Box::new(analysis),
            keep_previous,
        })
    }

    fn traffic(&mut self, t: &raw::RawTraffic, id_span: Span) -> Option<Traffic> {
        let mut found = Vec::new();
        if let Some(h) = &t.haproxy {
            found.push(Traffic::Haproxy {
                socket: h.socket.value.clone(),
                backend: h.backend.value.clone(),
                stable: h.stable.value.clone(),
                canary: h.canary.value.clone(),
            });
        }
        if let Some(n) = &t.nginx {
            found.push(Traffic::Nginx {
                upstream_file: n.upstream_file.value.clone(),
                upstream: n.upstream.value.clone(),
                stable: n.stable.value.clone(),
                canary: n.canary.value.clone(),
                reload: n.reload.clone().unwrap_or_else(|| "nginx -s reload".into()),
            });
        }
        if let Some(f) = &t.flag {
            found.push(Traffic::Flag {
                key: f.key.value.clone(),
            });
        }
        if let Some(c) = &t.command {
            found.push(Traffic::Command {
                command: c.value.clone(),
            });
        }
        if let Some(w) = &t.webhook {
            self.vars(w);
            found.push(Traffic::Webhook {
                url: w.value.clone(),
            });
        }
        if found.len() != 1 {
            self.error(
                "`traffic` needs exactly one of `haproxy`, `nginx`, `flag`, `command`, `webhook`",
                id_span,
            );
            return None;
        }
        found.pop()
    }

    fn analysis(&mut self, a: &raw::RawAnalysis, id_span: Span) -> Option<Analysis> {
        let interval = self.duration(&a.interval, Duration::from_secs(30));
        if interval < Duration::from_secs(1)
            && let Some(t) = &a.interval
        {
            self.error("the analysis interval must be at least 1s", t.span);
        }
        let (source, scrape) = match (&a.prometheus, &a.scrape) {
            (Some(p), None) => {
                self.vars(p);
                (MetricSource::Prometheus(p.value.clone()), false)
            }
            (None, Some(s)) => {
                self.vars(&s.stable);
                self.vars(&s.canary);
                let source = MetricSource::Scrape {
                    stable: s.stable.value.clone(),
                    canary: s.canary.value.clone(),
                };
                (source, true)
            }
            _ => {
                self.error(
                    "`analysis` needs exactly one of `prometheus` (URL) and `scrape`",
                    id_span,
                );
                return None;
            }
        };
        let mut metrics: Vec<Metric> = Vec::new();
        let mut first_seen: HashMap<&str, Span> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        let mut ok = true;
        for m in &a.metrics {
            if let Some(first) = first_seen.get(m.name.value.as_str()).copied() {
                let (line, _) = self.lines.line_col(self.src, first.start);
                self.error(
                    format!("metric `{}` is defined twice", m.name.value),
                    m.name.span,
                )
                .help = Some(format!(
                    "first defined on line {line}; metric names must be unique"
                ));
                ok = false;
                continue;
            }
            first_seen.insert(&m.name.value, m.name.span);
            names.push(m.name.value.clone());
            let q = match (&m.query, &m.expr) {
                (Some(q), None) | (None, Some(q)) => q,
                _ => {
                    self.error(
                        format!(
                            "metric `{}` needs exactly one of `query` and `expr`",
                            m.name.value
                        ),
                        m.name.span,
                    );
                    ok = false;
                    continue;
                }
            };
            if q.value.trim().is_empty() {
                self.error(
                    format!("metric `{}` has an empty query", m.name.value),
                    q.span,
                );
                ok = false;
                continue;
            }
            let query = if scrape {
                match self.scrape_query(&m.name.value, q, interval) {
                    Some(parsed) => MetricQuery::Scrape(parsed),
                    None => {
                        ok = false;
                        continue;
                    }
                }
            } else {
                self.vars(q);
                MetricQuery::Prometheus(q.value.clone())
            };
            metrics.push(Metric {
                name: m.name.value.clone(),
                query,
            });
        }
        if a.rules.is_empty() && a.judge.is_empty() {
            self.error("`analysis` has no `rules` and no `judge`", id_span);
        }
        let mut rules = Vec::new();
        for t in &a.rules {
            match self.rule(t, &names, None) {
                Some(r) => rules.push(r),
                None => ok = false,
            }
        }
        let mut judges = Vec::new();
        for j in &a.judge {
            ok &= self.metric_ref(&j.metric.value, &names, &j.metric);
            let confidence = j.confidence.as_ref().map(|c| c.value).unwrap_or(0.95);
            if let Some(c) = &j.confidence
                && !(c.value > 0.0 && c.value < 1.0)
            {
                self.error("`confidence` must be between 0 and 1, e.g. 0.95", c.span);
                ok = false;
            }
            let tolerance = j.tolerance.as_ref().map(|t| t.value).unwrap_or(0.1);
            if let Some(t) = &j.tolerance
                && !(t.value.is_finite() && t.value >= 0.0)
            {
                self.error("`tolerance` must be a number ≥ 0, e.g. 0.1 for 10%", t.span);
                ok = false;
            }
            judges.push(Judge {
                metric: j.metric.value.clone(),
                fail_when_increase: j.fail_when != Some(raw::Direction::Decrease),
                confidence,
                tolerance,
            });
        }
        let warmup = self.duration(&a.warmup, Duration::ZERO);
        let min_requests = a.min_requests.as_ref().map(|m| {
            ok &= self.metric_ref(&m.metric.value, &names, &m.metric);
            MinRequests {
                metric: m.metric.value.clone(),
                count: f64::from(m.count.value),
            }
        });
        let inconclusive_limit = match &a.inconclusive_limit {
            Some(l) if l.value == 0 => {
                self.error(
                    "`inconclusive_limit` must be at least 1 (inconclusive evaluations in a row before a person is asked)",
                    l.span,
                );
                ok = false;
                1
            }
            Some(l) => l.value,
            None => 5,
        };
        let mut versions = Versions::default();
        if let Some(v) = &a.versions {
            for (field, slot) in [
                (&v.label, &mut versions.label),
                (&v.stable, &mut versions.stable),
                (&v.canary, &mut versions.canary),
            ] {
                if let Some(t) = field {
                    *slot = self.nonempty(t, "a `versions` value");
                }
            }
            if versions.stable == versions.canary {
                self.error(
                    "`versions`: stable and canary have the same label value",
                    v.canary.as_ref().map_or(id_span, |t| t.span),
                );
            }
        }
        self.rollout_metrics.push((id_span, names));
        ok.then_some(Analysis {
            interval,
            source,
            metrics,
            rules,
            failure_limit: a.failure_limit.unwrap_or(0),
            judges,
            warmup,
            min_requests,
            inconclusive_limit,
            versions,
        })
    }

    /// The communication schedule, sorted by time; `{{metrics.NAME}}`
    /// must name a metric of some rollout's analysis or of the monitor.
    fn comms(
        &mut self,
        raw: &[raw::RawComm],
        phases: &[Phase],
        monitor: Option<&Monitor>,
    ) -> Vec<Comm> {
        let mut metrics: Vec<String> = phases
            .iter()
            .flat_map(|p| &p.items)
            .filter_map(|i| match &i.kind {
                ItemKind::Rollout(r) => Some(r.analysis.as_ref()),
                _ => None,
            })
            .chain(monitor.and_then(|m| m.analysis.as_ref()))
            .flat_map(|a| a.metrics.iter().map(|m| m.name.clone()))
            .collect();
        metrics.sort();
        metrics.dedup();
        let mut out = Vec::new();
        for c in raw {
            let at = self.offset(&c.at);
            let channel = self.channel(&c.channel);
            let message = match crate::template::Template::parse(&c.message.value) {
                Ok(t) => Some(t),
                Err(e) => {
                    let span = match inner_offset(self.src, &c.message) {
                        Some(base) => Span::new(base + e.offset, base + e.offset + 2),
                        None => c.message.span,
                    };
                    self.error(e.message, span);
                    None
                }
            };
            let mut ok = true;
            for fact in message.iter().flat_map(|m| m.facts()) {
                if let crate::template::Fact::Metric(name) = fact
                    && !metrics.contains(name)
                {
                    ok &= self.metric_ref(name, &metrics, &c.message);
                }
            }
            if let (Some(at), Some(channel), Some(message), true) = (at, channel, message, ok) {
                out.push(Comm {
                    at,
                    channel,
                    message,
                });
            }
        }
        out.sort_by_key(|c| c.at);
        out
    }

    /// The watch window's metric rules, compiled into `monitor.analysis`
    /// (over the monitor's own source, or the plan's last rollout's) and
    /// `monitor.rules`.
    fn watch_rules(&mut self, m: &raw::RawMonitor, phases: &[Phase], monitor: &mut Monitor) {
        let Some(first) = m.rules.first() else {
            if let Some(t) = m.prometheus.as_ref().or(m.metrics.first().map(|x| &x.name)) {
                self.warn(
                    "the monitor has metrics but no `rules` to read them",
                    t.span,
                );
            }
            return;
        };
        let own = m.prometheus.is_some() || m.scrape.is_some();
        let analysis = if own {
            // The window's cadence, not an analysis interval, paces these;
            // scrape ranges are checked against the cadence below.
            let raw = raw::RawAnalysis {
                interval: Some(Spanned::new("1s".into())),
                prometheus: m.prometheus.clone(),
                scrape: m.scrape.clone(),
                metrics: m.metrics.clone(),
                rules: m.rules.iter().map(|r| r.when.clone()).collect(),
                ..Default::default()
            };
            let compiled = self.analysis(&raw, first.when.span);
            // Levels are checked against rollouts' metrics only.
            self.rollout_metrics.pop();
            compiled
        } else {
            if let Some(x) = m.metrics.first() {
                self.error(
                    "monitor `metrics` need a source: add `prometheus:` (a URL) or `scrape:`",
                    x.name.span,
                );
                return;
            }
            let last = phases
                .iter()
                .flat_map(|p| &p.items)
                .filter_map(|i| match &i.kind {
                    ItemKind::Rollout(r) => Some(&r.analysis),
                    _ => None,
                })
                .next_back();
            let Some(last) = last else {
                self.error(
                    "the monitor's `rules` need metrics: add `prometheus:` (or `scrape:`) and `metrics:` to `monitor`, or a rollout with an analysis",
                    first.when.span,
                );
                return;
            };
            let names: Vec<String> = last.metrics.iter().map(|x| x.name.clone()).collect();
            let mut rules = Vec::new();
            for r in &m.rules {
                if let Some(rule) = self.rule(&r.when, &names, None) {
                    rules.push(rule);
                }
            }
            (rules.len() == m.rules.len()).then(|| Analysis {
                rules,
                judges: Vec::new(),
                failure_limit: 0,
                warmup: Duration::ZERO,
                ..(**last).clone()
            })
        };
        let mut ok = true;
        let mut how = Vec::new();
        for r in &m.rules {
            // Parsed again here so that this is said even when another
            // rule's mistake left no analysis.
            if Rule::parse(&r.when.value).is_ok_and(|rule| rule.reads_baseline()) {
                self.error(
                    "a watch-window rule reads the version serving traffic; after the go-live `stable.` names a version with none",
                    r.when.span,
                )
                .help = Some("compare with a threshold instead, e.g. `error_rate > 5% for 2m`".into());
                ok = false;
            }
            let severity = self.keyword(
                "severity",
                r.severity.as_ref(),
                &AlertSeverity::ALL,
                AlertSeverity::as_str,
                AlertSeverity::Error,
            );
            let level = match &r.level {
                None => Some(None),
                Some(t) => {
                    let at = monitor
                        .escalation
                        .iter()
                        .position(|e| e.name.as_deref() == Some(t.value.as_str()));
                    if at.is_none() {
                        let names: Vec<&str> = monitor
                            .escalation
                            .iter()
                            .filter_map(|e| e.name.as_deref())
                            .collect();
                        let help = match suggest(&t.value, &names) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None if names.is_empty() => {
                                "name a level of `monitor: escalation:` (`name: …`)".into()
                            }
                            None => format!("the levels are {}", names.join(", ")),
                        };
                        self.error(format!("unknown escalation level `{}`", t.value), t.span)
                            .help = Some(help);
                    }
                    at.map(Some)
                }
            };
            match (severity, level) {
                (Some(severity), Some(level)) => how.push((severity, level)),
                _ => ok = false,
            }
        }
        let Some(analysis) = analysis else { return };
        let periods = monitor.periods();
        let slowest = periods.iter().copied().max().unwrap_or(monitor.interval);
        if matches!(analysis.source, MetricSource::Scrape { .. }) {
            for x in &analysis.metrics {
                if let MetricQuery::Scrape(q) = &x.query
                    && let Some(w) = q.longest_window().filter(|w| *w <= slowest)
                {
                    self.warn(
                        format!(
                            "metric `{}`: its range [{}] is not longer than the window's slowest period {}, so it will have no value then",
                            x.name,
                            format_duration(w),
                            format_duration(slowest)
                        ),
                        first.when.span,
                    )
                    .help = Some("scraped rates need two scrapes inside their range; use Prometheus for a slow cadence".into());
                }
            }
        }
        if ok {
            monitor.rules = analysis
                .rules
                .iter()
                .zip(how)
                .map(|(rule, (severity, level))| WatchRule {
                    rule: rule.clone(),
                    severity,
                    level,
                })
                .collect();
            monitor.analysis = Some(Analysis {
                interval: periods.into_iter().min().unwrap_or(monitor.interval),
                ..analysis
            });
        }
    }

    /// A scrape expression, parsed; its errors point at the column.
    fn scrape_query(&mut self, name: &str, q: &Text, interval: Duration) -> Option<Query> {
        match Query::parse(&q.value) {
            Ok(parsed) => {
                if let Some(w) = parsed.longest_window().filter(|w| *w <= interval) {
                    self.error(
                        format!(
                            "metric `{name}`: the range [{}] is not longer than the interval {}",
                            format_duration(w),
                            format_duration(interval),
                        ),
                        q.span,
                    )
                    .help = Some(format!(
                        "a rate needs two scrapes inside its range, e.g. [{}]",
                        format_duration(interval.saturating_mul(2))
                    ));
                    return None;
                }
                Some(parsed)
            }
            Err(e) => {
                let byte = q
                    .value
                    .char_indices()
                    .nth(e.column.saturating_sub(1))
                    .map_or(q.value.len(), |(i, _)| i);
                let span = match inner_offset(self.src, q) {
                    Some(base) => Span::new(base + byte, base + byte + 1),
                    None => q.span,
                };
                self.error(format!("metric `{name}`: {}", e.message), span);
                None
            }
        }
    }

    /// An analysis rule or level condition; every metric it names must be
    /// one of `names` (with `level`, the message says which level).
    fn rule(&mut self, t: &Text, names: &[String], level: Option<&str>) -> Option<Rule> {
        match Rule::parse(&t.value) {
            Ok(r) => {
                let mut ok = true;
                if level.is_none() {
                    for name in metric_names(&r) {
                        ok &= self.metric_ref(name, names, t);
                    }
                }
                ok.then_some(r)
            }
            Err(e) => {
                self.cond_error(t, e);
                None
            }
        }
    }

    /// Whether `name` is a metric of `names`; an error with a suggestion if not.
    fn metric_ref(&mut self, name: &str, names: &[String], t: &Text) -> bool {
        if names.iter().any(|n| n == name) {
            return true;
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let help = match suggest(name, &refs) {
            Some(s) => format!("did you mean `{s}`?"),
            None => "declare it under `analysis: metrics:`".into(),
        };
        self.error(format!("unknown metric `{name}`"), t.span).help = Some(help);
        false
    }

    fn level(&mut self, d: &crate::de::Deferred<raw::RawLevel>) -> Option<Level> {
        let (l, span) = self.read(d)?;
        if l.when.is_empty() {
            self.error(
                format!("level `{}` has no `when` conditions", l.name.value),
                span,
            );
        }
        let mut when = Vec::new();
        for t in &l.when {
            let Some(rule) = self.rule(t, &[], Some(&l.name.value)) else {
                continue;
            };
            // A level applies to every rollout of the plan: each must
            // define the metrics it reads, or it could never hold there.
            for (rollout, names) in std::mem::take(&mut self.rollout_metrics) {
                for name in metric_names(&rule) {
                    if names.iter().any(|n| n == name) {
                        continue;
                    }
                    let (line, _) = self.lines.line_col(self.src, rollout.start);
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    let help = match suggest(name, &refs) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "levels apply to every rollout: declare `{name}` in the analysis of the rollout on line {line}"
                        ),
                    };
                    self.error(
                        format!(
                            "level `{}`: unknown metric `{name}` (the rollout on line {line} does not define it)",
                            l.name.value
                        ),
                        t.span,
                    )
                    .help = Some(help);
                }
                self.rollout_metrics.push((rollout, names));
            }
            when.push(rule);
        }
        let mut actions = Vec::new();
        for a in &l.actions {
            let action = match &a.value {
                Action::RollbackAfter(d) => match parse_duration(d) {
                    Ok(d) => LevelAction::RollbackAfter(d),
                    Err(m) => {
                        self.error(m, a.span);
                        continue;
                    }
                },
                Action::Notify(ch) => {
                    self.channel(&Spanned {
                        span: a.span,
                        value: ch.clone(),
                    });
                    LevelAction::Notify(ch.clone())
                }
                Action::DisableFlag(k) if k.trim().is_empty() => {
                    self.error("`disable-flag` needs a flag key", a.span);
                    continue;
                }
                Action::DisableFlag(k) => LevelAction::DisableFlag(k.trim().to_string()),
                Action::Pause => LevelAction::Pause,
                Action::Freeze => LevelAction::Freeze,
                Action::Rollback => LevelAction::Rollback,
                Action::Continue => LevelAction::Continue,
            };
            actions.push(action);
        }
        if l.actions.is_empty() {
            self.error(format!("level `{}` has no `actions`", l.name.value), span);
        }
        if l.review == Some(true) {
            self.warn(
                format!("rollback level `{}` is marked for review", l.name.value),
                l.name.span,
            )
            .help = Some(
                "check its conditions against real metrics, then remove `review: true`".into(),
            );
        }
        Some(Level {
            name: l.name.value,
            when,
            actions,
            review: l.review.unwrap_or(false),
        })
    }
}

/// The metrics a rule reads, each once, in order.
fn metric_names(rule: &Rule) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for (_, name) in rule.metrics() {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn article(word: &str) -> &'static str {
    // Probe names are read as letters ("an HTTP check") or words ("a TCP check").
    if word.starts_with(['a', 'e', 'i', 'o', 'h']) {
        "an"
    } else {
        "a"
    }
}

/// Fields a condition may use, by probe kind.
pub fn probe_fields(p: &Probe) -> &'static [&'static str] {
    match p {
        Probe::Http(_) => &["status", "body", "header", "response_time"],
        Probe::Tcp(_) => &["connected", "response_time"],
        Probe::Dns(_) => &["rcode", "answers", "response_time"],
        Probe::Tls(_) => &["cert", "tls", "response_time"],
        Probe::Postgres(_) => &[
            "connected",
            "value",
            "connections",
            "in_recovery",
            "response_time",
        ],
        Probe::Redis(_) => &[
            "ping",
            "auth_required",
            "persistence",
            "memory_used",
            "response_time",
        ],
        Probe::Prometheus(_) => &["value", "alerts", "response_time"],
        Probe::Command(_) => &["exit_code", "stdout", "stderr", "duration"],
        Probe::Env(_) => &["missing"],
        Probe::File(_) => &["exists", "size", "age"],
    }
}

/// The byte offset where a text's value starts in the source, when the
/// source spells it verbatim (plain or single-line quoted). Lets a diagnostic
/// point inside a condition or at a `${VAR}`.
/// Why `s` is not a plain email address (`local@domain`), if it is not. A
/// template (`${ONCALL}`) is checked when it is sent.
fn address_problem(s: &str) -> Option<&'static str> {
    let s = s.trim();
    if s.contains("${") {
        return None;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return Some("no `@`");
    };
    if local.is_empty() || domain.is_empty() {
        return Some("a name before `@` and a domain after it");
    }
    if domain.contains('@') {
        return Some("more than one `@`");
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]".contains(c))
    {
        return Some("plain address only, no display name, spaces or brackets");
    }
    None
}

/// Why an `smtp` URL is unusable, if it is, without repeating it (it may
/// hold a password). The parts a reference stands for are checked when the
/// message is sent.
fn smtp_problem(s: &str) -> Option<&'static str> {
    let s = s.trim();
    if s.starts_with("${") {
        return None;
    }
    let Some(rest) = s
        .strip_prefix("smtp://")
        .or_else(|| s.strip_prefix("smtps://"))
    else {
        return Some("the URL must start with `smtp://` or `smtps://`");
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if userinfo.contains(':') && !userinfo.contains("${") {
            return Some("the password is written in the plan; use a secret");
        }
    }
    None
}

fn inner_offset(src: &str, t: &Text) -> Option<usize> {
    let raw = src.get(t.span.start..t.span.end)?;
    if raw == t.value {
        return Some(t.span.start);
    }
    let first = raw.chars().next()?;
    if (first == '"' || first == '\'') && raw.get(1..1 + t.value.len()) == Some(t.value.as_str()) {
        return Some(t.span.start + 1);
    }
    if raw.starts_with(t.value.as_str()) {
        return Some(t.span.start);
    }
    None
}

/// `${NAME}` references in a text: (name, byte offset of `$`, length).
pub fn var_refs(s: &str) -> Vec<(&str, usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = s[from..].find("${") {
        let start = from + i;
        let Some(end) = s[start + 2..].find('}') else {
            break;
        };
        let name = &s[start + 2..start + 2 + end];
        out.push((name.trim(), start, end + 3));
        from = start + 2 + end + 1;
    }
    out
}

fn is_var_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// A lowercase, dash-separated id from free text (`Phase 2: Database` → `phase-2-database`).
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() { "item".into() } else { out }
}
