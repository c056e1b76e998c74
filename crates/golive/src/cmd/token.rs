//! `golive token create|list|revoke`: API tokens, made against the journal
//! directly (the first admin token cannot come from a server that needs
//! one). The token's text goes alone to stdout, so a script can keep it:
//! `TOKEN=$(golive token create --name ci --role operator)`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use golive_store::{Actor, Store};

use crate::cli::{Output, TokenCommand};
use crate::cmd::journal;

fn actor() -> Actor {
    Actor {
        name: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
        source: Some("cli".into()),
    }
}

pub fn run(command: TokenCommand, output: Output) -> Result<ExitCode> {
    journal::runtime()?.block_on(async {
        match command {
            TokenCommand::Create { name, role, expires, store } => {
                let store = journal::open_db(store.db.as_deref()).await?;
                let made = golive_server::audit::create_token(
                    &store,
                    &name,
                    &role,
                    expires.as_deref(),
                    &actor(),
                )
                .await;
                store.close().await;
                let (token, record) = made.map_err(|e| anyhow::anyhow!(e.message))?;
                if output == Output::Json {
                    println!(
                        "{}",
                        serde_json::json!({"token": token, "id": record.id, "name": record.name, "role": record.role, "expires_at": record.expires_at})
                    );
                } else {
                    println!("{token}");
                    let until = record
                        .expires_at
                        .map(|t| format!("until {t}"))
                        .unwrap_or_else(|| "no expiry".into());
                    eprintln!(
                        "token {} for `{}` as {} ({until}); shown once, stored only as a hash",
                        record.id, record.name, record.role
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            TokenCommand::List { store } => {
                let store = journal::open_db(store.db.as_deref()).await?;
                let tokens = store.list_tokens().await;
                store.close().await;
                let tokens = tokens?;
                if output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(&tokens)?);
                    return Ok(ExitCode::SUCCESS);
                }
                let mut table = comfy_table::Table::new();
                table.set_header(["id", "name", "role", "created", "expires", "revoked"]);
                for t in tokens {
                    let opt = |v: Option<jiff::Timestamp>| v.map(|t| t.to_string()).unwrap_or_default();
                    table.add_row([
                        t.id,
                        t.name,
                        t.role,
                        t.created_at.to_string(),
                        opt(t.expires_at),
                        opt(t.revoked_at),
                    ]);
                }
                println!("{table}");
                Ok(ExitCode::SUCCESS)
            }
            TokenCommand::Revoke { id, store } => {
                let store = journal::open_db(store.db.as_deref()).await?;
                let done = store.revoke_token(&id, &actor()).await;
                store.close().await;
                if !done? {
                    bail!("no live token `{id}` (unknown, or already revoked)");
                }
                eprintln!("token {id} revoked");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
