//! golive-rollout's integration tests, one module per subject, in one
//! test binary (one link instead of one per file).

mod analysis;
mod traffic;
