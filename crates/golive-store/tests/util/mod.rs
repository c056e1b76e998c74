//! Fixtures: each story runs against a fresh SQLite file in a temporary
//! directory and against a fresh PostgreSQL schema, and leaves neither behind.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use golive_store::{AnyStore, ManualClock, Store, open};

/// Which backend a story runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty journal and the means to open it again.
pub struct Fixture {
    /// The store under test.
    pub store: AnyStore,
    /// Which backend.
    pub backend: Backend,
    url: String,
    clock: Option<ManualClock>,
    // Dropped last: removes the directory or the schema.
    _cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(SqliteDir),
    Postgres(PgSchema),
}

impl Fixture {
    /// Another store on the same database (another pool: "another process").
    pub async fn open_another(&self) -> AnyStore {
        let store = open(&self.url).await.expect("reopen");
        match (store, &self.clock) {
            (AnyStore::Sqlite(s), Some(clock)) => AnyStore::Sqlite(s.with_clock(clock.clone())),
            (store, _) => store,
        }
    }

    /// Lets `by` pass: moves the manual clock on SQLite; sleeps on
    /// PostgreSQL, whose own clock decides.
    pub async fn pass_time(&self, by: Duration) {
        match &self.clock {
            Some(clock) => clock.advance(by),
            None => tokio::time::sleep(by).await,
        }
    }

    /// Closes the store, makes the database read-only and opens it again:
    /// a chmod 0444 file (made immutable too when running as root, who
    /// ignores modes) on SQLite, a read-only session on PostgreSQL. `None`
    /// when this machine cannot make a file read-only.
    pub async fn reopen_read_only(&self) -> Option<AnyStore> {
        self.store.close().await;
        let url = match &self._cleanup {
            Cleanup::Sqlite(dir) => {
                if !dir.lock(&dir.db_path(), false) {
                    eprintln!("cannot make a file read-only here; skipping");
                    return None;
                }
                self.url.clone()
            }
            Cleanup::Postgres(schema) => {
                format!("{}%20-cdefault_transaction_read_only%3Don", schema.url())
            }
        };
        Some(
            open(&url)
                .await
                .expect("a read-only database opens for reading"),
        )
    }
}

/// Runs `story` on a fresh SQLite file with a manual clock.
pub async fn on_sqlite<F, Fut>(story: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = SqliteDir::new();
    let url = format!("sqlite://{}", dir.db_path().display());
    let clock = ManualClock::new(jiff::Timestamp::now());
    let store = match open(&url).await.expect("open sqlite") {
        AnyStore::Sqlite(s) => AnyStore::Sqlite(s.with_clock(clock.clone())),
        other => panic!("sqlite URL opened {other:?}"),
    };
    story(Fixture {
        store,
        backend: Backend::Sqlite,
        url,
        clock: Some(clock),
        _cleanup: Cleanup::Sqlite(dir),
    })
    .await;
}

/// Runs `story` in a fresh PostgreSQL schema, dropped afterwards (also when
/// the story panics).
pub async fn on_postgres<F, Fut>(story: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    let schema = PgSchema::create();
    let url = schema.url();
    let store = open(&url).await.expect("open postgres");
    assert!(matches!(store, AnyStore::Postgres(_)));
    story(Fixture {
        store,
        backend: Backend::Postgres,
        url,
        clock: None,
        _cleanup: Cleanup::Postgres(schema),
    })
    .await;
}

/// A temporary directory holding `golive.db`; restores the write bits (and
/// clears the immutable flag) of whatever a test locked before removal.
pub struct SqliteDir {
    locked: Arc<Mutex<Vec<PathBuf>>>,
    dir: tempfile::TempDir,
}

impl SqliteDir {
    pub fn new() -> SqliteDir {
        SqliteDir {
            locked: Arc::default(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("golive.db")
    }

    /// Makes a file (or a directory) unwritable; `false` if it stays
    /// writable anyway.
    pub fn lock(&self, path: &Path, is_dir: bool) -> bool {
        use std::os::unix::fs::PermissionsExt;
        self.locked
            .lock()
            .expect("lock list")
            .push(path.to_path_buf());
        let mode = if is_dir { 0o555 } else { 0o444 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        if writable(path, is_dir) {
            // root ignores modes; the immutable attribute stops root too.
            let _ = std::process::Command::new("chattr")
                .arg("+i")
                .arg(path)
                .status();
        }
        !writable(path, is_dir)
    }
}

fn writable(path: &Path, is_dir: bool) -> bool {
    if is_dir {
        let probe = path.join(".write-probe");
        let ok = std::fs::File::create(&probe).is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    } else {
        std::fs::OpenOptions::new().append(true).open(path).is_ok()
    }
}

impl Drop for SqliteDir {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let locked = self.locked.lock().map(|l| l.clone()).unwrap_or_default();
        for path in locked.iter().rev() {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(path)
                .stderr(std::process::Stdio::null())
                .status();
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
        }
    }
}

pub use golive_testkit::PgSchema;

/// Declares one test per backend for each story: `NAME::sqlite` and
/// `NAME::postgres`, both running `crate::NAME(fixture)`.
#[macro_export]
macro_rules! stories {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::util::on_sqlite($crate::$name).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::util::on_postgres($crate::$name).await
                }
            }
        )*
    };
}
