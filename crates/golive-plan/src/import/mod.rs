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
//!   with `offsets` (T-offsets in headings), `rules` (thresholds →
//!   conditions) and `text` (blanks, titles, ids);
//! - `emit`: the plan written as reviewable YAML.

mod build;
mod emit;
mod markdown;
mod mojibake;
mod offsets;
mod probe;
mod rules;
mod text;

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
    Imported {
        plan: built.plan,
        yaml,
        notes,
        checklist_items: doc.task_items,
        kept_items: built.kept,
    }
}
