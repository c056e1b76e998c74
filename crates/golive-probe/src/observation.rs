//! What a probe saw, as typed values that conditions look up by subject path.
//!
//! Probes record plain fields (`status`, `cert.days_left`); HTTP adds its
//! headers (looked up case-insensitively) and its body, into which
//! `body.$.a.b[0]` reaches as a JSONPath. A subject with nothing behind it is
//! `Absent` with the reason, so a condition on it fails and says why.

use std::collections::BTreeMap;
use std::sync::OnceLock;

pub(crate) use golive_plan::value::Value;

/// What a subject path leads to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lookup {
    /// A value.
    Found(Value),
    /// Nothing, and why (`absent`, `no such JSON path`).
    Absent(String),
}

/// What one probe attempt saw.
#[derive(Debug, Default)]
pub(crate) struct Observation {
    values: BTreeMap<String, Value>,
    notes: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Option<String>,
    json: OnceLock<Result<serde_json::Value, String>>,
}

impl Observation {
    /// Records a field.
    pub(crate) fn set(&mut self, path: &str, value: Value) -> &mut Self {
        self.values.insert(path.to_string(), value);
        self
    }

    /// Adds an explanation shown after the field's value (`false (connection refused)`).
    pub(crate) fn note(&mut self, path: &str, text: impl Into<String>) -> &mut Self {
        self.notes.insert(path.to_string(), text.into());
        self
    }

    /// Records a response header; repeated headers are joined with `, `.
    pub(crate) fn header(&mut self, name: &str, value: &str) {
        self.headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }

    /// Records a response body.
    pub(crate) fn body(&mut self, body: String) {
        self.body = Some(body);
    }

    /// The explanation recorded for a field, if any.
    pub(crate) fn note_of(&self, path: &str) -> Option<&str> {
        self.notes.get(path).map(String::as_str)
    }

    /// Looks a subject path up.
    pub(crate) fn lookup(&self, path: &str) -> Lookup {
        if let Some(v) = self.values.get(path) {
            return Lookup::Found(v.clone());
        }
        if let Some(name) = path.strip_prefix("header.") {
            return match self.headers.get(&name.to_ascii_lowercase()) {
                Some(v) => Lookup::Found(Value::Text(v.clone())),
                None => Lookup::Absent("absent".into()),
            };
        }
        if let Some(body) = &self.body {
            if path == "body" {
                return Lookup::Found(Value::Text(body.clone()));
            }
            if let Some(json_path) = path.strip_prefix("body.") {
                let doc = self.json.get_or_init(|| {
                    serde_json::from_str(body).map_err(|e| format!("the body is not JSON ({e})"))
                });
                return match doc {
                    Err(e) => Lookup::Absent(e.clone()),
                    Ok(doc) => match json_path_get(doc, json_path) {
                        Ok(Some(v)) => Lookup::Found(Value::from_json(v)),
                        Ok(None) => Lookup::Absent(format!("absent (nothing at `{json_path}`)")),
                        Err(e) => Lookup::Absent(e),
                    },
                };
            }
        }
        Lookup::Absent("not observed".into())
    }
}

/// Follows a JSONPath subset — `$`, `.key`, `['key']`, `["key"]`, `[index]`
/// (negative from the end) — through a document.
pub(crate) fn json_path_get<'a>(
    doc: &'a serde_json::Value,
    path: &str,
) -> Result<Option<&'a serde_json::Value>, String> {
    let unsupported = |what: &str| {
        Err(format!(
            "unsupported JSONPath `{path}`: {what}; use `$`, `.key`, `['key']` and `[index]`"
        ))
    };
    let Some(mut rest) = path.strip_prefix('$') else {
        return unsupported("it must start with `$`");
    };
    let mut cur = doc;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() || key == "*" {
                return unsupported("empty key or wildcard");
            }
            match cur.get(key) {
                Some(v) => cur = v,
                None => return Ok(None),
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return unsupported("unclosed `[`");
            };
            let inner = r[..end].trim();
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            let next = if let Some(key) = quoted {
                cur.get(key)
            } else if let Ok(i) = inner.parse::<i64>() {
                match cur.as_array() {
                    Some(items) => {
                        let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                        let idx = if i < 0 { len + i } else { i };
                        usize::try_from(idx).ok().and_then(|i| items.get(i))
                    }
                    None => None,
                }
            } else {
                return unsupported("a selector other than an index or a quoted key");
            };
            match next {
                Some(v) => cur = v,
                None => return Ok(None),
            }
            rest = &r[end + 1..];
        } else {
            return unsupported("expected `.` or `[`");
        }
    }
    Ok(Some(cur))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let doc: serde_json::Value =
            serde_json::from_str(r#"{"a":{"b":[10,{"c":"x"}]},"k-1":true}"#).expect("json");
        let get = |p: &str| json_path_get(&doc, p).expect("supported").cloned();
        assert_eq!(get("$.a.b[0]"), Some(serde_json::json!(10)));
        assert_eq!(get("$.a.b[1].c"), Some(serde_json::json!("x")));
        assert_eq!(get("$['a'][\"b\"][-1]['c']"), Some(serde_json::json!("x")));
        assert_eq!(get("$.k-1"), Some(serde_json::json!(true)));
        assert_eq!(get("$.a.z"), None);
        assert_eq!(get("$.a.b[5]"), None);
        assert_eq!(get("$"), Some(doc.clone()));
        assert!(json_path_get(&doc, "$.a[*]").is_err());
        assert!(json_path_get(&doc, "a.b").is_err());
    }

    #[test]
    fn headers_and_body() {
        let mut o = Observation::default();
        o.header("Content-Type", "application/json");
        o.header("set-cookie", "a=1");
        o.header("Set-Cookie", "b=2");
        o.body(r#"{"status":"UP"}"#.into());
        assert_eq!(
            o.lookup("header.content-TYPE"),
            Lookup::Found(Value::Text("application/json".into()))
        );
        assert_eq!(
            o.lookup("header.Set-Cookie"),
            Lookup::Found(Value::Text("a=1, b=2".into()))
        );
        assert_eq!(o.lookup("header.Server"), Lookup::Absent("absent".into()));
        assert_eq!(
            o.lookup("body.$.status"),
            Lookup::Found(Value::Text("UP".into()))
        );
        let mut t = Observation::default();
        t.body("plain".into());
        assert!(matches!(t.lookup("body.$.x"), Lookup::Absent(e) if e.contains("not JSON")));
    }
}
