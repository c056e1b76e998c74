//! The server's settings file (`golive serve --config FILE`): YAML, read
//! with the plan reader (spans, unknown keys refused with a suggestion), so
//! a mistake points at its line. Command-line flags and `GOLIVE_…`
//! environment variables win over the file; the file wins over defaults.
//!
//! ```yaml
//! listen: 127.0.0.1:8080
//! database: postgres://golive@db.internal/golive   # or a SQLite path
//! cors_origins: [https://war-room.example.com]
//! flags_refresh: 1s
//! lease_ttl: 15s
//! auth_failure_limit: 10
//! metrics_need_token: false     # /metrics only with a token
//! allow_api_commands: false     # operators may submit plans that run commands
//! plan_env: [DEPLOY_TOKEN]      # of the server's environment, what plans see
//! max_connections: 10000        # at the cap, the longest-idle are closed
//! header_read_timeout: 10s
//! idle_timeout: 60s
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use golive_plan::Source;
use golive_plan::de::{Sink, from_node};
use serde::Deserialize;

/// What a settings file may say; everything optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Where to listen, e.g. `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// The journal: a `postgres://` URL or a SQLite path.
    pub database: Option<String>,
    /// Browser origins allowed to call the API.
    pub cors_origins: Option<Vec<String>>,
    /// How often flags changed elsewhere are re-read, e.g. `1s`.
    pub flags_refresh: Option<String>,
    /// The lease of runs the server executes, e.g. `15s`.
    pub lease_ttl: Option<String>,
    /// Refused tokens per address per minute before 429.
    pub auth_failure_limit: Option<u32>,
    /// `/metrics` only with a token.
    pub metrics_need_token: Option<bool>,
    /// Operators may submit plans that run commands on the server.
    pub allow_api_commands: Option<bool>,
    /// Names of the server's environment plans may see.
    pub plan_env: Option<Vec<String>>,
    /// Connections open at once.
    pub max_connections: Option<usize>,
    /// Time to send a request's head, e.g. `10s`.
    pub header_read_timeout: Option<String>,
    /// Time a connection may sit idle, e.g. `60s`.
    pub idle_timeout: Option<String>,
}

/// The file's settings, parsed into their types.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Where to listen.
    pub listen: Option<SocketAddr>,
    /// The journal's URL or path (never printed: it may hold a password).
    pub database: Option<Secret>,
    /// Browser origins allowed.
    pub cors_origins: Option<Vec<String>>,
    /// Flag refresh period.
    pub flags_refresh: Option<Duration>,
    /// Run lease.
    pub lease_ttl: Option<Duration>,
    /// Refused-token limit.
    pub auth_failure_limit: Option<u32>,
    /// `/metrics` only with a token.
    pub metrics_need_token: Option<bool>,
    /// Operators may submit plans that run commands.
    pub allow_api_commands: Option<bool>,
    /// Environment names plans may see.
    pub plan_env: Option<Vec<String>>,
    /// Connection cap.
    pub max_connections: Option<usize>,
    /// Header-read timeout.
    pub header_read_timeout: Option<Duration>,
    /// Idle timeout.
    pub idle_timeout: Option<Duration>,
}

/// A value kept out of `Debug` and logs.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// Every problem of a settings file, each with its line and column.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct ConfigError {
    /// `FILE:LINE:COL: message (help)`, one per problem.
    pub problems: Vec<String>,
}

/// Reads and checks a settings file; all problems at once.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let name = path.display().to_string();
    let text = golive_plan::read_text(path).map_err(|e| ConfigError {
        problems: vec![format!("{name}: {e}")],
    })?;
    parse(&name, &text)
}

/// Parses settings from `text` (named `name` in messages).
pub fn parse(name: &str, text: &str) -> Result<Settings, ConfigError> {
    let source = Source::new(name, text);
    let at = |span: Option<golive_plan::yaml::Span>| {
        let (line, col) = span.map(|s| source.line_col(s.start)).unwrap_or((0, 0));
        format!("{name}:{line}:{col}")
    };
    let node = golive_plan::yaml::parse(text).map_err(|e| ConfigError {
        problems: vec![format!("{}: {}", at(Some(e.span)), e.message)],
    })?;
    let sink = Sink::default();
    let read: Result<FileSettings, _> = from_node(&node, &sink);
    let mut problems: Vec<String> = sink
        .into_inner()
        .into_iter()
        .chain(read.as_ref().err().cloned())
        .map(|e| match &e.help {
            Some(h) => format!("{}: {} ({h})", at(e.span), e.message),
            None => format!("{}: {}", at(e.span), e.message),
        })
        .collect();
    let file = read.unwrap_or_default();
    let mut duration = |key: &str, v: &Option<String>| {
        v.as_deref()
            .and_then(|t| match golive_plan::time::parse_duration(t) {
                Ok(d) => Some(d),
                Err(e) => {
                    problems.push(format!("{name}: {key}: {e}"));
                    None
                }
            })
    };
    let flags_refresh = duration("flags_refresh", &file.flags_refresh);
    let lease_ttl = duration("lease_ttl", &file.lease_ttl);
    let header_read_timeout = duration("header_read_timeout", &file.header_read_timeout);
    let idle_timeout = duration("idle_timeout", &file.idle_timeout);
    let listen = file
        .listen
        .as_deref()
        .and_then(|l| match l.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                problems.push(format!(
                    "{name}: listen: `{l}` is not an address such as 127.0.0.1:8080 ({e})"
                ));
                None
            }
        });
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    Ok(Settings {
        listen,
        database: file.database.map(Secret),
        cors_origins: file.cors_origins,
        flags_refresh,
        lease_ttl,
        auth_failure_limit: file.auth_failure_limit,
        metrics_need_token: file.metrics_need_token,
        allow_api_commands: file.allow_api_commands,
        plan_env: file.plan_env,
        max_connections: file.max_connections,
        header_read_timeout,
        idle_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_reads_into_types() {
        let s = parse(
            "s.yaml",
            "listen: 127.0.0.1:9000\ndatabase: postgres://u:pw@h/db\ncors_origins: [https://a.example]\nflags_refresh: 500ms\nlease_ttl: 20s\nauth_failure_limit: 3\nmetrics_need_token: true\nallow_api_commands: true\nmax_connections: 500\nheader_read_timeout: 5s\nidle_timeout: 30s\n",
        )
        .expect("valid");
        assert_eq!(s.metrics_need_token, Some(true));
        assert_eq!(s.allow_api_commands, Some(true));
        assert_eq!(s.max_connections, Some(500));
        assert_eq!(s.header_read_timeout, Some(Duration::from_secs(5)));
        assert_eq!(s.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(s.listen, Some("127.0.0.1:9000".parse().expect("addr")));
        assert_eq!(s.flags_refresh, Some(Duration::from_millis(500)));
        assert_eq!(s.lease_ttl, Some(Duration::from_secs(20)));
        assert_eq!(s.auth_failure_limit, Some(3));
        assert!(
            !format!("{s:?}").contains("pw"),
            "the database URL stays out of Debug"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let e = parse(
            "s.yaml",
            "listen: nowhere\nflag_refresh: 1s\nlease_ttl: soon\n",
        )
        .expect_err("invalid");
        let text = e.to_string();
        assert!(
            text.contains("s.yaml:2:1") && text.contains("flags_refresh"),
            "{text}"
        );
        assert!(text.contains("listen: `nowhere`"), "{text}");
        assert!(text.contains("lease_ttl"), "{text}");
        assert_eq!(e.problems.len(), 3, "{text}");
    }
}
