//! The demo service: one small HTTP server per version ("v1" stable, "v2"
//! canary), run in-process, whose errors and latency can be changed while it
//! runs.
//!
//! This module owns the service's routes, its fault injection and its
//! Prometheus metrics:
//!
//! - any path other than those below answers `{"version":"v2"}` with 200, or
//!   with 500 (and `"error"`) with probability `error_rate`, after a latency
//!   drawn uniformly within ±20% of `latency_ms`. Both answers carry the
//!   version in the body and in an `x-demo-version` header, so a client
//!   behind a load balancer can tell which version answered;
//! - `GET /metrics`: `demo_http_requests_total{version,code}` and the
//!   histogram `demo_http_request_duration_seconds{version}`, hand-written
//!   in the text exposition format;
//! - `GET /health`: 200, whatever the fault;
//! - `GET /admin/fault` shows the fault, `POST /admin/fault` with
//!   `{"error_rate": 0.2, "latency_ms": 50}` (either field optional)
//!   changes it.
//!
//! Only the application traffic (the first route) is counted in the
//! metrics: scrapes, health checks and admin calls would otherwise dilute the
//! error rate the rollout analysis reads.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::DemoError;

/// The response header naming the version that answered.
pub const VERSION_HEADER: &str = "x-demo-version";

/// The largest injectable latency: keeps a typo (`latency_ms: 50000000`)
/// from hanging the demo and its graceful shutdown.
pub const MAX_LATENCY_MS: u64 = 60_000;

/// Upper bounds (seconds) of the latency histogram's finite buckets.
const BUCKETS: [(f64, &str); 9] = [
    (0.005, "0.005"),
    (0.01, "0.01"),
    (0.025, "0.025"),
    (0.05, "0.05"),
    (0.1, "0.1"),
    (0.25, "0.25"),
    (0.5, "0.5"),
    (1.0, "1"),
    (2.5, "2.5"),
];

/// How a service misbehaves: the share of requests answered with 500 and
/// the latency added to every request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Probability in `[0, 1]` that a request is answered with 500.
    pub error_rate: f64,
    /// Added latency in milliseconds; each request waits a time drawn
    /// uniformly within ±20% of it.
    pub latency_ms: u64,
}

impl Fault {
    /// No errors, no added latency.
    pub const NONE: Fault = Fault {
        error_rate: 0.0,
        latency_ms: 0,
    };

    /// Checks the ranges; the error names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!(
                "error_rate must be between 0 and 1, not {}",
                self.error_rate
            ));
        }
        if self.latency_ms > MAX_LATENCY_MS {
            return Err(format!(
                "latency_ms must be at most {MAX_LATENCY_MS}, not {}",
                self.latency_ms
            ));
        }
        Ok(())
    }
}

/// The body of `POST /admin/fault`: fields left out keep their value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultPatch {
    error_rate: Option<f64>,
    latency_ms: Option<u64>,
}

/// What the handlers share: the version, the fault, the random state and
/// the metrics.
struct Shared {
    version: String,
    /// The version escaped for a label value of the exposition format.
    label: String,
    /// The body of a 200 answer, built once: it never changes.
    ok_body: String,
    /// The body of a 500 answer.
    error_body: String,
    fault: Mutex<Fault>,
    rng: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    /// Per-bucket (not cumulative) counts; the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Shared {
    fn fault(&self) -> Fault {
        // A poisoned lock only means a panic elsewhere while holding a
        // plain `Copy` value: the value is still whole.
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// A uniform number in `[0, 1)`: SplitMix64 over an atomic counter, so
    /// concurrent handlers never wait on a lock for randomness.
    fn random(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits fill an f64's mantissa exactly.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn observe(&self, ok: bool, took: Duration) {
        if ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|(le, _)| secs <= *le)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn exposition(&self) -> String {
        let v = &self.label;
        let mut out = String::with_capacity(2048);
        // `write!` to a String cannot fail; the results are ignored.
        let _ = writeln!(
            out,
            "# HELP demo_http_requests_total Requests answered by the demo service, by status code."
        );
        let _ = writeln!(out, "# TYPE demo_http_requests_total counter");
        for (code, n) in [("200", &self.ok), ("500", &self.errors)] {
            let _ = writeln!(
                out,
                "demo_http_requests_total{{version=\"{v}\",code=\"{code}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP demo_http_request_duration_seconds Time from request to answer, injected latency included."
        );
        let _ = writeln!(out, "# TYPE demo_http_request_duration_seconds histogram");
        // `_count` is the cumulative total of the very counts printed, so
        // the `+Inf` bucket always equals it even while requests land.
        let mut cumulative = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            cumulative += n.load(Ordering::Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf", |(_, s)| s);
            let _ = writeln!(
                out,
                "demo_http_request_duration_seconds_bucket{{version=\"{v}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "demo_http_request_duration_seconds_sum{{version=\"{v}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "demo_http_request_duration_seconds_count{{version=\"{v}\"}} {cumulative}"
        );
        out
    }
}

/// A running demo service. Dropping it stops it (new connections are
/// refused at once; requests in flight finish in the background);
/// [`DemoService::shutdown`] also waits for them.
pub struct DemoService {
    version: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for DemoService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoService")
            .field("version", &self.version)
            .field("addr", &self.addr)
            .field("fault", &self.fault())
            .finish()
    }
}

impl DemoService {
    /// Starts the service answering as `version` on `addr` (port 0 picks a
    /// free port; see [`DemoService::addr`]). Must be called inside a Tokio
    /// runtime.
    pub async fn start(version: &str, addr: SocketAddr) -> Result<DemoService, DemoError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DemoError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DemoError::Bind { addr, source })?;
        let mut seed = [0u8; 8];
        // A fixed seed would do for a demo too; failing to read the OS's
        // randomness is no reason to refuse to start.
        let seed = match getrandom::fill(&mut seed) {
            Ok(()) => u64::from_le_bytes(seed),
            Err(_) => u64::from(addr.port()) ^ 0x5DEE_CE66_D1CE_4E5B,
        };
        let shared = Arc::new(Shared {
            version: version.to_owned(),
            label: escape_label(version),
            ok_body: serde_json::json!({ "version": version }).to_string(),
            error_body: serde_json::json!({ "version": version, "error": "injected fault" })
                .to_string(),
            fault: Mutex::new(Fault::NONE),
            rng: AtomicU64::new(seed),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: Default::default(),
            sum_nanos: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .route("/admin/fault", get(show_fault).post(change_fault))
            .fallback(serve)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Resolves on `send` and on the sender being dropped,
                    // which is how dropping the service stops it.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(DemoService {
            version: version.to_owned(),
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The version it answers as.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, without a trailing slash: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of its Prometheus metrics.
    pub fn metrics_url(&self) -> String {
        format!("{}/metrics", self.url())
    }

    /// The URL of its health check.
    pub fn health_url(&self) -> String {
        format!("{}/health", self.url())
    }

    /// The URL of its fault-injection endpoint.
    pub fn fault_url(&self) -> String {
        format!("{}/admin/fault", self.url())
    }

    /// Changes its behaviour from the next request on. The fault is stored
    /// as given after clamping into range (error rate into `[0, 1]`, NaN
    /// as 0; latency to [`MAX_LATENCY_MS`]).
    pub fn set_fault(&self, fault: Fault) {
        let error_rate = if fault.error_rate.is_nan() {
            0.0
        } else {
            fault.error_rate.clamp(0.0, 1.0)
        };
        self.shared.set_fault(Fault {
            error_rate,
            latency_ms: fault.latency_ms.min(MAX_LATENCY_MS),
        });
    }

    /// Its current fault.
    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }

    /// Application requests answered so far: `(ok, errors)`.
    pub fn served(&self) -> (u64, u64) {
        (
            self.shared.ok.load(Ordering::Relaxed),
            self.shared.errors.load(Ordering::Relaxed),
        )
    }

    /// The text `/metrics` would answer now.
    pub fn metrics_text(&self) -> String {
        self.shared.exposition()
    }

    /// Stops accepting connections and waits until the requests in flight
    /// are answered and the connections closed.
    pub async fn shutdown(mut self) -> Result<(), DemoError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result.map_err(DemoError::Serve),
                Err(e) => Err(DemoError::Task(e.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for DemoService {
    fn drop(&mut self) {
        // Dropping the sender ends the graceful-shutdown future; the task
        // is left to finish the requests in flight rather than aborted.
        self.stop.take();
    }
}

/// Escapes a label value as the exposition format wants: `\\`, `\"`, `\n`.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"UP"}"#,
    )
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.exposition(),
    )
}

async fn show_fault(State(shared): State<Arc<Shared>>) -> Response {
    fault_response(shared.fault())
}

async fn change_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    // Parsed by hand rather than with axum's `Json` so that a `curl -d`
    // without a JSON content type works too.
    let patch: FaultPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return bad_request(format!(
                "expected {{\"error_rate\": 0.2, \"latency_ms\": 50}}: {e}"
            ));
        }
    };
    let current = shared.fault();
    let fault = Fault {
        error_rate: patch.error_rate.unwrap_or(current.error_rate),
        latency_ms: patch.latency_ms.unwrap_or(current.latency_ms),
    };
    if let Err(e) = fault.validate() {
        return bad_request(e);
    }
    shared.set_fault(fault);
    fault_response(fault)
}

fn fault_response(fault: Fault) -> Response {
    let body =
        serde_json::json!({ "error_rate": fault.error_rate, "latency_ms": fault.latency_ms });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
}

/// The application route: the version, after the injected latency, or an
/// injected 500.
async fn serve(State(shared): State<Arc<Shared>>) -> Response {
    let started = Instant::now();
    let fault = shared.fault();
    if fault.latency_ms > 0 {
        let jitter = 0.8 + 0.4 * shared.random();
        let wait = Duration::from_secs_f64(fault.latency_ms as f64 * jitter / 1000.0);
        tokio::time::sleep(wait).await;
    }
    // `<` keeps error_rate 0 error-free and error_rate 1 all errors, since
    // `random` is in [0, 1).
    let failed = shared.random() < fault.error_rate;
    let (status, body) = if failed {
        (StatusCode::INTERNAL_SERVER_ERROR, shared.error_body.clone())
    } else {
        (StatusCode::OK, shared.ok_body.clone())
    };
    let version = HeaderValue::from_str(&shared.version)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    shared.observe(!failed, started.elapsed());
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (HeaderName::from_static(VERSION_HEADER), version),
        ],
        body,
    )
        .into_response()
}
