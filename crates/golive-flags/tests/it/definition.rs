//! Flag definitions: parsing, validation messages (with field paths),
//! canonical output and round trips.

use golive_flags::{Flag, FlagError, FlagKind};
use serde_json::{Value, json};

fn problems(value: Value) -> Vec<String> {
    match Flag::from_json(&value) {
        Ok(flag) => panic!("accepted {value}: {flag:?}"),
        Err(FlagError::Invalid(problems)) => problems,
        Err(other) => panic!("unexpected error {other}"),
    }
}

fn assert_problem(problems: &[String], expected: &str) {
    assert!(
        problems.iter().any(|p| p == expected),
        "expected problem {expected:?} in {problems:#?}"
    );
}

fn full() -> Value {
    json!({
        "flag": "new_checkout",
        "enabled": true,
        "description": "the new checkout",
        "percentage": 25,
        "stickiness": "userId",
        "group_id": "checkout",
        "variants": [
            {"name": "blue", "value": "#00f", "weight": 50},
            {"name": "green", "value": "#0f0", "weight": 50}
        ],
        "default_variant": "blue",
        "targeting": {
            "include": ["user-1"],
            "exclude": ["user-2"],
            "rules": [
                {"attribute": "country", "op": "in", "values": ["NZ", "AU"]},
                {"attribute": "age", "op": "gt", "value": 17}
            ]
        }
    })
}

#[test]
fn documented_minimal_shape() {
    let flag =
        Flag::from_json(&json!({"flag": "maintenance_mode", "enabled": true, "percentage": 5}))
            .expect("valid");
    assert_eq!(flag.key().as_str(), "maintenance_mode");
    assert!(flag.enabled());
    assert_eq!(flag.percentage(), Some(5.0));
    assert_eq!(flag.kind(), FlagKind::Boolean);
    assert_eq!(flag.stickiness(), "targetingKey");
    assert_eq!(flag.group(), "maintenance_mode");
    assert!(flag.variants().is_empty());
    assert!(flag.default_variant().is_none());
}

#[test]
fn full_definition_parses_and_is_canonical() {
    let flag = Flag::from_json(&full()).expect("valid");
    assert_eq!(flag.kind(), FlagKind::String);
    assert_eq!(flag.description(), Some("the new checkout"));
    assert_eq!(flag.stickiness(), "userId");
    assert_eq!(flag.group(), "checkout");
    assert_eq!(flag.variants().len(), 2);
    assert_eq!(flag.variants()[1].name(), "green");
    assert_eq!(flag.variants()[1].value(), &json!("#0f0"));
    assert_eq!(flag.variants()[1].weight(), 50);
    assert_eq!(flag.default_variant().map(|v| v.name()), Some("blue"));
    // The full example is already canonical.
    assert_eq!(flag.to_json(), full());
    assert_eq!(Flag::from_json(&flag.to_json()).expect("round trip"), flag);
}

#[test]
fn key_alias_and_canonical_form() {
    let flag = Flag::from_json(&json!({
        "key": "k", "enabled": false, "description": null, "percentage": 12.5,
        "targeting": {"include": [], "rules": []}
    }))
    .expect("valid");
    assert_eq!(
        flag.to_json(),
        json!({"flag": "k", "enabled": false, "percentage": 12.5})
    );
    let same =
        Flag::from_json(&json!({"flag": "k", "key": "k", "enabled": false, "percentage": 12.5}))
            .expect("flag and key may both be given when equal");
    assert_eq!(same, flag);
    assert_problem(
        &problems(json!({"flag": "a", "key": "b", "enabled": true})),
        "key: give the key once, as \"flag\" (or its alias \"key\"), not both",
    );
}

#[test]
fn round_trips() {
    let cases = [
        full(),
        json!({"flag": "a", "enabled": true}),
        json!({"flag": "a", "enabled": true, "percentage": 0.01}),
        json!({"flag": "a", "enabled": true, "percentage": 12.34}),
        json!({"flag": "a", "enabled": true, "percentage": 99.99}),
        json!({"flag": "a", "enabled": true, "percentage": 100.0}),
        json!({"flag": "a", "enabled": true, "variants": [
            {"name": "x", "value": {"a": [1, 2]}, "weight": 0},
            {"name": "y", "value": {}, "weight": 3}
        ], "default_variant": "x"}),
        json!({"flag": "a", "enabled": true, "variants": [
            {"name": "on", "value": true, "weight": 1}, {"name": "off", "value": false, "weight": 1}
        ], "default_variant": "off"}),
        json!({"flag": "a", "enabled": true, "targeting": {"rules": [
            {"attribute": "plan", "op": "eq", "value": "pro"},
            {"attribute": "email", "op": "ends_with", "values": ["@example.com"]},
            {"attribute": "beta", "op": "neq", "value": false},
            {"attribute": "age", "op": "lt", "value": 65.5}
        ]}}),
    ];
    for case in cases {
        let flag = Flag::from_json(&case).expect("valid");
        let again = Flag::from_json(&flag.to_json()).expect("canonical form is valid");
        assert_eq!(again, flag, "{case}");
        assert_eq!(again.to_json(), flag.to_json(), "{case}");
    }
    let exact = Flag::from_json(&json!({"flag": "a", "enabled": true, "percentage": 12.34}))
        .expect("valid");
    assert_eq!(exact.percentage(), Some(12.34));
    let integral = Flag::from_json(&json!({"flag": "a", "enabled": true, "percentage": 100.0}))
        .expect("valid");
    assert_eq!(integral.to_json()["percentage"], json!(100));
}

#[test]
fn serde_goes_through_validation() {
    let flag: Flag = serde_json::from_value(full()).expect("valid");
    assert_eq!(serde_json::to_value(&flag).expect("serializes"), full());
    let err = serde_json::from_value::<Flag>(json!({"flag": "a"})).expect_err("invalid");
    assert!(err.to_string().contains("enabled: required"), "{err}");
}

#[test]
fn percentage_problems() {
    let base = |p: Value| json!({"flag": "a", "enabled": true, "percentage": p});
    assert_eq!(
        problems(base(json!(120))),
        ["percentage: must be between 0 and 100 (got 120)"]
    );
    assert_eq!(
        problems(base(json!(-1))),
        ["percentage: must be between 0 and 100 (got -1)"]
    );
    assert_eq!(
        problems(base(json!(12.345))),
        ["percentage: must have at most 2 decimals, i.e. 0.01 % steps (got 12.345)"]
    );
    assert_eq!(
        problems(base(json!("25"))),
        ["percentage: must be a number between 0 and 100 (got \"25\")"]
    );
}

#[test]
fn required_fields_and_types() {
    let found = problems(json!({}));
    assert_problem(&found, "flag: required");
    assert_problem(&found, "enabled: required");
    let found = problems(json!({"flag": 5, "enabled": "yes"}));
    assert_problem(&found, "flag: must be a string (got 5)");
    assert_problem(&found, "enabled: must be a boolean (got \"yes\")");
    assert_problem(
        &problems(json!({"flag": "has space", "enabled": true})),
        "flag: may only contain letters, digits, '_', '.', ':' and '-' (got ' ')",
    );
    let found = problems(json!({"flag": "a", "enabled": true, "stickiness": "", "group_id": 3}));
    assert_problem(&found, "stickiness: must be a non-empty string (got \"\")");
    assert_problem(&found, "group_id: must be a non-empty string (got 3)");
    assert_eq!(
        problems(json!(["not", "an", "object"])),
        ["flag definition must be a JSON object (got an array)"]
    );
    let long = "d".repeat(4097);
    assert_problem(
        &problems(json!({"flag": "a", "enabled": true, "description": long})),
        "description: at most 4096 bytes (got 4097)",
    );
    let most = "d".repeat(4096);
    Flag::from_json(&json!({"flag": "a", "enabled": true, "description": most}))
        .expect("4096 bytes are kept");
}

#[test]
fn unknown_fields_are_named() {
    let found = problems(json!({
        "flag": "a", "enabled": true, "colour": "red",
        "variants": [{"name": "x", "value": 1, "weight": 1, "wieght": 2}],
        "default_variant": "x",
        "targeting": {"inclde": ["u"], "rules": [{"attribute": "a", "op": "eq", "value": 1, "negate": true}]}
    }));
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("colour: unknown field (expected one of: flag, key, enabled"))
    );
    assert!(found.iter().any(|p| {
        p.starts_with("variants[0].wieght: unknown field (expected one of: name, value, weight)")
    }));
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("targeting.inclde: unknown field"))
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("targeting.rules[0].negate: unknown field"))
    );
}

#[test]
fn variant_problems_are_reported_with_their_paths() {
    let found = problems(json!({
        "flag": "a", "enabled": true,
        "variants": [
            {"name": "blue", "value": "#00f", "weight": 50},
            {"name": "blue", "value": 7, "weight": -5},
            {"name": "", "value": null, "weight": 1.5},
            {"value": [1], "weight": "ten"},
            "green"
        ],
        "default_variant": "red"
    }));
    for expected in [
        "variants[1].name: duplicate variant name \"blue\"",
        "variants[1].value: is an integer but variants[0].value is a string; all variant values must have the same type",
        "variants[1].weight: must be a non-negative integer (got -5)",
        "variants[2].name: must be 1 to 128 characters",
        "variants[2].value: must be a boolean, string, number or object (got null)",
        "variants[2].weight: must be a non-negative integer (got 1.5)",
        "variants[3].name: required",
        "variants[3].value: must be a boolean, string, number or object (got an array)",
        "variants[3].weight: must be a non-negative integer (got \"ten\")",
        "variants[4]: must be an object (got \"green\")",
    ] {
        assert_problem(&found, expected);
    }
    assert_eq!(found.len(), 10, "{found:#?}");
}

#[test]
fn integer_and_float_variants_do_not_mix() {
    assert_problem(
        &problems(
            json!({"flag": "a", "enabled": true, "default_variant": "one", "variants": [
                {"name": "one", "value": 1, "weight": 1}, {"name": "half", "value": 0.5, "weight": 1}
            ]}),
        ),
        "variants[1].value: is a float but variants[0].value is an integer; all variant values must have the same type",
    );
    let float = Flag::from_json(
        &json!({"flag": "a", "enabled": true, "default_variant": "one", "variants": [
            {"name": "one", "value": 1.0, "weight": 1}, {"name": "half", "value": 0.5, "weight": 1}
        ]}),
    )
    .expect("valid");
    assert_eq!(float.kind(), FlagKind::Float);
}

#[test]
fn default_variant_rules() {
    let variants =
        json!([{"name": "x", "value": 1, "weight": 1}, {"name": "y", "value": 2, "weight": 1}]);
    assert_eq!(
        problems(json!({"flag": "a", "enabled": true, "variants": variants})),
        ["default_variant: required when \"variants\" is given"]
    );
    assert_eq!(
        problems(
            json!({"flag": "a", "enabled": true, "variants": variants, "default_variant": "z"})
        ),
        ["default_variant: \"z\" is not one of the variants (x, y)"]
    );
    assert_eq!(
        problems(json!({"flag": "a", "enabled": true, "default_variant": "x"})),
        ["default_variant: only allowed together with \"variants\""]
    );
    assert_eq!(
        problems(json!({"flag": "a", "enabled": true, "variants": [], "default_variant": "x"})),
        ["variants: must not be empty (leave it out for a boolean flag)"]
    );
    assert_eq!(
        problems(
            json!({"flag": "a", "enabled": true, "default_variant": "x", "variants": [
                {"name": "x", "value": 1, "weight": 0}
            ]})
        ),
        ["variants: the weights must add up to more than 0"]
    );
    let integer = Flag::from_json(
        &json!({"flag": "a", "enabled": true, "variants": variants, "default_variant": "y"}),
    )
    .expect("valid");
    assert_eq!(integer.kind(), FlagKind::Integer);
}

#[test]
fn targeting_problems() {
    let found = problems(json!({"flag": "a", "enabled": true, "targeting": {
        "include": ["ok", "", 3],
        "exclude": "user-2",
        "rules": [
            {"attribute": "country", "op": "in", "values": []},
            {"attribute": "", "op": "like", "value": "x"},
            {"attribute": "age", "op": "gt", "value": "18"},
            {"attribute": "plan", "op": "eq", "values": ["pro"]},
            {"attribute": "email", "op": "starts_with", "values": ["a", 1]},
            {"op": "in"},
            7
        ]
    }}));
    for expected in [
        "targeting.include[1]: must be a non-empty targeting key string (got \"\")",
        "targeting.include[2]: must be a non-empty targeting key string (got 3)",
        "targeting.exclude: must be an array of targeting keys (got \"user-2\")",
        "targeting.rules[0].values: must not be empty",
        "targeting.rules[1].attribute: must be a non-empty string (got \"\")",
        "targeting.rules[1].op: unknown operator \"like\" (expected one of: in, not_in, eq, neq, starts_with, ends_with, gt, lt)",
        "targeting.rules[2].value: must be a number for op \"gt\" (got \"18\")",
        "targeting.rules[3].values: not used by op \"eq\"; give \"value\"",
        "targeting.rules[3].value: required for op \"eq\"",
        "targeting.rules[4].values[1]: must be a string for op \"starts_with\" (got 1)",
        "targeting.rules[5].attribute: required",
        "targeting.rules[5].values: required for op \"in\"",
        "targeting.rules[6]: must be an object {\"attribute\", \"op\", \"values\" or \"value\"} (got 7)",
    ] {
        assert_problem(&found, expected);
    }
    assert_eq!(found.len(), 13, "{found:#?}");
}

#[test]
fn several_problems_at_once_and_display_lists_them_all() {
    let err = Flag::from_json(&json!({
        "flag": "a", "enabled": 1, "percentage": 120,
        "variants": [{"name": "x", "value": 1, "weight": 1}, {"name": "y", "value": 2, "weight": -1}],
        "default_variant": "x"
    }))
    .expect_err("invalid");
    let FlagError::Invalid(found) = &err else {
        panic!("unexpected error {err}");
    };
    assert_eq!(
        found,
        &[
            "enabled: must be a boolean (got 1)",
            "percentage: must be between 0 and 100 (got 120)",
            "variants[1].weight: must be a non-negative integer (got -1)",
        ]
    );
    let shown = err.to_string();
    for problem in found {
        assert!(shown.contains(problem.as_str()), "{shown}");
    }
    assert_eq!(err.problems(), *found);
}
