//! The server's own `/metrics`, in the OpenMetrics text format Prometheus
//! scrapes: HTTP requests and latencies by route, flag evaluations by
//! result (and, for a scrape with a token, by flag), and — read from the
//! store at scrape time — runs and items by state.
//!
//! Every label has a bounded set of values: routes are the route table's
//! patterns (`unmatched` otherwise), methods the standard ones (`other`
//! otherwise), flags the stored flags (a key no flag has is counted as
//! [`UNKNOWN_FLAG`]). Flag names are in a registry of their own, shown only
//! to a scrape that sends a valid token.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern, e.g. `/api/runs/{run}`.
    pub route: String,
    /// GET, POST, …
    pub method: String,
    /// The response status.
    pub status: u16,
}

/// Labels of a request's duration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's pattern.
    pub route: String,
}

/// The `flag` label of evaluations of keys that no flag has.
pub const UNKNOWN_FLAG: &str = "(unknown)";

/// Labels of a flag evaluation, without the flag.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// The reason (`SPLIT`, `DISABLED`, …) or the error code.
    pub result: String,
}

/// Labels of a flag evaluation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlagLabels {
    /// The flag's key.
    pub flag: String,
    /// The reason (`SPLIT`, `DISABLED`, …) or the error code.
    pub result: String,
}

/// Labels of a run or item state count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// The state.
    pub state: String,
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// What only token holders see: flag names.
    by_flag: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    evaluations: Family<ResultLabels, Counter>,
    evaluations_by_flag: Family<FlagLabels, Counter>,
    /// Runs by status, set at scrape time.
    pub runs: Family<StateLabels, Gauge>,
    /// Items of unfinished runs by status, set at scrape time.
    pub items: Family<StateLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~4 s: flag evaluations are sub-millisecond, API calls that
    // touch the journal take milliseconds.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 14,
    ))
}

impl Metrics {
    /// A registry with every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("golive");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let evaluations = Family::<ResultLabels, Counter>::default();
        let evaluations_by_flag = Family::<FlagLabels, Counter>::default();
        let runs = Family::<StateLabels, Gauge>::default();
        let items = Family::<StateLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            durations.clone(),
        );
        registry.register(
            "flag_evaluations",
            "Flag evaluations by result (reason or error code)",
            evaluations.clone(),
        );
        let mut by_flag = Registry::with_prefix("golive");
        by_flag.register(
            "flag_evaluations_by_flag",
            "Flag evaluations by flag and result; keys no flag has are counted as `(unknown)`",
            evaluations_by_flag.clone(),
        );
        registry.register("runs", "Runs in the journal by status", runs.clone());
        registry.register("items", "Items of unfinished runs by status", items.clone());
        Metrics {
            registry: Mutex::new(registry),
            by_flag: Mutex::new(by_flag),
            requests,
            durations,
            evaluations,
            evaluations_by_flag,
            runs,
            items,
        }
    }

    /// Counts one request.
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        // Clients may send any token as a method.
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "other",
        };
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one flag evaluation (`flag` is a stored flag's key or
    /// [`UNKNOWN_FLAG`]).
    pub fn flag_evaluated(&self, flag: &str, result: &str) {
        self.evaluations
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        self.evaluations_by_flag
            .get_or_create(&FlagLabels {
                flag: flag.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// The exposition text; with flag names when `with_flags`.
    pub fn encode(&self, with_flags: bool) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        if let Ok(registry) = self.registry.lock() {
            let _ = encode(&mut out, &registry);
        }
        if with_flags {
            if let Ok(by_flag) = self.by_flag.lock() {
                let mut more = String::new();
                let _ = encode(&mut more, &by_flag);
                // One exposition has one `# EOF`, at its end.
                if let Some(body) = out.strip_suffix("# EOF\n") {
                    out = format!("{body}{more}");
                }
            }
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
