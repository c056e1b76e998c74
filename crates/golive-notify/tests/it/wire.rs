//! The channels' wire formats against local receivers: Slack's and
//! PagerDuty's payloads field by field as documented, the Standard Webhooks
//! signature verified by the `standardwebhooks` package from PyPI (through
//! python3), and retries on transient failures only.

use std::collections::BTreeMap;
use std::process::Command;

use golive_notify::{AlertSeverity, Event, Message, Target};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::common::quick;

/// One request as the receiver saw it.
struct Received {
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// An HTTP/1.1 receiver on a free loopback port answering each request with
/// the next of `statuses` (the last one repeats).
async fn receiver(statuses: Vec<u16>) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, len) = loop {
                let Ok(r) = sock.read(&mut chunk).await else {
                    break (0, 0);
                };
                if r == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..r]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    break (i + 4, len);
                }
            };
            if head_end == 0 {
                continue;
            }
            while buf.len() < head_end + len {
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(r) => buf.extend_from_slice(&chunk[..r]),
                }
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let mut lines = head.lines();
            let path = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .unwrap_or("")
                .to_string();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                .collect();
            let body = buf[head_end..].to_vec();
            let status = statuses[n.min(statuses.len() - 1)];
            n += 1;
            let _ = tx.send(Received {
                path,
                headers,
                body,
            });
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = sock.write_all(reply.as_bytes()).await;
        }
    });
    (url, rx)
}

fn message(event: Event, dedup_key: Option<&str>) -> Message {
    Message {
        text: "Checkout is live at 100%".into(),
        plan: "checkout-v2".into(),
        run: "r-123".into(),
        item: "announce".into(),
        event,
        dedup_key: dedup_key.map(str::to_string),
        severity: AlertSeverity::Critical,
    }
}

#[tokio::test]
async fn slack_gets_text_and_blocks() {
    let (url, mut rx) = receiver(vec![200]).await;
    let target = Target::Slack {
        url: format!("{url}/services/T000/B000/XXXX"),
    };
    let d = golive_notify::send(&target, &message(Event::Trigger, None), quick(0))
        .await
        .expect("delivered");
    assert_eq!((d.attempts, d.status), (1, 200));
    let r = rx.recv().await.expect("request");
    assert_eq!(r.path, "/services/T000/B000/XXXX");
    assert_eq!(r.headers["content-type"], "application/json");
    let body = r.json();
    assert_eq!(
        body,
        json!({
            "text": "Checkout is live at 100%",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "Checkout is live at 100%"}},
                {"type": "context", "elements": [{"type": "mrkdwn",
                    "text": "golive · plan `checkout-v2` · run `r-123` · item `announce`"}]},
            ],
        })
    );
}

#[tokio::test]
async fn pagerduty_alert_lifecycle_and_change_event() {
    let (url, mut rx) = receiver(vec![202]).await;
    let target = Target::PagerDuty {
        routing_key: "R0UTINGKEY0123456789012345678901".into(),
        events_url: Some(url),
    };
    for (event, key) in [
        (Event::Trigger, Some("golive/r-123")),
        (Event::Acknowledge, Some("golive/r-123")),
        (Event::Resolve, Some("golive/r-123")),
        (Event::Change, None),
    ] {
        let d = golive_notify::send(&target, &message(event, key), quick(0))
            .await
            .expect("delivered");
        assert_eq!(d.status, 202);
    }
    let trigger = rx.recv().await.expect("trigger");
    assert_eq!(trigger.path, "/v2/enqueue");
    let mut t = trigger.json();
    let ts = t["payload"]["timestamp"].take();
    assert!(
        ts.as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .is_some(),
        "ISO 8601 timestamp: {ts}"
    );
    assert_eq!(
        t,
        json!({
            "routing_key": "R0UTINGKEY0123456789012345678901",
            "event_action": "trigger",
            "dedup_key": "golive/r-123",
            "payload": {
                "summary": "Checkout is live at 100%",
                "source": "checkout-v2",
                "severity": "critical",
                "timestamp": null,
                "component": "announce",
                "custom_details": {"plan": "checkout-v2", "run": "r-123", "item": "announce"},
            },
            "client": "golive",
        })
    );
    for action in ["acknowledge", "resolve"] {
        let r = rx.recv().await.expect(action);
        assert_eq!(r.path, "/v2/enqueue");
        assert_eq!(
            r.json(),
            json!({
                "routing_key": "R0UTINGKEY0123456789012345678901",
                "event_action": action,
                "dedup_key": "golive/r-123",
            })
        );
    }
    let change = rx.recv().await.expect("change");
    assert_eq!(change.path, "/v2/change/enqueue");
    let mut c = change.json();
    assert!(c["payload"]["timestamp"].take().is_string());
    assert_eq!(
        c,
        json!({
            "routing_key": "R0UTINGKEY0123456789012345678901",
            "payload": {
                "summary": "Checkout is live at 100%",
                "timestamp": null,
                "source": "checkout-v2",
                "custom_details": {"plan": "checkout-v2", "run": "r-123", "item": "announce"},
            },
        })
    );
}

/// Verifies with the `standardwebhooks` package; true when it accepts.
fn python_verifies(secret: &str, r: &Received, body: &[u8]) -> bool {
    let script = "import sys, json\n\
from standardwebhooks.webhooks import Webhook\n\
args = json.loads(sys.stdin.read())\n\
try:\n    Webhook(args['secret']).verify(args['body'], args['headers'])\nexcept Exception as e:\n    print(type(e).__name__, e); sys.exit(3)\n";
    let args = json!({
        "secret": secret,
        "body": String::from_utf8_lossy(body),
        "headers": {
            "webhook-id": r.headers["webhook-id"],
            "webhook-timestamp": r.headers["webhook-timestamp"],
            "webhook-signature": r.headers["webhook-signature"],
        },
    });
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup.sh installs standardwebhooks)");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        args.to_string().as_bytes(),
    )
    .expect("write");
    let status = child.wait().expect("python3");
    assert!(
        matches!(status.code(), Some(0 | 3)),
        "python3 failed: is `standardwebhooks` installed? ({status})"
    );
    status.success()
}

#[tokio::test]
async fn webhook_is_signed_per_standard_webhooks() {
    let (url, mut rx) = receiver(vec![204]).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let target = Target::Webhook {
        url: format!("{url}/hooks/golive"),
        secret: Some(secret.into()),
    };
    golive_notify::send(&target, &message(Event::Trigger, None), quick(0))
        .await
        .expect("delivered");
    let r = rx.recv().await.expect("request");
    assert_eq!(r.path, "/hooks/golive");
    assert!(r.headers["webhook-id"].starts_with("msg_"));
    assert!(r.headers["webhook-signature"].starts_with("v1,"));
    let body = r.json();
    assert_eq!(body["type"], "golive.notify");
    assert_eq!(
        body["data"],
        json!({"plan": "checkout-v2", "run": "r-123", "item": "announce", "message": "Checkout is live at 100%"})
    );
    assert!(python_verifies(secret, &r, &r.body));
    // The check can fail: another body or another secret is rejected.
    let tampered = String::from_utf8_lossy(&r.body).replace("100%", "10%");
    assert!(!python_verifies(secret, &r, tampered.as_bytes()));
    assert!(!python_verifies(
        "whsec_QW5vdGhlclNlY3JldEtleUZvclRlc3Rpbmc=",
        &r,
        &r.body
    ));
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_are_not() {
    // 503, 429, then 200: three attempts, one webhook id across them.
    let (url, mut rx) = receiver(vec![503, 429, 200]).await;
    let target = Target::Webhook { url, secret: None };
    let d = golive_notify::send(&target, &message(Event::Trigger, None), quick(3))
        .await
        .expect("delivered on the third attempt");
    assert_eq!((d.attempts, d.status), (3, 200));
    let ids: Vec<String> = [
        rx.recv().await.expect("1"),
        rx.recv().await.expect("2"),
        rx.recv().await.expect("3"),
    ]
    .iter()
    .map(|r| r.headers["webhook-id"].clone())
    .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");

    // 400 is the receiver refusing the payload: no retry.
    let (url, mut rx) = receiver(vec![400]).await;
    let target = Target::Slack { url };
    let f = golive_notify::send(&target, &message(Event::Trigger, None), quick(3))
        .await
        .expect_err("refused");
    assert_eq!(f.attempts, 1);
    assert!(f.error.contains("400"), "{}", f.error);
    rx.recv().await.expect("one request");
    assert!(rx.try_recv().is_err());

    // Always 503: one attempt plus the retries, then a failure.
    let (url, mut rx) = receiver(vec![503]).await;
    let target = Target::Slack { url };
    let f = golive_notify::send(&target, &message(Event::Trigger, None), quick(2))
        .await
        .expect_err("never delivered");
    assert_eq!(f.attempts, 3);
    for _ in 0..3 {
        rx.recv().await.expect("attempt");
    }
}

#[tokio::test]
async fn a_malformed_secret_is_an_error_naming_the_format() {
    let target = Target::Webhook {
        url: "http://127.0.0.1:9/".into(),
        secret: Some("not-a-whsec".into()),
    };
    let f = golive_notify::send(&target, &message(Event::Trigger, None), quick(0))
        .await
        .expect_err("bad secret");
    assert!(f.error.contains("whsec_"), "{}", f.error);
}
