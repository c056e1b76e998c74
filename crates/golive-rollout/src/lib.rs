//! Progressive rollout: moving traffic and deciding go or no-go.
//!
//! # Layout
//! - [`traffic`]: the actuators that shift traffic between the stable and
//!   the canary version — HAProxy's runtime API, an nginx upstream file,
//!   golive's own flag percentage, a command, a webhook.
//! - [`analysis`]: the metrics a step is judged on — from Prometheus or
//!   scraped straight from the services — threshold rules held for a
//!   duration, and the canary-versus-baseline judge.

#![deny(missing_docs)]

pub mod analysis;
pub mod traffic;
