//! What `golive demo` and the end-to-end rollout tests run against: two
//! versions of a small HTTP service started in-process, a load generator
//! that records which version answered, and the plan the demo runs.
//!
//! # Layout
//! - [`service`]: the demo service — its version as JSON, Prometheus
//!   metrics, a health check, and errors and latency injectable at run time.
//! - [`load`]: the load generator and its report in 100 ms buckets, which
//!   measures when a rollback reached the users.
//! - This file: re-exports, the [`Demo`] pair of services, and
//!   [`DEMO_PLAN`], the plan shipped for `golive demo`.

#![deny(missing_docs)]

pub mod load;
pub mod service;

use std::net::{Ipv4Addr, SocketAddr};

pub use load::{
    BUCKET_WIDTH, Bucket, Counts, ErrorCounts, LoadConfig, LoadGenerator, LoadReport, Router,
    Target,
};
pub use service::{DemoService, Fault, MAX_LATENCY_MS, VERSION_HEADER};

/// The version the stable service answers as.
pub const STABLE_VERSION: &str = "v1";

/// The version the canary service answers as.
pub const CANARY_VERSION: &str = "v2";

/// The plan `golive demo` runs: readiness checks of both services, a
/// sign-off, a flag, and a canary rollout moving users to v2 by the flag's
/// percentage, analysed from the services' own metrics. It reads the
/// variables [`Demo::variables`] gives.
pub const DEMO_PLAN: &str = include_str!("../demo-plan.yaml");

/// What can go wrong starting the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The service's address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A service stopped with an I/O error.
    #[error("demo service failed: {0}")]
    Serve(#[source] std::io::Error),
    /// A service's task panicked or was cancelled.
    #[error("demo service task: {0}")]
    Task(String),
    /// Called outside a Tokio runtime.
    #[error("the demo needs a Tokio runtime")]
    NoRuntime,
    /// The HTTP client could not be built.
    #[error("{0}")]
    Client(String),
    /// A load target is not an http(s) URL.
    #[error("load target `{url}`: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The stable (v1) and the canary (v2) service, running.
#[derive(Debug)]
pub struct Demo {
    /// v1, the version in production.
    pub stable: DemoService,
    /// v2, the version being rolled out.
    pub canary: DemoService,
}

impl Demo {
    /// Starts both on free ports of 127.0.0.1.
    pub async fn start() -> Result<Demo, DemoError> {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Demo::start_on(any, any).await
    }

    /// Starts both on the given addresses.
    pub async fn start_on(stable: SocketAddr, canary: SocketAddr) -> Result<Demo, DemoError> {
        Ok(Demo {
            stable: DemoService::start(STABLE_VERSION, stable).await?,
            canary: DemoService::start(CANARY_VERSION, canary).await?,
        })
    }

    /// The plan variables [`DEMO_PLAN`] reads, with these services' URLs:
    /// `STABLE_URL`, `CANARY_URL`, `STABLE_METRICS`, `CANARY_METRICS`
    /// (pass them as `--var NAME=value`).
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        vec![
            ("STABLE_URL", self.stable.url()),
            ("CANARY_URL", self.canary.url()),
            ("STABLE_METRICS", self.stable.metrics_url()),
            ("CANARY_METRICS", self.canary.metrics_url()),
        ]
    }

    /// A load target splitting users between the two by `router` (true:
    /// canary), e.g. a `golive_flags::Flag` evaluated for the user.
    pub fn split(&self, router: Router) -> Target {
        Target::Split {
            stable: self.stable.url(),
            canary: self.canary.url(),
            router,
        }
    }

    /// Stops both, waiting for the requests in flight.
    pub async fn shutdown(self) -> Result<(), DemoError> {
        let Demo { stable, canary } = self;
        let (a, b) = tokio::join!(stable.shutdown(), canary.shutdown());
        a.and(b)
    }
}
