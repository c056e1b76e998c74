//! `golive runs` and `golive status`: reading the journal — which runs
//! there are, and where one of them stands: its phase, each item's status,
//! and who it is waiting for.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use comfy_table::Table;
use golive_store::{AnyStore, RunStatus, Store};
use serde_json::Value;

use crate::cli::{Output, RunsArgs, StatusArgs};
use crate::cmd::journal;
use crate::cmd::remote::Remote;

pub fn runs(args: &RunsArgs, output: Output) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        let runs: Vec<Value> = match Remote::from_args(&args.store)? {
            Some(server) => {
                let path = format!("/api/runs?limit={}", args.limit);
                let v = server.call(reqwest::Method::GET, &path, None).await?;
                v["runs"].as_array().cloned().unwrap_or_default()
            }
            None => {
                let store = journal::open_existing(&args.store).await?;
                let result = store.list_runs(args.limit).await;
                store.close().await;
                result?
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?
            }
        };
        if output == Output::Json {
            writeln!(
                std::io::stdout(),
                "{}",
                serde_json::to_string_pretty(&runs)?
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        let mut table = Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        table.set_header(["run", "plan", "status", "t0", "created", "updated"]);
        for r in &runs {
            table.add_row(
                [
                    "id",
                    "plan_name",
                    "status",
                    "t0",
                    "created_at",
                    "updated_at",
                ]
                .map(|k| plain(&r[k])),
            );
        }
        writeln!(std::io::stdout(), "{table}")?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn status(args: &StatusArgs, output: Output) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        match Remote::from_args(&args.store)? {
            Some(server) => remote_status(&server, args, output).await,
            None => {
                let store = journal::open_existing(&args.store).await?;
                let result = local_status(&store, args, output).await;
                store.close().await;
                result
            }
        }
    })
}

/// From the journal; `--follow` re-reads it every second and prints again
/// when the run's journal has grown, until the run ends.
async fn local_status(store: &AnyStore, args: &StatusArgs, output: Output) -> Result<ExitCode> {
    let id = journal::run_or_newest(store, args.run.as_ref()).await?;
    journal::get_run(store, &id).await?;
    let mut shown = -1;
    loop {
        let doc = golive_engine::status::status(store, &id).await?;
        let seq = doc["run"]["last_seq"].as_i64().unwrap_or(0);
        if seq != shown {
            print_status(&doc, output, args.follow)?;
            shown = seq;
        }
        if !args.follow || is_final(&doc) {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// From a server; `--follow` prints again at each event of the run's
/// journal on the server's live stream, until the run ends.
async fn remote_status(server: &Remote, args: &StatusArgs, output: Output) -> Result<ExitCode> {
    let id = server.run_or_newest(args.run.as_ref()).await?;
    let path = format!("/api/runs/{id}/status");
    let mut events = if args.follow {
        Some(server.events(&id).await?)
    } else {
        None
    };
    loop {
        let doc = server.call(reqwest::Method::GET, &path, None).await?;
        print_status(&doc, output, args.follow)?;
        let Some(stream) = events.as_mut().filter(|_| !is_final(&doc)) else {
            return Ok(ExitCode::SUCCESS);
        };
        // Wait for the next journal event of the run (several may come at once).
        loop {
            match stream.chunk().await.context("the event stream broke")? {
                Some(chunk) if String::from_utf8_lossy(&chunk).contains("event: run") => break,
                Some(_) => continue,
                None => return Ok(ExitCode::SUCCESS),
            }
        }
    }
}

fn is_final(doc: &Value) -> bool {
    doc["run"]["status"]
        .as_str()
        .and_then(|s| s.parse::<RunStatus>().ok())
        .is_some_and(RunStatus::is_final)
}

/// Prints a status document; with `--follow` and JSON, one line per
/// document (JSON Lines), so a program can read them one by one.
fn print_status(doc: &Value, output: Output, follow: bool) -> Result<()> {
    if output == Output::Json {
        if follow {
            writeln!(std::io::stdout(), "{}", serde_json::to_string(doc)?)?;
        } else {
            writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(doc)?)?;
        }
        return Ok(());
    }
    let s = &doc["run"];
    let text = |v: &Value| plain(v);
    writeln!(
        std::io::stdout(),
        "run {}  plan `{}`  {}",
        text(&s["id"]),
        text(&s["plan_name"]),
        text(&s["status"])
    )?;
    if !s["t0"].is_null() {
        writeln!(std::io::stdout(), "t0 {}", text(&s["t0"]))?;
    }
    if !doc["phase"].is_null() {
        writeln!(std::io::stdout(), "phase: {}", text(&doc["phase"]))?;
    }
    let r = &doc["rollback_requested"];
    if !r.is_null() {
        writeln!(
            std::io::stdout(),
            "rollback requested by {} at {}: {}",
            text(&r["by"]),
            text(&r["at"]),
            text(&r["reason"])
        )?;
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["phase", "item", "kind", "status", "attempts"]);
    for i in doc["items"].as_array().into_iter().flatten() {
        table.add_row([
            text(&i["phase"]),
            text(&i["id"]),
            text(&i["kind"]),
            text(&i["status"]),
            text(&i["attempts"]),
        ]);
    }
    writeln!(std::io::stdout(), "{table}")?;
    for a in doc["awaiting"].as_array().into_iter().flatten() {
        writeln!(
            std::io::stdout(),
            "waiting for {}: {}",
            text(&a["who"]),
            text(&a["how"])
        )?;
    }
    Ok(())
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
