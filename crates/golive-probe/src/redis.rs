//! The Redis probe: `ping` (PING answered with the URL's credentials),
//! `auth_required` (a second connection *without* credentials is refused),
//! `persistence` (`aof`, `rdb`, `aof+rdb` or `none`), `memory_used` (bytes)
//! and `response_time` (connect and PING).
//!
//! An unreachable server is an error; a server that refuses the URL's
//! credentials, or wants some the URL lacks, is an observation
//! (`ping == false`, `auth_required == true`).

use std::time::Instant;

use golive_plan::RawRedis;
use redis::aio::MultiplexedConnection;
use redis::{ConnectionInfo, IntoConnectionInfo, RedisError};

use crate::Outcome;
use crate::observation::{Observation, Value};
use golive_runtime::Vars;
use golive_runtime::{error_chain, mask_userinfo};

pub(crate) async fn observe(p: &RawRedis, vars: &Vars) -> Outcome {
    let url = vars.expand(&p.url.value);
    let shown = mask_userinfo(&url);
    let info = url
        .as_str()
        .into_connection_info()
        .map_err(|e| format!("{shown}: {}", error_chain(&e)))?;
    let mut obs = Observation::default();

    let started = Instant::now();
    let conn = match connect(info.clone()).await {
        Ok(mut conn) => match ping(&mut conn).await {
            Ok(()) => Some(conn),
            Err(e) if is_auth_error(&e) => {
                obs.note("ping", auth_note(&e));
                None
            }
            Err(e) => return Err(format!("{shown}: PING: {}", error_chain(&e))),
        },
        Err(e) if is_auth_error(&e) => {
            obs.note("ping", auth_note(&e));
            None
        }
        Err(e) => return Err(format!("cannot connect to {shown}: {}", error_chain(&e))),
    };
    obs.set("response_time", Value::duration(started.elapsed()))
        .set("ping", Value::Bool(conn.is_some()));

    let mut anonymous = info;
    anonymous.redis.username = None;
    anonymous.redis.password = None;
    let refused = match connect(anonymous).await {
        Ok(mut c) => match ping(&mut c).await {
            Ok(()) => false,
            Err(e) if is_auth_error(&e) => true,
            Err(e) => {
                return Err(format!(
                    "{shown}: PING without credentials: {}",
                    error_chain(&e)
                ));
            }
        },
        Err(e) if is_auth_error(&e) => true,
        Err(e) => return Err(format!("cannot connect to {shown}: {}", error_chain(&e))),
    };
    obs.set("auth_required", Value::Bool(refused));

    if let Some(mut conn) = conn {
        if let Some(p) = persistence(&mut conn).await {
            obs.set("persistence", Value::Text(p));
        }
        let memory = info_section(&mut conn, "memory").await.ok();
        if let Some(n) = memory
            .as_deref()
            .and_then(|m| field(m, "used_memory"))
            .and_then(|v| v.parse::<f64>().ok())
        {
            obs.set("memory_used", Value::Number(n));
        }
    } else {
        for f in ["persistence", "memory_used"] {
            obs.note(f, "not readable: the server refused the credentials");
        }
    }
    Ok(obs)
}

async fn connect(info: ConnectionInfo) -> Result<MultiplexedConnection, RedisError> {
    redis::Client::open(info)?
        .get_multiplexed_async_connection()
        .await
}

async fn ping(conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
    redis::cmd("PING")
        .query_async::<String>(conn)
        .await
        .map(|_| ())
}

fn is_auth_error(e: &RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
}

fn auth_note(e: &RedisError) -> String {
    match e.code() {
        Some(code) => format!("refused: {code}"),
        None => "refused: authentication failed".into(),
    }
}

/// From `CONFIG GET appendonly` and `CONFIG GET save`; when `CONFIG` is
/// disabled (managed services), from `INFO persistence`, which tells AOF
/// only.
async fn persistence(conn: &mut MultiplexedConnection) -> Option<String> {
    let aof = config_get(conn, "appendonly").await;
    let save = config_get(conn, "save").await;
    let (aof, rdb) = match (aof, save) {
        (Some(aof), Some(save)) => (aof == "yes", !save.trim().is_empty()),
        _ => {
            let info = info_section(conn, "persistence").await.ok()?;
            (field(&info, "aof_enabled") == Some("1"), false)
        }
    };
    Some(
        match (aof, rdb) {
            (true, true) => "aof+rdb",
            (true, false) => "aof",
            (false, true) => "rdb",
            (false, false) => "none",
        }
        .to_string(),
    )
}

async fn config_get(conn: &mut MultiplexedConnection, name: &str) -> Option<String> {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(conn)
        .await
        .ok()?;
    pair.get(1).cloned()
}

async fn info_section(
    conn: &mut MultiplexedConnection,
    section: &str,
) -> Result<String, RedisError> {
    redis::cmd("INFO").arg(section).query_async(conn).await
}

fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}
