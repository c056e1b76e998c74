//! `Flag::apply`: partial admin updates.

use golive_flags::{Flag, FlagError};
use serde_json::{Value, json};

fn base() -> Flag {
    Flag::from_json(&json!({
        "flag": "new_checkout",
        "enabled": true,
        "description": "the new checkout",
        "percentage": 25,
        "targeting": {"include": ["u1"], "rules": [{"attribute": "country", "op": "eq", "value": "NZ"}]}
    }))
    .expect("valid flag")
}

fn applied(patch: Value) -> Value {
    base().apply(&patch).expect("valid update").to_json()
}

#[test]
fn changes_only_the_given_fields() {
    let mut expected = base().to_json();
    expected["percentage"] = json!(50);
    assert_eq!(applied(json!({"percentage": 50})), expected);

    let mut expected = base().to_json();
    expected["enabled"] = json!(false);
    expected["stickiness"] = json!("userId");
    assert_eq!(
        applied(json!({"enabled": false, "stickiness": "userId"})),
        expected
    );
    assert_eq!(applied(json!({})), base().to_json());
}

#[test]
fn null_removes_an_optional_field() {
    let mut expected = base().to_json();
    expected
        .as_object_mut()
        .expect("an object")
        .remove("description");
    assert_eq!(applied(json!({"description": null})), expected);
    let everyone = base().apply(&json!({"percentage": null})).expect("valid");
    assert_eq!(everyone.percentage(), None);
}

#[test]
fn nested_objects_merge_and_arrays_replace() {
    let patched = applied(json!({"targeting": {"exclude": ["u9"], "include": ["u2", "u3"]}}));
    assert_eq!(
        patched["targeting"],
        json!({
            "include": ["u2", "u3"],
            "exclude": ["u9"],
            "rules": [{"attribute": "country", "op": "eq", "value": "NZ"}]
        })
    );
    let patched = applied(json!({"targeting": {"rules": null}}));
    assert_eq!(patched["targeting"], json!({"include": ["u1"]}));
    let patched = applied(json!({"targeting": null}));
    assert!(patched.get("targeting").is_none());
}

#[test]
fn key_cannot_change() {
    let err = base()
        .apply(&json!({"flag": "other", "enabled": false}))
        .expect_err("key change");
    assert_eq!(
        err,
        FlagError::KeyChange {
            current: "new_checkout".parse().expect("valid key"),
            requested: "other".into()
        }
    );
    assert!(err.to_string().contains("cannot be changed"), "{err}");
    assert!(matches!(
        base().apply(&json!({"key": "other"})),
        Err(FlagError::KeyChange { .. })
    ));
    // Repeating the key is fine.
    let same = base()
        .apply(&json!({"flag": "new_checkout", "key": "new_checkout", "percentage": 30}))
        .expect("same key");
    assert_eq!(same.percentage(), Some(30.0));
    let err = base()
        .apply(&json!({"flag": null}))
        .expect_err("key removal");
    assert_eq!(
        err.problems(),
        ["flag: the key cannot be removed or changed (got null)"]
    );
}

#[test]
fn result_is_validated() {
    let err = base()
        .apply(&json!({"percentage": 250, "colour": "red", "enabled": null}))
        .expect_err("invalid");
    let FlagError::Invalid(problems) = err else {
        panic!("unexpected error {err}");
    };
    assert!(problems.contains(&"percentage: must be between 0 and 100 (got 250)".to_owned()));
    assert!(problems.contains(&"enabled: required".to_owned()));
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("colour: unknown field"))
    );
    assert!(matches!(
        base().apply(&json!([])),
        Err(FlagError::Invalid(p)) if p == ["update must be a JSON object (got an array)"]
    ));
}

#[test]
fn adding_and_removing_variants() {
    let with_variants = base()
        .apply(&json!({
            "variants": [{"name": "a", "value": "x", "weight": 1}, {"name": "b", "value": "y", "weight": 1}],
            "default_variant": "a"
        }))
        .expect("valid");
    assert_eq!(with_variants.variants().len(), 2);
    // Removing the variants alone leaves a dangling default_variant.
    let err = with_variants
        .apply(&json!({"variants": null}))
        .expect_err("dangling default");
    assert_eq!(
        err.problems(),
        ["default_variant: only allowed together with \"variants\""]
    );
    let plain = with_variants
        .apply(&json!({"variants": null, "default_variant": null}))
        .expect("valid");
    assert_eq!(plain, base());
}
