//! The journal's own cost per item, without the engine: one run of N items,
//! each started then finished, on the store the URL names. Prints µs per
//! item and per kind of move.
//!
//! `cargo run --release -p golive-store --example moves -- DB_URL [N] [fused]`
//! (a SQLite path, or `postgres://…`; the database is written to). With
//! `fused`, each finish but the last carries the next item's start
//! (`finish_and_start`, as `golive run` journals a run of plain items);
//! without, two moves per item.

use std::time::{Duration, Instant};

use golive_store::{NewRun, Outcome, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: moves DB_URL [N] (a SQLite path or postgres://…)")?;
    let n: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1000);
    let fused = match args.next().as_deref() {
        None => false,
        Some("fused") => true,
        Some(other) => return Err(format!("unknown mode {other:?} (only `fused`)").into()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = golive_store::open(&url).await?;
        let items: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let run = store
            .create_run(&NewRun {
                plan_name: "moves".into(),
                plan_text: "moves".into(),
                items: items.clone(),
                ..NewRun::default()
            })
            .await?;
        let id = run.summary.id;
        if !store
            .acquire_lease(&id, "moves", Duration::from_secs(600))
            .await?
        {
            return Err("the run's lease is taken".into());
        }
        let result = serde_json::json!({ "exit_code": 0, "stdout": "", "stderr": "" });
        let (mut start, mut finish) = (Duration::ZERO, Duration::ZERO);
        if fused {
            let t = Instant::now();
            let mut items = items.iter().peekable();
            if let Some(first) = items.peek() {
                store.start_item(&id, first, "moves").await?;
            }
            while let Some(item) = items.next() {
                match items.peek() {
                    Some(next) => {
                        store
                            .finish_and_start(&id, item, "moves", Outcome::Passed, &result, next)
                            .await?;
                    }
                    None => {
                        store
                            .finish_item(&id, item, "moves", Outcome::Passed, &result)
                            .await?;
                    }
                }
            }
            let per = t.elapsed().as_secs_f64() * 1e6 / n as f64;
            println!("{n} items: {per:.1} µs per item (finish + next start fused)");
            store.close().await;
            return Ok(());
        }
        for item in &items {
            let t = Instant::now();
            store.start_item(&id, item, "moves").await?;
            let m = Instant::now();
            store
                .finish_item(&id, item, "moves", Outcome::Passed, &result)
                .await?;
            start += m - t;
            finish += m.elapsed();
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        println!(
            "{n} items: {:.1} µs per item (start {:.1} µs, finish {:.1} µs)",
            per(start + finish),
            per(start),
            per(finish)
        );
        store.close().await;
        Ok(())
    })
}
