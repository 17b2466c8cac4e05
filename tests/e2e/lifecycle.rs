//! The daemon's life: start-up paths and config, the socket's permissions, a second
//! daemon, stale sockets, signals, logs.

use mem_e2e::{Daemon, bin, isolated_command};
use mem_protocol::methods::{NoParams, method};
use nix::sys::signal::Signal;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Stdio;
use std::time::Duration;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn socket_and_directories_have_the_designed_permissions() {
    let daemon = Daemon::start();
    assert_eq!(mode(&daemon.socket), 0o660, "socket");
    assert_eq!(
        mode(daemon.socket.parent().unwrap()),
        0o750,
        "socket directory"
    );
    assert_eq!(mode(&daemon.data_dir), 0o750, "data directory");
    assert!(
        std::fs::metadata(&daemon.socket)
            .unwrap()
            .file_type()
            .is_socket()
    );
}

#[tokio::test]
async fn a_new_data_dir_is_seeded_and_the_log_file_written() {
    let daemon = Daemon::start();
    let metadata = daemon.data_dir.join("strategy_registry/metadata");
    assert_eq!(std::fs::read_dir(&metadata).unwrap().count(), 11);
    let logs: Vec<_> = std::fs::read_dir(daemon.data_dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let name = logs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("memd.") && name.ends_with(".log"),
        "{name}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&logs[0]).unwrap();
        if text.contains("memd is ready") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log file never said ready: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        daemon.stderr().contains("memd is ready"),
        "stderr carries the log too"
    );
}

#[tokio::test]
async fn a_second_daemon_on_the_same_socket_exits_with_a_clear_message() {
    let daemon = Daemon::start();
    let other_root = tempfile::tempdir().unwrap();
    let output = isolated_command(&bin("memd"), other_root.path())
        .arg("--socket")
        .arg(&daemon.socket)
        .arg("--data-dir")
        .arg(other_root.path().join("data"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("already running") && stderr.contains(&daemon.socket.display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", daemon.pid())),
        "names the running daemon: {stderr}"
    );
    assert!(
        !other_root.path().join("data/strategy_registry").exists(),
        "the refused daemon wrote no data"
    );
    // The first one is unaffected.
    let status = daemon
        .client()
        .await
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
    assert_eq!(status.counts.strategies, 11);
}

#[tokio::test]
async fn a_second_daemon_on_the_same_data_dir_exits_with_a_clear_message() {
    let daemon = Daemon::start();
    let other_root = tempfile::tempdir().unwrap();
    let output = isolated_command(&bin("memd"), other_root.path())
        .arg("--socket")
        .arg(other_root.path().join("other.sock"))
        .arg("--data-dir")
        .arg(&daemon.data_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("already using the data directory"),
        "{stderr}"
    );
}

/// What a memd SIGKILLed while it forks a bot leaves (issue 28): its lock still held by
/// the child until it execs, the lock file naming the dead memd. A memd started then
/// waits for the lock instead of refusing (the holder here: `flock` from util-linux,
/// letting go after a second).
#[tokio::test]
async fn a_restart_waits_for_the_lock_a_killed_memds_child_still_holds() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let lock = data.join("memd.lock");
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&lock, format!("{dead_pid}\n")).unwrap();
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "1"])
        .spawn()
        .expect("flock (util-linux)");
    mem_e2e::wait_for("flock holds the lock", Duration::from_secs(5), async || {
        !mem_e2e::holders_of(&lock).is_empty()
    })
    .await;
    let socket = root.path().join("run/memd.sock");
    let daemon = Daemon::start_in(root, socket, data, |_| {});
    let status = daemon
        .client()
        .await
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
    assert!(status.counts.strategies > 0);
    assert!(holder.wait().unwrap().success());
    assert!(
        !daemon.stderr().contains("already using the data directory"),
        "{}",
        daemon.stderr()
    );
}

#[tokio::test]
async fn a_stale_socket_from_a_killed_daemon_is_replaced() {
    let mut daemon = Daemon::start();
    daemon.stop_with(Signal::SIGKILL);
    assert!(
        daemon.socket.exists(),
        "SIGKILL leaves the socket file behind"
    );
    let root = std::mem::replace(&mut daemon.root, tempfile::tempdir().unwrap());
    let (socket, data_dir) = (daemon.socket.clone(), daemon.data_dir.clone());
    let restarted = Daemon::start_in(root, socket, data_dir, |_| {});
    assert!(
        restarted.stderr().contains("stale socket"),
        "{}",
        restarted.stderr()
    );
    let status = restarted
        .client()
        .await
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
    assert_eq!(
        status.counts.strategies, 11,
        "the registry survived: nothing re-seeded or lost"
    );
}

#[tokio::test]
async fn a_socket_file_left_by_anything_is_replaced_when_nothing_listens() {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("run/memd.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap()); // leaves the file
    assert!(socket.exists());
    let data_dir = root.path().join("data");
    let daemon = Daemon::start_in(root, socket, data_dir, |_| {});
    daemon
        .client()
        .await
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
}

#[tokio::test]
async fn a_path_that_is_not_a_socket_is_never_removed() {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("important.txt");
    std::fs::write(&socket, "keep me").unwrap();
    let mut child = Daemon::spawn_raw(root.path(), &socket, &root.path().join("data"), |_| {});
    let status = child.wait().unwrap();
    assert!(!status.success());
    let stderr = std::fs::read_to_string(root.path().join("memd.stderr")).unwrap();
    assert!(stderr.contains("not a socket"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "keep me");
}

#[tokio::test]
async fn sigterm_and_sigint_shut_down_cleanly_and_remove_the_socket() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut daemon = Daemon::start();
        let _client = daemon.client().await; // an open connection must not hold up shutdown
        let status = daemon.stop_with(signal);
        assert!(status.success(), "{signal}: {status}\n{}", daemon.stderr());
        assert!(!daemon.socket.exists(), "{signal}: socket removed");
        assert!(
            daemon.stderr().contains(&format!("reason={signal}")),
            "{}",
            daemon.stderr()
        );
    }
}

#[tokio::test]
async fn environment_and_config_file_choose_the_paths() {
    let root = tempfile::tempdir().unwrap();
    let registry = root.path().join("elsewhere/registry");
    let config = root.path().join("memd.toml");
    let config_data = root.path().join("from-config");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[log]\nlevel = \"debug\"\n",
            config_data.display().to_string()
        ),
    )
    .unwrap();
    let socket = root.path().join("env.sock");
    let child = Daemon::spawn_bare(root.path(), |cmd| {
        cmd.env("MEMD_SOCKET", &socket)
            .env("STRATEGY_REGISTRY_PATH", &registry)
            .arg("--config")
            .arg(&config);
    });
    let daemon = Daemon::adopt(child, root, socket.clone(), config_data.clone());
    let status = daemon
        .client()
        .await
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
    assert_eq!(status.socket, socket.display().to_string(), "MEMD_SOCKET");
    assert_eq!(
        status.data_dir,
        config_data.display().to_string(),
        "data_dir from the config file"
    );
    assert_eq!(
        status.registry_dir,
        registry.display().to_string(),
        "STRATEGY_REGISTRY_PATH"
    );
    assert_eq!(
        status.config_file.as_deref(),
        Some(config.display().to_string().as_str())
    );
    assert_eq!(
        status.counts.strategies, 11,
        "the registry was seeded where STRATEGY_REGISTRY_PATH points"
    );
    assert!(registry.join("metadata").is_dir());

    // MEMD_DATA_DIR beats the file; --data-dir beats MEMD_DATA_DIR.
    let check = |env_dir: Option<&str>, flag_dir: Option<&str>| {
        let mut cmd = isolated_command(&bin("memd"), daemon.root.path());
        cmd.arg("--config").arg(&config).arg("--check-config");
        if let Some(dir) = env_dir {
            cmd.env("MEMD_DATA_DIR", dir);
        }
        if let Some(dir) = flag_dir {
            cmd.arg("--data-dir").arg(dir);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(check(Some("/srv/env"), None).contains("data dir      /srv/env"));
    assert!(check(Some("/srv/env"), Some("/srv/flag")).contains("data dir      /srv/flag"));
}

#[tokio::test]
async fn a_bad_config_file_is_refused_naming_the_key() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("memd.toml");
    std::fs::write(&config, "data_dri = \"/x\"\n").unwrap();
    let out = isolated_command(&bin("memd"), root.path())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("data_dri") && stderr.contains(&config.display().to_string()),
        "{stderr}"
    );

    let out = isolated_command(&bin("memd"), root.path())
        .arg("--config")
        .arg(root.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

/// Runs memctl as uid/gid 65534 (nobody). Needs root; returns None otherwise.
fn memctl_as_nobody(daemon: &Daemon, args: &[&str]) -> Option<std::process::Output> {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping the other-uid part: the test is not running as root");
        return None;
    }
    // Loosen the file permissions on purpose: the daemon's own peer check must hold.
    for dir in [daemon.root.path(), daemon.socket.parent().unwrap()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = isolated_command(&bin("memctl"), std::path::Path::new("/tmp"))
        .env("MEMD_SOCKET", &daemon.socket)
        .args(args)
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Some(out)
}

#[tokio::test]
async fn a_peer_of_another_uid_is_refused_unless_the_config_allows_it() {
    let daemon = Daemon::start();
    if let Some(out) = memctl_as_nobody(&daemon, &["status", "--json"]) {
        assert_eq!(out.status.code(), Some(1), "{}", mem_e2e::describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("uid 65534") && stderr.contains("may not use this memd"),
            "{stderr}"
        );
        assert!(
            daemon.stderr().contains("refused a peer"),
            "{}",
            daemon.stderr()
        );
    }

    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("memd.toml");
    std::fs::write(&config, "[access]\nview_users = [\"65534\"]\n").unwrap();
    let daemon = Daemon::with_config(root, &config);
    if let Some(out) = memctl_as_nobody(&daemon, &["status", "--json"]) {
        assert!(out.status.success(), "{}", mem_e2e::describe(&out));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["access"], "view", "a view user gets view access");
    }
}

#[tokio::test]
async fn tells_systemd_ready_then_pings_the_watchdog_then_stopping() {
    let root = tempfile::tempdir().unwrap();
    let notify_path = root.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (socket, data_dir) = (root.path().join("run/memd.sock"), root.path().join("data"));
    let mut daemon = Daemon::start_in(root, socket, data_dir, |cmd| {
        cmd.env("NOTIFY_SOCKET", &notify_path)
            .env("WATCHDOG_USEC", "400000");
    });
    let next = || {
        let mut buf = [0u8; 4096];
        let n = notify
            .recv(&mut buf)
            .expect("a notification from memd within 10 s");
        String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
    };
    let first = next();
    assert!(
        first.contains("READY=1") && first.contains("STATUS=serving 11 strategies"),
        "{first}"
    );
    for _ in 0..3 {
        assert_eq!(next(), "WATCHDOG=1");
    }
    assert!(daemon.stop_with(Signal::SIGTERM).success());
    let mut stopping = String::new();
    for _ in 0..10 {
        stopping = next();
        if stopping != "WATCHDOG=1" {
            break;
        }
    }
    assert!(stopping.contains("STOPPING=1"), "{stopping}");
}

/// A daemon that hangs stops pinging the watchdog, so systemd (`WatchdogSec=`) kills and
/// restarts it. The hang is a debug-build trigger that takes the registry's lock for
/// good, as a writer stuck on a dead disk would; the pings are read from a stand-in
/// `NOTIFY_SOCKET`. (That systemd then restarts the unit is systemd's part: checked by
/// hand with `systemctl kill -s SIGSTOP memd`, see systemd/README.md.)
#[tokio::test]
async fn a_hung_daemon_stops_pinging_the_watchdog() {
    let root = tempfile::tempdir().unwrap();
    let notify_path = root.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let (socket, data_dir) = (root.path().join("run/memd.sock"), root.path().join("data"));
    let _daemon = Daemon::start_in(root, socket, data_dir, |cmd| {
        cmd.env("NOTIFY_SOCKET", &notify_path)
            .env("WATCHDOG_USEC", "400000")
            .env("MEMD_DEBUG_HANG_AFTER_SECS", "1.5");
    });
    let mut pings = 0;
    let started = std::time::Instant::now();
    let mut last_ping = started;
    loop {
        let mut buf = [0u8; 4096];
        match notify.recv(&mut buf) {
            Ok(n) => {
                if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
                    pings += 1;
                    last_ping = std::time::Instant::now();
                }
            }
            // 1.5 s without a ping at a 200 ms cadence: the daemon has stopped pinging.
            Err(_) => break,
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "pings never stopped"
        );
    }
    assert!(pings >= 3, "it pinged while healthy: {pings}");
    let hung_at = last_ping.duration_since(started);
    assert!(
        hung_at >= Duration::from_millis(1000) && hung_at < Duration::from_secs(5),
        "the pings stopped when the registry hung (at {hung_at:?})"
    );
}
