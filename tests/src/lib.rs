//! The kit of the end-to-end tests (tests/e2e, one binary), the load tools (src/bin) and
//! the daemon's benches: here, the harness that starts the real `memd` on a temporary data
//! directory and socket, talks to it with mem-protocol's client or the real `memctl`, and
//! stops it; in the modules, the seed strategies' ids (`seed`), closed trades built or
//! random (`trades`, on `random`), the real Freqtrade (`freqtrade`) and the mock exchange
//! it trades on (`mock_exchange`), deploying and finding bots (`deployments`), a model or
//! two (`model`), a terminal (`tmux`), and the load tools' figures (`measure`).
//!
//! The binaries are the ones `cargo test --workspace` builds next to the test executables
//! (`target/<profile>/memd`, `target/<profile>/memctl`).

pub mod alert_sink;
pub mod deployments;
pub mod freqtrade;
pub mod market;
pub mod measure;
pub mod mock_exchange;
pub mod model;
pub mod postgres;
pub mod random;
pub mod seed;
pub mod sshd;
pub mod tmux;
pub mod trades;

use mem_protocol::{Client, ClientOptions};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The path of a binary of this workspace: next to this executable, or, for a test
/// executable (`target/<profile>/deps/<test>-<hash>`), one directory up.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let mut dir = exe.parent().expect("executable directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target/<profile>");
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

/// A command with an environment that cannot leak the host's memd settings.
pub fn isolated_command(program: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    for var in [
        "MEMD_SOCKET",
        "MEMD_DATA_DIR",
        "MEMD_CONFIG",
        "MEMD_LOG",
        "MEMD_LOG_DIR",
        "STRATEGY_REGISTRY_PATH",
        "NOTIFY_SOCKET",
        "STATE_DIRECTORY",
        "RUNTIME_DIRECTORY",
        "LOGS_DIRECTORY",
        "JOURNAL_STREAM",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_DATA_HOME", home.join("xdg-data"))
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("XDG_RUNTIME_DIR", home.join("xdg-runtime"))
        .env("HOME", home);
    cmd
}

/// A running `memd` on its own temporary directory. Killed when dropped.
pub struct Daemon {
    pub child: Child,
    /// Holds everything: data dir, socket dir, logs.
    pub root: TempDir,
    pub socket: PathBuf,
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
}

impl Daemon {
    /// Starts memd on `<root>/data` and `<root>/run/memd.sock` and waits until it answers.
    pub fn start() -> Daemon {
        Self::start_with(|_| {})
    }

    /// Like [`Daemon::start`], letting the test add arguments or environment.
    pub fn start_with(configure: impl FnOnce(&mut Command)) -> Daemon {
        let root = tempfile::tempdir().expect("temp dir");
        let socket = root.path().join("run/memd.sock");
        let data_dir = root.path().join("data");
        Self::start_in(root, socket, data_dir, configure)
    }

    /// Starts memd on `<root>/data` and `<root>/run/memd.sock` with `--config config`.
    pub fn with_config(root: TempDir, config: &Path) -> Daemon {
        let (socket, data) = (root.path().join("run/memd.sock"), root.path().join("data"));
        Self::start_in(root, socket, data, |cmd| {
            cmd.arg("--config").arg(config);
        })
    }

    /// A daemon whose `freqtrade` is the fake bot (`fake_freqtrade`), told to behave as
    /// `fake_bot` says; `extra` is appended to its `[freqtrade]` config.
    pub fn with_fake_freqtrade(fake_bot: serde_json::Value, extra: &str) -> Daemon {
        let root = tempfile::tempdir().unwrap();
        let config = fake_freqtrade_config(
            root.path(),
            serde_json::json!({ "fake_bot": fake_bot }),
            "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nunresponsive_limit_secs = 3\nidle_limit_secs = 2\nmax_restarts = 2\nport_range = [19400, 19499]",
            extra,
        );
        Daemon::with_config(root, &config)
    }

    /// Starts memd with a given root, socket and data dir.
    pub fn start_in(
        root: TempDir,
        socket: PathBuf,
        data_dir: PathBuf,
        configure: impl FnOnce(&mut Command),
    ) -> Daemon {
        let child = Self::spawn_raw(root.path(), &socket, &data_dir, configure);
        Self::adopt(child, root, socket, data_dir)
    }

    /// Spawns memd with `--socket` and `--data-dir`, without waiting.
    pub fn spawn_raw(
        root: &Path,
        socket: &Path,
        data_dir: &Path,
        configure: impl FnOnce(&mut Command),
    ) -> Child {
        Self::spawn_bare(root, |cmd| {
            cmd.arg("--socket")
                .arg(socket)
                .arg("--data-dir")
                .arg(data_dir);
            configure(cmd);
        })
    }

    /// Spawns memd with only what `configure` adds; stderr goes to `<root>/memd.stderr`.
    pub fn spawn_bare(root: &Path, configure: impl FnOnce(&mut Command)) -> Child {
        let stderr = std::fs::File::create(root.join("memd.stderr")).expect("stderr file");
        let mut cmd = isolated_command(&bin("memd"), root);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        configure(&mut cmd);
        cmd.spawn().expect("spawn memd")
    }

    /// Takes charge of a spawned memd and waits until it answers on `socket`.
    pub fn adopt(child: Child, root: TempDir, socket: PathBuf, data_dir: PathBuf) -> Daemon {
        let stderr_path = root.path().join("memd.stderr");
        let mut daemon = Daemon {
            child,
            root,
            socket,
            data_dir,
            stderr_path,
        };
        daemon.wait_ready();
        daemon
    }

    /// Waits until the socket accepts connections (or the daemon dies).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "memd exited before it was ready ({status}):\n{}\nprocesses holding {}: {:?}",
                    self.stderr(),
                    self.data_dir.join("memd.lock").display(),
                    holders_of(&self.data_dir.join("memd.lock"))
                );
            }
            if answers_hello(&self.socket) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "memd did not open {} in time:\n{}",
                self.socket.display(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What memd wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A connected client.
    pub async fn client(&self) -> Client {
        Client::connect(
            &self.socket,
            ClientOptions {
                client_name: "e2e".into(),
                ..ClientOptions::default()
            },
        )
        .await
        .expect("connect to memd")
    }

    /// A connected client with view access only (as `memctl --read-only`).
    pub async fn view_client(&self) -> Client {
        Client::connect(
            &self.socket,
            ClientOptions {
                read_only: true,
                ..ClientOptions::default()
            },
        )
        .await
        .expect("connect to memd")
    }

    /// Runs the real memctl against this daemon.
    pub fn memctl(&self, args: &[&str]) -> Output {
        isolated_command(&bin("memctl"), self.root.path())
            .env("MEMD_SOCKET", &self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run memctl")
    }

    /// Starts the real memctl against this daemon without waiting (output piped).
    pub fn memctl_child(&self, args: &[&str]) -> Child {
        isolated_command(&bin("memctl"), self.root.path())
            .env("MEMD_SOCKET", &self.socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run memctl")
    }

    /// Kills memd like a crash (SIGKILL, mid-whatever) and starts it again on the same
    /// data and socket, with no extra arguments (for daemons from [`Daemon::start`]).
    pub fn crash_and_restart(&mut self) {
        self.restart_after(Signal::SIGKILL);
    }

    /// Stops memd with `signal` and starts it again on the same data and socket, with no
    /// extra arguments (for daemons from [`Daemon::start`]).
    pub fn restart_after(&mut self, signal: Signal) {
        self.stop_with(signal);
        self.child = Self::spawn_raw(self.root.path(), &self.socket, &self.data_dir, |_| {});
        self.wait_ready();
    }

    /// [`Daemon::restart_after`] for a daemon started with `--config config`.
    pub fn restart_with_config(&mut self, signal: Signal, config: &Path) {
        self.stop_with(signal);
        self.child = Self::spawn_raw(self.root.path(), &self.socket, &self.data_dir, |cmd| {
            cmd.arg("--config").arg(config);
        });
        self.wait_ready();
    }

    /// Sends `signal` and waits for the exit (at most 10 s).
    pub fn stop_with(&mut self, signal: Signal) -> ExitStatus {
        kill(Pid::from_raw(self.pid()), signal).expect("signal memd");
        self.wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("memd did not exit after {signal}:\n{}", self.stderr()))
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Bots outlive their daemon by design; a test's bots must not outlive the test.
        kill_processes_mentioning(&self.data_dir.join("deployments"));
    }
}

/// How many processes have a command line that mentions `needle` (a deployment's id,
/// a data directory): a bot twice, or a bot left behind, shows here.
pub fn processes_mentioning(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd).contains(needle))
        .count()
}

/// The processes that have `path` open, each as its pid and command line (for the message
/// of a test that finds a file, such as a data directory's lock, held).
pub fn holders_of(path: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut holders = Vec::new();
    for entry in entries.flatten() {
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path));
        if holds {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            holders.push(format!(
                "{} {}",
                entry.file_name().to_string_lossy(),
                String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .trim_end()
            ));
        }
    }
    holders
}

/// SIGKILLs the process group of every process whose command line mentions `path`.
pub fn kill_processes_mentioning(path: &Path) {
    let needle = path.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            let _ = nix::sys::signal::killpg(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Whether a daemon answers `hello` on `socket` (the socket is bound before the data is
/// loaded, so a connection alone does not mean ready).
fn answers_hello(socket: &Path) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let hello = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\",\"params\":{{\"protocolVersion\":{}}}}}\n",
        mem_protocol::PROTOCOL_VERSION
    );
    if stream.write_all(hello.as_bytes()).is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.contains("\"result\"")
}

/// A man page (`.1` or `.1.gz`) rendered by the real `man -l` (Debian's man-db), 100
/// columns: its text; a failure or a warning of `man` fails the test.
pub fn render_man_page(page: &Path) -> String {
    let out = Command::new("man")
        .args(["-P", "cat", "-l"])
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MAN_DISABLE_SECCOMP", "1")
        .output()
        .expect("man (Debian's man-db; tools/test-all installs it)");
    assert!(
        out.status.success(),
        "man -l {}: {}",
        page.display(),
        describe(&out)
    );
    assert!(
        out.stderr.is_empty(),
        "man warned about {}: {}",
        page.display(),
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Text of a process's stdout and stderr, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether a process is alive (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    !stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .trim_start()
        .starts_with('Z')
}

/// Polls `check` until it holds, failing the test after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// For the load tools: the memd binary given (`--memd`/`MEMD_BIN`), else `memd` beside the
/// running executable (`target/release/trade-load` -> `target/release/memd`), else one
/// directory up (test executables in `target/<profile>/deps`).
pub fn find_memd(given: Option<PathBuf>) -> PathBuf {
    if let Some(path) = given {
        assert!(path.is_file(), "{} is not a file", path.display());
        return path;
    }
    let exe = std::env::current_exe().expect("own path");
    let dir = exe.parent().expect("exe dir");
    for candidate in [dir.join("memd"), dir.join("../memd")] {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "no memd next to {}: build it with `cargo build --release -p memd --bin memd`, or pass --memd PATH",
        exe.display()
    );
}

/// A loopback port free right now (tests run in parallel: each asks for its own).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// For the load tools: starts `memd` on `data_dir`, with its socket and stderr in a fresh
/// directory under `work`; answers it once ready, and how long that took.
pub fn start_memd(memd: &Path, work: &Path, data_dir: &Path) -> (Daemon, Duration) {
    start_memd_with(memd, work, data_dir, |_| {})
}

/// Like [`start_memd`], with more arguments or environment for memd (`--config`, ...),
/// added by `configure` after `--socket` and `--data-dir`.
pub fn start_memd_with(
    memd: &Path,
    work: &Path,
    data_dir: &Path,
    configure: impl FnOnce(&mut Command),
) -> (Daemon, Duration) {
    let root = tempfile::Builder::new()
        .prefix("memd-")
        .tempdir_in(work)
        .expect("daemon dir");
    let socket = root.path().join("run/memd.sock");
    let stderr = std::fs::File::create(root.path().join("memd.stderr")).expect("stderr file");
    let started = Instant::now();
    let mut cmd = isolated_command(memd, root.path());
    cmd.arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    configure(&mut cmd);
    let child = cmd.spawn().expect("spawn memd");
    let daemon = Daemon::adopt(child, root, socket, data_dir.to_path_buf());
    (daemon, started.elapsed())
}

/// Writes `dir/overrides.json` (0600: it may hold exchange keys) and `dir/memd.toml`, whose
/// `[freqtrade]` runs the fake bot with these overrides, then `settings` (more keys of
/// that table), then `extra` (the rest of the file); answers the config's path.
pub fn fake_freqtrade_config(
    dir: &Path,
    overrides: serde_json::Value,
    settings: &str,
    extra: &str,
) -> PathBuf {
    freqtrade_config(dir, &bin("fake_freqtrade"), overrides, settings, extra)
}

/// Writes `dir/overrides.json` (0600: it may hold exchange keys) and `dir/memd.toml`, whose
/// `[freqtrade]` runs `freqtrade` (a path) with these overrides, then `settings` (more
/// keys of that table), then `extra` (the rest of the file); answers the config's path.
pub fn freqtrade_config(
    dir: &Path,
    freqtrade: &Path,
    overrides: serde_json::Value,
    settings: &str,
    extra: &str,
) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let overrides_path = dir.join("overrides.json");
    std::fs::write(&overrides_path, overrides.to_string()).unwrap();
    std::fs::set_permissions(&overrides_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.join("memd.toml");
    std::fs::write(
        &config,
        format!(
            "[freqtrade]\nbin = {:?}\nconfig_overrides = {:?}\n{settings}\n{extra}",
            freqtrade.display().to_string(),
            overrides_path.display().to_string()
        ),
    )
    .unwrap();
    config
}

/// memd with the HTTP API on a free loopback port: `config(dir, http)` writes memd's
/// config into `dir` with the `http` section (`[http] listen = ...`) in it and answers its
/// path. Answers memd and the API's base URL.
pub fn start_with_http(config: impl FnOnce(&Path, &str) -> PathBuf) -> (Daemon, String) {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(
        root.path(),
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let daemon = Daemon::with_config(root, &config);
    (daemon, format!("http://127.0.0.1:{port}"))
}

/// What `memctl http token ARGS` prints on stdout (the call must succeed).
pub fn http_token(daemon: &Daemon, args: &[&str]) -> String {
    let out = daemon.memctl(&[&["http", "token"], args].concat());
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
