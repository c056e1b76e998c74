//! What every handler shares: the store, the flags in memory, token checks,
//! metrics, and the runs this process executes.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use golive_store::{AnyStore, RetryPolicy};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::Auth;
use crate::flags::FlagCache;
use crate::metrics::Metrics;

/// The server's settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: std::net::SocketAddr,
    /// Browser origins allowed to call the API (CORS); none by default.
    pub cors_origins: Vec<String>,
    /// How often flags written by other servers are looked for.
    pub flags_refresh: Duration,
    /// How often live event streams look for new events.
    pub events_poll: Duration,
    /// The lease of runs this server executes.
    pub lease_ttl: Duration,
    /// Refused tokens allowed per client address per minute before 429.
    pub auth_failure_limit: u32,
    /// `/metrics` answers only with a token (any role).
    pub metrics_need_token: bool,
    /// Operators may start plans with `run` items and `command`, `env` or
    /// `file` checks (by default only admins: they act as the server's
    /// user).
    pub allow_api_commands: bool,
    /// Names of this process's environment that plans may see (for `env:`
    /// secrets, `${NAME}`, commands), beside `golive_runtime::host_env::BASE`;
    /// the rest is hidden from plans run here.
    pub plan_env: Vec<String>,
    /// Connections open at once (also kept below the file limit); at the
    /// cap, the longest-idle ones are closed to make room.
    pub max_connections: usize,
    /// Time a client has to send a request's head.
    pub header_read_timeout: Duration,
    /// A connection with nothing under way for this long is closed.
    pub idle_timeout: Duration,
    /// How long the engines of runs executed here ride out a passing
    /// database fault (`GOLIVE_DB_RETRY`): the run pauses, keeping its
    /// lease, instead of failing (see `golive_store::Retrying`).
    pub db_retry: RetryPolicy,
    /// How long the public status page's view of the journal is reused:
    /// every request within it is answered from one read of the store, so
    /// a busy (or hostile) status page cannot load the journal. Zero reads
    /// it for every request.
    pub status_cache: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            cors_origins: Vec::new(),
            flags_refresh: Duration::from_secs(1),
            events_poll: Duration::from_millis(500),
            lease_ttl: Duration::from_secs(15),
            auth_failure_limit: crate::auth::FAILURE_LIMIT,
            metrics_need_token: false,
            allow_api_commands: false,
            plan_env: Vec::new(),
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            db_retry: RetryPolicy::default(),
            status_cache: Duration::from_secs(1),
        }
    }
}

/// Shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared parts.
pub struct Inner {
    store: AnyStore,
    /// Settings.
    pub config: ServerConfig,
    /// Token checks.
    pub auth: Auth,
    /// The flags, in memory.
    pub flags: FlagCache,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// Runs executing in this process.
    pub runs: Mutex<JoinSet<()>>,
    /// Their ids: a run driven here whose lease ran out while the database
    /// was away is paused, not orphaned, and must not be adopted by this
    /// same server.
    pub driving: Mutex<HashSet<String>>,
    /// Set to a signal number when the server shuts down: running engines
    /// stop, mark their item interrupted and release their lease.
    pub stop: watch::Sender<Option<i32>>,
    /// The status page's last view of the journal and when it was read
    /// (see [`ServerConfig::status_cache`]).
    pub status_view: crate::statuspage::Cache,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// State over an open store.
    pub fn new(store: AnyStore, config: ServerConfig) -> Self {
        let (stop, _) = watch::channel(None);
        AppState(Arc::new(Inner {
            store,
            config,
            auth: Auth::default(),
            flags: FlagCache::default(),
            metrics: Metrics::new(),
            runs: Mutex::new(JoinSet::new()),
            driving: Mutex::default(),
            stop,
            status_view: Default::default(),
        }))
    }
}

impl Inner {
    /// The journal.
    pub fn store(&self) -> &AnyStore {
        &self.store
    }
}
