//! Test servers: `golive_server::serve_on` on a free loopback port, over a
//! fresh SQLite file or a fresh PostgreSQL schema, stopped (and the schema
//! dropped) at the end.

use std::time::Duration;

use golive_server::ServerConfig;
use golive_store::{Actor, AnyStore, Store};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use golive_testkit::PgSchema;

/// A fresh database: a SQLite file in a temporary directory, or a
/// PostgreSQL schema dropped when this is dropped.
pub enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(PgSchema),
}

impl Db {
    pub fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    pub async fn postgres() -> Db {
        Db::Postgres(PgSchema::create())
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}", dir.path().join("journal.db").display()),
            Db::Postgres(schema) => schema.url(),
        }
    }

    pub async fn open(&self) -> AnyStore {
        golive_store::open(&self.url()).await.expect("open store")
    }
}

/// A server running in this process.
pub struct TestServer {
    pub base: String,
    stop: Option<oneshot::Sender<i32>>,
    handle: Option<JoinHandle<Result<(), golive_server::ServerError>>>,
    pub client: reqwest::Client,
}

pub fn fast_config() -> ServerConfig {
    ServerConfig {
        flags_refresh: Duration::from_millis(200),
        events_poll: Duration::from_millis(100),
        lease_ttl: Duration::from_secs(2),
        auth_failure_limit: 10_000,
        // The tests look right after each change; the cache has its own.
        status_cache: Duration::ZERO,
        ..ServerConfig::default()
    }
}

impl TestServer {
    pub async fn start(db: &Db, config: ServerConfig) -> TestServer {
        let store = db.open().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<i32>();
        let handle = tokio::spawn(golive_server::serve_on(
            listener,
            store,
            config,
            async move { rx.await.unwrap_or(15) },
        ));
        let client = golive_runtime::api_client(Duration::from_secs(20)).expect("client");
        let server = TestServer {
            base,
            stop: Some(tx),
            handle: Some(handle),
            client,
        };
        // Wait until it answers.
        for _ in 0..100 {
            if server
                .client
                .get(server.url("/health"))
                .send()
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("test server did not start");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops it as SIGTERM would and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(15);
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server result");
        }
    }

    /// A request with `body` as it is, and a content type only when given.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token)
            .body(body);
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        Answer {
            status,
            headers,
            text,
        }
    }

    /// A request with a token.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        golive_testkit::api_call(&self.client, method, &self.url(path), token, body).await
    }
}

/// An answer to [`TestServer::send`].
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    /// Its content type ("" when none).
    pub fn content_type(&self) -> String {
        self.headers
            .get("content-type")
            .map(|v| v.to_str().expect("ascii").to_string())
            .unwrap_or_default()
    }
}

/// Tokens made in `db`'s store (`(name, role)`, in order), then a server
/// on it.
pub async fn serve_with_tokens(db: &Db, tokens: &[(&str, &str)]) -> (TestServer, Vec<String>) {
    let store = db.open().await;
    let mut made = Vec::new();
    for (name, role) in tokens {
        made.push(token(&store, name, role, None).await);
    }
    store.close().await;
    (TestServer::start(db, fast_config()).await, made)
}

/// The id of the token named `name` in the store.
pub async fn token_id(store: &AnyStore, name: &str) -> String {
    store
        .list_tokens()
        .await
        .expect("tokens")
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no token {name}"))
        .id
}

/// Makes a token directly in the store.
pub async fn token(store: &AnyStore, name: &str, role: &str, expires: Option<&str>) -> String {
    let actor = Actor {
        name: "test".into(),
        source: None,
    };
    golive_server::audit::create_token(store, name, role, expires, &actor)
        .await
        .expect("token")
        .0
}

/// Polls `check` until it returns Some, or panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > within {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each named story (an `async fn(Db)`) as two tests: on SQLite and on
/// PostgreSQL.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Db::sqlite()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Db::postgres().await).await
            }
        }
    )*};
}

/// A route pattern with ids that exist nowhere.
pub fn concrete(path: &str) -> String {
    fill(path, "r-00000000", "item", "some_flag", "0000000000")
}

/// A route pattern with these ids.
pub fn fill(path: &str, run: &str, item: &str, key: &str, id: &str) -> String {
    path.replace("{run}", run)
        .replace("{item}", item)
        .replace("{key}", key)
        .replace("{id}", id)
}

/// Starts a run of `plan` through `server`; its id.
pub async fn start_run(server: &TestServer, token: &str, plan: &str) -> String {
    let (s, v) = server
        .call(
            "POST",
            "/api/runs",
            Some(token),
            Some(serde_json::json!({"plan": plan})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["run"].as_str().expect("run id").to_string()
}
