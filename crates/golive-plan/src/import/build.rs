//! Sections of a checklist → a [`RawPlan`]: which heading is a phase, what
//! each list item becomes, where blanks are recorded, and what goes to the
//! rollback, the roles and the escalation rules.
//!
//! The structures read: label lines (`**Technical Lead:**`, `**Day 1:**`,
//! `**Rollback Procedure**`, `Symptoms:`/`Action:`) own what follows them;
//! decision-tree levels and rollback procedures (with their fallbacks and
//! alternatives) go to `rollback`, and undo commands never stay in a forward
//! phase; sign-off lines and tables (go/no-go ones too) become approvals
//! and roles; step tables and numbered steps become items, `(Owner: X)` and
//! `(@handle)` their owners; conditions written in sentences (`If … roll
//! back`, `Halt … if …`) rollback levels; traffic steps a rollout skeleton;
//! announcements timed `notify` items. The plan is
//! then put in order: sign-offs before the go-live, announcements in the
//! phase running at their time, periods never before the phase before them.
//!
//! Every decision here is a guess about a document written for people, so
//! each recognised construct is reported as a [`Note`], anything drafted
//! (approvals, rollback thresholds) is marked `review: true`, and text that
//! fits no field is kept in a description rather than dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::markdown::{Block, Code, Doc, Line, ListItem};
use super::text::{
    clean_title, collapse, fields, has_blank, is_email, readable, short_id, strip_numbering,
};
use super::{Note, NoteKind, offsets, probe, rules};
use crate::compile::{slug, var_refs};
use crate::de::{Deferred, Spanned};
use crate::raw::{
    Action, OnFailure, RawAnalysis, RawApproval, RawChannel, RawEscalation, RawFlagTraffic,
    RawItem, RawLevel, RawMetric, RawMonitor, RawNotify, RawPhase, RawPlan, RawRole, RawRollback,
    RawRollout, RawRun, RawStep, RawTask, RawTraffic, Strategy, Text,
};
use crate::time::TOffset;
use crate::time::{format_duration, parse_duration};

/// The plan built from a document, with what was recognised.
pub(crate) struct Built {
    /// The plan.
    pub plan: RawPlan,
    /// Notes in source order.
    pub notes: Vec<Note>,
    /// Task-list items that appear in the plan.
    pub kept: usize,
}

/// A section's content, in order.
enum Piece<'d> {
    /// A task-list item with no task-list ancestor.
    Step(usize),
    /// A plain list item with no task-list descendant.
    Plain(usize),
    /// A paragraph line (including the text of plain items that wrap task items).
    Para(&'d Line),
    /// A code block outside any list item.
    Code(&'d Code),
    /// A pipe table (`| Role | Name |`), written as paragraph lines.
    Table(&'d [Line]),
}

/// A phase being built.
#[derive(Default)]
struct PhaseDraft {
    title: String,
    at: Option<String>,
    description: Vec<String>,
    record: Vec<String>,
    items: Vec<RawItem>,
    line: usize,
    /// `at` is the start of a period (`Week 1`), not a stated offset.
    period: bool,
}

/// What a section turned into, before content-only sections are grouped.
enum Unit {
    Phase(PhaseDraft),
    /// A section with blanks but no steps: one task, grouped with its
    /// content-only siblings into one phase.
    Content {
        group: usize,
        group_title: String,
        own_title: String,
        task: Box<RawItem>,
        line: usize,
    },
    /// Steps after a `---` with no heading: they continue the previous phase.
    Continuation(PhaseDraft),
}

struct Builder<'d> {
    doc: &'d Doc,
    notes: Vec<Note>,
    kept: Vec<bool>,
    has_task_below: Vec<bool>,
    item_ids: HashSet<String>,
    /// Next suffix to try per id stem (keeps deduplication linear).
    id_next: HashMap<String, usize>,
    roles: BTreeMap<String, RawRole>,
    /// Roles named by approvals: (role, how the checklist wrote it).
    approval_roles: Vec<(String, String)>,
    rollback_items: Vec<(RawItem, String)>,
    levels: Vec<RawLevel>,
    escalation: Vec<RawEscalation>,
    /// `${NAME}`s used by commands, which golive resolves from variables or the environment.
    vars: BTreeSet<String>,
    description: Vec<String>,
    record: Vec<String>,
    name_hint: Option<String>,
    version: Option<String>,
    environment: Option<String>,
    owner: Option<String>,
    t0: Option<String>,
    /// Minutes after midnight of the clock time the document gives T-0.
    t0_clock: Option<i64>,
    /// The document counts days from `Day 0`.
    day_zero: bool,
    /// Timed announcements: (T-offset, notify item), placed in phases at the end.
    notifies: Vec<(String, RawItem)>,
    /// Flag keys changed by earlier items, for a rollout's traffic.
    flag_keys: Vec<String>,
    /// A notify item uses the `announcements` channel.
    announces: bool,
    /// Rollback procedures written as sibling sections: (parent section,
    /// procedure tag, title). Siblings are alternatives, not one chain.
    procedures: Vec<(usize, String, String)>,
    /// Converting the steps of a rollback procedure, where `Step: `cmd``
    /// is the command to run (elsewhere such a line may be something to
    /// look at, and stays a task).
    inline_runs: bool,
}

/// Builds the plan. `source_name` names the checklist file.
pub(crate) fn build(doc: &Doc, source_name: &str) -> Built {
    let mut has_task_below = vec![false; doc.items.len()];
    for i in (0..doc.items.len()).rev() {
        if let Some(p) = doc.items[i].parent
            && (has_task_below[i] || doc.items[i].checkbox.is_some())
            && let Some(slot) = has_task_below.get_mut(p)
        {
            *slot = true;
        }
    }
    let mut b = Builder {
        doc,
        notes: Vec::new(),
        kept: vec![false; doc.items.len()],
        has_task_below,
        item_ids: HashSet::new(),
        id_next: HashMap::new(),
        roles: BTreeMap::new(),
        approval_roles: Vec::new(),
        rollback_items: Vec::new(),
        levels: Vec::new(),
        escalation: Vec::new(),
        vars: BTreeSet::new(),
        description: Vec::new(),
        record: Vec::new(),
        name_hint: None,
        version: None,
        environment: None,
        owner: None,
        t0: None,
        t0_clock: None,
        day_zero: false,
        notifies: Vec::new(),
        flag_keys: Vec::new(),
        announces: false,
        procedures: Vec::new(),
        inline_runs: false,
    };
    for sec in &doc.sections {
        let Some(h) = &sec.heading else { continue };
        if b.t0_clock.is_none() && offsets::recognise(&h.text).as_deref() == Some("T+0") {
            b.t0_clock = offsets::clock(&h.text);
        }
        let lower = h.text.to_lowercase();
        b.day_zero |= lower.contains("day 0");
    }
    for &line in &doc.html_lines {
        b.note(line, NoteKind::Dropped, "HTML block ignored");
    }
    if let Some(t) = doc.title.as_ref().filter(|t| !t.text.is_empty()) {
        b.description.push(t.text.clone());
    }
    let mut units = Vec::new();
    for s in 0..doc.sections.len() {
        units.extend(b.section(s));
    }
    let phases = b.group(units);
    b.finish(phases, source_name)
}

impl<'d> Builder<'d> {
    fn note(&mut self, line: usize, kind: NoteKind, message: impl Into<String>) {
        self.notes.push(Note {
            line,
            kind,
            message: message.into(),
        });
    }

    fn item(&self, i: usize) -> &'d ListItem {
        &self.doc.items[i]
    }

    /// A unique item id from `base`.
    fn id(&mut self, base: &str) -> String {
        unique(&mut self.item_ids, &mut self.id_next, short_id(base))
    }

    fn uses_vars(&mut self, command: &str) {
        for (name, _, _) in var_refs(command) {
            self.vars.insert(name.to_string());
        }
    }

    /// The heading of section `s`, readable.
    fn heading(&self, s: usize) -> Option<String> {
        self.doc.sections[s]
            .heading
            .as_ref()
            .map(|h| readable(&h.text))
            .filter(|t| !t.is_empty())
    }

    /// Lower-case headings of `s` and its ancestors, innermost first.
    fn path(&self, s: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(s);
        let mut guard = 0;
        while let Some(i) = cur {
            if let Some(h) = &self.doc.sections[i].heading {
                out.push(h.text.to_lowercase());
            }
            cur = self.doc.sections[i].parent.filter(|&p| p < i);
            guard += 1;
            if guard > self.doc.sections.len() {
                break;
            }
        }
        out
    }

    fn parent_heading(&self, s: usize) -> Option<String> {
        let p = self.doc.sections[s].parent?;
        (p != 0).then(|| self.heading(p)).flatten()
    }

    /// Phase title: the heading, prefixed with the parent's when that helps
    /// (`Pre-Deployment Validation: Infrastructure Readiness`), but not when
    /// the heading already reads on its own (`Phase 1: Infrastructure`).
    fn phase_title(&self, s: usize) -> String {
        let own = self.heading(s).unwrap_or_default();
        let own = strip_numbering(&own).to_string();
        match self.parent_heading(s) {
            Some(p) if !own.contains(':') => format!("{}: {own}", strip_numbering(&p)),
            _ => own,
        }
    }

    /// The T-offset a heading states: a `T±`, `Day -3` or before/after
    /// form, a clock time relative to the one T-0 is given, or the start of
    /// a period (`Week 1`; then `true`).
    fn heading_at(&self, text: &str) -> Option<(String, bool)> {
        if let Some(at) = offsets::recognise(text) {
            return Some((at, false));
        }
        if let (Some(base), Some(clock)) = (self.t0_clock, offsets::clock(text)) {
            return Some((offsets::from_minutes(clock - base), false));
        }
        offsets::period(text, self.day_zero).map(|at| (at, true))
    }

    /// The T-offset of a section: from its heading, else the nearest ancestor's.
    fn at(&self, s: usize) -> Option<String> {
        self.at_of(s).map(|(at, _)| at)
    }

    fn at_of(&self, s: usize) -> Option<(String, bool)> {
        let mut cur = Some(s);
        let mut guard = 0;
        while let Some(i) = cur {
            if let Some(at) = self.doc.sections[i]
                .heading
                .as_ref()
                .and_then(|h| self.heading_at(&h.text))
            {
                return Some(at);
            }
            cur = self.doc.sections[i].parent.filter(|&p| p < i);
            guard += 1;
            if guard > self.doc.sections.len() {
                break;
            }
        }
        None
    }

    /// The content of section `s`, in document order.
    fn pieces(&self, s: usize) -> Vec<Piece<'d>> {
        let doc = self.doc;
        let mut out = Vec::new();
        for block in &doc.sections[s].blocks {
            match block {
                Block::Para(lines) if is_table(lines) => out.push(Piece::Table(lines)),
                Block::Para(lines) => out.extend(lines.iter().map(Piece::Para)),
                Block::Code(c) => out.push(Piece::Code(c)),
                Block::List(roots) => {
                    let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
                    while let Some(i) = stack.pop() {
                        let it = &doc.items[i];
                        if it.checkbox.is_some() {
                            out.push(Piece::Step(i));
                        } else if self.has_task_below[i] {
                            if !it.text.text.is_empty() {
                                out.push(Piece::Para(&it.text));
                            }
                            stack.extend(it.children.iter().rev().copied());
                        } else {
                            out.push(Piece::Plain(i));
                        }
                    }
                }
            }
        }
        out
    }

    /// Plain item `i` and its descendants as indented `- text` lines.
    fn plain_lines(&self, i: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![(i, 0usize)];
        while let Some((j, depth)) = stack.pop() {
            let it = self.item(j);
            let marker = if it.ordered { "1." } else { "-" };
            if !it.text.text.is_empty() {
                out.push(format!(
                    "{}{marker} {}",
                    "  ".repeat(depth.min(8)),
                    clean_title(&it.text.text)
                ));
            }
            for p in &it.paras {
                out.push(format!("{}  {}", "  ".repeat(depth.min(8)), p.text));
            }
            for c in &it.code {
                out.push(code_text(c));
            }
            stack.extend(it.children.iter().rev().map(|&c| (c, depth + 1)));
        }
        out
    }

    /// Lines of plain item `i` and its descendants, for blanks.
    fn plain_texts(&self, i: usize) -> Vec<&'d Line> {
        let doc = self.doc;
        let mut out = Vec::new();
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            out.push(&doc.items[j].text);
            stack.extend(doc.items[j].children.iter().rev().copied());
        }
        out
    }

    fn section(&mut self, s: usize) -> Vec<Unit> {
        let pieces = self.pieces(s);
        if pieces.is_empty() {
            return Vec::new();
        }
        let doc = self.doc;
        let section = &doc.sections[s];
        let line = section
            .heading
            .as_ref()
            .map(|h| h.line)
            .unwrap_or_else(|| first_line(doc, &pieces));
        let path = self.path(s);
        let own = section
            .heading
            .as_ref()
            .map(|h| h.text.to_lowercase())
            .unwrap_or_default();
        let in_rollback = path.iter().any(|t| mentions_rollback(t));
        let readiness = path.iter().any(|t| {
            [
                "readiness",
                "preparation",
                "prepare",
                "prerequisite",
                "ready",
            ]
            .iter()
            .any(|w| t.contains(w))
        });
        let criteria = ["criteria", "trigger", "decision", "when to"]
            .iter()
            .any(|w| own.contains(w))
            || pieces.iter().any(|p| {
                matches!(p, Piece::Para(l) if {
                    let t = l.text.to_lowercase();
                    t.contains("rollback if") || t.contains("roll back if")
                })
            });

        if s == 0 {
            return self.preamble(pieces).into_iter().collect();
        }
        if is_contents(&own) {
            self.note(
                line,
                NoteKind::Dropped,
                "table of contents left out: the plan's phases are its contents",
            );
            return Vec::new();
        }
        // A level of a rollback decision tree, even one titled "Prepare
        // Rollback", before the readiness words below can claim it.
        if in_rollback && is_level_heading(&own) {
            self.level_from(s, &pieces);
            return Vec::new();
        }
        if in_rollback && criteria {
            self.levels_from(&pieces);
            return Vec::new();
        }
        if in_rollback && !readiness {
            let title = self.heading(s).unwrap_or_else(|| "Rollback".into());
            if let Some(parent) = self.doc.sections[s].parent {
                self.procedures
                    .push((parent, slug(strip_numbering(&title)), title.clone()));
            }
            self.rollback_from(&title, line, &pieces);
            return Vec::new();
        }
        if own.contains("escalation") && self.escalation_from(&pieces) {
            return Vec::new();
        }
        if ["ongoing", "quarterly", "monthly", "continuous"]
            .iter()
            .any(|w| own.contains(w))
        {
            self.keep_as_description(s, &pieces, line, "ongoing work");
            return Vec::new();
        }
        let pieces = self.contacts_from(s, pieces);
        let (pieces, approvals) = self.tables_from(s, pieces);
        let pieces = if ["communicat", "announce", "comms"]
            .iter()
            .any(|w| own.contains(w))
        {
            self.notifies_from(pieces)
        } else {
            pieces
        };
        // A sign-off table with only text around it (`Attendees must say
        // "go"`, `No-go if …`): the text is what the approvers are asked.
        let mut approvals = approvals;
        let mut pieces = pieces;
        if let Some(RawItem {
            approval: Some(a), ..
        }) = approvals.first_mut()
            && a.message.is_none()
            && !pieces.is_empty()
            && pieces.iter().all(|p| matches!(p, Piece::Para(_)))
        {
            let text: Vec<String> = pieces
                .drain(..)
                .filter_map(|p| match p {
                    Piece::Para(l) => Some(l.text.clone()),
                    _ => None,
                })
                .collect();
            a.message = Some(text.join("\n"));
        }
        let mut units = if pieces.is_empty() {
            Vec::new()
        } else {
            self.labelled(s, pieces, line)
        };
        if !approvals.is_empty() {
            match units.iter_mut().find_map(|u| match u {
                Unit::Phase(d) | Unit::Continuation(d) => Some(d),
                Unit::Content { .. } => None,
            }) {
                Some(d) => {
                    for (k, a) in approvals.into_iter().enumerate() {
                        d.items.insert(k.min(d.items.len()), a);
                    }
                }
                None => units.insert(
                    0,
                    Unit::Phase(PhaseDraft {
                        title: self.phase_title(s),
                        at: self.at(s),
                        items: approvals,
                        line,
                        ..PhaseDraft::default()
                    }),
                ),
            }
        }
        units
    }

    /// A section cut at its label lines (`**Technical Lead:**`, `**Day 1:**`,
    /// `**Rollback Procedure**`, `Symptoms:`): each label owns the pieces
    /// under it, up to the next label.
    fn labelled(&mut self, s: usize, pieces: Vec<Piece<'d>>, line: usize) -> Vec<Unit> {
        let mut groups: Vec<(Option<&'d Line>, Vec<Piece<'d>>)> = vec![(None, Vec::new())];
        for p in pieces {
            match p {
                Piece::Para(l) if label_only(l).is_some() => groups.push((Some(l), Vec::new())),
                other => {
                    if let Some(g) = groups.last_mut() {
                        g.1.push(other);
                    }
                }
            }
        }
        // A label owns a list or a code block; over text alone it is just text.
        let mut kept: Vec<(Option<&'d Line>, Vec<Piece<'d>>)> = Vec::new();
        for (label, pieces) in groups {
            let owns = pieces
                .iter()
                .any(|p| matches!(p, Piece::Step(_) | Piece::Plain(_) | Piece::Code(_)));
            match (label, kept.last_mut()) {
                (Some(l), Some(prev)) if !owns => {
                    prev.1.push(Piece::Para(l));
                    prev.1.extend(pieces);
                }
                _ => kept.push((label, pieces)),
            }
        }
        let mut groups = kept;
        if groups.len() == 1 && groups[0].0.is_none() {
            let pieces = groups.pop().map(|g| g.1).unwrap_or_default();
            return self.body(s, pieces, line).into_iter().collect();
        }
        let heading = self.phase_title(s);
        let mut main: Option<PhaseDraft> = None;
        let mut periods = Vec::new();
        let mut symptoms: Option<(String, usize, Vec<String>)> = None;
        for (label, pieces) in groups {
            let Some(l) = label else {
                if let Some(u) = self.body(s, pieces, line) {
                    match u {
                        Unit::Phase(d) | Unit::Continuation(d) => merge(&mut main, d),
                        content @ Unit::Content { .. } => periods.push(content),
                    }
                }
                continue;
            };
            let name = label_only(l).unwrap_or_default();
            let lower = name.to_lowercase();
            if mentions_rollback(&lower)
                || ["revert", "back out", "fallback", "undo"]
                    .iter()
                    .any(|w| lower.contains(w))
            {
                self.rollback_from(&readable(&name), l.line, &pieces);
                continue;
            }
            if [
                "symptom",
                "trigger",
                "signs",
                "warning sign",
                "detection",
                "when",
            ]
            .iter()
            .any(|w| lower.starts_with(w))
            {
                let mut conds = Vec::new();
                for i in self.subtree_items(&pieces) {
                    self.kept[i] = true;
                    let text = clean_title(&self.item(i).text.text);
                    if let Some(c) = rules::threshold(&text).or_else(|| rules::flag(&text)) {
                        self.note(
                            self.item(i).line,
                            NoteKind::Recognised,
                            format!("symptom “{text}” drafted as `{c}`"),
                        );
                        conds.push(c);
                    }
                }
                symptoms = Some((heading.clone(), l.line, conds));
                continue;
            }
            if symptoms.is_some()
                && [
                    "action",
                    "response",
                    "what to do",
                    "mitigation",
                    "remediation",
                ]
                .iter()
                .any(|w| lower.starts_with(w))
            {
                self.rollback_from(&format!("{heading}: {}", readable(&name)), l.line, &pieces);
                continue;
            }
            // `**Quarterly:**`, `**Ongoing:**`: standing work, not go-live steps.
            if ["ongoing", "quarterly", "monthly", "continuous", "later"]
                .iter()
                .any(|w| lower.starts_with(w))
            {
                let mut text = Vec::new();
                for i in self.subtree_items(&pieces) {
                    self.kept[i] = true;
                    text.push(format!("- {}", clean_title(&self.item(i).text.text)));
                }
                for p in &pieces {
                    match p {
                        Piece::Para(l) => text.push(l.text.clone()),
                        Piece::Code(c) => text.push(code_text(c)),
                        Piece::Table(ls) => text.extend(ls.iter().map(|l| l.text.clone())),
                        Piece::Step(_) | Piece::Plain(_) => {}
                    }
                }
                self.note(
                    l.line,
                    NoteKind::Plain,
                    format!("“{name}” (standing work) kept in the plan description, not as steps"),
                );
                self.description
                    .push(format!("{heading}: {name}:\n{}", text.join("\n")));
                continue;
            }
            if let Some(at) =
                offsets::period(&name, self.day_zero).or_else(|| offsets::recognise(&name))
            {
                let mut d = self.phase(s, &pieces);
                d.title = format!("{heading}: {}", readable(&name));
                d.at = Some(at.clone());
                d.period = true;
                d.line = l.line;
                self.note(
                    l.line,
                    NoteKind::Recognised,
                    format!("“{name}” placed at {at}"),
                );
                periods.push(Unit::Phase(d));
                continue;
            }
            let mut d = self.phase(s, &pieces);
            if d.items.is_empty() {
                // `Commands for steps 1–4:` over a block kept as text: the
                // label is the block's caption, not a tag of nothing.
                d.description.insert(0, l.text.clone());
            }
            if is_role_label(&lower) {
                let role = role_name(&name);
                self.approval_roles.push((role.clone(), name.clone()));
                for it in &mut d.items {
                    it.owner.get_or_insert_with(|| Spanned::new(role.clone()));
                }
                self.note(
                    l.line,
                    NoteKind::Recognised,
                    format!("items under “{name}” owned by role `{role}`"),
                );
            } else {
                let tag = slug(&name);
                for it in &mut d.items {
                    if !it.tags.contains(&tag) {
                        it.tags.push(tag.clone());
                    }
                }
            }
            merge(&mut main, d);
        }
        if let Some((name, at_line, when)) = symptoms {
            self.symptom_level(name, at_line, when);
        }
        let mut units = Vec::new();
        if let Some(mut d) = main {
            d.title = heading;
            d.at = self.at(s);
            d.line = line;
            units.push(if self.doc.sections[s].heading.is_some() {
                Unit::Phase(d)
            } else {
                Unit::Continuation(d)
            });
        }
        units.extend(periods);
        units
    }

    /// A section's pieces without labels: a phase, a content task, or text
    /// for the plan description.
    fn body(&mut self, s: usize, pieces: Vec<Piece<'d>>, line: usize) -> Option<Unit> {
        if pieces.is_empty() {
            return None;
        }
        let doc = self.doc;
        let section = &doc.sections[s];
        let own = section
            .heading
            .as_ref()
            .map(|h| h.text.to_lowercase())
            .unwrap_or_default();
        let has_steps = pieces.iter().any(|p| match p {
            Piece::Step(_) => true,
            Piece::Code(c) => is_shell(c),
            Piece::Table(lines) => step_columns(lines).is_some(),
            _ => false,
        });
        if has_steps {
            let mut draft = self.phase(s, &pieces);
            if section.heading.is_none() {
                draft.line = line;
                return Some(Unit::Continuation(draft));
            }
            return Some(Unit::Phase(draft));
        }
        let has_blanks = pieces.iter().any(|p| match p {
            Piece::Para(l) => has_blank(&l.text) || inline_choice(l).is_some(),
            Piece::Plain(i) => self.plain_texts(*i).iter().any(|l| has_blank(&l.text)),
            _ => false,
        });
        // Numbered steps, or plain steps with a command under them, are a
        // procedure even when some ask for a value: each stays a step (with
        // its blank as a field) instead of the section becoming one task.
        // So are sign-off lines in a sign-off section.
        let signoff_section = is_signoff_title(&own);
        let procedure = pieces.iter().any(|p| {
            matches!(p, Piece::Plain(i) if {
                let it = self.item(*i);
                it.ordered
                    || !it.code.is_empty()
                    || signoff_section && is_signoff(it, true)
            })
        });
        let plain_items = pieces.iter().any(|p| matches!(p, Piece::Plain(_)));
        if !is_informational(&own) && (procedure || plain_items && !has_blanks) {
            self.note(
                line,
                NoteKind::Plain,
                if procedure {
                    "plain list items (no checkboxes) taken as steps"
                } else {
                    "plain list items (no checkboxes) taken as tasks"
                },
            );
            let draft = self.phase(s, &pieces);
            return Some(match section.heading {
                Some(_) => Unit::Phase(draft),
                None => Unit::Continuation(draft),
            });
        }
        if has_blanks {
            return Some(self.content(s, &pieces, line));
        }
        self.keep_as_description(s, &pieces, line, "text");
        None
    }

    /// Keeps a section's text in the plan description (and its checklist
    /// items counted as kept: they are there, as text).
    fn keep_as_description(&mut self, s: usize, pieces: &[Piece<'d>], line: usize, what: &str) {
        let title = self.heading(s);
        let mut text = Vec::new();
        for p in pieces {
            match p {
                Piece::Para(l) => text.push(l.text.clone()),
                Piece::Plain(i) | Piece::Step(i) => {
                    for j in self.subtree_items(std::slice::from_ref(p)) {
                        self.kept[j] = true;
                    }
                    text.extend(self.plain_lines(*i));
                }
                Piece::Code(c) => text.push(code_text(c)),
                Piece::Table(lines) => text.extend(lines.iter().map(|l| l.text.clone())),
            }
        }
        if !text.is_empty() {
            let name = title.clone().unwrap_or_else(|| what.into());
            self.note(
                line,
                NoteKind::Plain,
                format!("“{name}” ({what}) kept in the plan description, not as steps"),
            );
            match title {
                Some(t) => self.description.push(format!("{t}:\n{}", text.join("\n"))),
                None => self.description.push(text.join("\n")),
            }
        }
    }

    /// Everything before the first heading: metadata, blanks of the record,
    /// and free text for the description.
    fn preamble(&mut self, pieces: Vec<Piece<'d>>) -> Option<Unit> {
        let has_steps = pieces
            .iter()
            .any(|p| matches!(p, Piece::Step(_)) || matches!(p, Piece::Code(c) if is_shell(c)));
        let pieces = self.contacts_from(0, pieces);
        let (pieces, approvals) = self.tables_from(0, pieces);
        let mut rest = Vec::new();
        let mut last_line: Option<usize> = None;
        for p in pieces {
            match p {
                Piece::Para(l) => {
                    if let Some(f) = inline_choice(l) {
                        push_unique(&mut self.record, f);
                    } else if has_blank(&l.text) {
                        for f in fields(&l.text, l.label.as_deref().or(l.lead.as_deref()), "Notes")
                        {
                            self.note(
                                l.line,
                                NoteKind::Recognised,
                                format!("blank “{f}” recorded with the plan"),
                            );
                            push_unique(&mut self.record, f);
                        }
                    } else if !self.metadata(l) {
                        // Lines of one paragraph stay one paragraph.
                        match (self.description.last_mut(), last_line) {
                            (Some(d), Some(prev)) if l.line == prev + 1 => {
                                d.push('\n');
                                d.push_str(&l.text);
                            }
                            _ => self.description.push(l.text.clone()),
                        }
                        last_line = Some(l.line);
                    }
                }
                Piece::Plain(i) if !has_steps => {
                    let texts = self.plain_texts(i);
                    if texts.iter().any(|l| has_blank(&l.text)) {
                        for l in texts {
                            for f in
                                fields(&l.text, l.label.as_deref().or(l.lead.as_deref()), "Notes")
                            {
                                push_unique(&mut self.record, f);
                            }
                        }
                    } else {
                        let lines = self.plain_lines(i);
                        self.description.extend(lines);
                    }
                }
                other => rest.push(other),
            }
        }
        if rest.is_empty() && approvals.is_empty() {
            return None;
        }
        let mut draft = self.phase(0, &rest);
        for (k, a) in approvals.into_iter().enumerate() {
            draft.items.insert(k, a);
        }
        draft.title = self
            .doc
            .title
            .as_ref()
            .map(|t| readable(&t.text))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Checklist".into());
        Some(Unit::Phase(draft))
    }

    /// `**Environment**: Production` and friends. True when recognised.
    fn metadata(&mut self, l: &Line) -> bool {
        let (Some(label), value) = (&l.label, l.value.trim()) else {
            return false;
        };
        if value.is_empty() {
            return false;
        }
        let key = label.to_lowercase();
        let slot = match key.as_str() {
            "environment" | "env" | "target environment" => &mut self.environment,
            "version" | "release" | "release version" | "app version" => &mut self.version,
            "owner" | "team" | "release owner" | "deployment owner" | "release manager" => {
                &mut self.owner
            }
            "name" | "project" | "service" | "application" | "system" => &mut self.name_hint,
            k if (k.contains("date")
                || k.contains("time")
                || k == "t0"
                || k.contains("go-live"))
                && value.parse::<jiff::Timestamp>().is_ok() =>
            {
                &mut self.t0
            }
            _ => return false,
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(value.to_string());
        self.note(
            l.line,
            NoteKind::Recognised,
            format!("“{label}: {value}” read as plan metadata"),
        );
        true
    }

    /// A phase from a section with steps.
    fn phase(&mut self, s: usize, pieces: &[Piece<'d>]) -> PhaseDraft {
        let doc = self.doc;
        let section = &doc.sections[s];
        let own = self.heading(s).unwrap_or_default();
        let path = self.path(s);
        let tags: Vec<String> = if path.iter().any(|t| t.contains("success criteria")) {
            vec!["success-criteria".into()]
        } else {
            Vec::new()
        };
        let signoff_section = is_signoff_title(&own.to_lowercase());
        let mut draft = PhaseDraft {
            title: if section.heading.is_some() {
                self.phase_title(s)
            } else {
                String::new()
            },
            at: self.at_of(s).map(|(at, _)| at),
            period: self.at_of(s).is_some_and(|(_, period)| period),
            line: section.heading.as_ref().map(|h| h.line).unwrap_or(0),
            ..PhaseDraft::default()
        };
        let mut signoffs: Vec<usize> = Vec::new();
        let mut approval_at: Option<usize> = None;
        let mut notes_text: Vec<String> = Vec::new();
        let ramp = self.ramp(pieces);
        for (k, p) in pieces.iter().enumerate() {
            if let Some((first, steps)) = &ramp
                && steps.iter().any(|(at, _)| *at == k)
            {
                if k == *first {
                    let item = self.rollout(s, pieces, steps);
                    draft.items.push(item);
                }
                continue;
            }
            match p {
                Piece::Step(i)
                    if record_only(self.item(*i))
                        && !is_signoff(self.item(*i), signoff_section) =>
                {
                    self.kept[*i] = true;
                    let it = self.item(*i);
                    let label = it.text.label.clone().unwrap_or_default();
                    self.note(
                        it.line,
                        NoteKind::Recognised,
                        format!("blank “{label}” recorded with the phase"),
                    );
                    push_unique(&mut draft.record, label);
                }
                // In a sign-off section, "X sign-off" items join its one approval.
                Piece::Step(i)
                    if is_signoff(self.item(*i), signoff_section)
                        || signoff_section
                            && self.item(*i).children.is_empty()
                            && (named_approval(&self.item(*i).text.text).is_some()
                                || person_role(&self.item(*i).text.text).is_some()) =>
                {
                    approval_at.get_or_insert(draft.items.len());
                    signoffs.push(*i);
                }
                Piece::Step(i) if named_approval(&self.item(*i).text.text).is_some() => {
                    let item = self.named_approval_item(*i, &tags);
                    draft.items.push(item);
                }
                Piece::Step(i) => {
                    let items = self.convert(*i, &tags, false);
                    draft.items.extend(items);
                }
                Piece::Table(lines) => match self.table_steps(lines, &tags) {
                    Some(items) => draft.items.extend(items),
                    None => draft
                        .description
                        .extend(lines.iter().map(|l| l.text.clone())),
                },
                Piece::Plain(i)
                    if signoff_section
                        && (is_signoff(self.item(*i), true)
                            || person_role(&self.item(*i).text.text).is_some()) =>
                {
                    approval_at.get_or_insert(draft.items.len());
                    signoffs.push(*i);
                }
                Piece::Plain(i)
                    if self.section_is_plain_steps(pieces) && !record_only(self.item(*i)) =>
                {
                    let items = self.convert(*i, &tags, true);
                    draft.items.extend(items);
                }
                Piece::Plain(i) => {
                    let texts = self.plain_texts(*i);
                    if texts.iter().any(|l| has_blank(&l.text)) {
                        for l in texts {
                            for f in fields(&l.text, l.label.as_deref().or(l.lead.as_deref()), &own)
                            {
                                push_unique(&mut draft.record, f);
                            }
                        }
                    } else if self.section_is_plain_steps(pieces) {
                        let items = self.convert(*i, &tags, true);
                        draft.items.extend(items);
                    } else {
                        let lines = self.plain_lines(*i);
                        draft.description.extend(lines);
                    }
                }
                Piece::Para(l) => {
                    if let Some(f) = inline_choice(l) {
                        push_unique(&mut draft.record, f);
                    } else if has_blank(&l.text) {
                        for f in fields(&l.text, l.label.as_deref().or(l.lead.as_deref()), &own) {
                            push_unique(&mut draft.record, f);
                        }
                    } else {
                        notes_text.push(l.text.clone());
                    }
                }
                Piece::Code(c) if is_shell(c) => {
                    let items = self.standalone(c, &tags);
                    draft.items.extend(items);
                }
                Piece::Code(c) => draft.description.push(code_text(c)),
            }
        }
        if let Some(at) = approval_at {
            let message =
                (!notes_text.is_empty()).then(|| std::mem::take(&mut notes_text).join("\n"));
            let item = self.approval(&signoffs, strip_numbering(&own), message);
            draft.items.insert(at.min(draft.items.len()), item);
        }
        let mut description = notes_text;
        description.append(&mut draft.description);
        draft.description = description;
        if !draft.record.is_empty() {
            self.note(
                draft.line,
                NoteKind::Recognised,
                format!(
                    "blanks recorded with the phase: {}",
                    draft.record.join(", ")
                ),
            );
        }
        draft
    }

    /// A section whose steps are plain list items (no checkbox anywhere).
    fn section_is_plain_steps(&self, pieces: &[Piece<'d>]) -> bool {
        !pieces
            .iter()
            .any(|p| matches!(p, Piece::Step(_)) || matches!(p, Piece::Code(c) if is_shell(c)))
    }

    /// One sign-off approval from the sign-off lines `items`.
    fn approval(&mut self, items: &[usize], heading: &str, message: Option<String>) -> RawItem {
        let mut roles = Vec::new();
        let mut lines = Vec::new();
        for &i in items {
            self.kept[i] = true;
            let it = self.item(i);
            let person = person_role(&it.text.text);
            let who = match &person {
                Some((_, role)) => role.clone(),
                None => signer(it)
                    .or_else(|| named_approval(&it.text.text))
                    .unwrap_or_else(|| it.text.value.clone()),
            };
            // `Edge lead (@mpetrov)`: the handle is who signs, not the role.
            let (who, handle) = split_handle(&who);
            let role = role_name(&who);
            let member = handle.or(person.map(|(name, _)| name));
            if let Some(m) = member {
                let r = self.roles.entry(role.clone()).or_default();
                if !r.members.iter().any(|x| x.value == m) {
                    r.members.push(Spanned::new(m));
                }
            }
            if !roles.contains(&role) {
                roles.push(role.clone());
                self.approval_roles.push((role, strip_role_suffix(&who)));
            }
            lines.push(format!("- {}", clean_title(&it.text.text)));
        }
        let title = if heading.is_empty() {
            "Sign-off".to_string()
        } else {
            heading.to_string()
        };
        let line = items.first().map(|&i| self.item(i).line).unwrap_or(0);
        self.note(
            line,
            NoteKind::Recognised,
            format!(
                "{} sign-off line(s) drafted as one approval by roles {}",
                items.len(),
                roles.join(", ")
            ),
        );
        RawItem {
            id: Spanned::new(self.id(&title)),
            title: Some(Spanned::new(title)),
            description: Some(format!(
                "Drafted from the checklist's sign-off lines:\n{}\nCheck the members of each role under `roles:`.",
                lines.join("\n")
            )),
            review: Some(true),
            approval: Some(RawApproval {
                roles: roles.into_iter().map(Spanned::new).collect(),
                min: None,
                message,
            }),
            ..RawItem::default()
        }
    }

    /// A plan item from list item `i` (with its nested items). Returns the
    /// item, preceded by any HTTP checks drafted from nested items.
    fn convert(&mut self, i: usize, tags: &[String], plain: bool) -> Vec<RawItem> {
        self.kept[i] = true;
        let it = self.item(i);
        if it.code.is_empty()
            && let Some(steps) = self.nested_ramp(i)
        {
            let title = clean_title(&it.text.text);
            let mut text = vec![title.as_str()];
            text.extend(it.paras.iter().map(|p| p.text.as_str()));
            let mut item = self.rollout_of(&steps, &text, &title);
            item.tags = tags.to_vec();
            return vec![item];
        }
        let mut before = Vec::new();
        let mut subtasks = Vec::new();
        let mut item_fields = Vec::new();
        let mut description = Vec::new();
        let (mut title, mut instructions) = match (&it.text.label, plain) {
            (Some(label), true) if !it.text.value.is_empty() => {
                (label.clone(), Some(it.text.value.clone()))
            }
            _ => (clean_title(&it.text.text), None),
        };
        if title.is_empty() {
            title = it
                .code
                .first()
                .and_then(comment_title)
                .unwrap_or_else(|| format!("Untitled item (line {})", it.line));
        }
        // `1. Lower TTLs` with `1.1 …`, `1.2 …` written under it (lazy
        // continuation lines, so one paragraph): the sub-steps are subtasks.
        if it.ordered
            && let Some((head, subs)) = split_substeps(&title)
        {
            title = head;
            subtasks.extend(subs);
        }
        let owner = written_owner(&title);
        let fallback = it.text.lead.clone().unwrap_or_else(|| title.clone());
        item_fields.extend(fields(
            &it.text.text,
            it.text.label.as_deref().or(it.text.lead.as_deref()),
            &fallback,
        ));
        for p in &it.paras {
            if has_blank(&p.text) {
                item_fields.extend(fields(
                    &p.text,
                    p.label.as_deref().or(p.lead.as_deref()),
                    &fallback,
                ));
            } else {
                description.push(p.text.clone());
            }
        }
        // Nested items, depth first, without recursion.
        let mut stack: Vec<usize> = it.children.iter().rev().copied().collect();
        while let Some(d) = stack.pop() {
            let child = self.item(d);
            stack.extend(child.children.iter().rev().copied());
            let text = clean_title(&child.text.text);
            if child.checkbox.is_some() {
                self.kept[d] = true;
                if let Some((check, what)) = child.text.codes.iter().find_map(|c| probe::check(c)) {
                    let id = self.id(child
                        .text
                        .lead
                        .as_deref()
                        .or(child.text.label.as_deref())
                        .unwrap_or(&text));
                    self.note(child.line, NoteKind::Recognised, what);
                    before.push(RawItem {
                        id: Spanned::new(id),
                        title: Some(Spanned::new(text.clone())),
                        tags: tags.to_vec(),
                        check: Some(check),
                        ..RawItem::default()
                    });
                } else {
                    subtasks.push(if text.is_empty() {
                        "(empty)".to_string()
                    } else {
                        text
                    });
                }
            } else if has_blank(&child.text.text) {
                let lead = child.text.label.as_deref().or(child.text.lead.as_deref());
                item_fields.extend(fields(&child.text.text, lead, &fallback));
            } else if !text.is_empty() {
                description.push(format!("- {text}"));
            }
            for c in &child.code {
                description.push(code_text(c));
            }
        }
        dedup(&mut item_fields);

        // What kind of item: a command, an HTTP check, or a task.
        let (shell, other): (Vec<&Code>, Vec<&Code>) = it.code.iter().partition(|c| is_shell(c));
        for c in other {
            description.push(code_text(c));
        }
        // A block of numbered steps is one item per step; the list item's own
        // text introduces the first.
        if let [block] = shell.as_slice()
            && let Some(steps) = probe::numbered_steps(&block.text)
        {
            let mut items = self.steps(block.line, steps, tags);
            if let Some(first) = items.first_mut() {
                let mut d = vec![title.clone()];
                d.extend(description);
                if !item_fields.is_empty() {
                    d.push(format!("Record: {}", item_fields.join(", ")));
                }
                if let Some(old) = first.description.take() {
                    d.push(old);
                }
                first.description = Some(d.join("\n"));
            }
            before.extend(items);
            return before;
        }
        let mut command = Vec::new();
        for c in &shell {
            let (cmd, comments) = split_comments(c);
            description.extend(comments);
            if !cmd.is_empty() {
                command.push(cmd);
            }
        }
        let mut command = command.join("\n");
        if command.is_empty()
            && self.inline_runs
            && let Some((head, cmd)) = inline_command(&it.text)
        {
            title = head;
            command = cmd;
            instructions = None;
        }
        let probe = if command.is_empty() {
            it.text.codes.iter().find_map(|c| probe::check(c))
        } else {
            probe::check(&command)
        };
        let flag = (!command.is_empty())
            .then(|| probe::flag_call(&command))
            .flatten();
        let id = self.id(it
            .text
            .lead
            .as_deref()
            .or(it.text.label.as_deref())
            .unwrap_or(&title));
        let mut item = RawItem {
            id: Spanned::new(id),
            title: Some(Spanned::new(title.clone())),
            tags: tags.to_vec(),
            ..RawItem::default()
        };
        if let Some((check, what)) = probe {
            self.note(it.line, NoteKind::Recognised, what);
            // A probe keeps only what it checks (`dig … @1.1.1.1` → a DNS
            // check of the name): the command as written stays readable.
            if check.command.is_none() && !command.is_empty() {
                description.push(format!("Drafted from:\n{command}"));
            }
            item.check = Some(check);
        } else if let Some(f) = flag {
            self.note(
                it.line,
                NoteKind::Recognised,
                format!(
                    "flag API call drafted as a change of flag `{}`",
                    f.key.value
                ),
            );
            self.flag_keys.push(f.key.value.clone());
            description.push(format!("Drafted from:\n{command}"));
            item.review = Some(true);
            item.flag = Some(f);
        } else if !command.is_empty() {
            self.note(
                it.line,
                NoteKind::Recognised,
                format!("code block under “{title}” taken as its command"),
            );
            self.uses_vars(&command);
            item.run = Some(RawRun {
                command: Spanned::new(command),
                ..RawRun::default()
            });
        } else {
            if let Some(t) = endpoint_without_url(&it.text) {
                self.note(
                    it.line,
                    NoteKind::Plain,
                    format!("{t}: no full URL in the checklist, kept as a task"),
                );
            } else if looks_like_approval(&it.text.text) {
                self.note(
                    it.line,
                    NoteKind::Plain,
                    format!("“{title}” kept as a task: it names no role or signature line to draft an approval from"),
                );
            }
            item.task = Some(RawTask {
                instructions,
                evidence: None,
                fields: std::mem::take(&mut item_fields)
                    .into_iter()
                    .map(Spanned::new)
                    .collect(),
            });
        }
        if !item_fields.is_empty() {
            description.push(format!("Record: {}", item_fields.join(", ")));
        }
        if !subtasks.is_empty() {
            item.subtasks = subtasks.into_iter().map(Spanned::new).collect();
        }
        if !description.is_empty() {
            item.description = Some(description.join("\n"));
        }
        if let Some(who) = owner {
            item.owner = Some(Spanned::new(self.owner_role(&who)));
        }
        before.push(item);
        before
    }

    /// The role owning steps written as `(Owner: SRE)`, `@aisha` or
    /// `Owner: DBA`: declared (with the handle as its member when there is
    /// one, else a placeholder filled in at the end).
    fn owner_role(&mut self, who: &str) -> String {
        let (name, handle) = split_handle(who);
        let role = role_name(if name.is_empty() {
            handle.as_deref().unwrap_or(who)
        } else {
            &name
        });
        let r = self.roles.entry(role.clone()).or_default();
        if let Some(h) = handle
            && !r.members.iter().any(|m| m.value == h)
        {
            r.members.push(Spanned::new(h));
        }
        if r.description.is_none() {
            r.description = Some(format!("Owner of steps: {who}"));
        }
        self.approval_roles.push((role.clone(), who.to_string()));
        role
    }

    /// Items from a code block outside any list item: one per numbered
    /// step when its comments number them, else one.
    fn standalone(&mut self, c: &Code, tags: &[String]) -> Vec<RawItem> {
        if let Some(steps) = probe::numbered_steps(&c.text) {
            return self.steps(c.line, steps, tags);
        }
        let (cmd, comments) = split_comments(c);
        let title = comment_title(c);
        let titled = title.is_some();
        let mut item = self.command_item(title, &cmd, c.line, tags);
        // The first comment is the title, when there is one.
        let description: Vec<String> = comments.into_iter().skip(usize::from(titled)).collect();
        if !description.is_empty() {
            item.description = Some(description.join("\n"));
        }
        if item.task.is_some() {
            item.task = Some(RawTask {
                instructions: Some(c.text.trim_end().to_string()),
                ..RawTask::default()
            });
        }
        vec![item]
    }

    /// One item per numbered step of a code block.
    fn steps(
        &mut self,
        line: usize,
        steps: Vec<(String, String)>,
        tags: &[String],
    ) -> Vec<RawItem> {
        self.note(
            line,
            NoteKind::Recognised,
            format!(
                "code block split at its {} numbered step comments",
                steps.len()
            ),
        );
        steps
            .into_iter()
            .map(|(title, body)| {
                let code = Code {
                    lang: "sh".into(),
                    text: body,
                    line,
                };
                let (cmd, comments) = split_comments(&code);
                let mut item = self.command_item(Some(title), &cmd, line, tags);
                if !comments.is_empty() {
                    item.description = Some(comments.join("\n"));
                }
                item
            })
            .collect()
    }

    /// A command as the item it stands for: a check when it is a probe, a
    /// flag change when it calls a flag admin API, else a run (a task when
    /// there is no command left).
    fn command_item(
        &mut self,
        title: Option<String>,
        cmd: &str,
        line: usize,
        tags: &[String],
    ) -> RawItem {
        let short: String = cmd
            .lines()
            .next()
            .unwrap_or("command")
            .chars()
            .take(60)
            .collect();
        let mut item = RawItem {
            tags: tags.to_vec(),
            ..RawItem::default()
        };
        let title = if let Some((check, what)) = probe::check(cmd) {
            self.note(line, NoteKind::Recognised, what);
            item.check = Some(check);
            title.unwrap_or_else(|| format!("Check `{short}`"))
        } else if let Some(f) = probe::flag_call(cmd) {
            let mut what = Vec::new();
            if let Some(e) = f.enabled {
                what.push(if e {
                    "on".to_string()
                } else {
                    "off".to_string()
                });
            }
            if let Some(p) = &f.percentage {
                what.push(format!("{}%", p.value));
            }
            let t =
                title.unwrap_or_else(|| format!("Set flag `{}` {}", f.key.value, what.join(", ")));
            self.note(
                line,
                NoteKind::Recognised,
                format!(
                    "flag API call drafted as a change of flag `{}`: check the flag store",
                    f.key.value
                ),
            );
            self.flag_keys.push(f.key.value.clone());
            item.review = Some(true);
            item.description = Some(format!("Drafted from:\n{cmd}"));
            item.flag = Some(f);
            t
        } else if cmd.is_empty() {
            item.task = Some(RawTask::default());
            title.unwrap_or_else(|| "Command".into())
        } else {
            self.uses_vars(cmd);
            item.run = Some(RawRun {
                command: Spanned::new(cmd.to_string()),
                ..RawRun::default()
            });
            title.unwrap_or_else(|| format!("Run `{short}`"))
        };
        self.note(
            line,
            NoteKind::Recognised,
            format!("code block taken as “{title}”"),
        );
        item.id = Spanned::new(self.id(&title));
        item.title = Some(Spanned::new(title));
        if let Some(d) = item.description.take() {
            item.description = Some(d);
        }
        item
    }

    /// A content-only section: one task whose fields are the blanks.
    fn content(&mut self, s: usize, pieces: &[Piece<'d>], line: usize) -> Unit {
        let doc = self.doc;
        let section = &doc.sections[s];
        let own_title = match self.heading(s) {
            Some(h) => strip_numbering(&h).to_string(),
            None => pieces
                .iter()
                .find_map(|p| match p {
                    Piece::Para(l) => l.label.clone().or_else(|| l.lead.clone()),
                    _ => None,
                })
                .map(|t| readable(&t))
                .unwrap_or_else(|| "Final record".into()),
        };
        let mut task_fields = Vec::new();
        let mut instructions = Vec::new();
        for p in pieces {
            match p {
                Piece::Para(l) => {
                    if let Some(f) = inline_choice(l) {
                        task_fields.push(f);
                    } else if has_blank(&l.text) {
                        task_fields.extend(fields(
                            &l.text,
                            l.label.as_deref().or(l.lead.as_deref()),
                            &own_title,
                        ));
                    } else {
                        instructions.push(l.text.clone());
                    }
                }
                Piece::Plain(i) => {
                    for l in self.plain_texts(*i) {
                        if has_blank(&l.text) {
                            task_fields.extend(fields(
                                &l.text,
                                l.label.as_deref().or(l.lead.as_deref()),
                                &own_title,
                            ));
                        } else if !l.text.is_empty() {
                            instructions.push(format!("- {}", l.text));
                        }
                    }
                }
                Piece::Code(c) => instructions.push(code_text(c)),
                Piece::Table(ls) => instructions.extend(ls.iter().map(|l| l.text.clone())),
                Piece::Step(_) => {}
            }
        }
        dedup(&mut task_fields);
        self.note(
            line,
            NoteKind::Recognised,
            format!(
                "“{own_title}” has blanks but no checklist items: drafted as a task with fields {}",
                task_fields.join(", ")
            ),
        );
        let task = RawItem {
            id: Spanned::new(self.id(&own_title)),
            title: Some(Spanned::new(own_title.clone())),
            task: Some(RawTask {
                instructions: (!instructions.is_empty()).then(|| instructions.join("\n")),
                evidence: None,
                fields: task_fields.into_iter().map(Spanned::new).collect(),
            }),
            ..RawItem::default()
        };
        let (group, group_title) = match (section.heading.is_some(), section.parent) {
            (true, Some(p)) if p != 0 => (
                p,
                self.heading(p)
                    .map(|h| strip_numbering(&h).to_string())
                    .unwrap_or_default(),
            ),
            _ => (usize::MAX - s, String::new()),
        };
        Unit::Content {
            group,
            group_title,
            own_title: if section.heading.is_some() {
                self.phase_title(s)
            } else {
                own_title
            },
            task: Box::new(task),
            line,
        }
    }

    /// Rollback decision criteria → rollback levels, one per criterion.
    fn levels_from(&mut self, pieces: &[Piece<'d>]) {
        let mut all = Vec::new();
        for p in pieces {
            let root = match p {
                Piece::Step(i) | Piece::Plain(i) => *i,
                Piece::Para(l) => {
                    let when = prose_triggers(&l.text);
                    self.note(
                        l.line,
                        NoteKind::Recognised,
                        format!("“{}” read as the rollback trigger", l.text),
                    );
                    if !when.is_empty() {
                        self.criteria_level(clean_title(&l.text), when);
                    }
                    continue;
                }
                Piece::Code(c) => {
                    self.description.push(code_text(c));
                    continue;
                }
                Piece::Table(lines) => {
                    self.description
                        .extend(lines.iter().map(|l| l.text.clone()));
                    continue;
                }
            };
            let mut stack = vec![root];
            while let Some(j) = stack.pop() {
                all.push(j);
                stack.extend(self.item(j).children.iter().rev().copied());
            }
        }
        for i in all {
            let it = self.item(i);
            let text = clean_title(&it.text.text);
            if text.is_empty() {
                continue;
            }
            let (cond, drafted) = match rules::threshold(&text) {
                Some(c) => (Some(c), true),
                None => (rules::flag(&text), false),
            };
            let Some(cond) = cond else {
                self.note(
                    it.line,
                    NoteKind::Dropped,
                    format!("rollback criterion “{text}” has no words to name a condition"),
                );
                continue;
            };
            self.kept[i] = true;
            let how = if drafted {
                "threshold drafted as"
            } else {
                "no threshold; drafted as flag"
            };
            self.note(
                it.line,
                NoteKind::Recognised,
                format!("rollback level “{text}”: {how} `{cond}`"),
            );
            self.levels.push(RawLevel {
                name: Spanned::new(text),
                when: vec![Spanned::new(cond)],
                actions: vec![Spanned::new(Action::Rollback)],
                review: Some(true),
            });
        }
    }

    /// A rollback procedure → rollback items. A line offering an
    /// alternative (`helm rollback, or if that fails the manual fallback:`)
    /// makes what follows it one fallback task, run only when the step
    /// before it failed, instead of more steps in a chain.
    fn rollback_from(&mut self, title: &str, line: usize, pieces: &[Piece<'d>]) {
        let tag = slug(strip_numbering(title));
        let mut n = 0;
        let mut text = Vec::new();
        let mut fallback: Option<(String, usize, Vec<String>)> = None;
        for p in pieces {
            if let Some((_, _, lines)) = fallback.as_mut() {
                match p {
                    Piece::Step(i) | Piece::Plain(i) => {
                        for j in self.subtree_items(std::slice::from_ref(p)) {
                            self.kept[j] = true;
                        }
                        lines.extend(self.plain_lines(*i));
                    }
                    Piece::Code(c) => lines.push(code_text(c)),
                    Piece::Para(l) => lines.push(l.text.clone()),
                    Piece::Table(ls) => lines.extend(ls.iter().map(|l| l.text.clone())),
                }
                continue;
            }
            match p {
                Piece::Step(i) | Piece::Plain(i) => {
                    self.inline_runs = true;
                    let items = self.convert(*i, &[], matches!(p, Piece::Plain(_)));
                    self.inline_runs = false;
                    for item in items {
                        self.rollback_items.push((item, tag.clone()));
                        n += 1;
                    }
                }
                Piece::Code(c) if is_shell(c) => {
                    for item in self.standalone(c, &[]) {
                        self.rollback_items.push((item, tag.clone()));
                        n += 1;
                    }
                }
                Piece::Code(c) => text.push(code_text(c)),
                Piece::Para(l) if is_alternative(&l.text) && n > 0 => {
                    fallback = Some((l.text.clone(), l.line, Vec::new()));
                }
                Piece::Para(l) => {
                    let when = prose_triggers(&l.text);
                    if !when.is_empty() {
                        self.note(
                            l.line,
                            NoteKind::Recognised,
                            format!(
                                "rollback criteria “{}” drafted as a level: {}",
                                l.text,
                                when.join(", ")
                            ),
                        );
                        self.criteria_level(format!("{title}: criteria"), when);
                    }
                    text.push(l.text.clone());
                }
                Piece::Table(ls) => match self.table_steps(ls, &[]) {
                    Some(items) => {
                        for item in items {
                            self.rollback_items.push((item, tag.clone()));
                            n += 1;
                        }
                    }
                    None => text.extend(ls.iter().map(|l| l.text.clone())),
                },
            }
        }
        if let Some((intro, at_line, lines)) = fallback {
            let primary = self
                .rollback_items
                .last_mut()
                .map(|(item, _)| {
                    item.on_failure = Some(OnFailure::Continue);
                    item.title
                        .as_ref()
                        .map(|t| t.value.clone())
                        .unwrap_or_else(|| item.id.value.clone())
                })
                .unwrap_or_default();
            let fb_title = format!("Fallback if “{primary}” failed");
            self.note(
                at_line,
                NoteKind::Recognised,
                format!("“{intro}”: the alternative drafted as one fallback task after “{primary}”, not as more steps"),
            );
            let item = RawItem {
                id: Spanned::new(self.id(&fb_title)),
                title: Some(Spanned::new(fb_title)),
                description: Some(format!(
                    "{intro}\nSkip this task (`golive confirm … --skip`) when the step before it succeeded."
                )),
                review: Some(true),
                task: Some(RawTask {
                    instructions: Some(lines.join("\n")),
                    ..RawTask::default()
                }),
                ..RawItem::default()
            };
            self.rollback_items.push((item, tag.clone()));
            n += 1;
        }
        if !text.is_empty() {
            self.description
                .push(format!("{title}:\n{}", text.join("\n")));
        }
        self.note(
            line,
            NoteKind::Recognised,
            format!("“{title}”: {n} rollback item(s)"),
        );
    }

    /// A level of a rollback decision tree (`Level 2: Major Issues (Prepare
    /// Rollback)`): its list items are the conditions, its `Action:` lines
    /// what people do, and the heading says what golive does.
    fn level_from(&mut self, s: usize, pieces: &[Piece<'d>]) {
        let name = self.heading(s).unwrap_or_else(|| "Level".into());
        let line = self.doc.sections[s]
            .heading
            .as_ref()
            .map(|h| h.line)
            .unwrap_or(0);
        let mut when = Vec::new();
        let mut said = Vec::new();
        for p in pieces {
            match p {
                Piece::Step(_) | Piece::Plain(_) => {
                    for i in self.subtree_items(std::slice::from_ref(p)) {
                        self.kept[i] = true;
                        let it = self.item(i);
                        let text = clean_title(&it.text.text);
                        let is_action = it.text.label.as_deref().is_some_and(|l| {
                            let l = l.to_lowercase();
                            ["action", "response", "do", "next step", "owner", "who"]
                                .iter()
                                .any(|w| l.starts_with(w))
                        });
                        // `Run ./scripts/x.sh`, `Page the DBA`: what to do, not when.
                        let imperative = !it.text.codes.is_empty()
                            || text.split_whitespace().next().is_some_and(|w| {
                                [
                                    "run", "execute", "page", "notify", "call", "prepare", "stop",
                                    "start", "open", "escalate", "inform",
                                ]
                                .contains(&w.to_lowercase().as_str())
                            });
                        if is_action || imperative {
                            said.push(text);
                            continue;
                        }
                        match rules::threshold(&text).or_else(|| rules::flag(&text)) {
                            Some(c) => when.push(Spanned::new(c)),
                            None => said.push(text),
                        }
                    }
                }
                Piece::Code(c) if is_shell(c) => {
                    for item in self.standalone(c, &[]) {
                        self.rollback_items.push((item, "rollback".into()));
                    }
                }
                Piece::Code(c) => said.push(code_text(c)),
                Piece::Para(l) => said.push(l.text.clone()),
                Piece::Table(ls) => said.extend(ls.iter().map(|l| l.text.clone())),
            }
        }
        if when.is_empty() {
            match rules::flag(&name) {
                Some(c) => when.push(Spanned::new(c)),
                None => return,
            }
        }
        let action = level_action(&name.to_lowercase());
        self.note(
            line,
            NoteKind::Recognised,
            format!(
                "“{name}”: a rollback level with {} condition(s), action `{}`",
                when.len(),
                match &action {
                    Action::Continue => "continue",
                    Action::Pause => "pause",
                    _ => "rollback",
                }
            ),
        );
        if !said.is_empty() {
            self.description
                .push(format!("{name}:\n{}", said.join("\n")));
        }
        self.levels.push(RawLevel {
            name: Spanned::new(name),
            when,
            actions: vec![Spanned::new(action)],
            review: Some(true),
        });
    }

    /// Symptoms listed in an incident playbook → a rollback level named
    /// after the playbook.
    /// A rollback level drafted from criteria written in prose (symptoms,
    /// `If … roll back` sentences, `Halt … if …` steps), for review.
    fn criteria_level(&mut self, name: String, when: Vec<String>) {
        self.levels.push(RawLevel {
            name: Spanned::new(name),
            when: when.into_iter().map(Spanned::new).collect(),
            actions: vec![Spanned::new(Action::Rollback)],
            review: Some(true),
        });
    }

    fn symptom_level(&mut self, name: String, line: usize, when: Vec<String>) {
        if when.is_empty() {
            return;
        }
        self.note(
            line,
            NoteKind::Recognised,
            format!("symptoms under “{name}” drafted as a rollback level"),
        );
        self.criteria_level(name, when);
    }

    /// List items of `pieces` and all their descendants, in document order.
    fn subtree_items(&self, pieces: &[Piece<'d>]) -> Vec<usize> {
        let mut out = Vec::new();
        for p in pieces {
            let (Piece::Step(root) | Piece::Plain(root)) = p else {
                continue;
            };
            let mut stack = vec![*root];
            while let Some(j) = stack.pop() {
                out.push(j);
                stack.extend(self.item(j).children.iter().rev().copied());
            }
        }
        out
    }

    /// Tables of a section: a `| Role | Name | Contact |` table fills in
    /// roles; in a sign-off section (or with a date or signature column) it
    /// is also an approval by those roles. Other tables stay text.
    fn tables_from(&mut self, s: usize, pieces: Vec<Piece<'d>>) -> (Vec<Piece<'d>>, Vec<RawItem>) {
        let own = self.heading(s).unwrap_or_default();
        let signoff_section = is_signoff_title(&own.to_lowercase());
        let mut rest = Vec::new();
        let mut approvals = Vec::new();
        for p in pieces {
            let Piece::Table(lines) = p else {
                rest.push(p);
                continue;
            };
            // A table of steps stays a table: the phase makes its rows steps.
            if step_columns(lines).is_some() {
                rest.push(Piece::Table(lines));
                continue;
            }
            let Some((header, rows)) = table_rows(lines) else {
                rest.extend(lines.iter().map(Piece::Para));
                continue;
            };
            let col = |names: &[&str]| {
                header
                    .iter()
                    .position(|h| names.iter().any(|n| h.to_lowercase().contains(n)))
            };
            let (Some(role_col), Some(who_col)) = (
                col(&["role", "responsib", "function"]),
                col(&[
                    "name", "person", "owner", "who", "contact", "email", "approver",
                ]),
            ) else {
                rest.extend(lines.iter().map(Piece::Para));
                continue;
            };
            let contact_col = col(&["contact", "email", "e-mail", "slack", "phone"]);
            let signs = signoff_section
                || col(&["signature", "date", "approved", "sign", "decision"]).is_some();
            let mut roles = Vec::new();
            for row in &rows {
                let Some(label) = row.get(role_col).filter(|r| !r.is_empty() && !has_blank(r))
                else {
                    continue;
                };
                let key = role_name(label);
                let name = row.get(who_col).filter(|n| !n.is_empty() && !has_blank(n));
                let email = contact_col
                    .and_then(|c| row.get(c))
                    .map(|c| {
                        c.trim_matches(|ch: char| "<>()`".contains(ch))
                            .trim_start_matches("mailto:")
                    })
                    .filter(|c| is_email(c));
                let member = email.map(str::to_string).or_else(|| name.cloned());
                let role = self.roles.entry(key.clone()).or_default();
                if let Some(m) = &member
                    && (role.members.is_empty() || email.is_some())
                    && !role.members.iter().any(|x| &x.value == m)
                {
                    role.members.push(Spanned::new(m.clone()));
                }
                if role.description.is_none() {
                    role.description = Some(match (name, own.is_empty()) {
                        (Some(n), false) => format!("{label}: {n} ({own})"),
                        (Some(n), true) => format!("{label}: {n}"),
                        (None, _) => label.clone(),
                    });
                }
                if !roles.contains(&key) {
                    roles.push(key.clone());
                    if signs {
                        self.approval_roles.push((key, label.clone()));
                    }
                }
            }
            let line = lines.first().map(|l| l.line).unwrap_or(0);
            self.note(
                line,
                NoteKind::Recognised,
                format!("table of {} role(s): {}", roles.len(), roles.join(", ")),
            );
            if signs && !roles.is_empty() {
                let title = if own.is_empty() {
                    "Sign-off".to_string()
                } else {
                    strip_numbering(&own).to_string()
                };
                self.note(
                    line,
                    NoteKind::Recognised,
                    format!(
                        "sign-off table drafted as one approval by roles {}",
                        roles.join(", ")
                    ),
                );
                approvals.push(RawItem {
                    id: Spanned::new(self.id(&title)),
                    title: Some(Spanned::new(title)),
                    description: Some(format!(
                        "Drafted from the checklist's sign-off table:\n{}",
                        lines
                            .iter()
                            .map(|l| l.text.clone())
                            .collect::<Vec<_>>()
                            .join("\n")
                    )),
                    review: Some(true),
                    approval: Some(RawApproval {
                        roles: roles.into_iter().map(Spanned::new).collect(),
                        min: None,
                        message: None,
                    }),
                    ..RawItem::default()
                });
            }
        }
        (rest, approvals)
    }

    /// `- T-24h: email the customers` in a communication plan → timed
    /// `notify` items, placed in the phase running at that time. Returns
    /// the other pieces.
    fn notifies_from(&mut self, pieces: Vec<Piece<'d>>) -> Vec<Piece<'d>> {
        let mut rest = Vec::new();
        for p in pieces {
            let (Piece::Plain(i) | Piece::Step(i)) = p else {
                rest.push(p);
                continue;
            };
            let it = self.item(i);
            let at = it
                .text
                .label
                .as_deref()
                .and_then(offsets::recognise)
                .filter(|_| !it.text.value.is_empty());
            let Some(at) = at else {
                rest.push(p);
                continue;
            };
            self.kept[i] = true;
            let message = it.text.value.clone();
            self.note(
                it.line,
                NoteKind::Recognised,
                format!("announcement at {at} drafted as a `notify` item"),
            );
            let item = RawItem {
                id: Spanned::new(self.id(&format!("notify {message}"))),
                title: Some(Spanned::new(format!("{at}: {message}"))),
                review: Some(true),
                notify: Some(RawNotify {
                    channel: Spanned::new("announcements".into()),
                    message,
                    ..RawNotify::default()
                }),
                ..RawItem::default()
            };
            self.notifies.push((at, item));
        }
        rest
    }

    /// A checkbox item that asks for an approval without a signature line
    /// (`Legal approval of the new privacy copy`) → an approval by that role.
    /// A step table (`| # | Time | Step | Owner | Command |`): one item per
    /// row, its command a run (or check), its owner a role; the other
    /// columns stay in the item's description. `None` when the table has no
    /// step column.
    fn table_steps(&mut self, lines: &[Line], tags: &[String]) -> Option<Vec<RawItem>> {
        let cols = step_columns(lines)?;
        let (header, rows) = table_rows(lines)?;
        let first = lines.first().map(|l| l.line).unwrap_or(0);
        let mut items = Vec::new();
        for (k, row) in rows.iter().enumerate() {
            let cell = |c: Option<usize>| {
                c.and_then(|c| row.get(c))
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            let Some(title) = cell(Some(cols.step)).map(|t| clean_title(&t)) else {
                continue;
            };
            let line = first + 2 + k;
            let command = cell(cols.command).map(|c| {
                let t = c.trim();
                t.strip_prefix('`')
                    .and_then(|t| t.strip_suffix('`'))
                    .filter(|t| !t.contains('`'))
                    .unwrap_or(t)
                    .to_string()
            });
            let mut item = match &command {
                Some(cmd) => self.command_item(Some(title.clone()), cmd, line, tags),
                None => RawItem {
                    id: Spanned::new(self.id(&title)),
                    title: Some(Spanned::new(title.clone())),
                    tags: tags.to_vec(),
                    task: Some(RawTask {
                        fields: fields(&title, None, &title)
                            .into_iter()
                            .map(Spanned::new)
                            .collect(),
                        ..RawTask::default()
                    }),
                    ..RawItem::default()
                },
            };
            if let Some(who) = cell(cols.owner).filter(|w| !slug(w).is_empty()) {
                item.owner = Some(Spanned::new(self.owner_role(&who)));
            }
            let mut extra: Vec<String> = header
                .iter()
                .enumerate()
                .filter(|(c, _)| {
                    *c != cols.step && Some(*c) != cols.owner && Some(*c) != cols.command
                })
                .filter_map(|(c, h)| {
                    let v = row.get(c)?.trim();
                    (!v.is_empty()).then(|| {
                        if h.is_empty() {
                            v.to_string()
                        } else {
                            format!("{h}: {v}")
                        }
                    })
                })
                .collect();
            if let Some(d) = item.description.take() {
                extra.push(d);
            }
            if !extra.is_empty() {
                item.description = Some(extra.join("\n"));
            }
            self.note(
                line,
                NoteKind::Recognised,
                format!("step table row “{title}” taken as a step"),
            );
            items.push(item);
        }
        Some(items)
    }

    fn named_approval_item(&mut self, i: usize, tags: &[String]) -> RawItem {
        self.kept[i] = true;
        let it = self.item(i);
        let who = named_approval(&it.text.text).unwrap_or_else(|| "approver".into());
        let role = role_name(&who);
        self.approval_roles.push((role.clone(), who.clone()));
        let title = clean_title(&it.text.text);
        self.note(
            it.line,
            NoteKind::Recognised,
            format!("“{title}” drafted as an approval by role `{role}`"),
        );
        RawItem {
            id: Spanned::new(self.id(&title)),
            title: Some(Spanned::new(title)),
            tags: tags.to_vec(),
            review: Some(true),
            approval: Some(RawApproval {
                roles: vec![Spanned::new(role)],
                min: None,
                message: None,
            }),
            ..RawItem::default()
        }
    }

    /// Items of a section that move traffic in steps (`5% of users`, …,
    /// `100% of users`): the index of the first and (piece index, weight)
    /// of each. At least two steps, rising.
    fn ramp(&self, pieces: &[Piece<'d>]) -> Option<(usize, Vec<(usize, u32)>)> {
        let mut steps: Vec<(usize, u32)> = Vec::new();
        for (k, p) in pieces.iter().enumerate() {
            let (Piece::Step(i) | Piece::Plain(i)) = p else {
                continue;
            };
            let it = self.item(*i);
            if !it.children.is_empty() || !it.code.is_empty() {
                continue;
            }
            if let Some(w) = traffic_step(&it.text.text) {
                steps.push((k, w));
            }
        }
        let rising = steps.windows(2).all(|w| w[0].1 < w[1].1);
        (steps.len() >= 2 && rising).then(|| (steps[0].0, steps))
    }

    /// A canary `rollout` skeleton from traffic steps, marked for review:
    /// the traffic actuator and the analysis are guesses to wire up.
    fn rollout(&mut self, s: usize, pieces: &[Piece<'d>], steps: &[(usize, u32)]) -> RawItem {
        let items: Vec<(usize, u32)> = steps
            .iter()
            .filter_map(|(k, w)| match pieces.get(*k) {
                Some(Piece::Step(i) | Piece::Plain(i)) => Some((*i, *w)),
                _ => None,
            })
            .collect();
        let text: Vec<&str> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Para(l) => Some(l.text.as_str()),
                _ => None,
            })
            .collect();
        let heading = self.heading(s).unwrap_or_default();
        self.rollout_of(&items, &text, &heading)
    }

    /// Nested traffic steps (`- [ ] Ramp the canary` over `- [ ] 5%`, `- [ ]
    /// 25%`, …): the weights, when every child is one, rising.
    fn nested_ramp(&self, i: usize) -> Option<Vec<(usize, u32)>> {
        let it = self.item(i);
        let steps: Vec<(usize, u32)> = it
            .children
            .iter()
            .map(|&c| {
                let child = self.item(c);
                (child.children.is_empty() && child.code.is_empty())
                    .then(|| traffic_step(&child.text.text).map(|w| (c, w)))
                    .flatten()
            })
            .collect::<Option<_>>()?;
        (steps.len() >= 2 && steps.windows(2).all(|w| w[0].1 < w[1].1)).then_some(steps)
    }

    /// The rollout skeleton from the list items `steps` (item, weight) and
    /// the text around them; `source` names where they were written.
    fn rollout_of(&mut self, steps: &[(usize, u32)], text: &[&str], source: &str) -> RawItem {
        let mut lines = Vec::new();
        for (i, _) in steps {
            self.kept[*i] = true;
            lines.push(format!("- {}", clean_title(&self.item(*i).text.text)));
        }
        let pause = text.iter().find_map(|t| hold_for(t));
        let key = self
            .flag_keys
            .iter()
            .rev()
            .find(|k| text.iter().any(|t| t.contains(k.as_str())))
            .or(self.flag_keys.last())
            .cloned();
        let traffic = match &key {
            Some(k) => RawTraffic {
                flag: Some(RawFlagTraffic {
                    key: Spanned::new(k.clone()),
                }),
                ..RawTraffic::default()
            },
            None => RawTraffic {
                command: Some(Spanned::new(
                    "echo \"TODO: send $GOLIVE_WEIGHT% of traffic to the new version\" >&2; exit 1"
                        .into(),
                )),
                ..RawTraffic::default()
            },
        };
        let weights: Vec<String> = steps.iter().map(|(_, w)| format!("{w}%")).collect();
        let title = format!("Canary rollout {}", weights.join(" → "));
        let line = steps.first().map(|(i, _)| self.item(*i).line).unwrap_or(0);
        self.note(
            line,
            NoteKind::Recognised,
            format!(
                "traffic steps {} drafted as a canary rollout skeleton (traffic: {}, analysis: a default error-rate rule); review it",
                weights.join(", "),
                key.as_deref().map(|k| format!("flag `{k}`")).unwrap_or_else(|| "a command to write".into())
            ),
        );
        RawItem {
            id: Spanned::new(self.id("canary rollout")),
            title: Some(Spanned::new(title)),
            description: Some(format!(
                "Drafted from the traffic steps of “{source}”:\n{}\n{}\nWire `traffic` to how traffic really moves and `analysis` to real metrics.",
                lines.join("\n"),
                text.join("\n")
            )),
            review: Some(true),
            rollout: Some(RawRollout {
                strategy: Spanned::new(Strategy::Canary),
                steps: steps
                    .iter()
                    .map(|(_, w)| RawStep {
                        weight: Spanned::new(*w),
                        pause: (*w < 100).then(|| Spanned::new(pause.clone().unwrap_or_else(|| "manual".into()))),
                        ..RawStep::default()
                    })
                    .collect(),
                traffic,
                analysis: Some(RawAnalysis {
                    prometheus: Some(Spanned::new("http://127.0.0.1:9090".into())),
                    metrics: vec![RawMetric {
                        name: Spanned::new("error_rate".into()),
                        query: Some(Spanned::new(
                            "sum(rate(http_requests_total{code=~\"5..\",version=\"{{version}}\"}[1m])) / sum(rate(http_requests_total{version=\"{{version}}\"}[1m]))".into(),
                        )),
                        expr: None,
                    }],
                    rules: vec![Spanned::new("error_rate > 5% for 2m".into())],
                    ..RawAnalysis::default()
                }),
                keep_previous: None,
            }),
            ..RawItem::default()
        }
    }

    /// Rollback levels apply to every rollout, so each drafted rollout's
    /// analysis declares the metrics the levels read: a placeholder query
    /// (a selector named after the metric) for the reviewer to wire up.
    fn level_metrics_in_rollouts(&mut self, drafts: &mut [PhaseDraft]) {
        let mut wanted: Vec<String> = Vec::new();
        for level in &self.levels {
            for when in &level.when {
                let Ok(rule) = crate::rule::Rule::parse(&when.value) else {
                    continue;
                };
                for (_, name) in rule.metrics() {
                    if !wanted.iter().any(|w| w == name) {
                        wanted.push(name.to_string());
                    }
                }
            }
        }
        for d in drafts.iter_mut() {
            for item in &mut d.items {
                let Some(analysis) = item.rollout.as_mut().and_then(|r| r.analysis.as_mut()) else {
                    continue;
                };
                let mut added = Vec::new();
                for name in &wanted {
                    if analysis.metrics.iter().any(|m| m.name.value == *name) {
                        continue;
                    }
                    analysis.metrics.push(RawMetric {
                        name: Spanned::new(name.clone()),
                        query: Some(Spanned::new(format!(
                            "{name}{{version=\"{{{{version}}}}\"}}"
                        ))),
                        expr: None,
                    });
                    added.push(format!("`{name}`"));
                }
                if !added.is_empty() {
                    self.note(
                        d.line,
                        NoteKind::Recognised,
                        format!(
                            "the rollback levels read {}: declared in the drafted rollout's analysis with placeholder queries to wire to real metrics",
                            added.join(", ")
                        ),
                    );
                }
            }
        }
    }

    /// `- **Level 1**: On-call engineer (15 minutes)` → escalation rules.
    /// True when every list item was read.
    fn escalation_from(&mut self, pieces: &[Piece<'d>]) -> bool {
        let mut rules = Vec::new();
        for p in pieces {
            let Piece::Plain(i) = p else { continue };
            let it = self.item(*i);
            let Some((who, after)) = parse_escalation(&it.text) else {
                return false;
            };
            let name = match &it.text.label {
                Some(l) => format!("{l}: {who}"),
                None => who.clone(),
            };
            rules.push((
                it.line,
                RawEscalation {
                    name: Some(name),
                    after: Spanned::new(after),
                    notify: Spanned::new("oncall".into()),
                    to: Some(Spanned::new(who)),
                },
            ));
        }
        if rules.is_empty() {
            return false;
        }
        for (line, r) in rules {
            let msg = format!(
                "escalation “{}” after {}",
                r.name.as_deref().unwrap_or(""),
                r.after.value
            );
            self.note(line, NoteKind::Recognised, msg);
            self.escalation.push(r);
        }
        true
    }

    /// Plain items `**Role**: someone@example.com` → roles with members.
    /// Returns the pieces that were not contacts.
    fn contacts_from(&mut self, s: usize, pieces: Vec<Piece<'d>>) -> Vec<Piece<'d>> {
        let group = self.heading(s);
        let mut rest = Vec::new();
        for p in pieces {
            let text = match p {
                Piece::Plain(i) => Some(&self.item(i).text),
                Piece::Para(l) => Some(l),
                _ => None,
            };
            if let Some(text) = text
                && let Some((label, members)) = contact(text)
            {
                let key = slug(&label);
                let line = text.line;
                let role = self.roles.entry(key.clone()).or_default();
                for member in &members {
                    if !role.members.iter().any(|m| &m.value == member) {
                        role.members.push(Spanned::new(member.clone()));
                    }
                }
                if role.description.is_none() {
                    role.description = Some(match &group {
                        Some(g) => format!("{label} ({g})"),
                        None => label.clone(),
                    });
                }
                self.note(
                    line,
                    NoteKind::Recognised,
                    format!("role `{key}` with member(s) {}", members.join(", ")),
                );
                continue;
            }
            rest.push(p);
        }
        rest
    }

    /// Commands that undo the release (`helm rollback`, `rollback_to_v1.sh`)
    /// found in forward phases move to the rollback: run forward, they would
    /// undo the go-live they are part of.
    fn undo_to_rollback(&mut self, drafts: &mut [PhaseDraft]) {
        for d in drafts.iter_mut() {
            let (undo, keep): (Vec<RawItem>, Vec<RawItem>) =
                std::mem::take(&mut d.items).into_iter().partition(|it| {
                    let cmd = it
                        .run
                        .as_ref()
                        .map(|r| r.command.value.as_str())
                        .or_else(|| {
                            it.check
                                .as_ref()
                                .and_then(|c| c.command.as_ref())
                                .map(|c| c.command.value.as_str())
                        });
                    cmd.is_some_and(probe::is_undo_command)
                        || cmd.is_some()
                            && it
                                .title
                                .as_ref()
                                .is_some_and(|t| conditional_action(&t.value).is_some())
                });
            d.items = keep;
            for mut it in undo {
                let title = it
                    .title
                    .as_ref()
                    .map(|t| t.value.clone())
                    .unwrap_or_default();
                if let Some(when) = conditional_action(&title) {
                    self.note(
                        d.line,
                        NoteKind::Recognised,
                        format!(
                            "`{}` runs only “if …”: moved from “{}” to the rollback{}",
                            it.id.value,
                            d.title,
                            if when.is_empty() {
                                String::new()
                            } else {
                                format!(", its condition drafted as a level: {}", when.join(", "))
                            }
                        ),
                    );
                    if !when.is_empty() {
                        self.criteria_level(format!("{}: criteria", d.title), when);
                    }
                    it.review = Some(true);
                    self.rollback_items.push((it, "rollback".into()));
                    continue;
                }
                self.note(
                    d.line,
                    NoteKind::Recognised,
                    format!(
                        "`{}` undoes the release: moved from “{}” to the rollback",
                        it.id.value, d.title
                    ),
                );
                it.review = Some(true);
                self.rollback_items.push((it, "rollback".into()));
            }
        }
    }

    /// Sign-off phases written after the go-live (a sign-off block at the
    /// end of the document) move before the first phase that changes
    /// production: a sign-off is asked for before going live.
    fn signoffs_first(&mut self, drafts: &mut Vec<PhaseDraft>) {
        let at_go = |d: &PhaseDraft| {
            d.at.as_deref()
                .and_then(|a| TOffset::parse(a).ok())
                .is_some_and(|t| t.0 >= 0)
        };
        let changes = |d: &PhaseDraft| {
            d.items
                .iter()
                .any(|i| i.run.is_some() || i.flag.is_some() || i.rollout.is_some())
        };
        // The go-live: the first phase at T+0 or later, or one that changes
        // production (a flag, a rollout, a command) before that, once the
        // document has reached T-0 or says nothing of time, or right before
        // the first phase after T-0 (`Preparation (D-1)`, `Cut-over`,
        // `Verification (T+30m)`: the untimed cut-over is T-0).
        let first_at = drafts.iter().position(at_go);
        let timed = drafts.iter().any(|d| d.at.is_some());
        let first_change = drafts.iter().enumerate().position(|(k, d)| {
            changes(d)
                && (!timed
                    || d.at.is_none()
                        && (drafts[..k].iter().all(|e| e.at.is_none() || at_go(e))
                            || drafts.get(k + 1).is_some_and(at_go)))
        });
        let Some(go) = [first_at, first_change].into_iter().flatten().min() else {
            return;
        };
        let mut k = go + 1;
        let mut moved = 0;
        while k < drafts.len() {
            let d = &drafts[k];
            let signoff = d.at.is_none()
                && !d.items.is_empty()
                && d.items.iter().all(|i| i.approval.is_some());
            if signoff {
                let d = drafts.remove(k);
                self.note(
                    d.line,
                    NoteKind::Recognised,
                    format!(
                        "sign-off “{}” moved before “{}”: approvals are given before going live",
                        d.title,
                        drafts[go + moved].title
                    ),
                );
                drafts.insert(go + moved, d);
                moved += 1;
            }
            k += 1;
        }
    }

    /// Timed announcements go to the last phase that starts at or before
    /// their time (the first phase when none does).
    fn place_notifies(&mut self, drafts: &mut Vec<PhaseDraft>) {
        if drafts.is_empty() && !self.notifies.is_empty() {
            drafts.push(PhaseDraft {
                title: "Communication".into(),
                ..PhaseDraft::default()
            });
        }
        for (at, item) in std::mem::take(&mut self.notifies) {
            self.announces = true;
            let t = TOffset::parse(&at).ok();
            let target = drafts
                .iter()
                .rposition(|d| {
                    let dt = d.at.as_deref().and_then(|a| TOffset::parse(a).ok());
                    matches!((dt, t), (Some(dt), Some(t)) if dt <= t)
                })
                .unwrap_or(0);
            if let Some(d) = drafts.get_mut(target) {
                d.items.push(item);
            }
        }
    }

    /// Content-only sections that follow one another under the same parent
    /// become one phase; steps after a bare `---` continue the phase before.
    fn group(&mut self, units: Vec<Unit>) -> Vec<PhaseDraft> {
        let mut phases: Vec<PhaseDraft> = Vec::new();
        let mut pending: Vec<(usize, String, String, RawItem, usize)> = Vec::new();
        let flush = |pending: &mut Vec<(usize, String, String, RawItem, usize)>,
                     phases: &mut Vec<PhaseDraft>| {
            if pending.is_empty() {
                return;
            }
            let title = if pending.len() == 1 || pending[0].1.is_empty() {
                pending[0].2.clone()
            } else {
                pending[0].1.clone()
            };
            let line = pending[0].4;
            phases.push(PhaseDraft {
                title,
                line,
                items: pending.drain(..).map(|p| p.3).collect(),
                ..PhaseDraft::default()
            });
        };
        for u in units {
            match u {
                Unit::Content {
                    group,
                    group_title,
                    own_title,
                    task,
                    line,
                } => {
                    if pending.last().is_some_and(|p| p.0 != group) {
                        flush(&mut pending, &mut phases);
                    }
                    pending.push((group, group_title, own_title, *task, line));
                }
                Unit::Phase(p) => {
                    flush(&mut pending, &mut phases);
                    phases.push(p);
                }
                Unit::Continuation(p) => {
                    flush(&mut pending, &mut phases);
                    match phases.last_mut() {
                        Some(last) => {
                            last.items.extend(p.items);
                            last.record.extend(p.record);
                            last.description.extend(p.description);
                        }
                        None => phases.push(PhaseDraft {
                            title: "Checklist".into(),
                            ..p
                        }),
                    }
                }
            }
        }
        flush(&mut pending, &mut phases);
        phases
    }

    fn finish(mut self, drafts: Vec<PhaseDraft>, source_name: &str) -> Built {
        // Roles named by approvals that no contact list filled in.
        for (role, written) in std::mem::take(&mut self.approval_roles) {
            if let Some(r) = self.roles.get(&role)
                && !r.members.is_empty()
            {
                continue;
            }
            // `SRE Approval` and a contact list's `On-call SRE`: the one
            // role with members whose name holds every word of this one.
            let words: Vec<&str> = role.split('-').collect();
            let similar: Vec<(String, Vec<Text>)> = self
                .roles
                .iter()
                .filter(|(k, r)| {
                    **k != role
                        && !r.members.is_empty()
                        && words.iter().all(|w| k.split('-').any(|x| x == *w))
                })
                .map(|(k, r)| (k.clone(), r.members.clone()))
                .collect();
            if let [(from, members)] = similar.as_slice() {
                self.note(
                    0,
                    NoteKind::Plain,
                    format!("role `{role}` takes the members of `{from}`: check that they sign as {written}"),
                );
                self.roles.insert(
                    role.clone(),
                    RawRole {
                        members: members.clone(),
                        description: Some(format!(
                            "{written}. Imported: members taken from `{from}`; check them."
                        )),
                    },
                );
                continue;
            }
            let placeholder = format!("TODO-{role}");
            self.note(
                0,
                NoteKind::Plain,
                format!("role `{role}` has placeholder member `{placeholder}`: replace it with who signs as {written}"),
            );
            self.roles.insert(
                role.clone(),
                RawRole {
                    members: vec![Spanned::new(placeholder.clone())],
                    description: Some(format!(
                        "{written}. Imported: replace `{placeholder}` with the people who sign off for this role."
                    )),
                },
            );
        }

        let mut drafts = drafts;
        self.undo_to_rollback(&mut drafts);
        self.signoffs_first(&mut drafts);
        self.level_metrics_in_rollouts(&mut drafts);
        let mut last_at: Option<TOffset> = None;
        for d in &mut drafts {
            // A period (`Week 1`) starts where the document is at, not before.
            let parsed = d.at.as_deref().and_then(|a| TOffset::parse(a).ok());
            if let (Some(at), Some(prev)) = (parsed, last_at) {
                if d.period && at < prev {
                    let moved = prev.to_string();
                    self.note(
                        d.line,
                        NoteKind::Plain,
                        format!(
                            "“{}” starts at {at}, before the phase before it: placed at {moved}",
                            d.title
                        ),
                    );
                    d.at = Some(moved);
                } else {
                    last_at = Some(at);
                }
            } else if parsed.is_some() {
                last_at = parsed;
            }
        }
        self.place_notifies(&mut drafts);
        let mut phase_ids = HashSet::new();
        let mut phase_next = HashMap::new();
        let mut phases = Vec::new();
        for mut d in drafts {
            if d.title.trim().is_empty() {
                d.title = "Checklist".into();
            }
            let derived = slug(d.title.trim());
            // `Verify (T+15m)` would slug to `verify-t-15m`: say the sign.
            let plus = d.title.contains("+0")
                || d.title.contains('+') && short_id(&d.title).contains("plus");
            let id = if !plus && phase_ids.insert(derived) {
                None
            } else {
                Some(unique(&mut phase_ids, &mut phase_next, short_id(&d.title)))
            };
            let msg = match &d.at {
                Some(at) => format!("phase “{}” at {at}, {} item(s)", d.title, d.items.len()),
                None => format!("phase “{}”, {} item(s)", d.title, d.items.len()),
            };
            self.note(d.line, NoteKind::Recognised, msg);
            dedup(&mut d.record);
            phases.push(Deferred::Value(RawPhase {
                id: id.map(Spanned::new),
                title: Spanned::new(d.title),
                at: d.at.map(Spanned::new),
                description: (!d.description.is_empty()).then(|| d.description.join("\n")),
                on_failure: None,
                gate: None,
                record: d.record.into_iter().map(Spanned::new).collect(),
                items: d.items.into_iter().map(Deferred::Value).collect(),
            }));
        }
        if phases.is_empty() {
            self.note(
                0,
                NoteKind::Plain,
                "no checklist items found: the plan has one empty phase to fill in",
            );
            phases.push(Deferred::Value(RawPhase {
                title: Spanned::new("Checklist".into()),
                description: Some(format!("Nothing runnable was found in {source_name}.")),
                ..RawPhase::default()
            }));
        }

        let procedures: BTreeSet<String> = self
            .rollback_items
            .iter()
            .map(|(_, t)| t.clone())
            .filter(|t| !t.is_empty())
            .collect();
        let tag_them = procedures.len() > 1;
        if tag_them {
            let list: Vec<&str> = procedures.iter().map(String::as_str).collect();
            self.note(
                0,
                NoteKind::Plain,
                format!(
                    "rollback items of {} procedures ({}) are run in document order, tagged by procedure and marked for review",
                    list.len(),
                    list.join(", ")
                ),
            );
        }
        // Sibling procedures ("Emergency Rollback", "Controlled Rollback"):
        // one task first asks which one to follow.
        let mut by_parent: BTreeMap<usize, Vec<(String, String)>> = BTreeMap::new();
        for (parent, tag, title) in std::mem::take(&mut self.procedures) {
            if self.rollback_items.iter().any(|(_, t)| *t == tag) {
                by_parent.entry(parent).or_default().push((tag, title));
            }
        }
        for (_, alternatives) in by_parent.into_iter().filter(|(_, a)| a.len() > 1) {
            let Some(first) = self
                .rollback_items
                .iter()
                .position(|(_, t)| alternatives.iter().any(|(a, _)| a == t))
            else {
                continue;
            };
            let titles: Vec<&str> = alternatives.iter().map(|(_, t)| t.as_str()).collect();
            let tags: Vec<String> = alternatives.iter().map(|(t, _)| format!("`{t}`")).collect();
            self.note(
                0,
                NoteKind::Recognised,
                format!(
                    "rollback procedures {} are alternatives: one task asks which to follow",
                    titles.join(", ")
                ),
            );
            let title = format!("Choose the rollback procedure: {}", titles.join(" or "));
            let choose = RawItem {
                id: Spanned::new(self.id("choose rollback procedure")),
                title: Some(Spanned::new(title)),
                review: Some(true),
                task: Some(RawTask {
                    instructions: Some(format!(
                        "The checklist gives {} alternative procedures. Follow the items of the one that fits (tagged {}) and skip the others (`golive confirm RUN ITEM --skip --reason …`).",
                        titles.len(),
                        tags.join(", ")
                    )),
                    ..RawTask::default()
                }),
                ..RawItem::default()
            };
            self.rollback_items.insert(first, (choose, String::new()));
        }
        let rollback_items: Vec<Deferred<RawItem>> = std::mem::take(&mut self.rollback_items)
            .into_iter()
            .map(|(mut item, tag)| {
                if tag_them && !tag.is_empty() && !item.tags.contains(&tag) {
                    item.tags.push(tag);
                    item.review = Some(true);
                }
                Deferred::Value(item)
            })
            .collect();
        let rollback = (!rollback_items.is_empty() || !self.levels.is_empty()).then(|| {
            Deferred::Value(RawRollback {
                items: rollback_items,
                levels: std::mem::take(&mut self.levels)
                    .into_iter()
                    .map(Deferred::Value)
                    .collect(),
            })
        });

        if !self.vars.is_empty() {
            let list: Vec<String> = self.vars.iter().map(|v| format!("${{{v}}}")).collect();
            self.note(
                0,
                NoteKind::Plain,
                format!(
                    "commands use {}: golive requires each to be defined (export it, pass `--var`, or declare it under `variables:`)",
                    list.join(", ")
                ),
            );
        }
        let mut channels = BTreeMap::new();
        // Drafted channels only log, and say so.
        let mut log_channel = |name: &str, message: &str, notes: &mut Vec<Note>| {
            channels.insert(
                name.to_string(),
                Deferred::Value(RawChannel {
                    log: Some(true),
                    ..RawChannel::default()
                }),
            );
            notes.push(Note {
                line: 0,
                kind: NoteKind::Plain,
                message: message.into(),
            });
        };
        if self.announces {
            log_channel(
                "announcements",
                "announcements notify channel `announcements`, which only logs; point it at Slack or a webhook",
                &mut self.notes,
            );
        }
        let monitor = (!self.escalation.is_empty()).then(|| {
            log_channel(
                "oncall",
                "escalation notifies channel `oncall`, which only logs; point it at Slack or PagerDuty. The watch window is set to 24h: check it.",
                &mut self.notes,
            );
            Deferred::Value(RawMonitor {
                window: Spanned::new("24h".into()),
                checks: Vec::new(),
                interval: None,
                cadence: Vec::new(),
                escalation: std::mem::take(&mut self.escalation),
                ..RawMonitor::default()
            })
        });

        let named_by = self
            .name_hint
            .as_deref()
            .or(self.doc.title.as_ref().map(|t| t.text.as_str()))
            .filter(|t| !t.is_empty());
        let name = plan_name(named_by, source_name);
        let line = self.doc.title.as_ref().map(|t| t.line).unwrap_or(0);
        let from = match named_by {
            Some(t) if plan_name(Some(t), "") == name => format!("from “{t}”"),
            Some(t) => format!("from the file name (“{t}” names nothing specific)"),
            None => "from the file name".into(),
        };
        self.note(
            line,
            NoteKind::Recognised,
            format!("plan name `{name}` {from}"),
        );
        dedup(&mut self.record);
        let kept = self
            .doc
            .items
            .iter()
            .zip(&self.kept)
            .filter(|(it, k)| it.checkbox.is_some() && **k)
            .count();
        let plan = RawPlan {
            name: Spanned::new(name),
            version: self.version.map(Spanned::new),
            environment: self.environment.map(Spanned::new),
            owner: self.owner.map(Spanned::new),
            description: (!self.description.is_empty()).then(|| self.description.join("\n\n")),
            t0: self.t0.map(Spanned::new),
            roles: self
                .roles
                .into_iter()
                .map(|(k, v)| (k, Deferred::Value(v)))
                .collect(),
            variables: BTreeMap::new(),
            secrets: BTreeMap::new(),
            channels,
            record: self.record.into_iter().map(Spanned::new).collect(),
            phases,
            rollback,
            monitor,
            comms: Vec::new(),
        };
        let mut notes = self.notes;
        notes.sort_by_key(|n| n.line);
        Built { plan, notes, kept }
    }
}

fn first_line(doc: &Doc, pieces: &[Piece<'_>]) -> usize {
    match pieces.first() {
        Some(Piece::Step(i) | Piece::Plain(i)) => doc.items[*i].line,
        Some(Piece::Para(l)) => l.line,
        Some(Piece::Code(c)) => c.line,
        Some(Piece::Table(ls)) => ls.first().map(|l| l.line).unwrap_or(0),
        None => 0,
    }
}

/// Adds the items, record and description of `d` to the draft `main`.
fn merge(main: &mut Option<PhaseDraft>, d: PhaseDraft) {
    match main {
        Some(m) => {
            m.items.extend(d.items);
            m.record.extend(d.record);
            m.description.extend(d.description);
        }
        None => *main = Some(d),
    }
}

/// Paragraph lines that are a pipe table: a header row and a `|---|` row.
fn is_table(lines: &[Line]) -> bool {
    lines.len() >= 2
        && lines[0].text.starts_with('|')
        && lines[1].text.starts_with('|')
        && lines[1]
            .text
            .chars()
            .all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// A pipe table's header cells and rows of cells.
fn table_rows(lines: &[Line]) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let cells = |l: &Line| -> Vec<String> {
        let t = l.text.trim();
        let t = t.strip_prefix('|').unwrap_or(t);
        let t = t.strip_suffix('|').unwrap_or(t);
        t.split('|').map(collapse).collect()
    };
    let header = cells(lines.first()?);
    let rows = lines.iter().skip(2).map(cells).collect();
    Some((header, rows))
}

/// Columns of a step table.
struct StepColumns {
    step: usize,
    owner: Option<usize>,
    command: Option<usize>,
}

/// The columns of a table of steps: one saying what to do (`Step`,
/// `Action`, `Task`; not a column of step numbers), and optionally who and
/// which command. `None` for other tables (roles, schedules, metrics).
fn step_columns(lines: &[Line]) -> Option<StepColumns> {
    let (header, rows) = table_rows(lines)?;
    if rows.is_empty() {
        return None;
    }
    let lower: Vec<String> = header.iter().map(|h| h.to_lowercase()).collect();
    let numbers_only = |c: usize| {
        rows.iter().all(|r| {
            r.get(c).is_none_or(|v| {
                v.chars()
                    .all(|ch| ch.is_ascii_digit() || ".#) ".contains(ch))
            })
        })
    };
    let find = |names: &[&str]| {
        lower
            .iter()
            .enumerate()
            .find(|(c, h)| names.contains(&h.as_str()) && !numbers_only(*c))
            .map(|(c, _)| c)
    };
    let step = find(&["action", "task", "activity", "what", "description"])
        .or_else(|| find(&["step", "steps"]))?;
    let owner = lower
        .iter()
        .position(|h| ["owner", "who", "responsible", "assignee", "by"].contains(&h.as_str()));
    let command = lower
        .iter()
        .position(|h| h.contains("command") || h == "cmd" || h == "script");
    Some(StepColumns {
        step,
        owner,
        command,
    })
}

/// Section titles of reference text, not steps: their plain lists stay text.
fn is_informational(own: &str) -> bool {
    [
        "timeline",
        "schedule",
        "contact",
        "reference",
        "resource",
        "note",
        "overview",
        "link",
        "appendix",
        "glossary",
        "escalation",
        "risk",
        "metric",
        "kpi",
        "assumption",
        "dependenc",
        "scope",
        "goal",
        "objective",
        "background",
        "team",
        "communicat",
    ]
    .iter()
    .any(|w| own.contains(w))
}

/// `Table of Contents`, `Contents`, `TOC`.
fn is_contents(own: &str) -> bool {
    let t = own.trim();
    t.contains("table of contents") || t == "contents" || t == "toc" || t == "index"
}

fn is_signoff_title(own: &str) -> bool {
    let t = own.replace(' ', "");
    ["sign-off", "sign off", "signoff", "approval", "signature"]
        .iter()
        .any(|w| own.contains(w))
        || ["go/no-go", "go-no-go", "go/nogo", "gono-go"]
            .iter()
            .any(|w| t.contains(w))
}

/// `Level 2: Major Issues (Prepare Rollback)`, `Critical (Rollback Now)`.
fn is_level_heading(own: &str) -> bool {
    let t = own.replace('\u{2019}', "'");
    let level = t
        .split_once("level")
        .is_some_and(|(_, rest)| rest.trim_start().starts_with(|c: char| c.is_ascii_digit()));
    level
        || [
            "don't roll",
            "do not roll",
            "no rollback",
            "prepare rollback",
            "prepare to roll",
            "rollback now",
            "roll back now",
            "rollback immediately",
        ]
        .iter()
        .any(|w| t.contains(w))
}

/// What golive does at a decision-tree level, from its heading.
fn level_action(own: &str) -> Action {
    let t = own.replace('\u{2019}', "'");
    if [
        "don't roll",
        "do not roll",
        "no rollback",
        "monitor only",
        "fix forward",
    ]
    .iter()
    .any(|w| t.contains(w))
    {
        Action::Continue
    } else if ["prepare", "standby", "get ready", "pause", "hold"]
        .iter()
        .any(|w| t.contains(w))
    {
        Action::Pause
    } else {
        Action::Rollback
    }
}

/// A line that is only a label for what follows: `**Technical Lead:**`,
/// `**Rollback Procedure**`, `Symptoms:`. Returns the label.
fn label_only(l: &Line) -> Option<String> {
    if has_blank(&l.text) || !l.codes.is_empty() {
        return None;
    }
    let t = l.text.trim();
    let bare = t.trim_end_matches(':').trim();
    if bare.is_empty() || bare.len() > 60 {
        return None;
    }
    // A bold sentence is emphasis, not a label: labels are a few words.
    let whole_bold = bare.split_whitespace().count() <= 6
        && l.lead
            .as_deref()
            .is_some_and(|lead| lead.trim_end_matches(':').trim() == bare);
    let short = t.ends_with(':') && bare.split_whitespace().count() <= 4;
    (whole_bold || short).then(|| bare.to_string())
}

/// A label naming who does something (`Technical Lead`, `SRE On-call`).
fn is_role_label(lower: &str) -> bool {
    [
        "lead",
        "manager",
        "owner",
        "engineer",
        "on-call",
        "oncall",
        "captain",
        "sre",
        "dba",
        "admin",
        "officer",
        "director",
        "developer",
        "architect",
        "analyst",
        "support",
    ]
    .iter()
    .any(|w| {
        lower
            .split(|c: char| !c.is_alphanumeric() && c != '-')
            .any(|x| x == *w)
    })
}

/// A checkbox item that is only a labelled blank (`**Date/Time**: ____`):
/// a value to record, not a step.
fn record_only(it: &ListItem) -> bool {
    it.text.label.is_some()
        && has_blank(&it.text.value)
        && it
            .text
            .value
            .trim_matches(|c: char| c == '_' || c.is_whitespace())
            .is_empty()
        && it.children.is_empty()
        && it.code.is_empty()
        && it.paras.is_empty()
}

/// Labels that name a value to write down rather than someone who signs.
fn is_record_label(label: &str) -> bool {
    let l = label.to_lowercase();
    [
        "date",
        "time",
        "signature",
        "comment",
        "note",
        "ticket",
        "version",
        "build",
        "link",
        "url",
        "number",
        "name",
    ]
    .iter()
    .any(|w| l.split(|c: char| !c.is_alphanumeric()).any(|x| x == *w))
}

/// `Legal approval of the new privacy copy` → `Legal`; `Security review
/// sign-off received from AppSec` → `AppSec`. `None` when the item asks for
/// no approval, or names nobody.
fn named_approval(t: &str) -> Option<String> {
    let lower = t.to_ascii_lowercase();
    if has_blank(t) || lower.contains("approved by") || lower.contains("signed by") {
        return None;
    }
    let at = ["sign-off", "sign off", "signoff", "approval"]
        .iter()
        .filter_map(|k| lower.find(k))
        .min()?;
    let pick = |s: &str| -> Option<String> {
        let words: Vec<&str> = s
            .split(|c: char| c.is_whitespace() || ",.;()".contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        let w = collapse(&words.join(" "));
        (!w.is_empty()).then_some(w)
    };
    if let Some(from) = lower.find(" from ") {
        let rest = &t[from + 6..];
        let end = rest.find([',', ';', '(', '.']).unwrap_or(rest.len());
        let who: Vec<&str> = rest[..end].split_whitespace().take(3).collect();
        if let Some(w) = pick(&who.join(" ")) {
            return Some(w);
        }
    }
    let before: Vec<&str> = t[..at].split_whitespace().collect();
    let keep = before.len().saturating_sub(3);
    let who = strip_role_suffix(&before[keep..].join(" "));
    let who = ["all", "final", "formal", "written", "obtain", "get", "the"]
        .iter()
        .fold(who, |w, x| {
            w.strip_prefix(&format!("{x} "))
                .map(str::to_string)
                .unwrap_or(w)
        });
    if ["all", "final", "the", ""].contains(&who.to_lowercase().as_str()) {
        return None;
    }
    pick(&who)
}

/// `…, or if that fails the manual fallback:`: a line offering an alternative.
fn is_alternative(t: &str) -> bool {
    let l = t.to_lowercase();
    [
        "if that fails",
        "if this fails",
        "if it fails",
        "fallback",
        "fall back",
        "alternatively",
        "otherwise",
    ]
    .iter()
    .any(|w| l.contains(w))
}

/// `5% of users`, `Ramp to 25%`, `100%`: the weight of a traffic step.
fn traffic_step(t: &str) -> Option<u32> {
    let lower = t.to_lowercase();
    let pos = lower.find('%')?;
    let head = &lower[..pos];
    // The byte after the last non-digit (which may be several bytes long).
    let start = head
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_ascii_digit())
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let n: u32 = head[start..].parse().ok()?;
    let before = head[..start].trim();
    let step_words = [
        "to", "at", "ramp", "canary", "shift", "raise", "increase", "rollout", "step",
    ];
    let ok = before.is_empty()
        || step_words.iter().any(|w| before.ends_with(w))
        || before.ends_with(':');
    let after = &lower[pos + 1..];
    let ok = ok
        && (after.trim().is_empty()
            || ["of", "traffic", "user", "rollout", "canary"]
                .iter()
                .any(|w| after.trim_start().starts_with(w)));
    (ok && n <= 100).then_some(n)
}

/// `holding each for at least 30 minutes` → `30m`.
fn hold_for(t: &str) -> Option<String> {
    let lower = t.to_lowercase();
    if !["hold", "wait", "each", "bake", "soak", "per step"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return None;
    }
    let words: Vec<&str> = lower.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let n: u64 = w[0].parse().ok()?;
        let unit = w[1].trim_end_matches(|c: char| !c.is_alphanumeric());
        parse_duration(&format!("{n}{unit}"))
            .ok()
            .map(format_duration)
    })
}

/// `stem`, or `stem-2`, `stem-3`, … whichever is not taken yet.
fn unique(taken: &mut HashSet<String>, next: &mut HashMap<String, usize>, stem: String) -> String {
    if taken.insert(stem.clone()) {
        return stem;
    }
    let n = next.entry(stem.clone()).or_insert(2);
    loop {
        let id = format!("{stem}-{n}");
        *n += 1;
        if taken.insert(id.clone()) {
            return id;
        }
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !s.is_empty() && !v.contains(&s) {
        v.push(s);
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

fn mentions_rollback(t: &str) -> bool {
    [
        "rollback",
        "roll back",
        "roll-back",
        "backout",
        "back-out",
        "back out",
        "revert",
        "fail back",
        "failback",
        "fail-back",
        "abort",
    ]
    .iter()
    .any(|w| t.contains(w))
}

/// Rollback criteria written as a sentence (`If the 5xx rate stays above 2%
/// for 10 minutes, or checkout fails from any region, roll back.`): the
/// conditions drafted from its `if` clause, when what the sentence does is a
/// rollback. Empty for any other sentence.
fn prose_triggers(t: &str) -> Vec<String> {
    let lower = t.to_lowercase().replace('`', "");
    let Some(rest) = lower.trim_start().strip_prefix("if ") else {
        // `Roll back if the error rate stays above 2% for 10 minutes.`:
        // only measured criteria, not `Roll back if in doubt`.
        return match conditional_action(t) {
            Some(when) if mentions_rollback(lower.split(" if ").next().unwrap_or("")) => when
                .into_iter()
                .filter(|c| c.contains(['<', '>', '=']))
                .collect(),
            _ => Vec::new(),
        };
    };
    let sentence = rest.split(". ").next().unwrap_or(rest);
    let Some((clause, action)) = sentence.rsplit_once(", ") else {
        return Vec::new();
    };
    if !mentions_rollback(action) {
        return Vec::new();
    }
    conditions_of(clause)
}

/// `Halt the rollout if the crash-free rate drops below 99.5%`: a step
/// whose command runs only when something went wrong. Returns the
/// conditions of its `if` clause (possibly none).
fn conditional_action(title: &str) -> Option<Vec<String>> {
    let lower = title.to_lowercase().replace('`', "");
    let acts = [
        "halt",
        "pause",
        "stop",
        "abort",
        "roll back",
        "rollback",
        "revert",
        "fail back",
    ];
    if !acts.iter().any(|a| lower.starts_with(a)) {
        return None;
    }
    let (_, clause) = lower.split_once(" if ")?;
    let clause = clause.split(". ").next().unwrap_or(clause);
    Some(conditions_of(clause.trim_end_matches(['.', ':'])))
}

/// Conditions drafted from the clause of a criterion sentence, one per
/// `or` part: a threshold where there is one, else a flag to wire up.
fn conditions_of(clause: &str) -> Vec<String> {
    const FILLER: [&str; 9] = [
        "the", "stays", "stay", "remains", "is", "goes", "rises", "drops", "falls",
    ];
    let mut out = Vec::new();
    for part in clause.split(", or ").flat_map(|p| p.split(" or ")) {
        let words: Vec<&str> = part
            .split_whitespace()
            .filter(|w| !FILLER.contains(w))
            .collect();
        let part = words.join(" ");
        if let Some(c) = rules::threshold(&part).or_else(|| rules::flag(&part)) {
            push_unique(&mut out, c);
        }
    }
    out
}

/// `DEPLOYMENT STATUS: [ ] SUCCESS [ ] ROLLBACK REQUIRED` → the field
/// `Deployment Status (Success / Rollback Required)`.
fn inline_choice(l: &Line) -> Option<String> {
    let t = &l.text;
    let markers = ["[ ]", "[x]", "[X]"];
    let first = markers.iter().filter_map(|m| t.find(m)).min()?;
    let label = l
        .label
        .clone()
        .unwrap_or_else(|| t[..first].trim().trim_end_matches(':').trim().to_string());
    let after = &t[first..];
    let mut options = Vec::new();
    let mut rest = after;
    while let Some(pos) = markers.iter().filter_map(|m| rest.find(m)).min() {
        rest = &rest[pos + 3..];
        let end = markers
            .iter()
            .filter_map(|m| rest.find(m))
            .min()
            .unwrap_or(rest.len());
        let opt = collapse(&rest[..end]);
        if !opt.is_empty() {
            options.push(readable(&opt));
        }
        rest = &rest[end..];
    }
    let label = readable(&label);
    match (label.is_empty(), options.is_empty()) {
        (true, true) => None,
        (true, false) => Some(options.join(" / ")),
        (false, true) => Some(label),
        (false, false) => Some(format!("{label} ({})", options.join(" / "))),
    }
}

/// A sign-off line: `**Tech Lead Approval**: ____ (Signature & Date)`.
/// `Lower TTLs 1.1 Set the TTL 1.2 Confirm it` → (`Lower TTLs`, [`1.1 Set
/// the TTL`, `1.2 Confirm it`]): sub-steps numbered `N.M` inside a step's
/// text. `None` without at least one such number after some text.
fn split_substeps(t: &str) -> Option<(String, Vec<String>)> {
    // `N.M` followed by a capitalised word; not a version (`3.2.0`, `to 3.2`).
    let major = |k: usize, words: &[&str]| -> Option<String> {
        let (a, b) = words[k].trim_end_matches(['.', ')']).split_once('.')?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit());
        let next = words.get(k + 1)?;
        (digits(a) && digits(b) && next.starts_with(char::is_uppercase)).then(|| a.to_string())
    };
    let words: Vec<&str> = t.split(' ').collect();
    let starts: Vec<(usize, String)> = (1..words.len())
        .filter_map(|k| major(k, &words).map(|m| (k, m)))
        .collect();
    let (first, m) = starts.first()?.clone();
    if starts.iter().any(|(_, x)| *x != m) {
        return None;
    }
    let mut subs = Vec::new();
    for (n, (k, _)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map(|x| x.0).unwrap_or(words.len());
        subs.push(words[*k..end].join(" "));
    }
    Some((words[..first].join(" "), subs))
}

/// Who signs a sign-off line: its label or bold lead-in, else the text
/// before the colon of a blank (`Edge lead (@mpetrov): ____`).
fn signer(it: &ListItem) -> Option<String> {
    it.text
        .label
        .clone()
        .or_else(|| it.text.lead.clone())
        .or_else(|| {
            let (head, value) = it.text.text.split_once(": ")?;
            (has_blank(value) && !head.contains('`') && head.split_whitespace().count() <= 6)
                .then(|| head.trim().to_string())
        })
}

fn is_signoff(it: &ListItem, signoff_section: bool) -> bool {
    let Some(who) = signer(it) else {
        return false;
    };
    let who = who.as_str();
    if is_record_label(who) && !who.to_lowercase().contains("signature") {
        return false;
    }
    let who = who.to_lowercase();
    let text = it.text.text.to_lowercase();
    if text.contains("signature") {
        return true;
    }
    let names_signoff = ["approval", "sign-off", "sign off", "signoff", "approver"]
        .iter()
        .any(|w| who.ends_with(w));
    has_blank(&it.text.text) && (signoff_section || names_signoff)
}

/// `Nadia Haddad — Release Manager` → (`Nadia Haddad`, `Release Manager`):
/// a person (two to four capitalised words) and the role they sign for.
fn person_role(t: &str) -> Option<(String, String)> {
    let t = clean_title(t);
    let (name, role) = [" \u{2014} ", " \u{2013} ", " - "]
        .iter()
        .find_map(|sep| t.split_once(sep))?;
    let words: Vec<&str> = name.split_whitespace().collect();
    let is_name = (2..=4).contains(&words.len())
        && words.iter().all(|w| {
            w.chars().next().is_some_and(char::is_uppercase)
                && w.chars().all(|c| c.is_alphabetic() || "'.-".contains(c))
        });
    let role = role.trim().trim_end_matches('.');
    let role_words = role.split_whitespace().count();
    (is_name && (1..=6).contains(&role_words) && !has_blank(role))
        .then(|| (name.trim().to_string(), role.to_string()))
}

/// `Re-enable FRA1: `gslb-ctl pool undrain payments`` → (`Re-enable FRA1`,
/// the command): a step whose text ends in one inline command (a lower-case
/// program and arguments, no `<placeholder>` to fill in first).
fn inline_command(l: &Line) -> Option<(String, String)> {
    let code = l.codes.last()?;
    let text = l.text.trim_end();
    let head = text.strip_suffix(&format!("`{code}`"))?.trim_end();
    let head = head.strip_suffix(':')?.trim_end();
    let program = code.split_whitespace().next()?;
    let looks_like_command = code.contains(' ')
        && !code.contains('<')
        && program
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "./_-".contains(c));
    (looks_like_command && !head.is_empty()).then(|| (clean_title(head), code.clone()))
}

/// Who a step's text says owns it: `(Owner: SRE)`, `(owner: @dana)`, or a
/// handle in parentheses at its end (`Switch the record (@hkowalski)`).
fn written_owner(title: &str) -> Option<String> {
    let t = title.trim_end();
    let inner = t.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let inside = inner[open + 1..].trim();
    let lower = inside.to_lowercase();
    let who = ["owner:", "owner -", "owned by"]
        .iter()
        .find_map(|p| lower.strip_prefix(p).and_then(|_| inside.get(p.len()..)))
        .map(str::trim)
        .or_else(|| {
            (inside.starts_with('@') && !inside.contains(char::is_whitespace)).then_some(inside)
        })?;
    (!who.is_empty() && who.split_whitespace().count() <= 4).then(|| who.to_string())
}

/// `Incident commander (@hkowalski)` → (`Incident commander`, `@hkowalski`).
fn split_handle(who: &str) -> (String, Option<String>) {
    let Some(at) = who.char_indices().find_map(|(k, c)| {
        let starts_word = who[..k]
            .chars()
            .next_back()
            .is_none_or(|p| !p.is_alphanumeric());
        (c == '@' && starts_word).then_some(k)
    }) else {
        return (who.to_string(), None);
    };
    let handle: String = who[at..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || "@._-".contains(*c))
        .collect();
    if handle.len() < 2 || is_email(&handle) {
        return (who.to_string(), None);
    }
    let rest = collapse(&who.replacen(&handle, "", 1).replace("()", ""));
    let rest = rest.trim_matches(|c: char| c.is_whitespace() || "(),:".contains(c));
    (rest.to_string(), Some(handle))
}

fn looks_like_approval(t: &str) -> bool {
    let t = t.to_lowercase();
    t.contains("approval")
        || t.contains("approve")
        || t.contains("sign-off")
        || t.contains("sign off")
}

fn strip_role_suffix(who: &str) -> String {
    let mut w = collapse(&who.replace(['_'], " "));
    loop {
        let lower = w.to_ascii_lowercase();
        let Some(cut) = [
            "approval",
            "sign-off",
            "sign off",
            "signoff",
            "signature",
            "review",
            "approver",
        ]
        .iter()
        .find(|s| lower.ends_with(*s) && lower.len() > s.len())
        .map(|s| w.len() - s.len()) else {
            break;
        };
        w = w[..cut].trim_end().to_string();
    }
    w
}

/// `Tech Lead Approval` → `tech-lead`.
fn role_name(who: &str) -> String {
    let s = slug(&strip_role_suffix(who));
    if s == "item" { "approver".into() } else { s }
}

/// `**Project Manager**: pm@pager-system.com` → (`Project Manager`, addresses).
fn contact(l: &Line) -> Option<(String, Vec<String>)> {
    // `T-24h: email customers@…` is an announcement, not a role.
    let label = l
        .label
        .as_ref()
        .filter(|l| offsets::recognise(l).is_none())?;
    let members: Vec<String> = l
        .value
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .map(|w| w.trim_matches(|c: char| "<>()[]`".contains(c)))
        .map(|w| w.trim_start_matches("mailto:"))
        .filter(|w| is_email(w))
        .map(str::to_string)
        .collect();
    (!members.is_empty()).then(|| (label.clone(), members))
}

/// `On-call engineer (15 minutes)` → (`On-call engineer`, `15m`).
fn parse_escalation(l: &Line) -> Option<(String, String)> {
    let v = l.value.trim();
    let open = v.rfind('(')?;
    let inner = v[open + 1..].strip_suffix(')')?.trim();
    let d = parse_duration(inner).ok()?;
    let who = v[..open].trim().to_string();
    (!who.is_empty()).then(|| (who, format_duration(d)))
}

/// `**Health endpoint**: `GET /health` returns 200`: an endpoint with no host.
fn endpoint_without_url(l: &Line) -> Option<String> {
    l.codes.iter().find_map(|c| {
        let mut w = c.split_whitespace();
        let method = w.next()?;
        let path = w.next()?;
        (["GET", "POST", "PUT", "HEAD", "DELETE", "PATCH"].contains(&method)
            && path.starts_with('/'))
        .then(|| format!("`{c}`"))
    })
}

const SHELL_LANGS: [&str; 8] = [
    "bash",
    "sh",
    "shell",
    "zsh",
    "console",
    "shell-session",
    "shellsession",
    "ksh",
];

const SHELL_WORDS: [&str; 47] = [
    "pg_isready",
    "nc",
    "dig",
    "helm",
    "psql",
    "redis-cli",
    "host",
    "docker",
    "kubectl",
    "helm",
    "curl",
    "wget",
    "git",
    "npm",
    "pnpm",
    "yarn",
    "npx",
    "make",
    "cargo",
    "go",
    "python",
    "python3",
    "pip",
    "terraform",
    "ansible",
    "ansible-playbook",
    "ssh",
    "scp",
    "psql",
    "redis-cli",
    "systemctl",
    "sudo",
    "export",
    "cd",
    "ls",
    "cat",
    "echo",
    "aws",
    "gcloud",
    "az",
    "bash",
    "sh",
    "nginx",
    "journalctl",
    "grep",
    "tail",
    "mysql",
];

/// A fenced block meant for the shell: `bash`/`sh`/`shell` (or no language
/// and a first command that looks like one).
fn is_shell(c: &Code) -> bool {
    if SHELL_LANGS.contains(&c.lang.as_str()) {
        return true;
    }
    if !c.lang.is_empty() {
        return false;
    }
    let Some(first) = c
        .text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    let first = first.trim_start_matches("$ ");
    let word = first.split_whitespace().next().unwrap_or("");
    first.starts_with("./") || SHELL_WORDS.contains(&word)
}

/// A shell block's command (without full-line comments and `$ ` prompts)
/// and its comments. In a block with prompts (a terminal session pasted
/// from a `console` block), only prompt lines and their `\` continuations
/// are the command; the other lines are what it printed, kept last among
/// the comments as "Expected output", never run.
fn split_comments(c: &Code) -> (String, Vec<String>) {
    let mut cmd = Vec::new();
    let mut comments = Vec::new();
    let mut output = Vec::new();
    let prompts = c.text.lines().any(|l| {
        let t = l.trim_start();
        t.starts_with("$ ") || t.trim_end() == "$"
    });
    let mut continued = false;
    for l in c.text.lines() {
        let t = l.trim();
        if t.starts_with("#!") {
            continue;
        }
        if !continued && let Some(comment) = t.strip_prefix('#') {
            let comment = comment.trim();
            if !comment.is_empty() {
                comments.push(comment.to_string());
            }
            continue;
        }
        if !prompts {
            cmd.push(l.trim_end());
            continue;
        }
        let lt = l.trim_start();
        let line = if let Some(after) = lt.strip_prefix("$ ") {
            after
        } else if continued {
            l
        } else {
            if !t.is_empty() {
                output.push(t);
            }
            continue;
        };
        continued = line.trim_end().ends_with('\\');
        cmd.push(line.trim_end());
    }
    while cmd.last().is_some_and(|l| l.is_empty()) {
        cmd.pop();
    }
    while cmd.first().is_some_and(|l| l.is_empty()) {
        cmd.remove(0);
    }
    if !output.is_empty() {
        comments.push(format!("Expected output:\n{}", output.join("\n")));
    }
    (cmd.join("\n"), comments)
}

fn comment_title(c: &Code) -> Option<String> {
    c.text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with('#') && !l.starts_with("#!"))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .filter(|l| !l.is_empty())
}

fn code_text(c: &Code) -> String {
    format!("```{}\n{}\n```", c.lang, c.text.trim_end())
}

/// Words of a checklist title that say nothing about what goes live.
const GENERIC: [&str; 14] = [
    "go",
    "live",
    "golive",
    "checklist",
    "check",
    "list",
    "preparation",
    "prep",
    "plan",
    "runbook",
    "the",
    "for",
    "readiness",
    "md",
];

/// Words that are fine in a name but do not make one on their own.
const WEAK: [&str; 7] = [
    "deployment",
    "release",
    "launch",
    "production",
    "migration",
    "rollout",
    "cutover",
];

/// `FlakeGuard Deployment Go-Live Checklist` → `flakeguard-deployment`; a
/// title with nothing specific in it falls back to the file name
/// (`pager-system-go-live.md` → `pager-system`).
fn plan_name(title: Option<&str>, source_name: &str) -> String {
    let from = |text: &str| -> Option<String> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .filter(|w| !GENERIC.contains(&w.as_str()))
            .collect();
        words
            .iter()
            .any(|w| !WEAK.contains(&w.as_str()))
            .then(|| short_id(&words.join("-")))
    };
    let stem = std::path::Path::new(source_name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(source_name);
    title
        .and_then(from)
        .or_else(|| from(stem))
        .or_else(|| Some(slug(stem)).filter(|s| s != "item"))
        .unwrap_or_else(|| "imported-plan".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, lead: Option<&str>) -> Line {
        Line {
            text: text.into(),
            lead: lead.map(str::to_string),
            ..Line::default()
        }
    }

    #[test]
    fn labels_that_own_what_follows() {
        assert_eq!(
            label_only(&line("Technical Lead:", Some("Technical Lead:"))).as_deref(),
            Some("Technical Lead")
        );
        assert_eq!(
            label_only(&line("Rollback Procedure", Some("Rollback Procedure"))).as_deref(),
            Some("Rollback Procedure")
        );
        assert_eq!(
            label_only(&line("Symptoms:", None)).as_deref(),
            Some("Symptoms")
        );
        let sentence = "All approvals must be obtained before going live";
        assert_eq!(label_only(&line(sentence, Some(sentence))), None);
        assert_eq!(
            label_only(&line(
                "Enable the v5 trips API for internal users first:",
                None
            )),
            None
        );
        assert_eq!(label_only(&line("Date: ___", Some("Date:"))), None);
    }

    #[test]
    fn approvals_named_in_items() {
        let table = [
            ("Legal approval of the new privacy copy", Some("Legal")),
            (
                "Security review sign-off received from AppSec",
                Some("AppSec"),
            ),
            ("Stakeholder approval", Some("Stakeholder")),
            ("iOS build approved by App Review", None),
            ("All approvals obtained", None),
            ("Approval: ____", None),
            ("Deploy the release", None),
        ];
        for (text, want) in table {
            assert_eq!(named_approval(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn traffic_steps_and_holds() {
        assert_eq!(traffic_step("5% of users"), Some(5));
        assert_eq!(traffic_step("Ramp to 25%"), Some(25));
        assert_eq!(traffic_step("100%"), Some(100));
        assert_eq!(traffic_step("Error rate < 1%"), None);
        assert_eq!(traffic_step("Disk 80% full"), None);
        assert_eq!(traffic_step("expected ±1% of yesterday"), None);
        assert_eq!(
            hold_for("holding each for at least 30 minutes").as_deref(),
            Some("30m")
        );
        assert_eq!(hold_for("Raise the flag"), None);
    }

    #[test]
    fn names_from_titles_and_files() {
        assert_eq!(
            plan_name(Some("FlakeGuard Deployment Go-Live Checklist"), "x.md"),
            "flakeguard-deployment"
        );
        assert_eq!(
            plan_name(
                Some("Go-Live Preparation Checklist"),
                "pager-system-go-live.md"
            ),
            "pager-system"
        );
        assert_eq!(
            plan_name(Some("Deployment Checklist"), "go-live.md"),
            "go-live"
        );
        assert_eq!(plan_name(None, ""), "imported-plan");
    }

    #[test]
    fn roles_from_signoff_labels() {
        assert_eq!(role_name("Tech Lead Approval"), "tech-lead");
        assert_eq!(role_name("Security Review"), "security");
        assert_eq!(role_name("Operations Approval"), "operations");
        assert_eq!(role_name("Business Stakeholder"), "business-stakeholder");
        assert_eq!(role_name("Approval"), "approval");
        assert_eq!(role_name("✅"), "approver");
    }

    #[test]
    fn inline_choices_become_one_field() {
        let l = Line {
            text: "DEPLOYMENT STATUS: [ ] SUCCESS [ ] ROLLBACK REQUIRED".into(),
            label: Some("DEPLOYMENT STATUS".into()),
            ..Line::default()
        };
        assert_eq!(
            inline_choice(&l).as_deref(),
            Some("Deployment Status (Success / Rollback Required)")
        );
    }

    #[test]
    fn substeps_people_and_prose_triggers() {
        assert_eq!(
            split_substeps("Lower TTLs 1.1 Set the TTL to 60 s 1.2 Confirm it:"),
            Some((
                "Lower TTLs".to_string(),
                vec![
                    "1.1 Set the TTL to 60 s".to_string(),
                    "1.2 Confirm it:".to_string()
                ]
            ))
        );
        assert_eq!(split_substeps("Upgrade to 3.2.0 and wait"), None);
        assert_eq!(split_substeps("Upgrade to 3.2 Then wait 4.1 Done"), None);
        assert_eq!(
            person_role("Nadia Haddad — Release Manager"),
            Some(("Nadia Haddad".into(), "Release Manager".into()))
        );
        assert_eq!(person_role("Deploy the api — carefully"), None);
        assert_eq!(
            split_handle("Incident commander (@hkowalski)"),
            ("Incident commander".into(), Some("@hkowalski".into()))
        );
        assert_eq!(
            split_handle("mei@wayfare.app"),
            ("mei@wayfare.app".into(), None)
        );
        assert_eq!(
            prose_triggers(
                "If the 5xx rate stays above 2% for 10 minutes, or checkout fails from any region, roll back. The decision is the IC's."
            ),
            ["m_5xx_rate > 2% for 10m", "checkout_fails_from_any_region"]
        );
        assert!(prose_triggers("If in doubt, ask in #edge").is_empty());
        assert!(prose_triggers("Roll back if it breaks").is_empty());
        assert_eq!(
            prose_triggers("Roll back if the error rate stays above 2% for 10 minutes."),
            ["error_rate > 2% for 10m"]
        );
    }

    #[test]
    fn escalation_lines() {
        let l = Line {
            value: "On-call engineer (15 minutes)".into(),
            ..Line::default()
        };
        assert_eq!(
            parse_escalation(&l),
            Some(("On-call engineer".into(), "15m".into()))
        );
        let l = Line {
            value: "Management (1 hour)".into(),
            ..Line::default()
        };
        assert_eq!(
            parse_escalation(&l),
            Some(("Management".into(), "1h".into()))
        );
    }
}
