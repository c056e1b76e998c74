//! What golive's parts share to act on the world: variables and secrets
//! (and their redaction), the shell that runs commands, the environment
//! plans may see, TLS settings, the HTTP client for golive's own API and
//! webhooks, and the small helpers that keep secrets out of error text.
//!
//! # Layout
//! - [`vars`]: `${NAME}` expansion from plan variables, secrets, the
//!   environment and `--var`, and redaction of secret values from everything
//!   printed.
//! - [`shell`]: `sh -c` in its own process group with capped output, shared
//!   by the command probe, the engine's `run` items and the command traffic
//!   actuator.
//! - [`host_env`]: the part of this process's environment that plans run
//!   here may see (all of it for the CLI; a declared few in `golive serve`).
//! - [`tls`]: the rustls settings shared by every TLS client (ring provider,
//!   webpki roots plus an optional CA file, the recording and accept-any
//!   verifiers).
//! - this file: [`api_client`], [`error_chain`] and [`mask_userinfo`].

#![deny(missing_docs)]

pub mod host_env;
pub mod shell;
pub mod tls;
pub mod vars;

pub use vars::{VarError, Vars};

/// `scheme://user:password@host` → `scheme://user:***@host` everywhere in
/// `text`, for credentials written into a URL rather than kept in a secret.
pub fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == ')' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) if colon + 1 < userinfo.len() => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str("***");
                    }
                    _ => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// An error with its chain of causes, `outer: inner: root`, without repeats.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// An HTTP client for golive's own API calls (`--server`): the webpki roots,
/// ring, and the same TLS settings as the probes.
pub fn api_client(timeout: std::time::Duration) -> Result<reqwest::Client, String> {
    let tls = tls::http_config(None, true)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("HTTP client setup: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_passwords_are_masked() {
        assert_eq!(
            mask_userinfo("connect postgres://app:hunter2@db:5432/x failed"),
            "connect postgres://app:***@db:5432/x failed"
        );
        assert_eq!(
            mask_userinfo("redis://:pw@h:1 and http://h/a@b"),
            "redis://:***@h:1 and http://h/a@b"
        );
        assert_eq!(mask_userinfo("no url here"), "no url here");
        assert_eq!(mask_userinfo("http://user@h/"), "http://user@h/");
    }
}
