//! The real parts of an end-to-end rollout, shared by
//! `tests/it/rollout_e2e.rs` and `examples/rollback_bench.rs` (which includes
//! this file with `#[path]`).
//!
//! A [`Rig`] owns, in its own temporary directory on free 127.0.0.1 ports:
//! the two demo services (v1 stable, v2 canary), a proxy in front of them,
//! Prometheus scraping both services every second, and a SQLite journal.
//! The proxy ([`Via`]) is HAProxy (backend `app`, servers `v1` weight 100
//! and `v2` weight 0, an admin unix socket) or nginx (two workers in the
//! foreground, `-p DIR -c DIR/nginx.conf -g 'daemon off;'`, whose `http`
//! block includes the upstream file golive owns, upstream `app` with v1 at
//! weight 100 and v2 `down`; a plan reloads it with `nginx -t` then
//! `nginx -s reload`, both with the same `-p`/`-c`). The demo metrics carry `version="v1"`/`"v2"`; Prometheus
//! relabels them to `version="stable"`/`"canary"` at scrape time
//! (`metric_relabel_configs`), the values golive's Prometheus source reads
//! the two sides from.
//!
//! [`Rig::run`] runs a plan with the engine in process while the demo's
//! load generator sends requests through the proxy, watching the journal
//! every 25 ms to note when each weight was set (as time since the load
//! started, the load report's clock) and to inject a fault at a step.

#![allow(dead_code)] // the test and the benchmark each use their own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use golive_demo::{Demo, Fault, LoadConfig, LoadGenerator, LoadReport, Target};
use golive_engine::Engine;
use golive_store::{AnyStore, Event, RunId, RunStatus, Store};
use golive_testkit::free_port;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The error ratio of each version over 5 s.
pub const ERROR_RATE: &str = r#"sum by (version) (rate(demo_http_requests_total{code="500"}[5s])) / sum by (version) (rate(demo_http_requests_total[5s]))"#;

/// The 95th-percentile latency of each version over 5 s, in seconds.
pub const P95_LATENCY: &str = r#"histogram_quantile(0.95, sum by (version, le) (rate(demo_http_request_duration_seconds_bucket[5s])))"#;

/// How often the journal is read while a run goes on.
const WATCH_EVERY: Duration = Duration::from_millis(25);

// ───────────────────────── runtime ─────────────────────────

/// Stack of the thread driving a test: in debug builds the engine's poll
/// frames are hundreds of KiB each (`drive` alone ~430 KiB) and executing a
/// rollout item overflows the 2 MiB a test thread (or a Tokio worker) has.
pub const STACK: usize = 32 << 20;

/// Runs `test` on a runtime of its own (two workers) driven from a thread
/// with a [`STACK`]-sized stack; a panic in it is the caller's.
pub fn block_on_big_stack<F, Fut>(name: &str, test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(STACK)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(test());
        })
        .expect("test thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

// ───────────────────────── processes ─────────────────────────

/// A process of the rig's own, stopped (TERM, then KILL) and reaped on
/// drop, also when a test panics.
pub struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, program: &str, args: &[String], log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        Proc { name, child, log }
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with its log if it has exited.
    #[track_caller]
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }

    /// Waits until `port` accepts connections.
    async fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.assert_running();
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not listening on {port} after 20s:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[track_caller]
fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{program}` is not installed (scripts/setup.sh installs haproxy, nginx and prometheus)"
    );
}

// ───────────────────────── the rig ─────────────────────────

/// The proxy in front of the two services, which the load goes through
/// and the plan's `traffic` moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// HAProxy 2.6, weights set on its admin socket.
    Haproxy,
    /// nginx, weights written to the upstream file golive owns, then
    /// `nginx -t && nginx -s reload`.
    Nginx,
}

impl Via {
    /// `haproxy` or `nginx`.
    pub fn name(self) -> &'static str {
        match self {
            Via::Haproxy => "haproxy",
            Via::Nginx => "nginx",
        }
    }

    /// [`Via::name`] back to the proxy.
    pub fn parse(name: &str) -> Option<Via> {
        match name {
            "haproxy" => Some(Via::Haproxy),
            "nginx" => Some(Via::Nginx),
            _ => None,
        }
    }
}

/// What the plan needs to move the proxy's traffic.
enum Front {
    Haproxy {
        /// The admin socket (`level admin`).
        socket: String,
    },
    Nginx {
        /// The upstream file golive owns, included by `nginx.conf`.
        upstream_file: PathBuf,
        /// The plan's reload command.
        reload: String,
    },
}

/// The first line golive's nginx actuator writes, and checks before it
/// overwrites a file (`crates/golive-rollout/src/traffic/nginx.rs`).
const NGINX_HEADER: &str = "# Written by golive's nginx traffic actuator";

/// Everything a rollout runs against.
pub struct Rig {
    /// The services (v1 stable, v2 canary).
    pub demo: Demo,
    /// The proxy in front of them.
    pub via: Via,
    /// The proxy's frontend, where the load goes.
    pub proxy_url: String,
    /// Prometheus's base URL.
    pub prometheus_url: String,
    /// The journal.
    pub store: AnyStore,
    /// Requests per second of the load (200 unless set).
    pub rate: u32,
    /// The `version` label's values of v1 and v2 in Prometheus.
    pub versions: (&'static str, &'static str),
    front: Front,
    proxy: Proc,
    prometheus: Proc,
    http: reqwest::Client,
    // Last: removed after the processes writing in it are stopped.
    dir: tempfile::TempDir,
}

impl Rig {
    /// Starts the services, HAProxy and Prometheus, and opens the journal.
    pub async fn start() -> Rig {
        Rig::start_via(Via::Haproxy).await
    }

    /// Starts the services, the proxy `via` and Prometheus, and opens the
    /// journal.
    pub async fn start_via(via: Via) -> Rig {
        Rig::start_opts(via, true).await
    }

    /// Starts the rig; with `relabel` false Prometheus keeps the services'
    /// own `version="v1"`/`"v2"` labels (a plan maps them with `versions:`).
    pub async fn start_opts(via: Via, relabel: bool) -> Rig {
        require(via.name());
        assert!(
            Path::new("/usr/bin/prometheus").is_file(),
            "/usr/bin/prometheus is missing (scripts/setup.sh installs it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("golive-e2e-")
            .tempdir()
            .expect("temp dir");
        let demo = Demo::start().await.expect("demo services start");

        let port = free_port();
        let (front, mut proxy) = match via {
            Via::Haproxy => start_haproxy(dir.path(), &demo, port),
            Via::Nginx => start_nginx(dir.path(), &demo, port),
        };
        proxy.wait_listening(port).await;

        let prom_port = free_port();
        let config = format!(
            "global:\n\
             \x20 scrape_interval: 1s\n\
             \x20 scrape_timeout: 1s\n\
             \x20 evaluation_interval: 1s\n\
             scrape_configs:\n\
             \x20 - job_name: demo\n\
             \x20   static_configs:\n\
             \x20     - targets: ['{}', '{}']\n",
            demo.stable.addr(),
            demo.canary.addr()
        );
        let config = if relabel {
            config
                + "    metric_relabel_configs:\n\
                   \x20     - {source_labels: [version], regex: v1, target_label: version, replacement: stable}\n\
                   \x20     - {source_labels: [version], regex: v2, target_label: version, replacement: canary}\n"
        } else {
            config
        };
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(&conf, config).expect("write prometheus.yml");
        let mut prometheus = Proc::spawn(
            "prometheus",
            "/usr/bin/prometheus",
            &[
                format!("--config.file={}", conf.display()),
                format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("prometheus").display()
                ),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
                "--log.level=warn".into(),
            ],
            dir.path().join("prometheus.log"),
        );
        prometheus.wait_listening(prom_port).await;

        let store = golive_store::open(&format!(
            "sqlite://{}",
            dir.path().join("journal.db").display()
        ))
        .await
        .expect("journal");
        Rig {
            demo,
            via,
            proxy_url: format!("http://127.0.0.1:{port}/"),
            prometheus_url: format!("http://127.0.0.1:{prom_port}"),
            store,
            rate: 200,
            versions: if relabel {
                ("stable", "canary")
            } else {
                ("v1", "v2")
            },
            front,
            proxy,
            prometheus,
            http: golive_runtime::api_client(Duration::from_secs(5)).expect("HTTP client"),
            dir,
        }
    }

    /// HAProxy's admin socket; panics through nginx.
    pub fn haproxy_socket(&self) -> &str {
        match &self.front {
            Front::Haproxy { socket } => socket,
            Front::Nginx { .. } => panic!("the rig runs nginx, not HAProxy"),
        }
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The proxy's and Prometheus's output, for failure messages.
    pub fn logs(&self) -> String {
        let mut logs = format!("--- {}.log\n{}\n", self.via.name(), self.proxy.log());
        if self.via == Via::Nginx {
            let error_log =
                std::fs::read_to_string(self.dir().join("error.log")).unwrap_or_default();
            logs.push_str(&format!("--- nginx error.log\n{error_log}\n"));
        }
        logs.push_str(&format!("--- prometheus.log\n{}", self.prometheus.log()));
        logs
    }

    /// `(stable, canary)`: HAProxy's current weights of `app/v1` and
    /// `app/v2`, read with `get weight` on the admin socket. Panics through
    /// nginx.
    pub async fn haproxy_weights(&self) -> (u32, u32) {
        (
            self.get_weight("app/v1").await,
            self.get_weight("app/v2").await,
        )
    }

    /// The upstream file golive owns; panics through HAProxy.
    pub fn nginx_upstream_file(&self) -> &Path {
        match &self.front {
            Front::Nginx { upstream_file, .. } => upstream_file,
            Front::Haproxy { .. } => panic!("the rig runs HAProxy, not nginx"),
        }
    }

    /// The upstream file's content now.
    pub fn nginx_upstream(&self) -> String {
        std::fs::read_to_string(self.nginx_upstream_file()).expect("read the upstream file")
    }

    /// nginx's error log: reloads are logged at `notice`.
    pub fn nginx_error_log(&self) -> String {
        std::fs::read_to_string(self.dir().join("error.log")).unwrap_or_default()
    }

    async fn get_weight(&self, server: &str) -> u32 {
        let Front::Haproxy { socket } = &self.front else {
            panic!("the rig runs nginx, not HAProxy");
        };
        let mut conn = tokio::net::UnixStream::connect(socket)
            .await
            .expect("HAProxy's admin socket");
        conn.write_all(format!("get weight {server}\n").as_bytes())
            .await
            .expect("send to the admin socket");
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut answer))
            .await
            .expect("HAProxy answers within 5s")
            .expect("read the admin socket");
        // `25 (initial 100)`
        answer
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("`get weight {server}` answered {answer:?}"))
    }

    /// An instant query: each series' `version` label and value.
    pub async fn query(&self, q: &str) -> Result<Vec<(String, f64)>, String> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.prometheus_url),
            &[("query", q)],
        )
        .map_err(|e| e.to_string())?;
        let text = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        let result = v["data"]["result"]
            .as_array()
            .ok_or_else(|| format!("no result: {text}"))?;
        Ok(result
            .iter()
            .map(|s| {
                let version = s["metric"]["version"].as_str().unwrap_or("").to_string();
                let value = s["value"][1]
                    .as_str()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(f64::NAN);
                (version, value)
            })
            .collect())
    }

    /// Waits until Prometheus has a rate for both versions (two scrapes of
    /// each, relabeled), so that the first evaluation of a run has data.
    pub async fn wait_for_prometheus(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = Err(String::from("not asked yet"));
        while Instant::now() < deadline {
            self.prometheus.assert_running();
            last = self
                .query("sum by (version) (rate(demo_http_requests_total[5s]))")
                .await;
            if let Ok(series) = &last {
                let has = |v: &str| {
                    series
                        .iter()
                        .any(|(version, x)| version == v && !x.is_nan())
                };
                if has(self.versions.0) && has(self.versions.1) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "Prometheus has no rate of both versions after 30s: {last:?}\n{}",
            self.logs()
        );
    }

    /// Load through the proxy: 200 requests/s from 64 keep-alive clients
    /// (enough to keep the rate with 300 ms of added latency), 100 users.
    pub fn start_load(&self) -> LoadGenerator {
        LoadGenerator::start(LoadConfig {
            target: Target::Url(self.proxy_url.clone()),
            concurrency: 64,
            rate: Some(self.rate),
            users: 100,
            timeout: Duration::from_secs(3),
        })
        .expect("load starts")
    }

    /// Runs `plan_text` to its end with the load going through the proxy,
    /// then `tail` more of load; `fault` strikes once the journal shows the
    /// weight it names. Panics (with the journal) when the run takes longer
    /// than `deadline`.
    pub async fn run(
        &mut self,
        plan_text: &str,
        fault: Inject,
        tail: Duration,
        deadline: Duration,
    ) -> Finished {
        self.run_with(plan_text, &[], fault, tail, deadline).await
    }

    /// [`Rig::run`] with variables (`--var NAME=value`).
    pub async fn run_with(
        &mut self,
        plan_text: &str,
        vars: &[(String, String)],
        fault: Inject,
        tail: Duration,
        deadline: Duration,
    ) -> Finished {
        let compiled = golive_plan::compile(plan_text, &|_: &str| true);
        let Some(plan) = compiled.plan else {
            panic!(
                "the plan does not compile: {:#?}\n{plan_text}",
                compiled.diagnostics
            );
        };
        let engine = Engine::new(Arc::new(self.store.clone()))
            .expect("engine")
            .with_poll_interval(Duration::from_millis(100));
        let id = engine
            .create(plan_text, &plan, None)
            .await
            .expect("run created");

        let load = self.start_load();
        self.wait_for_prometheus().await;

        let done = std::sync::atomic::AtomicBool::new(false);
        let execute = async {
            let status = tokio::time::timeout(deadline, engine.execute(&id, &plan, vars)).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            status
        };
        let watch = watch_journal(&self.store, &id, &load, &self.demo, fault, &done);
        let (status, mut seen) = tokio::join!(execute, watch);
        let ended = load.elapsed();
        let status = match status {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => panic!("the engine failed: {e}\n{}", journal_text(&seen.events)),
            Err(_) => panic!(
                "the run did not end within {deadline:?}:\n{}\n{}",
                journal_text(&seen.events),
                self.logs()
            ),
        };
        tokio::time::sleep(tail).await;
        let report = load.stop().await;
        // Everything journaled, also what the last read missed.
        seen.events = self
            .store
            .events_after(&id, 0, u32::MAX)
            .await
            .expect("journal");
        Finished {
            run: id,
            status,
            weights: seen.weights,
            decided: seen.decided,
            fault_at: seen.fault_at,
            ended,
            events: seen.events,
            status_when_asked: seen.status_when_asked,
            report,
        }
    }

    /// Stops the proxy and Prometheus, closes the journal, stops the
    /// services and removes the directory.
    pub async fn shutdown(self) {
        let Rig {
            demo,
            store,
            proxy,
            prometheus,
            dir,
            ..
        } = self;
        drop(proxy);
        drop(prometheus);
        store.close().await;
        let _ = demo.shutdown().await;
        drop(dir);
    }
}

// ───────────────────────── proxies ─────────────────────────

/// HAProxy on `port`: backend `app`, `v1` at weight 100, `v2` at 0.
fn start_haproxy(dir: &Path, demo: &Demo, port: u16) -> (Front, Proc) {
    let socket = dir.join("admin.sock").display().to_string();
    let config = format!(
        "global\n\
         \x20   stats socket {socket} mode 600 level admin\n\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 2s\n\
         \x20   timeout client 60s\n\
         \x20   timeout server 60s\n\
         \x20   timeout http-keep-alive 60s\n\
         frontend fe\n\
         \x20   bind 127.0.0.1:{port}\n\
         \x20   default_backend app\n\
         backend app\n\
         \x20   balance roundrobin\n\
         \x20   server v1 {} weight 100\n\
         \x20   server v2 {} weight 0\n",
        demo.stable.addr(),
        demo.canary.addr()
    );
    let conf = dir.join("haproxy.cfg");
    std::fs::write(&conf, config).expect("write haproxy.cfg");
    let haproxy = Proc::spawn(
        "haproxy",
        "haproxy",
        &["-f".into(), conf.display().to_string(), "-db".into()],
        dir.join("haproxy.log"),
    );
    (Front::Haproxy { socket }, haproxy)
}

/// nginx on `port` in the foreground (`daemon off`; TERM to the master
/// stops its workers too), its prefix, pid file, logs and temp paths in
/// `dir`, proxying to upstream `app` from the upstream file, which starts
/// as golive's actuator writes it for canary 0 %. Keep-alive to the
/// clients as nginx's defaults have it (75 s); a new connection to the
/// service for each request (nginx's default HTTP/1.0 upstream).
fn start_nginx(dir: &Path, demo: &Demo, port: u16) -> (Front, Proc) {
    let d = dir.display();
    let upstream_file = dir.join("upstream.conf");
    let config = format!(
        "worker_processes 2;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log notice;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {d}/body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   include {};\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       location / {{ proxy_pass http://app; }}\n\
         \x20   }}\n\
         }}\n",
        upstream_file.display()
    );
    std::fs::write(dir.join("nginx.conf"), config).expect("write nginx.conf");
    // What golive's actuator writes for canary 0 %: nginx needs the
    // upstream before it starts, and golive overwrites only its own file.
    let upstream = format!(
        "{NGINX_HEADER}; it is rewritten at every rollout step, edits are lost.\n\
         # canary 0%, stable 100%\n\
         upstream app {{\n\
         \x20   server {} weight=100;\n\
         \x20   server {} down;\n\
         }}\n",
        demo.stable.addr(),
        demo.canary.addr()
    );
    std::fs::write(&upstream_file, upstream).expect("write the upstream file");
    let reload = format!(
        "nginx -q -t -p {d}/ -c {d}/nginx.conf && nginx -p {d}/ -c {d}/nginx.conf -s reload"
    );
    let nginx = Proc::spawn(
        "nginx",
        "nginx",
        &[
            "-p".into(),
            format!("{d}/"),
            "-c".into(),
            format!("{d}/nginx.conf"),
            "-g".into(),
            "daemon off;".into(),
        ],
        dir.join("nginx.log"),
    );
    (
        Front::Nginx {
            upstream_file,
            reload,
        },
        nginx,
    )
}

// ───────────────────────── a run ─────────────────────────

/// A fault injected during a run.
#[derive(Clone, Copy, Debug)]
pub enum Inject {
    /// Nothing.
    Nothing,
    /// `after` the canary's weight became `at_weight` (as the journal
    /// watcher saw it), the canary answers this share of its requests with
    /// 500.
    CanaryErrors {
        at_weight: u8,
        after: Duration,
        error_rate: f64,
    },
    /// Once the canary's weight is this, both versions answer this many
    /// milliseconds slower.
    LatencyOnBoth { at_weight: u8, latency_ms: u64 },
    /// Once the journal shows the rollback level `level` entered, the
    /// canary answers this share of its requests with 500.
    CanaryErrorsOnLevel {
        level: &'static str,
        error_rate: f64,
    },
    /// Once the journal shows the rollback level `level` entered and the
    /// rollout paused, a person asks for the plan's rollback (`golive
    /// rollback`); the run's status at that moment is kept.
    RollbackOnLevel { level: &'static str },
}

impl Inject {
    fn delay(self) -> Duration {
        match self {
            Inject::CanaryErrors { after, .. } => after,
            _ => Duration::ZERO,
        }
    }

    fn weight(self) -> Option<u8> {
        match self {
            Inject::Nothing
            | Inject::CanaryErrorsOnLevel { .. }
            | Inject::RollbackOnLevel { .. } => None,
            Inject::CanaryErrors { at_weight, .. } | Inject::LatencyOnBoth { at_weight, .. } => {
                Some(at_weight)
            }
        }
    }
}

/// A weight the journal showed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightSeen {
    /// The canary's weight.
    pub canary: u8,
    /// The stable's.
    pub stable: u8,
    /// When the watcher read it, since the load started (at most ~25 ms
    /// plus a journal read after HAProxy had it).
    pub seen: Duration,
}

/// How a run went.
pub struct Finished {
    /// The run.
    pub run: RunId,
    /// Its final status.
    pub status: RunStatus,
    /// Every weight set, in order.
    pub weights: Vec<WeightSeen>,
    /// The first `rollout.decision` event, when seen (since the load
    /// started).
    pub decided: Option<Duration>,
    /// When the fault was injected, since the load started.
    pub fault_at: Option<Duration>,
    /// When the engine returned, since the load started.
    pub ended: Duration,
    /// The whole journal.
    pub events: Vec<Event>,
    /// The run's status document when a rollback was asked for
    /// ([`Inject::RollbackOnLevel`]).
    pub status_when_asked: Option<Value>,
    /// The load, including the tail after the run.
    pub report: LoadReport,
}

impl Finished {
    /// The canary weights in order.
    pub fn canary_weights(&self) -> Vec<u8> {
        self.weights.iter().map(|w| w.canary).collect()
    }

    /// The journal, one line per event.
    pub fn journal(&self) -> String {
        journal_text(&self.events)
    }

    /// The `rollout.analysis` evaluations, in order.
    pub fn evaluations(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e.kind == "rollout.analysis")
            .map(|e| &e.data["evaluation"])
            .collect()
    }

    /// v1's and v2's answers among the requests sent in `[from, to)`.
    pub fn served_between(&self, from: Duration, to: Duration) -> (u64, u64) {
        self.report
            .buckets
            .iter()
            .filter(|b| b.start >= from && b.start < to)
            .fold((0, 0), |(v1, v2), b| (v1 + b.counts.v1, v2 + b.counts.v2))
    }
}

#[derive(Default)]
struct Seen {
    weights: Vec<WeightSeen>,
    decided: Option<Duration>,
    fault_at: Option<Duration>,
    events: Vec<Event>,
    status_when_asked: Option<Value>,
}

/// Reads the journal every [`WATCH_EVERY`] until `done`, noting weights and
/// decisions and injecting `fault`.
async fn watch_journal(
    store: &AnyStore,
    run: &RunId,
    load: &LoadGenerator,
    demo: &Demo,
    fault: Inject,
    done: &std::sync::atomic::AtomicBool,
) -> Seen {
    let mut seen = Seen::default();
    let mut after = 0;
    // When the fault is due, since the load started.
    let mut due: Option<Duration> = None;
    loop {
        // Read `done` before the journal: the last read sees everything.
        let last = done.load(std::sync::atomic::Ordering::SeqCst);
        if let Ok(events) = store.events_after(run, after, u32::MAX).await {
            let now = load.elapsed();
            for e in events {
                after = e.seq;
                match e.kind.as_str() {
                    "rollout.weight" => {
                        let w = |k: &str| {
                            e.data[k]
                                .as_u64()
                                .and_then(|x| u8::try_from(x).ok())
                                .unwrap_or(u8::MAX)
                        };
                        seen.weights.push(WeightSeen {
                            canary: w("weight"),
                            stable: w("stable"),
                            seen: now,
                        });
                        if fault.weight() == Some(w("weight")) && due.is_none() {
                            due = Some(now + fault.delay());
                        }
                    }
                    "rollout.decision" => {
                        seen.decided.get_or_insert(now);
                        let entered = |level: &str| {
                            e.data["level"] == level && e.data["action"] == "escalate"
                        };
                        match fault {
                            Inject::CanaryErrorsOnLevel { level, .. }
                                if entered(level) && seen.fault_at.is_none() =>
                            {
                                seen.fault_at = Some(now);
                                inject(demo, fault);
                            }
                            Inject::RollbackOnLevel { level } if entered(level) => {
                                due = Some(now);
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
                seen.events.push(e);
            }
        }
        if let (Inject::RollbackOnLevel { .. }, Some(_)) = (fault, due) {
            // Once the rollout shows as paused, a person rolls back.
            if seen.fault_at.is_none()
                && let Ok(status) = golive_engine::status::status(store, run).await
                && status["awaiting"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|w| w["paused"] == true))
            {
                seen.status_when_asked = Some(status);
                seen.fault_at = Some(load.elapsed());
                golive_engine::answers::rollback(store, run, "e2e", "paused: rolled back by hand")
                    .await
                    .expect("rollback requested");
            }
        } else if let Some(at) = due.filter(|_| seen.fault_at.is_none() && !last) {
            let left = at.saturating_sub(load.elapsed());
            if left < WATCH_EVERY {
                tokio::time::sleep(left).await;
                seen.fault_at = Some(load.elapsed());
                inject(demo, fault);
            }
        }
        if last {
            return seen;
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

fn inject(demo: &Demo, fault: Inject) {
    match fault {
        Inject::Nothing => {}
        Inject::CanaryErrors { error_rate, .. } => demo.canary.set_fault(Fault {
            error_rate,
            latency_ms: 0,
        }),
        Inject::CanaryErrorsOnLevel { error_rate, .. } => demo.canary.set_fault(Fault {
            error_rate,
            latency_ms: demo.canary.fault().latency_ms,
        }),
        Inject::RollbackOnLevel { .. } => {}
        Inject::LatencyOnBoth { latency_ms, .. } => {
            for s in [&demo.stable, &demo.canary] {
                s.set_fault(Fault {
                    error_rate: 0.0,
                    latency_ms,
                });
            }
        }
    }
}

fn journal_text(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{:>4} {} {} {}",
                e.seq,
                e.kind,
                e.item_id.as_deref().unwrap_or("-"),
                e.data
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ───────────────────────── plans ─────────────────────────

/// A rollout plan through this rig's proxy, analysed from its Prometheus.
pub struct PlanSpec<'a> {
    /// The plan's name.
    pub name: &'a str,
    /// `(weight, pause)` of each step.
    pub steps: &'a [(u8, &'a str)],
    /// `(name, PromQL)` of each metric.
    pub metrics: &'a [(&'a str, &'a str)],
    /// The rules.
    pub rules: &'a [&'a str],
    /// Judges, each a YAML flow mapping.
    pub judges: &'a [&'a str],
}

impl Rig {
    /// The plan's `traffic:` actuator, one YAML flow mapping.
    fn traffic(&self) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match &self.front {
            Front::Haproxy { socket } => format!(
                "haproxy: {{socket: {}, backend: app, stable: v1, canary: v2}}",
                quote(socket)
            ),
            Front::Nginx {
                upstream_file,
                reload,
            } => format!(
                "nginx: {{upstream_file: {}, upstream: app, stable: '{}', canary: '{}', reload: {}}}",
                quote(&upstream_file.display().to_string()),
                self.demo.stable.addr(),
                self.demo.canary.addr(),
                quote(reload)
            ),
        }
    }

    /// The plan text of `spec`: one critical rollout item with
    /// `on_failure: rollback`, no rollback levels (a failing analysis rolls
    /// back at once), and a notification as the rollback's item.
    pub fn plan(&self, spec: &PlanSpec<'_>) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut text = format!(
            "name: {}\n\
             channels:\n\
             \x20 war-room: {{log: true}}\n\
             phases:\n\
             \x20 - title: Rollout\n\
             \x20   items:\n\
             \x20     - id: canary\n\
             \x20       title: Move traffic to v2\n\
             \x20       critical: true\n\
             \x20       on_failure: rollback\n\
             \x20       rollout:\n\
             \x20         strategy: canary\n\
             \x20         traffic:\n\
             \x20           {}\n\
             \x20         steps:\n",
            spec.name,
            self.traffic()
        );
        for (weight, pause) in spec.steps {
            text.push_str(&format!(
                "            - {{weight: {weight}, pause: {pause}}}\n"
            ));
        }
        text.push_str(&format!(
            "          analysis:\n\
             \x20           interval: 1s\n\
             \x20           prometheus: {}\n\
             \x20           metrics:\n",
            quote(&self.prometheus_url)
        ));
        for (name, query) in spec.metrics {
            text.push_str(&format!(
                "              - {{name: {name}, query: {}}}\n",
                quote(query)
            ));
        }
        if !spec.rules.is_empty() {
            text.push_str("            rules:\n");
            for rule in spec.rules {
                text.push_str(&format!("              - {}\n", quote(rule)));
            }
        }
        if !spec.judges.is_empty() {
            text.push_str("            judge:\n");
            for judge in spec.judges {
                text.push_str(&format!("              - {judge}\n"));
            }
        }
        text.push_str(
            "rollback:\n\
             \x20 items:\n\
             \x20   - id: announce-rollback\n\
             \x20     notify: {channel: war-room, message: v2 rolled back; every request goes to v1.}\n",
        );
        text
    }
}
