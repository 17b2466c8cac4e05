//! `memctl`: run bare, the terminal UI; with a subcommand, a scriptable CLI. Both attach
//! to memd over its Unix socket with mem-protocol's client.
#![forbid(unsafe_code)]

mod cli;
mod spawn;
mod ui;

use clap::{Parser, Subcommand};
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
    /// memd's socket (default: the user daemon's, else the system service's).
    #[arg(long, global = true, env = "MEMD_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
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
    /// The strategy registry.
    #[command(subcommand, visible_alias = "s")]
    Strategies(StrategiesCommand),
}

#[derive(Debug, Subcommand)]
enum StrategiesCommand {
    /// List strategies, filtered.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// One strategy in full.
    Show {
        /// The strategy's id (a UUID).
        id: String,
    },
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only this category (momentum, mean_reversion, carry, ...).
    #[arg(long)]
    category: Option<String>,
    /// Only this status.
    #[arg(long, value_parser = parse_status)]
    status: Option<StrategyStatus>,
    /// Only strategies with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only strategies whose Sharpe ratio is at least this.
    #[arg(long, value_name = "X")]
    min_sharpe: Option<f64>,
    /// Words that must all appear in the name, description or tags.
    #[arg(long, short)]
    query: Option<String>,
    /// At most this many rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Skip this many rows.
    #[arg(long)]
    offset: Option<usize>,
}

fn parse_status(s: &str) -> Result<StrategyStatus, String> {
    s.parse()
}

/// Exit codes scripts can rely on.
pub mod exit {
    /// The daemon answered with an error (unknown id, bad input, ...).
    pub const DAEMON_ERROR: u8 = 1;
    /// Bad command line.
    pub const USAGE: u8 = 2;
    /// No daemon answered on the socket.
    pub const UNREACHABLE: u8 = 3;
}

fn main() -> ExitCode {
    let args = Args::parse();
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

async fn run(args: Args) -> ExitCode {
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(mem_protocol::paths::default_client_socket);
    let client = match spawn::connect(&socket, args.read_only, args.spawn).await {
        Ok(client) => client,
        Err(err) => {
            eprintln!("memctl: {err}");
            return ExitCode::from(err.exit_code());
        }
    };
    let result = match args.command {
        None => ui::run(client).await,
        Some(Command::Status) => cli::status(&client, args.json).await,
        Some(Command::Strategies(StrategiesCommand::List(list))) => {
            let params = mem_protocol::methods::ListStrategiesParams {
                category: list.category,
                status: list.status,
                tag: list.tag,
                min_sharpe: list.min_sharpe,
                query: list.query,
                limit: list.limit,
                offset: list.offset,
            };
            cli::strategies_list(&client, params, args.json).await
        }
        Some(Command::Strategies(StrategiesCommand::Show { id })) => {
            cli::strategies_show(&client, &id, args.json).await
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
