//! The load generator: keep-alive clients sending `GET` requests as users
//! `user-0` … `user-{N-1}`, recording which version answered each request
//! and how, in 100 ms buckets since the start.
//!
//! This module owns sending the load and the [`LoadReport`] built from it.
//! The target is either one URL (a load balancer — HAProxy, nginx — in
//! front of both versions) or a split between the two services decided in
//! process per user by a router the caller supplies (golive's own flag
//! percentage, evaluated with `golive_flags`). Which version answered is
//! read from the answer (the `version` of its JSON body, else the
//! `x-demo-version` header), never assumed from the URL picked, so a
//! split and a load balancer are measured the same way.
//!
//! Requests are bucketed by the time they were *sent*, which is when the
//! routing decision was made: a slow answer then cannot smear a traffic
//! switch over later buckets, and [`LoadReport::first_time_all_stable_after`]
//! measures when the traffic actually moved.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::service::VERSION_HEADER;
use crate::{CANARY_VERSION, DemoError, STABLE_VERSION};

/// Width of a time bucket of the report.
pub const BUCKET_WIDTH: Duration = Duration::from_millis(100);

/// The most of an answer's body read to find its version: the demo
/// answers a few bytes, and a load balancer's error page needs no more.
const MAX_BODY: usize = 64 * 1024;

/// Decides per user (`"user-7"`) whether a request goes to the canary.
pub type Router = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Where requests go.
#[derive(Clone)]
pub enum Target {
    /// Every request to this URL (a load balancer in front of both versions).
    Url(String),
    /// Each request to `canary` when `router(user)` is true, else to `stable`.
    Split {
        /// URL of the stable version.
        stable: String,
        /// URL of the canary version.
        canary: String,
        /// Picks the canary for a user.
        router: Router,
    },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Url(url) => f.debug_tuple("Url").field(url).finish(),
            Target::Split { stable, canary, .. } => f
                .debug_struct("Split")
                .field("stable", stable)
                .field("canary", canary)
                .finish_non_exhaustive(),
        }
    }
}

/// How much load, where.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Where requests go.
    pub target: Target,
    /// Clients sending at once, each on its own keep-alive connection (at
    /// least 1). Each waits for its answer before sending again, so slow
    /// answers cap the load at `concurrency / latency` whatever the `rate`.
    pub concurrency: usize,
    /// Requests per second over all clients; `None` sends as fast as the
    /// clients can, `Some(0)` sends nothing.
    pub rate: Option<u32>,
    /// Distinct users, taken in turn (`user-0`, `user-1`, …), so a router
    /// sending users below 25 of 100 to the canary gets exactly 25%.
    pub users: u32,
    /// Time limit of one request, connecting included.
    pub timeout: Duration,
}

impl LoadConfig {
    /// Four clients as fast as possible, 100 users, a 2 s timeout.
    pub fn new(target: Target) -> LoadConfig {
        LoadConfig {
            target,
            concurrency: 4,
            rate: None,
            users: 100,
            timeout: Duration::from_secs(2),
        }
    }
}

/// Requests that failed, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// 5xx answers from v1.
    pub http_5xx_v1: u64,
    /// 5xx answers from v2.
    pub http_5xx_v2: u64,
    /// 5xx answers that named no known version (a load balancer's own page).
    pub http_5xx_unknown: u64,
    /// Answers with another non-2xx status (any version).
    pub http_other: u64,
    /// Requests that could not connect.
    pub connect: u64,
    /// Requests that got no (whole) answer within the timeout.
    pub timeout: u64,
    /// Requests that failed otherwise without an answer (connection reset,
    /// protocol error, body cut).
    pub other: u64,
}

impl ErrorCounts {
    /// All 5xx answers.
    pub fn http_5xx(&self) -> u64 {
        self.http_5xx_v1 + self.http_5xx_v2 + self.http_5xx_unknown
    }

    /// All failed requests.
    pub fn total(&self) -> u64 {
        self.http_5xx() + self.http_other + self.connect + self.timeout + self.other
    }

    fn add(&mut self, o: &ErrorCounts) {
        self.http_5xx_v1 += o.http_5xx_v1;
        self.http_5xx_v2 += o.http_5xx_v2;
        self.http_5xx_unknown += o.http_5xx_unknown;
        self.http_other += o.http_other;
        self.connect += o.connect;
        self.timeout += o.timeout;
        self.other += o.other;
    }
}

/// What happened to the requests of a period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Answers (any status) from v1, the stable version.
    pub v1: u64,
    /// Answers (any status) from v2, the canary.
    pub v2: u64,
    /// Answers that named neither version.
    pub unknown: u64,
    /// Failures by kind; 5xx answers are also counted under their version.
    pub errors: ErrorCounts,
    /// Sum of the latencies of the answers (failures without an answer are
    /// left out: a timeout's latency is the timeout).
    pub latency_sum: Duration,
    /// Slowest answer.
    pub latency_max: Duration,
}

impl Counts {
    /// Requests that got an answer.
    pub fn answered(&self) -> u64 {
        self.v1 + self.v2 + self.unknown
    }

    /// Requests sent and finished, answered or not.
    pub fn requests(&self) -> u64 {
        self.answered() + self.errors.connect + self.errors.timeout + self.errors.other
    }

    /// The canary's share of the answers from either version, in `[0, 1]`;
    /// `None` without any.
    pub fn canary_share(&self) -> Option<f64> {
        let both = self.v1 + self.v2;
        (both > 0).then(|| self.v2 as f64 / both as f64)
    }

    /// Mean latency of the answers.
    pub fn latency_mean(&self) -> Option<Duration> {
        let n = u32::try_from(self.answered()).ok().filter(|n| *n > 0)?;
        Some(self.latency_sum / n)
    }

    fn add(&mut self, o: &Counts) {
        self.v1 += o.v1;
        self.v2 += o.v2;
        self.unknown += o.unknown;
        self.errors.add(&o.errors);
        self.latency_sum += o.latency_sum;
        self.latency_max = self.latency_max.max(o.latency_max);
    }
}

/// The requests sent during one [`BUCKET_WIDTH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// When the bucket starts, since the load started.
    pub start: Duration,
    /// Its requests.
    pub counts: Counts,
}

/// What the load saw so far.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    /// Time since the load started.
    pub elapsed: Duration,
    /// All requests.
    pub totals: Counts,
    /// Median latency of the answers (within 2%).
    pub p50: Option<Duration>,
    /// 99th-percentile latency of the answers (within 2%).
    pub p99: Option<Duration>,
    /// Every bucket from the start to now, empty ones included.
    pub buckets: Vec<Bucket>,
}

impl LoadReport {
    /// The start of the first bucket at or after the one holding `t` from
    /// which every answer came from v1: v2 (or an unknown version) never
    /// answered again, and v1 answered at least once. `None` when v2 was
    /// still answering in the last bucket, or v1 never answered after.
    ///
    /// Requests that got no answer (connection errors, timeouts) are
    /// neutral: they say nothing about which version would have answered.
    /// With `t` the moment a rollback was decided, the result minus `t` is
    /// the time the rollback took to reach the users (to within a bucket).
    pub fn first_time_all_stable_after(&self, t: Duration) -> Option<Duration> {
        let from = bucket_index(t);
        let mut candidate = None;
        let mut stable_seen = false;
        for (i, b) in self.buckets.iter().enumerate().skip(from) {
            if b.counts.v2 > 0 || b.counts.unknown > 0 {
                candidate = None;
                stable_seen = false;
                continue;
            }
            candidate.get_or_insert(i);
            stable_seen |= b.counts.v1 > 0;
        }
        let i = candidate.filter(|_| stable_seen)?;
        Some(self.buckets.get(i).map_or(t, |b| b.start))
    }
}

/// A running load. Dropping it stops the clients at once.
pub struct LoadGenerator {
    started: Instant,
    recorder: Arc<Mutex<Recorder>>,
    stop: watch::Sender<bool>,
    clients: JoinSet<()>,
}

impl fmt::Debug for LoadGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadGenerator")
            .field("elapsed", &self.started.elapsed())
            .field("clients", &self.clients.len())
            .finish()
    }
}

impl LoadGenerator {
    /// Starts the clients. Must be called inside a Tokio runtime. Fails on
    /// a target that is not an http(s) URL or when the HTTP client cannot
    /// be built.
    pub fn start(config: LoadConfig) -> Result<LoadGenerator, DemoError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| DemoError::NoRuntime)?;
        let route = match &config.target {
            Target::Url(url) => Route::One(parse_url(url)?),
            Target::Split {
                stable,
                canary,
                router,
            } => Route::Split {
                stable: parse_url(stable)?,
                canary: parse_url(canary)?,
                router: router.clone(),
            },
        };
        let client = golive_runtime::api_client(config.timeout).map_err(DemoError::Client)?;
        let started = Instant::now();
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        let shared = Arc::new(Clients {
            client,
            route,
            rate: config.rate,
            users: config.users.max(1),
            started,
            next: AtomicU64::new(0),
            recorder: recorder.clone(),
        });
        let (stop, stopped) = watch::channel(false);
        let mut clients = JoinSet::new();
        for _ in 0..config.concurrency.max(1) {
            clients.spawn_on(client_loop(shared.clone(), stopped.clone()), &handle);
        }
        Ok(LoadGenerator {
            started,
            recorder,
            stop,
            clients,
        })
    }

    /// When the load started; bucket times count from here.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Time since the load started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What the load saw so far; the clients go on.
    pub fn snapshot(&self) -> LoadReport {
        lock(&self.recorder).report(self.started.elapsed())
    }

    /// Stops the clients (requests in flight are abandoned, not counted)
    /// and reports.
    pub async fn stop(mut self) -> LoadReport {
        let _ = self.stop.send(true);
        while self.clients.join_next().await.is_some() {}
        self.snapshot()
    }
}

/// Where the clients send, with the URLs parsed once.
enum Route {
    One(Url),
    Split {
        stable: Url,
        canary: Url,
        router: Router,
    },
}

/// What the clients share.
struct Clients {
    client: reqwest::Client,
    route: Route,
    rate: Option<u32>,
    users: u32,
    started: Instant,
    /// The number of the next request: its user and, with a rate, its
    /// scheduled time.
    next: AtomicU64,
    recorder: Arc<Mutex<Recorder>>,
}

/// How one request ended.
enum Outcome {
    Answer {
        status: u16,
        version: Option<String>,
    },
    Connect,
    Timeout,
    Other,
}

async fn client_loop(shared: Arc<Clients>, mut stopped: watch::Receiver<bool>) {
    loop {
        if *stopped.borrow() {
            return;
        }
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        if let Some(rate) = shared.rate {
            // Request n is due at n/rate: an open schedule shared by all
            // clients, so the total rate holds whatever the concurrency.
            let due = match rate {
                0 => None,
                r => Some(shared.started + Duration::from_secs_f64(n as f64 / f64::from(r))),
            };
            tokio::select! {
                _ = stopped.changed() => return,
                _ = sleep_until(due) => {}
            }
        }
        let user = format!("user-{}", n % u64::from(shared.users));
        let sent = Instant::now();
        let url = match &shared.route {
            Route::One(url) => url,
            Route::Split {
                stable,
                canary,
                router,
            } => {
                if router(&user) {
                    canary
                } else {
                    stable
                }
            }
        };
        let outcome = tokio::select! {
            _ = stopped.changed() => return,
            o = request(&shared.client, url, &user) => o,
        };
        let took = sent.elapsed();
        lock(&shared.recorder).record(sent.duration_since(shared.started), &outcome, took);
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn request(client: &reqwest::Client, url: &Url, user: &str) -> Outcome {
    let mut response = match client.get(url.clone()).header("x-user", user).send().await {
        Ok(r) => r,
        Err(e) => return failure(&e),
    };
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BODY {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return failure(&e),
        }
    }
    #[derive(serde::Deserialize)]
    struct Body {
        version: Option<String>,
    }
    let version = serde_json::from_slice::<Body>(&body)
        .ok()
        .and_then(|b| b.version)
        .or(header);
    Outcome::Answer { status, version }
}

fn failure(e: &reqwest::Error) -> Outcome {
    // Timeout first: a connect that timed out is a timeout.
    if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_connect() {
        Outcome::Connect
    } else {
        Outcome::Other
    }
}

fn parse_url(url: &str) -> Result<Url, DemoError> {
    let parsed = Url::parse(url).map_err(|e| DemoError::Url {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DemoError::Url {
            url: url.to_owned(),
            reason: "not an http(s) URL".into(),
        });
    }
    Ok(parsed)
}

fn lock(recorder: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    // A panic while recording leaves plain counters; they are still usable.
    recorder.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bucket_index(t: Duration) -> usize {
    usize::try_from(t.as_millis() / BUCKET_WIDTH.as_millis()).unwrap_or(usize::MAX)
}

/// The counts so far.
#[derive(Default)]
struct Recorder {
    buckets: Vec<Counts>,
    latencies: LatencyHistogram,
}

impl Recorder {
    fn record(&mut self, sent: Duration, outcome: &Outcome, took: Duration) {
        let i = bucket_index(sent);
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, Counts::default());
        }
        let Some(c) = self.buckets.get_mut(i) else {
            return;
        };
        match outcome {
            Outcome::Answer { status, version } => {
                let which = match version.as_deref() {
                    Some(STABLE_VERSION) => Which::V1,
                    Some(CANARY_VERSION) => Which::V2,
                    _ => Which::Unknown,
                };
                match which {
                    Which::V1 => c.v1 += 1,
                    Which::V2 => c.v2 += 1,
                    Which::Unknown => c.unknown += 1,
                }
                match (status, which) {
                    (500..=599, Which::V1) => c.errors.http_5xx_v1 += 1,
                    (500..=599, Which::V2) => c.errors.http_5xx_v2 += 1,
                    (500..=599, Which::Unknown) => c.errors.http_5xx_unknown += 1,
                    (200..=299, _) => {}
                    _ => c.errors.http_other += 1,
                }
                c.latency_sum += took;
                c.latency_max = c.latency_max.max(took);
                self.latencies.add(took);
            }
            Outcome::Connect => c.errors.connect += 1,
            Outcome::Timeout => c.errors.timeout += 1,
            Outcome::Other => c.errors.other += 1,
        }
    }

    fn report(&self, elapsed: Duration) -> LoadReport {
        let mut totals = Counts::default();
        for c in &self.buckets {
            totals.add(c);
        }
        // Buckets up to now, so a quiet end shows as empty buckets.
        let len = self.buckets.len().max(bucket_index(elapsed) + 1);
        let buckets = (0..len)
            .map(|i| Bucket {
                start: BUCKET_WIDTH * u32::try_from(i).unwrap_or(u32::MAX),
                counts: self.buckets.get(i).copied().unwrap_or_default(),
            })
            .collect();
        LoadReport {
            elapsed,
            totals,
            p50: self.latencies.quantile(0.50),
            p99: self.latencies.quantile(0.99),
            buckets,
        }
    }
}

#[derive(Clone, Copy)]
enum Which {
    V1,
    V2,
    Unknown,
}

/// Latencies in buckets growing by 2% from 1 µs: quantiles within 2% in a
/// fixed 8 KB, however long the load runs.
struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
    max: Duration,
}

/// Bucket growth factor of [`LatencyHistogram`].
const GROWTH: f64 = 1.02;
/// Buckets of [`LatencyHistogram`]: 1.02^1000 µs is about 110 hours.
const LATENCY_BUCKETS: usize = 1000;

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; LATENCY_BUCKETS],
            total: 0,
            max: Duration::ZERO,
        }
    }
}

impl LatencyHistogram {
    fn add(&mut self, d: Duration) {
        let micros = d.as_secs_f64() * 1e6;
        let i = if micros <= 1.0 {
            0
        } else {
            // Float-to-int `as` saturates, and `min` keeps it in range.
            ((micros.ln() / GROWTH.ln()).ceil() as usize).min(LATENCY_BUCKETS - 1)
        };
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(d);
    }

    /// The upper bound of the bucket holding the `q` quantile, never above
    /// the slowest latency seen.
    fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let upper = GROWTH.powi(i32::try_from(i).unwrap_or(i32::MAX)) / 1e6;
                return Some(Duration::from_secs_f64(upper).min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(buckets: &[(u64, u64)]) -> LoadReport {
        let mut r = Recorder::default();
        for (i, (v1, v2)) in buckets.iter().enumerate() {
            let at = BUCKET_WIDTH * u32::try_from(i).unwrap_or(0);
            for _ in 0..*v1 {
                let o = Outcome::Answer {
                    status: 200,
                    version: Some("v1".into()),
                };
                r.record(at, &o, Duration::from_millis(1));
            }
            for _ in 0..*v2 {
                let o = Outcome::Answer {
                    status: 200,
                    version: Some("v2".into()),
                };
                r.record(at, &o, Duration::from_millis(1));
            }
        }
        r.report(BUCKET_WIDTH * u32::try_from(buckets.len()).unwrap_or(0))
    }

    #[test]
    fn all_stable_is_found_after_the_last_canary_answer() {
        let r = report(&[(3, 1), (3, 1), (4, 0), (0, 0), (4, 0)]);
        assert_eq!(
            r.first_time_all_stable_after(Duration::ZERO),
            Some(Duration::from_millis(200))
        );
        // From a later t, that t's bucket is the first candidate.
        assert_eq!(
            r.first_time_all_stable_after(Duration::from_millis(350)),
            Some(Duration::from_millis(300))
        );
    }

    #[test]
    fn all_stable_needs_stable_answers_and_no_canary_at_the_end() {
        assert_eq!(
            report(&[(3, 0), (3, 1)]).first_time_all_stable_after(Duration::ZERO),
            None
        );
        assert_eq!(
            report(&[(3, 1), (0, 0)]).first_time_all_stable_after(Duration::ZERO),
            None
        );
        assert_eq!(
            report(&[]).first_time_all_stable_after(Duration::ZERO),
            None
        );
    }

    #[test]
    fn failures_are_counted_by_kind() {
        let mut r = Recorder::default();
        let at = Duration::from_millis(150);
        let d = Duration::from_millis(3);
        let answer = |status, version: Option<&str>| Outcome::Answer {
            status,
            version: version.map(str::to_owned),
        };
        r.record(at, &answer(500, Some("v2")), d);
        r.record(at, &answer(503, None), d);
        r.record(at, &answer(404, Some("v1")), d);
        r.record(at, &Outcome::Connect, d);
        r.record(at, &Outcome::Timeout, d);
        r.record(at, &Outcome::Other, d);
        let rep = r.report(Duration::from_millis(250));
        let e = rep.totals.errors;
        assert_eq!((e.http_5xx_v2, e.http_5xx_unknown, e.http_other), (1, 1, 1));
        assert_eq!((e.connect, e.timeout, e.other, e.total()), (1, 1, 1, 6));
        assert_eq!(rep.totals.requests(), 6);
        assert_eq!(rep.totals.answered(), 3);
        assert_eq!(rep.buckets.len(), 3);
        assert_eq!(rep.buckets[1].counts, rep.totals);
    }

    #[test]
    fn latency_quantiles_are_within_two_percent() {
        let mut h = LatencyHistogram::default();
        for ms in 1..=100u64 {
            h.add(Duration::from_millis(ms));
        }
        let p50 = h.quantile(0.5).map(|d| d.as_secs_f64() * 1e3);
        let p99 = h.quantile(0.99).map(|d| d.as_secs_f64() * 1e3);
        assert!(p50.is_some_and(|v| (50.0..=51.0).contains(&v)), "{p50:?}");
        assert!(p99.is_some_and(|v| (99.0..=101.0).contains(&v)), "{p99:?}");
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
    }
}
