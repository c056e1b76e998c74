//! The journal's faults, through the binary: a damaged SQLite journal is
//! refused before anything runs, a full disk stops the run with an error
//! naming the journal and the run, and a PostgreSQL restart or outage
//! pauses the run, which goes on when the database returns without
//! running any command twice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Running, SERVE, await_text, scratch, serve_with};

/// How long a test waits for a line in a log file.
const WAIT: Duration = Duration::from_secs(60);

fn golive(args: &[&str], dir: &Path, db: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
    cmd.args(args)
        .arg("--db")
        .arg(db)
        .current_dir(dir)
        .env_remove("GOLIVE_DATABASE_URL")
        .env("NO_COLOR", "1");
    cmd
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_id(log: &Path) -> String {
    let text = await_text(log, " started", WAIT);
    text.split_whitespace()
        .find(|w| w.starts_with("r-") && w.len() == 10)
        .expect("run id")
        .to_string()
}

/// Waits (up to `patience`) for the process to end; its exit code.
fn exit_code(child: &mut Child, patience: Duration) -> i32 {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s.code().unwrap_or(-1);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("golive did not stop within {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Forty quick commands, a task that holds the run, then the marker
/// command that must not run from a damaged journal.
fn marker_plan() -> String {
    let mut plan = String::from("name: faults\nphases:\n  - title: go\n    items:\n");
    for i in 0..40 {
        plan.push_str(&format!(
            "      - id: c{i}\n        run: {{command: 'echo c{i} >> log.txt'}}\n"
        ));
    }
    plan.push_str("      - id: hold\n        task: {}\n");
    plan.push_str("      - id: marker\n        run: {command: 'touch marker'}\n");
    plan
}

/// The page size and the bytes of a SQLite file.
fn pages(db: &Path) -> (usize, Vec<u8>) {
    let bytes = std::fs::read(db).expect("journal");
    assert!(bytes.len() > 100 && bytes.starts_with(b"SQLite format 3\0"));
    let size = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    let size = if size == 1 { 65536 } else { size };
    (size, bytes)
}

/// The ways a journal gets damaged on disk.
fn damaged_copies(db: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let (page, bytes) = pages(db);
    let count = bytes.len() / page;
    // A table leaf (type 13) other than the schema's page 1: its header
    // and cell pointers overwritten, as a bad sector or a stray write does.
    let leaf = (1..count)
        .rev()
        .find(|&p| bytes[p * page] == 13)
        .expect("a table leaf page");
    let mut flipped = bytes.clone();
    for b in &mut flipped[leaf * page..leaf * page + 16] {
        *b ^= 0xA5;
    }
    let truncated = bytes[..(count / 2) * page].to_vec();
    let mut garbage = bytes.clone();
    for (i, b) in garbage[..100].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0x5C;
    }
    vec![
        ("flipped bytes in a data page", flipped),
        ("truncated", truncated),
        ("garbage header", garbage),
    ]
}

/// A run paused on a task, its journal damaged in several ways: `golive
/// run --resume` and `golive status` refuse each copy, naming the journal
/// file and what to do, and the marker command never runs.
#[test]
fn a_damaged_journal_is_refused_and_nothing_runs() {
    let dir = scratch("faults-corrupt");
    let db = dir.join("journal.db");
    std::fs::write(dir.join("plan.yaml"), marker_plan()).expect("plan");
    let log = dir.join("run.log");
    let mut child = golive(&["run", "plan.yaml"], &dir, &db)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("golive run");
    let run = run_id(&log);
    await_text(&log, "waiting", WAIT);
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    assert_eq!(exit_code(&mut child, Duration::from_secs(30)), 143);
    assert!(!db.with_extension("db-wal").exists(), "WAL checkpointed");

    // The intact journal resumes as far as the task (stopped again there).
    let status = golive(&["status", &run], &dir, &db)
        .output()
        .expect("status");
    assert!(status.status.success(), "{}", stderr(&status));

    for (how, bytes) in damaged_copies(&db) {
        let copy_dir = dir.join(how.replace(' ', "-"));
        std::fs::create_dir_all(&copy_dir).expect("dir");
        let copy = copy_dir.join("journal.db");
        std::fs::write(&copy, bytes).expect("copy");
        let resume = golive(&["run", "--resume", &run], &copy_dir, &copy)
            .output()
            .expect("resume");
        let err = stderr(&resume);
        assert!(!resume.status.success(), "{how}: resumed: {err}");
        assert!(
            err.contains("is damaged") && err.contains(&copy.display().to_string()),
            "{how}: {err}"
        );
        assert!(err.contains("Restore it from a backup"), "{how}: {err}");
        assert!(!copy_dir.join("marker").exists(), "{how}: the marker ran");
        let status = golive(&["status", &run], &copy_dir, &copy)
            .output()
            .expect("status");
        let err = stderr(&status);
        assert!(!status.status.success(), "{how}: status shown: {err}");
        assert!(err.contains("is damaged"), "{how}: {err}");
    }
    assert!(!dir.join("marker").exists());
}

/// A small tmpfs of the test's own, unmounted on drop; `None` (with the
/// reason printed) where mounting is not allowed.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "golive-test"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(at.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}); a full disk is not tested",
                    stderr(&o).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: no mount command ({e}); a full disk is not tested");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The journal's disk fills up under a running command: golive stops with
/// an error naming the journal and the run (and how to go on), not a bare
/// database error; once space is freed the run resumes and ends, and no
/// command ran twice.
#[test]
fn a_full_disk_stops_the_run_naming_the_journal_and_the_run() {
    let dir = scratch("faults-full");
    let Some(disk) = Tmpfs::mount(&dir.join("disk"), "4m") else {
        return;
    };
    let db = disk.0.join("journal.db");
    let plan = r#"name: full
phases:
  - title: go
    items:
      - id: before
        run: {command: 'echo before >> log.txt'}
      - id: fill
        run: {command: 'dd if=/dev/zero of=disk/fill bs=64k 2>/dev/null; echo fill >> log.txt'}
        on_interrupt: skip
      - id: after
        run: {command: 'echo after >> log.txt'}
"#;
    std::fs::write(dir.join("plan.yaml"), plan).expect("plan");
    let full = golive(&["run", "plan.yaml", "--lease-ttl", "1s"], &dir, &db)
        .output()
        .expect("golive run");
    let err = stderr(&full);
    assert_eq!(full.status.code(), Some(2), "{err}");
    let run = err
        .split_whitespace()
        .find(|w| w.starts_with("r-") && w.len() == 10)
        .expect("run id")
        .to_string();
    assert!(err.contains("the disk is full"), "{err}");
    assert!(
        err.contains(&format!(
            "run {run}: cannot write the journal {}",
            db.display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("golive run --resume {run}")), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("log.txt")).expect("log"),
        "before\nfill\n"
    );

    // Space freed (and the dead process's 1 s lease expired): the run goes on.
    std::fs::remove_file(disk.0.join("fill")).expect("free space");
    std::thread::sleep(Duration::from_millis(1100));
    let resumed = golive(&["run", "--resume", &run], &dir, &db)
        .output()
        .expect("resume");
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(
        std::fs::read_to_string(dir.join("log.txt")).expect("log"),
        "before\nfill\nafter\n"
    );
    let status = golive(&["status", &run, "--output", "json"], &dir, &db)
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(status["run"]["status"], "succeeded", "{status}");
    drop(disk);
}

/// A PostgreSQL cluster of the test's own on a free loopback port, run as
/// the `postgres` system user when the test runs as root (PostgreSQL
/// refuses to run as root); stopped and removed on drop.
struct PrivatePg {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_root: bool,
}

impl PrivatePg {
    /// `None` (with the reason printed) where no PostgreSQL server is
    /// installed.
    fn start(name: &str) -> Option<PrivatePg> {
        let Some(bin) = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
            .max()
        else {
            eprintln!("SKIPPED: no /usr/lib/postgresql/*/bin/initdb; the outage is not tested");
            return None;
        };
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        let as_root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        // Under /tmp: the postgres user must reach it, and a socket path
        // must stay short.
        let data = std::env::temp_dir().join(format!("golive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).expect("data dir");
        let pg = PrivatePg {
            bin,
            data,
            port: free_port(),
            as_root,
        };
        if as_root {
            let chown = Command::new("chown")
                .arg("postgres:")
                .arg(&pg.data)
                .status()
                .expect("chown");
            assert!(chown.success(), "chown postgres {}", pg.data.display());
        }
        let data = pg.data.display().to_string();
        pg.ok(&[
            "initdb",
            "-D",
            &data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        pg.ctl("start");
        Some(pg)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// golive on this cluster, retrying for `retry`, stderr to `log`.
    fn golive(&self, args: &[&str], dir: &Path, retry: &str, log: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_golive"));
        cmd.args(args)
            .current_dir(dir)
            .env("GOLIVE_DATABASE_URL", self.url())
            .env("GOLIVE_DB_RETRY", retry)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log"));
        cmd
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args).current_dir(std::env::temp_dir());
        cmd
    }

    fn ok(&self, args: &[&str]) {
        let out = self
            .command(args[0], &args[1..])
            .stdout(Stdio::null())
            .output()
            .expect("postgres tool");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }

    /// `pg_ctl start|stop|restart`, waiting until done; `stop` and
    /// `restart` in immediate mode: every session is cut off, as by a crash.
    fn ctl(&self, action: &str) {
        let data = self.data.display().to_string();
        let log = self.data.join("server.log").display().to_string();
        let options = format!(
            "-p {} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        let mut args = vec!["pg_ctl", action, "-D", &data, "-w", "-t", "60"];
        match action {
            "stop" | "restart" => args.extend(["-m", "immediate"]),
            _ => {}
        }
        if action != "stop" {
            args.extend(["-o", &options, "-l", &log]);
        }
        self.ok(&args);
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self
            .command("pg_ctl", &["stop", "-D", &data, "-m", "immediate"])
            .output();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A plan of `n` commands `{prefix}00`, `{prefix}01`, …, each appending
/// `start ID` and, 0.1 s later, `end ID` to `log`; `extra` is one more
/// line of each item (an `on_interrupt`, say).
fn logging_plan(name: &str, prefix: &str, n: usize, log: &str, extra: &str) -> String {
    let mut plan = format!("name: {name}\nphases:\n  - title: go\n    items:\n");
    for i in 0..n {
        let id = format!("{prefix}{i:02}");
        plan.push_str(&format!("      - id: {id}\n"));
        if !extra.is_empty() {
            plan.push_str(&format!("        {extra}\n"));
        }
        plan.push_str(&format!(
            "        run: {{command: 'echo start {id} >> {log}; sleep 0.1; echo end {id} >> {log}'}}\n"
        ));
    }
    plan
}

/// Lines in `file`.
fn lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn await_lines(file: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(file).len() < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} lines in {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A run on a private PostgreSQL cluster that is restarted (immediate
/// mode: every session cut off mid-statement) and later stopped for
/// longer than the run's lease: the run says it is paused, waits, takes its
/// lease back, and finishes once the database is back; every command ran
/// exactly once and the journal is whole.
#[test]
fn a_postgres_restart_and_outage_pause_the_run_which_then_finishes() {
    let Some(pg) = PrivatePg::start("outage") else {
        return;
    };
    let dir = scratch("faults-pg-outage");
    const N: usize = 60;
    let plan = logging_plan("outage", "c", N, "log.txt", "");
    std::fs::write(dir.join("plan.yaml"), plan).expect("plan");
    let log = dir.join("run.log");
    let mut child = pg
        .golive(
            &["run", "plan.yaml", "--lease-ttl", "2s"],
            &dir,
            "20s",
            &log,
        )
        .spawn()
        .expect("golive run");
    let run = run_id(&log);
    let out = dir.join("log.txt");

    // A restart cutting off every session, in the middle of the run.
    await_lines(&out, 20);
    pg.ctl("restart");
    // Later an outage longer than the 2 s lease.
    await_lines(&out, 60);
    pg.ctl("stop");
    std::thread::sleep(Duration::from_secs(6));
    let during = std::fs::read_to_string(&log).unwrap_or_default();
    pg.ctl("start");

    let code = exit_code(&mut child, Duration::from_secs(120));
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, 0, "{err}");
    assert!(
        during.contains("paused      the journal is not answering (cannot reach the database")
            && during.contains(&format!("run {run} waits for it")),
        "no pause reported during the outage:\n{during}"
    );
    assert!(
        err.contains("resumed     the journal answers again"),
        "{err}"
    );
    assert!(err.contains(&format!("run {run} succeeded")), "{err}");

    // Every command started once and ended once, in plan order.
    let expected: Vec<String> = (0..N)
        .flat_map(|i| [format!("start c{i:02}"), format!("end c{i:02}")])
        .collect();
    assert_eq!(lines(&out), expected, "{err}");

    // The journal: whole, every item passed at its first attempt, the
    // pauses recorded.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use golive_store::Store;
        let store = golive_store::open(&pg.url()).await.expect("journal");
        let id: golive_store::RunId = run.parse().expect("run id");
        let events = store.events_after(&id, 0, 100_000).await.expect("events");
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        let gap_free: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, gap_free);
        let paused = events.iter().filter(|e| e.kind == "journal.paused").count();
        assert!(paused >= 1, "no journal.paused event");
        for state in store.item_states(&id).await.expect("items") {
            assert_eq!(state.status, golive_store::ItemStatus::Passed, "{state:?}");
            assert_eq!(state.attempts, 1, "{state:?}");
        }
        let started = events.iter().filter(|e| e.kind == "item.started").count();
        assert_eq!(started, N);
        store.close().await;
    });

    gives_up_past_its_budget_and_resumes_later(&pg, &dir);
    a_stop_signal_ends_a_pause_at_once(&pg, &dir);
    a_served_run_pauses_too(&pg, &dir);
}

/// `golive serve` on the cluster: a run started through the API pauses
/// while the database is stopped for longer than its lease, says so in the
/// server's log, and finishes once it is back; every command ran once.
fn a_served_run_pauses_too(pg: &PrivatePg, dir: &Path) {
    const N: usize = 30;
    let plan = logging_plan("served", "v", N, "served.txt", "");
    std::fs::write(dir.join("served.yaml"), plan).expect("plan");
    let golive = |args: &[&str], log: &str| pg.golive(args, dir, "30s", &dir.join(log));
    let token = golive(
        &["token", "create", "--name", "olga", "--role", "operator"],
        "token.log",
    )
    .stdout(Stdio::piped())
    .output()
    .expect("token create");
    assert!(token.status.success());
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let serve = golive(&SERVE, "serve.log");
    /// The server, stopped however the test ends.
    struct Server(Running);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.child.kill();
            let _ = self.0.child.wait();
        }
    }
    let (server, base) = serve_with(serve);
    let mut server = Server(server);
    let client_log = dir.join("served-client.log");
    let mut client = golive(
        &["run", "served.yaml", "--server", &base, "--token", &token],
        "served-client.log",
    )
    .spawn()
    .expect("golive run --server");
    let run = run_id(&client_log);
    let out = dir.join("served.txt");
    await_lines(&out, 10);
    pg.ctl("stop");
    server.0.wait_for("the journal is not answering");
    // Longer than the 2 s lease.
    std::thread::sleep(Duration::from_secs(3));
    pg.ctl("start");
    server.0.wait_for("the journal answers again");
    // The client follows the run through the server's event stream.
    let code = exit_code(&mut client, Duration::from_secs(60));
    let said = std::fs::read_to_string(&client_log).unwrap_or_default();
    assert_eq!(code, 0, "{said}");
    assert!(said.contains(&format!("run {run} succeeded")), "{said}");
    let status = golive(&["status", &run, "--output", "json"], "served-status.log")
        .stdout(Stdio::piped())
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(status["run"]["status"], "succeeded", "{status}");
    drop(server);
    let expected: Vec<String> = (0..N)
        .flat_map(|i| [format!("start v{i:02}"), format!("end v{i:02}")])
        .collect();
    assert_eq!(lines(&out), expected);
}

/// SIGTERM while the run waits for the database ends golive at once, not
/// after the 60 s budget; the run resumes later.
fn a_stop_signal_ends_a_pause_at_once(pg: &PrivatePg, dir: &Path) {
    const N: usize = 20;
    let plan = logging_plan("stop", "s", N, "stop.txt", "on_interrupt: skip");
    std::fs::write(dir.join("stop.yaml"), plan).expect("plan");
    let log = dir.join("stop.log");
    let mut child = pg
        .golive(&["run", "stop.yaml", "--lease-ttl", "2s"], dir, "60s", &log)
        .spawn()
        .expect("golive run");
    let run = run_id(&log);
    let out = dir.join("stop.txt");
    await_lines(&out, 6);
    pg.ctl("stop");
    await_text(&log, "paused", WAIT);
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    // Well before the 60 s budget.
    let code = exit_code(&mut child, Duration::from_secs(15));
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert_ne!(code, 0, "{err}");
    assert!(!err.contains("gave up"), "{err}");

    pg.ctl("start");
    std::thread::sleep(Duration::from_millis(2100));
    let resume_log = dir.join("stop-resume.log");
    let mut resume = pg
        .golive(&["run", "--resume", &run], dir, "60s", &resume_log)
        .spawn()
        .expect("resume");
    let code = exit_code(&mut resume, Duration::from_secs(60));
    let err = std::fs::read_to_string(&resume_log).unwrap_or_default();
    assert_eq!(code, 0, "{err}");
    let lines = lines(&out);
    for i in 0..N {
        let starts = lines
            .iter()
            .filter(|l| **l == format!("start s{i:02}"))
            .count();
        assert!(starts <= 1, "s{i:02} started {starts} times: {lines:?}");
    }
}

/// An outage longer than `GOLIVE_DB_RETRY`: golive says it gives up and
/// exits 2 soon after (no second wait for its lease); once the database is
/// back the run resumes and finishes, no command having run twice.
fn gives_up_past_its_budget_and_resumes_later(pg: &PrivatePg, dir: &Path) {
    const N: usize = 30;
    let plan = logging_plan("give-up", "g", N, "give-up.txt", "on_interrupt: skip");
    std::fs::write(dir.join("give-up.yaml"), plan).expect("plan");
    let golive = |args: &[&str], log: &str| pg.golive(args, dir, "2s", &dir.join(log));
    let log = dir.join("give-up.log");
    let mut child = golive(&["run", "give-up.yaml", "--lease-ttl", "2s"], "give-up.log")
        .spawn()
        .expect("golive run");
    let run = run_id(&log);
    let out = dir.join("give-up.txt");
    await_lines(&out, 10);
    pg.ctl("stop");
    let code = exit_code(&mut child, Duration::from_secs(30));
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("gave up     the journal") && err.contains(&format!("run {run} stops")),
        "{err}"
    );

    pg.ctl("start");
    // The lease of the process that gave up (it could not release it) expires.
    std::thread::sleep(Duration::from_millis(2100));
    let mut resume = golive(&["run", "--resume", &run], "give-up-resume.log")
        .spawn()
        .expect("resume");
    let code = exit_code(&mut resume, Duration::from_secs(60));
    let err = std::fs::read_to_string(dir.join("give-up-resume.log")).unwrap_or_default();
    assert_eq!(code, 0, "{err}");
    // The item cut off (if its command ran) was skipped by its
    // on_interrupt; every other command ran exactly once.
    let lines = lines(&out);
    for i in 0..N {
        let starts = lines
            .iter()
            .filter(|l| **l == format!("start g{i:02}"))
            .count();
        assert!(starts <= 1, "g{i:02} started {starts} times: {lines:?}");
    }
    let ran = lines.iter().filter(|l| l.starts_with("start")).count();
    assert!(ran >= N - 1, "{lines:?}");
}
