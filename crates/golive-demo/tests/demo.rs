//! End-to-end tests of the demo over real sockets on 127.0.0.1: the
//! services' answers, metrics and faults, the load generator's split and
//! rollback timing, and that the shipped plan validates.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use golive_demo::{
    DEMO_PLAN, Demo, DemoService, Fault, LoadConfig, LoadGenerator, LoadReport, Target,
    VERSION_HEADER,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn local() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn client() -> Result<reqwest::Client, String> {
    golive_runtime::api_client(Duration::from_secs(5))
}

/// One sample line of the exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Checks every line's shape — `# HELP name text`, `# TYPE name type`, or
/// `name{label="value",…} number` — and returns the samples.
fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(line)?;
            if !name_ok(name) || !["counter", "gauge", "histogram", "summary"].contains(&kind) {
                return Err(format!("bad TYPE line: {line}"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').ok_or(line)?;
            if !name_ok(name) {
                return Err(format!("bad HELP line: {line}"));
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or(line)?;
        let value: f64 = value.parse().map_err(|_| format!("bad value: {line}"))?;
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').ok_or(line)?;
                let mut labels = BTreeMap::new();
                for pair in inner.split(',') {
                    let (k, v) = pair.split_once('=').ok_or(line)?;
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .ok_or(format!("unquoted label value: {line}"))?;
                    if !name_ok(k) || v.contains('"') {
                        return Err(format!("bad label: {line}"));
                    }
                    labels.insert(k.to_owned(), v.to_owned());
                }
                (name, labels)
            }
        };
        if !name_ok(name) {
            return Err(format!("bad metric name: {line}"));
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(samples)
}

fn value(samples: &[Sample], name: &str, label: (&str, &str)) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && s.labels.get(label.0).map(String::as_str) == Some(label.1))
        .map(|s| s.value)
}

async fn scrape(c: &reqwest::Client, svc: &DemoService) -> Result<Vec<Sample>, String> {
    let r = c
        .get(svc.metrics_url())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !ctype.starts_with("text/plain") {
        return Err(format!("content type {ctype}"));
    }
    let text = r.text().await.map_err(|e| e.to_string())?;
    parse_exposition(&text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_answers_with_its_version() -> TestResult {
    let svc = DemoService::start("v2", local()).await?;
    let c = client()?;
    for path in ["/", "/checkout/42?x=1"] {
        let r = c.get(format!("{}{path}", svc.url())).send().await?;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()
                .get(VERSION_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("v2")
        );
        let body: serde_json::Value = serde_json::from_str(&r.text().await?)?;
        assert_eq!(body, serde_json::json!({"version": "v2"}));
    }
    assert_eq!(c.get(svc.health_url()).send().await?.status(), 200);
    // Health checks and scrapes are not application traffic.
    scrape(&c, &svc).await?;
    assert_eq!(svc.served(), (2, 0));

    let addr = svc.addr();
    svc.shutdown().await?;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_in_valid_exposition_text() -> TestResult {
    let svc = DemoService::start("v1", local()).await?;
    let c = client()?;
    let before = scrape(&c, &svc).await?;
    // Both codes exist from the start, so `rate()` sees the first error.
    assert_eq!(
        value(&before, "demo_http_requests_total", ("code", "500")),
        Some(0.0)
    );
    for _ in 0..3 {
        c.get(svc.url()).send().await?;
    }
    svc.set_fault(Fault {
        error_rate: 1.0,
        latency_ms: 0,
    });
    for _ in 0..2 {
        c.get(svc.url()).send().await?;
    }
    let samples = scrape(&c, &svc).await?;
    assert!(
        samples
            .iter()
            .all(|s| s.labels.get("version").map(String::as_str) == Some("v1"))
    );
    assert_eq!(
        value(&samples, "demo_http_requests_total", ("code", "200")),
        Some(3.0)
    );
    assert_eq!(
        value(&samples, "demo_http_requests_total", ("code", "500")),
        Some(2.0)
    );
    let buckets: Vec<(&str, f64)> = samples
        .iter()
        .filter(|s| s.name == "demo_http_request_duration_seconds_bucket")
        .filter_map(|s| Some((s.labels.get("le")?.as_str(), s.value)))
        .collect();
    let les: Vec<&str> = buckets.iter().map(|b| b.0).collect();
    assert_eq!(
        les,
        [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"
        ]
    );
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    let count = value(
        &samples,
        "demo_http_request_duration_seconds_count",
        ("version", "v1"),
    );
    assert_eq!(count, Some(5.0));
    assert_eq!(buckets.last().map(|b| b.1), count);
    assert!(
        value(
            &samples,
            "demo_http_request_duration_seconds_sum",
            ("version", "v1")
        )
        .is_some()
    );
    assert_eq!(svc.served(), (3, 2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_give_500s_and_change_over_http() -> TestResult {
    let svc = DemoService::start("v2", local()).await?;
    let c = client()?;
    svc.set_fault(Fault {
        error_rate: 1.0,
        latency_ms: 0,
    });
    for _ in 0..5 {
        let r = c.get(svc.url()).send().await?;
        assert_eq!(r.status(), 500);
        let body: serde_json::Value = serde_json::from_str(&r.text().await?)?;
        assert_eq!(body["version"], "v2");
    }

    // A partial patch keeps the other field.
    let r = c
        .post(svc.fault_url())
        .body(r#"{"latency_ms": 5}"#)
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let shown: serde_json::Value =
        serde_json::from_str(&c.get(svc.fault_url()).send().await?.text().await?)?;
    assert_eq!(
        shown,
        serde_json::json!({"error_rate": 1.0, "latency_ms": 5})
    );
    for bad in [
        r#"{"error_rate": 1.5}"#,
        r#"{"eror_rate": 0}"#,
        "not json",
        r#"{"latency_ms": -1}"#,
    ] {
        let r = c.post(svc.fault_url()).body(bad).send().await?;
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(
        svc.fault(),
        Fault {
            error_rate: 1.0,
            latency_ms: 5
        }
    );
    c.post(svc.fault_url())
        .body(r#"{"error_rate": 0, "latency_ms": 0}"#)
        .send()
        .await?;
    assert_eq!(c.get(svc.url()).send().await?.status(), 200);
    assert_eq!(svc.served(), (1, 5));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_shows_in_the_histogram() -> TestResult {
    let svc = DemoService::start("v2", local()).await?;
    let c = client()?;
    svc.set_fault(Fault {
        error_rate: 0.0,
        latency_ms: 100,
    });
    let requests = (0..3).map(|_| c.get(svc.url()).send());
    for r in futures_join(requests).await {
        assert_eq!(r?.status(), 200);
    }
    let samples = scrape(&c, &svc).await?;
    let bucket = |le| {
        value(
            &samples,
            "demo_http_request_duration_seconds_bucket",
            ("le", le),
        )
    };
    // ±20% of 100 ms: every request lands between 80 ms and (well) 250 ms.
    assert_eq!(bucket("0.05"), Some(0.0));
    assert_eq!(bucket("0.25"), Some(3.0));
    let sum = value(
        &samples,
        "demo_http_request_duration_seconds_sum",
        ("version", "v2"),
    );
    assert!(sum.is_some_and(|s| (0.24..0.75).contains(&s)), "{sum:?}");
    Ok(())
}

/// Runs the futures concurrently (no futures crate needed for three).
async fn futures_join<F: Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        if let Ok(o) = h.await {
            out.push(o);
        }
    }
    out
}

fn user_number(user: &str) -> u32 {
    user.strip_prefix("user-")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_by_user_gives_the_canary_its_share() -> TestResult {
    let demo = Demo::start().await?;
    let target = demo.split(Arc::new(|user: &str| user_number(user) < 25));
    let load = LoadGenerator::start(LoadConfig {
        concurrency: 4,
        ..LoadConfig::new(target)
    })?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let live = load.snapshot();
    let report = load.stop().await;
    assert!(live.totals.requests() <= report.totals.requests());

    let t = report.totals;
    assert!(t.requests() > 200, "{t:?}");
    assert_eq!(t.errors.connect, 0, "{t:?}");
    assert_eq!(t.errors.total(), 0, "{t:?}");
    assert_eq!(t.unknown, 0);
    let share = t.canary_share().unwrap_or(0.0);
    assert!((0.22..=0.28).contains(&share), "canary share {share}");
    // What the clients saw is what the services served (the report leaves
    // out only the requests abandoned at stop).
    let served = demo.stable.served().0 + demo.canary.served().0;
    assert!(served >= t.requests() && served <= t.requests() + 4);
    assert!(report.p50.is_some() && report.p50 <= report.p99);
    let bucketed: u64 = report.buckets.iter().map(|b| b.counts.requests()).sum();
    assert_eq!(bucketed, t.requests());
    demo.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_stable_time_is_close_to_the_flip() -> TestResult {
    let demo = Demo::start().await?;
    let rolled_back = Arc::new(AtomicBool::new(false));
    let flag = rolled_back.clone();
    let target = demo.split(Arc::new(move |user: &str| {
        !flag.load(Ordering::SeqCst) && user_number(user) < 25
    }));
    let load = LoadGenerator::start(LoadConfig {
        concurrency: 2,
        rate: Some(400),
        ..LoadConfig::new(target)
    })?;
    tokio::time::sleep(Duration::from_millis(650)).await;
    rolled_back.store(true, Ordering::SeqCst);
    let flip = load.elapsed();
    tokio::time::sleep(Duration::from_millis(650)).await;
    let report: LoadReport = load.stop().await;

    assert!(report.totals.v2 > 0, "{:?}", report.totals);
    let stable_from = report.first_time_all_stable_after(Duration::ZERO);
    let Some(at) = stable_from else {
        return Err(format!("never all stable: {:?}", report.totals).into());
    };
    // Requests are bucketed by when they were routed: the first all-stable
    // bucket is the one after the flip's, give or take scheduling.
    assert!(
        at + Duration::from_millis(100) >= flip && at <= flip + Duration::from_millis(300),
        "flip at {flip:?}, all stable from {at:?}"
    );
    // Before the flip the canary had its quarter; after, nothing.
    let before: u64 = report
        .buckets
        .iter()
        .filter(|b| b.start + Duration::from_millis(100) <= flip)
        .map(|b| b.counts.v2)
        .sum();
    assert!(before > 0);
    let after: u64 = report
        .buckets
        .iter()
        .filter(|b| b.start >= at)
        .map(|b| b.counts.v2)
        .sum();
    assert_eq!(after, 0);
    demo.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_caps_the_load() -> TestResult {
    let svc = DemoService::start("v1", local()).await?;
    let load = LoadGenerator::start(LoadConfig {
        concurrency: 3,
        rate: Some(100),
        ..LoadConfig::new(Target::Url(svc.url()))
    })?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let report = load.stop().await;
    let n = report.totals.requests();
    assert!((85..=110).contains(&n), "{n} requests in 1 s at 100/s");
    assert_eq!(report.totals.v1, n);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_not_fatal() -> TestResult {
    // A port nobody listens on: bound, then released.
    let closed = tokio::net::TcpListener::bind(local()).await?;
    let closed_url = format!("http://{}", closed.local_addr()?);
    drop(closed);
    let canary = DemoService::start("v2", local()).await?;
    canary.set_fault(Fault {
        error_rate: 1.0,
        latency_ms: 0,
    });
    let load = LoadGenerator::start(LoadConfig {
        concurrency: 2,
        rate: Some(200),
        ..LoadConfig::new(Target::Split {
            stable: closed_url,
            canary: canary.url(),
            router: Arc::new(|user: &str| user_number(user) % 2 == 0),
        })
    })?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report = load.stop().await;
    let t = report.totals;
    assert!(t.errors.connect > 10, "{t:?}");
    assert!(t.errors.http_5xx_v2 > 10, "{t:?}");
    assert_eq!(t.v2, t.errors.http_5xx_v2);
    assert_eq!(t.v1, 0);
    // Nothing but failures after t: never "all stable".
    assert_eq!(report.first_time_all_stable_after(Duration::ZERO), None);

    // Bad targets are refused up front.
    let bad = LoadGenerator::start(LoadConfig::new(Target::Url("ftp://x".into())));
    assert!(bad.is_err());
    Ok(())
}

#[test]
fn the_demo_plan_validates() {
    for (what, external) in [
        (
            "with the demo's --var values",
            &(|_: &str| true) as &dyn golive_plan::VarLookup,
        ),
        (
            "on its own",
            &(|_: &str| false) as &dyn golive_plan::VarLookup,
        ),
    ] {
        let compiled = golive_plan::compile(DEMO_PLAN, external);
        let errors: Vec<String> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.severity == golive_plan::Severity::Error)
            .map(|d| format!("{d:?}"))
            .collect();
        assert!(errors.is_empty(), "{what}: {errors:#?}");
        // Warnings are worth a look too: the shipped plan has none.
        assert!(
            compiled.diagnostics.is_empty(),
            "{what}: {:#?}",
            compiled.diagnostics
        );
        assert!(compiled.plan.is_some(), "{what}");
    }
}

#[test]
fn the_demo_gives_every_variable_the_plan_reads() {
    let given = [
        "STABLE_URL",
        "CANARY_URL",
        "STABLE_METRICS",
        "CANARY_METRICS",
    ];
    let used: std::collections::BTreeSet<&str> = golive_plan::compile::var_refs(DEMO_PLAN)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    assert_eq!(used, given.into_iter().collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plan_readiness_checks_pass_against_the_demo() -> TestResult {
    let demo = Demo::start().await?;
    let names: Vec<&str> = demo.variables().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "STABLE_URL",
            "CANARY_URL",
            "STABLE_METRICS",
            "CANARY_METRICS"
        ]
    );
    let plan = golive_plan::compile(DEMO_PLAN, &|_: &str| false)
        .plan
        .ok_or("the plan does not compile")?;
    let overrides: Vec<(String, String)> = demo
        .variables()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    let vars = golive_runtime::Vars::resolve(&plan, &overrides)?;
    // The checks must reach these services, not the plan's default ports.
    assert_eq!(vars.get("CANARY_URL"), Some(demo.canary.url().as_str()));
    let mut checked = 0;
    for (_, item) in plan.items() {
        if let golive_plan::ItemKind::Check(check) = &item.kind {
            let result = golive_probe::run_check(check, &vars).await;
            assert_eq!(result.status, golive_probe::Status::Pass, "{result:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 2);
    // Health checks are not application traffic.
    assert_eq!(demo.stable.served(), (0, 0));
    demo.shutdown().await?;
    Ok(())
}
