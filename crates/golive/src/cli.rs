//! Command-line arguments. One variant per subcommand; shared argument
//! groups are flattened so every command spells them the same way.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// golive turns a go-live checklist into a plan that runs: readiness checks,
/// sign-offs, commands, progressive rollout and rollback, with a record of
/// who did what.
#[derive(Debug, Parser)]
#[command(
    name = "golive",
    version,
    about,
    max_term_width = 100,
    after_help = "Examples:
  golive init                                   write an example plan to golive.yaml
  golive import checklist.md -o golive.yaml     turn a Markdown checklist into a plan
  golive validate golive.yaml                   every problem at once, with its line
  golive plan show golive.yaml                  the timeline
  golive ready golive.yaml --output junit       readiness, as a CI test report"
)]
pub struct Cli {
    /// Output format where a table or report is printed.
    #[arg(long, global = true, value_enum, default_value_t = Output::Human)]
    pub output: Output,

    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and text for people.
    Human,
    /// JSON for programs.
    Json,
    /// Markdown (`golive ready`).
    Markdown,
    /// JUnit XML for CI systems (`golive ready`).
    Junit,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented example plan that uses every item kind.
    Init(InitArgs),
    /// Turn a Markdown go-live checklist into a plan.
    Import(ImportArgs),
    /// Check a plan and report every problem with its line.
    Validate(PlanArgs),
    /// Run the plan's checks concurrently and report whether it is ready to go live.
    ///
    /// Exit code 0: ready; 1: not ready; 2: the plan is invalid.
    Ready(ReadyArgs),
    /// Look at a plan.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Print the JSON Schema of the plan format (for editors).
    Schema,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Print the timeline: phases, T-offsets, item counts by kind, owners.
    Show(PlanArgs),
}

/// A plan file and variables for it.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file.
    #[arg(default_value = "golive.yaml")]
    pub plan: PathBuf,
    /// Set a plan variable: `--var NAME=value` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct ReadyArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Only checks of these phases (id or title; repeatable).
    #[arg(long)]
    pub phase: Vec<String>,
    /// Only checks with these tags (repeatable).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Only these check ids (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// How many checks run at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Score (0–100) needed to be ready; critical checks must pass regardless.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub min_score: u32,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the plan.
    #[arg(default_value = "golive.yaml")]
    pub path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The Markdown checklist.
    pub checklist: PathBuf,
    /// Where to write the plan (default: standard output).
    #[arg(long = "out", short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=value"))?;
    if k.is_empty() {
        return Err(format!("`{s}` has no name before `=`"));
    }
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
