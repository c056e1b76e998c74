//! The analysis module against real inputs: exposition text as services
//! and the Prometheus docs write it, scrape expressions over scrapes with
//! controlled times, rules and judges over value sequences, scrapes of real
//! HTTP servers started here on 127.0.0.1:0, a real Prometheus (the Debian
//! binary the setup script installs) scraping one of them, and the
//! analyzer end to end. Times are `Instant`s the tests choose, so nothing
//! waits for wall-clock minutes; nothing asserts on timing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use golive_plan::rule::Rule;
use golive_plan::{Analysis, Judge, Metric, MetricQuery, MetricSource, Versions};
use golive_rollout::analysis::judge::{self, JudgeVerdict};
use golive_rollout::analysis::{
    Analyzer, Decision, Eval, PromValue, PrometheusClient, Query, QueryValue, RuleSet, Scraper,
    Series, SideValues, Verdict, expo,
};
use golive_runtime::Vars;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------- helpers

/// A deterministic pseudo-random source (PCG-style LCG), so fuzz-ish tests
/// and noisy samples are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn condition(text: &str) -> Rule {
    Rule::parse(text).unwrap_or_else(|e| panic!("rule `{text}`: {e:?}"))
}

/// A metric of a scrape source.
fn metric(name: &str, query: &str) -> Metric {
    Metric {
        name: name.into(),
        query: MetricQuery::Scrape(Query::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"))),
    }
}

/// A metric of a Prometheus source.
fn promql(name: &str, query: &str) -> Metric {
    Metric {
        name: name.into(),
        query: MetricQuery::Prometheus(query.into()),
    }
}

fn sample_text(lines: &[&str]) -> Vec<expo::Sample> {
    expo::parse(&lines.join("\n")).expect("test exposition parses")
}

/// A store with one scrape per `(seconds after t0, exposition lines)`.
fn store(t0: Instant, scrapes: &[(u64, &[&str])]) -> Series {
    let mut s = Series::new(Duration::from_secs(600), 100);
    for (at, lines) in scrapes {
        assert!(s.push(t0 + Duration::from_secs(*at), sample_text(lines)));
    }
    s
}

fn eval(query: &str, series: &Series, now: Instant) -> Option<f64> {
    Query::parse(query)
        .unwrap_or_else(|e| panic!("`{query}`: {e}"))
        .eval(series, now)
        .unwrap_or_else(|e| panic!("`{query}`: {e}"))
}

#[track_caller]
fn close(actual: Option<f64>, expected: f64) {
    let a = actual.unwrap_or_else(|| panic!("no data, expected {expected}"));
    assert!((a - expected).abs() < 1e-9, "got {a}, expected {expected}");
}

// ---------------------------------------------------------------- exposition

/// The example of the Prometheus documentation ("Exposition formats").
const PROMETHEUS_DOC: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.05"} 3272
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.9"} 9001
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;

#[test]
fn exposition_of_the_prometheus_docs() {
    let samples = expo::parse(PROMETHEUS_DOC).expect("parses");
    assert_eq!(samples.len(), 20);
    let first = &samples[0];
    assert_eq!(first.name, "http_requests_total");
    assert_eq!(first.labels.get("method").map(String::as_str), Some("post"));
    assert_eq!(first.labels.get("code").map(String::as_str), Some("200"));
    assert_eq!(first.value, 1027.0);
    assert_eq!(first.timestamp, Some(1_395_066_363_000.0));
    assert_eq!(samples[1].value, 3.0);

    let msdos = &samples[2];
    assert_eq!(
        msdos.labels.get("path").map(String::as_str),
        Some(r"C:\DIR\FILE.TXT")
    );
    assert_eq!(
        msdos.labels.get("error").map(String::as_str),
        Some("Cannot find file:\n\"FILE.TXT\"")
    );
    assert_eq!(msdos.value, 1.458255915e9);
    assert_eq!(samples[3].value, 12.47);
    assert!(samples[3].labels.is_empty());
    assert_eq!(samples[4].value, f64::INFINITY);
    assert_eq!(samples[4].timestamp, Some(-3_982_045.0));

    let buckets: Vec<(&str, f64)> = samples
        .iter()
        .filter(|s| s.name == "http_request_duration_seconds_bucket")
        .map(|s| (s.labels["le"].as_str(), s.value))
        .collect();
    assert_eq!(buckets.len(), 6);
    assert_eq!(buckets[5], ("+Inf", 144_320.0));
    assert!(
        samples
            .iter()
            .any(|s| s.name == "rpc_duration_seconds_sum" && s.value == 1.7560473e7)
    );
}

#[test]
fn exposition_openmetrics_and_odd_but_valid_forms() {
    let text = "# TYPE acme_http_router_request_seconds summary\n\
        # UNIT acme_http_router_request_seconds seconds\n\
        # HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
        acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
        acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
        acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
        # TYPE foo counter\n\
        foo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
        nan_gauge NaN\r\n\
        neg_gauge -Inf\n\
        \t  spaced { a = \"1\" , b=\"2\", } 5\n\
        {\"my.dotted.metric\", zone=\"eu\"} 3\n\
        with_unicode{msg=\"héllo → wörld\"} 1\n\
        tight{a=\"1\"}7\n\
        # EOF\n";
    let s = expo::parse(text).expect("parses");
    let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "acme_http_router_request_seconds_sum",
            "acme_http_router_request_seconds_count",
            "acme_http_router_request_seconds_created",
            "foo_total",
            "nan_gauge",
            "neg_gauge",
            "spaced",
            "my.dotted.metric",
            "with_unicode",
            "tight",
        ]
    );
    assert_eq!(s[3].value, 17.0);
    assert_eq!(s[3].timestamp, Some(1_520_879_607.789));
    assert!(s[4].value.is_nan());
    assert_eq!(s[5].value, f64::NEG_INFINITY);
    assert_eq!(s[6].labels.len(), 2);
    assert_eq!(s[7].labels["zone"], "eu");
    assert_eq!(s[8].labels["msg"], "héllo → wörld");
}

#[test]
fn exposition_malformed_lines_name_line_and_column() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("ok 1\nno_value\n", 2, 9, "has no value"),
        ("a{code=\"200\"} x1\n", 1, 15, "`x1` is not a number"),
        ("a{code=200} 1", 1, 8, "must be quoted"),
        ("a{code=\"2\\t\"} 1", 1, 10, "invalid escape"),
        ("a{code=\"200\" 1", 1, 14, "expected `,` or `}`"),
        ("a{code=\"200\"", 1, 2, "unclosed `{`"),
        ("a{code=\"200", 1, 8, "unclosed quote"),
        ("a{code=\"1\",code=\"2\"} 1", 1, 12, "appears twice"),
        ("# TYPE a countr\n", 1, 10, "unknown metric type `countr`"),
        ("# TYPE\n", 1, 7, "needs a metric name"),
        ("a 1\n# EOF\nb 2\n", 3, 1, "after `# EOF`"),
        ("a 1 2 3", 1, 7, "unexpected `3`"),
        ("a 1 notatime", 1, 5, "not a timestamp"),
        ("9lives 1", 1, 1, "expected a metric name"),
        ("a{=\"x\"} 1", 1, 3, "expected a label name"),
        ("{} 1", 1, 1, "needs a metric name"),
        ("a{b=\"1\"}x 1", 1, 9, "`x` is not a number"),
        ("a:b:c{x 1", 1, 9, "expected `=` after label `x`"),
        ("name# 1", 1, 5, "expected a space"),
    ];
    for (text, line, column, message) in cases {
        let e = expo::parse(text).expect_err(text);
        assert_eq!((e.line, e.column), (*line, *column), "{text:?}: {e}");
        assert!(e.message.contains(message), "{text:?}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("line {line}, column {column}: "))
        );
    }
}

#[test]
fn exposition_never_panics_on_random_or_truncated_input() {
    // Every prefix of valid text (at char boundaries), …
    let text = format!("{PROMETHEUS_DOC}{{\"x.y\",é=\"→\"}} 1 # {{a=\"b\"}} 1\n# EOF\n");
    for (i, _) in text.char_indices() {
        let _ = expo::parse(&text[..i]);
    }
    // … random soups of the format's own characters, …
    let alphabet = [
        "a", "_", ":", "{", "}", "\"", "\\", "=", ",", " ", "\t", "\n", "\r", "#", "1", "e",
        "+Inf", "-", ".", "NaN", "é", "→", "le", "# TYPE ", "# EOF", "0x1p3", "\u{0}",
    ];
    let mut rng = Lcg(7);
    for _ in 0..20_000 {
        let len = rng.next() % 40;
        let soup: String = (0..len).map(|_| rng.pick(&alphabet)).collect();
        let _ = expo::parse(&soup);
    }
    // … and valid text with one character replaced.
    let chars: Vec<char> = text.chars().collect();
    for _ in 0..5_000 {
        let mut c = chars.clone();
        let at = (rng.next() as usize) % c.len();
        c[at] = rng.pick(&alphabet).chars().next().unwrap_or('x');
        let mutated: String = c.into_iter().collect();
        let _ = expo::parse(&mutated);
    }
}

// ---------------------------------------------------------------- queries

#[test]
fn query_parse_errors_point_at_the_column() {
    let cases: &[(&str, usize, &str)] = &[
        ("sum(rate(x[1m])", 16, "expected `)`"),
        ("rate(x)", 7, "needs a range"),
        ("x{code=~\"5((\"}", 9, "invalid regular expression"),
        ("x{code!~\"(\"}", 9, "invalid regular expression"),
        ("x{code~\"5\"}", 7, "expected `=`, `!=`, `=~` or `!~`"),
        ("irate(x[1m])", 1, "unknown or unsupported function `irate`"),
        ("x{code=\"5\"", 11, "expected `}`"),
        ("rate(x[1q])", 8, "unknown unit"),
        ("x offset 5m", 3, "`offset` is not supported"),
        ("x > 1", 3, "comparisons belong in the plan's `rules`"),
        ("", 1, "empty"),
        ("   ", 1, "empty"),
        ("x y", 3, "unexpected `y`"),
        ("sum(x) by (le", 14, "expected `)`"),
        ("{code=\"500\"}", 1, "needs a metric name"),
        ("x[1m]", 2, "only goes on a selector inside"),
        ("rate(x[1m:10s])", 8, "subqueries"),
        ("histogram_quantile(x, y)", 20, "must be a number"),
        ("x and y", 3, "`and` is not supported"),
        ("1 + ", 5, "ends too early"),
        ("sum(1)", 5, "needs a vector"),
        ("x{code=\"a\\q\"}", 10, "unknown escape"),
        ("ratio(a[1m], b)", 14, "same range"),
        ("x / on(code) y", 5, "`on` is not supported"),
        ("5m", 2, "durations only go inside"),
        ("x{\"é\"=\"1\"}", 3, "expected a label name"),
        ("é", 1, "unexpected `é`"),
    ];
    for (text, column, message) in cases {
        let e = Query::parse(text).expect_err(text);
        assert_eq!(e.column, *column, "{text:?}: {e}");
        assert!(e.message.contains(message), "{text:?}: {e}");
    }
}

#[test]
fn query_rates_from_two_scrapes_and_counter_resets() {
    let t0 = Instant::now();
    let s = store(
        t0,
        &[
            (0, &["http_requests_total{code=\"200\"} 100"]),
            (30, &["http_requests_total{code=\"200\"} 160"]),
        ],
    );
    let at30 = t0 + Duration::from_secs(30);
    close(eval("rate(http_requests_total[1m])", &s, at30), 2.0);
    close(eval("increase(http_requests_total[1m])", &s, at30), 60.0);
    // A window holding one scrape gives no rate.
    assert_eq!(eval("rate(http_requests_total[20s])", &s, at30), None);
    // One scrape only: no data yet.
    assert_eq!(eval("rate(http_requests_total[1m])", &s, t0), None);
    // Instant selector: the latest scrape, not older than the lookback.
    close(eval("http_requests_total", &s, at30), 160.0);
    assert_eq!(
        eval("http_requests_total", &s, at30 + Duration::from_secs(301)),
        None
    );

    // The process restarted between 30s and 60s: 160 → 20 counts 20.
    let s = store(
        t0,
        &[
            (0, &["c 100"]),
            (30, &["c 160"]),
            (60, &["c 20"]),
            (90, &["c 50"]),
        ],
    );
    let at60 = t0 + Duration::from_secs(60);
    close(eval("increase(c[61s])", &s, at60), 60.0 + 20.0);
    close(eval("rate(c[61s])", &s, at60), 80.0 / 60.0);
    // Window (30s, 90s]: 20 → 50 after the reset.
    close(
        eval("increase(c[1m])", &s, t0 + Duration::from_secs(90)),
        30.0,
    );
}

#[test]
fn query_sum_by_division_and_the_error_ratio_of_a_plan() {
    let t0 = Instant::now();
    let s = store(
        t0,
        &[
            (
                0,
                &[
                    "http_requests_total{method=\"GET\",code=\"200\"} 0",
                    "http_requests_total{method=\"GET\",code=\"500\"} 0",
                    "http_requests_total{method=\"POST\",code=\"200\"} 0",
                    "http_requests_total{method=\"POST\",code=\"500\"} 0",
                ],
            ),
            (
                60,
                &[
                    "http_requests_total{method=\"GET\",code=\"200\"} 540",
                    "http_requests_total{method=\"GET\",code=\"500\"} 60",
                    "http_requests_total{method=\"POST\",code=\"200\"} 60",
                    "http_requests_total{method=\"POST\",code=\"500\"} 60",
                ],
            ),
        ],
    );
    let now = t0 + Duration::from_secs(60);
    let q = Query::parse("sum by (code) (rate(http_requests_total[2m]))").expect("parses");
    let QueryValue::Vector(mut v) = q.evaluate(&s, now).expect("evaluates") else {
        panic!("a vector")
    };
    v.sort_by(|a, b| a.0.get("code").cmp(&b.0.get("code")));
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].0.get("code").map(String::as_str), Some("200"));
    assert!(
        (v[0].1 - 10.0).abs() < 1e-9 && (v[1].1 - 2.0).abs() < 1e-9,
        "{v:?}"
    );
    // Postfix grouping and `without` give the same.
    let q2 = Query::parse("sum without (method) (rate(http_requests_total[2m]))").expect("ok");
    let q3 = Query::parse("sum(rate(http_requests_total[2m])) by (code)").expect("ok");
    let sorted = |q: &Query| {
        let Ok(QueryValue::Vector(mut v)) = q.evaluate(&s, now) else {
            panic!("a vector")
        };
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(sorted(&q2), sorted(&q3));

    // The error ratio as a plan would send it to Prometheus, with an exact
    // match and with a regular expression (anchored: `5..` is not `1500`).
    let ratio =
        "sum(rate(http_requests_total{code=\"500\"}[2m])) / sum(rate(http_requests_total[2m]))";
    close(eval(ratio, &s, now), 120.0 / 720.0);
    let regex = "sum(rate(http_requests_total{code=~\"5..\"}[2m])) / sum(rate(http_requests_total{code!~\"3.*\"}[2m]))";
    close(eval(regex, &s, now), 120.0 / 720.0);
    // Per method, one-to-one on the `method` label.
    let per_method = "sum by (method) (rate(http_requests_total{code=\"500\"}[2m])) / sum by (method) (rate(http_requests_total[2m]))";
    let e = Query::parse(per_method)
        .expect("parses")
        .eval(&s, now)
        .expect_err("two series");
    assert!(
        e.to_string().contains("2 series") && e.to_string().contains("sum("),
        "{e}"
    );
    close(eval(&format!("max({per_method})"), &s, now), 60.0 / 120.0);
    // golive's ratio(): the same, since the previous scrape.
    close(
        eval(
            "ratio(http_requests_total{code=\"500\"}, http_requests_total)",
            &s,
            now,
        ),
        120.0 / 720.0,
    );
    // Arithmetic with numbers, precedence, unary minus.
    close(eval("1 + 2 * 3 - -1", &s, now), 8.0);
    close(eval("(1 + 2) * 3 / 2", &s, now), 4.5);
    close(
        eval(
            "100 * sum(rate(http_requests_total{code=\"500\"}[2m])) / sum(rate(http_requests_total[2m]))",
            &s,
            now,
        ),
        100.0 * 120.0 / 720.0,
    );
    close(eval("count(http_requests_total)", &s, now), 4.0);
    close(
        eval("avg(http_requests_total{code=\"500\"})", &s, now),
        60.0,
    );
    close(
        eval(
            "min(http_requests_total) + max(http_requests_total)",
            &s,
            now,
        ),
        600.0,
    );
}

#[test]
fn query_division_by_zero_and_missing_series_are_no_data() {
    let t0 = Instant::now();
    let s = store(
        t0,
        &[
            (0, &["http_requests_total{code=\"200\"} 10"]),
            (30, &["http_requests_total{code=\"200\"} 10"]),
        ],
    );
    let now = t0 + Duration::from_secs(30);
    // No traffic: 0 / 0 is no data, not 0 and not an infinite error rate.
    assert_eq!(
        eval(
            "sum(rate(http_requests_total{code=\"500\"}[1m])) / sum(rate(http_requests_total[1m]))",
            &s,
            now
        ),
        None
    );
    assert_eq!(eval("1 / 0", &s, now), None);
    assert_eq!(eval("NaN", &s, now), None);
    // No 5xx series at all (never created by the service): no data in
    // PromQL, 0 with `or vector(0)` or with ratio() — given traffic.
    let s = store(
        t0,
        &[
            (0, &["http_requests_total{code=\"200\"} 10"]),
            (30, &["http_requests_total{code=\"200\"} 40"]),
        ],
    );
    let plain =
        "sum(rate(http_requests_total{code=\"500\"}[1m])) / sum(rate(http_requests_total[1m]))";
    assert_eq!(eval(plain, &s, now), None);
    close(
        eval(
            "(sum(rate(http_requests_total{code=\"500\"}[1m])) or vector(0)) / sum(rate(http_requests_total[1m]))",
            &s,
            now,
        ),
        0.0,
    );
    close(
        eval(
            "ratio(http_requests_total{code=\"500\"}, http_requests_total)",
            &s,
            now,
        ),
        0.0,
    );
    assert_eq!(eval("no_such_metric", &s, now), None);
    assert_eq!(eval("sum(no_such_metric)", &s, now), None);
}

#[test]
fn query_histogram_quantile_matches_a_hand_computation() {
    let t0 = Instant::now();
    let bucket = |method: &str, le: &str, n: u32| {
        format!("http_request_duration_seconds_bucket{{method=\"{method}\",le=\"{le}\"}} {n}")
    };
    let les = ["0.1", "0.25", "0.5", "1", "+Inf"];
    let zero: Vec<String> = ["GET", "POST"]
        .iter()
        .flat_map(|m| les.iter().map(move |le| bucket(m, le, 0)))
        .collect();
    let get = [10, 30, 45, 50, 50];
    let post = [0, 10, 25, 40, 50];
    let mut later: Vec<String> = les
        .iter()
        .zip(get)
        .map(|(le, n)| bucket("GET", le, n))
        .collect();
    later.extend(les.iter().zip(post).map(|(le, n)| bucket("POST", le, n)));
    let zero: Vec<&str> = zero.iter().map(String::as_str).collect();
    let later: Vec<&str> = later.iter().map(String::as_str).collect();
    let s = store(t0, &[(0, zero.as_slice()), (50, later.as_slice())]);
    let now = t0 + Duration::from_secs(50);
    // Summed buckets: le 0.1 → 10, 0.25 → 40, 0.5 → 70, 1 → 90, +Inf → 100
    // (per 50 s; rates scale all counts alike).
    // q = 0.5: rank 50 lies in (0.25, 0.5] holding 30, 10 into it:
    // 0.25 + 0.25 × 10/30.
    let q = |q: f64| {
        format!(
            "histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))"
        )
    };
    close(eval(&q(0.5), &s, now), 0.25 + 0.25 * 10.0 / 30.0);
    // q = 0.05: rank 5 in [0, 0.1] holding 10: 0.1 × 5/10.
    close(eval(&q(0.05), &s, now), 0.05);
    // q = 0.95: rank 95 is past the last finite bucket (90): its bound.
    close(eval(&q(0.95), &s, now), 1.0);
    // Per method without aggregation over it: two series, an error.
    let e = Query::parse(
        "histogram_quantile(0.5, sum by (le, method) (rate(http_request_duration_seconds_bucket[1m])))",
    )
    .expect("parses")
    .eval(&s, now)
    .expect_err("two series");
    assert!(e.to_string().contains("sum("), "{e}");
    // GET alone: le 0.5 → 45, 1 → 50; q = 0.9: rank 45 → 0.5 exactly.
    close(
        eval(
            "histogram_quantile(0.9, rate(http_request_duration_seconds_bucket{method=\"GET\"}[1m]))",
            &s,
            now,
        ),
        0.5,
    );
}

#[test]
fn query_reports_names_and_windows_and_never_panics() {
    let q = Query::parse(
        "histogram_quantile(0.95, sum by (le) (rate(lat_bucket[5m]))) + ratio(a[2m], b[2m]) + c",
    )
    .expect("parses");
    let names: Vec<String> = q.metric_names().into_iter().collect();
    assert_eq!(names, ["a", "b", "c", "lat_bucket"]);
    assert_eq!(q.longest_window(), Some(Duration::from_secs(300)));
    assert_eq!(Query::parse("x").expect("ok").longest_window(), None);

    let t0 = Instant::now();
    let s = store(
        t0,
        &[
            (0, &["x{le=\"1\"} 1", "x{le=\"+Inf\"} 2", "y 3"]),
            (10, &["x{le=\"1\"} 0", "x{le=\"+Inf\"} 1", "y 0"]),
        ],
    );
    let alphabet = [
        "x",
        "y",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "1m",
        "le",
        "=",
        "!=",
        "\"1\"",
        ",",
        " ",
        "+",
        "-",
        "*",
        "/",
        "sum",
        " by ",
        "rate(",
        "increase(",
        "histogram_quantile(",
        "ratio(",
        "or",
        "vector(",
        "0.5",
        "NaN",
        "é",
        "\\",
        "'",
        "`",
        "=~",
    ];
    // Pathological sizes are errors, not stack overflows.
    for text in [
        format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("{}1", "1+".repeat(100_000)),
        format!("{}1", "-".repeat(100_000)),
        format!("{}x{}", "sum(".repeat(10_000), ")".repeat(10_000)),
    ] {
        let e = Query::parse(&text).expect_err("too large");
        assert!(e.message.contains("too"), "{e}");
    }
    let deep = format!("{}x{}", "(".repeat(20), ")".repeat(20));
    assert!(Query::parse(&deep).is_ok());
    let mut rng = Lcg(11);
    let now = t0 + Duration::from_secs(10);
    for _ in 0..30_000 {
        let len = rng.next() % 16;
        let text: String = (0..len).map(|_| rng.pick(&alphabet)).collect();
        if let Ok(q) = Query::parse(&text) {
            let _ = q.eval(&s, now);
        }
    }
}

// ---------------------------------------------------------------- rules

/// The canary's values (the stable version has none).
fn values(pairs: &[(&str, Option<f64>)]) -> BTreeMap<String, SideValues> {
    pairs
        .iter()
        .map(|(k, v)| {
            let side = SideValues {
                stable: None,
                canary: *v,
            };
            (k.to_string(), side)
        })
        .collect()
}

#[test]
fn rules_fire_only_after_a_continuous_hold() {
    let mut rules = RuleSet::new(&[condition("error_rate > 5% for 1m")], 0);
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let high = values(&[("error_rate", Some(0.2))]);
    let low = values(&[("error_rate", Some(0.01))]);
    assert_eq!(rules.observe(at(0), &high), Verdict::Pass);
    assert_eq!(rules.statuses()[0].held_for, Duration::ZERO);
    assert!(rules.statuses()[0].holds && !rules.statuses()[0].fires);
    assert_eq!(rules.observe(at(30), &high), Verdict::Pass);
    // A dip resets the hold.
    assert_eq!(rules.observe(at(45), &low), Verdict::Pass);
    assert_eq!(rules.observe(at(60), &high), Verdict::Pass);
    assert_eq!(rules.observe(at(90), &high), Verdict::Pass);
    assert_eq!(
        rules.observe(at(120), &high),
        Verdict::Fail {
            rule: "error_rate > 5% for 1m".into(),
            value: 0.2,
            against: 0.05,
            held_for: Duration::from_secs(60),
            failures: 1,
            failure_limit: 0,
        }
    );

    // Without `for`, a rule fires at once.
    let mut now_rule = RuleSet::new(&[condition("error_rate >= 0.2")], 0);
    assert!(matches!(
        now_rule.observe(at(0), &high),
        Verdict::Fail { held_for, .. } if held_for == Duration::ZERO
    ));
}

#[test]
fn a_rule_that_fired_keeps_firing_until_false_for_its_for() {
    let mut rules = RuleSet::new(&[condition("error_rate > 5% for 10s")], 0);
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let v = |e: Option<f64>| values(&[("error_rate", e)]);
    let fails = |v: &Verdict| matches!(v, Verdict::Fail { .. });
    assert_eq!(rules.observe(at(0), &v(Some(0.2))), Verdict::Pass);
    assert!(fails(&rules.observe(at(10), &v(Some(0.2)))));
    // A dip after it fired: still firing, with the dip's numbers.
    assert!(fails(&rules.observe(at(12), &v(Some(0.01)))));
    let s = &rules.statuses()[0];
    assert!(s.fires && !s.holds && s.value == Some(0.01), "{s:?}");
    assert_eq!(s.quiet_for, Duration::from_secs(2));
    // Holding again resumes at once (no new 10 s hold), then no data: not
    // a recovery, it fires on with the values it last held with.
    assert!(fails(&rules.observe(at(15), &v(Some(0.3)))));
    assert!(matches!(
        rules.observe(at(20), &v(None)),
        Verdict::Fail { value, .. } if value == 0.3
    ));
    // False for 10 s since it last held (15 s): clear.
    assert!(fails(&rules.observe(at(24), &v(Some(0.0)))));
    assert_eq!(rules.observe(at(25), &v(Some(0.0))), Verdict::Pass);
    assert!(!rules.statuses()[0].fires);
    // Cleared, it needs its whole `for` again.
    assert_eq!(rules.observe(at(26), &v(Some(0.2))), Verdict::Pass);
    assert!(fails(&rules.observe(at(36), &v(Some(0.2)))));
    // A rule without `for` fires exactly when it holds.
    let mut now_rule = RuleSet::new(&[condition("error_rate > 5%")], 0);
    assert!(fails(&now_rule.observe(at(0), &v(Some(0.2)))));
    assert_eq!(now_rule.observe(at(1), &v(Some(0.0))), Verdict::Pass);
}

#[test]
fn rules_missing_data_is_inconclusive_and_resets_nothing() {
    let mut rules = RuleSet::new(
        &[
            condition("error_rate > 0.05 for 1m"),
            condition("latency > 500ms"),
        ],
        0,
    );
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let v = |e: Option<f64>, l: Option<f64>| values(&[("error_rate", e), ("latency", l)]);
    assert_eq!(
        rules.observe(at(0), &v(Some(0.1), Some(0.1))),
        Verdict::Pass
    );
    assert_eq!(
        rules.observe(at(30), &v(None, Some(0.1))),
        Verdict::Inconclusive {
            why: "no data for error_rate".into()
        }
    );
    // NaN is no data too, and a metric absent from the map as well.
    assert!(matches!(
        rules.observe(at(45), &values(&[("error_rate", Some(f64::NAN))])),
        Verdict::Inconclusive { why } if why == "no data for error_rate, latency"
    ));
    // The hold begun at 0 s went on through the gap.
    assert!(matches!(
        rules.observe(at(60), &v(Some(0.1), Some(0.1))),
        Verdict::Fail { held_for, .. } if held_for == Duration::from_secs(60)
    ));
    // 500ms reads as 0.5 seconds.
    let mut lat = RuleSet::new(&[condition("latency > 500ms")], 0);
    assert_eq!(lat.observe(at(0), &v(None, Some(0.4))), Verdict::Pass);
    assert!(matches!(
        lat.observe(at(1), &v(None, Some(0.6))),
        Verdict::Fail { .. }
    ));
}

#[test]
fn rules_failure_limit_counts_consecutive_failing_evaluations() {
    let mut rules = RuleSet::new(&[condition("error_rate > 0.05")], 2);
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let high = values(&[("error_rate", Some(0.2))]);
    let low = values(&[("error_rate", Some(0.0))]);
    let none = values(&[("error_rate", None)]);
    let failures = |v: &Verdict| match v {
        Verdict::Tolerated { failures, .. } => ("tolerated", *failures),
        Verdict::Fail { failures, .. } => ("fail", *failures),
        Verdict::Pass => ("pass", 0),
        Verdict::Inconclusive { .. } => ("inconclusive", 0),
    };
    assert_eq!(failures(&rules.observe(at(0), &high)), ("tolerated", 1));
    assert_eq!(failures(&rules.observe(at(30), &high)), ("tolerated", 2));
    // A passing evaluation resets the count …
    assert_eq!(failures(&rules.observe(at(60), &low)), ("pass", 0));
    assert_eq!(failures(&rules.observe(at(90), &high)), ("tolerated", 1));
    assert_eq!(failures(&rules.observe(at(120), &high)), ("tolerated", 2));
    // … an inconclusive one does not.
    assert_eq!(
        failures(&rules.observe(at(150), &none)),
        ("inconclusive", 0)
    );
    // failure_limit 2: the third consecutive failing evaluation fails.
    assert_eq!(failures(&rules.observe(at(180), &high)), ("fail", 3));
}

// ---------------------------------------------------------------- judge

fn judge_cfg(increase: bool) -> Judge {
    Judge {
        metric: "latency".into(),
        fail_when_increase: increase,
        confidence: 0.95,
        tolerance: 0.1,
    }
}

/// `n` latencies around `center` with ±`spread` uniform noise.
fn noisy(rng: &mut Lcg, n: usize, center: f64, spread: f64) -> Vec<f64> {
    (0..n)
        .map(|_| center + (rng.unit() * 2.0 - 1.0) * spread)
        .collect()
}

#[test]
fn mann_whitney_matches_published_and_hand_computed_values() {
    // scipy.stats.mannwhitneyu docs (Conover's example): males vs females,
    // U1 = 17, asymptotic two-sided p = 0.11134688653314041.
    let r = judge::mann_whitney(&[19.0, 22.0, 16.0, 29.0, 24.0], &[20.0, 11.0, 17.0, 12.0])
        .expect("two samples");
    assert_eq!(r.u, 17.0);
    assert!((r.p_value - 0.111_346_886_533_140_41).abs() < 1e-6, "{r:?}");
    assert!(r.z > 0.0);
    // With ties, computed by hand from the textbook formulas (average
    // ranks, variance n1·n2/12·((n+1) − Σ(t³−t)/(n(n−1))), continuity 0.5):
    // U = 8.5, z = 2.2391714737574007, p = 0.025144761173357396.
    let r = judge::mann_whitney(
        &[1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0],
        &[2.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0],
    )
    .expect("two samples");
    assert_eq!(r.u, 8.5);
    assert!((r.z + 2.239_171_473_757_400_7).abs() < 1e-9, "{r:?}");
    assert!(
        (r.p_value - 0.025_144_761_173_357_396).abs() < 1e-6,
        "{r:?}"
    );
    // All tied: no evidence of a difference.
    let r = judge::mann_whitney(&[1.0; 6], &[1.0; 6]).expect("two samples");
    assert_eq!(r.p_value, 1.0);
    assert!(judge::mann_whitney(&[], &[1.0]).is_none());
}

#[test]
fn judge_identical_distributions_pass() {
    let mut rng = Lcg(1);
    let baseline = noisy(&mut rng, 30, 0.1, 0.02);
    let canary = noisy(&mut rng, 30, 0.1, 0.02);
    let r = judge::compare(&judge_cfg(true), &baseline, &canary);
    let JudgeVerdict::Pass(s) = &r.verdict else {
        panic!("{r:#?}")
    };
    assert!(s.p_value > 0.05, "{s:?}");
    assert!(s.effect.abs() < 0.1, "{s:?}");
}

#[test]
fn judge_canary_shifted_beyond_tolerance_fails() {
    let mut rng = Lcg(2);
    let baseline = noisy(&mut rng, 20, 0.1, 0.02);
    let canary = noisy(&mut rng, 20, 0.15, 0.02);
    let r = judge::compare(&judge_cfg(true), &baseline, &canary);
    let JudgeVerdict::Fail(s) = &r.verdict else {
        panic!("{r:#?}")
    };
    assert!(s.p_value < 1.0 - 0.95, "{s:?}");
    assert!(s.effect > 0.1, "{s:?}");
    assert!(s.canary_median > s.baseline_median);
    // The same shift is fine when only decreases are regressions …
    assert!(matches!(
        judge::compare(&judge_cfg(false), &baseline, &canary).verdict,
        JudgeVerdict::Pass(_)
    ));
    // … and a drop fails then (throughput, success rate).
    assert!(matches!(
        judge::compare(&judge_cfg(false), &canary, &baseline).verdict,
        JudgeVerdict::Fail(_)
    ));
    // The JSON the engine journals.
    let json = serde_json::to_value(&r).expect("serializes");
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["metric"], "latency");
    assert!(json["p_value"].as_f64().is_some_and(|p| p < 0.05));
}

#[test]
fn judge_significant_shift_within_tolerance_passes() {
    let mut rng = Lcg(3);
    // +5%, with little noise: clearly significant, but tolerated.
    let baseline = noisy(&mut rng, 30, 0.100, 0.001);
    let canary = noisy(&mut rng, 30, 0.105, 0.001);
    let r = judge::compare(&judge_cfg(true), &baseline, &canary);
    let JudgeVerdict::Pass(s) = &r.verdict else {
        panic!("{r:#?}")
    };
    assert!(s.p_value < 0.001, "{s:?}");
    assert!(s.effect > 0.0 && s.effect < 0.1, "{s:?}");
}

#[test]
fn judge_passes_a_spike_on_both_where_a_threshold_rule_fails() {
    let mut rng = Lcg(4);
    // 30 intervals; in 10..20 the whole fleet is slow: +0.2 s on both.
    let spike = |i: usize| if (10..20).contains(&i) { 0.2 } else { 0.0 };
    let baseline: Vec<f64> = (0..30)
        .map(|i| 0.1 + spike(i) + rng.unit() * 0.01)
        .collect();
    let canary: Vec<f64> = (0..30)
        .map(|i| 0.1 + spike(i) + rng.unit() * 0.01)
        .collect();
    let r = judge::compare(&judge_cfg(true), &baseline, &canary);
    assert!(matches!(r.verdict, JudgeVerdict::Pass(_)), "{r:#?}");

    let mut rules = RuleSet::new(&[condition("latency > 200ms")], 0);
    let t0 = Instant::now();
    let verdicts: Vec<Verdict> = canary
        .iter()
        .enumerate()
        .map(|(i, v)| {
            rules.observe(
                t0 + Duration::from_secs(30 * i as u64),
                &values(&[("latency", Some(*v))]),
            )
        })
        .collect();
    assert!(
        verdicts.iter().any(|v| matches!(v, Verdict::Fail { .. })),
        "the threshold rule fails on the spike"
    );
}

#[test]
fn judge_too_few_samples_is_inconclusive() {
    let r = judge::compare(&judge_cfg(true), &[0.1, 0.1, 0.1, 0.1], &[0.5; 10]);
    let JudgeVerdict::Inconclusive { why } = &r.verdict else {
        panic!("{r:#?}")
    };
    assert!(
        why.contains("at least 5") && why.contains("baseline has 4"),
        "{why}"
    );
    let r = judge::compare(&judge_cfg(true), &[], &[]);
    assert!(matches!(r.verdict, JudgeVerdict::Inconclusive { .. }));
    // Non-finite values do not count.
    let r = judge::compare(
        &judge_cfg(true),
        &[0.1, 0.1, 0.1, 0.1, f64::NAN, f64::INFINITY],
        &[0.1; 6],
    );
    assert!(
        matches!(r.verdict, JudgeVerdict::Inconclusive { .. }),
        "{r:#?}"
    );
}

#[test]
fn judge_outliers_removed_do_not_flip_a_pass() {
    let mut rng = Lcg(5);
    let baseline = noisy(&mut rng, 20, 0.1, 0.01);
    let mut canary = noisy(&mut rng, 20, 0.1, 0.01);
    let before = judge::compare(&judge_cfg(true), &baseline, &canary);
    assert!(
        matches!(before.verdict, JudgeVerdict::Pass(_)),
        "{before:#?}"
    );
    // One GC pause on the canary.
    canary[7] = 5.0;
    let after = judge::compare(&judge_cfg(true), &baseline, &canary);
    let JudgeVerdict::Pass(s) = &after.verdict else {
        panic!("{after:#?}")
    };
    assert_eq!(s.canary_removed, 1);
    assert_eq!(s.canary_n, 19);
    // Tukey's fences, by hand: 1..=19 and 100 → Q1 = 5.75, Q3 = 15.25
    // (type 7), IQR 9.5, upper fence 29.5: 100 goes.
    let mut v: Vec<f64> = (1..=19).map(f64::from).collect();
    v.push(100.0);
    let (kept, removed) = judge::tukey_filter(&v);
    assert_eq!(removed, 1);
    assert_eq!(kept.last(), Some(&19.0));
    // One value may always go, even from a small group (1 of 9).
    let (kept, removed) = judge::tukey_filter(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 100.0]);
    assert_eq!((kept.len(), removed), (8, 1));
    // A heavy tail (a third of the group) is the distribution: kept.
    let mostly_zero = [0.0, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.2];
    let (kept, removed) = judge::tukey_filter(&mostly_zero);
    assert_eq!((kept.len(), removed), (12, 0));
}

// ---------------------------------------------------------------- HTTP servers

/// What a test server answers: (status, body, send Content-Length) for a
/// path and the 1-based number of the request to that server.
type Handler = dyn Fn(&str, u64) -> (u16, String, bool) + Send + Sync;

/// A minimal HTTP/1.1 server on 127.0.0.1, one request per connection;
/// aborted when dropped.
struct TestServer {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start(
        handler: impl Fn(&str, u64) -> (u16, String, bool) + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let hits = Arc::new(AtomicU64::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let handler = Arc::clone(&handler);
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 2048];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let (status, body, length) = handler(&path, n);
                    let mut response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\n"
                    );
                    if length {
                        response.push_str(&format!("Content-Length: {}\r\n", body.len()));
                    }
                    response.push_str("\r\n");
                    response.push_str(&body);
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        TestServer { addr, hits, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A service's `/metrics` after its `n`th scrape: `ok` and `errors`
/// requests per scrape, and a latency histogram whose requests take about
/// `latency` seconds.
fn service_metrics(n: u64, ok: u64, errors: u64, latency: f64) -> String {
    let mut out =
        String::from("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n");
    out.push_str(&format!("http_requests_total{{code=\"200\"}} {}\n", ok * n));
    if errors > 0 {
        out.push_str(&format!(
            "http_requests_total{{code=\"500\"}} {}\n",
            errors * n
        ));
    }
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    let total = (ok + errors) * n;
    for le in [0.05, 0.1, 0.25, 0.5, 1.0] {
        let below = if le >= latency { total } else { 0 };
        out.push_str(&format!(
            "http_request_duration_seconds_bucket{{le=\"{le}\"}} {below}\n"
        ));
    }
    out.push_str(&format!(
        "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {total}\nhttp_request_duration_seconds_count {total}\n"
    ));
    out
}

// ---------------------------------------------------------------- scraping

#[tokio::test]
async fn scraper_reads_a_changing_endpoint_into_its_series() {
    let server = TestServer::start(|path, n| match path {
        "/metrics" => (200, service_metrics(n, 90, 10, 0.2), true),
        "/down" => (503, "overloaded".into(), true),
        "/broken" => (200, "ok 1\nbroken{code=\"500\" 3\n".into(), true),
        "/big" => (200, "x 1\n".repeat(1000), true),
        "/big-unannounced" => (200, "x 1\n".repeat(1000), false),
        _ => (404, "not found".into(), true),
    })
    .await;
    let timeout = Duration::from_secs(10);
    let scraper = Scraper::new(&server.url("/metrics"), timeout).expect("scraper");
    let mut series = Series::new(Duration::from_secs(300), 100);
    let t0 = Instant::now();
    for i in 0..3u64 {
        let n = scraper
            .scrape_into(&mut series, t0 + Duration::from_secs(15 * i))
            .await
            .expect("scrape");
        assert_eq!(n, 9);
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 3);
    assert_eq!(series.len(), 3);
    let now = t0 + Duration::from_secs(30);
    // 100 requests per 15 s scrape, 10 of them errors.
    close(
        eval("sum(rate(http_requests_total[1m]))", &series, now),
        100.0 / 15.0,
    );
    close(
        eval(
            "ratio(http_requests_total{code=\"500\"}, http_requests_total)",
            &series,
            now,
        ),
        0.1,
    );
    close(
        eval(
            "histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))",
            &series,
            now,
        ),
        0.1 + 0.15 * 0.5,
    );

    let err = |path: &str, max: Option<usize>| {
        let mut s = Scraper::new(&server.url(path), timeout).expect("scraper");
        if let Some(max) = max {
            s = s.with_max_body(max);
        }
        let path = path.to_string();
        async move { s.fetch().await.expect_err(&path) }
    };
    let e = err("/down", None).await;
    assert!(e.contains("HTTP 503") && e.contains("overloaded"), "{e}");
    let e = err("/broken", None).await;
    assert!(e.contains("line 2, column 19"), "{e}");
    let e = err("/big", Some(1024)).await;
    assert!(e.contains("larger than 1024 bytes"), "{e}");
    let e = err("/big-unannounced", Some(1024)).await;
    assert!(e.contains("larger than 1024 bytes"), "{e}");
    assert_eq!(
        Scraper::new(&server.url("/big"), timeout)
            .expect("scraper")
            .fetch()
            .await
            .expect("within the default cap")
            .len(),
        1000
    );
    // A failed scrape appends nothing.
    let before = series.len();
    let failing = Scraper::new(&server.url("/down"), timeout).expect("scraper");
    assert!(failing.scrape_into(&mut series, now).await.is_err());
    assert_eq!(series.len(), before);

    // Nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let e = Scraper::new(&format!("http://127.0.0.1:{port}/metrics"), timeout)
        .expect("scraper")
        .fetch()
        .await
        .expect_err("refused");
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(Scraper::new("ftp://host/metrics", timeout).is_err());
    let e = Scraper::new("http://user:hunter2@[::1/metrics", timeout).expect_err("bad URL");
    assert!(!e.contains("hunter2") && e.contains("user:***@"), "{e}");
}

#[test]
fn series_memory_is_bounded() {
    let t0 = Instant::now();
    let mut s = Series::new(Duration::from_secs(60), 5).keep_only(["kept".to_string()]);
    for i in 0..20u64 {
        s.push(
            t0 + Duration::from_secs(10 * i),
            sample_text(&["kept 1", "dropped 2"]),
        );
    }
    assert_eq!(s.len(), 5, "capped by count");
    assert!(s.scrapes().all(|sc| !sc.metrics.contains_key("dropped")));
    let mut s = Series::new(Duration::from_secs(60), 1000);
    for i in 0..20u64 {
        s.push(t0 + Duration::from_secs(10 * i), sample_text(&["kept 1"]));
    }
    assert_eq!(s.len(), 7, "capped by age: 190 s back to 130 s");
    // Time does not go backwards.
    assert!(!s.push(t0, Vec::new()));
    // A series repeated in one scrape keeps its first value.
    let mut s = Series::new(Duration::from_secs(60), 10);
    s.push(t0, sample_text(&["dup{a=\"1\"} 1", "dup{a=\"1\"} 2"]));
    close(eval("dup", &s, t0), 1.0);
    // Fifty thousand label sets of one metric: kept, and summed.
    let lines: Vec<String> = (0..50_000)
        .map(|i| format!("wide{{id=\"{i}\"}} 1"))
        .collect();
    let body = lines.join("\n");
    let mut s = Series::new(Duration::from_secs(60), 10);
    s.push(t0, expo::parse(&body).expect("parses"));
    close(eval("sum(wide)", &s, t0), 50_000.0);
}

// ---------------------------------------------------------------- analyzer

fn scrape_analysis(stable: &str, canary: &str, failure_limit: u32) -> Analysis {
    Analysis {
        interval: Duration::from_secs(30),
        source: MetricSource::Scrape {
            stable: stable.into(),
            canary: canary.into(),
        },
        metrics: vec![
            metric(
                "error_rate",
                "(sum(rate(http_requests_total{code=\"500\"}[1m])) or vector(0)) / sum(rate(http_requests_total[1m]))",
            ),
            metric(
                "latency_p95",
                "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))",
            ),
        ],
        rules: vec![condition("error_rate > 5% for 30s")],
        failure_limit,
        judges: vec![Judge {
            metric: "latency_p95".into(),
            fail_when_increase: true,
            confidence: 0.95,
            tolerance: 0.1,
        }],
        warmup: Duration::ZERO,
        min_requests: None,
        inconclusive_limit: 5,
        versions: Versions::default(),
    }
}

#[tokio::test]
async fn analyzer_fails_a_canary_with_20_percent_errors() {
    let stable = TestServer::start(|_, n| (200, service_metrics(n, 100, 0, 0.07), true)).await;
    let canary = TestServer::start(|_, n| (200, service_metrics(n, 80, 20, 0.07), true)).await;
    let analysis = scrape_analysis(&stable.url("/metrics"), &canary.url("/metrics"), 0);
    let mut analyzer = Analyzer::new(&analysis, &Vars::default()).expect("compiles");
    let t0 = Instant::now();
    let at = |i: u64| t0 + Duration::from_secs(30 * i);

    // One scrape: no rate yet.
    let e = analyzer.evaluate(at(0)).await;
    assert_eq!(
        e.decision,
        Decision::Inconclusive {
            why: "no data for error_rate".into()
        },
        "{e:#?}"
    );
    // The rule holds from 30 s on …
    let e = analyzer.evaluate(at(1)).await;
    assert_eq!(e.decision, Decision::Continue, "{e:#?}");
    let v = e.values["error_rate"];
    assert_eq!(v.stable, Some(0.0));
    assert!(
        (v.canary.expect("canary value") - 0.2).abs() < 1e-9,
        "{v:?}"
    );
    assert!(e.rule_statuses[0].holds && !e.rule_statuses[0].fires);
    // … and has held its 30 s at 60 s.
    let e = analyzer.evaluate(at(2)).await;
    let Decision::Fail { why } = &e.decision else {
        panic!("{e:#?}")
    };
    assert!(
        why.contains("error_rate > 5% for 30s") && why.contains("0.2 against 0.05"),
        "{why}"
    );
    assert!(matches!(
        &e.rules,
        Verdict::Fail { rule, value, held_for, .. }
            if rule == "error_rate > 5% for 30s"
                && (value - 0.2).abs() < 1e-9
                && *held_for == Duration::from_secs(30)
    ));
    // The judge has two values a side so far: inconclusive, not failing.
    assert!(matches!(
        e.judges[0].verdict,
        JudgeVerdict::Inconclusive { .. }
    ));
    let json = serde_json::to_value(&e).expect("serializes");
    assert_eq!(json["decision"]["decision"], "fail");
    assert_eq!(json["rules"]["verdict"], "fail");
    assert_eq!(json["rules"]["held_for"], 30.0);
    assert_eq!(json["values"]["error_rate"]["stable"], 0.0);
    assert_eq!(stable.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn analyzer_continues_with_a_healthy_canary_and_judges_latency() {
    let stable = TestServer::start(|_, n| (200, service_metrics(n, 100, 0, 0.07), true)).await;
    let canary = TestServer::start(|_, n| (200, service_metrics(n, 99, 1, 0.07), true)).await;
    let analysis = scrape_analysis(&stable.url("/metrics"), &canary.url("/metrics"), 0);
    let mut analyzer = Analyzer::new(&analysis, &Vars::default()).expect("compiles");
    let t0 = Instant::now();
    let mut last = None;
    for i in 0..8u64 {
        let e = analyzer.evaluate(t0 + Duration::from_secs(30 * i)).await;
        if i > 0 {
            assert_eq!(e.decision, Decision::Continue, "evaluation {i}: {e:#?}");
            assert!(e.errors.is_empty(), "{e:#?}");
        }
        last = Some(e);
    }
    let e = last.expect("evaluated");
    // 1% errors is under the 5% rule.
    assert!((e.values["error_rate"].canary.expect("value") - 0.01).abs() < 1e-9);
    // Same latency on both sides, enough values: the judge passes.
    let p95 = e.values["latency_p95"];
    assert_eq!(p95.stable, p95.canary);
    assert!(
        matches!(e.judges[0].verdict, JudgeVerdict::Pass(_)),
        "{e:#?}"
    );
    // A new step starts the judge over.
    analyzer.start_step(t0, 25);
    let e = analyzer.evaluate(t0 + Duration::from_secs(30 * 8)).await;
    assert!(matches!(
        e.judges[0].verdict,
        JudgeVerdict::Inconclusive { .. }
    ));
}

#[tokio::test]
async fn analyzer_judge_fails_a_slower_canary_and_a_down_canary_is_inconclusive() {
    let stable = TestServer::start(|_, n| (200, service_metrics(n, 100, 0, 0.07), true)).await;
    let slow = TestServer::start(|_, n| (200, service_metrics(n, 100, 0, 0.3), true)).await;
    let mut analysis = scrape_analysis(&stable.url("/metrics"), &slow.url("/metrics"), 1);
    analysis.rules.clear();
    let mut analyzer = Analyzer::new(&analysis, &Vars::default()).expect("compiles");
    let t0 = Instant::now();
    let mut decisions = Vec::new();
    for i in 0..9u64 {
        let e = analyzer.evaluate(t0 + Duration::from_secs(30 * i)).await;
        decisions.push(e.decision.clone());
    }
    // Values from 30 s on; five a side at 150 s: the judge fails there
    // (tolerated, failure_limit 1), and the step at 180 s.
    assert!(
        decisions[..6].iter().all(|d| *d == Decision::Continue),
        "{decisions:#?}"
    );
    let Decision::Fail { why } = &decisions[6] else {
        panic!("{decisions:#?}")
    };
    assert!(
        why.contains("judge `latency_p95`") && why.contains("p = "),
        "{why}"
    );

    let down = TestServer::start(|_, _| (503, "down".into(), true)).await;
    let analysis = scrape_analysis(&stable.url("/metrics"), &down.url("/metrics"), 0);
    let mut analyzer = Analyzer::new(&analysis, &Vars::default()).expect("compiles");
    analyzer.evaluate(t0).await;
    let e = analyzer.evaluate(t0 + Duration::from_secs(30)).await;
    let Decision::Inconclusive { why } = &e.decision else {
        panic!("{e:#?}")
    };
    assert!(
        why.contains("scrape canary") && why.contains("HTTP 503"),
        "{why}"
    );
    assert_eq!(e.values["error_rate"].canary, None);
    assert_eq!(e.values["error_rate"].stable, Some(0.0));
}

#[test]
fn analyzer_reports_a_bad_url() {
    let analysis = scrape_analysis("http://127.0.0.1:1/metrics", "not a url", 0);
    let e = Analyzer::new(&analysis, &Vars::default()).expect_err("problems");
    let text = e.to_string();
    assert!(
        text.contains("scrape canary: `not a url` is not a URL"),
        "{text}"
    );
}

#[test]
fn analyzer_accepts_a_compiled_plan() {
    let plan = r#"name: analysis-test
phases:
  - title: release
    items:
      - id: canary
        rollout:
          strategy: canary
          traffic: {flag: {key: new}}
          steps: [{weight: 10, pause: 1m}, {weight: 100}]
          analysis:
            interval: 10s
            scrape:
              stable: http://127.0.0.1:9/metrics
              canary: http://127.0.0.1:9/metrics
            metrics:
              - name: error_rate
                expr: ratio(http_requests_total{code="500"}, http_requests_total)
            rules:
              - error_rate > 5% for 1m
            failure_limit: 1
            judge:
              - metric: error_rate
"#;
    let compiled = golive_plan::compile(plan, &|_: &str| true);
    let plan = compiled
        .plan
        .unwrap_or_else(|| panic!("{:#?}", compiled.diagnostics));
    let analysis = plan
        .items()
        .find_map(|(_, item)| match &item.kind {
            golive_plan::ItemKind::Rollout(r) => Some(r.analysis.clone()),
            _ => None,
        })
        .expect("a rollout");
    let analyzer = Analyzer::new(&analysis, &Vars::default()).expect("compiles");
    assert_eq!(analyzer.interval(), Duration::from_secs(10));
}

#[test]
fn analyzer_futures_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let analysis = scrape_analysis("http://127.0.0.1:9/m", "http://127.0.0.1:9/m", 0);
    let mut analyzer = Analyzer::new(&analysis, &Vars::default()).expect("compiles");
    assert_send(&analyzer.evaluate(Instant::now()));
}

// ---------------------------------------------------------------- Prometheus

/// A child process killed and reaped when dropped, also on panic.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ChildGuard {
    #[track_caller]
    fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.0.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("prometheus exited early ({status}):\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_instant_queries_and_the_analyzer_on_prometheus() {
    let binary = Path::new("/usr/bin/prometheus");
    assert!(
        binary.is_file(),
        "/usr/bin/prometheus is missing (scripts/setup.sh installs it)"
    );
    let target = TestServer::start(|_, _| {
        (
            200,
            "# TYPE golive_test_gauge gauge\ngolive_test_gauge 42\n\
             app_latency_seconds{version=\"stable\"} 0.1\n\
             app_latency_seconds{version=\"canary\"} 0.3\n"
                .into(),
            true,
        )
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: golive\n    static_configs:\n      - targets: ['{}']\n",
            target.addr
        ),
    )
    .expect("write config");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let log = dir.path().join("prometheus.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut guard = ChildGuard(
        Command::new(binary)
            .args([
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=warn".to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start prometheus"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = PrometheusClient::new(&base, Duration::from_secs(10)).expect("client");

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        guard.assert_running(&log);
        match client.query("golive_test_gauge").await {
            Ok(PromValue::Vector(v)) if !v.is_empty() => {
                last = Some(v);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let v = last.expect("Prometheus has no golive_test_gauge sample after 60s");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].1, 42.0);
    assert_eq!(v[0].0.get("job").map(String::as_str), Some("golive"));
    assert_eq!(
        client.query("scalar(golive_test_gauge) * 2").await,
        Ok(PromValue::Scalar(84.0))
    );
    assert_eq!(
        client.query("golive_no_such_metric").await,
        Ok(PromValue::Vector(Vec::new()))
    );
    let e = client.query("sum(rate(").await.expect_err("bad query");
    assert!(
        e.contains("Prometheus refused") && e.contains("bad_data"),
        "{e}"
    );
    let e = client
        .query("golive_test_gauge[1m]")
        .await
        .expect_err("a matrix");
    assert!(e.contains("matrix"), "{e}");

    // The analyzer on Prometheus: the `version` label gives both sides;
    // `{{version}}` sends a query per side.
    let analysis = Analysis {
        interval: Duration::from_secs(10),
        source: MetricSource::Prometheus(base.clone()),
        metrics: vec![
            promql("latency", "max by (version) (app_latency_seconds)"),
            promql(
                "latency_ms",
                "1000 * sum(app_latency_seconds{version=\"{{version}}\"})",
            ),
            promql("gauge", "golive_test_gauge"),
            promql("broken", "sum(rate("),
        ],
        rules: vec![condition("latency > 200ms")],
        failure_limit: 0,
        judges: Vec::new(),
        warmup: Duration::ZERO,
        min_requests: None,
        inconclusive_limit: 5,
        versions: Versions::default(),
    };
    let mut analyzer = Analyzer::new(&analysis, &Vars::default()).expect("compiles");
    let e = analyzer.evaluate(Instant::now()).await;
    assert_eq!(e.values["latency"].stable, Some(0.1));
    assert_eq!(e.values["latency"].canary, Some(0.3));
    assert_eq!(e.values["latency_ms"].stable, Some(100.0));
    assert_eq!(e.values["latency_ms"].canary, Some(300.0));
    assert_eq!(e.values["gauge"].canary, Some(42.0));
    assert_eq!(e.values["gauge"].stable, None);
    assert!(
        e.errors
            .iter()
            .any(|x| x.contains("metric `broken`") && x.contains("bad_data")),
        "{e:#?}"
    );
    let Decision::Fail { why } = &e.decision else {
        panic!("{e:#?}")
    };
    assert!(
        why.contains("rule `latency > 200ms`") && why.contains("0.3 against 0.2"),
        "{why}"
    );

    // Unreachable server.
    drop(guard);
    let e = client.query("golive_test_gauge").await.expect_err("down");
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
}

// ---------------------------------------------------------------- decision tree

fn levels(plan_levels: &str) -> Vec<golive_plan::Level> {
    let plan = format!(
        r#"name: tree
channels:
  war-room: {{log: true}}
phases:
  - title: release
    items:
      - id: canary
        rollout:
          strategy: canary
          traffic: {{flag: {{key: new}}}}
          steps: [{{weight: 10, pause: 1m}}, {{weight: 100}}]
          analysis:
            interval: 10s
            prometheus: http://127.0.0.1:9
            metrics:
              - {{name: error_rate, query: x}}
            rules: [canary.error_rate - stable.error_rate > 5%]
rollback:
  levels:
{plan_levels}"#
    );
    let compiled = golive_plan::compile(&plan, &|_: &str| true);
    compiled
        .plan
        .unwrap_or_else(|| panic!("{:#?}", compiled.diagnostics))
        .rollback
        .levels
}

fn both(canary: f64, stable: f64) -> BTreeMap<String, SideValues> {
    BTreeMap::from([(
        "error_rate".to_string(),
        SideValues {
            stable: Some(stable),
            canary: Some(canary),
        },
    )])
}

#[test]
fn the_most_severe_level_acts_escalates_and_clears() {
    use golive_rollout::analysis::{Change, Tree};
    let mut tree = Tree::new(&levels(
        "    - {name: mild, when: ['error_rate > 1%'], actions: [{notify: war-room}, continue]}
    - {name: hold, when: ['canary.error_rate - stable.error_rate > 3% for 20s'], actions: [pause, {rollback-after: 1m}]}
    - {name: out, when: ['canary.error_rate - stable.error_rate > 10%'], actions: [rollback]}
",
    ));
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    // Healthy: nothing.
    let s = tree.observe(at(0), &both(0.0, 0.0));
    assert_eq!((s.acting, s.change), (None, Change::Same));
    // 5 points above the baseline: `mild` at once; `hold` needs 20 s.
    let s = tree.observe(at(10), &both(0.06, 0.01));
    assert_eq!(
        s.change,
        Change::Entered {
            index: 0,
            escalated: true
        }
    );
    let s = tree.observe(at(20), &both(0.06, 0.01));
    assert_eq!((s.acting, s.change), (Some(0), Change::Same));
    let s = tree.observe(at(30), &both(0.06, 0.01));
    assert_eq!(
        s.change,
        Change::Entered {
            index: 1,
            escalated: true
        },
        "{s:#?}"
    );
    assert_eq!(s.expired, None);
    // The rollback-after clock runs from entering `hold` (30 s) …
    assert_eq!(tree.observe(at(80), &both(0.06, 0.01)).expired, None);
    let s = tree.observe(at(90), &both(0.06, 0.01));
    assert_eq!(s.expired, Some(Duration::from_secs(60)));
    // … and escalation to `out` is always possible.
    let s = tree.observe(at(91), &both(0.2, 0.01));
    assert_eq!(
        s.change,
        Change::Entered {
            index: 2,
            escalated: true
        }
    );
    // Back below `out`: `hold` holds again (de-escalation), its clock anew.
    let s = tree.observe(at(92), &both(0.06, 0.01));
    assert_eq!(
        s.change,
        Change::Entered {
            index: 1,
            escalated: false
        }
    );
    assert_eq!(s.expired, None);
    // A fault shared by both versions is not the canary's, but `hold`
    // fired: it keeps acting until its condition has been false for its
    // `for` (20 s since it last held, at 92 s) …
    let s = tree.observe(at(100), &both(0.09, 0.08));
    assert_eq!((s.acting, s.change), (Some(1), Change::Same));
    let kept = &s.statuses[1].conditions[0];
    assert!(kept.fires && !kept.holds, "{kept:?}");
    assert_eq!(kept.quiet_for, Duration::from_secs(8));
    assert!(
        kept.why().contains("false for 8s of the 20s"),
        "{}",
        kept.why()
    );
    // … and then only the plain `mild` threshold holds.
    let s = tree.observe(at(112), &both(0.09, 0.08));
    assert_eq!(
        s.change,
        Change::Entered {
            index: 0,
            escalated: false
        }
    );
    // Recovery clears the level.
    let s = tree.observe(at(120), &both(0.0, 0.0));
    assert_eq!(s.change, Change::Cleared { index: 0 });
    assert_eq!(tree.acting(), None);
    // The journal sees every condition's numbers.
    let json = serde_json::to_value(&s.statuses).expect("serializes");
    assert_eq!(json[1]["conditions"][0]["against"], 0.03);
}

#[tokio::test]
async fn analyzer_waits_out_the_warm_up_and_too_few_requests() {
    // n counts the scrapes: 100 requests a scrape on each side.
    let stable = TestServer::start(|_, n| (200, service_metrics(n, 100, 0, 0.07), true)).await;
    let canary = TestServer::start(|_, n| (200, service_metrics(n, 100, 0, 0.07), true)).await;
    let mut analysis = scrape_analysis(&stable.url("/metrics"), &canary.url("/metrics"), 0);
    analysis.warmup = Duration::from_secs(45);
    analysis
        .metrics
        .push(metric("requests", "sum(increase(http_requests_total[2m]))"));
    analysis.min_requests = Some(golive_plan::MinRequests {
        metric: "requests".into(),
        count: 150.0,
    });
    let mut analyzer = Analyzer::new(&analysis, &Vars::default()).expect("compiles");
    let t0 = Instant::now();
    let at = |i: u64| t0 + Duration::from_secs(30 * i);
    analyzer.start_step(t0, 25);
    let e = analyzer.evaluate(at(0)).await;
    let Decision::Wait { why } = &e.decision else {
        panic!("{e:#?}")
    };
    assert!(why.contains("warming up"), "{why}");
    // Past the warm-up: 100 requests in the window, 150 needed.
    let e = analyzer.evaluate(at(2)).await;
    let Decision::Wait { why } = &e.decision else {
        panic!("{e:#?}")
    };
    assert!(
        why.contains("too few requests") && why.contains("canary served 100"),
        "{why}"
    );
    // 200 in the window: a verdict, and no rule has held yet.
    let e = analyzer.evaluate(at(3)).await;
    assert_eq!(e.decision, Decision::Continue, "{e:#?}");
    // A new step starts a new warm-up.
    analyzer.start_step(at(4), 25);
    assert!(matches!(
        analyzer.evaluate(at(4)).await.decision,
        Decision::Wait { .. }
    ));
}

/// How the docs' decision tree fared on one simulated low-traffic canary.
#[derive(Debug, Default)]
struct LowTraffic {
    /// Seconds from the first verdict to the rollback, if it came.
    rolled_back_after: Option<u64>,
    /// Evaluations after a level that stops the rollout was entered on
    /// which none acted: a step could have promoted there.
    unheld: u32,
}

/// The docs plan's levels over `secs` of simulated traffic: at 5 req/s
/// with the canary at 25% (1.25 req/s against 3.75), each request of the
/// canary failing with probability `canary_errors` and none of the
/// stable's; the error rates are counted over a 20 s window and evaluated
/// every second, as the docs' PromQL and `interval: 1s` do, once each
/// version has served the plan's `min_requests` (10) in the window.
fn low_traffic_trial(
    levels: &[golive_plan::Level],
    seed: u64,
    canary_errors: f64,
    secs: u64,
) -> LowTraffic {
    use golive_rollout::analysis::Tree;
    use std::collections::VecDeque;
    const WINDOW_TICKS: u64 = 200; // 20 s of 100 ms ticks
    let mut rng = Lcg(seed);
    let mut tree = Tree::new(levels);
    let t0 = Instant::now();
    // (tick, failed) of each request in the window, canary then stable.
    let mut windows: [VecDeque<(u64, bool)>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut out = LowTraffic::default();
    let mut first_verdict = None;
    let mut entered = false;
    for tick in 0..secs * 10 {
        for (w, (per_tick, p_fail)) in windows
            .iter_mut()
            .zip([(0.125, canary_errors), (0.375, 0.0)])
        {
            if rng.unit() < per_tick {
                w.push_back((tick, rng.unit() < p_fail));
            }
            while w.front().is_some_and(|(t, _)| t + WINDOW_TICKS <= tick) {
                w.pop_front();
            }
        }
        if tick % 10 != 9 || windows.iter().any(|w| w.len() < 10) {
            continue;
        }
        let rate = |w: &VecDeque<(u64, bool)>| {
            Some(w.iter().filter(|(_, f)| *f).count() as f64 / w.len() as f64)
        };
        let values = BTreeMap::from([(
            "error_rate".to_string(),
            SideValues {
                canary: rate(&windows[0]),
                stable: rate(&windows[1]),
            },
        )]);
        let now = t0 + Duration::from_millis(tick * 100);
        let first = *first_verdict.get_or_insert(tick / 10);
        let state = tree.observe(now, &values);
        let acting = state.acting.and_then(|i| tree.level(i));
        if acting.is_some_and(golive_plan::Level::stops) {
            entered = true;
        }
        let rolls_back = state.expired.is_some()
            || acting.is_some_and(|l| l.actions.contains(&golive_plan::LevelAction::Rollback));
        if rolls_back {
            out.rolled_back_after = Some(tick / 10 - first);
            return out;
        }
        if entered && !acting.is_some_and(golive_plan::Level::stops) {
            out.unheld += 1;
        }
    }
    out
}

#[test]
fn the_docs_tree_holds_and_rolls_back_a_low_traffic_regression_through_its_dips() {
    let compiled = golive_plan::compile(
        include_str!("../../../../docs/examples/canary-haproxy-prometheus.yaml"),
        &|_: &str| true,
    );
    let levels = compiled
        .plan
        .unwrap_or_else(|| panic!("{:#?}", compiled.diagnostics))
        .rollback
        .levels;
    const TRIALS: u64 = 400;
    let trials: Vec<LowTraffic> = (0..TRIALS)
        .map(|seed| low_traffic_trial(&levels, seed + 1, 0.12, 120))
        .collect();
    let mut after: Vec<u64> = trials.iter().filter_map(|t| t.rolled_back_after).collect();
    after.sort_unstable();
    let unheld = trials.iter().filter(|t| t.unheld > 0).count();
    println!(
        "+12% at 1.25 req/s: {} of {TRIALS} rolled back within 120 s, median {:?} s, max {:?} s \
         after the first verdict; {unheld} trials had evaluations with the rollout not held",
        after.len(),
        after.get(after.len() / 2),
        after.last()
    );
    // Every trial rolls back, and once a level acted the rollout stays
    // held until it does: a dip of the error rate never lets it go on.
    assert_eq!(after.len() as u64, TRIALS);
    assert_eq!(unheld, 0, "a level cleared between dips");
    // A healthy canary at the same traffic never enters a level.
    for seed in 0..100 {
        let t = low_traffic_trial(&levels, seed + 1, 0.0, 120);
        assert!(t.rolled_back_after.is_none() && t.unheld == 0, "{t:?}");
    }
}

#[tokio::test]
async fn at_100_percent_baseline_rules_read_the_stable_version_as_it_last_served() {
    // The stable version serves 2% errors until the 4th scrape, then no
    // traffic at all (its counters stand still); the canary has 2% errors,
    // then 9% once it takes all the traffic.
    let stable =
        TestServer::start(|_, n| (200, service_metrics(n.min(4), 100, 2, 0.07), true)).await;
    let canary = TestServer::start(|_, n| {
        let errors = if n > 4 { 10 } else { 2 };
        (200, service_metrics(n, 100, errors, 0.07), true)
    })
    .await;
    let mut analysis = scrape_analysis(&stable.url("/metrics"), &canary.url("/metrics"), 0);
    analysis.judges.clear();
    analysis.rules = vec![condition("canary.error_rate - stable.error_rate > 3%")];
    analysis
        .metrics
        .push(metric("requests", "sum(increase(http_requests_total[1m]))"));
    analysis.min_requests = Some(golive_plan::MinRequests {
        metric: "requests".into(),
        count: 50.0,
    });
    let mut analyzer = Analyzer::new(&analysis, &Vars::default()).expect("compiles");
    let t0 = Instant::now();
    let at = |i: u64| t0 + Duration::from_secs(30 * i);
    analyzer.start_step(t0, 50);
    let mut last = None;
    for i in 0..4 {
        last = Some(analyzer.evaluate(at(i)).await);
    }
    let e = last.expect("evaluated");
    assert_eq!(e.decision, Decision::Continue, "{e:#?}");
    assert!(e.baseline_held.is_empty());
    let stable_rate = e.values["error_rate"].stable.expect("stable serves");
    // All traffic on the canary: the stable windows empty out, and its
    // last value stands in.
    analyzer.start_step(at(4), 100);
    let mut decisions = Vec::new();
    for i in 4..8 {
        let e = analyzer.evaluate(at(i)).await;
        assert_eq!(e.values["error_rate"].stable, Some(stable_rate), "{e:#?}");
        assert!(
            e.baseline_held.contains(&"error_rate".to_string()),
            "{e:#?}"
        );
        decisions.push(e.decision);
    }
    // Never "too few requests" for the idle stable version, never "no
    // data": the canary's 9% against the stable's 2% fails.
    assert!(
        decisions
            .iter()
            .all(|d| !matches!(d, Decision::Wait { .. } | Decision::Inconclusive { .. })),
        "{decisions:#?}"
    );
    assert!(
        matches!(decisions.last(), Some(Decision::Fail { why }) if why.contains("stable.error_rate")),
        "{decisions:#?}"
    );
}
