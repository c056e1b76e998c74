//! Benchmark driver: POSTs one OFREP evaluation to URL at a fixed rate
//! (open loop: requests are sent on schedule whatever the answers' pace, so
//! a slow server shows as latency, not as a lower rate) over a few
//! keep-alive connections, and prints the latency percentiles.
//!
//! `ofrep_rate URL --rate 1000 --seconds 10 [--token T] [--users N]`
//!
//! Each request carries `{"context": {"targetingKey": "user-K"}}` for K
//! cycling over N users. Used by `bench/ofrep.sh` against golive and nginx
//! alike; a server that ignores the body (nginx) gets the same bytes.

use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: ofrep_rate URL [--rate R] [--seconds S] [--token T] [--users N]")?;
    let (mut rate, mut seconds, mut token, mut users) = (1000u64, 10u64, None, 10_000u64);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rate" => rate = args.next().ok_or("--rate R")?.parse()?,
            "--seconds" => seconds = args.next().ok_or("--seconds S")?.parse()?,
            "--token" => token = Some(args.next().ok_or("--token T")?),
            "--users" => users = args.next().ok_or("--users N")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = golive_runtime::api_client(Duration::from_secs(5))?;
    let total = rate * seconds;
    let (latencies, failures) = runtime.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        let start = tokio::time::Instant::now();
        let gap = Duration::from_nanos(1_000_000_000 / rate.max(1));
        for i in 0..total {
            tokio::time::sleep_until(start + gap * u32::try_from(i).unwrap_or(u32::MAX)).await;
            let mut request = client
                .post(&url)
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"context\":{{\"targetingKey\":\"user-{}\"}}}}",
                    i % users.max(1)
                ));
            if let Some(t) = &token {
                request = request.bearer_auth(t);
            }
            set.spawn(async move {
                let sent = Instant::now();
                let ok = match request.send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                (sent.elapsed(), ok)
            });
        }
        let mut latencies = Vec::with_capacity(total as usize);
        let mut failures = 0u64;
        while let Some(done) = set.join_next().await {
            match done {
                Ok((took, true)) => latencies.push(took),
                _ => failures += 1,
            }
        }
        (latencies, failures)
    });
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        ms.get(((ms.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "requests={} failures={failures} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        ms.len(),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
