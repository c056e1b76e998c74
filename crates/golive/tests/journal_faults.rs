//! The journal's faults, through the binary: a damaged SQLite journal is
//! refused before anything runs, a full disk stops the run with an error
//! naming the journal and the run, and a PostgreSQL restart or outage
//! pauses the run, which goes on when the database returns without
//! running any command twice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Waits (up to 60 s) until `file` contains `needle`; returns its text.
fn await_text(file: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "no `{needle}` in {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_id(log: &Path) -> String {
    let text = await_text(log, " started");
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
    await_text(&log, "waiting");
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
