//! Evaluation speed: `Flag::evaluate` against Unleash's yggdrasil engine on
//! the same 25 % rollout (stickiness userId) and the same 10,000 users,
//! in one run. `cargo bench -p golive-flags`.
//!
//! No criterion: a median of 7 timed passes is steady enough to compare
//! two engines side by side, and keeps the dev-dependencies small.

use std::hint::black_box;
use std::time::Instant;

use golive_flags::{Context, Flag};
use serde_json::{Value, json};
use unleash_yggdrasil::{ClientFeatures, EngineState};

const USERS: usize = 10_000;
const RUNS: usize = 7;
/// Passes over all users per timed run: 500,000 evaluations, tens of
/// milliseconds, long enough for `Instant` to be precise.
const PASSES: usize = 50;

fn main() {
    let flag = Flag::from_json(&json!({
        "flag": "new_checkout",
        "enabled": true,
        "percentage": 25,
        "stickiness": "userId",
    }))
    .expect("valid flag");
    let features: ClientFeatures = serde_json::from_value(json!({
        "version": 2,
        "features": [{
            "name": "new_checkout",
            "enabled": true,
            "strategies": [{
                "name": "flexibleRollout",
                "constraints": [],
                "parameters": {"rollout": "25", "stickiness": "userId", "groupId": "new_checkout"}
            }]
        }]
    }))
    .expect("valid Unleash client features");
    let started = serde_json::from_value(json!("2026-01-01T00:00:00Z")).expect("valid timestamp");
    let engine = EngineState::initial_state(started);
    engine.apply_client_features(features);

    let ids: Vec<String> = (0..USERS).map(|i| format!("user-{i}")).collect();
    let ours_ctx: Vec<Context> = ids
        .iter()
        .map(|id| Context::new().with_attribute("userId", id.as_str()))
        .collect();
    let theirs_ctx: Vec<unleash_yggdrasil::Context> = ids
        .iter()
        .map(|id| unleash_yggdrasil::Context {
            user_id: Some(id.clone()),
            ..Default::default()
        })
        .collect();

    // Same answers first: a fast wrong engine is no benchmark.
    let ours_on = ours_ctx
        .iter()
        .filter(|ctx| flag.evaluate(ctx).expect("userId is present").value == Value::Bool(true))
        .count();
    let theirs_on = theirs_ctx
        .iter()
        .filter(|ctx| engine.is_enabled("new_checkout", ctx, &None))
        .count();
    assert_eq!(
        ours_on, theirs_on,
        "golive-flags enables {ours_on} users, yggdrasil {theirs_on}"
    );

    let ours = || {
        for ctx in &ours_ctx {
            let _ = black_box(black_box(&flag).evaluate(black_box(ctx)));
        }
    };
    let theirs = || {
        for ctx in &theirs_ctx {
            black_box(black_box(&engine).is_enabled(
                black_box("new_checkout"),
                black_box(ctx),
                &None,
            ));
        }
    };
    // Warm caches and the allocator before timing either.
    time(ours);
    time(theirs);
    // Interleaved, so that drift in the machine's speed hits both alike.
    let mut ours_ns = Vec::with_capacity(RUNS);
    let mut theirs_ns = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        ours_ns.push(time(ours));
        theirs_ns.push(time(theirs));
    }
    let ours_median = median(ours_ns);
    let theirs_median = median(theirs_ns);
    println!("{USERS} users, 25% rollout on userId, {ours_on} enabled by both engines");
    println!("golive-flags: {ours_median:.1} ns/eval (median of {RUNS})");
    println!("unleash-yggdrasil: {theirs_median:.1} ns/eval (median of {RUNS})");
    println!(
        "ratio golive-flags / unleash-yggdrasil: {:.2}",
        ours_median / theirs_median
    );
}

/// Nanoseconds per evaluation over `PASSES` passes of `pass`.
fn time(pass: impl Fn()) -> f64 {
    let start = Instant::now();
    for _ in 0..PASSES {
        pass();
    }
    start.elapsed().as_nanos() as f64 / (PASSES * USERS) as f64
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
