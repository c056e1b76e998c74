//! `golive flags list|get|set|delete`: feature flags, in the local journal
//! or, with `--server URL --token T`, through a golive server's admin API.
//! Both paths apply a change the same way (`golive_server::flags::upsert`:
//! only the fields given change) and audit who and why.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use golive_server::flags::{FlagView, parse_key, upsert};
use golive_store::{Actor, Store};
use serde_json::{Map, Value, json};

use crate::cli::{FlagsCommand, Output, RemoteArgs};
use crate::cmd::journal;
use crate::cmd::remote::Remote;

pub fn run(command: FlagsCommand, output: Output) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let (views, remote) = match &command {
            FlagsCommand::List { remote } => (list(remote).await?, remote),
            FlagsCommand::Get { key, remote } => (vec![get(remote, key).await?], remote),
            FlagsCommand::Set {
                key,
                enable,
                disable,
                percentage,
                json,
                reason,
                remote,
            } => {
                let mut patch = match json {
                    Some(text) => {
                        match serde_json::from_str::<Value>(text).context("--json is not JSON")? {
                            Value::Object(m) => m,
                            _ => bail!("--json must be a JSON object of flag fields"),
                        }
                    }
                    None => Map::new(),
                };
                if *enable || *disable {
                    patch.insert("enabled".into(), Value::Bool(*enable));
                }
                if let Some(p) = percentage {
                    patch.insert("percentage".into(), json!(p));
                }
                if patch.is_empty() {
                    bail!("nothing to change: give --enable, --disable, --percentage or --json");
                }
                (
                    vec![set(remote, key, patch, reason.as_deref()).await?],
                    remote,
                )
            }
            FlagsCommand::Delete {
                key,
                reason,
                remote,
            } => {
                delete(remote, key, reason.as_deref()).await?;
                eprintln!("flag `{key}` deleted");
                return Ok(ExitCode::SUCCESS);
            }
        };
        let _ = remote;
        print(&views, output)?;
        Ok(ExitCode::SUCCESS)
    })
}

fn print(views: &[Value], output: Output) -> Result<()> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(views)?);
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.set_header([
        "flag",
        "enabled",
        "percentage",
        "variants",
        "version",
        "updated by",
        "updated at",
    ]);
    for v in views {
        let d = &v["definition"];
        let text = |x: &Value| match x {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let variants = d["variants"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| text(&v["name"]))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        table.add_row([
            text(&d["flag"]),
            text(&d["enabled"]),
            match &d["percentage"] {
                Value::Null => "all".into(),
                p => format!("{p}%"),
            },
            variants,
            text(&v["version"]),
            text(&v["updated_by"]),
            text(&v["updated_at"]),
        ]);
    }
    println!("{table}");
    Ok(())
}

fn local_actor(remote: &RemoteArgs) -> Actor {
    Actor {
        name: remote.by.clone(),
        source: Some("cli".into()),
    }
}

fn view(record: golive_store::FlagRecord) -> Result<Value> {
    Ok(serde_json::to_value(FlagView::from(record))?)
}

fn path_key(key: &str) -> Result<String> {
    // Keys are [A-Za-z0-9_.:-], safe in a path once checked.
    Ok(parse_key(key)
        .map_err(|e| anyhow::anyhow!(e.message))?
        .to_string())
}

async fn list(remote: &RemoteArgs) -> Result<Vec<Value>> {
    if let Some(server) = Remote::from_args(&remote.store)? {
        let v = server
            .call(reqwest::Method::GET, "/api/admin/feature-flags", None)
            .await?;
        return Ok(v.as_array().cloned().unwrap_or_default());
    }
    let store = journal::open(&remote.store).await?;
    let records = store.list_flags().await;
    store.close().await;
    records?.into_iter().map(view).collect()
}

async fn get(remote: &RemoteArgs, key: &str) -> Result<Value> {
    let key = path_key(key)?;
    if let Some(server) = Remote::from_args(&remote.store)? {
        return server
            .call(
                reqwest::Method::GET,
                &format!("/api/admin/feature-flags/{key}"),
                None,
            )
            .await;
    }
    let store = journal::open(&remote.store).await?;
    let record = store.get_flag(&key).await;
    store.close().await;
    match record? {
        Some(r) => view(r),
        None => bail!("no flag `{key}`"),
    }
}

async fn set(
    remote: &RemoteArgs,
    key: &str,
    mut patch: Map<String, Value>,
    reason: Option<&str>,
) -> Result<Value> {
    let key = parse_key(key).map_err(|e| anyhow::anyhow!(e.message))?;
    if let Some(server) = Remote::from_args(&remote.store)? {
        patch.insert("flag".into(), Value::String(key.to_string()));
        if let Some(r) = reason {
            patch.insert("reason".into(), Value::String(r.to_string()));
        }
        return server
            .call(
                reqwest::Method::POST,
                "/api/admin/feature-flags",
                Some(&Value::Object(patch)),
            )
            .await;
    }
    let store = journal::open(&remote.store).await?;
    let result = upsert(
        &store,
        &key,
        &Value::Object(patch),
        None,
        true,
        &local_actor(remote),
        reason,
    )
    .await;
    store.close().await;
    let (record, _) = result.map_err(|e| anyhow::anyhow!(e.message))?;
    view(record)
}

async fn delete(remote: &RemoteArgs, key: &str, reason: Option<&str>) -> Result<()> {
    let key = path_key(key)?;
    if let Some(server) = Remote::from_args(&remote.store)? {
        let mut path = format!("/api/admin/feature-flags/{key}");
        if let Some(r) = reason {
            let encoded: String = r
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            path.push_str(&format!("?reason={encoded}"));
        }
        server.call(reqwest::Method::DELETE, &path, None).await?;
        return Ok(());
    }
    let store = journal::open(&remote.store).await?;
    let done = store.delete_flag(&key, &local_actor(remote), reason).await;
    store.close().await;
    if !done? {
        bail!("no flag `{key}`");
    }
    Ok(())
}
