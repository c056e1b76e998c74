//! Talking to a golive server for `--server URL --token T`: one client,
//! the token on every request, the server's own error message on failure
//! (with the status), and the live event stream for `status --follow`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cli::StoreArgs;

/// A server and the token to use with it.
pub struct Remote {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Remote {
    /// The server named by `--server`, if any.
    pub fn from_args(args: &StoreArgs) -> Result<Option<Remote>> {
        let Some(server) = args.server.as_deref() else {
            return Ok(None);
        };
        let token = args.token.clone().context(
            "--server needs a token: --token T or GOLIVE_TOKEN (make one with `golive token create`)",
        )?;
        let client =
            golive_runtime::api_client(Duration::from_secs(30)).map_err(anyhow::Error::msg)?;
        Ok(Some(Remote {
            base: server.trim_end_matches('/').to_string(),
            token,
            client,
        }))
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends a request; the body as text, or the server's refusal as an error.
    pub async fn text(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String> {
        let mut request = self.request(method.clone(), path);
        if let Some(b) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the golive server at {}", self.base))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            bail!(
                "{} answered {status} to {method} {path}: {message}",
                self.base
            );
        }
        Ok(text)
    }

    /// Sends a request and parses the JSON answer (null when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let text = self.text(method, path, body).await?;
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} answered {path} with something that is not JSON",
                self.base
            )
        })
    }

    /// The given run's id, or the server's newest run.
    pub async fn run_or_newest(&self, run: Option<&golive_store::RunId>) -> Result<String> {
        if let Some(id) = run {
            return Ok(id.to_string());
        }
        let v = self
            .call(reqwest::Method::GET, "/api/runs?limit=1", None)
            .await?;
        Ok(v["runs"][0]["id"]
            .as_str()
            .with_context(|| format!("{} has no runs", self.base))?
            .to_string())
    }

    /// Opens the live event stream (`/api/events`, with a run's journal).
    pub async fn events(&self, run: &str) -> Result<reqwest::Response> {
        let response = self
            .request(reqwest::Method::GET, &format!("/api/events?run={run}"))
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .await
            .with_context(|| format!("cannot reach the golive server at {}", self.base))?;
        if !response.status().is_success() {
            bail!(
                "{} refused the event stream: {}",
                self.base,
                response.status()
            );
        }
        Ok(response)
    }
}
