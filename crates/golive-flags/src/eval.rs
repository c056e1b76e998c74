//! Evaluation: the [`Context`] a flag is evaluated for, the [`Evaluation`]
//! it yields with its OpenFeature [`Reason`], and the decision procedure
//! itself (documented in the crate docs).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::flag::{Op, Rule, TARGETING_KEY, Variant};
use crate::hash::{BUCKETS, bucket, hash_parts};
use crate::{EvalError, Flag};

/// Who a flag is evaluated for: the OpenFeature evaluation context.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// The subject's stable identifier (OpenFeature's `targetingKey`).
    pub targeting_key: Option<String>,
    /// Every other attribute of the context, by name.
    pub attributes: Map<String, Value>,
}

impl Context {
    /// An empty context: no targeting key, no attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context with only a targeting key.
    pub fn with_targeting_key(key: impl Into<String>) -> Self {
        Self {
            targeting_key: Some(key.into()),
            attributes: Map::new(),
        }
    }

    /// This context with one more attribute.
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Reads an OFREP request's `context` object: `targetingKey` (a string
    /// when present) and any other attributes.
    pub fn from_ofrep(value: &Value) -> Result<Context, EvalError> {
        let Value::Object(fields) = value else {
            return Err(EvalError::InvalidContext(format!(
                "the context must be a JSON object (got {})",
                type_name(value)
            )));
        };
        let mut attributes = fields.clone();
        let targeting_key = match attributes.remove(TARGETING_KEY) {
            None => None,
            Some(Value::String(key)) => Some(key),
            Some(other) => {
                return Err(EvalError::InvalidContext(format!(
                    "targetingKey must be a string (got {})",
                    type_name(&other)
                )));
            }
        };
        Ok(Context {
            targeting_key,
            attributes,
        })
    }
}

/// The result of evaluating a flag for a context, shaped like an OFREP
/// success response (less the key and metadata).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The flag's value for this context.
    pub value: Value,
    /// The variant served: `"on"`/`"off"` for boolean flags without
    /// variants, else the variant's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Why this value was served.
    pub reason: Reason,
}

/// Why a value was served, with OpenFeature's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// On for everyone: no rules, no (or a 100 %) rollout.
    Static,
    /// Decided by the context: an include/exclude list or matching rules.
    TargetingMatch,
    /// Decided by the context's bucket: a percentage rollout or a weighted
    /// variant pick.
    Split,
    /// The flag is switched off.
    Disabled,
    /// The fallback: rules did not match, a 0 % rollout, or no value to
    /// pick a variant with.
    Default,
}

impl Reason {
    /// The OpenFeature/OFREP name (`"TARGETING_MATCH"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "STATIC",
            Self::TargetingMatch => "TARGETING_MATCH",
            Self::Split => "SPLIT",
            Self::Disabled => "DISABLED",
            Self::Default => "DEFAULT",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the flag is on for a context, why, and the stickiness value if
/// it was already looked up (so a variant pick need not look again).
struct Decision<'a> {
    on: bool,
    reason: Reason,
    sticky: Option<Cow<'a, str>>,
}

impl Decision<'_> {
    fn new(on: bool, reason: Reason) -> Self {
        Self {
            on,
            reason,
            sticky: None,
        }
    }
}

impl Flag {
    /// Evaluates the flag for `ctx`; see the crate docs for the rules.
    pub fn evaluate(&self, ctx: &Context) -> Result<Evaluation, EvalError> {
        let decision = self.decide(ctx)?;
        let Some(default) = self.default_variant() else {
            let variant = if decision.on { "on" } else { "off" };
            return Ok(Evaluation {
                value: Value::Bool(decision.on),
                variant: Some(variant.to_owned()),
                reason: decision.reason,
            });
        };
        if !decision.on {
            return Ok(serve(default, decision.reason));
        }
        if let Some(only) = self.only_variant.and_then(|i| self.variants.get(i)) {
            return Ok(serve(only, decision.reason));
        }
        let sticky = match decision.sticky {
            Some(id) => Some(id),
            None => self.sticky(ctx)?,
        };
        Ok(match sticky {
            Some(id) => serve(self.pick(&id).unwrap_or(default), Reason::Split),
            None => serve(default, Reason::Default),
        })
    }

    fn decide<'a>(&self, ctx: &'a Context) -> Result<Decision<'a>, EvalError> {
        if !self.enabled {
            return Ok(Decision::new(false, Reason::Disabled));
        }
        let targeting = &self.targeting;
        if let Some(key) = ctx.targeting_key.as_deref() {
            if !targeting.exclude_set.is_empty() && targeting.exclude_set.contains(key) {
                return Ok(Decision::new(false, Reason::TargetingMatch));
            }
            if !targeting.include_set.is_empty() && targeting.include_set.contains(key) {
                return Ok(Decision::new(true, Reason::TargetingMatch));
            }
        }
        let targeted = !targeting.rules.is_empty();
        if targeted && !targeting.rules.iter().all(|rule| rule.matches(ctx)) {
            return Ok(Decision::new(false, Reason::Default));
        }
        let everyone = if targeted {
            Reason::TargetingMatch
        } else {
            Reason::Static
        };
        match self.basis_points {
            None => Ok(Decision::new(true, everyone)),
            Some(bp) if bp >= BUCKETS => Ok(Decision::new(true, everyone)),
            Some(0) => Ok(Decision::new(false, Reason::Default)),
            Some(bp) => {
                let id = self.sticky(ctx)?.ok_or(EvalError::TargetingKeyMissing)?;
                Ok(Decision {
                    on: bucket(self.group(), &id) < bp,
                    reason: Reason::Split,
                    sticky: Some(id),
                })
            }
        }
    }

    /// The context's value for the flag's stickiness; an empty string
    /// counts as missing, as it would put every anonymous caller in one
    /// bucket.
    fn sticky<'a>(&self, ctx: &'a Context) -> Result<Option<Cow<'a, str>>, EvalError> {
        let attribute = match self.stickiness.as_deref() {
            None | Some(TARGETING_KEY) => {
                let key = ctx.targeting_key.as_deref().filter(|k| !k.is_empty());
                return Ok(key.map(Cow::Borrowed));
            }
            Some(attribute) => attribute,
        };
        match ctx.attributes.get(attribute) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s))),
            Some(Value::Number(n)) => Ok(Some(Cow::Owned(n.to_string()))),
            Some(other) => Err(EvalError::InvalidContext(format!(
                "attribute {attribute:?} is this flag's stickiness, so it must be a string \
                 or a number (got {})",
                type_name(other)
            ))),
        }
    }

    /// The variant for `id` by weight: `murmur3("variant:{group}:{id}") %
    /// total_weight`, walking the variants in order. A different prefix
    /// from the rollout's keeps the variant independent of the bucket, so
    /// users let in early are not all given the same variant.
    fn pick(&self, id: &str) -> Option<&Variant> {
        let hash = hash_parts(&[b"variant:", self.group().as_bytes(), b":", id.as_bytes()]);
        let target = hash.checked_rem(self.total_weight)?;
        let mut upper = 0u32;
        self.variants.iter().find(|variant| {
            upper += variant.weight;
            target < upper
        })
    }
}

fn serve(variant: &Variant, reason: Reason) -> Evaluation {
    Evaluation {
        value: variant.value.clone(),
        variant: Some(variant.name.clone()),
        reason,
    }
}

/// A context attribute as a rule sees it.
#[derive(Clone, Copy)]
enum Attr<'a> {
    Missing,
    Str(&'a str),
    Json(&'a Value),
}

impl Attr<'_> {
    fn of<'a>(ctx: &'a Context, name: &str) -> Attr<'a> {
        if name == TARGETING_KEY {
            return ctx
                .targeting_key
                .as_deref()
                .map_or(Attr::Missing, Attr::Str);
        }
        match ctx.attributes.get(name) {
            None | Some(Value::Null) => Attr::Missing,
            Some(Value::String(s)) => Attr::Str(s),
            Some(other) => Attr::Json(other),
        }
    }

    /// Equality of scalars of the same JSON type; numbers compare by value
    /// (`1` equals `1.0`); values of different types never match.
    fn equals(self, operand: &Value) -> bool {
        match (self, operand) {
            (Attr::Str(a), Value::String(b)) => a == b,
            (Attr::Json(Value::Number(a)), Value::Number(b)) => {
                a == b || a.as_f64().is_some_and(|a| b.as_f64() == Some(a))
            }
            (Attr::Json(Value::Bool(a)), Value::Bool(b)) => a == b,
            _ => false,
        }
    }

    /// The attribute as a number, accepting numeric strings because
    /// contexts built from headers or query strings carry only strings.
    fn number(self) -> Option<f64> {
        match self {
            Attr::Str(s) => s.trim().parse().ok(),
            Attr::Json(Value::Number(n)) => n.as_f64(),
            _ => None,
        }
    }
}

impl Rule {
    fn matches(&self, ctx: &Context) -> bool {
        let attr = Attr::of(ctx, &self.attribute);
        if matches!(attr, Attr::Missing) {
            // "Is not one of these" holds for a subject without the
            // attribute; every positive test fails.
            return matches!(self.op, Op::NotIn | Op::Neq);
        }
        let text = match attr {
            Attr::Str(s) => Some(s),
            _ => None,
        };
        let bound = self.operands.first().and_then(Value::as_f64);
        match self.op {
            Op::In | Op::Eq => self.operands.iter().any(|o| attr.equals(o)),
            Op::NotIn | Op::Neq => !self.operands.iter().any(|o| attr.equals(o)),
            Op::StartsWith => text.is_some_and(|s| {
                self.operands
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|prefix| s.starts_with(prefix))
            }),
            Op::EndsWith => text.is_some_and(|s| {
                self.operands
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|suffix| s.ends_with(suffix))
            }),
            Op::Gt => matches!((attr.number(), bound), (Some(a), Some(b)) if a > b),
            Op::Lt => matches!((attr.number(), bound), (Some(a), Some(b)) if a < b),
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
