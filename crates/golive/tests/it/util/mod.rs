//! Helpers shared by the integration tests that drive `golive run` in the
//! background while a second process answers it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A fresh directory of the test's own under the target's temp dir.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Waits (up to `within`) until `file` contains `needle`; returns its text.
pub fn await_text(file: &std::path::Path, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "no `{needle}` in {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `golive run` in the background, with its stderr lines on a channel.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    patience: Duration,
}

impl Running {
    /// Starts `cmd` (stdout discarded, stderr read line by line); `wait_for`
    /// waits up to `patience` for a line.
    pub fn spawn(mut cmd: Command, patience: Duration) -> Running {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("golive run starts");
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            patience,
        }
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + self.patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no `{needle}` on stderr; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// The run id, from the first line (`started r-… …`).
    pub fn run_id(&mut self) -> String {
        let line = self.wait_for("started");
        line.split_whitespace()
            .nth(1)
            .expect("run id on the first line")
            .to_string()
    }

    /// kill -9: golive dies where it stands, as in a crash.
    pub fn kill9(self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-9", &pid])
                .status()
                .expect("kill")
                .success()
        );
        let _ = self.finish();
    }

    /// Waits for the process; its exit code and every stderr line.
    pub fn finish(mut self) -> (i32, Vec<String>) {
        let status = self.child.wait().expect("golive run ends");
        self.seen.extend(self.lines.iter());
        (status.code().unwrap_or(-1), self.seen)
    }
}

/// Runs `golive token create …` (`cmd`); the token it prints.
pub fn created_token(mut cmd: Command) -> String {
    let out = cmd.output().expect("token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `golive serve`'s arguments in the tests: a free port, a 2 s lease,
/// operators may start plans with commands.
pub const SERVE: [&str; 6] = [
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--lease-ttl",
    "2s",
    "--allow-api-commands",
];

/// `golive serve` started by `cmd` (listening on a free port); it and its
/// base URL, once it listens.
pub fn serve_with(cmd: Command) -> (Running, String) {
    let mut server = Running::spawn(cmd, Duration::from_secs(30));
    let line = server.wait_for("listening on");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address")
        .to_string();
    (server, base)
}

/// Where a test's journal lives.
pub enum Journal {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Journal {
    /// Points `cmd` at this journal (`--db PATH` or `GOLIVE_DATABASE_URL`).
    pub fn apply(&self, cmd: &mut Command) {
        match self {
            Journal::Sqlite(path) => {
                cmd.env_remove("GOLIVE_DATABASE_URL").arg("--db").arg(path);
            }
            Journal::Postgres(url) => {
                cmd.env("GOLIVE_DATABASE_URL", url);
            }
        }
    }

    /// The URL `golive_store::open` takes.
    pub fn url(&self) -> String {
        match self {
            Journal::Sqlite(p) => p.display().to_string(),
            Journal::Postgres(url) => url.clone(),
        }
    }
}

pub use golive_testkit::PgSchema;

/// The demo's two service versions (golive-demo) on a runtime of their
/// own, alive until dropped; `vars` are `NAME=value` for `--var`.
pub struct Services {
    pub vars: Vec<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Services {
    pub fn start() -> Services {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async move {
                let demo = golive_demo::Demo::start().await.expect("demo services");
                tx.send(demo.variables()).expect("send");
                let _ = stopped.await;
                let _ = demo.shutdown().await;
            });
        });
        let vars = rx
            .recv()
            .expect("variables")
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        Services {
            vars,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
