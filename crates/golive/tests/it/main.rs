//! The golive binary's integration tests, one module per subject, in one
//! test binary (one link instead of one per file). `util` drives `golive`
//! in the background for several of them; `e2e` holds the real parts of
//! the rollout scenarios (shared with `examples/rollback_bench.rs`).

mod e2e;
mod util;

mod cli;
mod engine_control;
mod engine_crash;
mod engine_story;
mod journal_faults;
mod ready;
mod report;
mod rollout_control;
mod rollout_e2e;
mod serve;
mod web;
