//! The record as one self-contained HTML page, to attach to a change ticket
//! or mail to stakeholders: inline CSS, no scripts, no external links, and
//! every piece of text escaped (titles and command output come from plans
//! and commands, which may contain anything).

use std::fmt::Write;

use golive_store::Decision;

use super::{Blank, ItemReport, Report, ResultKind, when};

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
h2{margin-top:2rem;border-bottom:2px solid #eee}.muted{color:#777}\
.passed{color:#17723a}.failed{color:#b3261e;font-weight:bold}.skipped,.pending,.interrupted{color:#8a6d00}\
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:13px}ul.items{list-style:none;padding-left:0}\
ul.items>li{margin:.4rem 0}.blank{font-weight:bold}";

/// The record as a single HTML document.
pub fn to_html(r: &Report) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, r);
    out
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn write_report(out: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\"><head><meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<title>Go-live record: {}</title><style>{STYLE}</style></head><body>",
        esc(&r.plan.name)
    )?;
    writeln!(out, "<h1>Go-live record: {}</h1>", esc(&r.plan.name))?;
    writeln!(out, "<table>")?;
    let mut row = |k: &str, v: Option<String>| -> std::fmt::Result {
        match v {
            Some(v) => writeln!(out, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v)),
            None => Ok(()),
        }
    };
    row("Plan", Some(r.plan.name.clone()))?;
    row("Version", r.plan.version.clone())?;
    row("Environment", r.plan.environment.clone())?;
    row("Owner", r.plan.owner.clone())?;
    row("Run", Some(r.run.id.to_string()))?;
    row("Status", Some(r.run.status.to_string()))?;
    row("T-0", r.run.t0.map(when))?;
    row("Started", r.run.started_at.map(when))?;
    row("Finished", r.run.finished_at.map(when))?;
    writeln!(out, "</table>")?;
    write_blanks(out, &r.record)?;

    for p in &r.phases {
        writeln!(out, "<h2>{}</h2>", esc(&p.title))?;
        let mut times = Vec::new();
        if let Some(at) = &p.at {
            times.push(match p.planned_start {
                Some(t) => format!("planned {at} ({})", when(t)),
                None => format!("planned {at}"),
            });
        }
        if let Some(t) = p.started_at {
            times.push(format!("started {}", when(t)));
        }
        if let Some(t) = p.finished_at {
            times.push(format!("finished {}", when(t)));
        }
        if !times.is_empty() {
            writeln!(out, "<p class=\"muted\">{}</p>", esc(&times.join(" · ")))?;
        }
        write_blanks(out, &p.record)?;
        write_items(out, &p.items)?;
    }
    if !r.rollback.is_empty() || !r.rollback_events.is_empty() {
        writeln!(out, "<h2>Rollback</h2>")?;
        if r.rollback_events.is_empty() {
            writeln!(
                out,
                "<p class=\"muted\">Not needed: the go-live did not roll back.</p>"
            )?;
        } else {
            writeln!(out, "<ul>")?;
            for e in &r.rollback_events {
                let what = e.to.clone().unwrap_or_else(|| e.kind.clone());
                let by =
                    e.by.as_deref()
                        .map(|b| format!(" by {b}"))
                        .unwrap_or_default();
                let why = e
                    .reason
                    .as_deref()
                    .map(|b| format!(": {b}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "<li>{}</li>",
                    esc(&format!("{} — {what}{by}{why}", when(e.at)))
                )?;
            }
            writeln!(out, "</ul>")?;
        }
        write_items(out, &r.rollback)?;
    }
    if let Some(w) = &r.watch {
        writeln!(out, "<h2>Watch window</h2>")?;
        let end = w.ended_at.map_or_else(|| "not over yet".to_string(), when);
        let started = w.started_at.map_or_else(String::new, when);
        writeln!(out, "<p>{}</p>", esc(&format!("From {started} to {end}.")))?;
        if w.incidents.is_empty() {
            writeln!(
                out,
                "<p class=\"muted\">No incident: every watched check and rule passed.</p>"
            )?;
        } else {
            writeln!(out, "<ul>")?;
            for i in &w.incidents {
                write!(out, "<li>{}<ul>", esc(&i.headline()))?;
                for d in i.details() {
                    write!(out, "<li>{}</li>", esc(&d))?;
                }
                writeln!(out, "</ul></li>")?;
            }
            writeln!(out, "</ul>")?;
        }
    }
    if !r.comms.is_empty() {
        writeln!(out, "<h2>Communications</h2><ul>")?;
        for c in &r.comms {
            writeln!(out, "<li>{}</li>", esc(&c.line()))?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "<h2>Summary</h2><p>")?;
    let counts: Vec<String> = r
        .summary
        .iter()
        .map(|(k, n)| format!("<span class=\"{0}\">{n} {0}</span>", k.as_str()))
        .collect();
    writeln!(out, "{}</p>", counts.join(" · "))?;
    writeln!(out, "<h2>Lessons learned</h2>")?;
    for h in ["What went well", "What could be improved", "Action items"] {
        writeln!(out, "<h3>{h}</h3><ul><li>&nbsp;</li></ul>")?;
    }
    writeln!(out, "</body></html>")
}

fn blank_html(b: &Blank) -> String {
    let value = match (&b.value, &b.by) {
        (Some(v), Some(by)) => format!("{} <span class=\"muted\">(by {})</span>", esc(v), esc(by)),
        (Some(v), None) => esc(v),
        _ => "___________".to_string(),
    };
    format!("<span class=\"blank\">{}</span>: {value}", esc(&b.name))
}

fn write_blanks(out: &mut String, blanks: &[Blank]) -> std::fmt::Result {
    if blanks.is_empty() {
        return Ok(());
    }
    writeln!(out, "<p>")?;
    for b in blanks {
        writeln!(out, "{}<br>", blank_html(b))?;
    }
    writeln!(out, "</p>")
}

fn write_items(out: &mut String, items: &[ItemReport]) -> std::fmt::Result {
    writeln!(out, "<ul class=\"items\">")?;
    for i in items {
        let mark = if i.result == ResultKind::Passed {
            "☑"
        } else {
            "☐"
        };
        write!(
            out,
            "<li>{mark} {title} <span class=\"{result}\">{result}</span> <span class=\"muted\">({kind})</span>",
            title = esc(&i.title),
            result = i.result.as_str(),
            kind = i.kind
        )?;
        let mut details = Vec::new();
        if let Some(c) = &i.confirmation {
            let what = if c.skipped { "skipped" } else { "confirmed" };
            let mut d = format!("{what} by {} at {}", c.by, when(c.at));
            if let Some(r) = &c.reason {
                d.push_str(&format!(": {r}"));
            }
            details.push(esc(&d));
            if let Some(e) = &c.evidence {
                details.push(format!("evidence: {}", esc(e)));
            }
        }
        for s in &i.subtasks {
            details.push(format!("{mark} {}", esc(s)));
        }
        for b in &i.fields {
            details.push(blank_html(b));
        }
        for s in &i.signatures {
            let verb = match s.decision {
                Decision::Approve => "approved by",
                Decision::Reject => "rejected by",
            };
            let mut d = format!("{}: {verb} {} at {}", s.role, s.by, when(s.at));
            if let Some(c) = &s.comment {
                d.push_str(&format!(" — “{c}”"));
            }
            details.push(esc(&d));
        }
        if let Some(e) = &i.error {
            details.push(format!("<span class=\"failed\">{}</span>", esc(e)));
        }
        if let Some(check) = &i.check {
            for c in &check.conditions {
                let ok = if c.passed { "✓" } else { "✗" };
                let seen = c
                    .observed
                    .as_deref()
                    .map(|o| format!(" (observed {o})"))
                    .unwrap_or_default();
                details.push(esc(&format!("{ok} {}{seen}", c.condition)));
            }
        }
        if let Some(cmd) = &i.command {
            let code = cmd
                .exit_code
                .map(|c| format!(" → exit {c}"))
                .unwrap_or_default();
            details.push(format!(
                "<code>$ {}</code>{}",
                esc(&cmd.command),
                esc(&code)
            ));
            for ex in [&cmd.stdout, &cmd.stderr] {
                if ex.is_empty() {
                    continue;
                }
                let mut text = ex.head.join("\n");
                if !ex.tail.is_empty() {
                    let hidden = ex.lines - ex.head.len() - ex.tail.len();
                    text.push_str(&format!("\n… {hidden} more lines …\n"));
                    text.push_str(&ex.tail.join("\n"));
                }
                details.push(format!("<pre>{}</pre>", esc(&text)));
            }
        }
        if let Some(record) = i.rollout_record.as_ref().filter(|r| !r.steps.is_empty()) {
            details.extend(record.notes().iter().map(|n| esc(n)));
            let (header, rows) = record.table();
            let cells = |tag: &str, cs: &[String]| {
                cs.iter()
                    .map(|c| format!("<{tag}>{}</{tag}>", esc(c)))
                    .collect::<String>()
            };
            let mut table = format!("<table><tr>{}</tr>", cells("th", &header));
            for r in &rows {
                table.push_str(&format!("<tr>{}</tr>", cells("td", r)));
            }
            table.push_str("</table>");
            details.push(table);
        }
        if !details.is_empty() {
            writeln!(out, "<ul>")?;
            for d in details {
                writeln!(out, "<li>{d}</li>")?;
            }
            write!(out, "</ul>")?;
        }
        writeln!(out, "</li>")?;
    }
    writeln!(out, "</ul>")
}
