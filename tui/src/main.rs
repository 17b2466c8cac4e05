//! `memctl`: run bare, the terminal UI; with a subcommand, a scriptable CLI. Both attach
//! to memd over its Unix socket with mem-protocol's client.
#![forbid(unsafe_code)]

mod alerts_cli;
mod audit_cli;
mod backtest_cli;
mod backup_cli;
mod bridge;
mod cli;
mod daemon_cli;
mod deploy_cli;
mod fleet_cli;
mod jobs_cli;
mod market_cli;
mod metrics_cli;
mod model_cli;
mod registry_cli;
mod risk_cli;
mod spawn;

use memctl::ui;

use clap::{CommandFactory, Parser, Subcommand};
use mem_protocol::generate::Generated;
use mem_protocol::strategy::StrategyStatus;
use std::path::PathBuf;
use std::process::ExitCode;

/// memctl: watch and control memd, the strategy daemon, from a terminal or a script.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Run without a command for the terminal UI."
)]
struct Args {
    /// memd's socket (default: the user daemon's, else the system service's). With
    /// `server add` or `bridge`: the socket on that server.
    #[arg(long, global = true, env = "MEMD_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// A server of the fleet (`memctl server list`), reached over SSH; `all`: every one
    /// (read-only commands, merged with a SERVER column).
    #[arg(long, global = true, env = "MEMCTL_SERVER", value_name = "NAME")]
    server: Option<String>,
    /// Ask the daemon for view-only access: nothing can be changed from this session.
    #[arg(long, global = true)]
    read_only: bool,
    /// Start a user daemon in the background if none answers on the socket.
    #[arg(long, global = true)]
    spawn: bool,
    /// Print the protocol's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The daemon and its host: version, uptime, paths, counts, CPU, memory.
    Status,
    /// The daemon itself, on this machine: status, start, stop, restart, logs (through
    /// systemctl and journalctl when systemd runs it).
    #[command(subcommand)]
    Daemon(daemon_cli::DaemonCommand),
    /// The strategy registry.
    #[command(subcommand, visible_alias = "s")]
    Strategies(Box<StrategiesCommand>),
    /// Run a strategy as a bot (dry-run unless --live).
    Deploy {
        /// The strategy's id.
        id: String,
        /// Trade for real: needs the strategy's permission and exchange keys in the daemon's config.
        #[arg(long)]
        live: bool,
        /// The bot API's port (default: the strategy's, else a free one).
        #[arg(long)]
        port: Option<u16>,
        #[command(flatten)]
        native: NativeArgs,
    },
    /// Stop a strategy's bot.
    Stop {
        id: String,
        /// Stop new entries, wait for open trades to close (or the deadline), then stop.
        #[arg(long)]
        drain: bool,
        /// For --drain: seconds to wait for open trades (default 300).
        #[arg(long)]
        deadline: Option<u64>,
    },
    /// Stop and start a strategy's bot again.
    Restart { id: String },
    /// Running deployments: status, pid, port, uptime, CPU, memory, trades, profit; and
    /// those that failed, until acknowledged (`memctl ack`).
    Deployed {
        /// Also the deployments that ended (stopped, acknowledged failures).
        #[arg(long)]
        all: bool,
    },
    /// Acknowledge a failed deployment: you have read why it failed; it leaves the
    /// default lists (`memctl deployed`, the UI's Deployed view).
    Ack {
        /// Deployment ids, or strategy ids (each of the strategy's failed deployments not
        /// yet acknowledged).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// `attach` and `detach`: bots memd did not start.
    #[command(flatten)]
    Attachment(deploy_cli::AttachCommand),
    /// A strategy's bot log.
    Logs {
        id: String,
        /// Lines to show (default 100).
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: usize,
        /// Keep printing new lines as they come.
        #[arg(long, short)]
        follow: bool,
    },
    /// The market now: trend and volatility of the reference pair, why, and how old its
    /// candles are (`market refresh` brings them up to date).
    Market {
        #[command(subcommand)]
        action: Option<MarketCommand>,
        /// The pair (default: the daemon's reference pair).
        #[arg(long)]
        pair: Option<String>,
        /// Default: the daemon's conditions timeframe (1h).
        #[arg(long)]
        timeframe: Option<String>,
    },
    /// Measure a strategy: the real Freqtrade's backtesting (a native strategy: memd's
    /// engine) on the market data, queued, followed with a progress bar; its figures go on
    /// the strategy's version, and a passed backtest is what recommendations score on.
    Backtest(BacktestArgs),
    /// The queue of backtests and walk-forwards: running, queued, finished.
    Queue {
        #[command(subcommand)]
        action: Option<QueueCommand>,
        /// Finished jobs shown (default 50).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Strategies that suit the market, best first, with each score explained.
    Recommend {
        /// bullish, bearish, ranging or neutral (default: the daemon's computed conditions).
        #[arg(long)]
        trend: Option<mem_protocol::recommend::Trend>,
        /// low, medium or high (default: the daemon's computed conditions).
        #[arg(long)]
        volatility: Option<mem_protocol::recommend::Volatility>,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
        /// Print every rule's points, not only the total.
        #[arg(long)]
        explain: bool,
    },
    /// MEM's memory: decisions and what the learning loop adjusted.
    #[command(subcommand)]
    Memory(MemoryCommand),
    /// MEM's figures: decisions per hour, ML prediction, enhancement and memory-load
    /// latency (average, p99), win rate over 24 h, learned strategies, bot poll latency.
    Metrics,
    /// The trend-reversal model: train, status, history, promote, rollback, predict.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Scheduled jobs: their schedule, last and next run (`jobs run NAME`, `jobs history`).
    Jobs {
        #[command(subcommand)]
        command: Option<JobsCommand>,
    },
    /// The risk guard over every deployment (`[risk]` in memd's config): its limits, the
    /// fleet's equity, drawdown and day's loss, what tripped it; `risk reset` clears it.
    Risk {
        #[command(subcommand)]
        command: Option<RiskCommand>,
    },
    /// The HTTP API (`[http] listen` in memd's config): `memctl http token [--view]`.
    #[command(subcommand)]
    Http(HttpCommand),
    /// memd's alerts (`[alerts]`: Telegram, a webhook, the log): a test, the history.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// What was done to the daemon (deploys, stops, jobs, tokens, backups, ...), by whom,
    /// and how it ended; oldest first. The registry's changes: `memctl strategies audit`.
    Audit {
        /// Since a time (2026-12-05T10:00:00Z), a day (2026-12-05) or how long ago (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only actions whose method starts with this (strategies.deploy, jobs.).
        #[arg(long)]
        action: Option<String>,
        /// The newest N (default 100).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Install what memd needs: `memctl setup freqtrade`.
    #[command(subcommand)]
    Setup(SetupCommand),
    /// The registry itself: `memctl registry migrate`.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// A consistent copy of memd's data (registry, trades, memory, models, deployments,
    /// jobs, tokens), made by memd with its writers paused, with a manifest.
    Backup {
        /// Where (new or empty; default ./memd-backup-YYYYmmddTHHMMSS, or the data
        /// directory's backups/ for a system daemon). memd writes it: it must be able to.
        dir: Option<PathBuf>,
        /// Also copy the market candles (left out: they are seeded again on the first start).
        #[arg(long)]
        with_market: bool,
        /// Also copy memd's log files.
        #[arg(long)]
        with_logs: bool,
    },
    /// Restore a backup into a new or empty data directory (offline: no daemon involved).
    /// Deployments that were running are recorded as stopped.
    Restore {
        /// The backup's directory (it has a backup.json).
        backup: PathBuf,
        /// The data directory to make (new or empty); start memd on it with --data-dir.
        #[arg(long, value_name = "DIR", required_unless_present = "check")]
        data_dir: Option<PathBuf>,
        /// Only check the backup against its manifest (every file, size and checksum).
        #[arg(long, conflicts_with_all = ["data_dir", "resume_deployments"])]
        check: bool,
        /// Keep the deployments' statuses, so the restored memd restarts the bots that
        /// were running: only when the original daemon and its bots are gone.
        #[arg(long)]
        resume_deployments: bool,
    },
    /// The servers this memctl reaches over SSH (`~/.config/memctl/fleet.toml`):
    /// `--server NAME` runs any command on one, `--server all` the read-only ones on all.
    #[command(subcommand)]
    Server(ServerCommand),
    /// memd's socket on stdin and stdout: what a memctl on another machine runs here
    /// through `ssh -T THIS-SERVER memctl bridge`.
    Bridge,
    /// Print memctl's man page or a shell completion script (the package installs them).
    Generate {
        #[arg(value_enum)]
        what: Generated,
    },
    /// Stop every deployment (an emergency brake).
    StopAll {
        #[arg(long)]
        drain: bool,
        #[arg(long)]
        deadline: Option<u64>,
    },
}

impl Command {
    /// Whether the command only reads, so it may run on every server (`--server all`).
    fn reads_only(&self) -> bool {
        match self {
            Command::Status
            | Command::Deployed { .. }
            | Command::Metrics
            | Command::Recommend { .. }
            | Command::Memory(_) => true,
            Command::Market { action, .. } => action.is_none(),
            Command::Queue { action, .. } => action.is_none(),
            Command::Jobs { command } => matches!(
                command,
                None | Some(JobsCommand::List) | Some(JobsCommand::History { .. })
            ),
            Command::Risk { command } => matches!(command, None | Some(RiskCommand::Status)),
            Command::Alerts(a) => matches!(a, AlertsCommand::History { .. }),
            Command::Audit { .. } => true,
            Command::Model(m) => matches!(
                m,
                ModelCommand::Status | ModelCommand::History | ModelCommand::Predict { .. }
            ),
            Command::Strategies(s) => matches!(
                **s,
                StrategiesCommand::List(_)
                    | StrategiesCommand::Show { .. }
                    | StrategiesCommand::Performance { .. }
                    | StrategiesCommand::Compare { .. }
                    | StrategiesCommand::Related { .. }
                    | StrategiesCommand::Audit { .. }
            ),
            _ => false,
        }
    }
}

#[derive(Debug, Subcommand)]
enum ServerCommand {
    /// Add (or replace) a server: an SSH destination, or only `--socket` for a daemon on
    /// this machine. `--socket` with a destination is memd's socket on that server.
    Add {
        name: String,
        /// `user@host`, or a `Host` of ~/.ssh/config.
        destination: Option<String>,
        /// An argument for ssh (repeatable): `--ssh-option=-p --ssh-option=2222`.
        #[arg(long = "ssh-option", value_name = "ARG", allow_hyphen_values = true)]
        ssh_options: Vec<String>,
        /// How to run memctl on that server (default `memctl` on its PATH).
        #[arg(long, value_name = "COMMAND")]
        memctl: Option<String>,
    },
    /// Forget a server.
    Remove { name: String },
    /// Every server, where it is, and whether memd answers there (its version, our access).
    #[command(visible_alias = "ls")]
    List,
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Copy this daemon's registry into an empty PostgreSQL database
    /// (`--to postgres://USER@HOST:PORT/DATABASE`) or an empty directory (`--to files
    /// DIR`), then read the copy back and compare every document and trade. memd goes on
    /// with its own registry; point it at the copy with `[registry]` in memd.toml.
    Migrate {
        /// `postgres://USER@HOST:PORT/DATABASE` (no password in it), or `files`.
        #[arg(long)]
        to: String,
        /// With `--to files`: the directory (memd writes it).
        dir: Option<PathBuf>,
        /// The database's password, read from this file (never on the command line).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// This server's name in the database's audit (default: memd's host name).
        #[arg(long)]
        server_name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AlertsCommand {
    /// Send a test alert to a channel (telegram, webhook, log), or to every channel.
    Test { channel: Option<String> },
    /// The alerts sent, failed or given up, oldest first.
    History {
        /// Newest deliveries shown (default 50).
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
enum RiskCommand {
    /// The guard's state (the default).
    Status,
    /// Clear a tripped guard: deploys are allowed again, its figures start again from now
    /// (paused bots stay paused until restarted).
    Reset {
        /// Why (kept with the reset, in memd's log and the `risk.reset` event).
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Every job: schedule, last run and its result, next run (the default).
    List,
    /// Run a job now and wait for its result (retrain, rotation, regime_deploy,
    /// performance_sync, learning, data_refresh, backup, retention).
    Run {
        name: String,
        /// Answer at once; the result goes to the history.
        #[arg(long)]
        no_wait: bool,
    },
    /// Recorded runs, newest first, with what each did and why.
    History {
        /// One job's runs (default: all).
        name: Option<String>,
        /// At most this many (default 50).
        #[arg(long, short = 'n')]
        limit: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
enum HttpCommand {
    /// Print the API's control bearer token (or, with --view, issue a new view-only one
    /// for a dashboard; with --webhook, the TradingView webhook's secret); only the token
    /// goes to stdout, for `$(memctl http token)`.
    #[command(args_conflicts_with_subcommands = true)]
    Token {
        /// A new token that can read but not deploy or stop.
        #[arg(long, conflicts_with = "webhook")]
        view: bool,
        /// The TradingView webhook's secret (the alert's `secret`, or `?secret=` in its URL).
        #[arg(long)]
        webhook: bool,
        /// With --view: the new token's name (default view-N), to rotate or revoke it by.
        #[arg(long, requires = "view")]
        name: Option<String>,
        #[command(subcommand)]
        action: Option<TokenCommand>,
    },
}

/// `memctl http token list|rotate|revoke`: the API's credentials by name.
#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Every credential's name and scope (control, view, webhook), never a value.
    List,
    /// A new value for `control`, `webhook` or a view token (printed alone on stdout); the
    /// old one is refused at once, but the webhook's, accepted for --grace-secs.
    Rotate {
        name: String,
        /// For the webhook: how long its old secret is still accepted (default 3600).
        #[arg(long)]
        grace_secs: Option<u64>,
    },
    /// Remove a view token: refused from now on.
    Revoke { name: String },
}

/// `memctl backtest ID ...`.
#[derive(Debug, clap::Args)]
struct BacktestArgs {
    /// The strategy's id.
    id: String,
    /// The last N days of the market data (default 30).
    #[arg(long, conflicts_with = "timerange")]
    days: Option<u32>,
    /// Freqtrade's form: 20261101-20261201 (either side may be empty).
    #[arg(long)]
    timerange: Option<String>,
    /// A walk-forward of N folds (optimised in-sample, tested out-of-sample).
    #[arg(long, value_name = "N")]
    walk_forward: Option<u32>,
    /// Optimisation trials per fold (hyperopt epochs).
    #[arg(long)]
    epochs: Option<u32>,
    /// Only this pair (repeatable; default: the strategy's).
    #[arg(long = "pair")]
    pair: Vec<String>,
    /// A native strategy's entries go through MEM (a throwaway memory).
    #[arg(long)]
    through_mem: bool,
    /// Queue it and return (memctl queue follows it).
    #[arg(long)]
    no_wait: bool,
}

/// `memctl queue`, `queue cancel`, `queue save`.
async fn queue(
    client: &mem_protocol::Client,
    action: Option<QueueCommand>,
    limit: Option<usize>,
    json: bool,
) -> anyhow::Result<()> {
    match action {
        None => backtest_cli::list(client, limit, json).await,
        Some(QueueCommand::Cancel { job }) => backtest_cli::cancel(client, job, json).await,
        Some(QueueCommand::Save { job, changelog }) => {
            backtest_cli::save(client, job, changelog, json).await
        }
    }
}

impl BacktestArgs {
    async fn run(self, client: &mem_protocol::Client, json: bool) -> anyhow::Result<()> {
        let no_wait = self.no_wait;
        let params = backtest_cli::params(
            &self.id,
            self.days,
            self.timerange,
            self.walk_forward,
            self.epochs,
            self.pair,
            self.through_mem,
        )?;
        backtest_cli::backtest(client, params, no_wait, json).await
    }
}

/// `memctl queue ...`.
#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Cancel a queued job, or stop a running one (its processes are ended).
    Cancel {
        /// The job's id (memctl queue lists them).
        job: String,
    },
    /// Save the parameters a walk-forward chose as a new version of its strategy (a
    /// running bot keeps its own until it is deployed again).
    Save {
        /// The walk-forward's job id.
        job: String,
        /// What the version changes (default: the job and its out-of-sample figures).
        #[arg(long)]
        changelog: Option<String>,
    },
}

/// `memctl market ...`.
#[derive(Debug, Subcommand)]
enum MarketCommand {
    /// Bring the market data up to date from the exchange now (Freqtrade's
    /// download-data, as the data_refresh job), with its progress; exits 1 if a pair
    /// failed.
    Refresh {
        /// Only this pair (repeatable; default: the job's pairs).
        #[arg(long = "pair")]
        pair: Vec<String>,
        /// Only this timeframe (repeatable; default: the job's, 5m and 1h).
        #[arg(long = "timeframe")]
        timeframe: Vec<String>,
        /// Days of history for a pair without fresh candles (default 30).
        #[arg(long)]
        days: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
enum MemoryCommand {
    /// The latest decisions, newest first, with their outcomes.
    Decisions {
        #[arg(long)]
        strategy: Option<String>,
        #[arg(long)]
        symbol: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// What the learning loop has adjusted, per strategy.
    Parameters,
    /// Learned strategies (patterns promoted by the learning loop) and the market
    /// states being watched.
    Learned {
        #[arg(long)]
        strategy: Option<String>,
    },
    /// Re-encrypt the memory at rest with a new key ([mem.encryption] encrypt = true, a
    /// key file): the key file then holds the new key. Decisions wait meanwhile; a rotation
    /// cut short is finished at memd's next start.
    RotateKey,
    /// The old name of `memory learned` (still accepted, with a warning).
    #[command(hide = true)]
    Patterns {
        #[arg(long)]
        strategy: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Train a new model on the configured candles; it becomes current only if better.
    Train {
        /// Pairs to train on (repeatable; default: the daemon's configured ones).
        #[arg(long = "pair")]
        pairs: Vec<String>,
        /// Candle timeframe (default: the daemon's, 5m).
        #[arg(long)]
        timeframe: Option<String>,
        /// What "better" means: accuracy (the seed's), roc-auc or log-loss.
        #[arg(long)]
        metric: Option<String>,
        /// Only each pair's last N days of candles.
        #[arg(long)]
        days: Option<u32>,
    },
    /// The current model, its holdout figures and feature importances.
    Status,
    /// Every version, newest first.
    History,
    /// Make a version current by hand.
    Promote {
        version: String,
        #[arg(long)]
        reason: String,
    },
    /// Go back to an earlier version (default: the one before the current).
    Rollback {
        version: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Predict a reversal from a pair's latest candles.
    Predict {
        /// The pair, as Freqtrade names it (ETH/BTC).
        pair: String,
        #[arg(long)]
        timeframe: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SetupCommand {
    /// Install Freqtrade (with its hyperopt extra) into a virtualenv under the daemon's data directory (runs `memd setup-freqtrade`).
    Freqtrade {
        #[arg(long)]
        version: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum StrategiesCommand {
    /// List strategies, filtered and sorted.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// One strategy in full.
    Show {
        /// The strategy's id (a UUID).
        id: String,
    },
    /// Register a new strategy from a JSON file (either seed shape; `-` reads stdin).
    Register {
        file: PathBuf,
        /// Status to register it with (default: the file's, else experimental).
        #[arg(long, value_parser = parse_status)]
        status: Option<StrategyStatus>,
    },
    /// Validate and register metadata files, or every .json file of directories, keeping their ids.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Change a strategy with a JSON merge patch over its metadata (`{"display_name": "X"}`).
    Update {
        id: String,
        /// The patch, as JSON text or @FILE.
        #[arg(long)]
        patch: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deprecate a strategy.
    Deprecate {
        id: String,
        #[arg(long)]
        reason: String,
        /// YYYY-MM-DD (default today).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// The strategy that replaces it.
        #[arg(long)]
        replacement: Option<String>,
    },
    /// Set the status: active, experimental or archived.
    Status {
        id: String,
        #[arg(value_parser = parse_status)]
        status: StrategyStatus,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Add or remove tags.
    Tag {
        id: String,
        #[arg(long = "add", value_name = "TAG")]
        add: Vec<String>,
        #[arg(long = "remove", value_name = "TAG")]
        remove: Vec<String>,
    },
    /// Link two strategies: FROM RELATIONSHIP TO (derived_from, mem_enhanced_version,
    /// combined_with, alternative_to, replaces, portfolio_component).
    Link {
        from: String,
        relationship: String,
        to: String,
        #[arg(long)]
        note: Option<String>,
        /// How alike the two are, 0 to 1.
        #[arg(long, value_name = "0..1")]
        similarity: Option<f64>,
    },
    /// Remove a link: FROM RELATIONSHIP TO.
    Unlink {
        from: String,
        relationship: String,
        to: String,
    },
    /// Strategies reachable through relationships.
    Related {
        id: String,
        /// Only this relationship (repeatable).
        #[arg(long = "type", value_name = "RELATIONSHIP")]
        types: Vec<String>,
        #[arg(long)]
        depth: Option<u32>,
    },
    /// Versions: list, show, create.
    #[command(subcommand)]
    Versions(VersionsCommand),
    /// Closed trades: record, list.
    #[command(subcommand)]
    Trades(TradesCommand),
    /// Performance metrics over a time range, MEM-enhanced trades beside the others.
    Performance {
        id: String,
        #[command(flatten)]
        range: RangeArgs,
    },
    /// Several strategies' metrics side by side.
    Compare {
        #[arg(required = true, num_args = 1..)]
        ids: Vec<String>,
        #[command(flatten)]
        range: RangeArgs,
    },
    /// Parameters: set one, or show the history.
    #[command(subcommand, visible_alias = "params")]
    Parameters(ParametersCommand),
    /// MEM marks: the enhanced version of a base strategy, the learned-pattern count.
    #[command(subcommand)]
    Mem(MemCommand),
    /// The newest registry mutations (of one strategy if given).
    Audit {
        id: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
enum VersionsCommand {
    /// Every version of a strategy.
    List { id: String },
    /// One version.
    Show { id: String, version: String },
    /// A new version: --bump major|minor|patch or --version X.Y.Z.
    Create(registry_cli::NewVersionArgs),
    /// Approve a version: who (default: you) and when are kept on it.
    Approve {
        id: String,
        version: String,
        /// Who approves (default: your user name).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TradesCommand {
    /// Record closed trades from a JSON file: an array, or one trade per line (`-` stdin).
    Record { id: String, file: PathBuf },
    /// Closed trades, newest first.
    List {
        id: String,
        #[command(flatten)]
        range: RangeArgs,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        offset: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
enum ParametersCommand {
    /// Set one parameter (VALUE is JSON if it parses as JSON, else a string).
    Set(registry_cli::SetParameterArgs),
    /// Parameter changes, oldest first, with each one's span and its measured effect
    /// (Sharpe of the 30 days before, and while it was in force).
    History { id: String, name: Option<String> },
}

#[derive(Debug, Subcommand)]
enum MemCommand {
    /// Mark ID as the MEM-enhanced version of BASE.
    Enhanced {
        id: String,
        #[arg(long)]
        base: String,
    },
    /// Set the strategy's learned-pattern count (`mem_integration.learned_patterns_count`).
    SetLearnedCount { id: String, count: u64 },
    /// The old name of `set-learned-count` (still accepted, with a warning).
    #[command(hide = true)]
    Patterns { id: String, count: u64 },
}

/// A time range.
#[derive(Debug, Clone, clap::Args)]
pub struct RangeArgs {
    /// From this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Until this time.
    #[arg(long)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only this category (momentum, mean_reversion, carry, ...).
    #[arg(long)]
    category: Option<String>,
    #[arg(long)]
    sub_category: Option<String>,
    /// freqtrade, rust, python, ...
    #[arg(long)]
    language: Option<String>,
    /// built_in, imported, research or learned.
    #[arg(long)]
    origin: Option<String>,
    /// Only this status.
    #[arg(long, value_parser = parse_status)]
    status: Option<StrategyStatus>,
    /// Only strategies with this tag (repeatable: all of them).
    #[arg(long)]
    tag: Vec<String>,
    /// Strategies with at least one of these tags (repeatable).
    #[arg(long)]
    any_tag: Vec<String>,
    /// Only strategies whose Sharpe ratio is at least this.
    #[arg(long, value_name = "X")]
    min_sharpe: Option<f64>,
    /// Only strategies whose win rate is at least this fraction (0.55).
    #[arg(long, value_name = "X")]
    min_win_rate: Option<f64>,
    /// Only MEM-enabled (true) or not (false).
    #[arg(long)]
    mem_enabled: Option<bool>,
    /// Only strategies for this asset class (crypto, equities, fx, ...).
    #[arg(long)]
    asset_class: Option<String>,
    /// Words that must all occur (name, tags, category, description, keywords); best
    /// matches first unless --sort.
    #[arg(long, short)]
    query: Option<String>,
    /// name, sharpe, win-rate, total-pnl or last-used.
    #[arg(long, value_parser = ["name", "sharpe", "win-rate", "total-pnl", "last-used"])]
    sort: Option<String>,
    /// Ascending order (the default for name).
    #[arg(long, conflicts_with = "desc")]
    asc: bool,
    /// Descending order (the default for the others).
    #[arg(long)]
    desc: bool,
    /// At most this many rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Skip this many rows.
    #[arg(long)]
    offset: Option<usize>,
}

/// Runs `memd setup-freqtrade` for the daemon's data directory (asked of the daemon when
/// one answers, else memd's own default).
async fn setup_freqtrade(args: &Args, version: Option<&str>) -> ExitCode {
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(mem_protocol::paths::default_client_socket);
    let data_dir = match mem_protocol::Client::connect(
        &socket,
        mem_protocol::ClientOptions::default(),
    )
    .await
    {
        Ok(client) => client
            .call::<mem_protocol::methods::method::DaemonStatus>(mem_protocol::methods::NoParams {})
            .await
            .ok()
            .map(|s| s.data_dir),
        Err(_) => None,
    };
    let memd = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("memd")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("memd"));
    let mut command = std::process::Command::new(memd);
    if let Some(dir) = &data_dir {
        command.arg("--data-dir").arg(dir);
    }
    command.arg("setup-freqtrade");
    if let Some(version) = version {
        command.arg("--version").arg(version);
    }
    match command.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("memctl: cannot run memd setup-freqtrade: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_status(s: &str) -> Result<StrategyStatus, String> {
    s.parse()
}

/// Reads a JSON value from a string of "snake" or "kebab" words.
fn enum_value<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::from(text.replace('-', "_")))
        .or_else(|_| serde_json::from_value(serde_json::Value::from(to_camel(text))))
        .map_err(|e| anyhow::anyhow!("bad {what} {text:?}: {e}"))
}

fn to_camel(text: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in text.chars() {
        if c == '-' || c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

async fn strategies(
    client: &mem_protocol::Client,
    command: StrategiesCommand,
    json: bool,
) -> anyhow::Result<()> {
    use registry_cli as r;
    match command {
        StrategiesCommand::List(list) => {
            let params = mem_protocol::methods::ListStrategiesParams {
                category: list.category,
                sub_category: list.sub_category,
                language: list.language,
                origin: list
                    .origin
                    .as_deref()
                    .map(|o| enum_value("origin", o))
                    .transpose()?,
                status: list.status,
                tag: None,
                tags: list.tag,
                tags_any: list.any_tag,
                min_sharpe: list.min_sharpe,
                min_win_rate: list.min_win_rate,
                mem_enabled: list.mem_enabled,
                asset_class: list.asset_class,
                query: list.query,
                sort: list
                    .sort
                    .as_deref()
                    .map(|s| enum_value("sort", s))
                    .transpose()?,
                order: if list.asc {
                    Some(mem_protocol::methods::SortOrder::Asc)
                } else if list.desc {
                    Some(mem_protocol::methods::SortOrder::Desc)
                } else {
                    None
                },
                limit: list.limit,
                offset: list.offset,
            };
            cli::strategies_list(client, params, json).await
        }
        StrategiesCommand::Show { id } => cli::strategies_show(client, &id, json).await,
        StrategiesCommand::Register { file, status } => {
            r::register(client, &file, status, json).await
        }
        StrategiesCommand::Import { paths } => r::import(client, &paths, json).await,
        StrategiesCommand::Update { id, patch, reason } => {
            r::update(client, &id, &patch, reason, json).await
        }
        StrategiesCommand::Deprecate {
            id,
            reason,
            date,
            replacement,
        } => r::deprecate(client, &id, reason, date, replacement, json).await,
        StrategiesCommand::Status { id, status, reason } => {
            r::set_status(client, &id, status, reason, json).await
        }
        StrategiesCommand::Tag { id, add, remove } => r::tag(client, &id, add, remove, json).await,
        StrategiesCommand::Link {
            from,
            relationship,
            to,
            note,
            similarity,
        } => {
            let link = (from, relationship, to);
            r::link(client, link, note, similarity, json).await
        }
        StrategiesCommand::Unlink {
            from,
            relationship,
            to,
        } => r::unlink(client, &from, &relationship, &to, json).await,
        StrategiesCommand::Related { id, types, depth } => {
            r::related(client, &id, types, depth, json).await
        }
        StrategiesCommand::Versions(VersionsCommand::List { id }) => {
            r::versions(client, &id, json).await
        }
        StrategiesCommand::Versions(VersionsCommand::Show { id, version }) => {
            r::version(client, &id, &version, json).await
        }
        StrategiesCommand::Versions(VersionsCommand::Create(args)) => {
            r::create_version(client, args, json).await
        }
        StrategiesCommand::Versions(VersionsCommand::Approve { id, version, by }) => {
            r::approve_version(client, &id, version, by, json).await
        }
        StrategiesCommand::Trades(TradesCommand::Record { id, file }) => {
            r::record_trades(client, &id, &file, json).await
        }
        StrategiesCommand::Trades(TradesCommand::List {
            id,
            range,
            limit,
            offset,
        }) => r::list_trades(client, &id, range, limit, offset, json).await,
        StrategiesCommand::Performance { id, range } => {
            r::performance(client, &id, range, json).await
        }
        StrategiesCommand::Compare { ids, range } => r::compare(client, &ids, range, json).await,
        StrategiesCommand::Parameters(ParametersCommand::Set(args)) => {
            r::set_parameter(client, args, json).await
        }
        StrategiesCommand::Parameters(ParametersCommand::History { id, name }) => {
            r::parameter_history(client, &id, name, json).await
        }
        StrategiesCommand::Mem(MemCommand::Enhanced { id, base }) => {
            r::mark_enhanced(client, &id, &base, json).await
        }
        StrategiesCommand::Mem(MemCommand::SetLearnedCount { id, count }) => {
            r::learned_patterns(client, &id, count, json).await
        }
        StrategiesCommand::Mem(MemCommand::Patterns { id, count }) => {
            renamed(
                "strategies mem patterns",
                "strategies mem set-learned-count",
            );
            r::learned_patterns(client, &id, count, json).await
        }
        StrategiesCommand::Audit { id, limit } => r::audit(client, id, limit, json).await,
    }
}

async fn memory(
    client: &mem_protocol::Client,
    command: MemoryCommand,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        MemoryCommand::Decisions {
            strategy,
            symbol,
            limit,
        } => cli::decisions(client, strategy, symbol, limit, json).await,
        MemoryCommand::Parameters => cli::parameters(client, json).await,
        MemoryCommand::Learned { strategy } => cli::patterns(client, strategy, json).await,
        MemoryCommand::Patterns { strategy } => {
            renamed("memory patterns", "memory learned");
            cli::patterns(client, strategy, json).await
        }
        MemoryCommand::RotateKey => cli::rotate_memory_key(client, json).await,
    }
}

async fn model(
    client: &mem_protocol::Client,
    command: ModelCommand,
    json: bool,
) -> anyhow::Result<()> {
    use model_cli as m;
    match command {
        ModelCommand::Train {
            pairs,
            timeframe,
            metric,
            days,
        } => {
            let metric = metric
                .as_deref()
                .map(|m| enum_value("metric", m))
                .transpose()?;
            let params = mem_protocol::ml::TrainParams {
                pairs,
                timeframe,
                hyper: None,
                promotion_metric: metric,
                days,
            };
            m::train(client, params, json).await
        }
        ModelCommand::Status => m::status(client, json).await,
        ModelCommand::History => m::history(client, json).await,
        ModelCommand::Promote { version, reason } => {
            m::promote(client, version, reason, json).await
        }
        ModelCommand::Rollback { version, reason } => {
            m::rollback(client, version, reason, json).await
        }
        ModelCommand::Predict { pair, timeframe } => {
            m::predict(client, pair, timeframe, json).await
        }
    }
}

/// Exit codes scripts can rely on.
pub mod exit {
    /// The daemon answered with an error (unknown id, bad input, ...), or `restore`
    /// refused (a damaged backup, a target that is not empty).
    pub const DAEMON_ERROR: u8 = 1;
    /// Bad command line, or a `keys.toml` the terminal UI cannot use.
    pub const USAGE: u8 = 2;
    /// No daemon answered on the socket.
    pub const UNREACHABLE: u8 = 3;
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Generate { what }) = args.command {
        return mem_protocol::generate::print(Args::command(), what);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("memctl: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

/// `memctl http token [list|rotate|revoke]`.
async fn http_token(
    client: &mem_protocol::Client,
    view: bool,
    webhook: bool,
    name: Option<String>,
    action: Option<TokenCommand>,
    json: bool,
) -> anyhow::Result<()> {
    match action {
        None => cli::http_token(client, view, webhook, name, json).await,
        Some(TokenCommand::List) => cli::http_tokens_list(client, json).await,
        Some(TokenCommand::Rotate { name, grace_secs }) => {
            cli::http_tokens_rotate(client, name, grace_secs, json).await
        }
        Some(TokenCommand::Revoke { name }) => cli::http_tokens_revoke(client, name, json).await,
    }
}

/// `memctl server ...`, `memctl bridge` and `--server all`: what runs before (or instead
/// of) connecting to one daemon. None for anything else.
async fn fleet(args: &Args) -> Option<ExitCode> {
    let result = match &args.command {
        Some(Command::Bridge) => {
            let socket = args
                .socket
                .clone()
                .unwrap_or_else(mem_protocol::paths::default_client_socket);
            return Some(bridge::run(&socket).await);
        }
        Some(Command::Server(ServerCommand::Add {
            name,
            destination,
            ssh_options,
            memctl,
        })) => fleet_cli::add(
            memctl::fleet::Server {
                name: name.clone(),
                ssh: destination.clone(),
                socket: args.socket.clone(),
                ssh_options: ssh_options.clone(),
                memctl: memctl.clone(),
            },
            args.json,
        ),
        Some(Command::Server(ServerCommand::Remove { name })) => fleet_cli::remove(name, args.json),
        Some(Command::Server(ServerCommand::List)) => fleet_cli::list(args.json).await,
        None if args.server.is_some() => {
            return Some(fleet_ui(args).await);
        }
        Some(command) if args.server.as_deref() == Some("all") => {
            return Some(if command.reads_only() {
                fleet_cli::all(args.json).await
            } else {
                eprintln!(
                    "memctl: --server all runs only the commands that read (status, deployed, metrics, recommend, jobs, ...); name one server for this one: --server NAME"
                );
                ExitCode::from(exit::USAGE)
            });
        }
        _ => return None,
    };
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("memctl: {err:#}");
            ExitCode::from(exit::USAGE)
        }
    })
}

/// The terminal UI over the fleet: `--server all` (every server at once) or `--server
/// NAME` (that one first; `:` switches).
async fn fleet_ui(args: &Args) -> ExitCode {
    let keys = match ui::keys::Keymap::load() {
        Ok(keys) => keys,
        Err(err) => {
            eprintln!("memctl: {err}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let fleet = match memctl::fleet::Fleet::load() {
        Ok(fleet) => fleet,
        Err(err) => {
            eprintln!("memctl: {err:#}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let wanted = args.server.as_deref().unwrap_or("all");
    let focus = if wanted == "all" {
        if fleet.servers.is_empty() {
            eprintln!(
                "memctl: --server all: no server yet (`memctl server add NAME SSH-DESTINATION`)"
            );
            return ExitCode::from(exit::USAGE);
        }
        ui::fleet::Focus::All
    } else {
        match fleet.get(wanted) {
            Ok(_) => ui::fleet::Focus::One(
                fleet
                    .servers
                    .iter()
                    .position(|s| s.name == wanted)
                    .unwrap_or(0),
            ),
            Err(err) => {
                eprintln!("memctl: {err:#}");
                return ExitCode::from(exit::USAGE);
            }
        }
    };
    let servers = fleet
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.endpoint()))
        .collect();
    match ui::run_fleet(servers, focus, args.read_only, keys).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("memctl: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `memctl daemon ...`: runs before connecting (the daemon may not run), on this
/// machine's socket only. None for anything else.
async fn daemon(args: &mut Args) -> Option<ExitCode> {
    let Some(Command::Daemon(_)) = &args.command else {
        return None;
    };
    if let Some(server) = &args.server {
        eprintln!(
            "memctl: `memctl daemon` acts on this machine's memd; for server {server}, run it there (ssh, then memctl daemon ...)"
        );
        return Some(ExitCode::from(exit::USAGE));
    }
    let Some(Command::Daemon(command)) = args.command.take() else {
        unreachable!("matched above");
    };
    Some(daemon_cli::run(command, args.socket.clone(), args.json).await)
}

/// `memctl restore`: runs without a daemon (it must not run on the data it replaces).
/// None for any other command.
async fn restore(args: &Args) -> Option<ExitCode> {
    let Some(Command::Restore {
        backup,
        data_dir,
        check,
        resume_deployments,
    }) = &args.command
    else {
        return None;
    };
    let (backup, data_dir) = (backup.clone(), data_dir.clone());
    let (check, resume, json) = (*check, *resume_deployments, args.json);
    let result = tokio::task::spawn_blocking(move || {
        backup_cli::restore(&backup, data_dir.as_deref(), check, resume, json)
    })
    .await
    .unwrap_or_else(|e| Err(anyhow::anyhow!("restore failed: {e}")));
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("memctl: {err:#}");
            ExitCode::from(exit::DAEMON_ERROR)
        }
    })
}

/// Connects to the daemon the arguments name: `--server NAME` over SSH, else the socket.
async fn connect(args: &Args) -> Result<(mem_protocol::Client, mem_protocol::Endpoint), ExitCode> {
    let connected = match &args.server {
        Some(name) => match fleet_cli::endpoint(name) {
            Ok(endpoint) => spawn::connect_server(name, &endpoint, args.read_only)
                .await
                .map(|client| (client, endpoint)),
            Err(err) => {
                eprintln!("memctl: {err:#}");
                return Err(ExitCode::from(exit::USAGE));
            }
        },
        None => {
            let socket = args
                .socket
                .clone()
                .unwrap_or_else(mem_protocol::paths::default_client_socket);
            spawn::connect(&socket, args.read_only, args.spawn)
                .await
                .map(|client| (client, mem_protocol::Endpoint::Socket(socket)))
        }
    };
    connected.map_err(|err| {
        eprintln!("memctl: {err}");
        ExitCode::from(err.exit_code())
    })
}

/// The commands that run before (or instead of) connecting to one daemon: setup,
/// restore, `memctl daemon`, the fleet's. None for anything else.
async fn before_connecting(args: &mut Args) -> Option<ExitCode> {
    if let Some(Command::Setup(SetupCommand::Freqtrade { version })) = &args.command {
        return Some(setup_freqtrade(args, version.as_deref()).await);
    }
    if let Some(code) = restore(args).await {
        return Some(code);
    }
    if let Some(code) = daemon(args).await {
        return Some(code);
    }
    fleet(args).await
}

async fn run(mut args: Args) -> ExitCode {
    if let Some(code) = before_connecting(&mut args).await {
        return code;
    }
    // The terminal UI's keys, before anything else: a bad keys.toml is said plainly here,
    // not lost behind a screen the terminal then has to be restored from.
    let keys = match args.command {
        None => match ui::keys::Keymap::load() {
            Ok(keys) => Some(keys),
            Err(err) => {
                eprintln!("memctl: {err}");
                return ExitCode::from(exit::USAGE);
            }
        },
        Some(_) => None,
    };
    let (client, endpoint) = match connect(&args).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let result = match args.command {
        None => {
            let target = ui::conn::Target::new(endpoint, args.read_only);
            ui::run(client, target, keys.unwrap_or_default()).await
        }
        Some(Command::Status) => cli::status(&client, args.json).await,
        Some(Command::Risk { command }) => match command.unwrap_or(RiskCommand::Status) {
            RiskCommand::Status => risk_cli::status(&client, args.json).await,
            RiskCommand::Reset { reason } => risk_cli::reset(&client, reason, args.json).await,
        },
        Some(Command::Strategies(command)) => strategies(&client, *command, args.json).await,
        Some(Command::Deploy {
            id,
            live,
            port,
            native,
        }) => deploy_cli::deploy(&client, &id, live, port, native.options(), args.json).await,
        Some(Command::Stop {
            id,
            drain,
            deadline,
        }) => deploy_cli::stop(&client, &id, drain, deadline, args.json).await,
        Some(Command::Restart { id }) => deploy_cli::restart(&client, &id, args.json).await,
        Some(Command::Deployed { all }) => deploy_cli::deployed(&client, all, args.json).await,
        Some(Command::Ack { ids }) => deploy_cli::acknowledge(&client, &ids, args.json).await,
        Some(Command::Attachment(c)) => deploy_cli::attachment(&client, c, args.json).await,
        Some(Command::Market {
            action:
                Some(MarketCommand::Refresh {
                    pair,
                    timeframe,
                    days,
                }),
            ..
        }) => market_cli::refresh(&client, pair, timeframe, days, args.json).await,
        Some(Command::Market {
            action: None,
            pair,
            timeframe,
        }) => cli::market(&client, pair, timeframe, args.json).await,
        Some(Command::Backtest(a)) => a.run(&client, args.json).await,
        Some(Command::Queue { action, limit }) => queue(&client, action, limit, args.json).await,
        Some(Command::Recommend {
            trend,
            volatility,
            limit,
            explain,
        }) => cli::recommend(&client, trend, volatility, limit, explain, args.json).await,
        Some(Command::Setup(_))
        | Some(Command::Daemon(_))
        | Some(Command::Restore { .. })
        | Some(Command::Server(_))
        | Some(Command::Bridge)
        | Some(Command::Generate { .. }) => {
            unreachable!("handled before connecting")
        }
        Some(Command::Backup {
            dir,
            with_market,
            with_logs,
        }) => backup_cli::backup(&client, dir, with_market, with_logs, args.json).await,
        Some(Command::Registry(RegistryCommand::Migrate {
            to,
            dir,
            password_file,
            server_name,
        })) => registry_cli::migrate(&client, to, dir, password_file, server_name, args.json).await,
        Some(Command::Model(command)) => model(&client, command, args.json).await,
        Some(Command::Metrics) => metrics_cli::metrics(&client, args.json).await,
        Some(Command::Memory(command)) => memory(&client, command, args.json).await,
        Some(Command::Jobs { command }) => match command.unwrap_or(JobsCommand::List) {
            JobsCommand::List => jobs_cli::list(&client, args.json).await,
            JobsCommand::Run { name, no_wait } => {
                jobs_cli::run(&client, name, no_wait, args.json).await
            }
            JobsCommand::History { name, limit } => {
                jobs_cli::history(&client, name, limit, args.json).await
            }
        },
        Some(Command::Audit {
            since,
            action,
            limit,
        }) => audit_cli::actions(&client, since.as_deref(), action, limit, args.json).await,
        Some(Command::Alerts(AlertsCommand::Test { channel })) => {
            alerts_cli::test(&client, channel, args.json).await
        }
        Some(Command::Alerts(AlertsCommand::History { limit })) => {
            alerts_cli::history(&client, limit, args.json).await
        }
        Some(Command::Http(HttpCommand::Token {
            view,
            webhook,
            name,
            action,
        })) => http_token(&client, view, webhook, name, action, args.json).await,
        Some(Command::Logs { id, lines, follow }) => {
            deploy_cli::logs(&client, &id, lines, follow).await
        }
        Some(Command::StopAll { drain, deadline }) => {
            deploy_cli::stop_all(&client, drain, deadline, args.json).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("memctl: {err:#}");
            ExitCode::from(cli::exit_code_of(&err))
        }
    }
}

/// A native strategy's feed (`memctl deploy ID --replay FILE`); ignored by Freqtrade bots.
#[derive(Debug, Clone, Default, clap::Args)]
struct NativeArgs {
    /// Replay this candle file (Freqtrade feather/json or CSV; relative to the market
    /// data directory) from start to end, then finish.
    #[arg(long, value_name = "FILE", conflicts_with = "follow")]
    replay: Option<String>,
    /// Trade the candles appended to this file (default for native strategies: the
    /// pair's file in the market data directory).
    #[arg(long, value_name = "FILE")]
    follow: Option<String>,
    /// The pair traded (default: the reference pair).
    #[arg(long)]
    pair: Option<String>,
    /// The candles' timeframe (default: the daemon's `[market] timeframe`).
    #[arg(long)]
    timeframe: Option<String>,
    /// Replay speed in candles a second (default: as fast as possible).
    #[arg(long)]
    speed: Option<f64>,
    /// Paper money to start with.
    #[arg(long)]
    balance: Option<f64>,
}

impl NativeArgs {
    fn options(self) -> Option<mem_protocol::deploy::NativeOptions> {
        use mem_protocol::deploy::{FeedMode, NativeOptions};
        let mode = match (&self.replay, &self.follow) {
            (Some(_), _) => Some(FeedMode::Replay),
            (None, Some(_)) => Some(FeedMode::Follow),
            _ => None,
        };
        let options = NativeOptions {
            pair: self.pair,
            timeframe: self.timeframe,
            file: self.replay.or(self.follow),
            mode,
            speed: self.speed,
            starting_balance: self.balance,
        };
        (options != NativeOptions::default()).then_some(options)
    }
}

/// Tells (on stderr, so scripts reading stdout are undisturbed) that a subcommand was
/// called by its old name.
fn renamed(old: &str, new: &str) {
    eprintln!("memctl: `memctl {old}` is now `memctl {new}`; the old name still works for now");
}
