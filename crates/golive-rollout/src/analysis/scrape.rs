//! Scraping a service's metrics endpoint: one GET, a capped body, the
//! exposition parsed, and the samples appended to the target's [`Series`]
//! stamped with the time the caller says the scrape was taken (so tests and
//! the engine control the clock).
//!
//! This module owns the HTTP side of direct scraping and the shared
//! capped-body reader the Prometheus client uses too. The client comes from
//! [`golive_runtime::api_client`], so TLS works as everywhere else in golive.

use std::time::{Duration, Instant};

use golive_runtime::error_chain;
use reqwest::header::ACCEPT;

use super::expo::{self, Sample};
use super::series::Series;

/// The largest body read from a metrics endpoint or from Prometheus.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Fetches one target's metrics.
#[derive(Clone, Debug)]
pub struct Scraper {
    client: reqwest::Client,
    url: reqwest::Url,
    max_body: usize,
}

impl Scraper {
    /// A scraper of `url` whose requests give up after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Scraper, String> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| format!("`{}` is not a URL: {e}", shown(url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("`{}` is not an http(s) URL", shown(url)));
        }
        Ok(Scraper {
            client: golive_runtime::api_client(timeout)?,
            url: parsed,
            max_body: MAX_BODY,
        })
    }

    /// Lowers the body cap (for tests and small services).
    pub fn with_max_body(mut self, bytes: usize) -> Scraper {
        self.max_body = bytes;
        self
    }

    /// The URL scraped, without any password it holds.
    pub fn url(&self) -> String {
        shown(self.url.as_str())
    }

    /// GETs and parses the endpoint.
    pub async fn fetch(&self) -> Result<Vec<Sample>, String> {
        let url = self.url();
        let response = self
            .client
            .get(self.url.clone())
            // Text formats only: golive reads neither protobuf nor gzip.
            .header(
                ACCEPT,
                "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1",
            )
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", error_chain(&e.without_url())))?;
        let status = response.status();
        let body = read_capped(response, self.max_body)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            let head: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(format!("GET {url}: HTTP {status}: {}", head.trim()));
        }
        let text = std::str::from_utf8(&body).map_err(|e| {
            format!(
                "GET {url}: the body is not UTF-8 (byte {})",
                e.valid_up_to()
            )
        })?;
        expo::parse(text).map_err(|e| format!("GET {url}: {e}"))
    }

    /// Fetches and appends to `series` as taken at `at`; the number of
    /// samples read. On error nothing is appended.
    pub async fn scrape_into(&self, series: &mut Series, at: Instant) -> Result<usize, String> {
        let samples = self.fetch().await?;
        let n = samples.len();
        series.push(at, samples);
        Ok(n)
    }
}

/// Reads a body, refusing one larger than `max` bytes before and while
/// reading it (a missing or lying Content-Length cannot get past the cap).
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, String> {
    let too_big = || format!("the body is larger than {} bytes", max);
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| error_chain(&e.without_url()))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A URL as shown in messages: its password replaced, also when the URL
/// does not parse (the text is then masked by hand).
pub(crate) fn shown(url: &str) -> String {
    if let Ok(mut u) = reqwest::Url::parse(url) {
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        return u.to_string();
    }
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}
