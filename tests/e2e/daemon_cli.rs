//! `memctl daemon status|stop|start|restart|logs` on a memd no service manager runs, with
//! the real binaries: what a user daemon's operator sees. The systemd road (systemctl,
//! journalctl) needs systemd as PID 1, which these machines lack; the command lines it
//! runs and how memctl recognises a unit's memd are unit tests in tui/src/daemon_cli.rs.

use mem_e2e::{Daemon, alive, describe, wait_for};
use std::io::{BufRead, BufReader};
use std::process::Output;
use std::time::Duration;

/// A memd that memctl started (not the test's child): killed if the test fails before
/// `memctl daemon stop` has ended it.
struct Started(u32);

impl Drop for Started {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `memctl daemon status --json`, parsed; asserts its exit code says running or not.
fn status_json(daemon: &Daemon, running: bool) -> serde_json::Value {
    let out = daemon.memctl(&["daemon", "status", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(if running { 0 } else { 3 }),
        "{}",
        describe(&out)
    );
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(state["running"], running, "{state}");
    state
}

fn socket_answers(daemon: &Daemon) -> bool {
    std::os::unix::net::UnixStream::connect(&daemon.socket).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_logs_stop_and_start_a_memd_of_its_own() {
    let mut daemon = Daemon::start();
    let pid = daemon.child.id();

    let out = daemon.memctl(&["daemon", "status"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    for expected in [
        "running".to_string(),
        format!("pid {pid}"),
        "no service manager".to_string(),
        daemon.data_dir.display().to_string(),
    ] {
        assert!(
            text.contains(&expected),
            "status lacks {expected:?}:\n{text}"
        );
    }
    let state = status_json(&daemon, true);
    assert_eq!(state["pid"], pid, "{state}");
    assert_eq!(state["manager"]["kind"], "process", "{state}");

    // Its log, from the file in <data>/logs.
    let out = daemon.memctl(&["daemon", "logs", "-n", "500"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout(&out).contains("memd is ready"), "{}", describe(&out));
    let out = daemon.memctl(&["daemon", "logs", "-n", "1"]);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", describe(&out));

    // Following: the last line first (so the follower has its place in the file), then a
    // line memd writes afterwards: its "shutting down" when it is stopped.
    let mut follow = daemon.memctl_child(&["daemon", "logs", "-f", "-n", "1"]);
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = BufReader::new(follow.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("logs -f printed the last line");
    assert!(!first.contains("shutting down"), "{first}");

    let out = daemon.memctl(&["daemon", "stop"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains(&format!("memd stopped (pid {pid})")),
        "{}",
        describe(&out)
    );
    assert!(
        daemon.wait_exit(Duration::from_secs(5)).is_some(),
        "memd has ended when `memctl daemon stop` returns"
    );
    assert!(!socket_answers(&daemon), "the socket still answers");
    assert!(!daemon.socket.exists(), "the socket file is left");

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("logs -f printed the line memd wrote as it stopped");
        if line.contains("shutting down") {
            break;
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();

    // Stopped: status says so with exit code 3; stop has nothing to stop.
    let out = daemon.memctl(&["daemon", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(stdout(&out).contains("not running"), "{}", describe(&out));
    status_json(&daemon, false);
    let out = daemon.memctl(&["daemon", "stop"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));

    // Started again by memctl, on the same data.
    let data = daemon.data_dir.display().to_string();
    let out = daemon.memctl(&["daemon", "start", "--data-dir", &data]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout(&out).contains("memd started"), "{}", describe(&out));
    let state = status_json(&daemon, true);
    let new_pid = state["pid"].as_u64().expect("pid") as u32;
    let _started = Started(new_pid);
    assert_ne!(new_pid, pid);
    assert_eq!(state["dataDir"], data.as_str(), "{state}");
    let out = daemon.memctl(&["daemon", "start"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains(&format!("already running (pid {new_pid})")),
        "{}",
        describe(&out)
    );

    let out = daemon.memctl(&["daemon", "stop"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_for(
        "memctl's memd to end",
        Duration::from_secs(10),
        async || !alive(new_pid),
    )
    .await;
    assert!(!socket_answers(&daemon));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_starts_the_same_command_line_again() {
    let mut daemon = Daemon::start();
    let pid = daemon.child.id();
    let out = daemon.memctl(&["daemon", "restart"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        daemon.wait_exit(Duration::from_secs(5)).is_some(),
        "the old memd has ended"
    );
    let state = status_json(&daemon, true);
    let new_pid = state["pid"].as_u64().expect("pid") as u32;
    let _started = Started(new_pid);
    assert_ne!(new_pid, pid);
    assert!(
        stdout(&out).contains(&format!("memd restarted (pid {pid} -> {new_pid})")),
        "{}",
        describe(&out)
    );
    // The same data directory and socket as before: the command line was kept.
    assert_eq!(
        state["dataDir"],
        daemon.data_dir.display().to_string().as_str(),
        "{state}"
    );
    assert_eq!(
        state["socket"],
        daemon.socket.display().to_string().as_str(),
        "{state}"
    );
    let out = daemon.memctl(&["daemon", "stop"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_for(
        "the restarted memd to end",
        Duration::from_secs(10),
        async || !alive(new_pid),
    )
    .await;
}
