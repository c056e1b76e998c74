//! Benchmark driver: GET every URL read from standard input, `--concurrency N`
//! at a time, and print the wall time in milliseconds and the failure count.
//! With `--expect TEXT`, a response whose body lacks TEXT counts as a failure
//! (for blackbox_exporter, whose `/probe` answers 200 even when the probe
//! failed).
//!
//! Used by `bench/ready-http.sh` to drive blackbox_exporter at the same
//! concurrency as `golive ready`. It keeps connections alive and does little
//! per request, so it is not the bottleneck.

use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut concurrency = 64usize;
    let mut expect: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--concurrency" => concurrency = args.next().ok_or("--concurrency N")?.parse()?,
            "--expect" => expect = Some(args.next().ok_or("--expect TEXT")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let urls: Vec<String> = std::io::stdin().lock().lines().collect::<Result<_, _>>()?;
    // reqwest is built without a default crypto provider; plain HTTP needs none,
    // but the client builder asks for one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let started = Instant::now();
    let failures = runtime.block_on(async {
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut set = tokio::task::JoinSet::new();
        for url in urls {
            let client = client.clone();
            let limit = limit.clone();
            let expect = expect.clone();
            set.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let ok = match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => match r.text().await {
                        Ok(body) => expect.is_none_or(|e| body.contains(&e)),
                        Err(_) => false,
                    },
                    _ => false,
                };
                usize::from(!ok)
            });
        }
        let mut failures = 0;
        while let Some(r) = set.join_next().await {
            failures += r.unwrap_or(1);
        }
        failures
    });
    println!("{} {failures}", started.elapsed().as_millis());
    Ok(())
}
