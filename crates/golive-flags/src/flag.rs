//! [`Flag`]: a flag definition, its JSON form (parsing with every problem
//! reported by field path, and the canonical output) and admin updates.
//!
//! The JSON is parsed by hand rather than through `#[derive(Deserialize)]`
//! because serde stops at the first error, and an admin fixing a flag
//! should see all of its problems at once, each with its path.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::{FlagError, FlagKey};

/// The name under which a context's targeting key is addressed, both as
/// the default stickiness and as a rule attribute.
pub(crate) const TARGETING_KEY: &str = "targetingKey";

/// The longest variant name accepted, in characters.
const MAX_VARIANT_NAME: usize = 128;
/// A description is for people reading the flag list, not a document: every
/// snapshot and every audited change carries it.
const MAX_DESCRIPTION: usize = 4 * 1024;

const FLAG_FIELDS: &[&str] = &[
    "flag",
    "key",
    "enabled",
    "description",
    "percentage",
    "stickiness",
    "group_id",
    "variants",
    "default_variant",
    "targeting",
];
const VARIANT_FIELDS: &[&str] = &["name", "value", "weight"];
const TARGETING_FIELDS: &[&str] = &["include", "exclude", "rules"];
const RULE_FIELDS: &[&str] = &["attribute", "op", "values", "value"];

/// The type of a flag's value, as OpenFeature distinguishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagKind {
    /// `true`/`false`: every flag without variants, and flags whose variant
    /// values are booleans.
    Boolean,
    /// Variant values are strings.
    String,
    /// Variant values are integral JSON numbers.
    Integer,
    /// Variant values are JSON numbers with a fraction or exponent.
    Float,
    /// Variant values are JSON objects.
    Object,
}

impl FlagKind {
    /// The lowercase name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::String => "string",
            Self::Integer => "integer",
            Self::Float => "float",
            Self::Object => "object",
        }
    }

    /// The kind of a variant value; `None` for null and arrays, which are
    /// not OpenFeature flag types.
    fn of(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(_) => Some(Self::Boolean),
            Value::String(_) => Some(Self::String),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(Self::Integer),
            Value::Number(_) => Some(Self::Float),
            Value::Object(_) => Some(Self::Object),
            Value::Null | Value::Array(_) => None,
        }
    }
}

impl fmt::Display for FlagKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of a flag's variants: a named value and its share of the traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub(crate) name: String,
    pub(crate) value: Value,
    pub(crate) weight: u32,
}

impl Variant {
    /// The variant's name, reported as OFREP's `variant`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value served for this variant.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The variant's weight, relative to the sum of all weights.
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

/// A rule operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    In,
    NotIn,
    Eq,
    Neq,
    StartsWith,
    EndsWith,
    Gt,
    Lt,
}

impl Op {
    const ALL: [Op; 8] = [
        Op::In,
        Op::NotIn,
        Op::Eq,
        Op::Neq,
        Op::StartsWith,
        Op::EndsWith,
        Op::Gt,
        Op::Lt,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::NotIn => "not_in",
            Self::Eq => "eq",
            Self::Neq => "neq",
            Self::StartsWith => "starts_with",
            Self::EndsWith => "ends_with",
            Self::Gt => "gt",
            Self::Lt => "lt",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// List operators take `values` (matching any of them); the others
    /// take a single `value`.
    fn takes_list(self) -> bool {
        matches!(
            self,
            Self::In | Self::NotIn | Self::StartsWith | Self::EndsWith
        )
    }

    /// What an operand of this operator must be, if `operand` is not it.
    fn operand_problem(self, operand: &Value) -> Option<&'static str> {
        let ok = match self {
            Self::In | Self::NotIn | Self::Eq | Self::Neq => {
                matches!(
                    operand,
                    Value::String(_) | Value::Number(_) | Value::Bool(_)
                )
            }
            Self::StartsWith | Self::EndsWith => operand.is_string(),
            Self::Gt | Self::Lt => operand.is_number(),
        };
        match (ok, self) {
            (true, _) => None,
            (false, Self::StartsWith | Self::EndsWith) => Some("must be a string"),
            (false, Self::Gt | Self::Lt) => Some("must be a number"),
            (false, _) => Some("must be a string, number or boolean"),
        }
    }
}

/// One targeting rule: `attribute op operand(s)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    pub(crate) attribute: String,
    pub(crate) op: Op,
    /// `values` for list operators, the one `value` otherwise.
    pub(crate) operands: Vec<Value>,
}

/// Targeting-key lists and attribute rules.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Targeting {
    // The lists keep the admin's order for the canonical JSON; the sets
    // answer membership in constant time for long lists.
    include: Vec<String>,
    exclude: Vec<String>,
    pub(crate) include_set: HashSet<String>,
    pub(crate) exclude_set: HashSet<String>,
    pub(crate) rules: Vec<Rule>,
}

impl Targeting {
    fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty() && self.rules.is_empty()
    }
}

/// A feature flag: its definition, validated, ready to evaluate.
///
/// Built from JSON by [`Flag::from_json`], written back by
/// [`Flag::to_json`], changed by [`Flag::apply`] and evaluated by
/// [`Flag::evaluate`] (see the crate docs for the rules).
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub(crate) key: FlagKey,
    pub(crate) enabled: bool,
    pub(crate) description: Option<String>,
    /// The percentage in hundredths of a percent (`0..=10_000`), exactly,
    /// so that comparisons with buckets involve no float rounding.
    pub(crate) basis_points: Option<u32>,
    pub(crate) stickiness: Option<String>,
    pub(crate) group_id: Option<String>,
    pub(crate) variants: Vec<Variant>,
    pub(crate) default_variant: Option<usize>,
    /// Sum of the variant weights (`> 0` when there are variants).
    pub(crate) total_weight: u32,
    /// The variant served whenever the flag is on, when it is the only
    /// one with a positive weight: no hashing, and no id needed.
    pub(crate) only_variant: Option<usize>,
    pub(crate) kind: FlagKind,
    pub(crate) targeting: Targeting,
}

impl Flag {
    /// Parses and validates a flag definition.
    ///
    /// Every problem is reported, each prefixed with the path of its field
    /// (`percentage: must be between 0 and 100 (got 120)`,
    /// `variants[1].weight: ...`, `colour: unknown field ...`).
    pub fn from_json(value: &Value) -> Result<Flag, FlagError> {
        let Some(obj) = value.as_object() else {
            return Err(FlagError::Invalid(vec![format!(
                "flag definition must be a JSON object (got {})",
                got(value)
            )]));
        };
        let mut p = Problems::default();
        p.unknown_fields(obj, FLAG_FIELDS, "");

        let key = parse_key(obj, &mut p);
        let enabled = match obj.get("enabled") {
            None => p.add("enabled", "required"),
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => p.add("enabled", format!("must be a boolean (got {})", got(other))),
        };
        let description = match present(obj, "description") {
            None => None,
            Some(Value::String(s)) if s.len() > MAX_DESCRIPTION => p.add(
                "description",
                format!("at most {MAX_DESCRIPTION} bytes (got {})", s.len()),
            ),
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => p.add(
                "description",
                format!("must be a string (got {})", got(other)),
            ),
        };
        let basis_points = present(obj, "percentage").and_then(|v| parse_percentage(v, &mut p));
        let stickiness = optional_name(obj, "stickiness", &mut p);
        let group_id = optional_name(obj, "group_id", &mut p);
        let variants = present(obj, "variants").map(|v| parse_variants(v, &mut p));
        let default_variant = parse_default_variant(obj, variants.as_ref(), &mut p);
        let targeting = match present(obj, "targeting") {
            None => Targeting::default(),
            Some(v) => parse_targeting(v, &mut p),
        };

        let (Some(key), Some(enabled), true) = (key, enabled, p.0.is_empty()) else {
            return Err(FlagError::Invalid(p.0));
        };
        let parsed = variants.unwrap_or_default();
        let total_weight = parsed.total_weight;
        let mut positive = parsed
            .variants
            .iter()
            .enumerate()
            .filter(|(_, v)| v.weight > 0);
        let only_variant = match (positive.next(), positive.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        };
        Ok(Flag {
            key,
            enabled,
            description,
            basis_points,
            stickiness,
            group_id,
            kind: parsed.kind.unwrap_or(FlagKind::Boolean),
            variants: parsed.variants,
            default_variant,
            total_weight,
            only_variant,
            targeting,
        })
    }

    /// The canonical JSON form: the key as `"flag"`, absent optional fields
    /// omitted, an integral percentage as an integer.
    /// `Flag::from_json(&flag.to_json())` gives back an equal flag.
    pub fn to_json(&self) -> Value {
        Value::Object(self.to_map())
    }

    fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("flag".into(), self.key.as_str().into());
        m.insert("enabled".into(), self.enabled.into());
        if let Some(d) = &self.description {
            m.insert("description".into(), d.as_str().into());
        }
        if let Some(bp) = self.basis_points {
            let percentage = if bp % 100 == 0 {
                Value::from(bp / 100)
            } else {
                Value::from(f64::from(bp) / 100.0)
            };
            m.insert("percentage".into(), percentage);
        }
        if let Some(s) = &self.stickiness {
            m.insert("stickiness".into(), s.as_str().into());
        }
        if let Some(g) = &self.group_id {
            m.insert("group_id".into(), g.as_str().into());
        }
        if !self.variants.is_empty() {
            let variants = self.variants.iter().map(|v| {
                let mut o = Map::new();
                o.insert("name".into(), v.name.as_str().into());
                o.insert("value".into(), v.value.clone());
                o.insert("weight".into(), v.weight.into());
                Value::Object(o)
            });
            m.insert("variants".into(), variants.collect());
        }
        if let Some(d) = self.default_variant() {
            m.insert("default_variant".into(), d.name.as_str().into());
        }
        if !self.targeting.is_empty() {
            m.insert("targeting".into(), targeting_json(&self.targeting));
        }
        m
    }

    /// Applies a partial admin update and validates the result.
    ///
    /// The patch uses the definition's field names and JSON Merge Patch
    /// rules (RFC 7396): a field given replaces the current one, `null`
    /// removes an optional field, objects (`targeting`) merge field by
    /// field, arrays (`variants`, `include`, ...) are replaced whole. The
    /// key may be repeated but not changed ([`FlagError::KeyChange`]).
    pub fn apply(&self, patch: &Value) -> Result<Flag, FlagError> {
        let Some(patch) = patch.as_object() else {
            return Err(FlagError::Invalid(vec![format!(
                "update must be a JSON object (got {})",
                got(patch)
            )]));
        };
        let mut problems = Problems::default();
        for alias in ["flag", "key"] {
            match patch.get(alias) {
                None => {}
                Some(Value::String(s)) if s == self.key.as_str() => {}
                Some(Value::String(s)) => {
                    return Err(FlagError::KeyChange {
                        current: self.key.clone(),
                        requested: s.clone(),
                    });
                }
                Some(other) => {
                    problems.add::<()>(
                        alias,
                        format!("the key cannot be removed or changed (got {})", got(other)),
                    );
                }
            }
        }
        if !problems.0.is_empty() {
            return Err(FlagError::Invalid(problems.0));
        }
        let mut merged = self.to_map();
        for (field, value) in patch {
            if field == "flag" || field == "key" {
                continue;
            }
            if value.is_null() {
                merged.remove(field);
            } else {
                let slot = merged.entry(field.clone()).or_insert(Value::Null);
                merge_patch(slot, value);
            }
        }
        Flag::from_json(&Value::Object(merged))
    }

    /// The flag's key.
    pub fn key(&self) -> &FlagKey {
        &self.key
    }

    /// Whether the flag is switched on at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The rollout percentage, if the flag has one.
    pub fn percentage(&self) -> Option<f64> {
        self.basis_points.map(|bp| f64::from(bp) / 100.0)
    }

    /// The type of the flag's value.
    pub fn kind(&self) -> FlagKind {
        self.kind
    }

    /// The admin's description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The context attribute whose value is bucketed
    /// (`"targetingKey"` unless configured).
    pub fn stickiness(&self) -> &str {
        self.stickiness.as_deref().unwrap_or(TARGETING_KEY)
    }

    /// The bucketing group: `group_id`, or else the flag's key.
    pub fn group(&self) -> &str {
        self.group_id.as_deref().unwrap_or(self.key.as_str())
    }

    /// The variants, in order (empty for a plain boolean flag).
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// The variant served when the flag is off for a context.
    pub fn default_variant(&self) -> Option<&Variant> {
        self.default_variant.and_then(|i| self.variants.get(i))
    }
}

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Flag::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// Problems found so far, each already prefixed with its path.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// Records a problem; returns `None` so that a parser can record and
    /// give up on a field in one expression.
    fn add<T>(&mut self, path: &str, message: impl fmt::Display) -> Option<T> {
        self.0.push(format!("{path}: {message}"));
        None
    }

    fn unknown_fields(&mut self, obj: &Map<String, Value>, known: &[&str], prefix: &str) {
        for field in obj.keys().filter(|f| !known.contains(&f.as_str())) {
            self.add::<()>(
                &join(prefix, field),
                format!("unknown field (expected one of: {})", known.join(", ")),
            );
        }
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// A short description of a value for error messages: scalars as JSON,
/// containers by their type only.
fn got(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() > 40 => "a long string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        scalar => scalar.to_string(),
    }
}

/// An optional field's value; `null` counts as absent.
fn present<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

fn parse_key(obj: &Map<String, Value>, p: &mut Problems) -> Option<FlagKey> {
    let (field, value) = match (obj.get("flag"), obj.get("key")) {
        (None, None) => return p.add("flag", "required"),
        (Some(flag), Some(key)) if flag != key => {
            return p.add(
                "key",
                "give the key once, as \"flag\" (or its alias \"key\"), not both",
            );
        }
        (Some(flag), _) => ("flag", flag),
        (None, Some(key)) => ("key", key),
    };
    let Value::String(key) = value else {
        return p.add(field, format!("must be a string (got {})", got(value)));
    };
    match FlagKey::problem(key) {
        Some(problem) => p.add(field, problem),
        None => FlagKey::try_from(key.clone()).ok(),
    }
}

fn parse_percentage(value: &Value, p: &mut Problems) -> Option<u32> {
    let Value::Number(n) = value else {
        return p.add(
            "percentage",
            format!("must be a number between 0 and 100 (got {})", got(value)),
        );
    };
    let percent = n.as_f64().filter(|f| (0.0..=100.0).contains(f));
    let Some(percent) = percent else {
        return p.add("percentage", format!("must be between 0 and 100 (got {n})"));
    };
    let scaled = percent * 100.0;
    let basis_points = scaled.round();
    // Tolerance only absorbs the binary representation of decimals such as
    // 12.34, never a genuine third decimal.
    if (scaled - basis_points).abs() > 1e-6 {
        return p.add(
            "percentage",
            format!("must have at most 2 decimals, i.e. 0.01 % steps (got {n})"),
        );
    }
    Some(basis_points as u32)
}

/// An optional non-empty string naming an attribute or group.
fn optional_name(obj: &Map<String, Value>, field: &str, p: &mut Problems) -> Option<String> {
    match present(obj, field)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        other => p.add(
            field,
            format!("must be a non-empty string (got {})", got(other)),
        ),
    }
}

#[derive(Default)]
struct ParsedVariants {
    variants: Vec<Variant>,
    kind: Option<FlagKind>,
    total_weight: u32,
}

fn parse_variants(value: &Value, p: &mut Problems) -> ParsedVariants {
    let mut parsed = ParsedVariants::default();
    let Value::Array(items) = value else {
        p.add::<()>(
            "variants",
            format!(
                "must be an array of {{\"name\", \"value\", \"weight\"}} objects (got {})",
                got(value)
            ),
        );
        return parsed;
    };
    if items.is_empty() {
        p.add::<()>(
            "variants",
            "must not be empty (leave it out for a boolean flag)",
        );
        return parsed;
    }
    // The first variant whose value had a valid kind, to name in a
    // mismatch message.
    let mut first_kind: Option<(usize, FlagKind)> = None;
    let mut total: u64 = 0;
    let mut weights_ok = true;
    for (i, item) in items.iter().enumerate() {
        let path = format!("variants[{i}]");
        let Value::Object(o) = item else {
            p.add::<()>(&path, format!("must be an object (got {})", got(item)));
            continue;
        };
        p.unknown_fields(o, VARIANT_FIELDS, &path);

        let name = match o.get("name") {
            None => p.add(&join(&path, "name"), "required"),
            Some(Value::String(s)) if s.is_empty() || s.chars().count() > MAX_VARIANT_NAME => p
                .add(
                    &join(&path, "name"),
                    format!("must be 1 to {MAX_VARIANT_NAME} characters"),
                ),
            Some(Value::String(s)) => match parsed.variants.iter().position(|v| v.name == *s) {
                Some(_) => p.add(
                    &join(&path, "name"),
                    format!("duplicate variant name {s:?}"),
                ),
                None => Some(s.clone()),
            },
            Some(other) => p.add(
                &join(&path, "name"),
                format!("must be a string (got {})", got(other)),
            ),
        };

        let value = match o.get("value") {
            None => p.add(&join(&path, "value"), "required"),
            Some(v) => match (FlagKind::of(v), first_kind) {
                (None, _) => p.add(
                    &join(&path, "value"),
                    format!(
                        "must be a boolean, string, number or object (got {})",
                        got(v)
                    ),
                ),
                (Some(kind), None) => {
                    first_kind = Some((i, kind));
                    Some(v.clone())
                }
                (Some(kind), Some((_, first))) if kind == first => Some(v.clone()),
                (Some(kind), Some((j, first))) => p.add(
                    &join(&path, "value"),
                    format!(
                        "is {} {kind} but variants[{j}].value is {} {first}; \
                         all variant values must have the same type",
                        article(kind),
                        article(first)
                    ),
                ),
            },
        };

        let weight = match o.get("weight") {
            None => p.add(&join(&path, "weight"), "required"),
            Some(Value::Number(n)) => match n.as_u64().and_then(|w| u32::try_from(w).ok()) {
                Some(w) => Some(w),
                None => p.add(
                    &join(&path, "weight"),
                    format!("must be a non-negative integer (got {n})"),
                ),
            },
            Some(other) => p.add(
                &join(&path, "weight"),
                format!("must be a non-negative integer (got {})", got(other)),
            ),
        };
        match weight {
            Some(w) => total += u64::from(w),
            None => weights_ok = false,
        }

        if let (Some(name), Some(value), Some(weight)) = (name, value, weight) {
            parsed.variants.push(Variant {
                name,
                value,
                weight,
            });
        }
    }
    parsed.kind = first_kind.map(|(_, kind)| kind);
    if weights_ok {
        match u32::try_from(total) {
            Ok(0) => {
                p.add::<()>("variants", "the weights must add up to more than 0");
            }
            Ok(total) => parsed.total_weight = total,
            Err(_) => {
                p.add::<()>(
                    "variants",
                    format!("the weights add up to {total}, more than {}", u32::MAX),
                );
            }
        }
    }
    parsed
}

fn article(kind: FlagKind) -> &'static str {
    match kind {
        FlagKind::Integer | FlagKind::Object => "an",
        _ => "a",
    }
}

fn parse_default_variant(
    obj: &Map<String, Value>,
    variants: Option<&ParsedVariants>,
    p: &mut Problems,
) -> Option<usize> {
    const FIELD: &str = "default_variant";
    let given = present(obj, FIELD);
    let Some(variants) = variants else {
        if given.is_some() {
            p.add::<()>(FIELD, "only allowed together with \"variants\"");
        }
        return None;
    };
    let name = match given {
        None => return p.add(FIELD, "required when \"variants\" is given"),
        Some(Value::String(s)) => s,
        Some(other) => return p.add(FIELD, format!("must be a string (got {})", got(other))),
    };
    let position = variants.variants.iter().position(|v| v.name == *name);
    // When some variant failed to parse, its name may be the one meant:
    // the problem is already reported there, so stay quiet here.
    if position.is_none() && !p.0.iter().any(|m| m.starts_with("variants")) {
        let names: Vec<&str> = variants.variants.iter().map(|v| v.name.as_str()).collect();
        p.add::<()>(
            FIELD,
            format!("{name:?} is not one of the variants ({})", names.join(", ")),
        );
    }
    position
}

fn parse_targeting(value: &Value, p: &mut Problems) -> Targeting {
    let mut targeting = Targeting::default();
    let Value::Object(o) = value else {
        p.add::<()>(
            "targeting",
            format!("must be an object (got {})", got(value)),
        );
        return targeting;
    };
    p.unknown_fields(o, TARGETING_FIELDS, "targeting");
    targeting.include = parse_key_list(o, "include", p);
    targeting.exclude = parse_key_list(o, "exclude", p);
    targeting.include_set = targeting.include.iter().cloned().collect();
    targeting.exclude_set = targeting.exclude.iter().cloned().collect();
    match present(o, "rules") {
        None => {}
        Some(Value::Array(rules)) => {
            for (i, rule) in rules.iter().enumerate() {
                if let Some(rule) = parse_rule(&format!("targeting.rules[{i}]"), rule, p) {
                    targeting.rules.push(rule);
                }
            }
        }
        Some(other) => {
            p.add::<()>(
                "targeting.rules",
                format!("must be an array of rules (got {})", got(other)),
            );
        }
    }
    targeting
}

fn parse_key_list(o: &Map<String, Value>, field: &str, p: &mut Problems) -> Vec<String> {
    let path = format!("targeting.{field}");
    match present(o, field) {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                other => p.add(
                    &format!("{path}[{i}]"),
                    format!(
                        "must be a non-empty targeting key string (got {})",
                        got(other)
                    ),
                ),
            })
            .collect(),
        Some(other) => {
            p.add::<()>(
                &path,
                format!("must be an array of targeting keys (got {})", got(other)),
            );
            Vec::new()
        }
    }
}

fn parse_rule(path: &str, value: &Value, p: &mut Problems) -> Option<Rule> {
    let Value::Object(o) = value else {
        return p.add(
            path,
            format!(
                "must be an object {{\"attribute\", \"op\", \"values\" or \"value\"}} (got {})",
                got(value)
            ),
        );
    };
    p.unknown_fields(o, RULE_FIELDS, path);
    let attribute = match o.get("attribute") {
        None => p.add(&join(path, "attribute"), "required"),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(other) => p.add(
            &join(path, "attribute"),
            format!("must be a non-empty string (got {})", got(other)),
        ),
    };
    let names: Vec<&str> = Op::ALL.iter().map(|op| op.as_str()).collect();
    let op = match o.get("op") {
        None => p.add(&join(path, "op"), "required"),
        Some(Value::String(s)) => match Op::parse(s) {
            Some(op) => Some(op),
            None => p.add(
                &join(path, "op"),
                format!(
                    "unknown operator {s:?} (expected one of: {})",
                    names.join(", ")
                ),
            ),
        },
        Some(other) => p.add(
            &join(path, "op"),
            format!("must be a string (got {})", got(other)),
        ),
    };
    let operands = op.and_then(|op| parse_operands(path, o, op, p));
    Some(Rule {
        attribute: attribute?,
        op: op?,
        operands: operands?,
    })
}

fn parse_operands(
    path: &str,
    o: &Map<String, Value>,
    op: Op,
    p: &mut Problems,
) -> Option<Vec<Value>> {
    let (wanted, unwanted) = if op.takes_list() {
        ("values", "value")
    } else {
        ("value", "values")
    };
    if o.contains_key(unwanted) {
        p.add::<()>(
            &join(path, unwanted),
            format!("not used by op {:?}; give {wanted:?}", op.as_str()),
        );
    }
    let wanted_path = join(path, wanted);
    let Some(given) = o.get(wanted) else {
        return p.add(&wanted_path, format!("required for op {:?}", op.as_str()));
    };
    let check =
        |operand_path: &str, operand: &Value, p: &mut Problems| match op.operand_problem(operand) {
            Some(problem) => p.add::<()>(
                operand_path,
                format!("{problem} for op {:?} (got {})", op.as_str(), got(operand)),
            ),
            None => Some(()),
        };
    if !op.takes_list() {
        return check(&wanted_path, given, p).map(|()| vec![given.clone()]);
    }
    let Value::Array(items) = given else {
        return p.add(
            &wanted_path,
            format!("must be an array (got {})", got(given)),
        );
    };
    if items.is_empty() {
        return p.add(&wanted_path, "must not be empty");
    }
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        ok &= check(&format!("{wanted_path}[{i}]"), item, p).is_some();
    }
    ok.then(|| items.clone())
}

fn targeting_json(targeting: &Targeting) -> Value {
    let mut t = Map::new();
    if !targeting.include.is_empty() {
        t.insert("include".into(), targeting.include.clone().into());
    }
    if !targeting.exclude.is_empty() {
        t.insert("exclude".into(), targeting.exclude.clone().into());
    }
    if !targeting.rules.is_empty() {
        let rules = targeting.rules.iter().map(|rule| {
            let mut r = Map::new();
            r.insert("attribute".into(), rule.attribute.as_str().into());
            r.insert("op".into(), rule.op.as_str().into());
            match (rule.op.takes_list(), rule.operands.first()) {
                (false, Some(value)) => {
                    r.insert("value".into(), value.clone());
                }
                _ => {
                    r.insert("values".into(), rule.operands.clone().into());
                }
            }
            Value::Object(r)
        });
        t.insert("rules".into(), rules.collect());
    }
    Value::Object(t)
}

/// RFC 7396 JSON Merge Patch of `patch` into `target`.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (field, value) in patch {
            if value.is_null() {
                target.remove(field);
            } else {
                merge_patch(target.entry(field.clone()).or_insert(Value::Null), value);
            }
        }
    }
}
