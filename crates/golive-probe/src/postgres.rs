//! The PostgreSQL probe: connect, then `value` (the first column of the
//! first row of the check's `query`), `connections` (rows of
//! `pg_stat_activity`), `in_recovery` (a replica) and `response_time` (to
//! connect).
//!
//! The query runs through the simple query protocol, so every column type —
//! `numeric` included — comes back as text and is read here as a number, a
//! boolean or text, without a decoder per type.

use std::str::FromStr;
use std::time::Instant;

use golive_plan::RawPostgres;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Executor, Row, TypeInfo, ValueRef};

use crate::Outcome;
use crate::observation::{Observation, Value};
use golive_runtime::Vars;
use golive_runtime::{error_chain, mask_userinfo};

pub(crate) async fn observe(p: &RawPostgres, vars: &Vars) -> Outcome {
    let url = vars.expand(&p.url.value);
    let shown = mask_userinfo(&url);
    let options = PgConnectOptions::from_str(&url)
        .map_err(|e| format!("{shown}: {}", error_chain(&e)))?
        .application_name("golive")
        .disable_statement_logging();
    let started = Instant::now();
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| format!("cannot connect to {shown}: {}", error_chain(&e)))?;
    let mut obs = Observation::default();
    obs.set("response_time", Value::duration(started.elapsed()))
        .set("connected", Value::Bool(true));

    if let Some(query) = &p.query {
        let query = vars.expand(query);
        let row = conn
            .fetch_optional(sqlx::raw_sql(&query))
            .await
            .map_err(|e| format!("query failed: {}", error_chain(&e)))?;
        match row {
            None => {
                obs.note("value", "the query returned no row");
            }
            Some(row) => match first_value(&row) {
                Ok(Some(v)) => {
                    obs.set("value", v);
                }
                Ok(None) => {
                    obs.note("value", "NULL");
                }
                Err(e) => return Err(format!("reading the query's result: {e}")),
            },
        }
    }

    if let Ok(n) = sqlx::query_scalar::<_, i64>("select count(*) from pg_stat_activity")
        .fetch_one(&mut conn)
        .await
    {
        obs.set("connections", Value::Number(n as f64));
    }
    if let Ok(b) = sqlx::query_scalar::<_, bool>("select pg_is_in_recovery()")
        .fetch_one(&mut conn)
        .await
    {
        obs.set("in_recovery", Value::Bool(b));
    }
    let _ = conn.close().await;
    Ok(obs)
}

/// The first column of a row (sent as text) as a number, a boolean or text;
/// `None` for NULL.
fn first_value(row: &sqlx::postgres::PgRow) -> Result<Option<Value>, String> {
    if row.columns().is_empty() {
        return Err("the query returned no column".into());
    }
    let raw = row.try_get_raw(0).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(None);
    }
    let kind = raw.type_info().name().to_ascii_uppercase();
    let text = raw.as_str().map_err(|e| e.to_string())?.to_string();
    Ok(Some(match kind.as_str() {
        "BOOL" => Value::Bool(text == "t" || text == "true"),
        "INT2" | "INT4" | "INT8" | "OID" | "FLOAT4" | "FLOAT8" | "NUMERIC" => {
            match text.parse::<f64>() {
                Ok(n) => Value::Number(n),
                Err(_) => Value::Text(text),
            }
        }
        _ => Value::Text(text),
    }))
}
