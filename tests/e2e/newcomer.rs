//! A trader's first ten minutes, as the README and the operator guide tell them: memd on an
//! empty data directory (seeded on its first start), the real Freqtrade, no exchange
//! reachable. The first deploy of a seed bot fails within seconds and says why (and where
//! to read about the mock exchange); the mock exchange started with the docs' line
//! (`mock-exchange --write-overrides <data>/freqtrade/overrides.json`), the same deploy
//! runs, with no restart of memd; the bot is stopped, then memd with `memctl daemon stop`.
//!
//! "No exchange reachable" is the machine with no internet: memd runs in a network
//! namespace of its own with only a loopback (`unshare --net`), so Freqtrade's lookup of
//! the exchange fails as it does offline and nothing leaves the machine. Where a namespace
//! cannot be made (no CAP_SYS_ADMIN), the exchange is pointed at a closed loopback port.
//!
//! Needs `MEMD_TEST_FREQTRADE`; without it the test says it is skipped.

use mem_e2e::seed::MACD_HUNTER;
use mem_e2e::{Daemon, bin, describe, free_port, freqtrade, isolated_command};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether this machine lets us make a network namespace with its loopback up.
fn can_isolate_network() -> bool {
    Command::new("unshare")
        .args(["--net", "ip", "link", "set", "lo", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// memd as a newcomer starts it: the default data seeded on first start, Freqtrade found
/// on PATH; in a network namespace of its own when `isolated`.
fn start_memd(freqtrade: &Path, isolated: bool) -> Daemon {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("run/memd.sock");
    let data_dir = root.path().join("data");
    let stderr = std::fs::File::create(root.path().join("memd.stderr")).unwrap();
    let memd = bin("memd");
    let mut cmd = if isolated {
        let mut cmd = isolated_command(Path::new("unshare"), root.path());
        cmd.args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(&memd);
        cmd
    } else {
        isolated_command(&memd, root.path())
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![freqtrade.parent().unwrap().to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    cmd.arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(&data_dir)
        .env("PATH", std::env::join_paths(paths).unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    Daemon::adopt(cmd.spawn().unwrap(), root, socket, data_dir)
}

/// The docs' line, `mock-exchange --write-overrides <data>/freqtrade/overrides.json`, run
/// where memd's bots can reach it (memd's network namespace when it has its own).
fn start_mock_exchange(daemon: &Daemon, isolated: bool) -> Child {
    let overrides = daemon.data_dir.join("freqtrade/overrides.json");
    let mut cmd = if isolated {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/proc/{}/ns/net", daemon.pid()))
            .arg("--")
            .arg(bin("mock-exchange"));
        cmd
    } else {
        let mut cmd = Command::new(bin("mock-exchange"));
        cmd.args(["--port", &free_port().to_string()]);
        cmd
    };
    cmd.arg("--write-overrides")
        .arg(&overrides)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("run mock-exchange");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !overrides.exists() {
        assert!(
            Instant::now() < deadline,
            "mock-exchange wrote no overrides"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// `memctl ARGS` against the daemon, its output, and how long it took.
fn memctl(daemon: &Daemon, args: &[&str]) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let output = daemon.memctl(args);
    (output, started.elapsed())
}

#[test]
fn a_first_bot_fails_fast_offline_and_runs_on_the_mock_exchange_set_up_from_the_docs() {
    let Some(freqtrade) = freqtrade::binary() else {
        return;
    };
    let isolated = can_isolate_network();
    eprintln!(
        "no exchange reachable by {}",
        if isolated {
            "a network namespace with only a loopback"
        } else {
            "an exchange URL on a closed loopback port (no network namespace here)"
        }
    );
    let mut daemon = start_memd(&freqtrade, isolated);
    // The bot's port: the strategy's own in a namespace of its own; elsewhere a free one
    // (other tests' bots share the machine's ports).
    let port = free_port().to_string();
    let deploy: Vec<&str> = if isolated {
        vec!["deploy", MACD_HUNTER]
    } else {
        vec!["deploy", MACD_HUNTER, "--port", &port]
    };
    if !isolated {
        let closed = free_port();
        let url = format!("http://127.0.0.1:{closed}");
        let overrides = serde_json::json!({"exchange": {"ccxt_config": {"urls": {"api": {
            "public": format!("{url}/api/v3"), "private": format!("{url}/api/v3"),
            "sapi": format!("{url}/sapi/v1")}}}}});
        std::fs::write(
            daemon.data_dir.join("freqtrade/overrides.json"),
            overrides.to_string(),
        )
        .unwrap();
    }

    // Offline: the deploy fails within 10 s, with the cause in words and where to look.
    let (failed, took) = memctl(&daemon, &deploy);
    assert_eq!(failed.status.code(), Some(1), "{}", describe(&failed));
    let said = String::from_utf8_lossy(&failed.stderr);
    assert!(
        said.contains("the exchange binance could not be reached"),
        "{said}"
    );
    assert!(said.contains("mock exchange"), "{said}");
    assert!(
        took < Duration::from_secs(10),
        "the failed deploy took {took:?}"
    );
    assert!(
        daemon.stderr().contains("the bot did not start"),
        "the daemon's log says nothing of it:\n{}",
        daemon.stderr()
    );

    // The failure is in the default list, with its cause, until acknowledged.
    let (listed, _) = memctl(&daemon, &["deployed"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("failed") && listed.contains("could not be reached"),
        "{listed}"
    );

    // The docs' offline setup, then the same deploy: no restart of memd.
    let mut mock = start_mock_exchange(&daemon, isolated);
    let (deployed, _) = memctl(&daemon, &deploy);
    assert!(deployed.status.success(), "{}", describe(&deployed));
    let (listed, _) = memctl(&daemon, &["deployed"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.contains("running"), "{listed}");

    // Stopped as the README says: the bot, then the daemon.
    let (stopped, _) = memctl(&daemon, &["stop", MACD_HUNTER]);
    assert!(stopped.status.success(), "{}", describe(&stopped));
    let (ended, _) = memctl(&daemon, &["daemon", "stop"]);
    assert!(ended.status.success(), "{}", describe(&ended));
    assert!(
        String::from_utf8_lossy(&ended.stdout).contains("memd stopped"),
        "{}",
        describe(&ended)
    );
    let status = daemon
        .wait_exit(Duration::from_secs(5))
        .expect("memd has ended when `memctl daemon stop` returns");
    assert!(status.success(), "memd exited with {status}");
    let _ = mock.kill();
    let _ = mock.wait();
}
