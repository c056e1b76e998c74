//! Evaluation: each step of the procedure and its reason, variants,
//! stickiness, and OFREP contexts.

use std::collections::HashMap;

use golive_flags::{Context, EvalError, Evaluation, Flag, Reason, bucket};
use serde_json::{Value, json};

fn flag(value: Value) -> Flag {
    Flag::from_json(&value).expect("valid flag")
}

fn eval(flag: &Flag, ctx: &Context) -> Evaluation {
    flag.evaluate(ctx).expect("evaluates")
}

fn boolean(on: bool, reason: Reason) -> Evaluation {
    Evaluation {
        value: Value::Bool(on),
        variant: Some(if on { "on" } else { "off" }.to_owned()),
        reason,
    }
}

fn user(id: &str) -> Context {
    Context::with_targeting_key(id)
}

/// A user id whose bucket in `group` is on at `percentage`, or off.
fn find_user(group: &str, percentage: f64, on: bool) -> String {
    let threshold = (percentage * 100.0).round() as u32;
    (0..)
        .map(|i| format!("user-{i}"))
        .find(|id| (bucket(group, id) < threshold) == on)
        .expect("some user falls on each side")
}

#[test]
fn disabled_flag_is_off() {
    let f = flag(json!({"flag": "f", "enabled": false, "targeting": {"include": ["u1"]}}));
    assert_eq!(eval(&f, &user("u1")), boolean(false, Reason::Disabled));
    assert_eq!(eval(&f, &Context::new()), boolean(false, Reason::Disabled));
}

#[test]
fn plain_enabled_flag_is_static() {
    let f = flag(json!({"flag": "f", "enabled": true}));
    assert_eq!(eval(&f, &Context::new()), boolean(true, Reason::Static));
    let full = flag(json!({"flag": "f", "enabled": true, "percentage": 100}));
    assert_eq!(eval(&full, &Context::new()), boolean(true, Reason::Static));
}

#[test]
fn include_and_exclude_lists() {
    let f = flag(
        json!({"flag": "f", "enabled": true, "percentage": 0, "targeting": {
            "include": ["u1", "both"], "exclude": ["u2", "both"],
            "rules": [{"attribute": "country", "op": "eq", "value": "NZ"}]
        }}),
    );
    assert_eq!(eval(&f, &user("u1")), boolean(true, Reason::TargetingMatch));
    assert_eq!(
        eval(&f, &user("u2")),
        boolean(false, Reason::TargetingMatch)
    );
    assert_eq!(
        eval(&f, &user("both")),
        boolean(false, Reason::TargetingMatch)
    );
    let nz = user("u2").with_attribute("country", "NZ");
    assert_eq!(eval(&f, &nz), boolean(false, Reason::TargetingMatch));
    assert_eq!(eval(&f, &user("u3")), boolean(false, Reason::Default));
}

#[test]
fn rules_must_all_match() {
    let f = flag(
        json!({"flag": "f", "enabled": true, "targeting": {"rules": [
            {"attribute": "country", "op": "in", "values": ["NZ", "AU"]},
            {"attribute": "age", "op": "gt", "value": 17}
        ]}}),
    );
    let both = Context::new()
        .with_attribute("country", "NZ")
        .with_attribute("age", 30);
    assert_eq!(eval(&f, &both), boolean(true, Reason::TargetingMatch));
    let one = Context::new()
        .with_attribute("country", "NZ")
        .with_attribute("age", 12);
    assert_eq!(eval(&f, &one), boolean(false, Reason::Default));
    let missing = Context::new().with_attribute("country", "AU");
    assert_eq!(eval(&f, &missing), boolean(false, Reason::Default));
}

#[test]
fn each_operator() {
    let cases: &[(Value, Value, bool)] = &[
        (
            json!({"op": "in", "values": ["NZ", "AU"]}),
            json!("AU"),
            true,
        ),
        (
            json!({"op": "in", "values": ["NZ", "AU"]}),
            json!("US"),
            false,
        ),
        (json!({"op": "in", "values": [1, 2]}), json!(2.0), true),
        (json!({"op": "in", "values": ["2"]}), json!(2), false),
        (json!({"op": "not_in", "values": ["NZ"]}), json!("US"), true),
        (
            json!({"op": "not_in", "values": ["NZ"]}),
            json!("NZ"),
            false,
        ),
        (json!({"op": "eq", "value": "pro"}), json!("pro"), true),
        (json!({"op": "eq", "value": "pro"}), json!("Pro"), false),
        (json!({"op": "eq", "value": true}), json!(true), true),
        (json!({"op": "neq", "value": "pro"}), json!("free"), true),
        (json!({"op": "neq", "value": "pro"}), json!("pro"), false),
        (
            json!({"op": "starts_with", "values": ["admin@", "ops@"]}),
            json!("ops@x.io"),
            true,
        ),
        (
            json!({"op": "starts_with", "values": ["admin@"]}),
            json!("x@admin"),
            false,
        ),
        (
            json!({"op": "ends_with", "values": ["@example.com"]}),
            json!("a@example.com"),
            true,
        ),
        (
            json!({"op": "ends_with", "values": ["@example.com"]}),
            json!(5),
            false,
        ),
        (json!({"op": "gt", "value": 18}), json!(18.5), true),
        (json!({"op": "gt", "value": 18}), json!(18), false),
        (json!({"op": "gt", "value": 18}), json!("21"), true),
        (json!({"op": "gt", "value": 18}), json!("old"), false),
        (json!({"op": "lt", "value": 2.5}), json!(2), true),
        (json!({"op": "lt", "value": 2.5}), json!(3), false),
    ];
    for (rule, attribute, expected) in cases {
        let mut rule = rule.clone();
        rule["attribute"] = json!("a");
        let f = flag(json!({"flag": "f", "enabled": true, "targeting": {"rules": [rule]}}));
        let ctx = Context::new().with_attribute("a", attribute.clone());
        assert_eq!(
            eval(&f, &ctx).value,
            json!(*expected),
            "{rule} on {attribute}"
        );
    }
}

#[test]
fn missing_attribute_matches_only_negative_rules() {
    for (op, operand, expected) in [
        ("in", json!({"values": ["x"]}), false),
        ("not_in", json!({"values": ["x"]}), true),
        ("eq", json!({"value": "x"}), false),
        ("neq", json!({"value": "x"}), true),
        ("starts_with", json!({"values": ["x"]}), false),
        ("ends_with", json!({"values": ["x"]}), false),
        ("gt", json!({"value": 1}), false),
        ("lt", json!({"value": 1}), false),
    ] {
        let mut rule = operand;
        rule["attribute"] = json!("plan");
        rule["op"] = json!(op);
        let f = flag(json!({"flag": "f", "enabled": true, "targeting": {"rules": [rule]}}));
        let absent = eval(&f, &Context::new());
        let null = eval(&f, &Context::new().with_attribute("plan", Value::Null));
        assert_eq!(absent.value, json!(expected), "{op} on a missing attribute");
        assert_eq!(null, absent, "{op}: null counts as missing");
    }
}

#[test]
fn rule_on_the_targeting_key() {
    let f = flag(
        json!({"flag": "f", "enabled": true, "targeting": {"rules": [
            {"attribute": "targetingKey", "op": "starts_with", "values": ["staff-"]}
        ]}}),
    );
    assert_eq!(
        eval(&f, &user("staff-7")),
        boolean(true, Reason::TargetingMatch)
    );
    assert_eq!(eval(&f, &user("cust-7")), boolean(false, Reason::Default));
}

#[test]
fn percentage_split() {
    let f = flag(json!({"flag": "f", "enabled": true, "percentage": 25}));
    let on = find_user("f", 25.0, true);
    let off = find_user("f", 25.0, false);
    assert_eq!(eval(&f, &user(&on)), boolean(true, Reason::Split));
    assert_eq!(eval(&f, &user(&off)), boolean(false, Reason::Split));
    let share = (0..10_000)
        .filter(|i| eval(&f, &user(&format!("u{i}"))).value == json!(true))
        .count();
    assert!((2_300..=2_700).contains(&share), "{share} of 10000 at 25%");
}

#[test]
fn fractional_percentage() {
    let f = flag(json!({"flag": "f", "enabled": true, "percentage": 0.5}));
    let on = find_user("f", 0.5, true);
    assert_eq!(eval(&f, &user(&on)), boolean(true, Reason::Split));
    let share = (0..20_000)
        .filter(|i| eval(&f, &user(&format!("u{i}"))).value == json!(true))
        .count();
    assert!((50..=150).contains(&share), "{share} of 20000 at 0.5%");
}

#[test]
fn split_after_matching_rules() {
    let f = flag(
        json!({"flag": "f", "enabled": true, "percentage": 50, "targeting": {"rules": [
            {"attribute": "country", "op": "eq", "value": "NZ"}
        ]}}),
    );
    let on = find_user("f", 50.0, true);
    let nz = user(&on).with_attribute("country", "NZ");
    assert_eq!(eval(&f, &nz), boolean(true, Reason::Split));
    let us = user(&on).with_attribute("country", "US");
    assert_eq!(eval(&f, &us), boolean(false, Reason::Default));
    let full = flag(
        json!({"flag": "f", "enabled": true, "percentage": 100, "targeting": {"rules": [
            {"attribute": "country", "op": "eq", "value": "NZ"}
        ]}}),
    );
    let anonymous_nz = Context::new().with_attribute("country", "NZ");
    assert_eq!(
        eval(&full, &anonymous_nz),
        boolean(true, Reason::TargetingMatch)
    );
}

#[test]
fn zero_percent_needs_no_key() {
    let f = flag(json!({"flag": "f", "enabled": true, "percentage": 0}));
    assert_eq!(eval(&f, &Context::new()), boolean(false, Reason::Default));
    assert_eq!(eval(&f, &user("u1")), boolean(false, Reason::Default));
}

#[test]
fn split_without_key_is_an_error() {
    let f = flag(json!({"flag": "f", "enabled": true, "percentage": 25}));
    let err = f.evaluate(&Context::new()).expect_err("no key");
    assert_eq!(err, EvalError::TargetingKeyMissing);
    assert_eq!(err.code(), "TARGETING_KEY_MISSING");
    assert_eq!(
        f.evaluate(&user("")).expect_err("empty key"),
        EvalError::TargetingKeyMissing
    );
    // With a custom stickiness, the targeting key does not stand in.
    let sticky =
        flag(json!({"flag": "f", "enabled": true, "percentage": 25, "stickiness": "userId"}));
    assert_eq!(
        sticky.evaluate(&user("u1")).expect_err("no userId"),
        EvalError::TargetingKeyMissing
    );
}

#[test]
fn stickiness_on_a_custom_attribute() {
    let f = flag(
        json!({"flag": "f", "enabled": true, "percentage": 30, "stickiness": "accountId",
        "group_id": "accounts"}),
    );
    let on = find_user("accounts", 30.0, true);
    let off = find_user("accounts", 30.0, false);
    // Bucketed on accountId, whatever the targeting key.
    for key in ["a", "b", "c"] {
        let ctx = user(key).with_attribute("accountId", on.as_str());
        assert_eq!(eval(&f, &ctx), boolean(true, Reason::Split));
        let ctx = user(key).with_attribute("accountId", off.as_str());
        assert_eq!(eval(&f, &ctx), boolean(false, Reason::Split));
    }
    // Numbers are bucketed as their decimal text.
    let numeric = (0..)
        .find(|i: &u64| bucket("accounts", &i.to_string()) < 3_000)
        .expect("some account is on");
    let by_number = Context::new().with_attribute("accountId", numeric);
    let by_text = Context::new().with_attribute("accountId", numeric.to_string());
    assert_eq!(eval(&f, &by_number), boolean(true, Reason::Split));
    assert_eq!(eval(&f, &by_number), eval(&f, &by_text));
    // Other types cannot be bucketed.
    let err = f
        .evaluate(&Context::new().with_attribute("accountId", json!(["x"])))
        .expect_err("array stickiness");
    assert_eq!(err.code(), "INVALID_CONTEXT");
}

fn colours(percentage: Option<u32>) -> Flag {
    let mut definition = json!({"flag": "colours", "enabled": true, "stickiness": "userId",
        "variants": [
            {"name": "red", "value": "#f00", "weight": 20},
            {"name": "green", "value": "#0f0", "weight": 30},
            {"name": "blue", "value": "#00f", "weight": 50}
        ],
        "default_variant": "green",
        "targeting": {"exclude": ["banned"]}
    });
    if let Some(p) = percentage {
        definition["percentage"] = json!(p);
    }
    flag(definition)
}

#[test]
fn variants_follow_their_weights() {
    let f = colours(None);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..10_000 {
        let e = eval(
            &f,
            &Context::new().with_attribute("userId", format!("user-{i}")),
        );
        assert_eq!(e.reason, Reason::Split);
        let name = e.variant.expect("a variant");
        let expected = match name.as_str() {
            "red" => "#f00",
            "green" => "#0f0",
            _ => "#00f",
        };
        assert_eq!(e.value, json!(expected));
        *counts.entry(name).or_default() += 1;
    }
    for (name, weight) in [("red", 20.0), ("green", 30.0), ("blue", 50.0)] {
        let share = counts.get(name).copied().unwrap_or(0) as f64 / 100.0;
        assert!(
            (share - weight).abs() <= 3.0,
            "{name}: {share}% for weight {weight}%"
        );
    }
}

#[test]
fn variant_pick_is_sticky() {
    let f = colours(None);
    for i in 0..100 {
        let ctx = Context::new().with_attribute("userId", format!("user-{i}"));
        let first = eval(&f, &ctx);
        for _ in 0..3 {
            assert_eq!(eval(&f, &ctx), first);
        }
    }
}

#[test]
fn variant_flag_off_serves_the_default_variant() {
    let green = |reason| Evaluation {
        value: json!("#0f0"),
        variant: Some("green".into()),
        reason,
    };
    let disabled = colours(None)
        .apply(&json!({"enabled": false}))
        .expect("valid update");
    assert_eq!(eval(&disabled, &Context::new()), green(Reason::Disabled));
    let f = colours(Some(10));
    assert_eq!(eval(&f, &user("banned")), green(Reason::TargetingMatch));
    let off = find_user("colours", 10.0, false);
    let ctx = Context::new().with_attribute("userId", off.as_str());
    assert_eq!(eval(&f, &ctx), green(Reason::Split));
    let zero = colours(Some(0));
    assert_eq!(eval(&zero, &Context::new()), green(Reason::Default));
    // Fully on but nothing to pick with: the default variant, no error.
    assert_eq!(
        eval(&colours(None), &Context::new()),
        green(Reason::Default)
    );
    // A split still needs the stickiness value.
    assert_eq!(
        f.evaluate(&Context::new()).expect_err("no userId"),
        EvalError::TargetingKeyMissing
    );
}

#[test]
fn variant_flag_on_by_split_picks_by_weight() {
    let f = colours(Some(10));
    let on = find_user("colours", 10.0, true);
    let ctx = Context::new().with_attribute("userId", on.as_str());
    let e = eval(&f, &ctx);
    assert_eq!(e.reason, Reason::Split);
    assert_eq!(e, eval(&colours(None), &ctx), "same pick as when fully on");
}

#[test]
fn single_weighted_variant_needs_no_id() {
    let f = flag(json!({"flag": "f", "enabled": true,
        "variants": [{"name": "old", "value": 1, "weight": 0}, {"name": "new", "value": 2, "weight": 5}],
        "default_variant": "old"}));
    let e = eval(&f, &Context::new());
    assert_eq!(
        e,
        Evaluation {
            value: json!(2),
            variant: Some("new".into()),
            reason: Reason::Static
        }
    );
}

#[test]
fn boolean_variants() {
    let f = flag(json!({"flag": "f", "enabled": true,
        "variants": [{"name": "yes", "value": true, "weight": 1}, {"name": "no", "value": false, "weight": 1}],
        "default_variant": "no"}));
    let values: Vec<Value> = (0..200)
        .map(|i| eval(&f, &user(&format!("u{i}"))).value)
        .collect();
    assert!(values.contains(&json!(true)) && values.contains(&json!(false)));
}

#[test]
fn ofrep_context() {
    let ctx = Context::from_ofrep(&json!({"targetingKey": "u1", "country": "NZ", "age": 30}))
        .expect("valid context");
    assert_eq!(ctx.targeting_key.as_deref(), Some("u1"));
    assert_eq!(ctx.attributes.get("country"), Some(&json!("NZ")));
    assert_eq!(ctx.attributes.get("age"), Some(&json!(30)));
    assert!(!ctx.attributes.contains_key("targetingKey"));

    let anonymous = Context::from_ofrep(&json!({"country": "NZ"})).expect("valid context");
    assert_eq!(anonymous.targeting_key, None);

    for bad in [
        json!({"targetingKey": 42}),
        json!({"targetingKey": null}),
        json!([1]),
        json!("u1"),
    ] {
        let err = Context::from_ofrep(&bad).expect_err("invalid context");
        assert!(matches!(err, EvalError::InvalidContext(_)), "{bad}");
        assert_eq!(err.code(), "INVALID_CONTEXT");
    }
}

#[test]
fn evaluation_serializes_as_ofrep() {
    let f = flag(json!({"flag": "f", "enabled": true}));
    let e = eval(&f, &Context::new());
    assert_eq!(
        serde_json::to_value(&e).expect("serializes"),
        json!({"value": true, "variant": "on", "reason": "STATIC"})
    );
    for (reason, name) in [
        (Reason::Static, "STATIC"),
        (Reason::TargetingMatch, "TARGETING_MATCH"),
        (Reason::Split, "SPLIT"),
        (Reason::Disabled, "DISABLED"),
        (Reason::Default, "DEFAULT"),
    ] {
        assert_eq!(reason.as_str(), name);
        assert_eq!(reason.to_string(), name);
        assert_eq!(
            serde_json::to_value(reason).expect("serializes"),
            json!(name)
        );
    }
}
