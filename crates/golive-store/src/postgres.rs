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
//! [`Store::finish_item`]).

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, Row};
use time::OffsetDateTime;

use crate::model::{
    AuditRef, Move, check_flag_version, checked_run, json, prefix_upper_bound, revoked_json,
    sha256_hex, to_millis, token_insert_error, token_json, token_taken,
};
use crate::{
    Actor, AuditEntry, AuditFilter, Confirmation, DbUrl, Event, FlagRecord, ItemState, ItemStatus,
    NewAudit, NewConfirmation, NewEvent, NewRequest, NewRun, NewSignature, NewToken, Outcome,
    Request, Run, RunId, RunStatus, RunSummary, Signature, Store, StoreError, TokenRecord, action,
    kind, migrations,
};

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
/// before may be lost (see [`Store::finish_item`]).
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
    /// A person's answer (a confirmation, a signature): `insert` adds its
    /// row unless one is there for the same key (the database's clock
    /// stamps it), and the answer's `event` is journaled with it, in one
    /// transaction. `false`: the answer was there already, and nothing is
    /// written.
    async fn answer(
        &self,
        run: &RunId,
        item: &str,
        by: &str,
        event: &str,
        data: Value,
        insert: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<bool> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            hold(&mut tx, run, None).await?;
            item_status(&mut tx, run, item).await?;
            if insert.execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(false);
            }
            append(&mut tx, run, event, Some(item), Some(by), data).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

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

    /// Runs one operation, naming this database in its errors.
    async fn ctx<T>(&self, op: impl Future<Output = Result<T>>) -> Result<T> {
        op.await.map_err(|e| e.at(&self.url))
    }
}

const RUN_COLUMNS: &str = "id, plan_name, plan_sha256, t0, status, created_at, updated_at, \
                           lease_owner, lease_expires_at, last_seq";
const ITEM_COLUMNS: &str = "item_id, status, attempts, started_at, finished_at, \
                            result::text AS result, updated_at";
const EVENT_COLUMNS: &str = "seq, at, kind, item_id, actor, data::text AS data";

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

fn summary_from(row: &PgRow) -> Result<RunSummary> {
    Ok(RunSummary {
        id: row.try_get("id")?,
        plan_name: row.try_get("plan_name")?,
        plan_sha256: row.try_get("plan_sha256")?,
        t0: opt_ts(row.try_get("t0")?)?,
        status: row.try_get::<&str, _>("status")?.parse()?,
        created_at: ts(row.try_get("created_at")?)?,
        updated_at: ts(row.try_get("updated_at")?)?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: opt_ts(row.try_get("lease_expires_at")?)?,
        last_seq: row.try_get("last_seq")?,
    })
}

fn item_from(row: &PgRow) -> Result<ItemState> {
    let attempts: i32 = row.try_get("attempts")?;
    Ok(ItemState {
        item_id: row.try_get("item_id")?,
        status: row.try_get::<&str, _>("status")?.parse()?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("{attempts} attempts")))?,
        started_at: opt_ts(row.try_get("started_at")?)?,
        finished_at: opt_ts(row.try_get("finished_at")?)?,
        result: row
            .try_get::<Option<&str>, _>("result")?
            .map(json)
            .transpose()?,
        updated_at: ts(row.try_get("updated_at")?)?,
    })
}

fn event_from(row: &PgRow) -> Result<Event> {
    Ok(Event {
        seq: row.try_get("seq")?,
        at: ts(row.try_get("at")?)?,
        kind: row.try_get("kind")?,
        item_id: row.try_get("item_id")?,
        actor: row.try_get("actor")?,
        data: json(row.try_get("data")?)?,
    })
}

fn confirmation_from(row: &PgRow) -> Result<Confirmation> {
    Ok(Confirmation {
        item_id: row.try_get("item_id")?,
        by: row.try_get("by")?,
        at: ts(row.try_get("at")?)?,
        evidence: row.try_get("evidence")?,
        skipped: row.try_get("skipped")?,
        reason: row.try_get("reason")?,
    })
}

fn signature_from(row: &PgRow) -> Result<Signature> {
    Ok(Signature {
        item_id: row.try_get("item_id")?,
        role: row.try_get("role")?,
        by: row.try_get("by")?,
        at: ts(row.try_get("at")?)?,
        decision: row.try_get::<&str, _>("decision")?.parse()?,
        comment: row.try_get("comment")?,
    })
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

fn run_not_found(run: &RunId) -> StoreError {
    StoreError::NotFound(format!("run {run}"))
}

async fn run_exists(conn: &mut PgConnection, run: &RunId) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM runs WHERE id = $1")
        .bind(run)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// The item's status; NotFound names whichever of run and item is missing.
async fn item_status(conn: &mut PgConnection, run: &RunId, item: &str) -> Result<ItemStatus> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM items WHERE run_id = $1 AND item_id = $2")
            .bind(run)
            .bind(item)
            .fetch_optional(&mut *conn)
            .await?;
    match status {
        Some(s) => s.parse(),
        None if run_exists(conn, run).await? => {
            Err(StoreError::NotFound(format!("item `{item}` in run {run}")))
        }
        None => Err(run_not_found(run)),
    }
}

/// Locks the run's row for this transaction, checking that `owner` holds
/// its lease by the database clock (`None`: only that the run exists).
async fn hold(tx: &mut Tx, run: &RunId, owner: Option<&str>) -> Result<()> {
    let done = match owner {
        Some(owner) => sqlx::query(
            "UPDATE runs SET updated_at = now() \
             WHERE id = $1 AND lease_owner = $2 AND lease_expires_at > now()",
        )
        .bind(run)
        .bind(owner),
        None => sqlx::query("UPDATE runs SET updated_at = now() WHERE id = $1").bind(run),
    }
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    match owner {
        Some(owner) if run_exists(tx, run).await? => Err(StoreError::LeaseLost {
            run: run.clone(),
            owner: owner.to_string(),
        }),
        _ => Err(run_not_found(run)),
    }
}

/// Appends the run's next event (seq = last_seq + 1).
async fn append(
    tx: &mut Tx,
    run: &RunId,
    kind: &str,
    item: Option<&str>,
    actor: Option<&str>,
    data: Value,
) -> Result<Event> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE runs SET last_seq = last_seq + 1, updated_at = now() WHERE id = $1 \
         RETURNING last_seq",
    )
    .bind(run)
    .fetch_one(&mut **tx)
    .await?;
    let at: OffsetDateTime = sqlx::query_scalar(
        "INSERT INTO events (run_id, seq, kind, item_id, actor, data) \
         VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING at",
    )
    .bind(run)
    .bind(seq)
    .bind(kind)
    .bind(item)
    .bind(actor)
    .bind(data.to_string())
    .fetch_one(&mut **tx)
    .await?;
    Ok(Event {
        seq,
        at: ts(at)?,
        kind: kind.to_string(),
        item_id: item.map(str::to_string),
        actor: actor.map(str::to_string),
        data,
    })
}

const FLAG_COLUMNS: &str = "key, definition::text AS definition, version, created_at, \
                            updated_at, updated_by";
const AUDIT_COLUMNS: &str = "seq, at, actor, source, action, target, before::text AS before, \
                             after::text AS after, reason";
const TOKEN_COLUMNS: &str =
    "id, name, role, secret_sha256, created_at, expires_at, revoked_at, created_by";

fn flag_from(row: &PgRow) -> Result<FlagRecord> {
    Ok(FlagRecord {
        key: row.try_get("key")?,
        definition: json(row.try_get("definition")?)?,
        version: row.try_get("version")?,
        created_at: ts(row.try_get("created_at")?)?,
        updated_at: ts(row.try_get("updated_at")?)?,
        updated_by: row.try_get("updated_by")?,
    })
}

fn audit_from(row: &PgRow) -> Result<AuditEntry> {
    let opt_json = |column: &str| -> Result<Option<Value>> {
        row.try_get::<Option<&str>, _>(column)?
            .map(json)
            .transpose()
    };
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at: ts(row.try_get("at")?)?,
        actor: row.try_get("actor")?,
        source: row.try_get("source")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        before: opt_json("before")?,
        after: opt_json("after")?,
        reason: row.try_get("reason")?,
    })
}

fn token_from(row: &PgRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        secret_sha256: row.try_get("secret_sha256")?,
        created_at: ts(row.try_get("created_at")?)?,
        expires_at: opt_ts(row.try_get("expires_at")?)?,
        revoked_at: opt_ts(row.try_get("revoked_at")?)?,
        created_by: row.try_get("created_by")?,
    })
}

/// Appends an audit entry inside the transaction of the change it records.
async fn audit_in(tx: &mut Tx, actor: &Actor, entry: AuditRef<'_>) -> Result<AuditEntry> {
    let row = sqlx::query(
        "INSERT INTO audit (actor, source, action, target, before, after, reason) \
         VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7) RETURNING seq, at",
    )
    .bind(&actor.name)
    .bind(&actor.source)
    .bind(entry.action)
    .bind(entry.target)
    .bind(entry.before.map(Value::to_string))
    .bind(entry.after.map(Value::to_string))
    .bind(entry.reason)
    .fetch_one(&mut **tx)
    .await?;
    Ok(entry.entry(row.try_get("seq")?, ts(row.try_get("at")?)?, actor))
}

/// Takes the flag writers' lock (the `flags_revision` row) for this
/// transaction: flag changes are serialized, so each one reads the state
/// the previous one committed.
async fn lock_flags(tx: &mut Tx) -> Result<()> {
    sqlx::query("SELECT revision FROM flags_revision WHERE id = 1 FOR UPDATE")
        .fetch_one(&mut **tx)
        .await?;
    Ok(())
}

/// Tells pollers of `flags_revision` that the flags changed.
async fn bump_flags_revision(tx: &mut Tx) -> Result<()> {
    sqlx::query("UPDATE flags_revision SET revision = revision + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Refuses a token whose id or secret hash is already stored.
async fn check_token_is_new(tx: &mut Tx, token: &NewToken) -> Result<()> {
    let same_id: Option<bool> = sqlx::query_scalar(
        "SELECT id = $1 FROM tokens WHERE id = $1 OR secret_sha256 = $2 ORDER BY id = $1 DESC \
         LIMIT 1",
    )
    .bind(&token.id)
    .bind(&token.secret_sha256)
    .fetch_optional(&mut **tx)
    .await?;
    match same_id {
        None => Ok(()),
        Some(same_id) => Err(token_taken(&token.id, same_id)),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

impl PgStore {
    async fn insert_run(&self, new: &NewRun, id: &RunId) -> Result<Run> {
        let sha = sha256_hex(&new.plan_text);
        let t0 = new.t0.map(to_millis).transpose()?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO runs (id, plan_name, plan_text, plan_sha256, t0, status) \
             VALUES ($1, $2, $3, $4, $5, 'pending')",
        )
        .bind(id)
        .bind(&new.plan_name)
        .bind(&new.plan_text)
        .bind(&sha)
        .bind(t0.map(odt).transpose()?)
        .execute(&mut *tx)
        .await?;
        let positions: Vec<i32> = (0..new.items.len())
            .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        sqlx::query(
            "INSERT INTO items (run_id, item_id, position, status) \
             SELECT $1, item, position, 'pending' FROM UNNEST($2::text[], $3::int4[]) \
             AS t(item, position)",
        )
        .bind(id)
        .bind(&new.items)
        .bind(&positions)
        .execute(&mut *tx)
        .await?;
        let data = json!({
            "plan_name": new.plan_name,
            "plan_sha256": sha,
            "t0": t0,
            "items": new.items.len(),
        });
        append(
            &mut tx,
            id,
            kind::RUN_CREATED,
            None,
            new.actor.as_deref(),
            data,
        )
        .await?;
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let summary = summary_from(&row)?;
        tx.commit().await?;
        Ok(Run {
            summary,
            plan_text: new.plan_text.clone(),
        })
    }

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
    /// [`Store::finish_and_start`]: both moves in one statement
    /// ([`finish_start_sql`]), one round trip, its own transaction, flushed
    /// before it returns (the start needs it).
    async fn finish_then_start(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
        next: &str,
    ) -> Result<(ItemState, ItemState)> {
        if item == next {
            // The statement would update one row twice, which PostgreSQL
            // does not do; and an item cannot end and start at once.
            return Err(StoreError::Conflict(format!(
                "item `{item}` cannot finish and start in one move"
            )));
        }
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

impl Store for PgStore {
    async fn create_run(&self, new: &NewRun) -> Result<Run> {
        self.ctx(async {
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = new.items.iter().find(|i| !seen.insert(i.as_str())) {
                return Err(StoreError::Conflict(format!(
                    "item `{dup}` is listed twice"
                )));
            }
            let mut tries = 0;
            loop {
                let id = RunId::generate()?;
                match self.insert_run(new, &id).await {
                    Err(StoreError::Backend(e)) if is_unique_violation(&e) && tries < 5 => {
                        tries += 1;
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    async fn get_run(&self, run: &RunId) -> Result<Run> {
        self.ctx(async {
            let row = sqlx::query(&format!(
                "SELECT {RUN_COLUMNS}, plan_text FROM runs WHERE id = $1"
            ))
            .bind(run)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| run_not_found(run))?;
            checked_run(summary_from(&row)?, row.try_get("plan_text")?)
        })
        .await
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>> {
        self.ctx(async {
            sqlx::query(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY num DESC LIMIT $1"
            ))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(summary_from)
            .collect()
        })
        .await
    }

    async fn set_run_status(&self, run: &RunId, owner: &str, status: RunStatus) -> Result<()> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            hold(&mut tx, run, Some(owner)).await?;
            let from: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
                .bind(run)
                .fetch_one(&mut *tx)
                .await?;
            let from: RunStatus = from.parse()?;
            if from == status {
                return Ok(());
            }
            sqlx::query("UPDATE runs SET status = $2 WHERE id = $1")
                .bind(run)
                .bind(status.as_str())
                .execute(&mut *tx)
                .await?;
            let data = json!({ "from": from, "to": status });
            append(&mut tx, run, kind::RUN_STATUS, None, Some(owner), data).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn acquire_lease(&self, run: &RunId, owner: &str, ttl: Duration) -> Result<bool> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            // FOR UPDATE: a racing acquirer waits here, then sees this one's lease.
            let row = sqlx::query(
                "SELECT lease_owner, \
                 (lease_owner IS NULL OR lease_owner = $2 OR lease_expires_at < now()) AS free \
                 FROM runs WHERE id = $1 FOR UPDATE",
            )
            .bind(run)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| run_not_found(run))?;
            if !row.try_get::<bool, _>("free")? {
                return Ok(false);
            }
            let previous: Option<String> = row.try_get("lease_owner")?;
            sqlx::query(
                "UPDATE runs SET lease_owner = $2, \
                 lease_expires_at = now() + make_interval(secs => $3) WHERE id = $1",
            )
            .bind(run)
            .bind(owner)
            .bind(ttl.as_secs_f64())
            .execute(&mut *tx)
            .await?;
            if previous.as_deref() != Some(owner) {
                let data = json!({ "previous": previous, "ttl_ms": ttl_ms(ttl) });
                append(&mut tx, run, kind::LEASE_ACQUIRED, None, Some(owner), data).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn renew_lease(&self, run: &RunId, owner: &str, ttl: Duration) -> Result<()> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            hold(&mut tx, run, Some(owner)).await?;
            sqlx::query(
                "UPDATE runs SET lease_expires_at = now() + make_interval(secs => $2) \
                 WHERE id = $1",
            )
            .bind(run)
            .bind(ttl.as_secs_f64())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn release_lease(&self, run: &RunId, owner: &str) -> Result<bool> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            let done = sqlx::query(
                "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(run)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return if run_exists(&mut tx, run).await? {
                    Ok(false)
                } else {
                    Err(run_not_found(run))
                };
            }
            append(
                &mut tx,
                run,
                kind::LEASE_RELEASED,
                None,
                Some(owner),
                json!({}),
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn start_item(&self, run: &RunId, item: &str, owner: &str) -> Result<ItemState> {
        self.ctx(self.move_item(run, item, owner, Move::Start))
            .await
    }

    async fn finish_item(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: crate::Outcome,
        result: &Value,
    ) -> Result<ItemState> {
        self.ctx(self.move_item(run, item, owner, Move::Finish(outcome, result)))
            .await
    }

    async fn finish_and_start(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        outcome: Outcome,
        result: &Value,
        next: &str,
    ) -> Result<(ItemState, ItemState)> {
        self.ctx(self.finish_then_start(run, item, owner, outcome, result, next))
            .await
    }

    async fn set_item_waiting(
        &self,
        run: &RunId,
        item: &str,
        owner: &str,
        detail: &Value,
    ) -> Result<ItemState> {
        self.ctx(self.move_item(run, item, owner, Move::Wait(detail)))
            .await
    }

    async fn mark_interrupted(&self, run: &RunId, owner: &str) -> Result<Vec<String>> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            hold(&mut tx, run, Some(owner)).await?;
            let rows = sqlx::query(
                "UPDATE items SET status = 'interrupted', updated_at = now() \
                 WHERE run_id = $1 AND status = 'running' RETURNING item_id, attempts, position",
            )
            .bind(run)
            .fetch_all(&mut *tx)
            .await?;
            let mut interrupted = Vec::with_capacity(rows.len());
            for row in &rows {
                let position: i32 = row.try_get("position")?;
                let attempts: i32 = row.try_get("attempts")?;
                let item: String = row.try_get("item_id")?;
                interrupted.push((position, item, attempts));
            }
            interrupted.sort();
            for (_, item, attempts) in &interrupted {
                let data = json!({ "attempt": attempts });
                append(
                    &mut tx,
                    run,
                    kind::ITEM_INTERRUPTED,
                    Some(item),
                    Some(owner),
                    data,
                )
                .await?;
            }
            tx.commit().await?;
            Ok(interrupted.into_iter().map(|(_, item, _)| item).collect())
        })
        .await
    }

    async fn item_states(&self, run: &RunId) -> Result<Vec<ItemState>> {
        self.ctx(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(&format!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE run_id = $1 ORDER BY position"
            ))
            .bind(run)
            .fetch_all(&mut *conn)
            .await?;
            if rows.is_empty() && !run_exists(&mut conn, run).await? {
                return Err(run_not_found(run));
            }
            rows.iter().map(item_from).collect()
        })
        .await
    }

    async fn append_event(&self, run: &RunId, owner: &str, event: &NewEvent) -> Result<Event> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            hold(&mut tx, run, Some(owner)).await?;
            if let Some(item) = &event.item_id {
                item_status(&mut tx, run, item).await?;
            }
            let event = append(
                &mut tx,
                run,
                &event.kind,
                event.item_id.as_deref(),
                Some(owner),
                event.data.clone(),
            )
            .await?;
            tx.commit().await?;
            Ok(event)
        })
        .await
    }

    async fn events_after(&self, run: &RunId, after: i64, limit: u32) -> Result<Vec<Event>> {
        self.ctx(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE run_id = $1 AND seq > $2 \
                 ORDER BY seq LIMIT $3"
            ))
            .bind(run)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            if rows.is_empty() && !run_exists(&mut conn, run).await? {
                return Err(run_not_found(run));
            }
            rows.iter().map(event_from).collect()
        })
        .await
    }

    async fn confirm(
        &self,
        run: &RunId,
        item: &str,
        confirmation: &NewConfirmation,
    ) -> Result<bool> {
        let c = confirmation;
        let data = json!({ "evidence": c.evidence, "skipped": c.skipped, "reason": c.reason });
        let insert = sqlx::query(
            "INSERT INTO confirmations (run_id, item_id, by, evidence, skipped, reason) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, item_id) DO NOTHING",
        )
        .bind(run)
        .bind(item)
        .bind(&c.by)
        .bind(&c.evidence)
        .bind(c.skipped)
        .bind(&c.reason);
        self.answer(run, item, &c.by, kind::ITEM_CONFIRMED, data, insert)
            .await
    }

    async fn confirmation(&self, run: &RunId, item: &str) -> Result<Option<Confirmation>> {
        self.ctx(async {
            let mut conn = self.pool.acquire().await?;
            item_status(&mut conn, run, item).await?;
            sqlx::query(
                "SELECT item_id, by, at, evidence, skipped, reason FROM confirmations \
                 WHERE run_id = $1 AND item_id = $2",
            )
            .bind(run)
            .bind(item)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(confirmation_from)
            .transpose()
        })
        .await
    }

    async fn sign(&self, run: &RunId, item: &str, signature: &NewSignature) -> Result<bool> {
        let s = signature;
        let data = json!({ "role": s.role, "decision": s.decision, "comment": s.comment });
        let insert = sqlx::query(
            "INSERT INTO signatures (run_id, item_id, role, by, decision, comment) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (run_id, item_id, role) DO NOTHING",
        )
        .bind(run)
        .bind(item)
        .bind(&s.role)
        .bind(&s.by)
        .bind(s.decision.as_str())
        .bind(&s.comment);
        self.answer(run, item, &s.by, kind::ITEM_SIGNED, data, insert)
            .await
    }

    async fn signatures(&self, run: &RunId, item: &str) -> Result<Vec<Signature>> {
        self.ctx(async {
            let mut conn = self.pool.acquire().await?;
            item_status(&mut conn, run, item).await?;
            sqlx::query(
                "SELECT item_id, role, by, at, decision, comment FROM signatures \
                 WHERE run_id = $1 AND item_id = $2 ORDER BY at, role",
            )
            .bind(run)
            .bind(item)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(signature_from)
            .collect()
        })
        .await
    }

    async fn request(&self, run: &RunId, request: &NewRequest) -> Result<bool> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            hold(&mut tx, run, None).await?;
            let done = sqlx::query(
                "INSERT INTO requests (run_id, kind, by, reason) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (run_id, kind) DO NOTHING",
            )
            .bind(run)
            .bind(&request.kind)
            .bind(&request.by)
            .bind(&request.reason)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            let data = json!({ "kind": request.kind, "reason": request.reason });
            append(
                &mut tx,
                run,
                kind::RUN_REQUESTED,
                None,
                Some(&request.by),
                data,
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn requests(&self, run: &RunId) -> Result<Vec<Request>> {
        self.ctx(async {
            let mut conn = self.pool.acquire().await?;
            if !run_exists(&mut conn, run).await? {
                return Err(run_not_found(run));
            }
            sqlx::query(
                "SELECT kind, by, at, reason FROM requests WHERE run_id = $1 ORDER BY at, kind",
            )
            .bind(run)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| {
                Ok(Request {
                    kind: row.try_get("kind")?,
                    by: row.try_get("by")?,
                    at: ts(row.try_get("at")?)?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
        })
        .await
    }

    async fn put_flag(
        &self,
        key: &str,
        definition: &Value,
        expected_version: Option<i64>,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<FlagRecord> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            lock_flags(&mut tx).await?;
            let current = sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags WHERE key = $1"))
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?
                .as_ref()
                .map(flag_from)
                .transpose()?;
            check_flag_version(key, expected_version, current.as_ref().map(|f| f.version))?;
            let audit = AuditRef {
                action: action::FLAG_CREATED,
                target: key,
                before: None,
                after: Some(definition),
                reason,
            };
            let record = match current {
                Some(current) if current.definition == *definition => return Ok(current),
                Some(current) => {
                    let row = sqlx::query(&format!(
                        "UPDATE flags SET definition = $2::jsonb, version = version + 1, \
                         updated_at = now(), updated_by = $3 WHERE key = $1 \
                         RETURNING {FLAG_COLUMNS}"
                    ))
                    .bind(key)
                    .bind(definition.to_string())
                    .bind(&actor.name)
                    .fetch_one(&mut *tx)
                    .await?;
                    let audit = AuditRef {
                        action: action::FLAG_UPDATED,
                        before: Some(&current.definition),
                        ..audit
                    };
                    audit_in(&mut tx, actor, audit).await?;
                    flag_from(&row)?
                }
                None => {
                    let row = sqlx::query(&format!(
                        "INSERT INTO flags (key, definition, version, updated_by) \
                         VALUES ($1, $2::jsonb, 1, $3) RETURNING {FLAG_COLUMNS}"
                    ))
                    .bind(key)
                    .bind(definition.to_string())
                    .bind(&actor.name)
                    .fetch_one(&mut *tx)
                    .await?;
                    audit_in(&mut tx, actor, audit).await?;
                    flag_from(&row)?
                }
            };
            bump_flags_revision(&mut tx).await?;
            tx.commit().await?;
            Ok(record)
        })
        .await
    }

    async fn delete_flag(&self, key: &str, actor: &Actor, reason: Option<&str>) -> Result<bool> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            lock_flags(&mut tx).await?;
            let old: Option<String> =
                sqlx::query_scalar("DELETE FROM flags WHERE key = $1 RETURNING definition::text")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(old) = old else {
                return Ok(false);
            };
            let audit = AuditRef {
                action: action::FLAG_DELETED,
                target: key,
                before: Some(&json(&old)?),
                after: None,
                reason,
            };
            audit_in(&mut tx, actor, audit).await?;
            bump_flags_revision(&mut tx).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn get_flag(&self, key: &str) -> Result<Option<FlagRecord>> {
        self.ctx(async {
            sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags WHERE key = $1"))
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(flag_from)
                .transpose()
        })
        .await
    }

    async fn list_flags(&self) -> Result<Vec<FlagRecord>> {
        self.ctx(async {
            // `key` is COLLATE "C": byte order, as on SQLite.
            sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags ORDER BY key"))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(flag_from)
                .collect()
        })
        .await
    }

    async fn flags_revision(&self) -> Result<i64> {
        self.ctx(async {
            Ok(
                sqlx::query_scalar("SELECT revision FROM flags_revision WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?,
            )
        })
        .await
    }

    async fn audit_head(&self) -> Result<i64> {
        self.ctx(async {
            Ok(
                sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit")
                    .fetch_one(&self.pool)
                    .await?,
            )
        })
        .await
    }

    async fn append_audit(&self, actor: &Actor, entry: &NewAudit) -> Result<AuditEntry> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            let entry = audit_in(&mut tx, actor, entry.into()).await?;
            tx.commit().await?;
            Ok(entry)
        })
        .await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.ctx(async {
            let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > "
            ));
            q.push_bind(filter.after_seq);
            if let Some(actor) = &filter.actor {
                q.push(" AND actor = ").push_bind(actor.as_str());
            }
            if let Some(prefix) = filter.action_prefix.as_deref().filter(|p| !p.is_empty()) {
                // `action` is COLLATE "C": byte order, so the prefix is an
                // index range.
                q.push(" AND action >= ").push_bind(prefix);
                if let Some(upper) = prefix_upper_bound(prefix) {
                    q.push(" AND action < ").push_bind(upper);
                }
            }
            if let Some(target) = &filter.target {
                q.push(" AND target = ").push_bind(target.as_str());
            }
            if let Some(since) = filter.since {
                q.push(" AND at >= ").push_bind(odt(since)?);
            }
            if let Some(before) = filter.before_seq {
                q.push(" AND seq < ").push_bind(before);
            }
            q.push(if filter.newest_first {
                " ORDER BY seq DESC LIMIT "
            } else {
                " ORDER BY seq LIMIT "
            })
            .push_bind(i64::from(filter.limit));
            q.build()
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(audit_from)
                .collect()
        })
        .await
    }

    async fn create_token(&self, token: &NewToken, actor: &Actor) -> Result<TokenRecord> {
        self.ctx(async {
            let expires_at = token.expires_at.map(to_millis).transpose()?;
            let mut tx = self.begin().await?;
            check_token_is_new(&mut tx, token).await?;
            let row = sqlx::query(&format!(
                "INSERT INTO tokens (id, name, role, secret_sha256, expires_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
            ))
            .bind(&token.id)
            .bind(&token.name)
            .bind(&token.role)
            .bind(&token.secret_sha256)
            .bind(expires_at.map(odt).transpose()?)
            .bind(&actor.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| token_insert_error(e, &token.id))?;
            let record = token_from(&row)?;
            let after = token_json(&record);
            let audit = AuditRef {
                action: action::TOKEN_CREATED,
                target: &record.id,
                before: None,
                after: Some(&after),
                reason: None,
            };
            audit_in(&mut tx, actor, audit).await?;
            tx.commit().await?;
            Ok(record)
        })
        .await
    }

    async fn token_by_secret(&self, secret_sha256: &str) -> Result<Option<TokenRecord>> {
        self.ctx(async {
            sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_sha256 = $1"
            ))
            .bind(secret_sha256)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(token_from)
            .transpose()
        })
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.ctx(async {
            sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id"
            ))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_from)
            .collect()
        })
        .await
    }

    async fn revoke_token(&self, id: &str, actor: &Actor) -> Result<bool> {
        self.ctx(async {
            let mut tx = self.begin().await?;
            let row = sqlx::query(&format!(
                "UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL \
                 RETURNING {TOKEN_COLUMNS}"
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(false);
            };
            let token = token_from(&row)?;
            let after = revoked_json(&token);
            let audit = AuditRef {
                action: action::TOKEN_REVOKED,
                target: id,
                before: None,
                after: Some(&after),
                reason: None,
            };
            audit_in(&mut tx, actor, audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn database_restarted(&self) -> bool {
        self.restarts.restarted.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
