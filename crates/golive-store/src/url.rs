//! Database URLs: which backend a URL names, where SQLite lives by default,
//! and a URL type that never prints its password.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use crate::StoreError;

/// The environment variable that points golive at a shared database.
pub const DATABASE_URL_ENV: &str = "GOLIVE_DATABASE_URL";

/// A database URL. `Display` and `Debug` replace the password (in the
/// user-info part and in a `password=` query parameter) with `***`; only
/// [`DbUrl::expose_password`] gives the text needed to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    raw: String,
    shown: String,
}

impl DbUrl {
    /// Wraps a URL (or a plain SQLite path).
    pub fn new(raw: impl Into<String>) -> DbUrl {
        let raw = raw.into();
        let shown = mask(&raw);
        DbUrl { raw, shown }
    }

    /// The URL with its password, for connecting. Never print this.
    pub fn expose_password(&self) -> &str {
        &self.raw
    }

    /// The backend this URL names.
    pub(crate) fn target(&self) -> Result<Target, StoreError> {
        let raw = self.raw.as_str();
        let bad = |reason: &str| StoreError::BadUrl {
            url: self.clone(),
            reason: reason.to_string(),
        };
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Target::Postgres);
        }
        let path = if let Some(rest) = raw.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = raw.strip_prefix("sqlite:") {
            rest
        } else if raw.contains("://") {
            return Err(bad(
                "golive stores runs in SQLite (a path or sqlite://PATH) or PostgreSQL (postgres://…)",
            ));
        } else {
            raw
        };
        if path.is_empty() {
            return Err(bad("no SQLite file path"));
        }
        if path.starts_with(":memory:") || path.contains('?') {
            return Err(bad(
                "give a plain SQLite file path (no in-memory database, no query parameters)",
            ));
        }
        Ok(Target::Sqlite(PathBuf::from(path)))
    }
}

impl From<&str> for DbUrl {
    fn from(raw: &str) -> Self {
        DbUrl::new(raw)
    }
}

impl From<String> for DbUrl {
    fn from(raw: String) -> Self {
        DbUrl::new(raw)
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DbUrl").field(&self.shown).finish()
    }
}

/// The backend a URL names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres,
}

/// The URL with `***` for every password in it.
fn mask(raw: &str) -> String {
    let mut out = raw.to_string();
    if let Some(scheme_end) = raw.find("://") {
        let start = scheme_end + 3;
        let rest = &raw[start..];
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_len].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            out = format!("{}***{}", &raw[..start + colon + 1], &rest[at..]);
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _))
                    if k.eq_ignore_ascii_case("password")
                        || k.eq_ignore_ascii_case("sslpassword") =>
                {
                    format!("{k}=***")
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", masked.join("&"));
    }
    out
}

/// Where golive keeps its SQLite journal when no database is named:
/// `$XDG_DATA_HOME/golive/golive.db`, else `~/.local/share/golive/golive.db`.
/// `None` when neither `XDG_DATA_HOME` (absolute) nor `HOME` is set.
pub fn default_sqlite_path() -> Option<PathBuf> {
    sqlite_path_in(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
}

fn sqlite_path_in(xdg_data_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let data = xdg_data_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            home.filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("golive").join("golive.db"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let cases = [
            (
                "postgres://golive:s3cret@db.example:5432/golive",
                "postgres://golive:***@db.example:5432/golive",
            ),
            (
                "postgresql://u:p%40ss@h/db?sslmode=require&password=x",
                "postgresql://u:***@h/db?sslmode=require&password=***",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db?password=x", "postgres://h/db?password=***"),
            ("/var/lib/golive.db", "/var/lib/golive.db"),
        ];
        for (raw, shown) in cases {
            let url = DbUrl::new(raw);
            assert_eq!(url.to_string(), shown);
            assert_eq!(format!("{url:?}"), format!("DbUrl({shown:?})"));
            assert_eq!(url.expose_password(), raw);
        }
    }

    #[test]
    fn the_default_sqlite_path_follows_xdg() {
        let p =
            |x: Option<&str>, h: Option<&str>| sqlite_path_in(x.map(Into::into), h.map(Into::into));
        assert_eq!(
            p(Some("/data"), Some("/home/a")),
            Some("/data/golive/golive.db".into())
        );
        assert_eq!(
            p(Some("relative"), Some("/home/a")),
            Some("/home/a/.local/share/golive/golive.db".into())
        );
        assert_eq!(
            p(None, Some("/home/a")),
            Some("/home/a/.local/share/golive/golive.db".into())
        );
        assert_eq!(p(None, None), None);
        assert_eq!(p(Some(""), Some("")), None);
    }

    #[test]
    fn the_scheme_picks_the_backend() {
        let t = |s: &str| DbUrl::new(s).target();
        assert_eq!(t("postgres://h/db").ok(), Some(Target::Postgres));
        assert_eq!(t("postgresql://h/db").ok(), Some(Target::Postgres));
        assert_eq!(
            t("sqlite:///var/golive.db").ok(),
            Some(Target::Sqlite("/var/golive.db".into()))
        );
        assert_eq!(
            t("sqlite://rel/golive.db").ok(),
            Some(Target::Sqlite("rel/golive.db".into()))
        );
        assert_eq!(
            t("sqlite:golive.db").ok(),
            Some(Target::Sqlite("golive.db".into()))
        );
        assert_eq!(
            t("./golive.db").ok(),
            Some(Target::Sqlite("./golive.db".into()))
        );
        for bad in [
            "mysql://h/db",
            "sqlite::memory:",
            "sqlite://",
            "",
            "sqlite://x.db?mode=ro",
        ] {
            assert!(matches!(t(bad), Err(StoreError::BadUrl { .. })), "{bad}");
        }
    }
}
