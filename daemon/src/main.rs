//! `memd`: parse the command line, resolve the settings, start logging, run the daemon.

use clap::{CommandFactory, Parser, Subcommand};
use mem_protocol::generate::Generated;
use memd::config::{Overrides, Settings};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// memd: runs trading strategies and Freqtrade bots on this server; memctl attaches to it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (default /etc/memd/memd.toml with --system, else
    /// $XDG_CONFIG_HOME/memd/memd.toml, each only if present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (registry, deployments, models, memory). Env: MEMD_DATA_DIR.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Unix socket to listen on. Env: MEMD_SOCKET.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Run as the system service: /var/lib/memd, /run/memd/memd.sock, /var/log/memd
    /// (or systemd's StateDirectory, RuntimeDirectory and LogsDirectory).
    #[arg(long)]
    system: bool,
    /// Do not copy the built-in strategies into a new data directory.
    #[arg(long)]
    no_seed: bool,
    /// Print the resolved settings and exit.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<MemdCommand>,
}

#[derive(Debug, Subcommand)]
enum MemdCommand {
    /// Install Freqtrade (with its hyperopt extra) from PyPI into a virtualenv under the data directory.
    SetupFreqtrade {
        #[arg(long, default_value = memd::freqtrade::PINNED_VERSION)]
        version: String,
    },
    /// Print memd's man page or a shell completion script (the package installs them).
    Generate {
        #[arg(value_enum)]
        what: Generated,
    },
}

/// How often memd hands the memory glibc's malloc holds free back to the system, at the
/// next moment a runtime worker goes idle.
const RELEASE_FREE_MEMORY_EVERY: Duration = Duration::from_secs(30);

/// Called when a runtime worker parks (has nothing to do). malloc keeps freed memory for
/// reuse, and over hours of a daemon's life that kept memory grows around long-lived
/// objects: in the soak, memd's RSS rose some 10-15 MB an hour while what it held live grew
/// 1-3 MB, and a `malloc_trim` returned 70% of the rise. Process-wide and rate-limited, so
/// a park costs one clock read and one atomic load.
fn on_worker_park() {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    static NEXT_RELEASE_MS: AtomicU64 = AtomicU64::new(0);
    let now_ms = STARTED.get_or_init(Instant::now).elapsed().as_millis() as u64;
    let due_ms = NEXT_RELEASE_MS.load(Ordering::Relaxed);
    let next_ms = now_ms + RELEASE_FREE_MEMORY_EVERY.as_millis() as u64;
    if now_ms >= due_ms
        && NEXT_RELEASE_MS
            .compare_exchange(due_ms, next_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        release_free_memory();
    }
}

/// Every arena of glibc's malloc gives back its free pages (from the middle of the heap
/// too, not only the top).
#[cfg(target_env = "gnu")]
fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointer and locks the arenas itself.
    #[allow(unsafe_code)] // the one FFI call of memd; glibc has no safe wrapper for it
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

#[cfg(not(target_env = "gnu"))]
fn release_free_memory() {}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(MemdCommand::Generate { what }) = args.command {
        return mem_protocol::generate::print(Args::command(), what);
    }
    let overrides = Overrides {
        config: args.config,
        data_dir: args.data_dir,
        socket: args.socket,
        system: args.system,
        no_seed: args.no_seed,
    };
    let settings = match Settings::resolve(&overrides) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("memd: {err:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(MemdCommand::SetupFreqtrade { version }) = &args.command {
        return match memd::freqtrade::setup(&settings.data_dir, version) {
            Ok(bin) => {
                println!("{}", bin.display());
                eprintln!(
                    "Freqtrade is ready; memd uses {} (no restart needed).",
                    bin.display()
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("memd setup-freqtrade: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    if args.check_config {
        for warning in &settings.warnings {
            eprintln!("memd: warning: {warning}");
        }
        println!("mode          {}", settings.mode.as_str());
        println!(
            "config file   {}",
            settings
                .config_file
                .as_ref()
                .map_or("(none)".into(), |p| p.display().to_string())
        );
        println!("data dir      {}", settings.data_dir.display());
        match &settings.registry {
            memd::registry::config::Backend::Files => {
                println!("registry dir  {}", settings.registry_dir.display())
            }
            memd::registry::config::Backend::Postgres(pg) => println!(
                "registry      {} (PostgreSQL, as server {}; password {})",
                pg.url,
                pg.server,
                if pg.password.is_some() {
                    "given"
                } else {
                    "none"
                }
            ),
        }
        println!("socket        {}", settings.socket.display());
        println!("log dir       {}", settings.log_dir.display());
        println!("log level     {}", settings.log_level);
        println!(
            "http          {}",
            settings
                .http_listen
                .map_or("off".into(), |a| format!("http://{a}/api/mem/strategies"))
        );
        return ExitCode::SUCCESS;
    }
    let _log_guard = match memd::logging::init(
        &settings.log_level,
        &settings.log_dir,
        settings.log_keep_files,
    ) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("memd: {err:#}");
            return ExitCode::from(2);
        }
    };
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(on_worker_park)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("memd: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(async { memd::run(settings, memd::shutdown_signal()).await }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line on stderr (the journal) and in the log file.
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
