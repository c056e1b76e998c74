//! Diagnostics: what is wrong with a plan, where, and what to do about it.
//!
//! A diagnostic is plain data (so it can be printed as JSON or counted in a
//! test); [`Report`] adapts it to `miette` for the pointed, coloured
//! rendering people read in a terminal.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::yaml::Span;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The plan cannot be used.
    Error,
    /// The plan works, but probably not as meant.
    Warning,
}

/// One finding about a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// Where (None for whole-file problems).
    pub span: Option<Span>,
    /// Short text placed at the span.
    pub label: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: Some(span),
            label: None,
            help: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message, span)
        }
    }

    /// Adds a suggestion.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a label at the span.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// A source file, shared by the diagnostics that point into it.
#[derive(Clone, Debug)]
pub struct Source {
    /// Name shown to the user (usually the path).
    pub name: String,
    /// The text.
    pub text: Arc<str>,
    lines: Arc<LineIndex>,
}

impl Source {
    /// A named text.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        let text = text.into();
        Source {
            name: name.into(),
            lines: Arc::new(LineIndex::new(&text)),
            text,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        self.lines.line_col(&self.text, offset)
    }
}

/// Start offsets of the lines of a text, so that placing an offset costs a
/// binary search instead of a scan from the top.
#[derive(Clone, Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of a byte offset into `text`.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let col = text
            .get(start..offset)
            .map(|t| t.chars().count())
            .unwrap_or(0)
            + 1;
        (line.max(1), col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A diagnostic with its line and column, as printed by `--output json`.
#[derive(Clone, Debug, Serialize)]
pub struct Located {
    /// Error or warning.
    pub severity: Severity,
    /// File.
    pub file: String,
    /// 1-based line (0 when the diagnostic has no position).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Located {
    /// Places a diagnostic in its source.
    pub fn new(source: &Source, d: &Diagnostic) -> Self {
        let (line, column) = d.span.map(|s| source.line_col(s.start)).unwrap_or((0, 0));
        Located {
            severity: d.severity,
            file: source.name.clone(),
            line,
            column,
            message: d.message.clone(),
            help: d.help.clone(),
        }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(h) = &self.help {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// A diagnostic bound to its source, for `miette` rendering.
#[derive(Debug)]
pub struct Report {
    source: miette::NamedSource<Arc<str>>,
    diagnostic: Diagnostic,
}

impl Report {
    /// Binds `diagnostic` to `source`.
    pub fn new(source: &Source, diagnostic: Diagnostic) -> Self {
        Report {
            source: miette::NamedSource::new(source.name.clone(), source.text.clone()),
            diagnostic,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.diagnostic
            .span
            .map(|_| &self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.diagnostic.span?;
        let label = self
            .diagnostic
            .label
            .clone()
            .unwrap_or_else(|| "here".into());
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(Some(label), span),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let s = Source::new("p.yaml", "a: é\nbb: x\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col("a: é\nbb: ".len()), (2, 5));
        assert_eq!(s.line_col(4), (1, 4), "inside a multibyte char rounds down");
    }
}
