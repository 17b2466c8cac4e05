//! `memctl daemon status|start|stop|restart|logs`: the daemon itself, on this machine,
//! whoever started it.
//!
//! Who manages memd decides how each command works. A memd that systemd started (the
//! system unit, or a user unit) is started, stopped and restarted with `systemctl` and its
//! log read with `journalctl`, so that systemd knows what happened: a unit's daemon
//! stopped behind its back would be recorded as ended by itself. Any other memd
//! (`memctl --spawn`, `memd` in a terminal) is stopped by asking it (`daemon.stop`: the
//! same shutdown as SIGTERM, for any peer with control access, and audited), started by
//! spawning `memd`, and its log read from the daily files in its log directory.
//!
//! How memctl tells them apart ([`manager_of`]): a process lives in the cgroup of the
//! unit that started it, and `/proc/PID/cgroup` says which (`/system.slice/memd.service`,
//! `/user.slice/user-1000.slice/user@1000.service/app.slice/memd.service`). That is the
//! kernel's record: it needs no D-Bus, no call to systemd and nothing from memd, and a
//! memd started by hand from a shell that inherited a unit's `INVOCATION_ID` or
//! `NOTIFY_SOCKET` is not mistaken for the unit's. When no memd answers, the unit that
//! would start one is asked of systemd ([`unit_for`]: `systemctl show -p LoadState -p
//! UnitFileState`).

use crate::cli::{duration, print_json};
use crate::spawn::{self, ConnectError, Launch};
use clap::Subcommand;
use mem_protocol::deploy::{DeployedParams, DeploymentType};
use mem_protocol::methods::{NoParams, StatusReport, method};
use mem_protocol::{Client, ClientError, paths};
use serde::Serialize;
use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// How long `daemon stop` waits for memd's process to end (it stops native runners and
/// saves the live summaries first), and `start` for a unit's memd to answer.
const STOP_WAIT: Duration = Duration::from_secs(60);
/// How often a log file being followed is read again.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);
/// The unit of the packages and of systemd/README.md.
const UNIT: &str = "memd.service";

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Whether memd runs here: pid, uptime, version, who manages it (systemd or not),
    /// socket, data and log directories. Exit code 3 when it does not run.
    Status,
    /// Start memd: its systemd unit if one is installed for this socket, else a user
    /// daemon in the background (as `memctl --spawn` does).
    Start {
        /// The user daemon's data directory (default ~/.local/share/memd); not for a unit.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The user daemon's config file; not for a unit.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Stop memd and wait until its process has ended. Its Freqtrade bots keep running
    /// (memd adopts them at its next start); native runners pause and resume then.
    Stop,
    /// Stop memd and start it again: the same command line, or `systemctl restart`.
    Restart,
    /// memd's log: the newest lines of its log files, or of the journal under systemd.
    Logs {
        /// Lines shown.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
        /// Keep printing lines as memd writes them (Ctrl-C to leave).
        #[arg(short, long)]
        follow: bool,
        /// The log directory, read when no memd answers to name it (a user daemon's is
        /// <data>/logs).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Who started memd, and so who stops and starts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Manager {
    /// A systemd unit: the system manager's, or (`user`) a user's manager's.
    Systemd { unit: String, user: bool },
    /// A process of its own: `memctl --spawn`, `memd` in a terminal or a script.
    Process,
}

/// What `daemon status --json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct State {
    running: bool,
    socket: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uptime_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_dir: Option<String>,
    /// Who manages the running memd; when none runs, the unit that would start it.
    #[serde(skip_serializing_if = "Option::is_none")]
    manager: Option<Manager>,
}

/// No memd answers: exit code 3, as for every command that finds no daemon.
#[derive(Debug, thiserror::Error)]
#[error("memd is not running: nothing answers at {0}")]
struct NotRunning(String);

/// Runs `memctl daemon ...` on `socket` (`--socket`, else the default). The daemon may
/// be absent, so this runs before memctl's usual connection.
pub async fn run(command: DaemonCommand, socket: Option<PathBuf>, json: bool) -> ExitCode {
    let given = socket.is_some();
    let socket = socket.unwrap_or_else(paths::default_client_socket);
    let result = match command {
        DaemonCommand::Status => status(&socket, given, json).await,
        DaemonCommand::Start { data_dir, config } => {
            let mut extra: Vec<OsString> = Vec::new();
            if let Some(dir) = data_dir {
                extra.extend(["--data-dir".into(), dir.into_os_string()]);
            }
            if let Some(file) = config {
                extra.extend(["--config".into(), file.into_os_string()]);
            }
            start(&socket, given, extra, json).await
        }
        DaemonCommand::Stop => stop(&socket, json).await,
        DaemonCommand::Restart => restart(&socket, json).await,
        DaemonCommand::Logs { lines, follow, dir } => {
            logs(&socket, given, lines, follow, dir).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<NotRunning>().is_some() => {
            eprintln!("memctl: {err}");
            ExitCode::from(crate::exit::UNREACHABLE)
        }
        Err(err) => {
            eprintln!("memctl: {err:#}");
            ExitCode::from(crate::exit::DAEMON_ERROR)
        }
    }
}

/// The memd answering at `socket` and its status; None when nothing answers.
async fn answering(socket: &Path) -> anyhow::Result<Option<(Client, StatusReport)>> {
    match spawn::connect(socket, false, false).await {
        Ok(client) => {
            let report = client.call::<method::DaemonStatus>(NoParams {}).await?;
            Ok(Some((client, report)))
        }
        Err(ConnectError::NoDaemon { .. }) => Ok(None),
        Err(err) => Err(anyhow::anyhow!("{err}")),
    }
}

/// Who manages the process `pid` (see the module's comment).
fn manager_of_pid(pid: u32) -> Manager {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_or(Manager::Process, |cgroup| manager_of(&cgroup))
}

/// Who manages a process, from its `/proc/PID/cgroup` (cgroup v2's one line `0::PATH`,
/// or v1's lines, one of them systemd's `1:name=systemd:PATH`): a systemd unit named
/// memd (`memd.service`, `memd@x.service`, `memd-x.service`) if the process is in its
/// cgroup, of a user's manager if the path passes through `user@UID.service`.
pub fn manager_of(cgroup: &str) -> Manager {
    for line in cgroup.lines() {
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        let Some(unit) = path.rsplit('/').next().filter(|name| is_memd_unit(name)) else {
            continue;
        };
        let user = path
            .split('/')
            .any(|part| part.starts_with("user@") && part.ends_with(".service"));
        return Manager::Systemd {
            unit: unit.to_string(),
            user,
        };
    }
    Manager::Process
}

fn is_memd_unit(name: &str) -> bool {
    name.strip_suffix(".service").is_some_and(|stem| {
        stem == "memd" || stem.starts_with("memd@") || stem.starts_with("memd-")
    })
}

/// `systemctl [--user] ACTION UNIT`'s arguments.
pub fn systemctl_args(action: &str, unit: &str, user: bool) -> Vec<String> {
    let mut args = Vec::new();
    if user {
        args.push("--user".to_string());
    }
    args.extend([action.to_string(), unit.to_string()]);
    args
}

/// `journalctl`'s arguments for a unit's newest `lines` lines, following with `follow`.
pub fn journalctl_args(unit: &str, user: bool, lines: usize, follow: bool) -> Vec<String> {
    let mut args = Vec::new();
    if user {
        args.push("--user".to_string());
    }
    args.extend([
        "-u".to_string(),
        unit.to_string(),
        "-n".to_string(),
        lines.to_string(),
        "--no-pager".to_string(),
    ]);
    if follow {
        args.push("-f".to_string());
    }
    args
}

/// A memd unit as a systemd manager knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitState {
    /// No such unit, no systemd (a container), or no answer.
    Missing,
    Installed,
    /// Installed and enabled (started at boot, or at the user's login).
    Enabled,
}

/// The state in `systemctl show -p LoadState -p UnitFileState`'s output.
pub fn unit_state_of(show: &str) -> UnitState {
    let value = |key: &str| {
        show.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    match (value("LoadState"), value("UnitFileState")) {
        (Some("loaded"), Some("enabled" | "enabled-runtime")) => UnitState::Enabled,
        (Some("loaded"), _) => UnitState::Installed,
        _ => UnitState::Missing,
    }
}

/// The memd unit of systemd (the system's, or with `user` the user's manager).
fn unit_state(user: bool) -> UnitState {
    let mut args = systemctl_args("show", UNIT, user);
    args.extend([
        "-p".into(),
        "LoadState".into(),
        "-p".into(),
        "UnitFileState".into(),
    ]);
    match Command::new("systemctl")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => unit_state_of(&String::from_utf8_lossy(&out.stdout)),
        _ => UnitState::Missing,
    }
}

/// Which unit starts memd when none answers (`Some(true)`: the user's, `Some(false)`: the
/// system's, None: no unit, memctl spawns memd). For the user daemon's socket, the user
/// unit; for the system service's, the system unit; for another socket, none. Without
/// `--socket` (`socket_is`: None), a user unit the user enabled, else the system unit,
/// else a user unit merely installed (the package installs both; a server's operator
/// runs the system one).
pub fn choose_unit(
    socket_is: Option<Option<bool>>,
    user: impl Fn() -> UnitState,
    system: impl Fn() -> UnitState,
) -> Option<bool> {
    match socket_is {
        Some(Some(true)) => (user() != UnitState::Missing).then_some(true),
        Some(Some(false)) => (system() != UnitState::Missing).then_some(false),
        Some(None) => None,
        None => {
            let user = user();
            if user == UnitState::Enabled {
                Some(true)
            } else if system() != UnitState::Missing {
                Some(false)
            } else {
                (user == UnitState::Installed).then_some(true)
            }
        }
    }
}

/// The unit that would start a memd for `socket` when none answers ([`choose_unit`]),
/// and the socket that memd listens on.
fn unit_for(socket: &Path, given: bool) -> Option<(Manager, PathBuf)> {
    let user_socket = paths::user_socket_path();
    let system_socket = paths::system_socket_path();
    let socket_is = given.then(|| {
        if socket == user_socket {
            Some(true)
        } else if socket == system_socket {
            Some(false)
        } else {
            None
        }
    });
    let user = choose_unit(socket_is, || unit_state(true), || unit_state(false))?;
    let manager = Manager::Systemd {
        unit: UNIT.to_string(),
        user,
    };
    Some((manager, if user { user_socket } else { system_socket }))
}

/// Runs `systemctl`, its output passed through (it asks for a password when polkit
/// wants one); a failure names the command.
fn systemctl(action: &str, unit: &str, user: bool) -> anyhow::Result<()> {
    let args = systemctl_args(action, unit, user);
    let status = Command::new("systemctl")
        .args(&args)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run systemctl: {e}"))?;
    anyhow::ensure!(
        status.success(),
        "`systemctl {}` failed ({status}){}",
        args.join(" "),
        if user {
            ""
        } else {
            "; the system unit needs root: sudo"
        }
    );
    Ok(())
}

fn describe_manager(manager: &Manager) -> String {
    match manager {
        Manager::Systemd { unit, user: false } => {
            format!("systemd, the system unit {unit} (systemctl ... {unit}, journalctl -u {unit})")
        }
        Manager::Systemd { unit, user: true } => format!(
            "systemd, the user unit {unit} (systemctl --user ... {unit}, journalctl --user -u {unit})"
        ),
        Manager::Process => "no service manager: memctl daemon stop|start|restart|logs".into(),
    }
}

async fn status(socket: &Path, given: bool, json: bool) -> anyhow::Result<()> {
    let Some((_client, report)) = answering(socket).await? else {
        let unit = unit_for(socket, given);
        let state = State {
            running: false,
            socket: socket.display().to_string(),
            pid: None,
            version: None,
            uptime_secs: None,
            data_dir: None,
            log_dir: None,
            manager: unit.as_ref().map(|(manager, _)| manager.clone()),
        };
        if json {
            print_json(&state)?;
        } else {
            println!(
                "memd      not running (nothing answers at {})",
                socket.display()
            );
            if let Some((manager, _)) = &unit {
                println!("installed {}", describe_manager(manager));
            }
            println!("start it  memctl daemon start");
        }
        return Err(NotRunning(socket.display().to_string()).into());
    };
    let manager = manager_of_pid(report.pid);
    if json {
        return print_json(&State {
            running: true,
            socket: report.socket,
            pid: Some(report.pid),
            version: Some(report.version),
            uptime_secs: Some(report.uptime_secs),
            data_dir: Some(report.data_dir),
            log_dir: Some(report.log_dir),
            manager: Some(manager),
        });
    }
    println!(
        "memd      running, pid {}, up {}, version {}",
        report.pid,
        duration(report.uptime_secs),
        report.version
    );
    println!("managed   {}", describe_manager(&manager));
    println!("socket    {}", report.socket);
    println!("data      {}", report.data_dir);
    println!("logs      {}", report.log_dir);
    Ok(())
}

/// What memd's stop does to what it runs, counted before it stops (what `lib::shut_down`
/// does: Freqtrade bots are not signalled, native runners save their state and return).
struct Fates {
    bots: usize,
    native: usize,
}

impl Fates {
    async fn of(client: &Client) -> anyhow::Result<Fates> {
        let deployed = client
            .call::<method::Deployed>(DeployedParams { all: false })
            .await?
            .deployments;
        let active = |kind: DeploymentType| {
            deployed
                .iter()
                .filter(|d| d.deployment_type == kind && d.status.is_active())
                .count()
        };
        Ok(Fates {
            bots: active(DeploymentType::Freqtrade),
            native: active(DeploymentType::Native),
        })
    }

    fn print(&self) {
        if self.bots > 0 {
            println!(
                "its {} Freqtrade bot(s) keep running and are adopted again when memd starts; `memctl stop-all` before stopping memd stops them too",
                self.bots
            );
        }
        if self.native > 0 {
            println!(
                "its {} native runner(s) are paused, their state (open paper positions too) saved: they resume when memd starts",
                self.native
            );
        }
    }
}

/// Waits until process `pid` has ended.
async fn wait_gone(pid: u32, log_dir: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + STOP_WAIT;
    while runs(pid) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "memd (pid {pid}) was asked to stop but still runs after {} s; its log is in {log_dir}",
            STOP_WAIT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Stops the memd of `client`, by its manager; returns once its process has ended.
async fn stop_daemon(client: &Client, report: &StatusReport) -> anyhow::Result<()> {
    match manager_of_pid(report.pid) {
        Manager::Systemd { unit, user } => systemctl("stop", &unit, user)?,
        Manager::Process => {
            // memd starts stopping as it answers: it may close the connection before the
            // answer has left. Its process ending is what says it stopped.
            match client.call::<method::DaemonStop>(NoParams {}).await {
                Ok(_) | Err(ClientError::Disconnected) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    wait_gone(report.pid, &report.log_dir).await
}

/// `memctl daemon stop`: this socket's memd (and no other), waited for.
async fn stop(socket: &Path, json: bool) -> anyhow::Result<()> {
    let Some((client, report)) = answering(socket).await? else {
        return Err(NotRunning(socket.display().to_string()).into());
    };
    let fates = Fates::of(&client).await?;
    stop_daemon(&client, &report).await?;
    if json {
        return print_json(&serde_json::json!({
            "stopped": true,
            "pid": report.pid,
            "freqtradeBotsRunning": fates.bots,
            "nativeRunnersPaused": fates.native,
        }));
    }
    println!("memd stopped (pid {})", report.pid);
    fates.print();
    Ok(())
}

/// Waits until a memd answers at `socket` (one whose pid is not `old`).
async fn wait_answering(socket: &Path, old: Option<u32>) -> anyhow::Result<StatusReport> {
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        if let Ok(Some((_, report))) = answering(socket).await {
            if Some(report.pid) != old {
                return Ok(report);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "memd did not answer at {} within {} s",
            socket.display(),
            STOP_WAIT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `memctl daemon start`: nothing if memd answers; its unit if one is installed; else a
/// user daemon spawned in the background.
async fn start(socket: &Path, given: bool, extra: Vec<OsString>, json: bool) -> anyhow::Result<()> {
    let report = if let Some((_, report)) = answering(socket).await? {
        if !json {
            println!("memd is already running (pid {})", report.pid);
        }
        report
    } else if let Some((Manager::Systemd { unit, user }, unit_socket)) = unit_for(socket, given) {
        anyhow::ensure!(
            extra.is_empty(),
            "--data-dir and --config are for a user daemon; the unit {unit} reads its own (systemctl edit {unit})"
        );
        systemctl("start", &unit, user)?;
        let report = wait_answering(&unit_socket, None).await?;
        if !json {
            println!("memd started by systemd (unit {unit}, pid {})", report.pid);
        }
        report
    } else {
        let client = spawn::start(socket, false, Launch::memd(socket, extra))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let report = client.call::<method::DaemonStatus>(NoParams {}).await?;
        if !json {
            println!("memd started (pid {})", report.pid);
        }
        report
    };
    if json {
        return status(Path::new(&report.socket), true, true).await;
    }
    Ok(())
}

/// The command line process `pid` runs, to start it again as it was: its program and
/// arguments (`/proc/PID/cmdline`), working directory, and the environment variables
/// memd's settings come from ([`settings_env`]). A command line without `--socket` gets
/// this one, so the new memd listens where the old one did.
fn launch_of(pid: u32, socket: &Path) -> anyhow::Result<Launch> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map_err(|e| anyhow::anyhow!("cannot read memd's command line (pid {pid}): {e}"))?;
    let mut words = cmdline
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| OsString::from(String::from_utf8_lossy(w).into_owned()));
    let program = PathBuf::from(
        words
            .next()
            .ok_or_else(|| anyhow::anyhow!("memd (pid {pid}) has an empty command line"))?,
    );
    let mut args: Vec<OsString> = words.collect();
    if !args
        .iter()
        .any(|a| a.to_string_lossy().starts_with("--socket"))
    {
        args.extend(["--socket".into(), socket.as_os_str().to_owned()]);
    }
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    Ok(Launch {
        program,
        args,
        cwd: std::fs::read_link(format!("/proc/{pid}/cwd")).ok(),
        env: settings_env(&environ),
    })
}

/// From a process's environment (`/proc/PID/environ`: `NAME=value`, NUL-separated), the
/// variables memd reads its settings from: `MEMD_*`, `STRATEGY_REGISTRY_PATH` and the
/// XDG directories of user mode (docs/operator-guide.md, "Environment variables").
fn settings_env(environ: &[u8]) -> Vec<(OsString, OsString)> {
    environ
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (name, value) = entry.split_once('=')?;
            let wanted = name.starts_with("MEMD_")
                || matches!(
                    name,
                    "STRATEGY_REGISTRY_PATH"
                        | "XDG_DATA_HOME"
                        | "XDG_CONFIG_HOME"
                        | "XDG_RUNTIME_DIR"
                );
            wanted.then(|| (name.into(), value.into()))
        })
        .collect()
}

/// `memctl daemon restart`: `systemctl restart` for a unit's memd; else stop, wait until
/// the socket no longer answers, and start the same command line again.
async fn restart(socket: &Path, json: bool) -> anyhow::Result<()> {
    let Some((client, report)) = answering(socket).await? else {
        return Err(NotRunning(socket.display().to_string()).into());
    };
    let fates = Fates::of(&client).await?;
    let new = match manager_of_pid(report.pid) {
        Manager::Systemd { unit, user } => {
            drop(client);
            systemctl("restart", &unit, user)?;
            wait_answering(socket, Some(report.pid)).await?
        }
        Manager::Process => {
            let launch = launch_of(report.pid, socket)?;
            stop_daemon(&client, &report).await?;
            drop(client);
            let client = spawn::start(socket, false, launch)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            client.call::<method::DaemonStatus>(NoParams {}).await?
        }
    };
    if json {
        return print_json(&serde_json::json!({
            "restarted": true,
            "oldPid": report.pid,
            "pid": new.pid,
        }));
    }
    println!("memd restarted (pid {} -> {})", report.pid, new.pid);
    fates.print();
    Ok(())
}

/// `memctl daemon logs`: the journal for a unit's memd; else the log files of the log
/// directory memd names (or `--dir`).
async fn logs(
    socket: &Path,
    given: bool,
    lines: usize,
    follow: bool,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let dir = match dir {
        Some(dir) => dir,
        None => match answering(socket).await? {
            Some((_, report)) => match manager_of_pid(report.pid) {
                Manager::Systemd { unit, user } => return journal(&unit, user, lines, follow),
                Manager::Process => PathBuf::from(report.log_dir),
            },
            None => match unit_for(socket, given) {
                Some((Manager::Systemd { unit, user }, _)) => {
                    return journal(&unit, user, lines, follow);
                }
                _ => anyhow::bail!(
                    "{}, so its log directory is unknown: give it with --dir (a user daemon's is <data>/logs, by default ~/.local/share/memd/logs)",
                    NotRunning(socket.display().to_string())
                ),
            },
        },
    };
    log_files(&dir, lines, follow).await
}

fn journal(unit: &str, user: bool, lines: usize, follow: bool) -> anyhow::Result<()> {
    let args = journalctl_args(unit, user, lines, follow);
    let status = Command::new("journalctl")
        .args(&args)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run journalctl: {e}"))?;
    anyhow::ensure!(
        status.success(),
        "`journalctl {}` failed ({status})",
        args.join(" ")
    );
    Ok(())
}

/// memd's daily log files in `dir` (`memd.YYYY-MM-DD.log`, tracing-appender's names),
/// oldest first.
fn log_files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read the log directory {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("memd.") && n.ends_with(".log"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The last `n` lines of `files` (oldest first), reading back from the newest file.
fn tail(files: &[PathBuf], n: usize) -> anyhow::Result<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    for file in files.iter().rev() {
        if lines.len() >= n {
            break;
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        let mut older: Vec<String> = text.lines().map(str::to_string).collect();
        let keep = older.len().saturating_sub(n - lines.len());
        older.drain(..keep);
        older.append(&mut lines);
        lines = older;
    }
    Ok(lines)
}

/// Prints the last `n` lines of the log files in `dir`; with `follow`, then every line
/// written after, moving to the next day's file when memd opens one.
async fn log_files(dir: &Path, n: usize, follow: bool) -> anyhow::Result<()> {
    let files = log_files_in(dir)?;
    let mut out = std::io::stdout().lock();
    for line in tail(&files, n)? {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    drop(out);
    if !follow {
        return Ok(());
    }
    let mut current = files.last().cloned();
    let mut offset = match &current {
        Some(file) => std::fs::metadata(file).map_or(0, |m| m.len()),
        None => 0,
    };
    let mut partial = Vec::new();
    loop {
        if let Some(file) = &current {
            offset = print_new(file, offset, &mut partial)?;
        }
        let newest = log_files_in(dir)?.pop();
        if newest.is_some() && newest != current {
            // The day's file changed: what the old one got last was printed above.
            current = newest;
            offset = 0;
            partial.clear();
            continue;
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// Prints the whole lines `file` has past `offset` (a line still being written waits in
/// `partial`); returns the new offset.
fn print_new(file: &Path, offset: u64, partial: &mut Vec<u8>) -> anyhow::Result<u64> {
    let Ok(mut f) = std::fs::File::open(file) else {
        return Ok(offset);
    };
    let len = f.metadata()?.len();
    if len <= offset {
        return Ok(len.min(offset));
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    partial.extend_from_slice(&bytes);
    if let Some(end) = partial.iter().rposition(|b| *b == b'\n') {
        let mut out = std::io::stdout().lock();
        out.write_all(&partial[..=end])?;
        out.flush()?;
        partial.drain(..=end);
    }
    Ok(offset + bytes.len() as u64)
}

/// Whether process `pid` still runs (a zombie has ended).
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 2..].chars().next())
            .is_some_and(|state| state != 'Z')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_unit_is_read_from_cgroup_v2() {
        assert_eq!(
            manager_of("0::/system.slice/memd.service\n"),
            Manager::Systemd {
                unit: "memd.service".into(),
                user: false
            }
        );
    }

    #[test]
    fn a_user_unit_is_read_from_its_managers_cgroup() {
        assert_eq!(
            manager_of("0::/user.slice/user-1000.slice/user@1000.service/app.slice/memd.service\n"),
            Manager::Systemd {
                unit: "memd.service".into(),
                user: true
            }
        );
    }

    #[test]
    fn cgroup_v1_names_the_unit_in_systemds_hierarchy() {
        let cgroup = "12:pids:/system.slice/memd-staging.service\n1:name=systemd:/system.slice/memd-staging.service\n";
        assert_eq!(
            manager_of(cgroup),
            Manager::Systemd {
                unit: "memd-staging.service".into(),
                user: false
            }
        );
    }

    #[test]
    fn a_memd_in_a_terminal_or_another_service_is_its_own() {
        for cgroup in [
            "0::/\n",
            "0::/user.slice/user-1000.slice/session-3.scope\n",
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/tmux-spawn-1.scope\n",
            // Spawned by a CI runner's service: the unit is the runner's, not memd's.
            "0::/system.slice/gitlab-runner.service\n",
            "0::/system.slice/memdx.service\n",
        ] {
            assert_eq!(manager_of(cgroup), Manager::Process, "{cgroup}");
        }
    }

    #[test]
    fn systemctl_and_journalctl_command_lines() {
        assert_eq!(
            systemctl_args("stop", "memd.service", false),
            ["stop", "memd.service"]
        );
        assert_eq!(
            systemctl_args("restart", "memd.service", true),
            ["--user", "restart", "memd.service"]
        );
        assert_eq!(
            journalctl_args("memd.service", false, 50, false),
            ["-u", "memd.service", "-n", "50", "--no-pager"]
        );
        assert_eq!(
            journalctl_args("memd.service", true, 10, true),
            [
                "--user",
                "-u",
                "memd.service",
                "-n",
                "10",
                "--no-pager",
                "-f"
            ]
        );
    }

    #[test]
    fn a_restart_keeps_the_environment_memd_reads_its_settings_from() {
        let environ = b"PATH=/usr/bin\0MEMD_DATA_DIR=/srv/memd\0HOME=/root\0XDG_CONFIG_HOME=/etc/x\0STRATEGY_REGISTRY_PATH=/r\0";
        let kept: Vec<(String, String)> = settings_env(environ)
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            kept,
            pairs(&[
                ("MEMD_DATA_DIR", "/srv/memd"),
                ("XDG_CONFIG_HOME", "/etc/x"),
                ("STRATEGY_REGISTRY_PATH", "/r"),
            ])
        );
    }

    #[test]
    fn a_restart_runs_the_same_command_line_with_the_socket() {
        let socket = Path::new("/tmp/x/memd.sock");
        let launch = launch_of(std::process::id(), socket).unwrap();
        assert_eq!(
            launch.program,
            PathBuf::from(std::env::args_os().next().unwrap())
        );
        assert_eq!(launch.cwd, Some(std::env::current_dir().unwrap()));
        let args: Vec<String> = launch
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[args.len() - 2..], ["--socket", "/tmp/x/memd.sock"]);
    }

    #[test]
    fn systemctl_show_says_whether_the_unit_is_installed_and_enabled() {
        assert_eq!(
            unit_state_of("LoadState=loaded\nUnitFileState=enabled\n"),
            UnitState::Enabled
        );
        assert_eq!(
            unit_state_of("LoadState=loaded\nUnitFileState=disabled\n"),
            UnitState::Installed
        );
        assert_eq!(
            unit_state_of("LoadState=not-found\nUnitFileState=\n"),
            UnitState::Missing
        );
        assert_eq!(unit_state_of(""), UnitState::Missing);
    }

    #[test]
    fn the_unit_that_starts_memd_follows_the_socket_then_what_is_enabled() {
        use UnitState::*;
        let of = |socket_is, user: UnitState, system: UnitState| {
            choose_unit(socket_is, || user, || system)
        };
        // The socket given decides.
        assert_eq!(of(Some(Some(true)), Installed, Enabled), Some(true));
        assert_eq!(of(Some(Some(false)), Enabled, Installed), Some(false));
        assert_eq!(of(Some(Some(false)), Enabled, Missing), None);
        assert_eq!(of(Some(None), Enabled, Enabled), None);
        // No socket given: the user's enabled unit, else the system's, else the user's.
        assert_eq!(of(None, Enabled, Enabled), Some(true));
        assert_eq!(of(None, Installed, Installed), Some(false));
        assert_eq!(of(None, Missing, Enabled), Some(false));
        assert_eq!(of(None, Installed, Missing), Some(true));
        assert_eq!(of(None, Missing, Missing), None);
    }

    #[test]
    fn tail_reads_back_across_the_days_files() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("memd.2026-01-01.log");
        let new = dir.path().join("memd.2026-01-02.log");
        std::fs::write(&old, "a\nb\nc\n").unwrap();
        std::fs::write(&new, "d\ne\n").unwrap();
        std::fs::write(dir.path().join("other.log"), "x\n").unwrap();
        let files = log_files_in(dir.path()).unwrap();
        assert_eq!(files, [old, new]);
        assert_eq!(tail(&files, 3).unwrap(), ["c", "d", "e"]);
        assert_eq!(tail(&files, 1).unwrap(), ["e"]);
        assert_eq!(tail(&files, 10).unwrap(), ["a", "b", "c", "d", "e"]);
    }
}
