//! The record as Markdown: a completed copy of the checklist.
//!
//! An imported plan came from a Markdown checklist, and the people who wrote
//! it expect their checklist back, ticked: the same headings in order,
//! `- [x]` items with their nested subtasks, the `**Start Time**: ____`
//! blanks filled in with who gave them, and the sign-offs with who signed.
//! What the engine adds (times, command output, check observations) goes in
//! nested lines under each item, so the checklist still reads first.

use std::fmt::Write;

use golive_store::Decision;

use super::{Blank, ItemReport, PhaseReport, Report, ResultKind, when};

/// The record as Markdown.
pub fn to_markdown(r: &Report) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, r);
    out
}

fn write_report(out: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(out, "# Go-live record: {}", one_line(&r.plan.name))?;
    writeln!(out)?;
    writeln!(out, "| | |")?;
    writeln!(out, "| --- | --- |")?;
    let mut row = |k: &str, v: Option<String>| -> std::fmt::Result {
        match v {
            Some(v) => writeln!(out, "| {k} | {} |", cell(&v)),
            None => Ok(()),
        }
    };
    row("Plan", Some(r.plan.name.clone()))?;
    row("Version", r.plan.version.clone())?;
    row("Environment", r.plan.environment.clone())?;
    row("Owner", r.plan.owner.clone())?;
    row("Run", Some(format!("`{}`", r.run.id)))?;
    row("Status", Some(format!("**{}**", r.run.status)))?;
    row("T-0", r.run.t0.map(when))?;
    row("Started", r.run.started_at.map(when))?;
    row("Finished", r.run.finished_at.map(when))?;
    writeln!(out)?;
    if !r.record.is_empty() {
        for b in &r.record {
            writeln!(out, "{}  ", blank(b))?;
        }
        writeln!(out)?;
    }

    let groups = group_titles(&r.phases);
    let mut current_group: Option<&str> = None;
    for (phase, (group, title)) in r.phases.iter().zip(&groups) {
        let level = match group {
            Some(g) => {
                if current_group != Some(g.as_str()) {
                    writeln!(out, "## {g}")?;
                    writeln!(out)?;
                    current_group = Some(g.as_str());
                }
                "###"
            }
            None => {
                current_group = None;
                "##"
            }
        };
        writeln!(out, "{level} {title}")?;
        writeln!(out)?;
        write_phase(out, phase)?;
    }

    if !r.rollback.is_empty() || !r.rollback_events.is_empty() {
        writeln!(out, "## Rollback")?;
        writeln!(out)?;
        if r.rollback_events.is_empty() {
            writeln!(out, "_Not needed: the go-live did not roll back._")?;
            writeln!(out)?;
        }
        for e in &r.rollback_events {
            let what = e.to.clone().unwrap_or_else(|| e.kind.clone());
            write!(out, "- {} — {what}", when(e.at))?;
            if let Some(by) = &e.by {
                write!(out, " by {}", one_line(by))?;
            }
            if let Some(reason) = &e.reason {
                write!(out, ": {}", one_line(reason))?;
            }
            writeln!(out)?;
        }
        if !r.rollback_events.is_empty() {
            writeln!(out)?;
        }
        for item in &r.rollback {
            write_item(out, item)?;
        }
        if !r.rollback.is_empty() {
            writeln!(out)?;
        }
    }

    if let Some(w) = &r.watch {
        writeln!(out, "## Watch window")?;
        writeln!(out)?;
        let end = w.ended_at.map_or_else(|| "not over yet".to_string(), when);
        let started = w.started_at.map_or_else(String::new, when);
        writeln!(out, "From {started} to {end}.")?;
        writeln!(out)?;
        if w.incidents.is_empty() {
            writeln!(out, "_No incident: every watched check and rule passed._")?;
            writeln!(out)?;
        }
        for i in &w.incidents {
            writeln!(out, "- {}", one_line(&i.headline()))?;
            for d in i.details() {
                writeln!(out, "  - {}", one_line(&d))?;
            }
        }
        if !w.incidents.is_empty() {
            writeln!(out)?;
        }
    }

    if !r.comms.is_empty() {
        writeln!(out, "## Communications")?;
        writeln!(out)?;
        for c in &r.comms {
            writeln!(out, "- {}", one_line(&c.line()))?;
        }
        writeln!(out)?;
    }

    if !r.audit.is_empty() {
        writeln!(out, "## Audit log")?;
        writeln!(out)?;
        for e in &r.audit {
            write!(
                out,
                "- {} — {} by {}",
                when(e.at),
                one_line(&e.action),
                one_line(&e.actor)
            )?;
            if let Some(source) = &e.source {
                write!(out, " from {}", one_line(source))?;
            }
            if let Some(item) = e
                .after
                .as_ref()
                .and_then(|a| a.get("item"))
                .and_then(|i| i.as_str())
            {
                write!(out, " (item `{}`)", code(item))?;
            }
            if let Some(reason) = &e.reason {
                write!(out, ": {}", one_line(reason))?;
            }
            writeln!(out)?;
        }
        writeln!(out)?;
    }

    writeln!(out, "## Summary")?;
    writeln!(out)?;
    let counts: Vec<String> = r
        .summary
        .iter()
        .map(|(k, n)| format!("{n} {}", k.as_str()))
        .collect();
    writeln!(out, "{}", counts.join(" · "))?;
    writeln!(out)?;
    writeln!(out, "## Lessons learned")?;
    writeln!(out)?;
    for heading in ["What went well", "What could be improved"] {
        writeln!(out, "### {heading}")?;
        writeln!(out)?;
        writeln!(out, "- ")?;
        writeln!(out)?;
    }
    writeln!(out, "### Action items")?;
    writeln!(out)?;
    writeln!(out, "- [ ] ")?;
    Ok(())
}

/// Phase titles as headings: an importer joins `## Group` and `### Name`
/// into `Group: Name`; consecutive phases sharing a group get it back as a
/// heading of its own. A lone `A: B` stays one heading.
fn group_titles(phases: &[PhaseReport]) -> Vec<(Option<String>, String)> {
    let split: Vec<Option<(&str, &str)>> =
        phases.iter().map(|p| p.title.split_once(": ")).collect();
    let prefix = |i: usize| split.get(i).copied().flatten().map(|(g, _)| g);
    phases
        .iter()
        .enumerate()
        .map(|(i, p)| match split[i] {
            Some((g, rest)) if (i > 0 && prefix(i - 1) == Some(g)) || prefix(i + 1) == Some(g) => {
                (Some(one_line(g)), one_line(rest))
            }
            _ => (None, one_line(&p.title)),
        })
        .collect()
}

fn write_phase(out: &mut String, p: &PhaseReport) -> std::fmt::Result {
    let mut times = Vec::new();
    if let Some(at) = &p.at {
        match p.planned_start {
            Some(t) => times.push(format!("planned {at} ({})", when(t))),
            None => times.push(format!("planned {at}")),
        }
    }
    if let Some(t) = p.started_at {
        times.push(format!("started {}", when(t)));
    }
    if let Some(t) = p.finished_at {
        times.push(format!("finished {}", when(t)));
    }
    if !times.is_empty() {
        writeln!(out, "_{}_", times.join(" · "))?;
        writeln!(out)?;
    }
    for b in &p.record {
        writeln!(out, "{}  ", blank(b))?;
    }
    if !p.record.is_empty() {
        writeln!(out)?;
    }
    for item in &p.items {
        write_item(out, item)?;
    }
    writeln!(out)
}

fn write_item(out: &mut String, i: &ItemReport) -> std::fmt::Result {
    let mark = if i.result == ResultKind::Passed {
        "x"
    } else {
        " "
    };
    write!(out, "- [{mark}] {}", one_line(&i.title))?;
    let suffix = match (&i.confirmation, i.result) {
        (Some(c), ResultKind::Skipped) if c.skipped => {
            let why = c
                .reason
                .as_deref()
                .map(|r| format!(": {}", one_line(r)))
                .unwrap_or_default();
            format!("skipped by {} at {}{why}", one_line(&c.by), when(c.at))
        }
        (Some(c), ResultKind::Passed) => {
            format!("confirmed by {} at {}", one_line(&c.by), when(c.at))
        }
        (_, ResultKind::Passed) if !i.signatures.is_empty() => "approved".to_string(),
        (_, ResultKind::Passed) => match i.finished_at {
            Some(t) => format!("{} at {}", i.kind, when(t)),
            None => "passed".to_string(),
        },
        (_, ResultKind::Failed) => match &i.error {
            Some(e) => format!("**failed**: {}", one_line(e)),
            None => "**failed**".to_string(),
        },
        (_, other) => other.as_str().to_string(),
    };
    write!(out, " — {suffix}")?;
    if i.attempts > 1 {
        write!(out, " ({} attempts)", i.attempts)?;
    }
    writeln!(out)?;
    // A passed item can still carry an error: a notification that was not
    // delivered to a channel that is not `required`.
    if let (ResultKind::Passed, Some(e), "notify") = (i.result, &i.error, i.kind) {
        writeln!(out, "  - Not delivered: {}", one_line(e))?;
    }
    for s in &i.subtasks {
        writeln!(out, "  - [{mark}] {}", one_line(s))?;
    }
    for b in &i.fields {
        writeln!(out, "  - {}", blank(b))?;
    }
    if let Some(e) = i.confirmation.as_ref().and_then(|c| c.evidence.as_deref()) {
        writeln!(out, "  - Evidence: {}", one_line(e))?;
    }
    for s in &i.signatures {
        write!(
            out,
            "  - **{}**: {} {} at {}",
            one_line(&s.role),
            verb(s.decision),
            one_line(&s.by),
            when(s.at)
        )?;
        if let Some(c) = &s.comment {
            write!(out, " — “{}”", one_line(c))?;
        }
        writeln!(out)?;
    }
    for note in &i.rollout {
        writeln!(
            out,
            "  - {} — {}: {}",
            when(note.at),
            note.kind,
            one_line(&note.text)
        )?;
    }
    if let Some(record) = i.rollout_record.as_ref().filter(|r| !r.steps.is_empty()) {
        for line in record.notes() {
            writeln!(out, "  - {}", one_line(&line))?;
        }
        // A table indented under its item stays part of that item.
        let (header, rows) = record.table();
        let row = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
            format!("  | {} |", cells.join(" | "))
        };
        writeln!(out)?;
        writeln!(out, "{}", row(&header))?;
        writeln!(out, "  |{}", " --- |".repeat(header.len()))?;
        for r in &rows {
            writeln!(out, "{}", row(r))?;
        }
        writeln!(out)?;
    }
    if let Some(check) = &i.check {
        if let Some(e) = &check.error {
            writeln!(out, "  - Probe error: {}", one_line(e))?;
        }
        for c in &check.conditions {
            let ok = if c.passed { "✓" } else { "✗" };
            write!(out, "  - {ok} `{}`", code(&c.condition))?;
            if let Some(o) = &c.observed {
                write!(out, " (observed `{}`)", code(o))?;
            }
            writeln!(out)?;
        }
    }
    if let Some(cmd) = &i.command {
        let mut lines = cmd.command.lines().filter(|l| !l.trim().is_empty());
        let first = lines.next().unwrap_or_default();
        let more = match lines.count() {
            0 => String::new(),
            n => format!(" (+{n} more lines)"),
        };
        write!(out, "  - `$ {}`{more}", first.trim().replace('`', "'"))?;
        match cmd.exit_code {
            Some(code) => write!(out, " → exit {code}")?,
            None if cmd.timed_out => write!(out, " → timed out")?,
            None => {}
        }
        if let Some(ms) = cmd.duration_ms {
            write!(out, " in {ms} ms")?;
        }
        writeln!(out)?;
        for (name, ex) in [("stdout", &cmd.stdout), ("stderr", &cmd.stderr)] {
            if ex.is_empty() {
                continue;
            }
            writeln!(out, "    {name}:")?;
            writeln!(out)?;
            writeln!(out, "    ```text")?;
            for l in &ex.head {
                writeln!(out, "    {}", l.replace("```", "`\u{200b}``"))?;
            }
            if !ex.tail.is_empty() {
                let hidden = ex.lines - ex.head.len() - ex.tail.len();
                writeln!(out, "    … {hidden} more lines …")?;
                for l in &ex.tail {
                    writeln!(out, "    {}", l.replace("```", "`\u{200b}``"))?;
                }
            }
            writeln!(out, "    ```")?;
        }
    }
    Ok(())
}

fn verb(d: Decision) -> &'static str {
    match d {
        Decision::Approve => "approved by",
        Decision::Reject => "rejected by",
    }
}

/// `**Start Time**: 14:02 (by alice)`, or the blank left as in the checklist.
fn blank(b: &Blank) -> String {
    match (&b.value, &b.by) {
        (Some(v), Some(by)) => format!(
            "**{}**: {} (by {})",
            one_line(&b.name),
            one_line(v),
            one_line(by)
        ),
        (Some(v), None) => format!("**{}**: {}", one_line(&b.name), one_line(v)),
        _ => format!("**{}**: ___________", one_line(&b.name)),
    }
}

/// Person-supplied text on one line (a newline would break the list it is
/// in), with HTML made inert: Markdown passes raw HTML through, so evidence
/// such as `<script>` or `<img onerror=…>` would run in whatever renders
/// the record. Only a `<` that can open a tag, a comment or an autolink
/// (followed by a letter, `/`, `!` or `?`) is written `&lt;`; `< 500ms`
/// stays as the checklist had it.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut chars = line.trim_end().chars().peekable();
        while let Some(c) = chars.next() {
            let opens = |n: &char| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?');
            if c == '<' && chars.peek().is_some_and(opens) {
                out.push_str("&lt;");
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// Text for an inline code span, on one line: HTML is inert there (and
/// an entity would show as typed), a backtick would end the span.
fn code(s: &str) -> String {
    s.split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" ")
        .replace('`', "'")
}

/// Text fit for a table cell.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}
