//! A serde [`Deserializer`] over the span-annotated YAML tree.
//!
//! It exists for the diagnostics: every error carries the span of the value
//! that caused it, unknown keys are *collected* (with a "did you mean")
//! instead of aborting, and two wrapper types let the raw plan types keep
//! positions ([`Spanned`]) and defer parts of the tree ([`Deferred`]) so that
//! one broken item does not hide the errors of the next.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::yaml::{Key, Node, Span, Value, is_null_text};

const SPANNED: &str = "$golive::Spanned";
const SPANNED_FIELDS: &[&str] = &["$start", "$end", "$value"];
const DEFERRED: &str = "$golive::Deferred";

/// An error found while reading the tree into typed values.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    /// What is wrong.
    pub message: String,
    /// Where, when known.
    pub span: Option<Span>,
    /// A suggestion, e.g. "did you mean `timeout`?".
    pub help: Option<String>,
}

impl DeError {
    pub(crate) fn new(message: impl Into<String>, span: Span) -> Self {
        DeError {
            message: message.into(),
            span: Some(span),
            help: None,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            span: None,
            help: None,
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            message: format!("unknown value `{variant}`"),
            span: None,
            help: Some(match suggest(variant, expected) {
                Some(s) => format!("did you mean `{s}`? (one of: {})", expected.join(", ")),
                None => format!("expected one of: {}", expected.join(", ")),
            }),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::custom(format_args!("missing field `{field}`"))
    }
}

/// The closest candidate to a misspelled name, if one is close enough.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Errors gathered while reading one tree; unknown keys land here and reading goes on.
pub type Sink = RefCell<Vec<DeError>>;

/// Reads `T` from `node`; unknown keys are pushed to `sink`, the first hard error is returned.
pub fn from_node<T: de::DeserializeOwned>(node: &Node, sink: &Sink) -> Result<T, DeError> {
    T::deserialize(NodeDe { node, sink })
}

#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
    sink: &'a Sink,
}

impl NodeDe<'_> {
    fn at<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|mut e| {
            e.span.get_or_insert(self.node.span);
            e
        })
    }

    fn scalar(&self) -> Option<(&str, bool)> {
        match &self.node.value {
            Value::Scalar { text, plain } => Some((text, *plain)),
            _ => None,
        }
    }

    fn invalid(&self, expected: &str) -> DeError {
        let found = match &self.node.value {
            Value::Scalar { text, plain } if *plain && is_null_text(text) => "nothing".to_string(),
            Value::Scalar { text, .. } => format!("`{}`", clip(text)),
            _ => self.node.kind().to_string(),
        };
        DeError::new(
            format!("expected {expected}, found {found}"),
            self.node.span,
        )
    }

    fn number<N: std::str::FromStr>(&self, expected: &str) -> Result<N, DeError> {
        self.scalar()
            .and_then(|(t, _)| parse_int_text(t).parse().ok())
            .ok_or_else(|| self.invalid(expected))
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

fn parse_int_text(t: &str) -> String {
    t.trim().replace('_', "")
}

fn parse_bool(t: &str) -> Option<bool> {
    match t {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

macro_rules! deserialize_number {
    ($($method:ident => $visit:ident : $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let n: $ty = self.number($what)?;
            self.at(visitor.$visit(n))
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Scalar { text, plain: true } => {
                if is_null_text(text) {
                    visitor.visit_unit()
                } else if let Some(b) = parse_bool(text) {
                    visitor.visit_bool(b)
                } else if let Ok(i) = parse_int_text(text).parse::<i64>() {
                    visitor.visit_i64(i)
                } else if let Ok(f) = text
                    .parse::<f64>()
                    .map_err(|_| ())
                    .and_then(|f: f64| if f.is_finite() { Ok(f) } else { Err(()) })
                {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(text)
                }
            }
            Value::Scalar { text, plain: false } => visitor.visit_str(text),
            Value::Seq(items) => visitor.visit_seq(SeqDe {
                iter: items.iter(),
                sink: self.sink,
            }),
            Value::Map(entries) => visitor.visit_map(MapDe::new(entries, None, self.sink)),
        };
        self.at(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = self
            .scalar()
            .and_then(|(t, _)| parse_bool(t))
            .ok_or_else(|| self.invalid("true or false"))?;
        self.at(visitor.visit_bool(b))
    }

    deserialize_number! {
        deserialize_i8 => visit_i8: i8, "a whole number";
        deserialize_i16 => visit_i16: i16, "a whole number";
        deserialize_i32 => visit_i32: i32, "a whole number";
        deserialize_i64 => visit_i64: i64, "a whole number";
        deserialize_u8 => visit_u8: u8, "a whole number from 0 to 255";
        deserialize_u16 => visit_u16: u16, "a whole number from 0 to 65535";
        deserialize_u32 => visit_u32: u32, "a non-negative whole number";
        deserialize_u64 => visit_u64: u64, "a non-negative whole number";
        deserialize_f32 => visit_f32: f32, "a number";
        deserialize_f64 => visit_f64: f64, "a number";
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some((t, plain)) if !(plain && is_null_text(t)) => self.at(visitor.visit_str(t)),
            _ => Err(self.invalid("text")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            self.at(visitor.visit_none())
        } else {
            self.at(visitor.visit_some(self))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            self.at(visitor.visit_unit())
        } else {
            Err(self.invalid("nothing"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == DEFERRED {
            CAPTURED.with(|c| *c.borrow_mut() = Some(self.node.clone()));
            return self.at(visitor.visit_unit());
        }
        self.at(visitor.visit_newtype_struct(self))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) => self.at(visitor.visit_seq(SeqDe {
                iter: items.iter(),
                sink: self.sink,
            })),
            _ if self.node.is_null() => self.at(visitor.visit_seq(SeqDe {
                iter: [].iter(),
                sink: self.sink,
            })),
            _ => Err(self.invalid("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(entries) => self.at(visitor.visit_map(MapDe::new(entries, None, self.sink))),
            _ if self.node.is_null() => {
                self.at(visitor.visit_map(MapDe::new(&[], None, self.sink)))
            }
            _ => Err(self.invalid("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED {
            return self.at(visitor.visit_map(SpannedDe {
                node: self.node,
                sink: self.sink,
                step: 0,
            }));
        }
        match &self.node.value {
            Value::Map(entries) => {
                self.at(visitor.visit_map(MapDe::new(entries, Some(fields), self.sink)))
            }
            _ if self.node.is_null() => {
                self.at(visitor.visit_map(MapDe::new(&[], Some(fields), self.sink)))
            }
            _ => Err(self.invalid("a mapping")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Scalar { text, .. } => {
                let de: de::value::StrDeserializer<'_, DeError> = text.as_str().into_deserializer();
                self.at(visitor.visit_enum(de))
            }
            Value::Map(entries) if entries.len() == 1 => self.at(visitor.visit_enum(EnumDe {
                key: &entries[0].0,
                value: &entries[0].1,
                sink: self.sink,
            })),
            _ => Err(self.invalid("a name, or a mapping with one key")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqDe<'a> {
    iter: std::slice::Iter<'a, Node>,
    sink: &'a Sink,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            Some(node) => seed
                .deserialize(NodeDe {
                    node,
                    sink: self.sink,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDe<'a> {
    entries: &'a [(Key, Node)],
    next: usize,
    fields: Option<&'static [&'static str]>,
    sink: &'a Sink,
}

impl<'a> MapDe<'a> {
    fn new(
        entries: &'a [(Key, Node)],
        fields: Option<&'static [&'static str]>,
        sink: &'a Sink,
    ) -> Self {
        MapDe {
            entries,
            next: 0,
            fields,
            sink,
        }
    }
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        while let Some((key, _)) = self.entries.get(self.next) {
            if let Some(fields) = self.fields
                && !fields.contains(&key.name.as_str())
            {
                // Reported, skipped, and reading goes on: one typo must not hide the next.
                self.next += 1;
                let mut e = DeError::new(format!("unknown field `{}`", key.name), key.span);
                e.help = Some(match suggest(&key.name, fields) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("expected one of: {}", fields.join(", ")),
                });
                self.sink.borrow_mut().push(e);
                continue;
            }
            let de: de::value::StrDeserializer<'_, DeError> = key.name.as_str().into_deserializer();
            return seed.deserialize(de).map(Some).map_err(|mut e| {
                e.span.get_or_insert(key.span);
                e
            });
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((_, node)) = self.entries.get(self.next) else {
            return Err(de::Error::custom(
                "value requested after the end of a mapping",
            ));
        };
        self.next += 1;
        seed.deserialize(NodeDe {
            node,
            sink: self.sink,
        })
    }
}

struct EnumDe<'a> {
    key: &'a Key,
    value: &'a Node,
    sink: &'a Sink,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumDe<'a> {
    type Error = DeError;
    type Variant = NodeDe<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, NodeDe<'a>), DeError> {
        let de: de::value::StrDeserializer<'_, DeError> =
            self.key.name.as_str().into_deserializer();
        let v = seed.deserialize(de).map_err(|mut e| {
            e.span.get_or_insert(self.key.span);
            e
        })?;
        Ok((
            v,
            NodeDe {
                node: self.value,
                sink: self.sink,
            },
        ))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        if self.node.is_null() {
            Ok(())
        } else {
            Err(self.invalid("nothing"))
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_struct("", fields, visitor)
    }
}

struct SpannedDe<'a> {
    node: &'a Node,
    sink: &'a Sink,
    step: usize,
}

impl<'de> MapAccess<'de> for SpannedDe<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(name) = SPANNED_FIELDS.get(self.step) else {
            return Ok(None);
        };
        let de: de::value::StrDeserializer<'_, DeError> = (*name).into_deserializer();
        seed.deserialize(de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        self.step += 1;
        match self.step {
            1 => seed.deserialize(self.node.span.start.into_deserializer()),
            2 => seed.deserialize(self.node.span.end.into_deserializer()),
            _ => seed.deserialize(NodeDe {
                node: self.node,
                sink: self.sink,
            }),
        }
    }
}

/// A value with the span it was read from. Equality and serialization see the value only.
#[derive(Clone, Debug, Default)]
pub struct Spanned<T> {
    /// Where the value is written (empty for values made in code).
    pub span: Span,
    /// The value.
    pub value: T,
}

impl<T> Spanned<T> {
    /// A value made in code, with no source position.
    pub fn new(value: T) -> Self {
        Spanned {
            span: Span::default(),
            value,
        }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut start = 0usize;
                let mut end = 0usize;
                let mut value = None;
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "$start" => start = map.next_value()?,
                        "$end" => end = map.next_value()?,
                        _ => value = Some(map.next_value()?),
                    }
                }
                let value = value.ok_or_else(|| de::Error::missing_field("$value"))?;
                Ok(Spanned {
                    span: Span::new(start, end),
                    value,
                })
            }
        }
        d.deserialize_struct(SPANNED, SPANNED_FIELDS, V(PhantomData))
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
}

thread_local! {
    static CAPTURED: RefCell<Option<Node>> = const { RefCell::new(None) };
}

/// A part of the plan read later, on its own, so that its errors are collected
/// beside those of its siblings instead of ending the whole read.
#[derive(Clone, Debug, PartialEq)]
pub enum Deferred<T> {
    /// Not read yet: the YAML subtree.
    Node(Node),
    /// A value built in code (e.g. by the importer).
    Value(T),
}

impl<T: de::DeserializeOwned> Deferred<T> {
    /// Reads the value; errors go to `sink` and give `None`.
    pub fn read(&self, sink: &Sink) -> Option<(T, Span)>
    where
        T: Clone,
    {
        match self {
            Deferred::Value(v) => Some((v.clone(), Span::default())),
            Deferred::Node(node) => match from_node::<T>(node, sink) {
                Ok(v) => Some((v, node.span)),
                Err(mut e) => {
                    e.span.get_or_insert(node.span);
                    sink.borrow_mut().push(e);
                    None
                }
            },
        }
    }
}

impl<'de, T> Deserialize<'de> for Deferred<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T> Visitor<'de> for V<T> {
            type Value = Deferred<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a plan section")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Deferred<T>, E> {
                CAPTURED
                    .with(|c| c.borrow_mut().take())
                    .map(Deferred::Node)
                    .ok_or_else(|| E::custom("plan sections are read by golive's YAML reader only"))
            }
        }
        d.deserialize_newtype_struct(DEFERRED, V(PhantomData))
    }
}

impl<T: Serialize> Serialize for Deferred<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Deferred::Value(v) => v.serialize(s),
            Deferred::Node(n) => NodeSer(n).serialize(s),
        }
    }
}

struct NodeSer<'a>(&'a Node);

impl Serialize for NodeSer<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match &self.0.value {
            Value::Scalar { text, plain } if *plain && is_null_text(text) => s.serialize_unit(),
            Value::Scalar { text, .. } => s.serialize_str(text),
            Value::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(&NodeSer(i))?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&k.name, &NodeSer(v))?;
                }
                map.end()
            }
        }
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Deferred<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    #[derive(Deserialize, Debug, Clone)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Run {
        command: Spanned<String>,
        timeout: Option<String>,
        retries: Option<u32>,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Doc {
        items: Vec<Deferred<Run>>,
    }

    #[test]
    fn unknown_fields_are_collected_with_suggestions() {
        let src = "command: ls\ntmeout: 5s\nretires: 2\n";
        let sink = Sink::default();
        let run: Run = from_node(&parse(src).expect("yaml"), &sink).expect("reads");
        assert_eq!(run.command.value, "ls");
        assert_eq!(&src[run.command.span.start..run.command.span.end], "ls");
        let errors = sink.into_inner();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].message, "unknown field `tmeout`");
        assert_eq!(errors[0].help.as_deref(), Some("did you mean `timeout`?"));
        assert_eq!(errors[1].help.as_deref(), Some("did you mean `retries`?"));
    }

    #[test]
    fn deferred_items_fail_one_by_one() {
        let src = "items:\n  - command: ls\n  - command: [a]\n  - retries: -1\n";
        let sink = Sink::default();
        let doc: Doc = from_node(&parse(src).expect("yaml"), &sink).expect("reads");
        let read: Vec<_> = doc.items.iter().map(|i| i.read(&sink)).collect();
        assert!(read[0].is_some());
        assert!(read[1].is_none() && read[2].is_none());
        let errors = sink.into_inner();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].message, "expected text, found a list");
        assert_eq!(
            errors[1].message,
            "expected a non-negative whole number, found `-1`"
        );
        let line_of = |e: &DeError| src[..e.span.expect("span").start].matches('\n').count() + 1;
        assert_eq!(line_of(&errors[0]), 3);
        assert_eq!(line_of(&errors[1]), 4);
    }
}
