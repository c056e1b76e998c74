//! `golive report`: a run's filled-in go-live record, read from the journal
//! (or a server's `/api/runs/{run}/report`) and rendered by
//! `golive_engine::report`: Markdown (the completed checklist), HTML, JSON
//! or JUnit.

use std::process::ExitCode;

use anyhow::{Context, Result};
use golive_engine::report;
use golive_store::{AnyStore, Store};

use crate::cli::{ReportArgs, ReportFormat};
use crate::cmd::journal;
use crate::cmd::remote::Remote;

pub fn run(args: &ReportArgs) -> Result<ExitCode> {
    let text = journal::runtime()?.block_on(async {
        if let Some(server) = Remote::from_args(&args.store)? {
            return remote(&server, args).await;
        }
        let store = journal::open_existing(&args.store).await?;
        let result = render(&store, args).await;
        store.close().await;
        result
    })?;
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                // A closed pipe (`golive report | head`) is not an error.
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("cannot write the report");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn render(store: &AnyStore, args: &ReportArgs) -> Result<String> {
    let id = journal::run_or_newest(store, args.run.as_ref()).await?;
    // A clear "no run" error naming the journal, before the report reads it.
    journal::get_run(store, &id).await?;
    let r = report::build(store, &id).await?;
    Ok(match args.format {
        ReportFormat::Markdown => report::to_markdown(&r),
        ReportFormat::Html => report::to_html(&r),
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&r)?),
        ReportFormat::Junit => report::to_junit(&r),
    })
}

async fn remote(server: &Remote, args: &ReportArgs) -> Result<String> {
    let id = server.run_or_newest(args.run.as_ref()).await?;
    let format = match args.format {
        ReportFormat::Markdown => "markdown",
        ReportFormat::Html => "html",
        ReportFormat::Json => "json",
        ReportFormat::Junit => "junit",
    };
    let path = format!("/api/runs/{id}/report?format={format}");
    let text = server.text(reqwest::Method::GET, &path, None).await?;
    Ok(match args.format {
        ReportFormat::Json => {
            let v: serde_json::Value = serde_json::from_str(&text)?;
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        _ => text,
    })
}
