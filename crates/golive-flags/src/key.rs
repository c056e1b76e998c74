//! [`FlagKey`]: the validated name of a flag.
//!
//! Keys travel in URLs (`/ofrep/v1/evaluate/flags/{key}`), logs and JSON,
//! so they are restricted to characters that need no escaping anywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::FlagError;

/// The longest key accepted, in characters (all ASCII, so also bytes).
pub const MAX_KEY_LEN: usize = 128;

/// A flag's key: 1 to 128 characters of `[A-Za-z0-9_.:-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlagKey(String);

impl FlagKey {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Why `key` is not a valid key, if it is not.
    pub(crate) fn problem(key: &str) -> Option<String> {
        if key.is_empty() {
            return Some("must not be empty".to_owned());
        }
        if key.len() > MAX_KEY_LEN {
            return Some(format!(
                "must be at most {MAX_KEY_LEN} characters (got {})",
                key.chars().count()
            ));
        }
        key.chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
            .map(|c| format!("may only contain letters, digits, '_', '.', ':' and '-' (got {c:?})"))
    }
}

impl TryFrom<String> for FlagKey {
    type Error = FlagError;

    fn try_from(key: String) -> Result<Self, FlagError> {
        match Self::problem(&key) {
            None => Ok(Self(key)),
            Some(problem) => Err(FlagError::Invalid(vec![format!("flag: {problem}")])),
        }
    }
}

impl FromStr for FlagKey {
    type Err = FlagError;

    fn from_str(key: &str) -> Result<Self, FlagError> {
        Self::try_from(key.to_owned())
    }
}

impl fmt::Display for FlagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for FlagKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<FlagKey> for String {
    fn from(key: FlagKey) -> String {
        key.0
    }
}

impl Serialize for FlagKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FlagKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = String::deserialize(deserializer)?;
        Self::try_from(key).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        for key in [
            "a",
            "new_checkout",
            "team.web:checkout-v2",
            &"x".repeat(128),
        ] {
            let parsed: FlagKey = key.parse().expect("valid key");
            assert_eq!(parsed.as_str(), key);
            assert_eq!(parsed.to_string(), key);
        }
    }

    #[test]
    fn refuses_bad_keys_with_a_reason() {
        let cases = [
            ("", "must not be empty"),
            (&"x".repeat(129), "at most 128 characters (got 129)"),
            ("new checkout", "(got ' ')"),
            ("flag/one", "(got '/')"),
            ("café", "(got 'é')"),
        ];
        for (key, expected) in cases {
            let err = key.parse::<FlagKey>().expect_err("invalid key").to_string();
            assert!(err.contains(expected), "{key:?}: {err}");
            assert!(err.contains("flag: "), "{key:?}: {err}");
        }
    }

    #[test]
    fn serde_validates() {
        let key: FlagKey = serde_json::from_str("\"a.b\"").expect("valid key");
        assert_eq!(serde_json::to_string(&key).expect("serializes"), "\"a.b\"");
        assert!(serde_json::from_str::<FlagKey>("\"a b\"").is_err());
        assert!(serde_json::from_str::<FlagKey>("\"\"").is_err());
    }
}
