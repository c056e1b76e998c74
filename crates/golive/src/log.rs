//! Log lines on stderr through `tracing`: text or JSON (`--log-format`),
//! at the level of `GOLIVE_LOG` — by default `info` for `golive serve`,
//! whose log is its output, and `warn` for the other commands, whose
//! output is what they print for people.

use std::str::FromStr;

use tracing::level_filters::LevelFilter;

use crate::cli::{Cli, Command, LogFormat};

/// Installs the global subscriber.
pub fn init(cli: &Cli) {
    let default = match cli.command {
        Command::Serve(_) => LevelFilter::INFO,
        _ => LevelFilter::WARN,
    };
    let level = std::env::var("GOLIVE_LOG")
        .ok()
        .and_then(|v| LevelFilter::from_str(v.trim()).ok())
        .unwrap_or(default);
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false);
    // Another subscriber already installed (none is) would only keep its own.
    let _ = match cli.log_format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
