//! Loading a plan for a command: read the file, compile it, render the
//! diagnostics for a terminal or as JSON. Shared by every command that takes
//! a plan so they all report problems the same way.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;
use golive_plan::{Compiled, Diagnostic, Located, Report, Severity, Source};

/// A compiled plan with its source, for rendering.
pub struct Loaded {
    pub source: Source,
    pub compiled: Compiled,
}

impl Loaded {
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, s: Severity) -> usize {
        self.compiled
            .diagnostics
            .iter()
            .filter(|d| d.severity == s)
            .count()
    }

    pub fn located(&self) -> Vec<Located> {
        self.compiled
            .diagnostics
            .iter()
            .map(|d| Located::new(&self.source, d))
            .collect()
    }
}

/// Reads and compiles a plan. `vars` are `--var` values; the environment also defines variables.
pub fn load(path: &Path, vars: &[(String, String)]) -> Result<Loaded> {
    let text = golive_plan::read_text(path)?;
    let overrides: BTreeMap<&str, &str> =
        vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let compiled = golive_plan::compile(&text, &|name: &str| {
        overrides.contains_key(name) || std::env::var_os(name).is_some()
    });
    Ok(Loaded {
        source: Source::new(path.display().to_string(), text),
        compiled,
    })
}

/// Renders diagnostics with source snippets and pointers, coloured on a terminal.
pub fn render(source: &Source, diagnostics: &[Diagnostic]) -> String {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    render_with(source, diagnostics, color)
}

pub fn render_with(source: &Source, diagnostics: &[Diagnostic], color: bool) -> String {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for d in diagnostics {
        if d.span.is_none() {
            out.push_str(&format!("{}: ", source.name));
        }
        let report = Report::new(source, d.clone());
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&d.message);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}
