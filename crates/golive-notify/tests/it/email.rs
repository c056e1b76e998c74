//! Email over SMTP against a real SMTP server: `aiosmtpd` from PyPI
//! (installed by `scripts/setup.sh`), started per test on a free loopback
//! port by `tests/smtp_server.py`, which reports the envelope and the raw
//! message. Also: 4xx retried and 5xx not, STARTTLS required by `smtp://`,
//! an unreachable server retried and its password never in the error.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use golive_notify::email::{Security, Server};
use golive_notify::{AlertSeverity, Delivery, Event, Failure, Message, Target};
use serde_json::Value;

use crate::common::quick;

/// The Python SMTP server; killed on drop.
struct Smtp {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<Value>,
}

impl Smtp {
    /// Starts the server answering successive DATA commands with `codes`.
    fn start(codes: &str) -> Smtp {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py");
        let mut child = Command::new("python3")
            .args([script, codes])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (scripts/setup.sh installs aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    return;
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the SMTP server's port (is `aiosmtpd` installed? scripts/setup.sh)");
        let port = first["port"].as_u64().expect("port") as u16;
        Smtp { child, port, lines }
    }

    /// The server's URL, `smtp://{userinfo}127.0.0.1:PORT{query}`.
    fn url(&self, userinfo: &str, query: &str) -> String {
        format!("smtp://{userinfo}127.0.0.1:{}{query}", self.port)
    }

    fn next(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line from the SMTP server")
    }

    fn nothing_more(&self) {
        if let Ok(v) = self.lines.recv_timeout(Duration::from_millis(300)) {
            panic!("unexpected: {v}");
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn message() -> Message {
    Message {
        text: "INC-1 escalated\nerror rate 7% for 10m".into(),
        plan: "checkout-v2".into(),
        run: "r-123".into(),
        item: "watch".into(),
        event: Event::Trigger,
        dedup_key: None,
        severity: AlertSeverity::Critical,
    }
}

fn email(smtp: String) -> Target {
    Target::Email {
        to: vec!["oncall@example.com".into(), "lead@example.org".into()],
        from: "golive@example.com".into(),
        smtp,
    }
}

/// Sends the test message to the two test recipients through `smtp`.
async fn send(smtp: String, retries: u32) -> Result<Delivery, Failure> {
    golive_notify::send(&email(smtp), &message(), quick(retries)).await
}

/// The message's header lines (unfolded) and body, split at the first
/// empty line.
fn split(data: &str) -> (Vec<String>, String) {
    let (head, body) = data.split_once("\r\n\r\n").expect("headers end");
    let mut headers: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match headers.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => headers.push(line.to_string()),
        }
    }
    (headers, body.to_string())
}

fn header<'a>(headers: &'a [String], name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    headers
        .iter()
        .find_map(|h| h.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in {headers:#?}"))
}

#[tokio::test]
async fn an_email_reaches_the_server_with_envelope_headers_and_body() {
    let smtp = Smtp::start("250");
    // The password holds an `@`, percent-encoded in the URL.
    let d = send(smtp.url("golive:s3cr%40t@", "?tls=none"), 0)
        .await
        .expect("delivered");
    assert_eq!((d.attempts, d.status), (1, 250));

    let auth = smtp.next();
    assert_eq!(auth["ok"], true, "{auth}");
    let mail = smtp.next();
    assert_eq!(mail["mail_from"], "golive@example.com");
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["oncall@example.com", "lead@example.org"])
    );
    let data = mail["data"].as_str().expect("data");
    let (headers, body) = split(data);
    assert_eq!(header(&headers, "From"), "golive@example.com");
    assert_eq!(
        header(&headers, "To"),
        "oncall@example.com, lead@example.org"
    );
    assert_eq!(
        header(&headers, "Subject"),
        "[golive] checkout-v2 r-123: INC-1 escalated"
    );
    assert_eq!(
        header(&headers, "Content-Type"),
        "text/plain; charset=utf-8"
    );
    let date = header(&headers, "Date");
    assert!(
        jiff::fmt::rfc2822::parse(date).is_ok(),
        "RFC 2822 Date: {date}"
    );
    let id = header(&headers, "Message-ID");
    assert!(
        id.starts_with("<msg_") && id.ends_with("@example.com>"),
        "{id}"
    );
    assert_eq!(
        body,
        format!(
            "INC-1 escalated\r\nerror rate 7% for 10m\r\n\r\n-- \r\nplan: checkout-v2\r\nrun:  r-123\r\nitem: watch window\r\nsent by golive {}\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    smtp.nothing_more();
}

#[tokio::test]
async fn a_4xx_is_retried_with_the_same_message_and_a_5xx_is_not() {
    let smtp = Smtp::start("451,451,250");
    let d = send(smtp.url("", "?tls=none"), 3)
        .await
        .expect("delivered on the third attempt");
    assert_eq!((d.attempts, d.status), (3, 250));
    let sent: Vec<Value> = (0..3).map(|_| smtp.next()).collect();
    let codes: Vec<&str> = sent
        .iter()
        .map(|m| m["code"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(codes, ["451", "451", "250"]);
    // The same bytes each time, Message-ID and Date included.
    assert!(sent.iter().all(|m| m["data"] == sent[0]["data"]));

    let smtp = Smtp::start("550");
    let f = send(smtp.url("", "?tls=none"), 3)
        .await
        .expect_err("refused for good");
    assert_eq!(f.attempts, 1, "{}", f.error);
    assert!(f.error.contains("550"), "{}", f.error);
    assert_eq!(smtp.next()["code"], "550");
    smtp.nothing_more();
}

#[tokio::test]
async fn smtp_without_tls_none_requires_starttls_and_sends_nothing_in_the_clear() {
    // aiosmtpd without a certificate offers no STARTTLS.
    let smtp = Smtp::start("250");
    let f = send(smtp.url("golive:s3cr%40t@", ""), 3)
        .await
        .expect_err("no STARTTLS");
    assert_eq!(
        f.attempts, 1,
        "a server without STARTTLS is final: {}",
        f.error
    );
    assert!(f.error.to_lowercase().contains("starttls"), "{}", f.error);
    assert!(!f.error.contains("s3cr"), "{}", f.error);
    // Neither AUTH nor DATA reached the server.
    smtp.nothing_more();
}

#[tokio::test]
async fn an_unreachable_server_is_retried_and_the_password_never_shows() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("smtps://golive:hunter2@127.0.0.1:{port}");
    let f = send(url.clone(), 2).await.expect_err("nobody listens");
    assert_eq!(f.attempts, 3, "{}", f.error);
    assert!(f.error.starts_with("SMTP server: "), "{}", f.error);
    for shown in [f.error.clone(), f.to_string(), format!("{f:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(&url), "{shown}");
    }
}

#[test]
fn the_url_scheme_and_its_defaults() {
    let s = Server::parse("smtp://u:p%2Fw@mail.example.com").expect("starttls");
    assert_eq!(
        (s.host.as_str(), s.port, s.security),
        ("mail.example.com", 587, Security::StartTls)
    );
    assert!(!format!("{s:?}").contains("p/w"), "{s:?}");
    let s = Server::parse("smtps://u:p@mail.example.com").expect("implicit");
    assert_eq!((s.port, s.security), (465, Security::Implicit));
    let s = Server::parse("smtp://127.0.0.1?tls=none").expect("relay");
    assert_eq!((s.port, s.security), (25, Security::None));
    let s = Server::parse("smtp://[::1]:2525?tls=starttls").expect("v6");
    assert_eq!(
        (s.host.as_str(), s.port, s.security),
        ("::1", 2525, Security::StartTls)
    );
    for (url, wanted) in [
        (
            "https://u:hunter2@mail.example.com",
            "`smtp://` or `smtps://`",
        ),
        ("smtps://u:hunter2@mail.example.com?tls=none", "always TLS"),
        (
            "smtp://u:hunter2@mail.example.com?tls=maybe",
            "`starttls` or `none`",
        ),
        (
            "smtp://u:hunter2@mail.example.com?auth=1",
            "unknown parameter `auth`",
        ),
        ("smtp://user@mail.example.com", "without a password"),
        ("hunter2", "not a URL"),
    ] {
        let e = Server::parse(url).expect_err(url);
        assert!(e.contains(wanted), "{url}: {e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}

#[tokio::test]
async fn a_bad_address_is_final_and_named() {
    let target = Target::Email {
        to: vec!["oncall@example.com".into(), "not an address".into()],
        from: "golive@example.com".into(),
        smtp: "smtp://127.0.0.1:9?tls=none".into(),
    };
    let f = golive_notify::send(&target, &message(), quick(3))
        .await
        .expect_err("bad address");
    assert_eq!(f.attempts, 0);
    assert!(
        f.error.contains("email `to`: `not an address`"),
        "{}",
        f.error
    );
}
