//! `golive import`: a go-live Markdown checklist → a plan that validates.
//!
//! Teams already have their go-live checklists, written for people: headings
//! with T-offsets, `- [ ]` items, shell snippets, sign-off lines, blanks to
//! fill in, rollback criteria in prose. The importer turns such a document
//! into a first plan a release engineer can review, keeping every checklist
//! item and saying, line by line, what it recognised and what it left plain.
//!
//! The pipeline, one module each:
//! - `mojibake`: repair text damaged by a wrong decoding (`üöÄ` → 🚀);
//! - `markdown`: the iterative walk over pulldown-cmark events;
//! - `build`: sections → phases, items, approvals, rollback, roles;
//!   with `offsets` (T-offsets, clock times and periods in headings),
//!   `probe` (commands read as probes, flag API calls, undo commands,
//!   numbered steps), `rules` (thresholds → conditions) and `text` (blanks,
//!   titles, ids);
//! - `emit`: the plan written as reviewable YAML.
//!
//! [`Summary`] says what was drafted and what a person must review; drafted
//! guesses carry `review: true` and unnamed roles a `TODO-` member, which
//! `golive validate --strict` refuses. [`check_size`] bounds the input
//! before anything is built.

mod build;
mod emit;
mod markdown;
mod mojibake;
mod offsets;
mod probe;
mod rules;
mod text;

use crate::de::Deferred;
use crate::raw::RawPlan;

/// The result of importing a checklist.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The plan, built with [`crate::de::Deferred::Value`] and [`crate::de::Spanned::new`].
    pub plan: RawPlan,
    /// The plan as YAML, starting with a comment header.
    pub yaml: String,
    /// What was recognised, left plain, repaired or dropped, in source order.
    pub notes: Vec<Note>,
    /// Number of `- [ ]` / `- [x]` items in the source, nested ones included.
    pub checklist_items: usize,
    /// How many of those appear in the plan (as an item, a subtask, an
    /// approval, a rollback item or level, …).
    pub kept_items: usize,
    /// What was drafted, and what a person must review before running it.
    pub summary: Summary,
}

/// The triage of an import: what became something golive runs or checks,
/// and what is a guess to review.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Items of the forward phases by kind (`check`, `run`, `task`, …), in
    /// the order of [`crate::ItemKind::NAMES`]; kinds with none left out.
    pub kinds: Vec<(&'static str, usize)>,
    /// Items run on rollback.
    pub rollback_items: usize,
    /// Levels of the rollback decision tree.
    pub rollback_levels: usize,
    /// Roles declared.
    pub roles: usize,
    /// Roles with a `TODO-` placeholder member: nobody was named for them.
    pub placeholder_roles: Vec<String>,
    /// Items (by id) and rollback levels (by name) marked `review: true`.
    pub review: Vec<String>,
}

impl Summary {
    fn of(plan: &RawPlan) -> Summary {
        let mut counts = [0usize; 8];
        let mut review = Vec::new();
        let mut note = |item: &crate::raw::RawItem, forward: bool| {
            if forward && let Some(k) = kind_index(item) {
                counts[k] += 1;
            }
            if item.review == Some(true) {
                review.push(item.id.value.clone());
            }
        };
        for p in &plan.phases {
            let Deferred::Value(p) = p else { continue };
            for i in &p.items {
                if let Deferred::Value(i) = i {
                    note(i, true);
                }
            }
        }
        let (mut rollback_items, mut rollback_levels) = (0, 0);
        if let Some(Deferred::Value(rb)) = &plan.rollback {
            for i in &rb.items {
                if let Deferred::Value(i) = i {
                    note(i, false);
                    rollback_items += 1;
                }
            }
            for l in &rb.levels {
                if let Deferred::Value(l) = l {
                    rollback_levels += 1;
                    if l.review == Some(true) {
                        review.push(format!("rollback level “{}”", l.name.value));
                    }
                }
            }
        }
        let placeholder_roles = plan
            .roles
            .iter()
            .filter(|(_, r)| {
                matches!(r, Deferred::Value(r) if r.members.iter().any(|m| m.value.starts_with("TODO-")))
            })
            .map(|(k, _)| k.clone())
            .collect();
        Summary {
            kinds: crate::ItemKind::NAMES
                .iter()
                .zip(counts)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (*k, n))
                .collect(),
            rollback_items,
            rollback_levels,
            roles: plan.roles.len(),
            placeholder_roles,
            review,
        }
    }

    /// Checks drafted in the forward phases.
    pub fn checks(&self) -> usize {
        self.kinds
            .iter()
            .find(|(k, _)| *k == "check")
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }

    /// The summary as lines for a person.
    pub fn lines(&self) -> Vec<String> {
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let mut out = vec![
            format!(
                "drafted: {}",
                if kinds.is_empty() {
                    "no items".to_string()
                } else {
                    kinds.join(", ")
                }
            ),
            format!(
                "rollback: {} item(s), {} decision level(s); roles: {}",
                self.rollback_items, self.rollback_levels, self.roles
            ),
        ];
        if self.checks() == 0 {
            out.push(
                "no checks: nothing was found that golive can verify itself; `golive ready` will have nothing to run"
                    .into(),
            );
        }
        if !self.placeholder_roles.is_empty() {
            out.push(format!(
                "needs members: {} (placeholder `TODO-` members)",
                self.placeholder_roles.join(", ")
            ));
        }
        if !self.review.is_empty() {
            out.push(format!(
                "needs review ({}): {}",
                self.review.len(),
                self.review.join(", ")
            ));
            out.push("`golive validate --strict` fails until each is reviewed and `review: true` removed".into());
        }
        out
    }
}

/// Index of the item's kind in [`crate::ItemKind::NAMES`].
fn kind_index(i: &crate::raw::RawItem) -> Option<usize> {
    i.kinds_present().iter().position(|b| *b)
}

/// One remark about the import, for the CLI to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// 1-based line of the checklist (0 when about the plan as a whole).
    pub line: usize,
    /// What kind of remark.
    pub kind: NoteKind,
    /// The remark.
    pub message: String,
}

/// Kinds of [`Note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoteKind {
    /// A construct turned into something golive runs or checks.
    Recognised,
    /// Kept as written (a task, a description) where more was considered.
    Plain,
    /// Text repaired (mis-decoded characters).
    Repaired,
    /// Left out of the plan.
    Dropped,
}

/// Largest checklist `golive import` takes. Real go-live checklists are a
/// few kilobytes; a megabyte is a generated file or the wrong one.
pub const MAX_CHECKLIST_BYTES: usize = 1024 * 1024;

/// Most list items and headings a checklist may have: each becomes a few
/// values of the plan, and the plan must stay within what golive's plan
/// reader accepts ([`crate::yaml::MAX_NODES`]).
pub const MAX_CHECKLIST_ENTRIES: usize = 20_000;

/// Why a checklist is too large to import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooLarge {
    /// More than [`MAX_CHECKLIST_BYTES`].
    #[error(
        "the checklist is {size} bytes; golive import takes at most {} KiB (go-live checklists are a few kilobytes): split it, one checklist per release",
        MAX_CHECKLIST_BYTES / 1024
    )]
    Bytes {
        /// Size of the checklist.
        size: usize,
    },
    /// More than [`MAX_CHECKLIST_ENTRIES`] list items and headings.
    #[error(
        "the checklist has {count} list items and headings; golive import takes at most {MAX_CHECKLIST_ENTRIES}: split it, one checklist per release"
    )]
    Entries {
        /// List items and headings counted.
        count: usize,
    },
}

/// Checks that a checklist of `size` bytes with text `markdown` (when read)
/// can be imported, before anything is built or written.
pub fn check_size(size: usize, markdown: Option<&str>) -> Result<(), TooLarge> {
    if size > MAX_CHECKLIST_BYTES {
        return Err(TooLarge::Bytes { size });
    }
    let Some(text) = markdown else {
        return Ok(());
    };
    // Counted by a line scan, an upper bound of what the Markdown walk finds.
    let count = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            // `⬜ step` lines are list items too (see `markdown`).
            markdown::status_marker(t).is_some() || {
                let t = t.trim_start_matches(|c: char| c.is_ascii_digit());
                t.starts_with(['#', '-', '*', '+', '.', ')', '|'])
            }
        })
        .count();
    if count > MAX_CHECKLIST_ENTRIES {
        return Err(TooLarge::Entries { count });
    }
    Ok(())
}

/// Imports a Markdown checklist. `source_name` is the checklist's file name
/// (for the plan name fallback and the header comment). Never panics.
pub fn import(markdown: &str, source_name: &str) -> Imported {
    let (text, repairs) = mojibake::repair(markdown);
    let doc = markdown::walk(&text);
    let built = build::build(&doc, source_name);
    let mut notes: Vec<Note> = Vec::new();
    let mut last_line = 0;
    for r in repairs {
        let message = format!("mis-decoded text “{}” → “{}”", r.from, r.to);
        match notes.last_mut() {
            // One note per line.
            Some(n) if r.line == last_line => {
                n.message.push_str(&format!(", “{}” → “{}”", r.from, r.to));
            }
            _ => notes.push(Note {
                line: r.line,
                kind: NoteKind::Repaired,
                message,
            }),
        }
        last_line = r.line;
    }
    notes.extend(built.notes);
    notes.sort_by_key(|n| n.line);
    let source = source_name.replace(|c: char| c.is_control(), " ");
    let header = [
        format!("Imported by `golive import` from {source}. Review items marked `review: true`."),
        format!("Kept {} of {} checklist items.", built.kept, doc.task_items),
    ];
    let yaml = emit::to_yaml(&built.plan, &header);
    let summary = Summary::of(&built.plan);
    Imported {
        summary,
        plan: built.plan,
        yaml,
        notes,
        checklist_items: doc.task_items,
        kept_items: built.kept,
    }
}
