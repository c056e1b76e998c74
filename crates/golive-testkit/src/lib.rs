//! Fixtures shared by the workspace's integration tests, and only by them
//! (every crate takes this as a dev-dependency): a scratch PostgreSQL
//! schema per test, made and dropped the same way everywhere, ports for
//! the servers tests start as other processes, and a JSON call to golive's
//! API.
//!
//! The schema is made and dropped on a thread with a runtime of its own,
//! so a test may hold one inside or outside a tokio runtime alike (a
//! `Drop` inside a runtime cannot block on a future).

#![deny(missing_docs)]

use std::collections::BTreeSet;
use std::sync::Mutex;

use sqlx::Connection;

/// `METHOD url` with an optional bearer `token` and JSON `body`: the status
/// and the answer as JSON (a body that is not JSON comes back as a string).
pub async fn api_call(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, value)
}

/// A loopback TCP port for a server a test starts as another process
/// (HAProxy, nginx, Prometheus, chromedriver), which binds it a moment
/// later. It is free now, and *below* the kernel's ephemeral range: a port
/// from `bind(0)` lies in that range, where any outgoing connection (a load
/// generator opens thousands) can take it before the server binds, and the
/// server then fails with "Address already in use". No port is handed out
/// twice by one process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    // `ip_local_port_range` is "LOW HIGH"; outgoing connections take ports
    // from LOW up.
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (first, span) = (low / 2, low - low / 2);
    let mut seed = [0u8; 2];
    getrandom::fill(&mut seed).expect("a random port");
    let offset = u16::from_le_bytes(seed) % span;
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..span {
        let port = first + (offset + i) % span;
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free loopback port in {first}..{low}");
}

/// Where PostgreSQL runs for tests: `GOLIVE_TEST_DATABASE_URL`, or the
/// trust-auth server of this machine and of CI.
pub fn pg_base_url() -> String {
    std::env::var("GOLIVE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Runs `sql` on the test PostgreSQL at `base`, from a thread of its own.
fn execute(base: &str, sql: &str) -> Result<(), String> {
    let (base, sql) = (base.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .map_err(|e| format!("PostgreSQL for tests (set GOLIVE_TEST_DATABASE_URL): {e}"))?;
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .map_err(|e| format!("{sql}: {e}"))?;
            conn.close().await.map_err(|e| e.to_string())
        })
    })
    .join()
    .map_err(|_| "the PostgreSQL fixture's thread panicked".to_string())?
}

/// A schema of its own on the test PostgreSQL, dropped (with everything in
/// it) when this is dropped.
#[derive(Debug)]
pub struct PgSchema {
    name: String,
    base: String,
}

impl PgSchema {
    /// Makes a fresh schema with a random name; panics, saying why, when
    /// the test PostgreSQL cannot be reached.
    pub fn create() -> PgSchema {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("a random schema name");
        let name = format!("golive_t_{:016x}", u64::from_le_bytes(bytes));
        let base = pg_base_url();
        if let Err(e) = execute(&base, &format!("CREATE SCHEMA {name}")) {
            panic!("cannot make a test schema: {e}");
        }
        PgSchema { name, base }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database URL whose every connection's `search_path` is this
    /// schema.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Err(e) = execute(&self.base, &sql) {
            eprintln!("could not drop schema {}: {e}", self.name);
        }
    }
}
