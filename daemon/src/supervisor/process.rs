//! Process helpers of the supervisor: a process's identity (pid and start time), its
//! group's termination, strays of a previous daemon, free ports, a file's last lines.
//!
//! Invariant: a pid alone never identifies a bot (pids are reused); its start time in
//! clock ticks after boot, read from `/proc/{pid}/stat`, goes with it.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::process::Child;
use tracing::warn;

/// A process's start time in clock ticks since boot, from `/proc/{pid}/stat`.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that was started (and not a zombie).
pub fn same_process_alive(pid: u32, ticks: Option<u64>) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rfind(')').and_then(|i| stat[i + 2..].chars().next());
    if state == Some('Z') {
        return false;
    }
    ticks.is_none_or(|t| start_ticks(pid) == Some(t))
}

pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The last `n` lines of a file.
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// SIGTERM to the process group, wait, then SIGKILL; reaps our own child.
pub async fn terminate_group(pid: u32, child: &mut Option<Child>, grace: Duration) {
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        let gone = match child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => !same_process_alive(pid, None),
        };
        if gone {
            break;
        }
        if Instant::now() >= deadline {
            warn!(pid, "the bot ignored SIGTERM; killing its process group");
            let _ = killpg(group, Signal::SIGKILL);
            if let Some(c) = child.as_mut() {
                let _ = c.wait().await;
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Whatever else is left in the group (grandchildren) goes too.
    let _ = killpg(group, Signal::SIGKILL);
}

/// Stops bots started under `root` (`--config <root>/<deployment>/config.json`) whose
/// pid is not in `known` (a daemon killed between spawning a bot and saving its pid):
/// left alone, one would hold its port and trade unsupervised beside the copy the
/// restart policy starts.
pub async fn reap_orphans(root: &Path, known: &[u32], grace: Duration) {
    let needle = format!("{}/", root.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || known.contains(&pid) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_ours = args.windows(2).any(|w| {
            w[0] == b"--config"
                && w[1].starts_with(needle.as_bytes())
                && w[1].ends_with(b"/config.json")
        });
        if !is_ours || !same_process_alive(pid, None) {
            continue;
        }
        // Only a group leader is a bot we started (each bot leads its own group).
        let leader = nix::unistd::getpgid(Some(Pid::from_raw(pid as i32)))
            .is_ok_and(|g| g.as_raw() == pid as i32);
        if !leader {
            continue;
        }
        warn!(
            pid,
            "a bot of this data directory is not in deployments/state.json (the daemon died while starting it); stopping it"
        );
        terminate_group(pid, &mut None, grace).await;
    }
}
