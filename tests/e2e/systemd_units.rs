//! The unit files pass `systemd-analyze verify` (with ExecStart pointed at the built
//! binary, since verify checks that the program exists), and the system unit's
//! `systemd-analyze security` exposure stays under 3.0.

use mem_e2e::bin;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `systemd-analyze`, installed from Debian's `systemd` package if missing and we may.
fn systemd_analyze() -> PathBuf {
    let found = |p: &str| Path::new(p).is_file().then(|| PathBuf::from(p));
    if let Some(path) = found("/usr/bin/systemd-analyze").or_else(|| found("/bin/systemd-analyze"))
    {
        return path;
    }
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "systemd-analyze is missing; install Debian's `systemd` package (needs root)"
    );
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "systemd"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        let _ = Command::new("apt-get").arg("update").status();
        let status = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "systemd"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .unwrap();
        assert!(status.success(), "apt-get install systemd failed");
    }
    found("/usr/bin/systemd-analyze").expect("systemd-analyze after installing systemd")
}

fn verify(unit: &Path, user: bool) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(unit).unwrap();
    let memd = bin("memd");
    let text = text.replace("/usr/bin/memd", &memd.display().to_string());
    let copy = dir.path().join(unit.file_name().unwrap());
    std::fs::write(&copy, text).unwrap();
    let mut cmd = Command::new(systemd_analyze());
    if user {
        // The user manager that verify starts needs a runtime directory of its own.
        let runtime = dir.path().join("runtime");
        std::fs::create_dir(&runtime).unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        cmd.arg("--user").env("XDG_RUNTIME_DIR", &runtime);
    }
    let out = cmd
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify may print notes about the host (no D-Bus, no /run/systemd in a container);
    // what must be absent is any complaint about this unit file.
    let unit_name = copy.file_name().unwrap().to_string_lossy().into_owned();
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains(&unit_name)).collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify {}:\n{stderr}",
        unit.display()
    );
}

#[test]
fn system_unit_verifies() {
    verify(&repo().join("systemd/memd.service"), false);
}

#[test]
fn user_unit_verifies() {
    verify(&repo().join("systemd/user/memd.service"), true);
}

/// The overall exposure `systemd-analyze security --offline=true` gives a unit file.
fn exposure(unit: &Path) -> (f64, String) {
    let out = Command::new(systemd_analyze())
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure line:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let value = line
        .split(':')
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable exposure: {line}"));
    (value, text)
}

#[test]
fn system_unit_is_hardened_below_an_exposure_of_3() {
    let (value, report) = exposure(&repo().join("systemd/memd.service"));
    assert!(value < 3.0, "exposure {value}:\n{report}");
}
