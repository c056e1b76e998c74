//! golive-flags' integration tests, one module per subject, in one test
//! binary (one link instead of one per file).

mod apply;
mod definition;
mod evaluation;
mod murmur;
mod unleash_compat;
