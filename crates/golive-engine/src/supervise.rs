//! Supervised commands: a `run` item's command runs under a small process
//! that outlives golive, so a crash of golive neither orphans the command
//! unobserved nor makes a resume run it a second time.
//!
//! The supervisor is golive itself, re-executed as `golive __supervise`
//! ([`serve`]). It leaves golive's session (`setsid`), so a `kill -9` of
//! golive, or of its process group, does not reach it; it runs the command
//! in a process group of its own, as unsupervised commands run. It writes a
//! [`Record`] of the attempt at each step, each in place of the last
//! (write, rename), durably where a reboot would not make it moot (an fsync
//! of the file before the rename and of the directory after it; every state
//! but `running` and `stopped`, see `State::durable`):
//! 1. `starting`: the supervisor's pid and start time, before anything runs;
//!    then it answers `ready` and runs the command only once golive says
//!    `go` (if golive dies before that, it records `not-started` and exits);
//! 2. `running`: the command's pid and start time, once it runs;
//! 3. `finished` with the exit status and the capped, redacted output, or
//!    `stopped` when golive asked it to stop (SIGTERM/SIGINT to the
//!    supervisor, sent when the run stops): the command's group is killed.
//!
//! golive waits for the supervisor to exit and reads the result from the
//! record. A resume that finds the item `running` reads the record of the
//! same start ([`reattach`]): `finished` is the real result; a supervisor
//! still alive (or a command outliving it) is waited for; no record, or
//! `not-started`, means the command never ran; anything else (`stopped`, a
//! supervisor gone without a result, a reboot since) is truly unknown, and
//! only then does `on_interrupt` apply.
//!
//! Records live in a directory on the host that ran the command
//! ([`Supervisor::dir`]: beside a SQLite journal, under the per-user data
//! directory for PostgreSQL), one file per run, item and start:
//! `DIR/RUN/ITEM.START.json`; a retry of the same start overwrites it.
//! Reattaching is possible on the same host only: a resume elsewhere treats
//! an interrupted command as unknown. Processes are identified by pid and
//! start time (`/proc/PID/stat`), so a reused pid is not mistaken for the
//! command, and records carry the boot id, so a reboot is recognized.

use std::cell::Cell;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::items::command::{Attempt, Spec};

/// The hidden subcommand that turns golive into a supervisor.
pub const SUBCOMMAND: &str = "__supervise";

/// How long a stop waits for a supervisor to kill its command and record
/// that it did.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Which program supervises commands and where it keeps its records.
#[derive(Clone, Debug)]
pub struct Supervisor {
    /// The program run as `PROGRAM __supervise` (golive itself).
    pub program: PathBuf,
    /// The directory of the records (created, mode 0700, when first needed).
    pub dir: PathBuf,
}

impl Supervisor {
    /// The record of one start of one item.
    pub(crate) fn record(&self, run: &str, item: &str, start: u32) -> PathBuf {
        // Run and item ids are letters, digits, `-`, `_` and `.`, starting
        // with a letter or digit: safe as file names.
        self.dir.join(run).join(format!("{item}.{start}.json"))
    }

    /// Removes a finished run's records (best effort: they are small).
    pub(crate) fn forget(&self, run: &str) {
        let _ = std::fs::remove_dir_all(self.dir.join(run));
    }
}

static INSTALLED: OnceLock<Supervisor> = OnceLock::new();

/// Makes `supervisor` the one engines created from now on use (the first
/// call wins). Without one, commands run as golive's own children and a
/// crash of golive leaves the outcome of a running command unknown.
pub fn install(supervisor: Supervisor) {
    let _ = INSTALLED.set(supervisor);
}

/// The installed supervisor, if any.
pub fn installed() -> Option<&'static Supervisor> {
    INSTALLED.get()
}

/// Where an attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The supervisor runs; the command may or may not have started.
    Starting,
    /// The command runs (its pid is known).
    Running,
    /// The command ended; the result is recorded.
    Finished,
    /// golive stopped the attempt; the command was killed.
    Stopped,
    /// golive went away before saying `go`: nothing ran.
    NotStarted,
}

impl State {
    /// Whether a record in this state must survive a power cut. After a
    /// reboot every process of the old boot is gone, so a record that only
    /// names processes (`running`: the command's pid; `stopped`) reads the
    /// same as the `starting` record before it — the outcome is unknown —
    /// or, torn by the cut, unreadable, which is unknown too. `starting`
    /// must be durable before the command may run (without it a resume
    /// would find no record and run the command again); `finished` and
    /// `not-started` carry what a resume needs to know.
    fn durable(self) -> bool {
        !matches!(self, State::Running | State::Stopped)
    }
}

/// A process, told apart from a later one with the same pid by its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    /// Process id.
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/PID/stat`, field 22).
    pub start: u64,
}

impl Proc {
    /// This process.
    fn me() -> Option<Proc> {
        Proc::of(std::process::id())
    }

    /// The running process `pid`.
    fn of(pid: u32) -> Option<Proc> {
        let pid = i32::try_from(pid).ok()?;
        let (_, start) = stat(pid)?;
        Some(Proc { pid, start })
    }

    /// Still running (a zombie is not): the same pid with the same start.
    pub fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|(state, start)| start == self.start && state != 'Z')
    }

    fn pid(&self) -> Option<Pid> {
        Pid::from_raw(self.pid)
    }
}

/// Some process `pid` runs (a zombie does not).
pub(crate) fn running(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

/// A process's state letter and start time, from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields that follow start after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 was the state; the start time is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

/// This boot's id: a record from another boot describes processes that are
/// gone, whatever their pids are now.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// One attempt of one command, as the supervisor records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The attempt (1 for the first, more for retries of the same start).
    pub attempt: u32,
    /// The boot it ran in.
    pub boot: String,
    /// The supervisor.
    pub supervisor: Proc,
    /// The command's shell, once it runs (its pid is its process group).
    pub command: Option<Proc>,
    /// Where it stands.
    pub state: State,
    /// The result, once finished.
    pub result: Option<Attempt>,
}

/// Writes `record` in place of the old one, atomically: a crash of any
/// process leaves one or the other. Durably, against a power cut too,
/// unless the record's state says nothing a reboot would not make moot
/// ([`State::durable`]).
fn write_record(path: &Path, record: &Record) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(record).map_err(std::io::Error::other)?)?;
    let durable = record.state.durable();
    if durable {
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if durable {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The record at `path`; `None` when there is none.
pub fn read_record(path: &Path) -> std::io::Result<Option<Record>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What golive sends the supervisor on its standard input (one JSON line).
#[derive(Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) record: PathBuf,
    pub(crate) attempt: u32,
    pub(crate) spec: Spec,
}

/// `golive __supervise`: reads an [`Order`], records, runs and records
/// (see the module's documentation). The process's exit code.
pub async fn serve() -> i32 {
    // Out of golive's session and process group: what kills golive (a
    // SIGKILL of its group, a closed terminal) leaves the supervisor be.
    let _ = rustix::process::setsid();
    let signals = (
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()),
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()),
        // Ignored: a hangup is not a stop.
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()),
    );
    let (Ok(mut term), Ok(mut int), Ok(_hup)) = signals else {
        return 2;
    };
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut stdout = tokio::io::stdout();
    let mut line = String::new();
    if stdin.read_line(&mut line).await.is_err() {
        return 2;
    }
    let Ok(order) = serde_json::from_str::<Order>(&line) else {
        return 2;
    };
    let Some(me) = Proc::me() else {
        return 2;
    };
    let mut record = Record {
        attempt: order.attempt,
        boot: boot_id(),
        supervisor: me,
        command: None,
        state: State::Starting,
        result: None,
    };
    let answer = match write_record(&order.record, &record) {
        Ok(()) => "ready\n".to_string(),
        Err(e) => format!("cannot write {}: {e}\n", order.record.display()),
    };
    if answer != "ready\n" {
        return 2;
    }
    if stdout.write_all(answer.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
        // golive is gone (killed before it read the answer): nothing ran.
        record.state = State::NotStarted;
        return 2 + i32::from(write_record(&order.record, &record).is_err());
    }
    line.clear();
    let go = tokio::select! {
        r = stdin.read_line(&mut line) => r.is_ok() && line.trim() == "go",
        _ = term.recv() => false,
        _ = int.recv() => false,
    };
    if !go {
        record.state = State::NotStarted;
        return i32::from(write_record(&order.record, &record).is_err());
    }
    let command = Cell::new(None);
    let running = {
        let mut running = record.clone();
        let path = order.record.clone();
        let command = &command;
        move |pid: u32| {
            running.command = Proc::of(pid);
            running.state = State::Running;
            command.set(running.command);
            // Should this fail, the `starting` record stands: a resume
            // waits for this supervisor, which is alive until it finishes.
            let _ = write_record(&path, &running);
        }
    };
    let ended = tokio::select! {
        a = crate::items::command::execute(&order.spec, running) => Some(a),
        _ = term.recv() => None,
        _ = int.recv() => None,
    };
    record.command = command.get();
    match ended {
        Some(a) => {
            record.state = State::Finished;
            record.result = Some(a);
        }
        None => record.state = State::Stopped,
    }
    i32::from(write_record(&order.record, &record).is_err())
}

/// Ends a supervised attempt when dropped while armed: the run stopped (its
/// future was dropped). A supervisor is asked to stop (SIGTERM: it kills
/// the command's group and records `stopped`) and waited for; a command
/// that outlived its supervisor has its group killed.
enum StopGuard {
    Supervisor(Proc),
    Group(Proc),
    Disarmed,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        match *self {
            StopGuard::Supervisor(p) => {
                if let Some(pid) = p.pid().filter(|_| p.alive()) {
                    let _ = kill_process(pid, Signal::TERM);
                    let until = Instant::now() + STOP_WAIT;
                    while p.alive() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            StopGuard::Group(p) => {
                if let Some(pid) = p.pid().filter(|_| p.alive()) {
                    let _ = kill_process_group(pid, Signal::KILL);
                }
            }
            StopGuard::Disarmed => {}
        }
    }
}

/// Runs one attempt under a supervisor and returns its recorded result.
/// `Err` names what went wrong when there is no result.
pub(crate) async fn attempt(
    supervisor: &Supervisor,
    record: &Path,
    attempt: u32,
    spec: &Spec,
) -> Result<Attempt, String> {
    let order = Order {
        record: record.to_path_buf(),
        attempt,
        spec: spec.clone(),
    };
    let mut line = serde_json::to_string(&order).map_err(|e| e.to_string())?;
    line.push('\n');
    let mut command = tokio::process::Command::new(&supervisor.program);
    golive_runtime::host_env::apply(&mut command);
    let mut child = command
        .arg(SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start the supervisor `{}`: {e}",
                supervisor.program.display()
            )
        })?;
    let guard = match child.id().and_then(Proc::of) {
        Some(p) => StopGuard::Supervisor(p),
        None => StopGuard::Disarmed,
    };
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the supervisor has no pipes".into());
    };
    stdin
        .write_all(line.as_bytes())
        .await
        .map_err(|e| format!("cannot instruct the supervisor: {e}"))?;
    let mut answer = String::new();
    BufReader::new(stdout)
        .read_line(&mut answer)
        .await
        .map_err(|e| format!("no answer from the supervisor: {e}"))?;
    if answer.trim() != "ready" {
        let _ = child.wait().await;
        return Err(match answer.trim() {
            "" => format!(
                "the supervisor `{} {SUBCOMMAND}` ended without answering (it needs /proc)",
                supervisor.program.display()
            ),
            why => format!("the supervisor could not start: {why}"),
        });
    }
    stdin
        .write_all(b"go\n")
        .await
        .map_err(|e| format!("cannot instruct the supervisor: {e}"))?;
    drop(stdin);
    let status = child.wait().await;
    guard.disarm();
    match read_record(record) {
        Ok(Some(Record {
            state: State::Finished,
            result: Some(result),
            ..
        })) => Ok(result),
        Ok(r) => Err(format!(
            "the supervisor ended ({}) without recording a result{}",
            status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            r.map(|r| format!(" (state {:?})", r.state))
                .unwrap_or_default()
        )),
        Err(e) => Err(format!("cannot read {}: {e}", record.display())),
    }
}

impl StopGuard {
    /// Guards `next` instead (the one guarded so far is not stopped).
    fn watch(&mut self, next: StopGuard) {
        std::mem::replace(self, next).disarm();
    }

    fn disarm(self) {
        // Plain data: forgetting it only skips the stop.
        std::mem::forget(self);
    }
}

/// What a resume finds of a command that was running when golive stopped.
#[derive(Debug)]
pub(crate) enum Found {
    /// It never ran: run it.
    NeverStarted,
    /// It ended while golive was away (or was waited for): its record.
    Finished(Record),
    /// Nobody can tell whether and how it ran: why.
    Unknown(String),
}

/// Reads the record at `path`, waiting (every `poll`) while its supervisor,
/// or a command that outlived it, still runs. Dropped while waiting (the
/// run stopped), it stops the supervisor or kills the command's group.
pub(crate) async fn reattach(path: &Path, poll: Duration) -> Found {
    let mut guard = StopGuard::Disarmed;
    let found = loop {
        let record = match read_record(path) {
            Ok(None) => break Found::NeverStarted,
            Ok(Some(r)) => r,
            Err(e) => break Found::Unknown(format!("cannot read {}: {e}", path.display())),
        };
        if record.state == State::Finished {
            break Found::Finished(record);
        }
        if record.boot != boot_id() {
            break Found::Unknown("the machine restarted while the command ran".into());
        }
        match record.state {
            State::NotStarted => break Found::NeverStarted,
            State::Stopped => {
                break Found::Unknown("the command was stopped before it ended".into());
            }
            _ if record.supervisor.alive() => {
                guard.watch(StopGuard::Supervisor(record.supervisor));
            }
            _ => match record.command.filter(Proc::alive) {
                Some(command) => guard.watch(StopGuard::Group(command)),
                // Gone without a result — unless the record moved on
                // (finished, not started) between the read above and the
                // look at the processes: then look again.
                None => match read_record(path) {
                    Ok(Some(r)) if r.state != record.state => continue,
                    _ => {
                        break Found::Unknown(
                            "its supervisor ended without recording a result".into(),
                        );
                    }
                },
            },
        }
        tokio::time::sleep(poll).await;
    };
    guard.disarm();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_known_by_its_pid_and_start_time() {
        let me = Proc::me().expect("this process");
        assert!(me.alive());
        let reused = Proc {
            start: me.start + 1,
            ..me
        };
        assert!(!reused.alive(), "same pid, other start: another process");
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let p = Proc::of(child.id()).expect("child");
        assert!(p.alive() && running(p.pid));
        child.kill().expect("kill");
        // Killed but not yet reaped: a zombie is not alive.
        let until = Instant::now() + Duration::from_secs(5);
        while p.alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!p.alive() && !running(p.pid));
        child.wait().expect("wait");
        assert!(!p.alive());
    }

    #[test]
    fn records_round_trip_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sup = Supervisor {
            program: PathBuf::from("golive"),
            dir: dir.path().join("records"),
        };
        let path = sup.record("r-abcdefgh", "deploy.web", 2);
        assert!(read_record(&path).expect("read").is_none());
        let record = Record {
            attempt: 1,
            boot: boot_id(),
            supervisor: Proc::me().expect("me"),
            command: None,
            state: State::Starting,
            result: None,
        };
        write_record(&path, &record).expect("write");
        let back = read_record(&path).expect("read").expect("a record");
        assert_eq!((back.attempt, back.state), (1, State::Starting));
        assert!(path.ends_with("r-abcdefgh/deploy.web.2.json"));
        std::fs::write(&path, "{not json").expect("garbage");
        assert!(
            read_record(&path).is_err(),
            "a damaged record is an error, not a missing one"
        );
        sup.forget("r-abcdefgh");
        assert!(!path.exists());
    }
}
