//! The HTTP probe: one request, and what came back — `status`, `header.<Name>`,
//! `body` (and `body.$…` into it as JSON), `response_time` (until the whole
//! body was read).

use std::time::Instant;

use golive_plan::RawHttp;

use crate::observation::{Observation, Value};
use crate::vars::Vars;
use crate::{Outcome, error_chain, tlsconf};

/// Bodies are kept up to this size; the rest is read and dropped.
const MAX_BODY: usize = 4 << 20;

pub(crate) async fn observe(p: &RawHttp, vars: &Vars) -> Outcome {
    let url = vars.expand(&p.url.value);
    let method = p.method.as_ref().map_or_else(
        || "GET".to_string(),
        |m| m.value.trim().to_ascii_uppercase(),
    );
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let client = client(
        p.ca.as_deref().map(|c| vars.expand(c)).as_deref(),
        p.tls_verify,
    )?;
    let mut request = client.request(method.clone(), &url);
    for (name, value) in &p.headers {
        request = request.header(name.as_str(), vars.expand(value));
    }
    if let Some(body) = &p.body {
        request = request.body(vars.expand(body));
    }
    let request = request
        .build()
        .map_err(|e| format!("{method} {url}: {}", error_chain(&e)))?;
    let started = Instant::now();
    let mut response = client
        .execute(request)
        .await
        .map_err(|e| format!("{method} {url}: {}", error_chain(&e.without_url())))?;
    let mut obs = Observation::default();
    obs.set(
        "status",
        Value::Number(f64::from(response.status().as_u16())),
    );
    for (name, value) in response.headers() {
        obs.header(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        format!(
            "{method} {url}: reading the body: {}",
            error_chain(&e.without_url())
        )
    })? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    obs.set("response_time", Value::duration(started.elapsed()));
    obs.body(String::from_utf8_lossy(&body).into_owned());
    Ok(obs)
}

/// A client trusting the webpki roots and `ca`, or anything when `tls_verify` is false.
pub(crate) fn client(
    ca: Option<&str>,
    tls_verify: Option<bool>,
) -> Result<reqwest::Client, String> {
    let tls = tlsconf::http_config(ca, tls_verify.unwrap_or(true))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| format!("HTTP client setup: {}", error_chain(&e)))
}
