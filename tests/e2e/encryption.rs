//! Memory at rest (`[mem.encryption] encrypt = true`) through the real memd: decisions, outcomes
//! and the learning loop's parameter file are unreadable as plain text under
//! `mem_knowledge/`, yet memd (and so memctl) reads them, after a restart and a crash
//! too; the key is a 0600 file memd creates, or the systemd credential; a wrong key, a
//! missing key and a key file others can read stop memd at start with a message naming
//! the file. A plain directory is encrypted when encryption is turned on.

use mem_e2e::{Daemon, describe};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const STRATEGY: &str = "zz_confidential_momentum";
const SYMBOL: &str = "QQSECRET/USDT";
/// What must not be found in any file of `mem_knowledge/`.
const FRAGMENTS: [&str; 7] = [
    STRATEGY,
    "QQSECRET",
    "Decision:",
    "{\"kind\"",
    "CLOSED",
    "position_size_multiplier",
    "performance_monitor",
];

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The user config memd reads by default (`$XDG_CONFIG_HOME/memd/memd.toml`), so plain
/// restarts keep it.
fn write_default_config(root: &Path, text: &str) {
    let dir = root.join("xdg-config/memd");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("memd.toml"), text).unwrap();
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", describe(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `memctl memory decisions --json` (every decision of the strategy).
fn decisions(daemon: &Daemon) -> Value {
    json_of(&daemon.memctl(&[
        "memory",
        "decisions",
        "--strategy",
        STRATEGY,
        "--limit",
        "1000",
        "--json",
    ]))
}

/// `n` decisions of which the first `closed` get an outcome (losses, so the monitor
/// writes parameter_updates.json after 20).
async fn decide_and_close(daemon: &Daemon, n: usize, closed: usize) {
    let client = daemon.client().await;
    for i in 0..n {
        let d = client
            .call_value(
                "mem.decide",
                json!({
                    "signal": {"strategy": STRATEGY, "symbol": SYMBOL, "action": "BUY", "confidence": 0.7},
                    "volatilityPct": 1.0,
                    "price": 100.0 + i as f64
                }),
            )
            .await
            .unwrap();
        if i < closed {
            client
                .call_value(
                    "mem.outcome",
                    json!({"decisionId": d["id"], "exitPrice": 99.0, "pnl": -1.0, "pnlPct": -0.01}),
                )
                .await
                .unwrap();
        }
    }
}

fn memory_files(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("mem_knowledge"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// No file of `mem_knowledge/` holds a plain fragment; each line is an encrypted record.
fn assert_unreadable(data: &Path, expected: &[&str]) {
    let files = memory_files(data);
    for name in expected {
        assert!(
            files.iter().any(|f| f.ends_with(name)),
            "{name} is written: {files:?}"
        );
    }
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for fragment in FRAGMENTS {
            assert!(
                !text.contains(fragment),
                "{} holds {fragment:?} in plain text",
                file.display()
            );
        }
        assert!(
            text.lines().all(|l| l.starts_with("enc1:")),
            "{}: every line is an encrypted record:\n{text}",
            file.display()
        );
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

/// Checks what memd answers: `n` decisions, `closed` of them with an outcome, nothing
/// unreadable, and the monitor's parameters.
fn assert_readable(daemon: &Daemon, n: usize, closed: usize) {
    let list = decisions(daemon);
    let all = list["decisions"].as_array().unwrap();
    assert_eq!(all.len(), n, "{list}");
    assert_eq!(list["unreadableLines"], 0, "{list}");
    assert!(all.iter().all(|d| d["symbol"] == SYMBOL), "{list}");
    let with_outcome = all.iter().filter(|d| !d["outcome"].is_null()).count();
    assert_eq!(with_outcome, closed, "{list}");
    if closed >= 20 {
        let params = json_of(&daemon.memctl(&["memory", "parameters", "--json"]));
        assert_eq!(
            params["current"][STRATEGY]["position_size_multiplier"], 0.7,
            "{params}"
        );
    }
}

/// Starts memd on the daemon's data with `configure`, expecting it to fail at start:
/// answers its stderr.
fn start_fails(daemon: &Daemon, configure: impl FnOnce(&mut Command)) -> String {
    let mut child = Daemon::spawn_raw(
        daemon.root.path(),
        &daemon.socket,
        &daemon.data_dir,
        configure,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "memd did not stop:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = daemon.stderr();
    assert!(!status.success(), "memd must fail at start:\n{stderr}");
    stderr
}

/// Starts memd again on the daemon's data (after a stop), with `configure`.
fn start_again(daemon: &mut Daemon, configure: impl FnOnce(&mut Command)) {
    daemon.child = Daemon::spawn_raw(
        daemon.root.path(),
        &daemon.socket,
        &daemon.data_dir,
        configure,
    );
    daemon.wait_ready();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_memory_is_unreadable_on_disk_and_read_by_memd() {
    let root = tempfile::tempdir().unwrap();
    write_default_config(root.path(), "[mem.encryption]\nencrypt = true\n");
    let (socket, data) = (root.path().join("run/memd.sock"), root.path().join("data"));
    let mut daemon = Daemon::start_in(root, socket, data.clone(), |_| {});
    // The key memd made on first start: 0600, in the data directory, never logged.
    let key = data.join("memory.key");
    assert_eq!(mode(&key), 0o600);
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert_eq!(key_text.trim().len(), 64, "64 hex digits");

    // 24 decisions, 21 closed (losses: the monitor adjusts after 20).
    decide_and_close(&daemon, 24, 21).await;
    assert_readable(&daemon, 24, 21);
    let expected = [
        "decisions.jsonl",
        "core_memory_updates.txt",
        "parameter_updates.json",
    ];
    assert_unreadable(&data, &expected);

    // A clean restart and a crash: memd reads it all back, and appends go on.
    daemon.restart_after(Signal::SIGTERM);
    assert_readable(&daemon, 24, 21);
    decide_and_close(&daemon, 1, 0).await;
    daemon.crash_and_restart();
    assert_readable(&daemon, 25, 21);
    assert_unreadable(&data, &expected);
    assert!(
        !daemon.stderr().contains(key_text.trim()),
        "the key is never logged"
    );
    let logs = data.join("logs");
    for entry in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
        let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(!log.contains(key_text.trim()), "the key is never logged");
    }
    daemon.stop_with(Signal::SIGTERM);

    // Another key: memd stops at start, naming the file and where the key came from.
    let root = daemon.root.path().to_path_buf();
    let other_key = root.join("other.key");
    std::fs::write(&other_key, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&other_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let other_config = root.join("other.toml");
    std::fs::write(
        &other_config,
        format!(
            "[mem.encryption]\nencrypt = true\nkey_file = \"{}\"\n",
            other_key.display()
        ),
    )
    .unwrap();
    let stderr = start_fails(&daemon, |cmd| {
        cmd.arg("--config").arg(&other_config);
    });
    assert!(
        stderr.contains("mem_knowledge/decisions.jsonl")
            && stderr.contains("cannot decrypt")
            && stderr.contains(&other_key.display().to_string())
            && stderr.contains("wrong key"),
        "{stderr}"
    );

    // No key at all: an error too, and no new key is made over encrypted data.
    let missing_key = root.join("missing.key");
    let missing_config = root.join("missing.toml");
    std::fs::write(
        &missing_config,
        format!(
            "[mem.encryption]\nencrypt = true\nkey_file = \"{}\"\n",
            missing_key.display()
        ),
    )
    .unwrap();
    let stderr = start_fails(&daemon, |cmd| {
        cmd.arg("--config").arg(&missing_config);
    });
    assert!(
        stderr.contains("encrypted")
            && stderr.contains("key is missing")
            && stderr.contains(&missing_key.display().to_string()),
        "{stderr}"
    );
    assert!(!missing_key.exists());
    // Encryption turned off while the key is gone: refused, not silently skipped.
    let off_config = root.join("off.toml");
    std::fs::write(
        &off_config,
        format!(
            "[mem.encryption]\nencrypt = false\nkey_file = \"{}\"\n",
            missing_key.display()
        ),
    )
    .unwrap();
    let stderr = start_fails(&daemon, |cmd| {
        cmd.arg("--config").arg(&off_config);
    });
    assert!(stderr.contains("encrypt is off"), "{stderr}");

    // A key file others can read is refused, naming it and its mode.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = start_fails(&daemon, |_| {});
    assert!(
        stderr.contains(&key.display().to_string()) && stderr.contains("0644"),
        "{stderr}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();

    // The systemd credential (LoadCredential=memd-memory-key:...) wins over key_file.
    let credentials = root.join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::copy(&key, credentials.join("memd-memory-key")).unwrap();
    start_again(&mut daemon, |cmd| {
        cmd.arg("--config")
            .arg(&missing_config)
            .env("CREDENTIALS_DIRECTORY", &credentials);
    });
    assert_readable(&daemon, 25, 21);
    assert!(!missing_key.exists(), "the credential was used");
    daemon.stop_with(Signal::SIGTERM);

    // Back to the key file (0400 is fine).
    start_again(&mut daemon, |_| {});
    assert_readable(&daemon, 25, 21);
    assert_unreadable(&data, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_encryption_on_encrypts_a_plain_memory() {
    let root = tempfile::tempdir().unwrap();
    let (socket, data) = (root.path().join("run/memd.sock"), root.path().join("data"));
    let mut daemon = Daemon::start_in(root, socket, data.clone(), |_| {});
    decide_and_close(&daemon, 5, 3).await;
    let plain = std::fs::read_to_string(data.join("mem_knowledge/decisions.jsonl")).unwrap();
    assert!(plain.contains(STRATEGY), "plain before");
    assert!(!data.join("memory.key").exists());

    // Under the table's old name, `[memory]`: still read, with a warning naming the new.
    write_default_config(daemon.root.path(), "[memory]\nencrypt = true\n");
    daemon.restart_after(Signal::SIGTERM);
    assert!(
        daemon
            .stderr()
            .contains("[memory] encrypt is read as [mem.encryption] encrypt"),
        "the old name is warned of:\n{}",
        daemon.stderr()
    );
    assert_eq!(mode(&data.join("memory.key")), 0o600);
    assert_readable(&daemon, 5, 3);
    assert_unreadable(&data, &["decisions.jsonl", "core_memory_updates.txt"]);
    assert!(
        daemon.stderr().contains("encrypted"),
        "the conversion is logged:\n{}",
        daemon.stderr()
    );
    decide_and_close(&daemon, 1, 1).await;
    assert_readable(&daemon, 6, 4);
    assert_unreadable(&data, &["decisions.jsonl", "core_memory_updates.txt"]);

    // A parameter file written in plain text by hand: applied, then encrypted at once;
    // memd's own encrypted write that follows reloads as applied too.
    let client = daemon.client().await;
    let (_, mut events) = client
        .subscribe(vec![mem_protocol::Topic::Memory])
        .await
        .unwrap();
    let file = data.join("mem_knowledge/parameter_updates.json");
    let edit = json!({"2026-11-22": {"timestamp": "2026-11-22T10:00:00Z", "adjustments": [],
        "parameters": {STRATEGY: {"position_size_multiplier": 0.5}}}});
    std::fs::write(&file, serde_json::to_vec_pretty(&edit).unwrap()).unwrap();
    let mut changes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(m) = events.next().await {
            if let mem_protocol::Event::MemoryChanged(c) = m.event {
                if c.file == "parameter_updates.json" {
                    changes.push(c);
                }
            }
        }
    })
    .await;
    assert!(!changes.is_empty(), "the hand edit was seen");
    assert!(changes.iter().all(|c| c.applied), "{changes:?}");
    let params = json_of(&daemon.memctl(&["memory", "parameters", "--json"]));
    assert_eq!(
        params["current"][STRATEGY]["position_size_multiplier"], 0.5,
        "{params}"
    );
    assert_unreadable(
        &data,
        &[
            "decisions.jsonl",
            "core_memory_updates.txt",
            "parameter_updates.json",
        ],
    );
}

/// `memctl memory rotate-key`: every file re-encrypted with a new key, the memory read as
/// before, the old key refused, the rotation in the audit of actions. Then a rotation
/// stopped for good after one file (fault injection) and memd SIGKILLed: the next start
/// finishes it, and the memory reads as before under the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_and_one_cut_short_by_a_sigkill_leave_the_memory_readable() {
    let root = tempfile::tempdir().unwrap();
    write_default_config(root.path(), "[mem.encryption]\nencrypt = true\n");
    let (socket, data) = (root.path().join("run/memd.sock"), root.path().join("data"));
    let mut daemon = Daemon::start_in(root, socket, data.clone(), |_| {});
    let key = data.join("memory.key");
    let first_key = std::fs::read(&key).unwrap();
    decide_and_close(&daemon, 24, 21).await;
    let expected = [
        "decisions.jsonl",
        "core_memory_updates.txt",
        "parameter_updates.json",
    ];

    let rotated = json_of(&daemon.memctl(&["memory", "rotate-key", "--json"]));
    assert_eq!(rotated["keyFile"], key.display().to_string(), "{rotated}");
    assert_eq!(rotated["files"], 3, "{rotated}");
    let second_key = std::fs::read(&key).unwrap();
    assert_ne!(second_key, first_key);
    assert_eq!(mode(&key), 0o600);
    assert_readable(&daemon, 24, 21);
    decide_and_close(&daemon, 1, 0).await;
    assert_unreadable(&data, &expected);
    let audit = json_of(&daemon.memctl(&["audit", "--action", "mem.key.rotate", "--json"]));
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["outcome"], "ok", "{audit}");
    assert!(entries[0]["uid"].is_u64(), "{audit}");
    let key_hex = String::from_utf8(second_key.clone()).unwrap();
    assert!(
        !daemon.stderr().contains(key_hex.trim()),
        "the key is never logged"
    );

    // The old key no longer reads the memory.
    daemon.stop_with(Signal::SIGTERM);
    let root = daemon.root.path().to_path_buf();
    let old_key = root.join("old.key");
    std::fs::write(&old_key, &first_key).unwrap();
    std::fs::set_permissions(&old_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let old_config = root.join("old.toml");
    std::fs::write(
        &old_config,
        format!(
            "[mem.encryption]\nencrypt = true\nkey_file = \"{}\"\n",
            old_key.display()
        ),
    )
    .unwrap();
    let stderr = start_fails(&daemon, |cmd| {
        cmd.arg("--config").arg(&old_config);
    });
    assert!(stderr.contains("wrong key"), "{stderr}");

    // A rotation that stops after its first file, and memd killed there.
    start_again(&mut daemon, |cmd| {
        cmd.env("MEMD_FAULT_STALL_KEY_ROTATION", "1");
    });
    let mut rotation = daemon.memctl_child(&["memory", "rotate-key"]);
    let next = data.join("memory.key.next");
    mem_e2e::wait_for(
        "the rotation to stall after a file",
        Duration::from_secs(30),
        async || daemon.stderr().contains("the key rotation stalls here"),
    )
    .await;
    let third_key = std::fs::read(&next).unwrap();
    assert_eq!(
        std::fs::read(&key).unwrap(),
        second_key,
        "not installed yet"
    );
    daemon.stop_with(Signal::SIGKILL);
    let _ = rotation.kill();
    let _ = rotation.wait();

    start_again(&mut daemon, |_| {});
    assert!(
        daemon
            .stderr()
            .contains("a key rotation cut short by a stop was finished"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(std::fs::read(&key).unwrap(), third_key);
    assert!(!next.exists());
    assert_readable(&daemon, 25, 21);
    assert_unreadable(&data, &expected);
    decide_and_close(&daemon, 1, 1).await;
    daemon.restart_after(Signal::SIGTERM);
    assert_readable(&daemon, 26, 22);
}
