//! The OpenFeature Rust SDK's own OFREP provider (`open-feature-ofrep`),
//! unchanged, against a golive server: booleans, strings, numbers and
//! objects resolve, sticky percentages hold, and errors map to the SDK's
//! codes.

use std::time::Duration;

use golive_store::Store;
use open_feature::EvaluationContext;
use open_feature::provider::FeatureProvider;
use open_feature_ofrep::{OfrepOptions, OfrepProvider};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::util::{Db, TestServer, fast_config, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openfeature_ofrep_provider_reads_golive_flags() {
    let db = Db::sqlite();
    let store = db.open().await;
    let operator = token(&store, "otto", "operator", None).await;
    let client = token(&store, "checkout-service", "viewer", None).await;
    store.close().await;
    let server = TestServer::start(&db, fast_config()).await;
    let o = Some(operator.as_str());
    for body in [
        json!({"flag": "maintenance_mode", "enabled": true}),
        json!({"flag": "new_checkout", "enabled": true, "percentage": 25}),
        json!({"flag": "banner", "enabled": true, "variants": [{"name": "xmas", "value": "Happy holidays", "weight": 1}], "default_variant": "xmas"}),
        json!({"flag": "max_items", "enabled": true, "variants": [{"name": "ten", "value": 10, "weight": 1}], "default_variant": "ten"}),
        json!({"flag": "ratio", "enabled": true, "variants": [{"name": "half", "value": 0.5, "weight": 1}], "default_variant": "half"}),
    ] {
        let (s, v) = server
            .call("POST", "/api/admin/feature-flags", o, Some(body))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {client}")).expect("header"),
    );
    let provider = OfrepProvider::new(OfrepOptions {
        base_url: server.base.clone(),
        headers,
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .await
    .expect("provider");
    let ctx = |key: &str| EvaluationContext::default().with_targeting_key(key);

    let on = provider
        .resolve_bool_value("maintenance_mode", &ctx("u1"))
        .await
        .expect("bool");
    assert!(on.value);
    let banner = provider
        .resolve_string_value("banner", &ctx("u1"))
        .await
        .expect("string");
    assert_eq!(banner.value, "Happy holidays");
    assert_eq!(banner.variant.as_deref(), Some("xmas"));
    let n = provider
        .resolve_int_value("max_items", &ctx("u1"))
        .await
        .expect("int");
    assert_eq!(n.value, 10);
    let r = provider
        .resolve_float_value("ratio", &ctx("u1"))
        .await
        .expect("float");
    assert!((r.value - 0.5).abs() < 1e-9);

    // The SDK sees the same sticky split as golive computes in process.
    let flag = golive_server::golive_flags::Flag::from_json(
        &json!({"flag": "new_checkout", "enabled": true, "percentage": 25}),
    )
    .expect("flag");
    let mut enabled = 0;
    for i in 0..200 {
        let user = format!("user-{i}");
        let remote = provider
            .resolve_bool_value("new_checkout", &ctx(&user))
            .await
            .expect("bool")
            .value;
        let local = flag
            .evaluate(&golive_server::golive_flags::Context::with_targeting_key(
                &user,
            ))
            .expect("eval")
            .value;
        assert_eq!(json!(remote), local, "{user}");
        enabled += usize::from(remote);
    }
    assert!((25..=75).contains(&enabled), "{enabled} of 200 at 25%");

    // Errors reach the SDK as errors, not as values.
    assert!(
        provider
            .resolve_bool_value("no_such_flag", &ctx("u1"))
            .await
            .is_err()
    );
    assert!(
        provider
            .resolve_bool_value("new_checkout", &EvaluationContext::default())
            .await
            .is_err(),
        "a split without a targeting key is an error"
    );
    server.stop().await;
}
