//! Email over SMTP (through `lettre`): the server URL scheme golive accepts,
//! the message (subject naming plan, run and event; a plain-text body with
//! the message and the run's facts; `Date`, `Message-ID`, `From`, `To`) and
//! one delivery attempt, classified for the retry loop in [`crate::send`].
//!
//! The URL, and above all its password, never appears in an error: errors
//! name the part that is wrong, and any server or client text is scrubbed of
//! the password before it leaves this module.
//!
//! URL scheme (documented in `docs/design/notify.md`):
//! - `smtp://user:pass@host[:587]` — STARTTLS, required: a server that does
//!   not offer it gets neither the credentials nor the message;
//! - `smtps://user:pass@host[:465]` — TLS from the first byte;
//! - `smtp://host[:25]?tls=none` — no TLS, for a relay on the same host or
//!   network (`tls=starttls` spells out the default).
//!
//! User and password are percent-decoded; certificates are checked against
//! the webpki roots, like the HTTP channels'.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::{Attempt, Delivery, Message};

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// TLS from the start (`smtps`).
    Implicit,
    /// No TLS (`?tls=none`).
    None,
}

/// An SMTP server parsed from its URL.
#[derive(Clone)]
pub struct Server {
    /// Host name or address.
    pub host: String,
    /// Port (default by [`Security`]: 587, 465 or 25).
    pub port: u16,
    /// Connection protection.
    pub security: Security,
    /// User name and password, percent-decoded.
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Server {
    // Without the password, should a server ever be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl Server {
    /// Parses an `smtp://` or `smtps://` URL; the error never repeats it.
    pub fn parse(url: &str) -> Result<Server, String> {
        let u = url::Url::parse(url.trim()).map_err(|e| format!("SMTP URL is not a URL ({e})"))?;
        let mut security = match u.scheme() {
            "smtp" => Security::StartTls,
            "smtps" => Security::Implicit,
            _ => return Err("SMTP URL must start with `smtp://` or `smtps://`".into()),
        };
        for (key, value) in u.query_pairs() {
            match (key.as_ref(), value.as_ref(), security) {
                ("tls", "starttls", Security::StartTls) => {}
                ("tls", "none", Security::StartTls) => security = Security::None,
                ("tls", _, Security::Implicit) => {
                    return Err("`tls=` applies to `smtp://` URLs; `smtps://` is always TLS".into());
                }
                ("tls", _, _) => return Err("SMTP URL: `tls` is `starttls` or `none`".into()),
                (other, _, _) => return Err(format!("SMTP URL: unknown parameter `{other}`")),
            }
        }
        let host = match u.host_str() {
            Some(h) if !h.is_empty() => h.trim_matches(['[', ']']).to_string(),
            _ => return Err("SMTP URL has no host".into()),
        };
        let port = u.port().unwrap_or(match security {
            Security::StartTls => 587,
            Security::Implicit => 465,
            Security::None => 25,
        });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| "SMTP URL: user or password is not UTF-8 once decoded".to_string())
        };
        let credentials = match u.password() {
            Some(p) => Some((decode(u.username())?, decode(p)?)),
            None if !u.username().is_empty() => {
                return Err("SMTP URL names a user without a password".into());
            }
            None => None,
        };
        Ok(Server {
            host,
            port,
            security,
            credentials,
        })
    }

    /// `text` with the password (raw and percent-encoded) replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match &self.credentials {
            Some((_, p)) if !p.is_empty() => {
                let encoded =
                    percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC)
                        .to_string();
                text.replace(p.as_str(), "***").replace(&encoded, "***")
            }
            _ => text.to_string(),
        }
    }

    fn transport(&self, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = |host: &str| {
            TlsParameters::new(host.to_string()).map_err(|e| format!("SMTP TLS setup: {e}"))
        };
        let tls = match self.security {
            Security::StartTls => Tls::Required(tls(&self.host)?),
            Security::Implicit => Tls::Wrapper(tls(&self.host)?),
            Security::None => Tls::None,
        };
        // `builder_dangerous` only means "TLS as configured here": the TLS
        // mode above is always set explicitly.
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, pass)) = &self.credentials {
            b = b.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(b.build())
    }
}

/// The subject: `[golive] PLAN RUN: EVENT`, the event being the message's
/// first line, cut at 120 characters (a subject is one short line).
pub fn subject(message: &Message) -> String {
    let first = message.text.lines().next().unwrap_or_default().trim();
    let mut event: String = first.chars().take(120).collect();
    if event.len() < first.len() {
        event.push('…');
    }
    format!("[golive] {} {}: {event}", message.plan, message.run)
}

/// The plain-text body: the message, then the run's facts after the usual
/// `-- ` signature line. No final newline: the DATA framing ends the last
/// line with its CRLF.
pub fn body(message: &Message) -> String {
    let item = if message.item == "watch" {
        "watch window".to_string()
    } else {
        message.item.clone()
    };
    format!(
        "{}\n\n-- \nplan: {}\nrun:  {}\nitem: {item}\nsent by golive {}",
        message.text.trim_end(),
        message.plan,
        message.run,
        env!("CARGO_PKG_VERSION"),
    )
}

fn address(field: &str, s: &str) -> Result<Address, String> {
    s.trim()
        .parse::<Address>()
        .map_err(|e| format!("email `{field}`: `{}` is not an address ({e})", s.trim()))
}

/// A message ready to go: built once, so every retry sends the same bytes
/// and the same `Message-ID` (a receiver can drop duplicates).
pub(crate) struct Prepared {
    server: Server,
    email: lettre::Message,
}

/// Parses the server and the addresses and builds the message; an error
/// here is final (retrying would not fix a plan's typo).
pub(crate) fn prepare(
    to: &[String],
    from: &str,
    smtp: &str,
    message: &Message,
    id: &str,
) -> Result<Prepared, String> {
    let server = Server::parse(smtp)?;
    let from = address("from", from)?;
    if to.is_empty() {
        return Err("email `to`: no recipient".into());
    }
    let to: Mailboxes = to
        .iter()
        .map(|t| address("to", t).map(|a| Mailbox::new(None, a)))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .collect();
    let email = lettre::Message::builder()
        .from(Mailbox::new(None, from.clone()))
        .mailbox(lettre::message::header::To::from(to))
        .subject(subject(message))
        .date_now()
        .message_id(Some(format!("<{id}@{}>", from.domain())))
        .header(ContentType::TEXT_PLAIN)
        .body(body(message))
        .map_err(|e| format!("email: {e}"))?;
    Ok(Prepared { server, email })
}

/// One SMTP transaction. Transient: connection errors, timeouts and 4xx
/// replies; final: 5xx replies and client-side refusals (such as a server
/// without the required STARTTLS), which a retry would only repeat.
pub(crate) async fn attempt(p: &Prepared, timeout: Duration) -> Attempt {
    let transport = p
        .server
        .transport(timeout)
        .map_err(|e| (p.server.scrub(&e), false))?;
    match transport.send(p.email.clone()).await {
        Ok(response) => Ok(Delivery {
            attempts: 0,
            status: response.code().into(),
        }),
        Err(e) => {
            let transient = !(e.is_permanent() || e.is_client());
            let text = p.server.scrub(&golive_runtime::error_chain(&e));
            Err((format!("SMTP server: {text}"), transient))
        }
    }
}
