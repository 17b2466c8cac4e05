//! Reaching the daemon: connect, and with `--spawn` start a user daemon first when none
//! answers, so one command brings the whole system up.

use mem_protocol::{Client, ClientError, ClientOptions, Endpoint};
use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a spawned daemon has to start answering.
const SPAWN_DEADLINE: Duration = Duration::from_secs(15);

/// Why memctl could not reach a daemon.
#[derive(Debug)]
pub enum ConnectError {
    /// Nothing answers on the socket.
    NoDaemon { socket: PathBuf, cause: io::Error },
    /// Something answered but the handshake failed (wrong version, refused peer, ...).
    Handshake { socket: PathBuf, error: ClientError },
    /// `--spawn` could not start a daemon.
    Spawn { socket: PathBuf, detail: String },
    /// A server of the fleet could not be reached (SSH refused, memd not running there,
    /// another protocol version, ...).
    Server { name: String, error: ClientError },
}

impl ConnectError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ConnectError::Handshake { .. } => crate::exit::DAEMON_ERROR,
            ConnectError::Server {
                error: ClientError::Rpc(_) | ClientError::ProtocolVersion { .. },
                ..
            } => crate::exit::DAEMON_ERROR,
            _ => crate::exit::UNREACHABLE,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::NoDaemon { socket, cause } => write!(
                f,
                "no memd is answering at {} ({cause}); start one with `memctl --spawn` (a user daemon in the background), `memd` (in the foreground) or `sudo systemctl start memd` (the system service)",
                socket.display()
            ),
            ConnectError::Handshake { socket, error } => write!(
                f,
                "memd at {} refused the connection: {error}",
                socket.display()
            ),
            ConnectError::Spawn { socket, detail } => {
                write!(f, "could not start memd for {}: {detail}", socket.display())
            }
            ConnectError::Server { name, error } => {
                write!(
                    f,
                    "server {name}: {}",
                    memctl::fleet::connection_state(error)
                )
            }
        }
    }
}

fn options(read_only: bool) -> ClientOptions {
    ClientOptions {
        client_name: format!("memctl {}", env!("CARGO_PKG_VERSION")),
        read_only,
        ..ClientOptions::default()
    }
}

/// Connects to `socket`; with `spawn`, starts a daemon first if none answers.
pub async fn connect(socket: &Path, read_only: bool, spawn: bool) -> Result<Client, ConnectError> {
    match Client::connect(socket, options(read_only)).await {
        Ok(client) => Ok(client),
        Err(ClientError::Connect { source, .. }) if spawn && is_absent(&source) => {
            spawn_and_connect(socket, read_only).await
        }
        Err(ClientError::Connect { source, .. }) => Err(ConnectError::NoDaemon {
            socket: socket.to_path_buf(),
            cause: source,
        }),
        Err(error) => Err(ConnectError::Handshake {
            socket: socket.to_path_buf(),
            error,
        }),
    }
}

/// Connects to a server of the fleet.
pub async fn connect_server(
    name: &str,
    endpoint: &Endpoint,
    read_only: bool,
) -> Result<Client, ConnectError> {
    Client::connect_to(endpoint, options(read_only))
        .await
        .map_err(|error| ConnectError::Server {
            name: name.to_string(),
            error,
        })
}

fn is_absent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// The memd binary: next to this memctl (a build tree, an install prefix), else on PATH.
fn memd_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("memd")))
        .filter(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("memd"))
}

/// How to start memd: `memd --socket SOCKET` by default (`--spawn`, `memctl daemon
/// start`); `memctl daemon restart` starts again the command line the stopped daemon ran.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<std::ffi::OsString>,
    /// The working directory (a restarted daemon's, for its relative paths).
    pub cwd: Option<PathBuf>,
    /// Environment variables set over memctl's own (a restarted daemon's settings).
    pub env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
}

impl Launch {
    /// `memd --socket SOCKET` and `extra` arguments.
    pub fn memd(socket: &Path, extra: Vec<std::ffi::OsString>) -> Launch {
        let mut args = vec!["--socket".into(), socket.as_os_str().to_owned()];
        args.extend(extra);
        Launch {
            program: memd_binary(),
            args,
            cwd: None,
            env: Vec::new(),
        }
    }
}

async fn spawn_and_connect(socket: &Path, read_only: bool) -> Result<Client, ConnectError> {
    start(socket, read_only, Launch::memd(socket, Vec::new())).await
}

/// Starts memd as `launch` says, in the background in its own process group, its stderr
/// in `memd.spawn.log` beside the socket, and waits until it answers on `socket`.
pub async fn start(socket: &Path, read_only: bool, launch: Launch) -> Result<Client, ConnectError> {
    let fail = |detail: String| ConnectError::Spawn {
        socket: socket.to_path_buf(),
        detail,
    };
    let binary = launch.program;
    let socket_dir = socket.parent().unwrap_or(Path::new("/tmp"));
    std::fs::create_dir_all(socket_dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", socket_dir.display())))?;
    let stderr_path = socket_dir.join("memd.spawn.log");
    let stderr = std::fs::File::create(&stderr_path)
        .map_err(|e| fail(format!("cannot create {}: {e}", stderr_path.display())))?;
    let words: Vec<String> = launch
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    eprintln!(
        "memctl: starting a user daemon: {} {}",
        binary.display(),
        words.join(" ")
    );
    let mut command = Command::new(&binary);
    if let Some(cwd) = &launch.cwd {
        command.current_dir(cwd);
    }
    command.envs(launch.env.iter().map(|(k, v)| (k, v)));
    let mut child = command
        .args(&launch.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0) // its own group: a Ctrl-C in this terminal does not reach it
        .spawn()
        .map_err(|e| fail(format!("cannot run {}: {e}", binary.display())))?;
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(fail(format!(
                "memd exited ({status}): {}",
                tail.join(" | ")
            )));
        }
        match Client::connect(socket, options(read_only)).await {
            Ok(client) => {
                eprintln!(
                    "memctl: memd is up (pid {}); its log: {}",
                    client.hello().pid,
                    stderr_path.display()
                );
                return Ok(client);
            }
            Err(ClientError::Connect { .. }) if started.elapsed() < SPAWN_DEADLINE => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(ClientError::Connect { source, .. }) => {
                return Err(fail(format!(
                    "memd did not answer within {} s: {source}",
                    SPAWN_DEADLINE.as_secs()
                )));
            }
            Err(error) => {
                return Err(ConnectError::Handshake {
                    socket: socket.to_path_buf(),
                    error,
                });
            }
        }
    }
}
