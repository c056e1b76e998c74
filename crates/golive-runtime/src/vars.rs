//! Variables and secrets: the values behind `${NAME}` in a plan, and the
//! redaction that keeps secret values out of everything golive prints.
//!
//! A plan names secrets by reference only (`env:NAME`, `file:PATH`); their
//! values are read here, once, when a run starts, so a missing secret stops
//! the run before any probe touches production.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use golive_plan::{Plan, SecretRef};

/// Why the variables of a plan could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum VarError {
    /// A secret refers to an environment variable that is unset or empty.
    #[error(
        "secret `{name}`: environment variable `{var}` is not set or empty (secret reference `env:{var}`)"
    )]
    SecretEnvUnset {
        /// The secret's name in the plan.
        name: String,
        /// The environment variable it refers to.
        var: String,
    },
    /// A secret refers to a file that cannot be read.
    #[error("secret `{name}`: cannot read `{}` (secret reference `file:{}`): {source}", path.display(), path.display())]
    SecretFileUnreadable {
        /// The secret's name in the plan.
        name: String,
        /// The file it refers to.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A `--var` override has a name that no `${NAME}` could refer to.
    #[error(
        "--var `{name}`: a variable name is letters, digits and `_`, not starting with a digit"
    )]
    BadName {
        /// The name given.
        name: String,
    },
}

/// The resolved values of a plan's variables and secrets.
///
/// `Debug` shows names only, never values. `Vars::default()` holds nothing,
/// not even the environment: for code that runs checks without a plan.
#[derive(Clone, Default)]
pub struct Vars {
    /// Plan variables (after environment and `--var` overrides) and secrets.
    values: BTreeMap<String, String>,
    /// The process environment, for `${NAME}`s the plan does not declare.
    env: BTreeMap<String, String>,
    /// Secret values to redact, longest first.
    secrets: Vec<String>,
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vars")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .field("secrets", &format_args!("{} redacted", self.secrets.len()))
            .finish()
    }
}

impl Vars {
    /// Plan variables, overridden by the environment, overridden by --var; secrets resolved from env:NAME / file:PATH.
    ///
    /// A `--var` naming a secret replaces the secret's value, which stays
    /// redacted. A secret file's trailing newline is removed; a relative
    /// path is relative to the current directory.
    pub fn resolve(plan: &Plan, overrides: &[(String, String)]) -> Result<Vars, VarError> {
        Vars::resolve_with(plan, overrides, crate::host_env::vars())
    }

    /// Like [`Vars::resolve`], but a secret that cannot be read is left out
    /// and reported instead of stopping everything: for `golive ready`, where
    /// a missing notification secret must not hide the state of a database.
    /// The errors name the secrets left out; `--var` names are still checked.
    pub fn resolve_partial(
        plan: &Plan,
        overrides: &[(String, String)],
    ) -> Result<(Vars, Vec<(String, VarError)>), VarError> {
        Vars::resolve_all(plan, overrides, crate::host_env::vars())
    }

    /// [`Vars::resolve`] with a given environment.
    fn resolve_with(
        plan: &Plan,
        overrides: &[(String, String)],
        env: BTreeMap<String, String>,
    ) -> Result<Vars, VarError> {
        let (vars, mut missing) = Vars::resolve_all(plan, overrides, env)?;
        match missing.drain(..).next() {
            Some((_, e)) => Err(e),
            None => Ok(vars),
        }
    }

    fn resolve_all(
        plan: &Plan,
        overrides: &[(String, String)],
        env: BTreeMap<String, String>,
    ) -> Result<(Vars, Vec<(String, VarError)>), VarError> {
        let overridden = |name: &str| overrides.iter().any(|(k, _)| k == name);
        let mut missing = Vec::new();
        let mut values = BTreeMap::new();
        for (name, value) in &plan.variables {
            let v = env.get(name).unwrap_or(value);
            values.insert(name.clone(), v.clone());
        }
        let mut secret_names = Vec::new();
        for (name, reference) in &plan.secrets {
            let value = match reference {
                // A `--var` gives the value; the reference need not resolve.
                _ if overridden(name) => String::new(),
                SecretRef::Env(var) => match env.get(var) {
                    Some(v) if !v.is_empty() => v.clone(),
                    _ => {
                        let e = VarError::SecretEnvUnset {
                            name: name.clone(),
                            var: var.clone(),
                        };
                        missing.push((name.clone(), e));
                        continue;
                    }
                },
                SecretRef::File(path) => match std::fs::read_to_string(path) {
                    Ok(text) => {
                        let text = text.strip_suffix('\n').unwrap_or(&text);
                        text.strip_suffix('\r').unwrap_or(text).to_string()
                    }
                    Err(source) => {
                        let e = VarError::SecretFileUnreadable {
                            name: name.clone(),
                            path: PathBuf::from(path),
                            source,
                        };
                        missing.push((name.clone(), e));
                        continue;
                    }
                },
            };
            values.insert(name.clone(), value);
            secret_names.push(name.clone());
        }
        for (name, value) in overrides {
            if !is_name(name) {
                return Err(VarError::BadName { name: name.clone() });
            }
            values.insert(name.clone(), value.clone());
        }
        let mut secrets: Vec<String> = secret_names
            .iter()
            .filter_map(|n| values.get(n))
            .filter(|v| v.len() >= 4)
            .cloned()
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Ok((
            Vars {
                values,
                env,
                secrets,
            },
            missing,
        ))
    }

    /// The value of a variable or secret, then of an environment variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .or_else(|| self.env.get(name))
            .map(String::as_str)
    }

    /// `${NAME}` → value; unknown names left as-is.
    pub fn expand(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            match self.get(after[..end].trim()) {
                Some(v) => out.push_str(v),
                None => out.push_str(&rest[start..start + 2 + end + 1]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Every secret value (non-empty, len >= 4) → "***".
    ///
    /// The percent-encoded form of a secret (as written in a URL) is
    /// replaced too.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
            let encoded = percent_encode(s);
            if encoded != *s && out.contains(&encoded) {
                out = out.replace(&encoded, "***");
            }
        }
        out
    }

    /// The secret values [`Vars::redact`] hides, longest first: handed to
    /// the process that supervises a command, which redacts its output.
    pub fn secret_values(&self) -> &[String] {
        &self.secrets
    }

    /// Vars that hold nothing but secret values to redact (as given by
    /// [`Vars::secret_values`]).
    pub fn redacting(secrets: Vec<String>) -> Vars {
        Vars {
            secrets,
            ..Vars::default()
        }
    }

    /// Variables and secrets as `(name, value)` pairs, for a command's environment.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(src: &str) -> Plan {
        let compiled = golive_plan::compile(src, &|_: &str| true);
        compiled.plan.unwrap_or_else(|| {
            panic!("plan does not compile: {:?}", compiled.diagnostics);
        })
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const PLAN: &str = "name: t\nvariables:\n  A: plan-a\n  B: plan-b\n  C: plan-c\nsecrets:\n  TOKEN: env:GOLIVE_TOKEN\nphases:\n  - title: p\n    items:\n      - id: t\n        task: {}\n";

    #[test]
    fn plan_then_environment_then_overrides() {
        let vars = Vars::resolve_with(
            &plan(PLAN),
            &[("C".into(), "cli-c".into())],
            env(&[
                ("B", "env-b"),
                ("C", "env-c"),
                ("GOLIVE_TOKEN", "tok-123456"),
                ("OTHER", "o"),
            ]),
        )
        .expect("resolves");
        assert_eq!(
            vars.expand("${A} ${B} ${C} ${OTHER} ${NOPE} ${TOKEN}"),
            "plan-a env-b cli-c o ${NOPE} tok-123456"
        );
        assert_eq!(vars.expand("${ A }/${unclosed"), "plan-a/${unclosed");
        assert_eq!(vars.redact("Bearer tok-123456!"), "Bearer ***!");
        assert!(!format!("{vars:?}").contains("tok-123456"));
    }

    #[test]
    fn unset_secret_names_the_secret_and_its_reference() {
        let e = Vars::resolve_with(&plan(PLAN), &[], env(&[("GOLIVE_TOKEN", "")]))
            .expect_err("empty secret");
        let msg = e.to_string();
        assert!(
            msg.contains("`TOKEN`") && msg.contains("env:GOLIVE_TOKEN"),
            "{msg}"
        );
    }

    #[test]
    fn short_secrets_are_not_redacted_and_encoded_forms_are() {
        let p = plan(&PLAN.replace("TOKEN: env:GOLIVE_TOKEN", "S: env:S\n  P: env:P"));
        let vars =
            Vars::resolve_with(&p, &[], env(&[("S", "abc"), ("P", "p@ss word")])).expect("ok");
        assert_eq!(vars.redact("abc"), "abc");
        assert_eq!(vars.redact("x p@ss word y"), "x *** y");
        assert_eq!(vars.redact("redis://:p%40ss%20word@h"), "redis://:***@h");
        let e = Vars::resolve_with(
            &p,
            &[("1x".into(), "v".into())],
            env(&[("S", "abcd"), ("P", "pppp")]),
        )
        .expect_err("bad name");
        assert!(e.to_string().contains("1x"));
    }
}
