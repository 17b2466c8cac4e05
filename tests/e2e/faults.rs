//! Faults of the file system under a running memd: the disk filling up, and the data
//! directory turning read-only. The data directory lives on a small tmpfs mounted by the
//! test (root only; without the right to mount, the test says so and skips, unless
//! `MEMD_REQUIRE_MOUNT` is set). Checked: clear errors that name the file and the cause,
//! no torn or half-written file, nothing acknowledged lost, and recovery by itself once
//! space (or write access) returns. Bot faults (missing binary, crash at start, hang on
//! stop) are in deploy.rs.

use mem_e2e::Daemon;
use mem_e2e::deployments::total_trades;
use mem_e2e::trades::closed_trade;
use mem_protocol::methods::{NoParams, method};
use mem_protocol::registry::*;
use mem_protocol::strategy::StrategyId;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Tmpfs(at.to_path_buf()));
        }
        assert!(
            std::env::var_os("MEMD_REQUIRE_MOUNT").is_none(),
            "cannot mount a tmpfs here, and MEMD_REQUIRE_MOUNT is set"
        );
        eprintln!("cannot mount a tmpfs (not root, or no CAP_SYS_ADMIN): skipping");
        None
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}");
    }

    fn free_bytes(&self) -> u64 {
        let s = nix::sys::statvfs::statvfs(&self.0).unwrap();
        s.blocks_available() as u64 * s.fragment_size() as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        mem_e2e::kill_processes_mentioning(&self.0);
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Every line of a JSON-lines file parses (no torn line in the middle or at the end).
fn whole_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends mid-line",
        path.display()
    );
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: a torn line ({e}): {l:.80}", path.display()))
        })
        .collect()
}

fn start(root: &Path, data: &Path) -> Daemon {
    let logs = root.join("logs");
    let data = data.to_path_buf();
    Daemon::start_in(
        tempfile::tempdir().unwrap(),
        root.join("run/memd.sock"),
        data,
        move |cmd| {
            cmd.arg("--no-seed").env("MEMD_LOG_DIR", &logs);
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_and_a_read_only_data_dir_give_clear_errors_lose_nothing_and_recover() {
    let root = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&root.path().join("fs"), "2m") else {
        return;
    };
    let data = fs.0.join("data");
    let mut daemon = start(root.path(), &data);
    let client = daemon.client().await;
    let id: StrategyId = client
        .call::<method::StrategiesRegister>(RegisterParams {
            strategy: json!({"name": "disk_test", "category": "momentum", "language": "python"}),
            status: None,
        })
        .await
        .unwrap()
        .summary
        .id;
    // Fill the disk but for about 40 KB.
    let filler = fs.0.join("filler");
    let room = fs.free_bytes().saturating_sub(40 * 1024);
    std::fs::write(&filler, vec![0u8; room as usize]).unwrap();

    let mut acked = Vec::new();
    let mut full_error = None;
    for batch in 0..1000 {
        let trades: Vec<_> = (0..20)
            .map(|i| closed_trade(format!("b{batch}-t{i}")).build())
            .collect();
        let ids: Vec<String> = trades.iter().map(|t| t.trade_id.clone()).collect();
        match client
            .call::<method::TradesRecord>(RecordTradesParams { id, trades })
            .await
        {
            Ok(_) => acked.extend(ids),
            Err(e) => {
                full_error = Some(e.to_string());
                break;
            }
        }
    }
    let full_error = full_error.expect("the disk filled up");
    assert!(
        full_error.contains("No space left on device") && full_error.contains("performance"),
        "the error names the cause and the file: {full_error}"
    );
    assert!(acked.len() >= 20, "some trades fitted: {}", acked.len());
    // A metadata change fails whole; the file stays as it was.
    let meta = data.join(format!("strategy_registry/metadata/{id}.json"));
    let before = std::fs::read(&meta).unwrap();
    let err = client
        .call::<method::StrategiesUpdate>(UpdateParams {
            id,
            patch: json!({"description": "x".repeat(9_000)}),
            reason: None,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("No space left"), "{err}");
    assert_eq!(
        std::fs::read(&meta).unwrap(),
        before,
        "the metadata file is untouched"
    );
    // The daemon still serves reads.
    let status = client
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
    assert_eq!(status.counts.strategies, 1);
    let perf = data.join(format!("strategy_registry/performance/{id}.jsonl"));
    let lines = whole_lines(&perf);
    assert_eq!(
        lines.len(),
        acked.len(),
        "exactly the acknowledged trades, no half line"
    );

    // Space returns: the next writes succeed, with nothing lost or torn.
    std::fs::remove_file(&filler).unwrap();
    let more: Vec<_> = (0..20)
        .map(|i| closed_trade(format!("after-{i}")).build())
        .collect();
    acked.extend(more.iter().map(|t| t.trade_id.clone()));
    client
        .call::<method::TradesRecord>(RecordTradesParams { id, trades: more })
        .await
        .expect("recovered once space returned");
    client
        .call::<method::StrategiesUpdate>(UpdateParams {
            id,
            patch: json!({"description": "after the disk was full"}),
            reason: None,
        })
        .await
        .unwrap();
    let on_disk: Vec<String> = whole_lines(&perf)
        .iter()
        .map(|v| v["trade_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(on_disk, acked);

    // A read-only data directory: memd refuses to start, naming the directory and the
    // cause. (A running daemon holds its logs open for writing, and Linux refuses to
    // remount a file system read-only under open writers, so this is the case a person
    // meets: a read-only mount at boot.)
    daemon.stop_with(Signal::SIGTERM);
    fs.remount("ro");
    let mut child = Daemon::spawn_raw(
        root.path(),
        &root.path().join("run/memd.sock"),
        &data,
        |cmd| {
            cmd.arg("--no-seed")
                .env("MEMD_LOG_DIR", root.path().join("logs"));
        },
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "memd on a read-only dir did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(root.path().join("memd.stderr")).unwrap();
    assert!(!exit.success());
    assert!(
        stderr.contains("Read-only file system") && stderr.contains(&data.display().to_string()),
        "{stderr}"
    );
    fs.remount("rw");
    let daemon = start(root.path(), &data);
    let client = daemon.client().await;
    assert_eq!(total_trades(&client, id).await as usize, acked.len());
    client
        .call::<method::TradesRecord>(RecordTradesParams {
            id,
            trades: vec![closed_trade("rw-again").build()],
        })
        .await
        .expect("writes work again");
    let status = client
        .call::<method::DaemonStatus>(NoParams {})
        .await
        .unwrap();
    assert_eq!(status.counts.registry_errors, 0);
}
