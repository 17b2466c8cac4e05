//! The `memd` binary's command line (this also makes `cargo test` build the binary that
//! the end-to-end tests in tests/ start).

use std::process::Command;

#[test]
fn version_and_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_memd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = Command::new(env!("CARGO_BIN_EXE_memd"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--data-dir",
        "--socket",
        "--system",
        "--check-config",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn system_mode_uses_systemd_directories() {
    let out = Command::new(env!("CARGO_BIN_EXE_memd"))
        .args(["--system", "--check-config"])
        .env_remove("MEMD_DATA_DIR")
        .env_remove("MEMD_SOCKET")
        .env_remove("MEMD_CONFIG")
        .env_remove("MEMD_LOG_DIR")
        .env_remove("STRATEGY_REGISTRY_PATH")
        .env("STATE_DIRECTORY", "/var/lib/memd-test")
        .env("RUNTIME_DIRECTORY", "/run/memd-test")
        .env("LOGS_DIRECTORY", "/var/log/memd-test")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("data dir      /var/lib/memd-test"), "{text}");
    assert!(
        text.contains("socket        /run/memd-test/memd.sock"),
        "{text}"
    );
    assert!(text.contains("log dir       /var/log/memd-test"), "{text}");
    assert!(
        text.contains("registry dir  /var/lib/memd-test/strategy_registry"),
        "{text}"
    );
}

/// `memd --check-config` on a config file of `text`, in `dir`.
fn check_config(dir: &std::path::Path, text: &str) -> std::process::Output {
    let config = dir.join("memd.toml");
    std::fs::write(&config, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_memd"))
        .arg("--check-config")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .unwrap()
}

#[test]
fn check_config_names_bad_market_and_mem_settings() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        (
            "[market]\ntimeframe = \"7m\"\n",
            "[market] timeframe: unknown timeframe `7m`",
        ),
        (
            "[market]\nconditions_timeframe = \"2d\"\n",
            "[market] conditions_timeframe",
        ),
        (
            "[mem.enhancement]\nmin_size = 0.5\n",
            "[mem.enhancement] sizes must satisfy",
        ),
        (
            "[mem.enhancement]\nbase_weight = -1\n",
            "[mem.enhancement] base_weight",
        ),
        // Under its old name a setting is still checked, and named by its new one.
        ("[mem]\nbase_weight = -1\n", "[mem.enhancement] base_weight"),
        (
            "[mem]\ntext_log_max_bytes = 10\n",
            "[mem] text_log_max_bytes",
        ),
        (
            "[model]\npromotion_margin = -0.1\n",
            "[model] promotion_margin",
        ),
        ("[model]\npromotion_metric = \"f1\"\n", "promotion_metric"),
    ] {
        let out = check_config(dir.path(), text);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{text}: {err}");
    }
}

/// A key read under its old name is a warning naming the new one; the daemon still starts
/// on it (`--check-config` prints the warning and succeeds).
#[test]
fn check_config_warns_of_renamed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_config(
        dir.path(),
        "[mem]\nstop_atr = 2.0\n[memory]\nencrypt = false\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for warning in [
        "warning: [mem] stop_atr is read as [mem.enhancement] stop_atr",
        "warning: [memory] encrypt is read as [mem.encryption] encrypt",
    ] {
        assert!(err.contains(warning), "{warning}: {err}");
    }
}
