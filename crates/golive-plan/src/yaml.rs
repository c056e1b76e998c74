//! YAML text → a tree of [`Node`]s that remember where they came from.
//!
//! Plans are small, but they are also input we do not control: this module is
//! where the hostile cases are stopped (deep nesting, alias bombs, several
//! documents in one file, duplicate keys), so that everything downstream can
//! walk a finite, span-annotated tree and point every diagnostic at a line.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Deepest nesting of sequences and mappings a plan may use. Real plans stay
/// below 10; the bound keeps recursion (and `Drop`) far from the stack limit.
pub const MAX_DEPTH: usize = 64;

/// Most nodes a document may expand to, aliases included. A billion-laughs
/// document reaches this long before it reaches the memory limit.
pub const MAX_NODES: usize = 250_000;

/// A byte range in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }

    /// Number of bytes covered.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True for a zero-width span (a position).
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start, s.len()).into()
    }
}

/// One YAML value with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the value is written.
    pub span: Span,
    /// The value.
    pub value: Value,
}

/// A YAML value. Scalars keep their text: whether `1.0` is a number or a
/// string is decided by the type that reads it, not guessed here, so a
/// `version: 1.10` stays "1.10" and `country: NO` stays "NO".
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar; `plain` is false for quoted and block scalars, which are always strings.
    Scalar {
        /// The scalar's text after unescaping.
        text: String,
        /// Written without quotes (so it may be null, a bool or a number).
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order. Keys are strings (a non-string key is an error).
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where the key is written.
    pub span: Span,
}

impl Node {
    /// True for `~`, `null`, an empty plain scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if is_null_text(text))
    }

    /// Looks up a key in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short word for the node's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Scalar { .. } if self.is_null() => "null",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

pub(crate) fn is_null_text(t: &str) -> bool {
    matches!(t, "" | "~" | "null" | "Null" | "NULL")
}

/// Why a YAML text could not be turned into a tree.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// What went wrong.
    pub message: String,
    /// Where.
    pub span: Span,
}

/// Maps the parser's character positions to byte offsets.
///
/// The parser counts characters; diagnostics need bytes. A checkpoint every
/// [`STRIDE`] characters bounds each lookup to a short scan, so a long
/// one-line document costs linear time, not quadratic.
struct Offsets<'a> {
    src: &'a str,
    ascii: bool,
    checkpoints: Vec<usize>,
}

const STRIDE: usize = 64;

impl<'a> Offsets<'a> {
    fn new(src: &'a str) -> Self {
        let ascii = src.is_ascii();
        let checkpoints = if ascii {
            Vec::new()
        } else {
            src.char_indices().step_by(STRIDE).map(|(i, _)| i).collect()
        };
        Offsets {
            src,
            ascii,
            checkpoints,
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.src.len());
        }
        let Some(&base) = self.checkpoints.get(char_index / STRIDE) else {
            return self.src.len();
        };
        let rest = &self.src[base..];
        rest.char_indices()
            .nth(char_index % STRIDE)
            .map(|(i, _)| base + i)
            .unwrap_or(self.src.len())
    }

    fn span(&self, s: saphyr_parser::Span) -> Span {
        Span::new(self.byte(s.start.index()), self.byte(s.end.index()))
    }
}

/// Parses one YAML document into a [`Node`] tree.
///
/// An empty document yields a null node. More than one document, a depth
/// beyond [`MAX_DEPTH`], or an expansion beyond [`MAX_NODES`] is an error.
pub fn parse(src: &str) -> Result<Node, YamlError> {
    let offsets = Offsets::new(src);
    let mut builder = Builder::default();
    let mut documents = 0usize;
    for next in Parser::new_from_str(src) {
        let (event, span) = next.map_err(|e| YamlError {
            message: format!("invalid YAML: {}", e.info()),
            span: {
                let b = offsets.byte(e.marker().index());
                Span::new(b, b)
            },
        })?;
        let span = offsets.span(span);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        message: "a plan is one YAML document, but this file has several (`---`)"
                            .into(),
                        span,
                    });
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = matches!(style, ScalarStyle::Plain);
                builder.push_value(
                    Node {
                        span,
                        value: Value::Scalar {
                            text: text.into_owned(),
                            plain,
                        },
                    },
                    anchor,
                )?;
            }
            Event::SequenceStart(anchor, _) => builder.open(span, anchor, false)?,
            Event::MappingStart(anchor, _) => builder.open(span, anchor, true)?,
            Event::SequenceEnd | Event::MappingEnd => builder.close(span)?,
            Event::Alias(id) => {
                let Some(node) = builder.anchors.get(&id).cloned() else {
                    return Err(YamlError {
                        message: "alias to an unknown anchor".into(),
                        span,
                    });
                };
                let count = count_nodes(&node);
                builder.charge(count, span)?;
                builder.push_value(node, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(builder.root.unwrap_or(Node {
        span: Span::new(0, 0),
        value: Value::Scalar {
            text: String::new(),
            plain: true,
        },
    }))
}

fn count_nodes(n: &Node) -> usize {
    // Iterative so that counting cannot itself overflow the stack.
    let mut stack = vec![n];
    let mut count = 0;
    while let Some(n) = stack.pop() {
        count += 1;
        match &n.value {
            Value::Scalar { .. } => {}
            Value::Seq(items) => stack.extend(items.iter()),
            Value::Map(entries) => stack.extend(entries.iter().map(|(_, v)| v)),
        }
    }
    count
}

struct Open {
    span: Span,
    anchor: usize,
    is_map: bool,
    items: Vec<Node>,
    entries: Vec<(Key, Node)>,
    /// Entries brought in by `<<` merge keys; explicit entries win.
    merged: Vec<(Key, Node)>,
    pending_key: Option<Key>,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
}

impl Builder {
    fn charge(&mut self, n: usize, span: Span) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                message: format!(
                    "the document expands to more than {MAX_NODES} values (an alias bomb?)"
                ),
                span,
            });
        }
        Ok(())
    }

    fn open(&mut self, span: Span, anchor: usize, is_map: bool) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
                span,
            });
        }
        self.charge(1, span)?;
        self.stack.push(Open {
            span,
            anchor,
            is_map,
            items: Vec::new(),
            entries: Vec::new(),
            merged: Vec::new(),
            pending_key: None,
        });
        Ok(())
    }

    fn close(&mut self, span: Span) -> Result<(), YamlError> {
        let Some(open) = self.stack.pop() else {
            return Ok(());
        };
        let span = Span::new(open.span.start, span.end.max(open.span.end));
        let value = if open.is_map {
            let mut entries = open.entries;
            for (k, v) in open.merged {
                if !entries.iter().any(|(e, _)| e.name == k.name) {
                    entries.push((k, v));
                }
            }
            Value::Map(entries)
        } else {
            Value::Seq(open.items)
        };
        self.push_value(Node { span, value }, open.anchor)
    }

    fn push_value(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if matches!(node.value, Value::Scalar { .. }) {
            self.charge(1, node.span)?;
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        if !top.is_map {
            top.items.push(node);
            return Ok(());
        }
        match top.pending_key.take() {
            None => match node.value {
                Value::Scalar { text, .. } => {
                    top.pending_key = Some(Key {
                        name: text,
                        span: node.span,
                    });
                }
                _ => {
                    return Err(YamlError {
                        message: "mapping keys must be plain strings".into(),
                        span: node.span,
                    });
                }
            },
            Some(key) => {
                if key.name == "<<" {
                    merge(&mut top.merged, node)?;
                } else if top.entries.iter().any(|(k, _)| k.name == key.name) {
                    return Err(YamlError {
                        message: format!("duplicate key `{}`", key.name),
                        span: key.span,
                    });
                } else {
                    top.entries.push((key, node));
                }
            }
        }
        Ok(())
    }
}

/// YAML merge keys (`<<: *defaults`): entries already present win.
fn merge(entries: &mut Vec<(Key, Node)>, node: Node) -> Result<(), YamlError> {
    let sources = match node.value {
        Value::Map(m) => vec![m],
        Value::Seq(items) => {
            let mut maps = Vec::new();
            for item in items {
                match item.value {
                    Value::Map(m) => maps.push(m),
                    _ => {
                        return Err(YamlError {
                            message: "`<<` merges mappings only".into(),
                            span: item.span,
                        });
                    }
                }
            }
            maps
        }
        Value::Scalar { .. } => {
            return Err(YamlError {
                message: "`<<` merges mappings only".into(),
                span: node.span,
            });
        }
    };
    for source in sources {
        for (k, v) in source {
            if !entries.iter().any(|(e, _)| e.name == k.name) {
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(n: &Node) -> &str {
        match &n.value {
            Value::Scalar { text, .. } => text,
            _ => panic!("not a scalar: {n:?}"),
        }
    }

    #[test]
    fn spans_are_byte_offsets_even_after_multibyte_text() {
        let src = "title: \"café ☕\"\nid: x\n";
        let node = parse(src).expect("parses");
        let id = node.get("id").expect("id");
        assert_eq!(&src[id.span.start..id.span.end], "x");
        assert_eq!(scalar(id), "x");
    }

    #[test]
    fn scalars_keep_their_text() {
        let node = parse("version: 1.10\ncountry: NO\n").expect("parses");
        assert_eq!(scalar(node.get("version").expect("v")), "1.10");
        assert_eq!(scalar(node.get("country").expect("c")), "NO");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert!(err.message.contains("duplicate key `a`"), "{err}");
        assert_eq!(err.span.start, 10);
    }

    #[test]
    fn several_documents_are_refused() {
        let err = parse("a: 1\n---\nb: 2\n").expect_err("two docs");
        assert!(err.message.contains("several"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing() {
        let src = "[".repeat(MAX_DEPTH + 5);
        let err = parse(&src).expect_err("too deep");
        assert!(err.message.contains("nesting deeper"), "{err}");
        // Far deeper input is stopped by the parser's own recursion limit.
        assert!(parse(&"[".repeat(100_000)).is_err());
        assert!(parse(&"- ".repeat(100_000)).is_err());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&src).expect_err("bomb");
        assert!(err.message.contains("alias bomb"), "{err}");
    }

    #[test]
    fn merge_keys_fill_missing_entries() {
        let node = parse("base: &b {timeout: 5s, retries: 2}\nrun:\n  <<: *b\n  retries: 3\n")
            .expect("parses");
        let run = node.get("run").expect("run");
        assert_eq!(scalar(run.get("timeout").expect("t")), "5s");
        assert_eq!(scalar(run.get("retries").expect("r")), "3");
    }

    #[test]
    fn empty_input_is_null() {
        assert!(parse("").expect("parses").is_null());
        assert!(parse("# only a comment\n").expect("parses").is_null());
    }
}
