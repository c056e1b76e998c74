//! The YAML writer of imported plans.
//!
//! The plan is serialized with serde (so the output follows [`RawPlan`]'s
//! field order and `skip_serializing_if` rules exactly) into a small ordered
//! tree, which is written as block-style YAML a person can review and edit:
//! two-space indentation, `- ` sequences, `{}`/`[]` for empty collections,
//! literal blocks for multi-line commands, and double quotes wherever a plain
//! scalar could be misread by golive's reader.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::raw::RawPlan;

/// A serialized value, maps in field order.
#[derive(Debug, Clone, PartialEq)]
enum Tree {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tree;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
                Ok(Tree::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
                Ok(Tree::Null)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Tree, E> {
                Ok(Tree::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Tree, E> {
                Ok(Tree::Num(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Tree, E> {
                Ok(Tree::Num(n.to_string()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Tree, E> {
                Ok(Tree::Num(n.to_string()))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Tree, E> {
                Ok(Tree::Str(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Tree, E> {
                Ok(Tree::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Tree, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Tree::Seq(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Tree, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry::<String, Tree>()? {
                    v.push((k, x));
                }
                Ok(Tree::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Writes `plan` as YAML, after the `header` comment lines.
pub(crate) fn to_yaml(plan: &RawPlan, header: &[String]) -> String {
    let mut out = String::new();
    for h in header {
        out.push_str("# ");
        out.push_str(&h.replace(|c: char| c.is_control(), " "));
        out.push('\n');
    }
    // serde_json's writer keeps the struct field order; its `Value` would not.
    let tree = serde_json::to_string(plan)
        .map_err(|e| e.to_string())
        .and_then(|json| serde_json::from_str::<Tree>(&json).map_err(|e| e.to_string()));
    match tree {
        Ok(Tree::Map(entries)) => write_map(&mut out, &entries, 0),
        Ok(_) => out.push_str("# error: the plan did not serialize to a mapping\n"),
        Err(e) => {
            out.push_str("# error: the plan could not be serialized: ");
            out.push_str(&e.replace(|c: char| c.is_control(), " "));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(out: &mut String, entries: &[(String, Tree)], indent: usize) {
    for (k, v) in entries {
        pad(out, indent);
        out.push_str(&scalar(k));
        out.push(':');
        write_value(out, v, indent);
    }
}

/// Writes the value after a `key:` or `-` already written, ending the line.
fn write_value(out: &mut String, v: &Tree, indent: usize) {
    match v {
        Tree::Map(m) if m.is_empty() => out.push_str(" {}\n"),
        Tree::Seq(s) if s.is_empty() => out.push_str(" []\n"),
        Tree::Map(m) => {
            out.push('\n');
            write_map(out, m, indent + 2);
        }
        Tree::Seq(s) => {
            out.push('\n');
            write_seq(out, s, indent + 2);
        }
        Tree::Str(s) if literal_ok(s) => {
            out.push_str(if s.ends_with('\n') { " |\n" } else { " |-\n" });
            for l in s.strip_suffix('\n').unwrap_or(s).split('\n') {
                if !l.is_empty() {
                    pad(out, indent + 2);
                    out.push_str(l);
                }
                out.push('\n');
            }
        }
        other => {
            out.push(' ');
            out.push_str(&leaf(other));
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, items: &[Tree], indent: usize) {
    for v in items {
        pad(out, indent);
        out.push('-');
        match v {
            Tree::Map(m) if !m.is_empty() => {
                // The first entry goes on the `- ` line, the rest below it.
                let mut block = String::new();
                write_map(&mut block, m, indent + 2);
                out.push(' ');
                out.push_str(block.get(indent + 2..).unwrap_or(&block));
            }
            other => write_value(out, other, indent),
        }
    }
}

fn leaf(v: &Tree) -> String {
    match v {
        Tree::Null => "null".into(),
        Tree::Bool(b) => b.to_string(),
        Tree::Num(n) => n.clone(),
        Tree::Str(s) => scalar(s),
        Tree::Seq(_) | Tree::Map(_) => String::new(),
    }
}

/// A multi-line string that reads back identically as a literal block.
fn literal_ok(s: &str) -> bool {
    let body = s.strip_suffix('\n').unwrap_or(s);
    body.contains('\n')
        && !body.starts_with([' ', '\n', '\t'])
        && !body.ends_with('\n')
        && !s.chars().any(|c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{FEFF}')
        })
        && body
            .split('\n')
            .all(|l| !l.ends_with([' ', '\t']) && !l.starts_with('\t'))
}

/// A string as a YAML scalar: plain when golive's reader gives back exactly
/// the same text, double-quoted otherwise.
pub(crate) fn scalar(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        quoted(s)
    }
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s != s.trim() || "-?:,[]{}#&*!|>'\"%@`".contains(first) || s.starts_with("...") {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if s.chars().any(|c| {
        c.is_control()
            || c.is_whitespace() && c != ' '
            || matches!(c, '\u{FEFF}' | '\u{2028}' | '\u{2029}')
    }) {
        return false;
    }
    !looks_typed(s)
}

/// Null, booleans and numbers in YAML 1.1 or 1.2 spelling: quoted so that no
/// reader (golive's or another tool's) takes them for anything but text.
fn looks_typed(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    if matches!(
        l.as_str(),
        "~" | "null"
            | "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    ) {
        return true;
    }
    let t = l.replace('_', "");
    let t = t.strip_prefix(['+', '-']).unwrap_or(&t);
    t.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && (t.parse::<f64>().is_ok()
            || t.starts_with("0x")
            || t.starts_with("0o")
            || t.starts_with("0b")
            || t.chars()
                .all(|c| c.is_ascii_digit() || c == ':' || c == '.'))
}

fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}') => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::de::{Deferred, Spanned};
    use crate::raw::{RawItem, RawPhase, RawTask};
    use crate::yaml::{self, Value};

    fn plan_with_title(title: &str) -> RawPlan {
        RawPlan {
            name: Spanned::new("p".into()),
            description: Some(title.to_string()),
            phases: vec![Deferred::Value(RawPhase {
                title: Spanned::new(title.to_string()),
                items: vec![Deferred::Value(RawItem {
                    id: Spanned::new("x".into()),
                    subtasks: vec![Spanned::new(title.to_string())],
                    task: Some(RawTask::default()),
                    ..RawItem::default()
                })],
                ..RawPhase::default()
            })],
            ..RawPlan::default()
        }
    }

    fn text_of(n: &yaml::Node) -> String {
        match &n.value {
            Value::Scalar { text, plain } => {
                assert!(!(*plain && text.is_empty()), "read back as null");
                text.clone()
            }
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn tricky_strings_round_trip() {
        let tricky = [
            "a: b",
            "# x",
            "- x",
            "yes",
            "null",
            "1.0",
            "  lead",
            "trail ",
            "multi\nline",
            "multi\nline\n",
            "quote\"s",
            "tab\t",
            "emoji 🚀",
            "{x}",
            "*star",
            "&amp",
            "!tag",
            "%p",
            "@at",
            "`tick`",
            "|",
            ">",
            "x #y",
            "x:",
            "",
            "~",
            "No",
            "0x1F",
            "1_000",
            "12:30",
            "- [ ] x",
            "back\\slash",
            "'single'",
            "?q",
            ".5",
            "a\r\nb",
            "bell\u{7}",
            "\u{2028}sep",
            "  \n  indented\n",
            "line\n\n\nwith gaps",
            "trailing space \nline",
            "---",
            "...",
            "[ ] SUCCESS",
            "café → ok",
            "\u{FEFF}bom",
        ];
        for t in tricky {
            let yaml = to_yaml(&plan_with_title(t), &["header".into()]);
            let root = yaml::parse(&yaml).unwrap_or_else(|e| panic!("{t:?}: {e}\n{yaml}"));
            let phase = match &root.get("phases").expect("phases").value {
                Value::Seq(p) => p[0].clone(),
                other => panic!("{other:?}"),
            };
            assert_eq!(text_of(phase.get("title").expect("title")), t, "{yaml}");
            assert_eq!(
                text_of(root.get("description").expect("description")),
                t,
                "{yaml}"
            );
            let items = match &phase.get("items").expect("items").value {
                Value::Seq(i) => i.clone(),
                other => panic!("{other:?}"),
            };
            let subtasks = match &items[0].get("subtasks").expect("subtasks").value {
                Value::Seq(s) => s.clone(),
                other => panic!("{other:?}"),
            };
            assert_eq!(text_of(&subtasks[0]), t, "{yaml}");
        }
    }

    #[test]
    fn layout_is_block_style_in_field_order() {
        let yaml = to_yaml(&plan_with_title("Go"), &["Imported".into()]);
        assert_eq!(
            yaml,
            "# Imported\nname: p\ndescription: Go\nphases:\n  - title: Go\n    items:\n      - id: x\n        subtasks:\n          - Go\n        task: {}\n"
        );
    }
}
