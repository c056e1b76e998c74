//! The record as JUnit XML, so a CI system that ran the go-live shows each
//! item as a test: one test suite per phase (and one for rollback), one test
//! case per item; a failed item is a `<failure>`, a skipped one `<skipped>`,
//! and an item that never finished (pending, interrupted) is `<skipped>`
//! with a message saying so.

use std::fmt::Write;

use super::{ItemReport, Report, ResultKind};

/// The record as a JUnit XML document.
pub fn to_junit(r: &Report) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, r);
    out
}

/// Escapes text for XML content and attribute values; drops characters XML 1.0 forbids.
/// Shared with `golive ready`'s JUnit report.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

fn count(items: &[ItemReport], which: &[ResultKind]) -> usize {
    items.iter().filter(|i| which.contains(&i.result)).count()
}

fn seconds(i: &ItemReport) -> f64 {
    match (i.started_at, i.finished_at) {
        (Some(s), Some(f)) => f.duration_since(s).as_secs_f64().max(0.0),
        _ => 0.0,
    }
}

fn write_report(out: &mut String, r: &Report) -> std::fmt::Result {
    let suites: Vec<(String, &[ItemReport])> = r
        .phases
        .iter()
        .map(|p| (p.title.clone(), p.items.as_slice()))
        .chain(
            // Rollback items are tests only when the go-live rolled back.
            r.rollback
                .iter()
                .any(|i| i.result != ResultKind::Pending)
                .then(|| ("rollback".to_string(), r.rollback.as_slice())),
        )
        .collect();
    let all: Vec<&ItemReport> = suites.iter().flat_map(|(_, items)| items.iter()).collect();
    let failures = all
        .iter()
        .filter(|i| i.result == ResultKind::Failed)
        .count();
    let skipped = all.len()
        - failures
        - all
            .iter()
            .filter(|i| i.result == ResultKind::Passed)
            .count();
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
        xml_escape(&format!("golive {} {}", r.plan.name, r.run.id)),
        all.len()
    )?;
    for (title, items) in &suites {
        writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            xml_escape(title),
            items.len(),
            count(items, &[ResultKind::Failed]),
            count(
                items,
                &[
                    ResultKind::Skipped,
                    ResultKind::Pending,
                    ResultKind::Interrupted
                ]
            )
        )?;
        for i in *items {
            write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                xml_escape(&i.title),
                xml_escape(&format!("{}.{}", i.kind, i.id)),
                seconds(i)
            )?;
            match i.result {
                ResultKind::Passed => writeln!(out, "/>")?,
                ResultKind::Failed => {
                    let message = i.error.clone().unwrap_or_else(|| "failed".into());
                    let mut body = String::new();
                    if let Some(check) = &i.check {
                        for c in &check.conditions {
                            let ok = if c.passed { "ok" } else { "FAILED" };
                            let seen = c.observed.as_deref().unwrap_or("-");
                            body.push_str(&format!("{ok}: {} (observed {seen})\n", c.condition));
                        }
                    }
                    if let Some(cmd) = &i.command {
                        body.push_str(&format!("$ {}\n", cmd.command));
                        for l in cmd.stderr.head.iter().chain(&cmd.stderr.tail) {
                            body.push_str(l);
                            body.push('\n');
                        }
                    }
                    writeln!(out, ">")?;
                    writeln!(
                        out,
                        "      <failure message=\"{}\">{}</failure>",
                        xml_escape(&message),
                        xml_escape(&body)
                    )?;
                    writeln!(out, "    </testcase>")?;
                }
                other => {
                    let message = match (other, &i.confirmation) {
                        (ResultKind::Skipped, Some(c)) => format!(
                            "skipped by {}{}",
                            c.by,
                            c.reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        ),
                        (ResultKind::Skipped, None) => "skipped".to_string(),
                        (other, _) => format!("not finished: {}", other.as_str()),
                    };
                    writeln!(out, ">")?;
                    writeln!(out, "      <skipped message=\"{}\"/>", xml_escape(&message))?;
                    writeln!(out, "    </testcase>")?;
                }
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}
