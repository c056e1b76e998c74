//! Shared fixtures of the probe tests: checks compiled from real plan YAML,
//! and the real servers the probes talk to — a tiny HTTP(S) server, a UDP
//! DNS responder, a certificate authority, and guards for the Redis and
//! Prometheus processes a test starts.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use golive_plan::{Check, ItemKind, Plan};
use golive_probe::{CheckResult, Status};
use golive_runtime::Vars;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// Compiles a plan whose only item is a check with this body (YAML, one
/// level: `http: …`, `expect: …`), with `header` (variables, secrets) after
/// the plan's name.
pub fn plan(header: &str, check_body: &str) -> Plan {
    let body: String = check_body
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect();
    let src = format!(
        "name: probe-test\n{header}\nphases:\n  - title: p\n    items:\n      - id: c\n        check:\n{body}"
    );
    let compiled = golive_plan::compile(&src, &|_: &str| true);
    compiled
        .plan
        .unwrap_or_else(|| panic!("plan does not compile:\n{src}\n{:#?}", compiled.diagnostics))
}

/// The check of a plan made by [`plan`].
pub fn check_of(plan: &Plan) -> Check {
    plan.items()
        .find_map(|(_, item)| match &item.kind {
            ItemKind::Check(c) => Some(c.clone()),
            _ => None,
        })
        .expect("the plan has a check")
}

/// A check from its YAML body, in a plan without variables.
pub fn check(body: &str) -> Check {
    check_of(&plan("", body))
}

/// Runs a check with no variables.
pub async fn run(body: &str) -> CheckResult {
    golive_probe::run_check(&check(body), &Vars::default()).await
}

/// Asserts the status, showing the whole result when it differs.
#[track_caller]
pub fn assert_status(r: &CheckResult, status: Status) {
    assert_eq!(r.status, status, "{r:#?}");
}

/// The observed text of the condition written `condition`.
#[track_caller]
pub fn observed<'a>(r: &'a CheckResult, condition: &str) -> &'a str {
    r.conditions
        .iter()
        .find(|c| c.condition == condition)
        .and_then(|c| c.observed.as_deref())
        .unwrap_or_else(|| panic!("no condition `{condition}` in {r:#?}"))
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `ready` every 100 ms until it holds or `limit` passes.
pub async fn wait_until<F, Fut>(limit: Duration, mut ready: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

// ---------------------------------------------------------------- HTTP

/// A tiny HTTP/1.1 server on 127.0.0.1 with fixed routes:
/// `/ok` (JSON with security headers), `/plain` (no security headers),
/// `/down` (503), `/slow` (answers after a minute), `/drop` (closes without
/// answering), `/flaky` (503 twice, then 200), `/echo` (method, body and the
/// `X-Token` header as JSON), `/metrics` (Prometheus text format).
///
/// Its task is aborted when the server is dropped.
pub struct HttpServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpServer {
    /// Plain HTTP.
    pub async fn start() -> HttpServer {
        HttpServer::start_with(None).await
    }

    /// HTTPS with the given rustls server settings when `tls` is some.
    pub async fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let hits = Arc::new(AtomicUsize::new(0));
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let hits = Arc::clone(&hits);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(s) = a.accept(stream).await {
                                serve(s, &hits).await;
                            }
                        }
                        None => serve(stream, &hits).await,
                    }
                });
            }
        });
        HttpServer { addr, task }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, hits: &AtomicUsize) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let security = "Strict-Transport-Security: max-age=63072000; includeSubDomains\r\nX-Content-Type-Options: nosniff\r\n";
    let (code, extra, payload) = match path.as_str() {
        "/ok" => (
            200,
            format!("Content-Type: application/json\r\n{security}"),
            r#"{"status":"UP","version":"1.4.2","items":[1,2,3],"db":{"latency_ms":12}}"#
                .to_string(),
        ),
        "/plain" => (200, "Content-Type: text/plain\r\n".into(), "hello".into()),
        "/down" => (503, String::new(), "down".into()),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            (200, String::new(), "late".into())
        }
        "/drop" => return,
        "/flaky" => {
            if hits.fetch_add(1, Ordering::SeqCst) < 2 {
                (503, String::new(), "not yet".into())
            } else {
                (200, String::new(), "ready".into())
            }
        }
        "/echo" => (
            200,
            "Content-Type: application/json\r\n".into(),
            serde_json::json!({
                "method": method,
                "body": String::from_utf8_lossy(&body),
                "token": header("x-token"),
            })
            .to_string(),
        ),
        "/metrics" => (
            200,
            "Content-Type: text/plain; version=0.0.4\r\n".into(),
            "# TYPE golive_test_up gauge\ngolive_test_up 1\n".into(),
        ),
        _ => (404, String::new(), "not found".into()),
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{payload}",
        payload.len()
    );
    let _ = s.write_all(response.as_bytes()).await;
    let _ = s.shutdown().await;
}

// ---------------------------------------------------------------- TLS

/// A test certificate authority and a server certificate it signed for
/// `localhost` and 127.0.0.1, valid for `days` more days.
pub struct TestPki {
    /// The CA certificate, PEM, in a temporary file.
    pub ca_file: tempfile::NamedTempFile,
    /// Server settings presenting the leaf certificate.
    pub server: Arc<rustls::ServerConfig>,
}

impl TestPki {
    pub fn new(days: i64) -> TestPki {
        let now = time::OffsetDateTime::now_utc();
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "golive test CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.not_before = now - time::Duration::days(1);
        ca_params.not_after = now + time::Duration::days(365);
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let mut leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "golive test server");
        leaf_params.not_before = now - time::Duration::days(1);
        leaf_params.not_after = now + time::Duration::days(days);
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf certificate");

        let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
        ca_file.write_all(ca.pem().as_bytes()).expect("write CA");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("server config");
        TestPki {
            ca_file,
            server: Arc::new(server),
        }
    }

    /// The CA file's path, for a plan.
    pub fn ca_path(&self) -> &Path {
        self.ca_file.path()
    }
}

// ---------------------------------------------------------------- DNS

/// A UDP DNS responder on 127.0.0.1 that knows one name:
/// `app.golive.test` A 10.1.2.3; every other name is NXDOMAIN.
pub struct DnsServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsServer {
    pub async fn start() -> DnsServer {
        use hickory_proto::op::{Message, MessageType, ResponseCode};
        use hickory_proto::rr::{RData, Record, RecordType, rdata::A};

        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let addr = socket.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let Ok(request) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut response = Message::new();
                response
                    .set_id(request.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(request.op_code())
                    .set_recursion_desired(request.recursion_desired())
                    .set_recursion_available(true)
                    .add_queries(request.queries().to_vec());
                let known = request.queries().first().is_some_and(|q| {
                    q.name().to_ascii().trim_end_matches('.') == "app.golive.test"
                        && q.query_type() == RecordType::A
                });
                if let (true, Some(q)) = (known, request.queries().first()) {
                    response.add_answer(Record::from_rdata(
                        q.name().clone(),
                        60,
                        RData::A(A::new(10, 1, 2, 3)),
                    ));
                } else {
                    response.set_response_code(ResponseCode::NXDomain);
                }
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        DnsServer { addr, task }
    }
}

// ---------------------------------------------------------------- processes

/// A child process killed (and reaped) when the guard is dropped, also when
/// the test panics.
pub struct ChildGuard {
    child: Child,
    pub name: &'static str,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChildGuard {
    /// Starts `program` with `args`, its output into `log`.
    pub fn spawn(name: &'static str, program: &str, args: &[String], log: &Path) -> ChildGuard {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        ChildGuard { child, name }
    }

    /// Panics with the log when the process has already exited.
    pub fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{} exited early ({status}):\n{text}", self.name);
        }
    }
}

/// Where a program is on PATH, if anywhere.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// Whether something accepts TCP connections at `addr`.
pub async fn accepts(addr: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_ok()
}
