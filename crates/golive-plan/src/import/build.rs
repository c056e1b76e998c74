//! Sections of a checklist → a [`RawPlan`]: which heading is a phase, what
//! each list item becomes, where blanks are recorded, and what goes to the
//! rollback, the roles and the escalation rules.
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
use super::{Note, NoteKind, offsets, rules};
use crate::compile::{slug, var_refs};
use crate::de::{Deferred, Spanned};
use crate::raw::{
    Action, RawApproval, RawChannel, RawCheck, RawEscalation, RawHttp, RawItem, RawLevel,
    RawMonitor, RawPhase, RawPlan, RawRole, RawRollback, RawRun, RawTask,
};
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
    };
    for &line in &doc.html_lines {
        b.note(line, NoteKind::Dropped, "HTML block ignored");
    }
    if let Some(t) = doc.title.as_ref().filter(|t| !t.text.is_empty()) {
        b.description.push(t.text.clone());
    }
    let mut units = Vec::new();
    for s in 0..doc.sections.len() {
        if let Some(u) = b.section(s) {
            units.push(u);
        }
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

    /// The T-offset of a section: from its heading, else the nearest ancestor's.
    fn at(&self, s: usize) -> Option<String> {
        let mut cur = Some(s);
        let mut guard = 0;
        while let Some(i) = cur {
            if let Some(at) = self.doc.sections[i]
                .heading
                .as_ref()
                .and_then(|h| offsets::recognise(&h.text))
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

    fn section(&mut self, s: usize) -> Option<Unit> {
        let pieces = self.pieces(s);
        if pieces.is_empty() {
            return None;
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
        let has_steps = pieces
            .iter()
            .any(|p| matches!(p, Piece::Step(_)) || matches!(p, Piece::Code(c) if is_shell(c)));
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
            return self.preamble(pieces, has_steps);
        }
        if in_rollback && criteria {
            self.levels_from(&pieces);
            return None;
        }
        if in_rollback && !readiness {
            self.rollback_from(s, &pieces);
            return None;
        }
        if own.contains("escalation") && self.escalation_from(&pieces) {
            return None;
        }
        let pieces = self.contacts_from(s, pieces);
        if pieces.is_empty() {
            return None;
        }
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
        if has_blanks {
            return Some(self.content(s, &pieces, line));
        }
        let informational = [
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
        ]
        .iter()
        .any(|w| own.contains(w));
        if !informational && pieces.iter().any(|p| matches!(p, Piece::Plain(_))) {
            self.note(
                line,
                NoteKind::Plain,
                "plain list items (no checkboxes) taken as tasks",
            );
            let draft = self.phase(s, &pieces);
            return Some(match section.heading {
                Some(_) => Unit::Phase(draft),
                None => Unit::Continuation(draft),
            });
        }
        // Text only: keep it in the plan's description.
        let title = self.heading(s);
        let mut text = Vec::new();
        for p in &pieces {
            match p {
                Piece::Para(l) => text.push(l.text.clone()),
                Piece::Plain(i) => text.extend(self.plain_lines(*i)),
                Piece::Code(c) => text.push(code_text(c)),
                Piece::Step(_) => {}
            }
        }
        if !text.is_empty() {
            let what = title.clone().unwrap_or_else(|| "text".into());
            self.note(
                line,
                NoteKind::Plain,
                format!("“{what}” kept in the plan description"),
            );
            match title {
                Some(t) => self.description.push(format!("{t}:\n{}", text.join("\n"))),
                None => self.description.push(text.join("\n")),
            }
        }
        None
    }

    /// Everything before the first heading: metadata, blanks of the record,
    /// and free text for the description.
    fn preamble(&mut self, pieces: Vec<Piece<'d>>, has_steps: bool) -> Option<Unit> {
        let pieces = self.contacts_from(0, pieces);
        let mut rest = Vec::new();
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
                        self.description.push(l.text.clone());
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
        if rest.is_empty() {
            return None;
        }
        let mut draft = self.phase(0, &rest);
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
        let signoff_section = ["sign-off", "sign off", "signoff", "approval"]
            .iter()
            .any(|w| own.to_lowercase().contains(w));
        let mut draft = PhaseDraft {
            title: if section.heading.is_some() {
                self.phase_title(s)
            } else {
                String::new()
            },
            at: self.at(s),
            line: section.heading.as_ref().map(|h| h.line).unwrap_or(0),
            ..PhaseDraft::default()
        };
        let mut signoffs: Vec<usize> = Vec::new();
        let mut approval_at: Option<usize> = None;
        let mut notes_text: Vec<String> = Vec::new();
        for p in pieces {
            match p {
                Piece::Step(i) if is_signoff(self.item(*i), signoff_section) => {
                    approval_at.get_or_insert(draft.items.len());
                    signoffs.push(*i);
                }
                Piece::Step(i) => {
                    let items = self.convert(*i, &tags, false);
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
                    let item = self.standalone_run(c, &tags);
                    draft.items.push(item);
                }
                Piece::Code(c) => draft.description.push(code_text(c)),
            }
        }
        if let Some(at) = approval_at {
            let message =
                (!notes_text.is_empty()).then(|| std::mem::take(&mut notes_text).join("\n"));
            let item = self.approval(&signoffs, &own, message);
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
            let who = it
                .text
                .label
                .clone()
                .or_else(|| it.text.lead.clone())
                .unwrap_or_else(|| it.text.value.clone());
            let role = role_name(&who);
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
        let mut before = Vec::new();
        let mut subtasks = Vec::new();
        let mut item_fields = Vec::new();
        let mut description = Vec::new();
        let (mut title, instructions) = match (&it.text.label, plain) {
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
                if let Some(url) = child.text.codes.iter().find_map(|c| curl_url(c)) {
                    let id = self.id(child
                        .text
                        .lead
                        .as_deref()
                        .or(child.text.label.as_deref())
                        .unwrap_or(&text));
                    self.note(
                        child.line,
                        NoteKind::Recognised,
                        format!("`curl -f` drafted as an HTTP check of {url}"),
                    );
                    before.push(http_check(id, &text, url, tags));
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
        let mut command = Vec::new();
        for c in &shell {
            let (cmd, comments) = split_comments(c);
            description.extend(comments);
            if !cmd.is_empty() {
                command.push(cmd);
            }
        }
        let command = command.join("\n");
        let inline_curl = it.text.codes.iter().find_map(|c| curl_url(c));
        let url = if command.is_empty() {
            inline_curl
        } else {
            curl_url(&command)
        };
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
        if let Some(url) = url {
            self.note(
                it.line,
                NoteKind::Recognised,
                format!("`curl -f` drafted as an HTTP check of {url}"),
            );
            item.check = Some(http(url));
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
        before.push(item);
        before
    }

    /// A run item from a code block outside any list item.
    fn standalone_run(&mut self, c: &Code, tags: &[String]) -> RawItem {
        let (cmd, comments) = split_comments(c);
        let title = comment_title(c).unwrap_or_else(|| {
            let first = cmd.lines().next().unwrap_or("command");
            let short: String = first.chars().take(60).collect();
            format!("Run `{short}`")
        });
        let id = self.id(&title);
        self.note(
            c.line,
            NoteKind::Recognised,
            format!("code block taken as command “{title}”"),
        );
        let mut item = RawItem {
            id: Spanned::new(id),
            title: Some(Spanned::new(title)),
            tags: tags.to_vec(),
            ..RawItem::default()
        };
        let description: Vec<String> = comments.into_iter().skip(1).collect();
        if !description.is_empty() {
            item.description = Some(description.join("\n"));
        }
        match curl_url(&cmd) {
            Some(url) => item.check = Some(http(url)),
            None if cmd.is_empty() => {
                item.task = Some(RawTask {
                    instructions: Some(c.text.trim_end().to_string()),
                    ..RawTask::default()
                });
            }
            None => {
                self.uses_vars(&cmd);
                item.run = Some(RawRun {
                    command: Spanned::new(cmd),
                    ..RawRun::default()
                });
            }
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
                    self.note(
                        l.line,
                        NoteKind::Recognised,
                        format!("“{}” read as the rollback trigger", l.text),
                    );
                    continue;
                }
                Piece::Code(c) => {
                    self.description.push(code_text(c));
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

    /// A rollback procedure → rollback items.
    fn rollback_from(&mut self, s: usize, pieces: &[Piece<'d>]) {
        let tag = self
            .heading(s)
            .map(|h| slug(strip_numbering(&h)))
            .unwrap_or_else(|| "rollback".into());
        let line = self.doc.sections[s]
            .heading
            .as_ref()
            .map(|h| h.line)
            .unwrap_or(0);
        let mut n = 0;
        let mut text = Vec::new();
        for p in pieces {
            match p {
                Piece::Step(i) => {
                    for item in self.convert(*i, &[], false) {
                        self.rollback_items.push((item, tag.clone()));
                        n += 1;
                    }
                }
                Piece::Plain(i) => {
                    for item in self.convert(*i, &[], true) {
                        self.rollback_items.push((item, tag.clone()));
                        n += 1;
                    }
                }
                Piece::Code(c) if is_shell(c) => {
                    let item = self.standalone_run(c, &[]);
                    self.rollback_items.push((item, tag.clone()));
                    n += 1;
                }
                Piece::Code(c) => text.push(code_text(c)),
                Piece::Para(l) => text.push(l.text.clone()),
            }
        }
        if !text.is_empty() {
            let title = self.heading(s).unwrap_or_else(|| "Rollback".into());
            self.description
                .push(format!("{title}:\n{}", text.join("\n")));
        }
        let title = self.heading(s).unwrap_or_default();
        self.note(
            line,
            NoteKind::Recognised,
            format!("“{title}”: {n} rollback item(s)"),
        );
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
            if let Piece::Plain(i) = p
                && let Some((label, members)) = contact(&self.item(i).text)
            {
                let key = slug(&label);
                let line = self.item(i).line;
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

        let mut phase_ids = HashSet::new();
        let mut phase_next = HashMap::new();
        let mut phases = Vec::new();
        for mut d in drafts {
            if d.title.trim().is_empty() {
                d.title = "Checklist".into();
            }
            let derived = slug(d.title.trim());
            let id = if phase_ids.insert(derived) {
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

        let procedures: BTreeSet<String> =
            self.rollback_items.iter().map(|(_, t)| t.clone()).collect();
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
        let rollback_items: Vec<Deferred<RawItem>> = std::mem::take(&mut self.rollback_items)
            .into_iter()
            .map(|(mut item, tag)| {
                if tag_them && !item.tags.contains(&tag) {
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
        let monitor = (!self.escalation.is_empty()).then(|| {
            channels.insert(
                "oncall".to_string(),
                Deferred::Value(RawChannel {
                    log: Some(true),
                    ..RawChannel::default()
                }),
            );
            self.notes.push(Note {
                line: 0,
                kind: NoteKind::Plain,
                message: "escalation notifies channel `oncall`, which only logs; point it at Slack or PagerDuty. The watch window is set to 24h: check it.".into(),
            });
            Deferred::Value(RawMonitor {
                window: Spanned::new("24h".into()),
                checks: Vec::new(),
                interval: None,
                escalation: std::mem::take(&mut self.escalation),
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
        None => 0,
    }
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
    t.contains("rollback") || t.contains("roll back") || t.contains("roll-back")
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
fn is_signoff(it: &ListItem, signoff_section: bool) -> bool {
    let Some(who) = it.text.label.as_deref().or(it.text.lead.as_deref()) else {
        return false;
    };
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
    let label = l.label.as_ref()?;
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

/// The URL of `curl -f URL` (flags only from `-f`, `-s`, `-S`, `-L` and
/// their long forms): a probe golive can run itself. Anything else (a
/// method, a body, headers, an output file, `${VAR}`) is left as a command.
fn curl_url(cmd: &str) -> Option<String> {
    let line = cmd.trim().trim_start_matches("$ ");
    if line.contains('\n') || line.contains("${") {
        return None;
    }
    let mut words = line.split_whitespace();
    if words.next()? != "curl" {
        return None;
    }
    let mut url = None;
    let mut fail = false;
    for w in words {
        let w = w.trim_matches(|c| c == '"' || c == '\'');
        match w {
            "--fail" => fail = true,
            "--silent" | "--show-error" | "--location" => {}
            _ if w.starts_with("--") => return None,
            _ if w.starts_with('-') && w.len() > 1 => {
                if !w[1..].chars().all(|c| "fsSL".contains(c)) {
                    return None;
                }
                fail |= w.contains('f');
            }
            _ if (w.starts_with("http://") || w.starts_with("https://")) && url.is_none() => {
                url = Some(w.to_string());
            }
            _ => return None,
        }
    }
    if fail { url } else { None }
}

fn http(url: String) -> RawCheck {
    RawCheck {
        http: Some(RawHttp {
            url: Spanned::new(url),
            ..RawHttp::default()
        }),
        expect: vec![Spanned::new("status == 200".into())],
        ..RawCheck::default()
    }
}

fn http_check(id: String, title: &str, url: String, tags: &[String]) -> RawItem {
    RawItem {
        id: Spanned::new(id),
        title: Some(Spanned::new(title.to_string())),
        tags: tags.to_vec(),
        check: Some(http(url)),
        ..RawItem::default()
    }
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

const SHELL_WORDS: [&str; 40] = [
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
/// and its comments.
fn split_comments(c: &Code) -> (String, Vec<String>) {
    let mut cmd = Vec::new();
    let mut comments = Vec::new();
    let prompts = c.text.lines().filter(|l| !l.trim().is_empty()).all(|l| {
        let t = l.trim_start();
        t.starts_with("$ ") || t.starts_with('#')
    });
    for l in c.text.lines() {
        let t = l.trim();
        if t.starts_with("#!") {
            continue;
        }
        if let Some(comment) = t.strip_prefix('#') {
            let comment = comment.trim();
            if !comment.is_empty() {
                comments.push(comment.to_string());
            }
            continue;
        }
        let l = if prompts {
            l.trim_start().trim_start_matches("$ ")
        } else {
            l
        };
        cmd.push(l.trim_end());
    }
    while cmd.last().is_some_and(|l| l.is_empty()) {
        cmd.pop();
    }
    while cmd.first().is_some_and(|l| l.is_empty()) {
        cmd.remove(0);
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

    #[test]
    fn curl_commands_that_are_probes() {
        assert_eq!(
            curl_url("curl -f http://api:3000/health").as_deref(),
            Some("http://api:3000/health")
        );
        assert_eq!(
            curl_url("curl -fsS https://x.io/ready").as_deref(),
            Some("https://x.io/ready")
        );
        assert_eq!(
            curl_url("$ curl --fail --silent http://a/b").as_deref(),
            Some("http://a/b")
        );
        assert_eq!(curl_url("curl http://api:3000/health"), None);
        assert_eq!(curl_url("curl -f -X POST http://a/b"), None);
        assert_eq!(curl_url("curl -f ${API}/health"), None);
        assert_eq!(curl_url("curl -f http://a\ncurl -f http://b"), None);
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
