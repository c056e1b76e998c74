//! golive-plan's integration tests: the plan format and `golive import`,
//! in one test binary (one link instead of one per file).

mod import;
mod plan;
