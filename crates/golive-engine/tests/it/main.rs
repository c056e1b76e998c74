//! golive-engine's integration tests, one module per subject, in one test
//! binary (one link instead of one per file).

mod items;
mod journal_moves;
mod notify;
mod resume;
mod takeover;
