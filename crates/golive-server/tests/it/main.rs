//! golive-server's integration tests, one module per subject, in one test
//! binary (one link instead of one per file). `util` (declared first, so
//! that its `on_both!` is in scope in the others) starts the test servers.

#[macro_use]
mod util;

mod alertmanager;
mod api;
mod hostile;
mod openfeature;
mod statuspage;
