//! The PostgreSQL backend, for several golive processes sharing one database
//! (a team's runner and its server, a second runner taking over).
//!
//! The database's clock (`now()`) stamps everything and decides leases, so
//! clock skew between hosts cannot hand a run to two processes. Every write
//! first locks the run's row (updating it, or `FOR NO KEY UPDATE`): writes
//! to one run are serialized, and `seq` stays gap-free across processes.
//! An item's move, the hot path of a run, is one statement: one round trip,
//! its own transaction; a finish commits without waiting for its WAL flush
//! (`synchronous_commit = off` for that transaction: see
//! [`Store::finish_item`](crate::Store::finish_item)).
//!
//! The store's operations are written once (`crate::ops`); this module
//! gives them PostgreSQL's spelling, transactions and cells (`Dialect`) and
//! makes item moves its own way (`Backend`).

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, Row};
use time::OffsetDateTime;

use crate::dialect::{Arg, Cells, Dialect};
use crate::model::Move;
use crate::ops::Backend;
use crate::ops::journal::{item_from, run_not_found};
use crate::{DbUrl, ItemState, Outcome, RunId, StoreError, kind, migrations};

type Result<T, E = StoreError> = std::result::Result<T, E>;
type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// How long a pooled connection may sit idle before it is pinged again.
const PING_IDLE: Duration = Duration::from_secs(1);

/// A journal in a PostgreSQL database. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    url: DbUrl,
    restarts: Arc<RestartWatch>,
}

/// Notices a restart of the server: each new connection reads the
/// server's start time (`pg_postmaster_start_time()`); a change means the
/// server restarted, and commits made with `synchronous_commit = off` just
/// before may be lost (see [`Store::finish_item`](crate::Store::finish_item)).
#[derive(Debug, Default)]
struct RestartWatch {
    started: Mutex<Option<OffsetDateTime>>,
    restarted: AtomicBool,
}

impl RestartWatch {
    fn saw(&self, started: OffsetDateTime) {
        let mut known = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if known.is_some_and(|k| k != started) {
            self.restarted.store(true, Ordering::SeqCst);
        }
        *known = Some(started);
    }
}

async fn server_started(conn: &mut PgConnection) -> Result<OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_postmaster_start_time()")
        .fetch_one(conn)
        .await
}

impl PgStore {
    /// Connects, applies the migrations (in the first schema of the
    /// connection's `search_path`), and keeps a pool.
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn open(url: impl Into<DbUrl>) -> Result<PgStore> {
        let url = url.into();
        let options = PgConnectOptions::from_str(url.expose_password())
            .map_err(|e| StoreError::BadUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?
            .application_name("golive")
            .disable_statement_logging();
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|source| StoreError::Unavailable {
                url: url.clone(),
                source,
            })?;
        migrations::apply(&migrations::POSTGRES, &mut conn, &url).await?;
        let restarts = Arc::new(RestartWatch::default());
        restarts.saw(
            server_started(&mut conn)
                .await
                .map_err(|e| StoreError::from(e).at(&url))?,
        );
        conn.close()
            .await
            .map_err(|e| StoreError::from(e).at(&url))?;
        // A connection idle for a while is pinged before it is handed out
        // (the server may have closed it meanwhile); one just used is not:
        // the ping is a round trip, as long as a small statement's.
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .after_connect({
                let restarts = Arc::clone(&restarts);
                move |conn, _| {
                    let restarts = Arc::clone(&restarts);
                    Box::pin(async move {
                        restarts.saw(server_started(conn).await?);
                        Ok(())
                    })
                }
            })
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        Ok(PgStore {
            pool,
            url,
            restarts,
        })
    }

    /// The URL it was opened with (password hidden when printed).
    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }
}

impl Dialect for PgStore {
    type Row = PgRow;
    type Tx = Tx;

    const JSON_IN: &'static str = "::jsonb";
    const JSON_OUT: &'static str = "::text";
    const LOCK_ROW: Option<&'static str> = Some(" FOR UPDATE");

    fn now_ms(&self) -> Option<i64> {
        None
    }

    async fn begin(&self) -> Result<Tx> {
        PgStore::begin(self).await
    }

    async fn commit(tx: Tx) -> Result<()> {
        Ok(tx.commit().await?)
    }

    async fn fetch<'a>(
        &'a self,
        tx: Option<&'a mut Tx>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        let query = bound(sql, args)?;
        match tx {
            Some(tx) => query.fetch_all(&mut **tx).await,
            None => query.fetch_all(&self.pool).await,
        }
    }

    async fn execute<'a>(
        &'a self,
        tx: Option<&'a mut Tx>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> Result<u64, sqlx::Error> {
        let query = bound(sql, args)?;
        Ok(match tx {
            Some(tx) => query.execute(&mut **tx).await?,
            None => query.execute(&self.pool).await?,
        }
        .rows_affected())
    }

    /// One statement, however many items.
    async fn insert_items<'a>(
        tx: &'a mut Tx,
        run: &'a str,
        items: &'a [String],
        _now: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        let positions: Vec<i32> = (0..items.len())
            .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        sqlx::query(
            "INSERT INTO items (run_id, item_id, position, status) \
             SELECT $1, item, position, 'pending' FROM UNNEST($2::text[], $3::int4[]) \
             AS t(item, position)",
        )
        .bind(run)
        .bind(items)
        .bind(&positions)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// `sql` with `args` bound as PostgreSQL takes them: times as
/// `timestamptz`, JSON as text the statement casts.
fn bound<'a>(
    sql: &'a str,
    args: Vec<Arg<'a>>,
) -> Result<sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>, sqlx::Error> {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = match arg {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Json(v) => query.bind(v),
            Arg::Time(v) => query.bind(v.map(odt).transpose().map_err(encode)?),
            Arg::AtLeast(v) => query.bind(odt(v).map_err(encode)?),
            Arg::Later(d) => query.bind(d.as_secs_f64()),
            // Never rendered: the database's clock stamps changes here.
            Arg::Now(ms) => query.bind(ms),
        };
    }
    Ok(query)
}

fn encode(e: StoreError) -> sqlx::Error {
    sqlx::Error::Encode(Box::new(e))
}

impl Cells for PgRow {
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        // Positions and attempts are `integer`; counters and seqs `bigint`.
        match self.try_get::<Option<i64>, _>(column) {
            Err(sqlx::Error::ColumnDecode { .. }) => {
                Ok(self.try_get::<Option<i32>, _>(column)?.map(i64::from))
            }
            other => Ok(other?),
        }
    }

    fn opt_bool(&self, column: &str) -> Result<Option<bool>> {
        Ok(self.try_get(column)?)
    }

    fn opt_time(&self, column: &str) -> Result<Option<Timestamp>> {
        opt_ts(self.try_get(column)?)
    }
}

fn ts(t: OffsetDateTime) -> Result<Timestamp> {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos())
        .map_err(|e| StoreError::Corrupt(format!("timestamp {t}: {e}")))
}

fn opt_ts(t: Option<OffsetDateTime>) -> Result<Option<Timestamp>> {
    t.map(ts).transpose()
}

fn odt(t: Timestamp) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .map_err(|e| StoreError::Corrupt(format!("timestamp {t}: {e}")))
}

impl PgStore {
    /// Moves one item and journals the move in one statement ([`move_sql`]),
    /// one round trip, its own transaction.
    async fn move_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        mv: Move<'_>,
    ) -> Result<ItemState> {
        let query = sqlx::query(move_sql(mv))
            .bind(run)
            .bind(owner)
            .bind(item)
            .bind(mv.kind());
        let query = match mv {
            Move::Start => query,
            Move::Finish(outcome, result) => query.bind(outcome.as_str()).bind(result.to_string()),
            Move::Wait(detail) => query.bind(detail.to_string()),
        };
        // fetch_all, not fetch_optional: no row limit on the portal, the
        // statement runs to its end whatever it returns.
        let rows = query.fetch_all(&self.pool).await?;
        let Some(row) = rows.first() else {
            return Err(run_not_found(run));
        };
        if !row.try_get::<bool, _>("held")? {
            return Err(StoreError::LeaseLost {
                run: run.clone(),
                owner: owner.to_string(),
            });
        }
        let Some(from) = row.try_get::<Option<&str>, _>("from_status")? else {
            return Err(StoreError::NotFound(format!("item `{item}` in run {run}")));
        };
        if row.try_get::<Option<&str>, _>("item_id")?.is_some() {
            return item_from(row);
        }
        Err(match mv.check(item, from.parse()?) {
            Err(refused) => refused,
            Ok(()) => StoreError::Corrupt(format!(
                "item `{item}` in run {run}: moving it from {from} wrote nothing"
            )),
        })
    }
}

impl PgStore {
    /// [`Store::finish_and_start`](crate::Store::finish_and_start): both moves in one statement
    /// ([`finish_start_sql`]), one round trip, its own transaction, flushed
    /// before it returns (the start needs it).
    async fn finish_start(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
        next: &str,
    ) -> Result<(ItemState, ItemState)> {
        // `item != next` (checked by the caller): the statement would
        // update one row twice, which PostgreSQL does not do.
        let rows = sqlx::query(finish_start_sql(outcome))
            .bind(run)
            .bind(owner)
            .bind(item)
            .bind(outcome.as_str())
            .bind(result.to_string())
            .bind(next)
            .fetch_all(&self.pool)
            .await?;
        let Some(first) = rows.first() else {
            return Err(run_not_found(run));
        };
        if !first.try_get::<bool, _>("held")? {
            return Err(StoreError::LeaseLost {
                run: run.clone(),
                owner: owner.to_string(),
            });
        }
        if let [finished, started] = rows.as_slice()
            && finished.try_get::<Option<&str>, _>("item_id")?.is_some()
            && started.try_get::<Option<&str>, _>("item_id")?.is_some()
        {
            return Ok((item_from(finished)?, item_from(started)?));
        }
        // Nothing moved: word the first refusal, as the two calls would.
        let refusal = |id: &str, column: &str, mv: Move<'_>| -> Result<Option<StoreError>> {
            let Some(from) = first.try_get::<Option<&str>, _>(column)? else {
                return Ok(Some(StoreError::NotFound(format!(
                    "item `{id}` in run {run}"
                ))));
            };
            Ok(mv.check(id, from.parse()?).err())
        };
        if let Some(refused) = refusal(item, "from_status", Move::Finish(outcome, result))? {
            return Err(refused);
        }
        if let Some(refused) = refusal(next, "next_status", Move::Start)? {
            return Err(refused);
        }
        Err(StoreError::Corrupt(format!(
            "items `{item}` and `{next}` in run {run}: finishing one and starting the other \
             wrote nothing"
        )))
    }
}

/// The statement of [`PgStore::finish_then_start`] for this outcome (a
/// skip may start from more statuses than a pass or a fail). Binds: `$1`
/// run, `$2` owner, `$3` the finished item, `$4` its outcome, `$5` its
/// result, `$6` the next item.
///
/// [`move_statement`]'s steps, for two items: `lease` locks the run's row;
/// `was` and `was_next` lock and read both items' rows; only if the lease is
/// held and both moves are allowed, `seq` takes two seqs at once (a
/// statement cannot update the run's row twice), `finished` and `started`
/// move the items, and `event` journals the finish at the first seq and the
/// start at the second. Committed with the session's `synchronous_commit`
/// (on): the start must be durable before its step runs, and the finish is
/// flushed with it.
///
/// Two rows, the finished item's then the started one's, when both moved;
/// otherwise one row whose item columns are null, naming the lease and both
/// statuses before (null: no such item); no row: the run is unknown.
fn finish_start_sql(outcome: Outcome) -> &'static str {
    static FINISH: LazyLock<String> =
        LazyLock::new(|| finish_start_statement(Move::Finish(Outcome::Passed, &Value::Null)));
    static SKIP: LazyLock<String> =
        LazyLock::new(|| finish_start_statement(Move::Finish(Outcome::Skipped, &Value::Null)));
    match outcome {
        Outcome::Skipped => &SKIP,
        Outcome::Passed | Outcome::Failed => &FINISH,
    }
}

fn finish_start_statement(finish: Move<'_>) -> String {
    let finish_from = finish.allowed_from_sql();
    let start_from = Move::Start.allowed_from_sql();
    let item_columns = "items.item_id, items.status, items.attempts, items.started_at, \
                        items.finished_at, items.result::text AS result, items.updated_at";
    format!(
        "WITH lease AS MATERIALIZED ( \
             SELECT coalesce(lease_owner = $2 AND lease_expires_at > now(), false) AS held \
             FROM runs WHERE id = $1 FOR NO KEY UPDATE), \
         was AS MATERIALIZED ( \
             SELECT items.status FROM items, lease \
             WHERE items.run_id = $1 AND items.item_id = $3 FOR NO KEY UPDATE OF items), \
         was_next AS MATERIALIZED ( \
             SELECT items.status FROM items, lease \
             WHERE items.run_id = $1 AND items.item_id = $6 FOR NO KEY UPDATE OF items), \
         seq AS ( \
             UPDATE runs SET last_seq = runs.last_seq + 2, updated_at = now() \
             FROM lease, was, was_next \
             WHERE runs.id = $1 AND lease.held AND was.status IN ({finish_from}) \
             AND was_next.status IN ({start_from}) \
             RETURNING runs.last_seq), \
         finished AS ( \
             UPDATE items SET status = $4, finished_at = now(), result = $5::jsonb, \
             updated_at = now() FROM seq \
             WHERE items.run_id = $1 AND items.item_id = $3 AND items.status IN ({finish_from}) \
             RETURNING {item_columns}), \
         started AS ( \
             UPDATE items SET status = 'running', attempts = items.attempts + 1, \
             started_at = now(), finished_at = NULL, result = NULL, updated_at = now() FROM seq \
             WHERE items.run_id = $1 AND items.item_id = $6 AND items.status IN ({start_from}) \
             RETURNING {item_columns}), \
         event AS ( \
             INSERT INTO events (run_id, seq, kind, item_id, actor, data) \
             SELECT $1, seq.last_seq - 1, '{finished_kind}', $3, $2, \
             jsonb_build_object('from', was.status, 'status', $4::text, 'result', $5::jsonb) \
             FROM seq, was, finished \
             UNION ALL \
             SELECT $1, seq.last_seq, '{started_kind}', $6, $2, \
             jsonb_build_object('from', was_next.status, 'attempt', started.attempts) \
             FROM seq, was_next, started), \
         moved AS ( \
             SELECT 0 AS ord, finished.* FROM finished \
             UNION ALL SELECT 1, started.* FROM started) \
         SELECT lease.held, was.status AS from_status, was_next.status AS next_status, moved.* \
         FROM lease LEFT JOIN was ON true LEFT JOIN was_next ON true LEFT JOIN moved ON true \
         ORDER BY moved.ord",
        finished_kind = kind::ITEM_FINISHED,
        started_kind = kind::ITEM_STARTED,
    )
}

/// The statement of [`PgStore::move_item`] for this kind of move. Binds:
/// `$1` run, `$2` owner, `$3` item, `$4` event kind, then the outcome and
/// the result (`$5`, `$6`) of a finish, or the detail (`$5`) of a wait.
///
/// - `lease` locks the run's row (so writes to one run stay serialized and
///   `seq` gap-free) and says whether `owner` holds the lease;
/// - `was` then locks the item's row and reads its status: a locking read
///   sees the newest committed row even if another writer of the run
///   committed while this statement waited for the lock;
/// - only if the lease is held and the move allowed from that status:
///   `seq` bumps the run's `last_seq`, `moved` moves the item, and `event`
///   journals the move with that seq (its data as `Move::data` builds it).
///
/// The one row names the run's lease, the status before, and the item's
/// new state (all null when nothing moved); no row: the run is unknown.
fn move_sql(mv: Move<'_>) -> &'static str {
    static START: LazyLock<String> = LazyLock::new(|| move_statement(Move::Start));
    static FINISH: LazyLock<String> =
        LazyLock::new(|| move_statement(Move::Finish(Outcome::Passed, &Value::Null)));
    static SKIP: LazyLock<String> =
        LazyLock::new(|| move_statement(Move::Finish(Outcome::Skipped, &Value::Null)));
    static WAIT: LazyLock<String> = LazyLock::new(|| move_statement(Move::Wait(&Value::Null)));
    match mv {
        Move::Start => &START,
        Move::Finish(Outcome::Skipped, _) => &SKIP,
        Move::Finish(Outcome::Passed | Outcome::Failed, _) => &FINISH,
        Move::Wait(_) => &WAIT,
    }
}

fn move_statement(mv: Move<'_>) -> String {
    let allowed = mv.allowed_from_sql();
    let (set, data) = match mv {
        Move::Start => (
            "status = 'running', attempts = items.attempts + 1, started_at = now(), \
             finished_at = NULL, result = NULL, updated_at = now()",
            "jsonb_build_object('from', was.status, 'attempt', moved.attempts)",
        ),
        Move::Finish(..) => (
            "status = $5, finished_at = now(), result = $6::jsonb, updated_at = now()",
            "jsonb_build_object('from', was.status, 'status', $5::text, 'result', $6::jsonb)",
        ),
        Move::Wait(_) => (
            "status = 'waiting', updated_at = now()",
            "jsonb_build_object('from', was.status, 'detail', $5::jsonb)",
        ),
    };
    // A finish is made durable by the next commit, which always comes before
    // the next item starts or the run ends (see `Store::finish_item`): it
    // commits with `synchronous_commit = off` for its own transaction
    // (visible at once, in the WAL flushed by that next commit).
    let lazy = match mv {
        Move::Finish(..) => {
            "lazy AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)), "
        }
        Move::Start | Move::Wait(_) => "",
    };
    let lazy_join = if lazy.is_empty() {
        ""
    } else {
        " CROSS JOIN lazy"
    };
    format!(
        "WITH {lazy}lease AS MATERIALIZED ( \
             SELECT coalesce(lease_owner = $2 AND lease_expires_at > now(), false) AS held \
             FROM runs WHERE id = $1 FOR NO KEY UPDATE), \
         was AS MATERIALIZED ( \
             SELECT items.status FROM items, lease \
             WHERE items.run_id = $1 AND items.item_id = $3 FOR NO KEY UPDATE OF items), \
         seq AS ( \
             UPDATE runs SET last_seq = runs.last_seq + 1, updated_at = now() FROM lease, was \
             WHERE runs.id = $1 AND lease.held AND was.status IN ({allowed}) \
             RETURNING runs.last_seq), \
         moved AS ( \
             UPDATE items SET {set} FROM seq \
             WHERE items.run_id = $1 AND items.item_id = $3 AND items.status IN ({allowed}) \
             RETURNING items.item_id, items.status, items.attempts, items.started_at, \
             items.finished_at, items.result::text AS result, items.updated_at), \
         event AS ( \
             INSERT INTO events (run_id, seq, kind, item_id, actor, data) \
             SELECT $1, seq.last_seq, $4, $3, $2, {data} FROM seq, was, moved) \
         SELECT lease.held, was.status AS from_status, moved.* \
         FROM lease{lazy_join} LEFT JOIN was ON true LEFT JOIN moved ON true"
    )
}

impl Backend for PgStore {
    fn url(&self) -> &DbUrl {
        &self.url
    }

    async fn move_one(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        mv: Move<'_>,
    ) -> Result<ItemState> {
        self.move_item(run, item, owner, mv).await
    }

    async fn finish_then_start(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
        next: &str,
    ) -> Result<(ItemState, ItemState)> {
        self.finish_start(run, item, owner, outcome, result, next)
            .await
    }

    async fn close_connections(&self) {
        self.pool.close().await;
    }

    fn restarted(&self) -> bool {
        self.restarts.restarted.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ItemStatus, Store};

    /// A scratch schema (dropped at the end) and a store on it.
    async fn schema() -> (golive_testkit::PgSchema, PgStore) {
        let schema = golive_testkit::PgSchema::create();
        let store = PgStore::open(schema.url()).await.expect("open");
        (schema, store)
    }

    #[tokio::test]
    async fn moves_write_the_events_they_describe() {
        let (_schema, store) = schema().await;
        crate::model::check_move_events(&store).await;
        store.close().await;
    }

    /// A finish turns `synchronous_commit` off for its own transaction
    /// only: no pooled connection is left with it off for later commits.
    #[tokio::test]
    async fn a_lazy_finish_leaves_every_connection_durable() {
        let (_schema, store) = schema().await;
        let id = crate::model::leased_run(&store, &["a"]).await;
        store.start_item(&id, "a", "me").await.expect("start");
        let done = store
            .finish_item(&id, "a", "me", Outcome::Passed, &Value::Null)
            .await
            .expect("finish");
        assert_eq!(done.status, ItemStatus::Passed);
        let mut held = Vec::new();
        for _ in 0..store.pool.size() {
            let mut conn = store.pool.acquire().await.expect("connection");
            let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&mut *conn)
                .await
                .expect("show");
            assert_eq!(sync, "on");
            held.push(conn);
        }
        assert!(!held.is_empty());
        drop(held);
        store.close().await;
    }

    /// Many writers of one run at once, through two pools.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_moves_keep_the_journal_whole() {
        let (_schema, store) = schema().await;
        let other = PgStore::open(store.url().clone()).await.expect("open");
        let stores = [Arc::new(store), Arc::new(other)];
        crate::model::check_concurrent_moves(stores.clone()).await;
        for store in stores {
            store.close().await;
        }
    }
}
