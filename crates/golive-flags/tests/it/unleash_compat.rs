//! Our percentage rollout enables exactly the users that Unleash's own
//! engine (yggdrasil) enables for a `flexibleRollout` strategy with the
//! same group id and stickiness.

use std::collections::BTreeSet;

use golive_flags::{Context, Flag, Reason};
use serde_json::json;
use unleash_yggdrasil::{ClientFeatures, EngineState};

const USERS: usize = 10_000;

fn unleash_engine(rollout: u32) -> EngineState {
    // Built from JSON, as the Unleash server sends it, so that the test
    // needs neither unleash-types nor chrono as direct dependencies.
    let features: ClientFeatures = serde_json::from_value(json!({
        "version": 2,
        "features": [{
            "name": "new_checkout",
            "enabled": true,
            "strategies": [{
                "name": "flexibleRollout",
                "constraints": [],
                "parameters": {
                    "rollout": rollout.to_string(),
                    "stickiness": "userId",
                    "groupId": "new_checkout"
                }
            }]
        }]
    }))
    .expect("valid Unleash client features");
    let started = serde_json::from_value(json!("2026-01-01T00:00:00Z")).expect("valid timestamp");
    let engine = EngineState::initial_state(started);
    let warnings = engine.apply_client_features(features);
    assert!(
        warnings.is_none_or(|w| w.is_empty()),
        "yggdrasil compiled the feature with warnings"
    );
    engine
}

fn golive_flag(percentage: u32) -> Flag {
    Flag::from_json(&json!({
        "flag": "new_checkout",
        "enabled": true,
        "percentage": percentage,
        "stickiness": "userId",
    }))
    .expect("valid flag")
}

fn user_id(i: usize) -> String {
    // Mixed shapes: numeric ids, uuid-like ids, emails.
    match i % 3 {
        0 => format!("{i}"),
        1 => format!("{:08x}-4b1d-{i:04}", i.wrapping_mul(2_654_435_761)),
        _ => format!("user{i}@example.com"),
    }
}

#[test]
fn same_users_enabled_as_unleash_flexible_rollout() {
    for percentage in [1, 5, 25, 50, 99] {
        let engine = unleash_engine(percentage);
        let flag = golive_flag(percentage);
        let mut theirs = BTreeSet::new();
        let mut ours = BTreeSet::new();
        for i in 0..USERS {
            let id = user_id(i);
            let unleash_ctx = unleash_yggdrasil::Context {
                user_id: Some(id.clone()),
                ..Default::default()
            };
            if engine.is_enabled("new_checkout", &unleash_ctx, &None) {
                theirs.insert(id.clone());
            }
            let ctx = Context::new().with_attribute("userId", id.as_str());
            let evaluation = flag.evaluate(&ctx).expect("userId is present");
            assert_eq!(evaluation.reason, Reason::Split);
            if evaluation.value == json!(true) {
                ours.insert(id);
            }
        }
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{percentage}%: we enable {} users, Unleash {}",
            ours.len(),
            theirs.len()
        );
        assert_eq!(ours, theirs, "{percentage}%: different users enabled");
        let share = ours.len() as f64 / USERS as f64 * 100.0;
        assert!(
            (share - f64::from(percentage)).abs() < 2.0,
            "{percentage}%: {share}% enabled"
        );
    }
}

/// Without `group_id`, the group is the flag key, as Unleash's `groupId`
/// defaults to the feature name.
#[test]
fn default_group_is_the_flag_key() {
    let implicit = golive_flag(30);
    let explicit = Flag::from_json(&json!({
        "flag": "new_checkout", "enabled": true, "percentage": 30, "stickiness": "userId",
        "group_id": "new_checkout"
    }))
    .expect("valid flag");
    assert_eq!(implicit.group(), "new_checkout");
    for i in 0..2_000 {
        let ctx = Context::new().with_attribute("userId", user_id(i));
        assert_eq!(
            implicit.evaluate(&ctx).expect("evaluates").value,
            explicit.evaluate(&ctx).expect("evaluates").value
        );
    }
}
