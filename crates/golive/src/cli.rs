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

    /// How log lines (`golive serve`'s, and warnings) are written to stderr;
    /// the level is GOLIVE_LOG (error, warn, info, debug, trace).
    #[arg(long, global = true, value_enum, env = "GOLIVE_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event, with its key=value fields.
    Text,
    /// One JSON object per line, with the fields and the request's span.
    Json,
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
    /// Execute a plan (or resume a run), journaling every step.
    ///
    /// Prints the run id first, a line per item as it finishes, and the final
    /// status. Exit code 0: succeeded; 1: failed or rolled back; 2: usage,
    /// plan or journal error; 130/143: stopped by SIGINT/SIGTERM (the running
    /// item is marked interrupted; resume with --resume RUN).
    Run(RunArgs),
    /// Confirm a task (or answer an interrupted item's question: rerun, or skip with --skip).
    Confirm(ConfirmArgs),
    /// Sign off an approval item for a role.
    Approve(ApproveArgs),
    /// Reject an approval item for a role: the item fails.
    Reject(RejectArgs),
    /// Ask the engine driving a run to stop and run the plan's rollback items.
    ///
    /// Records who asked and why. A live `golive run` acts on it at its next
    /// poll; if none is running, `golive run --resume RUN` performs it.
    Rollback(RollbackArgs),
    /// Rollouts: end the current pause and move to the next step.
    Promote(SteerArgs),
    /// Rollouts: hold traffic where it is (analysis goes on) until `golive resume`.
    Pause(SteerArgs),
    /// Rollouts: let a paused rollout go on.
    Resume(SteerArgs),
    /// Rollouts: roll back now (canary weight to 0; the item fails). Needs --reason.
    Abort(SteerArgs),
    /// Watch window: acknowledge an incident, which stops its escalation.
    Ack(AckArgs),
    /// List the runs in the journal, newest first.
    Runs(RunsArgs),
    /// Show a run: its phase, each item's status, and who it waits for.
    Status(StatusArgs),
    /// Print a run's filled-in go-live record (Markdown, HTML, JSON or JUnit).
    Report(ReportArgs),
    /// Serve the war-room API: runs, answers, feature flags (admin API and
    /// OpenFeature OFREP), tokens, audit log, live events, /health, /metrics.
    ///
    /// Every setting also comes from the environment (GOLIVE_LISTEN,
    /// GOLIVE_CORS_ORIGINS, GOLIVE_DATABASE_URL, ...). SIGTERM or SIGINT stop
    /// it cleanly: runs executing in it are marked interrupted and the next
    /// server resumes them.
    Serve(ServeArgs),
    /// Make, list and revoke API tokens (stored hashed; shown once).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Read and change feature flags, in the journal or through a server.
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// Run the demo go-live: two service versions, load, a canary through a
    /// feature flag judged from live metrics, and the record. About a minute.
    ///
    /// Needs nothing but this binary. `--fault` breaks v2 at 25% to show the
    /// automatic rollback. Exit code 0 when the demo went as it should.
    Demo(DemoArgs),
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

/// Where runs are journaled.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The SQLite journal file. Default: $GOLIVE_DATABASE_URL (e.g. a
    /// postgres:// URL) if set, else the per-user data directory.
    #[arg(long, value_name = "PATH", conflicts_with = "server")]
    pub db: Option<PathBuf>,
    /// Act through this golive server (its API) instead of the journal.
    #[arg(long, env = "GOLIVE_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The API token for --server (see `golive token create`).
    #[arg(long, env = "GOLIVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan file (not with --resume: a resumed run uses its stored plan).
    pub plan: Option<PathBuf>,
    /// Set a plan variable: `--var NAME=value` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// The go-live moment (RFC 3339), overriding the plan's `t0`.
    #[arg(long, value_name = "RFC3339")]
    pub t0: Option<jiff::Timestamp>,
    /// Resume this run from the journal instead of starting a new one.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<golive_store::RunId>,
    /// The lease's time to live (renewed every third of it); for tests.
    #[arg(long, hide = true, value_parser = parse_duration)]
    pub lease_ttl: Option<std::time::Duration>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The run.
    pub run: golive_store::RunId,
    /// The item.
    pub item: String,
    /// Who confirms (with --server: the token's name is recorded).
    #[arg(long, required_unless_present = "server")]
    pub by: Option<String>,
    /// Evidence: text, or @FILE to read it from a file.
    #[arg(long)]
    pub evidence: Option<String>,
    /// Confirm the item as not done on purpose (needs --reason).
    #[arg(long, requires = "reason")]
    pub skip: bool,
    /// Why it is skipped.
    #[arg(long, requires = "skip")]
    pub reason: Option<String>,
    /// Fill in a blank of the record: `--field "Start Time=14:02"` (repeatable;
    /// the task's `fields`, its phase's `record` or the plan's `record`).
    #[arg(long = "field", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub fields: Vec<(String, String)>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The run.
    pub run: golive_store::RunId,
    /// Why the run is rolled back.
    #[arg(long)]
    pub reason: String,
    /// Who asks for it (with --server: the token's name is recorded).
    #[arg(long, required_unless_present = "server")]
    pub by: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A person's say over a run's rollout.
#[derive(Debug, Args)]
pub struct SteerArgs {
    /// The run.
    pub run: golive_store::RunId,
    /// Who decides (with --server: the token's name is recorded).
    #[arg(long, required_unless_present = "server")]
    pub by: Option<String>,
    /// Why (required for abort).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// An acknowledgement of an incident of a run's watch window.
#[derive(Debug, Args)]
pub struct AckArgs {
    /// The run.
    pub run: golive_store::RunId,
    /// The incident, e.g. `INC-1` (`golive report RUN` lists them).
    pub incident: String,
    /// Who acknowledges (with --server: the token's name is recorded).
    #[arg(long, required_unless_present = "server")]
    pub by: Option<String>,
    /// A note for the record.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Who signs what.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The run.
    pub run: golive_store::RunId,
    /// The approval item.
    pub item: String,
    /// The role signed for (one of the approval's roles).
    #[arg(long = "as", value_name = "ROLE")]
    pub role: String,
    /// Who signs (a member of ROLE in the plan; with --server: the token's name).
    #[arg(long, required_unless_present = "server")]
    pub by: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub sign: SignArgs,
    /// A comment.
    #[arg(long)]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    #[command(flatten)]
    pub sign: SignArgs,
    /// Why (required).
    #[arg(long)]
    pub comment: String,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// How many runs to list.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run (default: the newest).
    pub run: Option<golive_store::RunId>,
    /// Keep showing it as it changes, until the run ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run (default: the newest).
    pub run: Option<golive_store::RunId>,
    /// The report's format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long = "out", short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Formats of `golive report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The completed checklist.
    Markdown,
    /// One self-contained page.
    Html,
    /// The stable JSON shape (see the `golive_engine::report` docs).
    Json,
    /// One test case per item.
    Junit,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    golive_plan::time::parse_duration(s)
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

/// The journal only (commands that never go through a server).
#[derive(Debug, Args)]
pub struct JournalArgs {
    /// The SQLite journal file. Default: $GOLIVE_DATABASE_URL (e.g. a
    /// postgres:// URL) if set, else the per-user data directory.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "GOLIVE_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// A browser origin allowed to call the API (repeatable; none by default).
    #[arg(
        long = "cors-origin",
        env = "GOLIVE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// How often flags changed by other servers sharing the database are re-read [default: 1s].
    #[arg(long, env = "GOLIVE_FLAGS_REFRESH", value_parser = parse_duration)]
    pub flags_refresh: Option<std::time::Duration>,
    /// The lease of runs executed by this server [default: 15s].
    #[arg(long, env = "GOLIVE_LEASE_TTL", value_parser = parse_duration)]
    pub lease_ttl: Option<std::time::Duration>,
    /// Let operators (not only admins) start plans with `run` items or
    /// `command`, `env` or `file` checks: they act as the server's user.
    #[arg(long, env = "GOLIVE_ALLOW_API_COMMANDS")]
    pub allow_api_commands: bool,
    /// A name of this server's environment that plans run here may see
    /// (repeatable; e.g. for an `env:` secret). Plans see only PATH, HOME,
    /// USER, LANG, LC_ALL, TZ, TMPDIR and these; commands get nothing else.
    #[arg(
        long = "plan-env",
        env = "GOLIVE_PLAN_ENV",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub plan_env: Vec<String>,
    /// Answer /metrics only to a request with a token (any role).
    #[arg(long, env = "GOLIVE_METRICS_NEED_TOKEN")]
    pub metrics_need_token: bool,
    /// A settings file (YAML: listen, database, cors_origins, flags_refresh,
    /// lease_ttl, auth_failure_limit, metrics_need_token, allow_api_commands,
    /// plan_env, max_connections, header_read_timeout, idle_timeout); flags and
    /// GOLIVE_… variables win over it.
    #[arg(long, env = "GOLIVE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub store: JournalArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; its text is printed once and stored only as a hash.
    Create {
        /// Who or what holds it; for a sign-off role, a member of that role in the plan.
        #[arg(long)]
        name: String,
        /// viewer, operator, admin, or a plan's sign-off role (e.g. security).
        #[arg(long)]
        role: String,
        /// Lifetime, e.g. 30d (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        store: JournalArgs,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        store: JournalArgs,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token's id (as `golive token list` shows it).
        id: String,
        #[command(flatten)]
        store: JournalArgs,
    },
}

/// Where `golive flags` acts: a server, or the journal directly.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Who you are, for the audit log (local journal only; a server records the token's name).
    #[arg(long, env = "USER", hide_env_values = true, default_value = "cli")]
    pub by: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// List flags.
    List {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Show one flag.
    Get {
        /// The flag's key.
        key: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Create a flag, or change the fields given of an existing one.
    Set {
        /// The flag's key.
        key: String,
        /// Turn it on.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Turn it off.
        #[arg(long)]
        disable: bool,
        /// Roll out to this percentage of targeting keys (0-100, 2 decimals).
        #[arg(long)]
        percentage: Option<f64>,
        /// Further fields as JSON, e.g. '{"stickiness": "userId"}'.
        #[arg(long, value_name = "JSON")]
        json: Option<String>,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Delete a flag.
    Delete {
        /// The flag's key.
        key: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Make v2 answer 20% errors once it reaches 25%: golive rolls back by itself.
    #[arg(long)]
    pub fault: bool,
    /// Sign the go/no-go yourself (the command is printed) instead of the demo.
    #[arg(long)]
    pub interactive: bool,
    /// The journal (default: a fresh SQLite file in the temporary directory).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}
