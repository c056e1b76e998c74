//! Instant queries against a Prometheus server's HTTP API
//! (`GET {base}/api/v1/query?query=…`).
//!
//! This module owns the request and the reading of the answer: a `vector`
//! result becomes a list of (labels, value) and a `scalar` a number. Every
//! failure is an error carrying what the server said — `status: error`
//! with its `errorType` and `error`, an HTTP error with the start of its
//! body, an unreachable server with the connection error. A `matrix` or
//! `string` result is an error too: analysis needs one value per series.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;

use golive_runtime::error_chain;

use super::scrape::{MAX_BODY, read_capped, shown};

/// The answer to an instant query.
#[derive(Clone, Debug, PartialEq)]
pub enum PromValue {
    /// `resultType: scalar`.
    Scalar(f64),
    /// `resultType: vector`: each series' labels (its `__name__` included
    /// when Prometheus kept it) and value.
    Vector(Vec<(BTreeMap<String, String>, f64)>),
}

/// A client of one Prometheus server.
#[derive(Clone, Debug)]
pub struct PrometheusClient {
    client: reqwest::Client,
    endpoint: reqwest::Url,
}

impl PrometheusClient {
    /// A client of the server at `base` (e.g. `http://prometheus:9090`)
    /// whose requests give up after `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<PrometheusClient, String> {
        let base = base.trim_end_matches('/');
        let endpoint = reqwest::Url::parse(&format!("{base}/api/v1/query"))
            .map_err(|e| format!("`{}` is not a URL: {e}", shown(base)))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(format!("`{}` is not an http(s) URL", shown(base)));
        }
        Ok(PrometheusClient {
            client: golive_runtime::api_client(timeout)?,
            endpoint,
        })
    }

    /// Runs an instant query at the server's current time.
    pub async fn query(&self, query: &str) -> Result<PromValue, String> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut().append_pair("query", query);
        let shown_url = shown(self.endpoint.as_str());
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {shown_url}: {}", error_chain(&e.without_url())))?;
        let status = response.status();
        let body = read_capped(response, MAX_BODY)
            .await
            .map_err(|e| format!("GET {shown_url}: {e}"))?;
        parse_answer(&body).map_err(|e| match e {
            Answer::Refused(message) => format!("Prometheus refused `{query}`: {message}"),
            Answer::NotApi => format!(
                "GET {shown_url}: HTTP {status}, not a Prometheus API answer: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
                    .trim()
            ),
            Answer::Bad(why) => format!("GET {shown_url}: {why}"),
        })
    }
}

/// Why an answer gives no value.
enum Answer {
    /// `status: error`, with the server's message.
    Refused(String),
    /// Not JSON, or JSON without a `status`.
    NotApi,
    /// A success answer golive cannot use.
    Bad(String),
}

fn parse_answer(body: &[u8]) -> Result<PromValue, Answer> {
    let doc: Json = serde_json::from_slice(body).map_err(|_| Answer::NotApi)?;
    match doc.get("status").and_then(Json::as_str) {
        Some("success") => {}
        Some(_) => {
            let kind = doc.get("errorType").and_then(Json::as_str);
            let error = doc
                .get("error")
                .and_then(Json::as_str)
                .unwrap_or("no message");
            return Err(Answer::Refused(match kind {
                Some(k) => format!("{k}: {error}"),
                None => error.to_string(),
            }));
        }
        None => return Err(Answer::NotApi),
    }
    let data = doc
        .get("data")
        .ok_or_else(|| Answer::Bad("the answer has no `data`".into()))?;
    let result = data
        .get("result")
        .ok_or_else(|| Answer::Bad("the answer has no `data.result`".into()))?;
    match data.get("resultType").and_then(Json::as_str) {
        Some("scalar") => Ok(PromValue::Scalar(pair_value(result).map_err(Answer::Bad)?)),
        Some("vector") => {
            let items = result
                .as_array()
                .ok_or_else(|| Answer::Bad("a vector result that is not a list".into()))?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let mut labels = BTreeMap::new();
                if let Some(metric) = item.get("metric").and_then(Json::as_object) {
                    for (k, v) in metric {
                        labels.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                    }
                }
                let value = item
                    .get("value")
                    .ok_or_else(|| Answer::Bad("a series without `value`".into()))
                    .and_then(|v| pair_value(v).map_err(Answer::Bad))?;
                out.push((labels, value));
            }
            Ok(PromValue::Vector(out))
        }
        Some(other) => Err(Answer::Bad(format!(
            "a `{other}` result; analysis needs an instant query giving a vector or a scalar"
        ))),
        None => Err(Answer::Bad("the answer has no `data.resultType`".into())),
    }
}

/// The value of a `[timestamp, "value"]` pair; Prometheus writes values as
/// strings (`"1.5"`, `"+Inf"`, `"NaN"`).
fn pair_value(pair: &Json) -> Result<f64, String> {
    let text = pair
        .get(1)
        .and_then(Json::as_str)
        .ok_or_else(|| format!("`{pair}` is not a [time, \"value\"] pair"))?;
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .map_err(|_| format!("`{text}` is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<PromValue, String> {
        parse_answer(text.as_bytes()).map_err(|e| match e {
            Answer::Refused(m) => format!("refused: {m}"),
            Answer::NotApi => "not api".into(),
            Answer::Bad(m) => format!("bad: {m}"),
        })
    }

    #[test]
    fn answers() {
        assert_eq!(
            parsed(r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"2.5"]}}"#),
            Ok(PromValue::Scalar(2.5))
        );
        let v = parsed(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"version":"canary"},"value":[1,"+Inf"]}]}}"#,
        );
        let Ok(PromValue::Vector(v)) = v else {
            panic!("{v:?}")
        };
        assert_eq!(v[0].0.get("version").map(String::as_str), Some("canary"));
        assert_eq!(v[0].1, f64::INFINITY);
        assert_eq!(
            parsed(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#),
            Err("refused: bad_data: parse error".into())
        );
        assert_eq!(parsed("<html>"), Err("not api".into()));
        assert!(
            parsed(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#)
                .is_err_and(|e| e.contains("matrix"))
        );
        assert!(
            parsed(
                r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}}"#
            )
            .is_err()
        );
    }
}
