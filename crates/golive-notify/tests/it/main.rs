//! golive-notify's integration tests, one module per channel family, in
//! one test binary (one link instead of one per file).

mod common;
mod email;
mod wire;
