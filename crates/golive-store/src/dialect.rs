//! The seam between the store's operations, written once in [`crate::ops`],
//! and the two databases. A backend says how a statement is spelled (a JSON
//! cast, whose clock stamps a change), how it runs (on the backend's pool,
//! or in one of its write transactions) and how a row's cells read back;
//! the operations say what is read and written, in what order, and what it
//! means.
//!
//! Statements are written once, with `$n`-free markers the backend fills:
//! - `?`: the next bound value;
//! - `?json`: the next bound value, a JSON document (`$n::jsonb` on
//!   PostgreSQL, text on SQLite);
//! - `?now`: the time of the change (`now()`, the database's clock, on
//!   PostgreSQL; on SQLite the store's clock, read once per transaction and
//!   bound);
//! - `?later`: the time of the change plus the next bound value, a
//!   [`Duration`] (a lease's expiry);
//! - `?text`: after a JSON column read back, its text (`::text` on
//!   PostgreSQL; nothing on SQLite, which stores JSON as text).
//!
//! Where the database's clock stamps changes, `?now` and `?later` are
//! spelled as PostgreSQL spells them (`now()`, `make_interval`).

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::StoreError;
use crate::model::json;

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A value bound to a statement.
#[derive(Clone, Debug)]
pub(crate) enum Arg<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(bool),
    /// A JSON document, as text.
    Json(Option<String>),
    Time(Option<Timestamp>),
    /// A time for an "at or after" comparison: on a backend that keeps
    /// milliseconds, the first whole millisecond at or after it.
    AtLeast(Timestamp),
    /// A span after the time of the change (see `?later`).
    Later(Duration),
    /// The time of the change, on a backend whose statements bind it.
    Now(i64),
}

/// A span in whole milliseconds (saturating: a lease of centuries is
/// still a lease).
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// A statement to render for one backend: its text with markers (see the
/// module docs) and its values, in order.
#[derive(Debug)]
pub(crate) struct Stmt<'a> {
    sql: String,
    args: Vec<Arg<'a>>,
}

impl<'a> Stmt<'a> {
    pub(crate) fn new(sql: impl Into<String>) -> Stmt<'a> {
        Stmt {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Adds text (more SQL, with its own markers) to the statement.
    pub(crate) fn push(mut self, sql: &str) -> Stmt<'a> {
        self.sql.push_str(sql);
        self
    }

    pub(crate) fn text(self, v: &'a str) -> Stmt<'a> {
        self.arg(Arg::Text(Some(v)))
    }

    pub(crate) fn opt_text(self, v: Option<&'a str>) -> Stmt<'a> {
        self.arg(Arg::Text(v))
    }

    pub(crate) fn int(self, v: i64) -> Stmt<'a> {
        self.arg(Arg::Int(Some(v)))
    }

    pub(crate) fn json(self, v: &Value) -> Stmt<'a> {
        self.arg(Arg::Json(Some(v.to_string())))
    }

    pub(crate) fn opt_json(self, v: Option<&Value>) -> Stmt<'a> {
        self.arg(Arg::Json(v.map(Value::to_string)))
    }

    pub(crate) fn opt_time(self, v: Option<Timestamp>) -> Stmt<'a> {
        self.arg(Arg::Time(v))
    }

    pub(crate) fn at_least(self, v: Timestamp) -> Stmt<'a> {
        self.arg(Arg::AtLeast(v))
    }

    pub(crate) fn later(self, v: Duration) -> Stmt<'a> {
        self.arg(Arg::Later(v))
    }

    pub(crate) fn boolean(self, v: bool) -> Stmt<'a> {
        self.arg(Arg::Bool(v))
    }

    fn arg(mut self, arg: Arg<'a>) -> Stmt<'a> {
        self.args.push(arg);
        self
    }

    /// The statement as `D` runs it: `$n` placeholders, and the values
    /// they take (`now` is the change's time where `D` binds it).
    fn render<D: Dialect>(self, now: Option<i64>) -> (String, Vec<Arg<'a>>) {
        let mut sql = String::with_capacity(self.sql.len() + 16);
        let mut given = self.args.into_iter();
        let mut args = Vec::new();
        let mut rest = self.sql.as_str();
        let mut placeholder = |sql: &mut String, arg: Option<Arg<'a>>| {
            // A marker without its value binds NULL: the database then
            // refuses or stores what the statement says, never a panic here.
            args.push(arg.unwrap_or(Arg::Text(None)));
            sql.push('$');
            sql.push_str(&args.len().to_string());
        };
        while let Some(at) = rest.find('?') {
            sql.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix("json") {
                placeholder(&mut sql, given.next());
                sql.push_str(D::JSON_IN);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("now") {
                match now {
                    Some(ms) => placeholder(&mut sql, Some(Arg::Now(ms))),
                    None => sql.push_str("now()"),
                }
                rest = after;
            } else if let Some(after) = rest.strip_prefix("later") {
                match (now, given.next()) {
                    (Some(ms), Some(Arg::Later(d))) => {
                        placeholder(&mut sql, Some(Arg::Now(ms.saturating_add(millis(d)))));
                    }
                    (_, arg) => {
                        sql.push_str("now() + make_interval(secs => ");
                        placeholder(&mut sql, arg);
                        sql.push(')');
                    }
                }
                rest = after;
            } else if let Some(after) = rest.strip_prefix("text") {
                sql.push_str(D::JSON_OUT);
                rest = after;
            } else {
                placeholder(&mut sql, given.next());
            }
        }
        sql.push_str(rest);
        (sql, args)
    }
}

/// What a backend provides to the operations written once.
pub(crate) trait Dialect: Sync {
    type Row: Cells + Send;
    /// A write transaction, holding whatever the backend's writes hold.
    type Tx: Send;

    /// After a bound JSON value: how it becomes the column's type.
    const JSON_IN: &'static str;
    /// After a JSON column read back: how it becomes text.
    const JSON_OUT: &'static str;
    /// After `SELECT … FROM flags_revision`: how a flag writer serializes
    /// with the others, if its transactions do not already (SQLite's
    /// `BEGIN IMMEDIATE` takes the whole file's write lock).
    const LOCK_ROW: Option<&'static str>;

    /// The time a change made now is stamped with, in milliseconds, where
    /// the store binds it; `None` where the database's clock does.
    fn now_ms(&self) -> Option<i64>;

    fn begin(&self) -> impl Future<Output = Result<Self::Tx>> + Send;

    fn commit(tx: Self::Tx) -> impl Future<Output = Result<()>> + Send;

    /// Runs `sql` with `args` (rendered), in `tx` or on the pool, and
    /// returns the rows it gave.
    fn fetch<'a>(
        &'a self,
        tx: Option<&'a mut Self::Tx>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'a;

    /// Runs `sql` with `args` (rendered), in `tx` or on the pool, and
    /// returns how many rows it changed.
    fn execute<'a>(
        &'a self,
        tx: Option<&'a mut Self::Tx>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'a;

    /// Adds a new run's items, `pending`, in their order, in `tx` (each
    /// backend has its own fastest way to write many rows); `now`: the
    /// time of the change, where the store binds it.
    fn insert_items<'a>(
        tx: &'a mut Self::Tx,
        run: &'a str,
        items: &'a [String],
        now: Option<i64>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a;
}

/// The cells of a row, by column name. `opt_*` read a nullable column;
/// the others refuse NULL as a journal changed behind the store's back.
pub(crate) trait Cells {
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
    fn opt_bool(&self, column: &str) -> Result<Option<bool>>;
    fn opt_time(&self, column: &str) -> Result<Option<Timestamp>>;

    fn text(&self, column: &str) -> Result<String> {
        self.opt_text(column)?.ok_or_else(|| null(column))
    }

    fn int(&self, column: &str) -> Result<i64> {
        self.opt_int(column)?.ok_or_else(|| null(column))
    }

    fn boolean(&self, column: &str) -> Result<bool> {
        self.opt_bool(column)?.ok_or_else(|| null(column))
    }

    fn time(&self, column: &str) -> Result<Timestamp> {
        self.opt_time(column)?.ok_or_else(|| null(column))
    }

    fn json(&self, column: &str) -> Result<Value> {
        json(&self.text(column)?)
    }

    fn opt_json(&self, column: &str) -> Result<Option<Value>> {
        self.opt_text(column)?.as_deref().map(json).transpose()
    }
}

fn null(column: &str) -> StoreError {
    StoreError::Corrupt(format!("column `{column}` is NULL"))
}

/// Statements of one operation on store `D`: in a write transaction
/// ([`Tx::begin`]), or each on its own ([`Tx::read`]). Either way its
/// changes are stamped with one time.
pub(crate) struct Tx<'s, D: Dialect> {
    store: &'s D,
    inner: Option<D::Tx>,
    now: Option<i64>,
}

impl<'s, D: Dialect> Tx<'s, D> {
    pub(crate) async fn begin(store: &'s D) -> Result<Tx<'s, D>> {
        let now = store.now_ms();
        Ok(Tx {
            store,
            inner: Some(store.begin().await?),
            now,
        })
    }

    /// No transaction: each statement on its own, on the pool.
    pub(crate) fn read(store: &'s D) -> Tx<'s, D> {
        Tx {
            store,
            inner: None,
            now: store.now_ms(),
        }
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self.inner {
            Some(tx) => D::commit(tx).await,
            None => Ok(()),
        }
    }

    /// The rows `stmt` gives.
    pub(crate) async fn rows(&mut self, stmt: Stmt<'_>) -> Result<Vec<D::Row>, sqlx::Error> {
        let (sql, args) = stmt.render::<D>(self.now);
        self.store.fetch(self.inner.as_mut(), &sql, args).await
    }

    /// The one row `stmt` gives, if any.
    pub(crate) async fn opt_row(&mut self, stmt: Stmt<'_>) -> Result<Option<D::Row>> {
        Ok(self.rows(stmt).await?.into_iter().next())
    }

    /// The row `stmt` gives.
    pub(crate) async fn row(&mut self, stmt: Stmt<'_>) -> Result<D::Row> {
        self.opt_row(stmt)
            .await?
            .ok_or(sqlx::Error::RowNotFound.into())
    }

    /// Runs `stmt`; how many rows it changed.
    pub(crate) async fn execute(&mut self, stmt: Stmt<'_>) -> Result<u64> {
        let (sql, args) = stmt.render::<D>(self.now);
        Ok(self.store.execute(self.inner.as_mut(), &sql, args).await?)
    }

    /// See [`Dialect::insert_items`] (in a transaction only).
    pub(crate) async fn insert_items(&mut self, run: &str, items: &[String]) -> Result<()> {
        let tx = self
            .inner
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("items written outside a transaction".into()))?;
        Ok(D::insert_items(tx, run, items, self.now).await?)
    }
}

/// The rows `stmt` gives, read outside any transaction.
pub(crate) async fn rows<D: Dialect>(store: &D, stmt: Stmt<'_>) -> Result<Vec<D::Row>> {
    Ok(Tx::read(store).rows(stmt).await?)
}

/// The one row `stmt` gives, if any, read outside any transaction.
pub(crate) async fn opt_row<D: Dialect>(store: &D, stmt: Stmt<'_>) -> Result<Option<D::Row>> {
    Tx::read(store).opt_row(stmt).await
}

/// The row `stmt` gives, read outside any transaction.
pub(crate) async fn row<D: Dialect>(store: &D, stmt: Stmt<'_>) -> Result<D::Row> {
    Tx::read(store).row(stmt).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend whose statements bind the change's time (`BOUND`, as
    /// SQLite), or one whose database stamps it (as PostgreSQL).
    struct Test<const BOUND: bool>;
    type Bound = Test<true>;
    type Clocked = Test<false>;

    impl<const BOUND: bool> Dialect for Test<BOUND> {
        type Row = NoRow;
        type Tx = ();
        const JSON_IN: &'static str = if BOUND { "" } else { "::jsonb" };
        const JSON_OUT: &'static str = if BOUND { "" } else { "::text" };
        const LOCK_ROW: Option<&'static str> = None;
        fn now_ms(&self) -> Option<i64> {
            BOUND.then_some(7)
        }
        async fn begin(&self) -> Result<()> {
            Ok(())
        }
        async fn commit(_: ()) -> Result<()> {
            Ok(())
        }
        async fn fetch<'a>(
            &'a self,
            _: Option<&'a mut ()>,
            _: &'a str,
            _: Vec<Arg<'a>>,
        ) -> Result<Vec<NoRow>, sqlx::Error> {
            Ok(Vec::new())
        }
        async fn execute<'a>(
            &'a self,
            _: Option<&'a mut ()>,
            _: &'a str,
            _: Vec<Arg<'a>>,
        ) -> Result<u64, sqlx::Error> {
            Ok(0)
        }
        async fn insert_items<'a>(
            _: &'a mut (),
            _: &'a str,
            _: &'a [String],
            _: Option<i64>,
        ) -> Result<(), sqlx::Error> {
            Ok(())
        }
    }

    struct NoRow;

    impl Cells for NoRow {
        fn opt_text(&self, _: &str) -> Result<Option<String>> {
            Ok(None)
        }
        fn opt_int(&self, _: &str) -> Result<Option<i64>> {
            Ok(None)
        }
        fn opt_bool(&self, _: &str) -> Result<Option<bool>> {
            Ok(None)
        }
        fn opt_time(&self, _: &str) -> Result<Option<Timestamp>> {
            Ok(None)
        }
    }

    fn stmt() -> Stmt<'static> {
        Stmt::new(
            "UPDATE t SET d = ?json, at = ?now, by = ?, until = ?later WHERE k = ? \
             RETURNING d?text AS d",
        )
        .json(&serde_json::json!({"a": 1}))
        .text("me")
        .later(Duration::from_millis(1500))
        .int(3)
    }

    fn kinds(args: &[Arg<'_>]) -> Vec<String> {
        args.iter().map(|a| format!("{a:?}")).collect()
    }

    #[test]
    fn a_bound_clock_takes_a_placeholder_of_its_own() {
        let (sql, args) = stmt().render::<Bound>(Some(7));
        assert_eq!(
            sql,
            "UPDATE t SET d = $1, at = $2, by = $3, until = $4 WHERE k = $5 RETURNING d AS d"
        );
        assert_eq!(
            kinds(&args),
            [
                r#"Json(Some("{\"a\":1}"))"#,
                "Now(7)",
                r#"Text(Some("me"))"#,
                "Now(1507)",
                "Int(Some(3))"
            ]
        );
    }

    #[test]
    fn the_database_clock_takes_none() {
        let (sql, args) = stmt().render::<Clocked>(None);
        assert_eq!(
            sql,
            "UPDATE t SET d = $1::jsonb, at = now(), by = $2, \
             until = now() + make_interval(secs => $3) WHERE k = $4 RETURNING d::text AS d"
        );
        assert_eq!(
            kinds(&args),
            [
                r#"Json(Some("{\"a\":1}"))"#,
                r#"Text(Some("me"))"#,
                "Later(1.5s)",
                "Int(Some(3))"
            ]
        );
    }

    #[test]
    fn a_marker_without_a_value_binds_null() {
        let (sql, args) = Stmt::new("SELECT ? , ?").text("x").render::<Bound>(None);
        assert_eq!(sql, "SELECT $1 , $2");
        assert_eq!(kinds(&args), [r#"Text(Some("x"))"#, "Text(None)"]);
    }
}
