//! The Prometheus probe, over its HTTP API: with `query`, an instant query
//! whose first sample is `value` (no sample is an error: "no data"); with
//! `alerts`, the number of firing alerts carrying all the given labels.

use std::collections::BTreeMap;
use std::time::Instant;

use golive_plan::RawPrometheus;
use serde_json::Value as Json;

use crate::observation::{Observation, Value};
use crate::{Outcome, http};
use golive_runtime::Vars;
use golive_runtime::error_chain;

pub(crate) async fn observe(p: &RawPrometheus, vars: &Vars) -> Outcome {
    let base = vars.expand(&p.url.value);
    let base = base.trim_end_matches('/');
    let client = http::client(None, None)?;
    let mut obs = Observation::default();
    let started = Instant::now();
    if let Some(query) = &p.query {
        let query = vars.expand(&query.value);
        let mut url = api_url(base, "query")?;
        url.query_pairs_mut().append_pair("query", &query);
        let data = get(&client, url).await?;
        obs.set("response_time", Value::duration(started.elapsed()));
        let value = first_sample(&data).ok_or_else(|| format!("no data for `{query}`"))?;
        obs.set("value", Value::Number(value));
    } else {
        let wanted: BTreeMap<String, String> = p
            .alerts
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), vars.expand(v)))
            .collect();
        let data = get(&client, api_url(base, "alerts")?).await?;
        obs.set("response_time", Value::duration(started.elapsed()));
        let alerts = data
            .get("alerts")
            .and_then(Json::as_array)
            .ok_or("the alerts answer has no `alerts` list")?;
        let firing = alerts
            .iter()
            .filter(|a| a.get("state").and_then(Json::as_str) == Some("firing"))
            .filter(|a| {
                wanted.iter().all(|(k, v)| {
                    a.get("labels")
                        .and_then(|l| l.get(k))
                        .and_then(Json::as_str)
                        == Some(v.as_str())
                })
            })
            .count();
        obs.set("alerts", Value::Number(firing as f64));
    }
    Ok(obs)
}

fn api_url(base: &str, endpoint: &str) -> Result<reqwest::Url, String> {
    reqwest::Url::parse(&format!("{base}/api/v1/{endpoint}"))
        .map_err(|e| format!("`{base}` is not a URL: {e}"))
}

/// GETs an API endpoint and returns its `data`, or the API's error.
async fn get(client: &reqwest::Client, url: reqwest::Url) -> Result<Json, String> {
    let shown = url.as_str().to_string();
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {shown}: {}", error_chain(&e.without_url())))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("GET {shown}: {}", error_chain(&e.without_url())))?;
    let doc: Json = serde_json::from_str(&body).map_err(|_| {
        format!(
            "GET {shown}: HTTP {status}, not a Prometheus API answer: {}",
            body.chars().take(200).collect::<String>()
        )
    })?;
    if doc.get("status").and_then(Json::as_str) != Some("success") {
        let error = doc
            .get("error")
            .and_then(Json::as_str)
            .unwrap_or("unknown error");
        return Err(format!("Prometheus refused the request: {error}"));
    }
    doc.get("data")
        .cloned()
        .ok_or_else(|| format!("GET {shown}: the answer has no `data`"))
}

/// The value of the first sample of a vector, scalar or matrix result.
fn first_sample(data: &Json) -> Option<f64> {
    let result = data.get("result")?;
    let pair = match data.get("resultType")?.as_str()? {
        "vector" => result.get(0)?.get("value")?,
        "matrix" => result.get(0)?.get("values")?.as_array()?.last()?,
        "scalar" => result,
        _ => return None,
    };
    pair.get(1)?.as_str()?.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples() {
        let v: Json = serde_json::from_str(
            r#"{"resultType":"vector","result":[{"metric":{},"value":[1.5,"1"]}]}"#,
        )
        .expect("json");
        assert_eq!(first_sample(&v), Some(1.0));
        let s: Json =
            serde_json::from_str(r#"{"resultType":"scalar","result":[1.5,"2.5"]}"#).expect("json");
        assert_eq!(first_sample(&s), Some(2.5));
        let e: Json = serde_json::from_str(r#"{"resultType":"vector","result":[]}"#).expect("json");
        assert_eq!(first_sample(&e), None);
    }
}
