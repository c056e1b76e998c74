//! The traffic actuators against the real thing: HAProxy and nginx (the
//! Debian packages) started by each test in its own temporary directory on
//! free 127.0.0.1 ports, in front of two test HTTP servers (`v1`, the
//! stable, and `v2`, the canary) while keep-alive clients keep requesting;
//! a SQLite store for the flag actuator; a command and a test webhook.
//!
//! The load clients speak HTTP/1.1 by hand so that what a keep-alive
//! client sees is counted exactly, with three reuse policies:
//! - `naive`: reuses a connection without looking and never retries;
//! - `checked`: drops a pooled connection the server has already closed
//!   before sending on it (what hyper's pool does), never retries;
//! - `retrying`: `checked`, and retries an idempotent GET once when a
//!   reused connection closes before any answer.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use golive_rollout::traffic::{Actuator, TrafficError};
use golive_store::{Actor, AnyStore, AuditFilter, Store};
use golive_testkit::free_port;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

// ───────────────────────── test HTTP servers ─────────────────────────

/// One request as a test server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    body: String,
}

type Handler = Arc<dyn Fn(&Seen) -> (u16, String) + Send + Sync>;

/// A minimal HTTP/1.1 server with keep-alive, answering through `handler`
/// and recording every request.
struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start(handler: Handler) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, record) = (Arc::clone(&handler), Arc::clone(&record));
                connections.spawn(async move {
                    let _ = serve_connection(stream, handler, record).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        TestServer { addr, seen, task }
    }

    /// A backend answering `200 body` to everything.
    async fn backend(body: &'static str) -> TestServer {
        TestServer::start(Arc::new(move |_: &Seen| (200, body.to_string()))).await
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

async fn serve_connection(
    stream: TcpStream,
    handler: Handler,
    record: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut conn = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or_default().to_string();
        let path = words.next().unwrap_or_default().to_string();
        let http10 = line.contains("HTTP/1.0");
        let (mut length, mut close) = (0usize, http10);
        loop {
            let mut header = String::new();
            if conn.read_line(&mut header).await? == 0 {
                return Ok(());
            }
            let header = header.trim();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            } else if name == "connection" {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let mut body = vec![0; length];
        conn.read_exact(&mut body).await?;
        let request = Seen {
            method,
            path,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let (status, answer) = handler(&request);
        record.lock().expect("not poisoned").push(request);
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{answer}",
            answer.len(),
            if close { "Connection: close\r\n" } else { "" },
        );
        conn.get_mut().write_all(response.as_bytes()).await?;
        if close {
            return Ok(());
        }
    }
}

// ───────────────────────── keep-alive load ─────────────────────────

/// How a load client reuses connections.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Policy {
    Naive,
    Checked,
    Retrying,
}

const POLICIES: [Policy; 3] = [Policy::Naive, Policy::Checked, Policy::Retrying];

/// What one policy's clients saw.
#[derive(Default)]
struct PolicyStats {
    /// Requests answered (any status).
    answered: AtomicU64,
    /// A reused connection closed after the request was sent, before any
    /// answer (the keep-alive race); for `retrying`, each led to a retry.
    closed_before_answer: AtomicU64,
    /// Pooled connections found already closed and dropped before use.
    stale_dropped: AtomicU64,
    /// Requests given up on (after the retry, for `retrying`).
    lost: AtomicU64,
    /// Answers with a 5xx status.
    status_5xx: AtomicU64,
    /// Failures other than the keep-alive race: connect errors, a
    /// connection broken mid-answer, a fresh connection closed, timeouts.
    other: AtomicU64,
}

#[derive(Default)]
struct Stats {
    v1: AtomicU64,
    v2: AtomicU64,
    policies: [PolicyStats; 3],
    last_error: Mutex<Option<String>>,
}

impl Stats {
    fn of(&self, policy: Policy) -> &PolicyStats {
        &self.policies[POLICIES.iter().position(|p| *p == policy).unwrap_or(0)]
    }

    fn served(&self) -> (u64, u64) {
        (
            self.v1.load(Ordering::SeqCst),
            self.v2.load(Ordering::SeqCst),
        )
    }

    fn failures(&self) -> u64 {
        self.policies
            .iter()
            .map(|p| {
                p.closed_before_answer.load(Ordering::SeqCst)
                    + p.lost.load(Ordering::SeqCst)
                    + p.status_5xx.load(Ordering::SeqCst)
                    + p.other.load(Ordering::SeqCst)
            })
            .sum()
    }

    fn report(&self, label: &str) -> String {
        let mut out = format!(
            "{label}: served v1={} v2={}\n",
            self.served().0,
            self.served().1
        );
        for (policy, s) in POLICIES.iter().zip(&self.policies) {
            out.push_str(&format!(
                "  {policy:?}: answered={} closed_before_answer={} stale_dropped={} lost={} 5xx={} other={}\n",
                s.answered.load(Ordering::SeqCst),
                s.closed_before_answer.load(Ordering::SeqCst),
                s.stale_dropped.load(Ordering::SeqCst),
                s.lost.load(Ordering::SeqCst),
                s.status_5xx.load(Ordering::SeqCst),
                s.other.load(Ordering::SeqCst),
            ));
        }
        if let Some(e) = self.last_error.lock().expect("not poisoned").as_ref() {
            out.push_str(&format!("  last error: {e}\n"));
        }
        out
    }
}

/// Clients requesting `GET /` through the proxy until dropped.
struct Load {
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// `per_policy` clients of each policy, each pausing `pause` between
    /// requests (keeping the rate, and so the proxies' connections to the
    /// backends, modest on a 2-core machine).
    fn start(addr: SocketAddr, per_policy: usize, pause: Duration) -> Load {
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for policy in POLICIES {
            for _ in 0..per_policy {
                let (stats, stop) = (Arc::clone(&stats), Arc::clone(&stop));
                tasks.push(tokio::spawn(client(addr, policy, pause, stats, stop)));
            }
        }
        Load { stats, stop, tasks }
    }

    async fn finish(mut self) -> Arc<Stats> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        Arc::clone(&self.stats)
    }

    /// Waits `settle`, then counts the next `at_least` answers; returns
    /// the canary's share in percent and the number counted.
    async fn measure(&self, settle: Duration, at_least: u64) -> (f64, u64) {
        tokio::time::sleep(settle).await;
        let (v1, v2) = self.stats.served();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (n1, n2) = self.stats.served();
            let (d1, d2) = (n1 - v1, n2 - v2);
            if d1 + d2 >= at_least {
                return (100.0 * d2 as f64 / (d1 + d2) as f64, d1 + d2);
            }
            assert!(
                Instant::now() < deadline,
                "only {} answers in 30s\n{}",
                d1 + d2,
                self.stats.report("load")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How one request went wrong.
enum Fail {
    /// Closed (EOF, reset, broken pipe) before any byte of an answer.
    Closed(String),
    /// Anything else: connect failure, broken mid-answer, timeout.
    Other(String),
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Closed(e) => write!(f, "closed before an answer: {e}"),
            Fail::Other(e) => write!(f, "{e}"),
        }
    }
}

struct Answer {
    status: u16,
    body: String,
    close: bool,
}

async fn client(
    addr: SocketAddr,
    policy: Policy,
    pause: Duration,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let mine = stats.of(policy);
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::SeqCst) {
        let mut result = attempt(addr, policy, &mut conn, mine).await;
        if policy == Policy::Retrying
            && let Err((Fail::Closed(_), true)) = &result
        {
            mine.closed_before_answer.fetch_add(1, Ordering::SeqCst);
            result = attempt(addr, policy, &mut conn, mine).await;
        }
        match result {
            Ok(answer) => {
                mine.answered.fetch_add(1, Ordering::SeqCst);
                match (answer.status, answer.body.as_str()) {
                    (200, "v1") => stats.v1.fetch_add(1, Ordering::SeqCst),
                    (200, "v2") => stats.v2.fetch_add(1, Ordering::SeqCst),
                    (s, _) if s >= 500 => mine.status_5xx.fetch_add(1, Ordering::SeqCst),
                    _ => mine.other.fetch_add(1, Ordering::SeqCst),
                };
            }
            Err((fail, reused)) => {
                if policy == Policy::Retrying {
                    mine.lost.fetch_add(1, Ordering::SeqCst);
                } else {
                    mine.lost.fetch_add(1, Ordering::SeqCst);
                    match fail {
                        Fail::Closed(_) if reused => {
                            mine.closed_before_answer.fetch_add(1, Ordering::SeqCst)
                        }
                        _ => mine.other.fetch_add(1, Ordering::SeqCst),
                    };
                }
                *stats.last_error.lock().expect("not poisoned") =
                    Some(format!("{policy:?} (reused: {reused}): {fail}"));
            }
        }
        tokio::time::sleep(pause).await;
    }
}

/// One request on the pooled connection (or a new one); the error says
/// whether the connection was a reused one.
async fn attempt(
    addr: SocketAddr,
    policy: Policy,
    conn: &mut Option<BufReader<TcpStream>>,
    stats: &PolicyStats,
) -> Result<Answer, (Fail, bool)> {
    if policy != Policy::Naive
        && let Some(c) = conn
        && already_closed(c)
    {
        stats.stale_dropped.fetch_add(1, Ordering::SeqCst);
        *conn = None;
    }
    let reused = conn.is_some();
    if conn.is_none() {
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => *conn = Some(BufReader::new(stream)),
            Ok(Err(e)) => return Err((Fail::Other(format!("connect: {e}")), false)),
            Err(_) => return Err((Fail::Other("connect timed out".into()), false)),
        }
    }
    let Some(c) = conn.as_mut() else {
        return Err((Fail::Other("no connection".into()), false));
    };
    let outcome = tokio::time::timeout(Duration::from_secs(10), request(c)).await;
    match outcome {
        Ok(Ok(answer)) => {
            if answer.close {
                *conn = None;
            }
            Ok(answer)
        }
        Ok(Err(fail)) => {
            *conn = None;
            Err((fail, reused))
        }
        Err(_) => {
            *conn = None;
            Err((Fail::Other("no answer within 10s".into()), reused))
        }
    }
}

/// Whether the peer has closed (or written unasked) on an idle connection.
fn already_closed(conn: &BufReader<TcpStream>) -> bool {
    let mut byte = [0u8; 1];
    !matches!(
        conn.get_ref().try_read(&mut byte),
        Err(e) if e.kind() == ErrorKind::WouldBlock
    )
}

async fn request(conn: &mut BufReader<TcpStream>) -> Result<Answer, Fail> {
    conn.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .map_err(|e| Fail::Closed(format!("write: {e}")))?;
    let mut line = String::new();
    match conn.read_line(&mut line).await {
        Ok(0) => return Err(Fail::Closed("EOF before the status line".into())),
        Err(e) => return Err(Fail::Closed(format!("read: {e}"))),
        Ok(_) => {}
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| Fail::Other(format!("bad status line {line:?}")))?;
    let (mut length, mut close) = (0usize, false);
    loop {
        let mut header = String::new();
        match conn.read_line(&mut header).await {
            Ok(0) => return Err(Fail::Other("EOF in the headers".into())),
            Err(e) => return Err(Fail::Other(format!("headers: {e}"))),
            Ok(_) => {}
        }
        let header = header.trim();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "connection" => close = value.trim().eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body)
        .await
        .map_err(|e| Fail::Other(format!("body: {e}")))?;
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        close,
    })
}

// ───────────────────────── processes ─────────────────────────

/// A proxy process of the test's own, stopped (TERM, then KILL) on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(program: &str, args: &[&str], log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = std::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `port` accepts connections.
    async fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the proxy exited ({status}) before listening:\n{}",
                    self.log()
                );
            }
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not listening on {port} after 10s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // TERM lets nginx's master take its workers down with it.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require(program: &str) {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{program}` is not installed (apt-get install -y haproxy nginx)"
    );
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("golive-traffic-")
        .tempdir()
        .expect("temp dir")
}

fn actor() -> Actor {
    Actor {
        name: "golive-engine".into(),
        source: Some("cli".into()),
    }
}

/// A store for the actuators that do not use one.
async fn scratch_store(dir: &Path) -> AnyStore {
    golive_store::open(&format!("sqlite://{}", dir.join("scratch.db").display()))
        .await
        .expect("store")
}

const STEPS: [u8; 6] = [0, 5, 25, 50, 100, 0];
const PER_STEP: u64 = 400;
const TOLERANCE: f64 = 8.0;

// ───────────────────────── HAProxy ─────────────────────────

fn haproxy_traffic(socket: &str, stable: &str, canary: &str) -> golive_plan::Traffic {
    golive_plan::Traffic::Haproxy {
        socket: socket.into(),
        backend: "app".into(),
        stable: stable.into(),
        canary: canary.into(),
    }
}

/// HAProxy in the foreground with an admin unix socket and an admin TCP
/// socket, balancing `app` between v1 (s1, weight 100) and v2 (s2, 0).
async fn start_haproxy(
    dir: &Path,
    v1: &TestServer,
    v2: &TestServer,
) -> (Proc, SocketAddr, String, u16) {
    require("haproxy");
    let (port, admin_port) = (free_port(), free_port());
    let socket = dir.join("admin.sock").display().to_string();
    let config = format!(
        "global\n\
         \x20   stats socket {socket} mode 600 level admin\n\
         \x20   stats socket ipv4@127.0.0.1:{admin_port} level admin\n\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 2s\n\
         \x20   timeout client 60s\n\
         \x20   timeout server 60s\n\
         \x20   timeout http-keep-alive 60s\n\
         frontend fe\n\
         \x20   bind 127.0.0.1:{port}\n\
         \x20   default_backend app\n\
         backend app\n\
         \x20   balance roundrobin\n\
         \x20   server s1 {} weight 100\n\
         \x20   server s2 {} weight 0\n",
        v1.addr, v2.addr
    );
    let conf = dir.join("haproxy.cfg");
    std::fs::write(&conf, config).expect("write haproxy.cfg");
    let conf = conf.display().to_string();
    let mut proc = Proc::spawn("haproxy", &["-f", &conf, "-db"], dir.join("haproxy.log"));
    proc.wait_listening(port).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    (proc, addr, socket, admin_port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_steps_weights_under_keep_alive_load_without_errors() {
    let started = Instant::now();
    let dir = temp_dir();
    let store = scratch_store(dir.path()).await;
    let (v1, v2) = (
        TestServer::backend("v1").await,
        TestServer::backend("v2").await,
    );
    let (_haproxy, addr, socket, admin_port) = start_haproxy(dir.path(), &v1, &v2).await;
    let vars = golive_runtime::Vars::default();
    let actuator =
        Actuator::from_plan(&haproxy_traffic(&socket, "s1", "s2"), &vars).expect("valid settings");
    assert_eq!(
        actuator.describe(),
        format!("haproxy {socket} backend app (stable s1, canary s2)")
    );
    // The same backend through the TCP socket, in both spellings.
    let over_tcp: Vec<Actuator> = [
        format!("ipv4@127.0.0.1:{admin_port}"),
        format!("tcp:127.0.0.1:{admin_port}"),
    ]
    .iter()
    .map(|s| Actuator::from_plan(&haproxy_traffic(s, "s1", "s2"), &vars).expect("valid"))
    .collect();

    let load = Load::start(addr, 2, Duration::from_millis(3));
    for weight in STEPS {
        let applied = actuator
            .set_weight(&store, weight, &actor())
            .await
            .expect("weights set");
        assert_eq!((applied.canary, applied.stable), (weight, 100 - weight));
        let commands = applied.detail["commands"].as_array().expect("commands");
        assert_eq!(commands.len(), 2, "{}", applied.detail);
        // Raise before lower: the first command is for the server going up.
        let before = applied.detail["before"]["canary"].as_u64().expect("before");
        let first = commands[0]["command"].as_str().expect("command");
        let first_up = if u64::from(weight) >= before {
            "app/s2"
        } else {
            "app/s1"
        };
        assert!(first.contains(first_up), "{}", applied.detail);
        assert_eq!(
            actuator.current(&store).await.expect("current"),
            Some(weight)
        );
        for tcp in &over_tcp {
            assert_eq!(tcp.current(&store).await.expect("current"), Some(weight));
        }
        let (share, counted) = load.measure(Duration::from_millis(50), PER_STEP).await;
        println!("haproxy: weight {weight:>3}% -> v2 served {share:5.1}% of {counted}");
        assert!(
            (share - f64::from(weight)).abs() <= TOLERANCE,
            "weight {weight}: v2 served {share:.1}% of {counted}"
        );
        // Idempotent: applying it again changes nothing.
        actuator
            .set_weight(&store, weight, &actor())
            .await
            .expect("re-applied");
        assert_eq!(
            actuator.current(&store).await.expect("current"),
            Some(weight)
        );
    }
    let stats = load.finish().await;
    print!("{}", stats.report("haproxy keep-alive load"));
    assert_eq!(
        stats.failures(),
        0,
        "{}",
        stats.report("haproxy keep-alive load")
    );
    for policy in POLICIES {
        assert_eq!(stats.of(policy).stale_dropped.load(Ordering::SeqCst), 0);
    }
    println!("haproxy steps test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_errors_quote_haproxy() {
    let dir = temp_dir();
    let store = scratch_store(dir.path()).await;
    let (v1, v2) = (
        TestServer::backend("v1").await,
        TestServer::backend("v2").await,
    );
    let (_haproxy, _, socket, _) = start_haproxy(dir.path(), &v1, &v2).await;
    let vars = golive_runtime::Vars::default();

    let bad = Actuator::from_plan(&haproxy_traffic(&socket, "s1", "nope"), &vars).expect("valid");
    let e = bad
        .set_weight(&store, 25, &actor())
        .await
        .expect_err("no such server");
    let msg = e.to_string();
    println!("bad server: {msg}");
    assert!(matches!(e, TrafficError::HaproxyAnswer { .. }), "{e:?}");
    assert!(
        msg.contains("get weight app/nope") && msg.contains("No such server."),
        "{msg}"
    );
    let bad_backend = golive_plan::Traffic::Haproxy {
        socket: format!("unix:{socket}"),
        backend: "nope".into(),
        stable: "s1".into(),
        canary: "s2".into(),
    };
    let e = Actuator::from_plan(&bad_backend, &vars)
        .expect("valid")
        .current(&store)
        .await
        .expect_err("no such backend");
    assert!(e.to_string().contains("No such backend."), "{e}");

    // Nothing listens on the socket: the connect error, quickly.
    let missing = dir.path().join("missing.sock").display().to_string();
    let e = Actuator::from_plan(&haproxy_traffic(&missing, "s1", "s2"), &vars)
        .expect("valid")
        .set_weight(&store, 10, &actor())
        .await
        .expect_err("no socket");
    println!("missing socket: {e}");
    assert!(
        matches!(e, TrafficError::HaproxyUnreachable { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("cannot connect"), "{e}");

    let e = Actuator::from_plan(&haproxy_traffic(&socket, "s1;shutdown", "s2"), &vars)
        .expect_err("injection refused");
    assert!(matches!(e, TrafficError::Config { .. }), "{e:?}");

    let good = Actuator::from_plan(&haproxy_traffic(&socket, "s1", "s2"), &vars).expect("valid");
    let e = good
        .set_weight(&store, 101, &actor())
        .await
        .expect_err("above 100");
    assert!(matches!(e, TrafficError::Weight(101)), "{e:?}");
    // Nothing was changed by the failures above.
    assert_eq!(good.current(&store).await.expect("current"), Some(0));
}

// ───────────────────────── nginx ─────────────────────────

struct NginxSetup {
    proc: Proc,
    addr: SocketAddr,
    upstream_file: PathBuf,
    reload: String,
}

fn nginx_traffic(
    file: &Path,
    v1: &TestServer,
    v2: &TestServer,
    reload: &str,
) -> golive_plan::Traffic {
    golive_plan::Traffic::Nginx {
        upstream_file: file.display().to_string(),
        upstream: "app".into(),
        stable: v1.addr.to_string(),
        canary: v2.addr.to_string(),
        reload: reload.into(),
    }
}

/// nginx in the foreground (`daemon off`), its prefix and pid file in the
/// temp dir, including the upstream file golive writes. The plan's reload
/// command is the one an operator would use: test, then signal the
/// master through its pid file.
async fn start_nginx(dir: &Path, v1: &TestServer, v2: &TestServer, store: &AnyStore) -> NginxSetup {
    require("nginx");
    let port = free_port();
    let d = dir.display();
    let upstream_file = dir.join("upstream.conf");
    let config = format!(
        "worker_processes 2;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log notice;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {d}/body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   include {};\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       location / {{ proxy_pass http://app; }}\n\
         \x20   }}\n\
         }}\n",
        upstream_file.display()
    );
    std::fs::write(dir.join("nginx.conf"), config).expect("write nginx.conf");
    let reload = format!(
        "nginx -q -t -p {d}/ -c {d}/nginx.conf && nginx -p {d}/ -c {d}/nginx.conf -s reload"
    );
    // The first upstream file, written by golive before nginx runs (its
    // reload command would find no nginx to signal yet).
    let vars = golive_runtime::Vars::default();
    Actuator::from_plan(&nginx_traffic(&upstream_file, v1, v2, "true"), &vars)
        .expect("valid")
        .set_weight(store, 0, &actor())
        .await
        .expect("first upstream file");
    let prefix = format!("{d}/");
    let conf = format!("{d}/nginx.conf");
    let mut proc = Proc::spawn(
        "nginx",
        &["-p", &prefix, "-c", &conf, "-g", "daemon off;"],
        dir.join("nginx.log"),
    );
    proc.wait_listening(port).await;
    NginxSetup {
        proc,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        upstream_file,
        reload,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_steps_weights_across_reloads_under_keep_alive_load() {
    let started = Instant::now();
    let dir = temp_dir();
    let store = scratch_store(dir.path()).await;
    let (v1, v2) = (
        TestServer::backend("v1").await,
        TestServer::backend("v2").await,
    );
    let nginx = start_nginx(dir.path(), &v1, &v2, &store).await;
    let vars = golive_runtime::Vars::default();
    let actuator = Actuator::from_plan(
        &nginx_traffic(&nginx.upstream_file, &v1, &v2, &nginx.reload),
        &vars,
    )
    .expect("valid settings");
    println!("{}", actuator.describe());

    let load = Load::start(nginx.addr, 2, Duration::from_millis(3));
    let mut reloads = 0;
    for weight in STEPS {
        let applied = actuator
            .set_weight(&store, weight, &actor())
            .await
            .expect("upstream written and nginx reloaded");
        reloads += 1;
        assert_eq!((applied.canary, applied.stable), (weight, 100 - weight));
        let content = std::fs::read_to_string(&nginx.upstream_file).expect("upstream file");
        match weight {
            0 => assert!(
                content.contains(&format!("server {} down;", v2.addr)),
                "{content}"
            ),
            100 => assert!(
                content.contains(&format!("server {} down;", v1.addr)),
                "{content}"
            ),
            w => assert!(
                content.contains(&format!("server {} weight={w};", v2.addr)),
                "{content}"
            ),
        }
        assert_eq!(
            actuator.current(&store).await.expect("current"),
            Some(weight)
        );
        // `nginx -s reload` returns once the master is signalled; give it
        // time to start the new workers and retire the old ones.
        let (share, counted) = load.measure(Duration::from_millis(500), PER_STEP).await;
        println!("nginx: weight {weight:>3}% -> v2 served {share:5.1}% of {counted}");
        assert!(
            (share - f64::from(weight)).abs() <= TOLERANCE,
            "weight {weight}: v2 served {share:.1}% of {counted}"
        );
    }
    // Re-applying the weight in effect (what the engine does after a
    // crash) reloads again and keeps the share.
    actuator
        .set_weight(&store, 0, &actor())
        .await
        .expect("re-applied");
    reloads += 1;
    let (share, _) = load.measure(Duration::from_millis(500), PER_STEP).await;
    assert!(
        share <= TOLERANCE,
        "v2 served {share:.1}% after re-applying 0"
    );

    let stats = load.finish().await;
    let report = stats.report(&format!("nginx keep-alive load across {reloads} reloads"));
    print!("{report}");
    for policy in POLICIES {
        let s = stats.of(policy);
        // Reloads are graceful: no 5xx, no broken answers, no refused
        // connections — only idle keep-alive connections closed.
        assert_eq!(s.status_5xx.load(Ordering::SeqCst), 0, "{report}");
        assert_eq!(s.other.load(Ordering::SeqCst), 0, "{report}");
        assert!(s.answered.load(Ordering::SeqCst) > 0, "{report}");
    }
    // A client that retries an idempotent GET once loses nothing.
    assert_eq!(
        stats.of(Policy::Retrying).lost.load(Ordering::SeqCst),
        0,
        "{report}"
    );
    let error_log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    assert!(
        !error_log.contains("[emerg]") && !error_log.contains("[alert]"),
        "{error_log}"
    );
    drop(nginx.proc);
    println!("nginx steps test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_failed_reload_restores_the_previous_file() {
    require("nginx");
    let dir = temp_dir();
    let store = scratch_store(dir.path()).await;
    let (v1, v2) = (
        TestServer::backend("v1").await,
        TestServer::backend("v2").await,
    );
    let vars = golive_runtime::Vars::default();
    let file = dir.path().join("upstream.conf");
    let with_reload = |reload: &str| {
        Actuator::from_plan(&nginx_traffic(&file, &v1, &v2, reload), &vars).expect("valid")
    };

    // No file yet: nothing to tell.
    assert_eq!(
        with_reload("true").current(&store).await.expect("current"),
        None
    );
    // A failed first write leaves no file behind.
    let e = with_reload("false")
        .set_weight(&store, 5, &actor())
        .await
        .expect_err("reload fails");
    assert!(e.to_string().contains("removed"), "{e}");
    assert!(!file.exists());

    with_reload("true")
        .set_weight(&store, 25, &actor())
        .await
        .expect("written");
    let good = std::fs::read(&file).expect("file");

    // `false`: the previous content is back, byte for byte.
    let e = with_reload("false")
        .set_weight(&store, 50, &actor())
        .await
        .expect_err("reload fails");
    println!("reload `false`: {e}");
    assert!(matches!(e, TrafficError::NginxReload { .. }), "{e:?}");
    assert!(
        e.to_string().contains("exited with code 1")
            && e.to_string()
                .contains("previous upstream file was restored"),
        "{e}"
    );
    assert_eq!(std::fs::read(&file).expect("file"), good);
    assert_eq!(
        with_reload("true").current(&store).await.expect("current"),
        Some(25)
    );

    // A real `nginx -t` that fails: its complaint is quoted.
    let d = dir.path().display();
    std::fs::write(
        dir.path().join("broken.conf"),
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
             http {{ include {}; server {{ listen 127.0.0.1:1; location / {{ proxy_pass http://missing_upstream; }} }} }}\n",
            file.display()
        ),
    )
    .expect("write broken.conf");
    let e = with_reload(&format!("nginx -q -t -p {d}/ -c {d}/broken.conf"))
        .set_weight(&store, 100, &actor())
        .await
        .expect_err("nginx -t fails");
    println!("nginx -t failure: {e}");
    assert!(
        e.to_string().contains("[emerg]") && e.to_string().contains("missing_upstream"),
        "{e}"
    );
    assert_eq!(std::fs::read(&file).expect("file"), good);

    // A file golive did not write is never overwritten, nor read.
    let foreign = dir.path().join("nginx.conf");
    std::fs::write(&foreign, "user nobody;\n").expect("write");
    let theirs =
        Actuator::from_plan(&nginx_traffic(&foreign, &v1, &v2, "true"), &vars).expect("valid");
    let e = theirs
        .set_weight(&store, 5, &actor())
        .await
        .expect_err("not golive's file");
    assert!(e.to_string().contains("golive did not write it"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&foreign).expect("read"),
        "user nobody;\n"
    );
    assert_eq!(theirs.current(&store).await.expect("current"), None);

    // Settings that would break the file are refused up front.
    let e = Actuator::from_plan(
        &golive_plan::Traffic::Nginx {
            upstream_file: file.display().to_string(),
            upstream: "app".into(),
            stable: "10.0.0.1:80; server evil:80".into(),
            canary: "10.0.0.2:80".into(),
            reload: "true".into(),
        },
        &vars,
    )
    .expect_err("not one word");
    assert!(matches!(e, TrafficError::Config { .. }), "{e:?}");
}

// ───────────────────────── command and webhook ─────────────────────────

/// Variables with one secret, as `--var` gives it.
fn vars_with_secret(name: &str, value: &str) -> golive_runtime::Vars {
    let src = format!(
        "name: t\nsecrets:\n  {name}: env:GOLIVE_TEST_NEVER_SET\nphases:\n  - title: p\n    items:\n      - id: t\n        task: {{}}\n"
    );
    let compiled = golive_plan::compile(&src, &|_: &str| true);
    let plan = compiled.plan.expect("plan compiles");
    golive_runtime::Vars::resolve(&plan, &[(name.to_string(), value.to_string())]).expect("vars")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_gets_the_weights_in_its_environment() {
    let dir = temp_dir();
    let store = scratch_store(dir.path()).await;
    let out = dir.path().join("weight");
    let vars = vars_with_secret("TOKEN", "sekr1t-value");
    let traffic = golive_plan::Traffic::Command {
        command: format!(
            "printf '%s %s' \"$GOLIVE_WEIGHT\" \"$GOLIVE_STABLE_WEIGHT\" > {}; echo moved-with ${{TOKEN}}",
            out.display()
        ),
    };
    let actuator = Actuator::from_plan(&traffic, &vars).expect("valid");
    assert!(!format!("{actuator:?}").contains("sekr1t-value"));
    assert!(
        actuator.describe().contains("moved-with ***"),
        "{}",
        actuator.describe()
    );
    for weight in [5, 25, 100, 0] {
        let applied = actuator
            .set_weight(&store, weight, &actor())
            .await
            .expect("command ran");
        assert_eq!((applied.canary, applied.stable), (weight, 100 - weight));
        assert_eq!(
            std::fs::read_to_string(&out).expect("written"),
            format!("{weight} {}", 100 - weight)
        );
        assert_eq!(applied.detail["stdout"], "moved-with ***");
        assert_eq!(actuator.current(&store).await.expect("current"), None);
    }

    let failing = golive_plan::Traffic::Command {
        command: "echo working; echo 'lb refused: ${TOKEN}' >&2; exit 3".into(),
    };
    let e = Actuator::from_plan(&failing, &vars)
        .expect("valid")
        .set_weight(&store, 25, &actor())
        .await
        .expect_err("exit 3");
    let msg = e.to_string();
    println!("failing command: {msg}");
    assert!(
        msg.contains("exited with code 3")
            && msg.contains("lb refused: ***")
            && msg.contains("working"),
        "{msg}"
    );
    assert!(!msg.contains("sekr1t-value"), "{msg}");

    let slow = golive_plan::Traffic::Command {
        command: "sleep 5".into(),
    };
    let t0 = Instant::now();
    let e = Actuator::from_plan(&slow, &vars)
        .expect("valid")
        .with_timeout(Duration::from_millis(300))
        .set_weight(&store, 25, &actor())
        .await
        .expect_err("timeout");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(e.to_string().contains("timed out after"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_posts_the_weights_and_reports_failures() {
    let dir = temp_dir();
    let store = scratch_store(dir.path()).await;
    let hook = TestServer::start(Arc::new(|seen: &Seen| {
        if seen.path.starts_with("/fail") {
            (500, "load balancer API: upstream pool locked".into())
        } else {
            (204, String::new())
        }
    }))
    .await;
    let vars = vars_with_secret("HOOK_TOKEN", "t0ken-abcdef");
    let traffic = golive_plan::Traffic::Webhook {
        url: format!("http://{}/traffic?token=${{HOOK_TOKEN}}", hook.addr),
    };
    let actuator = Actuator::from_plan(&traffic, &vars).expect("valid");
    assert_eq!(
        actuator.describe(),
        format!("webhook POST http://{}/traffic?token=***", hook.addr)
    );
    assert!(!format!("{actuator:?}").contains("t0ken-abcdef"));
    for weight in [5, 50, 0] {
        let applied = actuator
            .set_weight(&store, weight, &actor())
            .await
            .expect("posted");
        assert_eq!(applied.detail["status"], 204);
        assert_eq!(actuator.current(&store).await.expect("current"), None);
    }
    let seen = hook.seen();
    assert_eq!(seen.len(), 3);
    for (s, weight) in seen.iter().zip([5u64, 50, 0]) {
        assert_eq!(s.method, "POST");
        assert_eq!(s.path, "/traffic?token=t0ken-abcdef");
        let body: serde_json::Value = serde_json::from_str(&s.body).expect("JSON body");
        assert_eq!(
            body,
            serde_json::json!({"canary": weight, "stable": 100 - weight})
        );
    }

    let failing = golive_plan::Traffic::Webhook {
        url: format!("http://{}/fail?token=${{HOOK_TOKEN}}", hook.addr),
    };
    let e = Actuator::from_plan(&failing, &vars)
        .expect("valid")
        .set_weight(&store, 25, &actor())
        .await
        .expect_err("HTTP 500");
    let msg = e.to_string();
    println!("failing webhook: {msg}");
    assert!(
        matches!(e, TrafficError::WebhookStatus { status: 500, .. }),
        "{e:?}"
    );
    assert!(
        msg.contains("upstream pool locked") && msg.contains("token=***"),
        "{msg}"
    );
    assert!(!msg.contains("t0ken-abcdef"), "{msg}");

    let closed = free_port();
    let unreachable = golive_plan::Traffic::Webhook {
        url: format!("http://127.0.0.1:{closed}/traffic"),
    };
    let e = Actuator::from_plan(&unreachable, &vars)
        .expect("valid")
        .set_weight(&store, 25, &actor())
        .await
        .expect_err("nothing listens");
    println!("unreachable webhook: {e}");
    assert!(
        matches!(e, TrafficError::WebhookUnreachable { .. }),
        "{e:?}"
    );
}

// ───────────────────────── flag ─────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_percentage_steps_are_audited() {
    let dir = temp_dir();
    let store = golive_store::open(&format!("sqlite://{}", dir.path().join("j.db").display()))
        .await
        .expect("store");
    let key = "new-checkout";
    let flag = golive_plan::Traffic::Flag { key: key.into() };
    let vars = golive_runtime::Vars::default();
    let actuator = Actuator::from_plan(&flag, &vars).expect("valid");
    assert_eq!(actuator.describe(), "golive flag new-checkout (percentage)");

    // Missing flag: a clear error, for set and current alike.
    let e = actuator
        .set_weight(&store, 5, &actor())
        .await
        .expect_err("no flag yet");
    println!("missing flag: {e}");
    assert!(matches!(e, TrafficError::FlagNotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("create it"), "{e}");
    assert!(matches!(
        actuator.current(&store).await,
        Err(TrafficError::FlagNotFound { .. })
    ));

    let creator = Actor {
        name: "release-manager".into(),
        source: Some("cli".into()),
    };
    store
        .put_flag(
            key,
            &serde_json::json!({"flag": key, "enabled": false, "targeting": {"include": ["tester-1"]}}),
            Some(0),
            &creator,
            Some("created by the plan"),
        )
        .await
        .expect("flag created");
    assert_eq!(actuator.current(&store).await.expect("current"), Some(0));

    for weight in STEPS {
        let applied = actuator
            .set_weight(&store, weight, &actor())
            .await
            .expect("percentage set");
        assert_eq!((applied.canary, applied.stable), (weight, 100 - weight));
        let record = store.get_flag(key).await.expect("read").expect("exists");
        assert_eq!(record.definition["percentage"], u64::from(weight));
        assert_eq!(
            actuator.current(&store).await.expect("current"),
            Some(weight)
        );
    }
    // The last step (0) kept the flag enabled: named testers still get
    // the canary, everyone else does not.
    let record = store.get_flag(key).await.expect("read").expect("exists");
    assert_eq!(record.definition["enabled"], true);
    let parsed = golive_flags::Flag::from_json(&record.definition).expect("valid flag");
    let on = |user: &str| {
        parsed
            .evaluate(&golive_flags::Context::with_targeting_key(user))
            .expect("evaluates")
            .value
            == serde_json::Value::Bool(true)
    };
    assert!(on("tester-1"));
    assert!(!on("user-42"));

    // Repeating the weight in effect writes (and audits) nothing.
    let version = record.version;
    actuator
        .set_weight(&store, 0, &actor())
        .await
        .expect("re-applied");
    let again = store.get_flag(key).await.expect("read").expect("exists");
    assert_eq!(again.version, version);

    let audit = store
        .audit(&AuditFilter {
            target: Some(key.into()),
            action_prefix: Some("flag.".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit");
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str()))
        .collect();
    let mut expected = vec![("flag.created", "release-manager")];
    expected.extend(STEPS.iter().map(|_| ("flag.updated", "golive-engine")));
    assert_eq!(actions, expected);
    for (entry, weight) in audit[1..].iter().zip(STEPS) {
        let after = entry.after.as_ref().expect("after");
        assert_eq!(after["percentage"], u64::from(weight));
        assert_eq!(entry.source.as_deref(), Some("cli"));
        let reason = entry.reason.as_deref().unwrap_or_default();
        assert!(reason.contains(&format!("canary {weight}%")), "{reason}");
    }
    // The first step (0) left the disabled flag disabled; 5 enabled it.
    assert_eq!(audit[1].after.as_ref().expect("after")["enabled"], false);
    assert_eq!(audit[2].after.as_ref().expect("after")["enabled"], true);

    let e = Actuator::from_plan(
        &golive_plan::Traffic::Flag {
            key: "bad key!".into(),
        },
        &vars,
    )
    .expect_err("bad key");
    assert!(matches!(e, TrafficError::Config { .. }), "{e:?}");
}

/// The engine spawns traffic changes: the futures must be `Send`.
#[test]
fn actuator_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let store: Option<&AnyStore> = None;
    if let Some(store) = store {
        let vars = golive_runtime::Vars::default();
        let actuator = Actuator::from_plan(&golive_plan::Traffic::Flag { key: "k".into() }, &vars)
            .expect("valid");
        let who = actor();
        assert_send(actuator.set_weight(store, 1, &who));
        assert_send(actuator.current(store));
    }
}
