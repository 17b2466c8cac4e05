//! The Debian package (issue 28), as tools/build-deb makes it: its contents listed with
//! `dpkg-deb -c`, its control files read, then installed into a throwaway root with
//! `dpkg --root`, where every path the unit names must exist, the shipped config must
//! parse, the man pages render with `man -l` and the bash completion loads.
//!
//! The package comes from `MEMD_TEST_DEB` (tools/test-all builds it from the debug
//! binaries: `tools/build-deb --profile dev --no-build`). Without it the tests say they
//! are skipped, unless `MEMD_REQUIRE_DEB` says the package must be tested (test-all).
//!
//! Installing runs the maintainer scripts without a chroot (`--force-script-chrootless`:
//! the root has no shell to chroot into), with `DPKG_ROOT` set: `systemd-sysusers` and
//! `deb-systemd-helper` honour it; the steps that act on a running systemd
//! (`systemd-tmpfiles`, `daemon-reload`, `try-restart`) are guarded by
//! `/run/systemd/system`, absent where these tests run (CI, containers). On a machine
//! where systemd runs they would reach the host's systemd, so there the package is only
//! unpacked (its conffile moved into place by the test) and `systemd-sysusers` run by
//! the test. `systemd-tmpfiles --root` makes the snippet's directories in both cases, as
//! systemd does at every boot.

use mem_e2e::describe;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file the package must install.
const FILES: &[&str] = &[
    "/usr/bin/memd",
    "/usr/bin/memctl",
    "/usr/lib/systemd/system/memd.service",
    "/usr/lib/systemd/user/memd.service",
    "/usr/lib/sysusers.d/memd.conf",
    "/usr/lib/tmpfiles.d/memd.conf",
    "/etc/memd/memd.toml",
    "/usr/share/man/man1/memd.1.gz",
    "/usr/share/man/man1/memctl.1.gz",
    "/usr/share/bash-completion/completions/memd",
    "/usr/share/bash-completion/completions/memctl",
    "/usr/share/zsh/vendor-completions/_memctl",
    "/usr/share/fish/vendor_completions.d/memctl.fish",
    "/usr/share/doc/memd/README.md",
    "/usr/share/doc/memd/operator-guide.md",
    "/usr/share/doc/memd/systemd.md",
    "/usr/share/doc/memd/copyright",
];

/// The package under test, or None (skipped) when none was built.
fn deb() -> Option<PathBuf> {
    match std::env::var_os("MEMD_TEST_DEB") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "MEMD_TEST_DEB={} is not a file",
                path.display()
            );
            Some(path)
        }
        _ => {
            assert!(
                std::env::var_os("MEMD_REQUIRE_DEB").is_none(),
                "the package is required here (MEMD_REQUIRE_DEB) but MEMD_TEST_DEB is not set: build it with `tools/build-deb --profile dev` and pass its path"
            );
            eprintln!("MEMD_TEST_DEB is not set (tools/build-deb makes the package): skipped");
            None
        }
    }
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("run the command");
    assert!(out.status.success(), "{command:?}: {}", describe(&out));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A control file of the package (`dpkg-deb -I DEB NAME`).
fn control_file(deb: &Path, name: &str) -> String {
    run(Command::new("dpkg-deb").arg("-I").arg(deb).arg(name))
}

#[test]
fn the_package_lists_every_file_and_configures_without_starting() {
    let Some(deb) = deb() else {
        return;
    };
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    // Lines as `tar tv` prints them: mode, owner, size, date, time, ./path.
    let entries: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some((fields[0], fields.get(5)?.strip_prefix('.')?))
        })
        .collect();
    for file in FILES {
        let entry = entries.iter().find(|(_, path)| path == file);
        assert!(entry.is_some(), "the package lacks {file}:\n{listing}");
    }
    for binary in ["/usr/bin/memd", "/usr/bin/memctl"] {
        let (mode, _) = entries.iter().find(|(_, p)| *p == binary).unwrap();
        assert_eq!(*mode, "-rwxr-xr-x", "{binary}'s mode");
    }
    assert!(
        entries
            .iter()
            .all(|(_, path)| !path.starts_with("/usr/local")),
        "a package installs nothing under /usr/local:\n{listing}"
    );

    let fields = run(Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .args(["Package", "Architecture"]));
    assert!(fields.contains("Package: memd"), "{fields}");
    assert!(fields.contains("Architecture: amd64"), "{fields}");
    // The operator's edits of the config survive upgrades.
    assert!(
        control_file(&deb, "conffiles")
            .lines()
            .any(|l| l == "/etc/memd/memd.toml"),
        "memd.toml is not a conffile"
    );
    let postinst = control_file(&deb, "postinst");
    for step in [
        "systemd-sysusers",
        "memd.conf",
        "systemd-tmpfiles --create",
        "deb-systemd-helper update-state memd.service",
        "daemon-reload",
    ] {
        assert!(
            postinst.contains(step),
            "postinst lacks {step:?}:\n{postinst}"
        );
    }
    // Installed, not enabled nor started: the operator does that.
    for forbidden in ["deb-systemd-invoke start", "deb-systemd-invoke restart"] {
        assert!(
            !postinst.contains(forbidden),
            "postinst runs {forbidden:?}:\n{postinst}"
        );
    }
    assert!(
        !postinst.contains("deb-systemd-helper enable memd.service")
            || postinst.contains("was-enabled"),
        "postinst enables the unit on a first install:\n{postinst}"
    );
}

/// The unit's settings that hold a path or a user: (key, value) for each line.
fn unit_settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `path` (absolute) inside `root`.
fn inside(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

#[test]
fn the_package_installs_into_a_throwaway_root_with_what_the_unit_needs() {
    let Some(deb) = deb() else {
        return;
    };
    if !nix::unistd::Uid::effective().is_root() {
        // dpkg installs as root only, and the data directory is chowned to user memd.
        eprintln!("installing the package into a throwaway root needs root: skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    // The least dpkg needs to keep a database in a root of its own.
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = || {
        let mut dpkg = Command::new("dpkg");
        // --force-depends: libc6 is not in this root's database.
        dpkg.arg(format!("--root={}", root.display()))
            .arg("--force-depends");
        dpkg
    };
    let host_systemd = Path::new("/run/systemd/system").exists();
    if host_systemd {
        eprintln!("systemd runs on this machine: the package is unpacked, its scripts not run");
        run(dpkg().arg("--unpack").arg(&deb));
        let conffile = inside(&root, "/etc/memd/memd.toml");
        std::fs::rename(conffile.with_extension("toml.dpkg-new"), &conffile).unwrap();
        run(Command::new("systemd-sysusers")
            .arg(format!("--root={}", root.display()))
            .arg("memd.conf"));
    } else {
        let installed = run(dpkg().arg("--force-script-chrootless").arg("-i").arg(&deb));
        eprintln!("{installed}");
        let status = run(dpkg().args(["-s", "memd"]));
        assert!(status.contains("Status: install ok installed"), "{status}");
        // Installed, not enabled: no link in the target the unit is wanted by.
        let wants = inside(
            &root,
            "/etc/systemd/system/multi-user.target.wants/memd.service",
        );
        assert!(!wants.exists(), "the install enabled the unit");
    }
    for file in FILES {
        assert!(inside(&root, file).is_file(), "{file} is not in the root");
    }
    run(Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.display()))
        .args(["--create", "memd.conf"]));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let memd_uid: u32 = passwd
        .lines()
        .find_map(|l| l.strip_prefix("memd:x:"))
        .and_then(|rest| rest.split(':').next())
        .and_then(|uid| uid.parse().ok())
        .unwrap_or_else(|| panic!("no user memd in the root's passwd:\n{passwd}"));
    let data = std::fs::metadata(root.join("var/lib/memd")).expect("/var/lib/memd");
    assert!(data.is_dir());
    assert_eq!(data.uid(), memd_uid, "/var/lib/memd's owner");
    assert_eq!(
        data.permissions().mode() & 0o7777,
        0o750,
        "/var/lib/memd's mode"
    );

    // Every path and the user the system unit names are there.
    let unit =
        std::fs::read_to_string(inside(&root, "/usr/lib/systemd/system/memd.service")).unwrap();
    let settings = unit_settings(&unit);
    let value = |key: &str| {
        settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("the unit has no {key}="))
    };
    let exec = value("ExecStart").split_whitespace().next().unwrap();
    let program = std::fs::metadata(inside(&root, exec))
        .unwrap_or_else(|e| panic!("ExecStart's {exec}: {e}"));
    assert!(
        program.permissions().mode() & 0o111 != 0,
        "{exec} is not executable"
    );
    assert_eq!(value("User"), "memd");
    assert_eq!(value("Group"), "memd");
    for path in value("ReadWritePaths").split_whitespace() {
        assert!(
            inside(&root, path).is_dir(),
            "ReadWritePaths' {path} is not in the root"
        );
    }
    // StateDirectory=memd is /var/lib/memd, which the tmpfiles snippet made above.
    assert_eq!(value("StateDirectory"), "memd");
    for doc in value("Documentation").split_whitespace() {
        match doc.split_once(':') {
            Some(("man", page)) => {
                let (name, section) = page.trim_end_matches(')').split_once('(').unwrap();
                let file = format!("/usr/share/man/man{section}/{name}.{section}.gz");
                assert!(
                    inside(&root, &file).is_file(),
                    "Documentation's {doc}: no {file}"
                );
            }
            Some(("file", path)) => {
                assert!(
                    inside(&root, path).is_file(),
                    "Documentation's {doc} is not in the root"
                )
            }
            _ => panic!("Documentation={doc}: neither a man page nor a file the package installs"),
        }
    }
    let user_unit =
        std::fs::read_to_string(inside(&root, "/usr/lib/systemd/user/memd.service")).unwrap();
    let user_exec = unit_settings(&user_unit)
        .into_iter()
        .find(|(k, _)| k == "ExecStart")
        .map(|(_, v)| v)
        .expect("the user unit's ExecStart");
    assert!(
        inside(&root, user_exec.split_whitespace().next().unwrap()).is_file(),
        "{user_exec}"
    );

    // The installed binaries run, and the shipped config is what no config is; with every
    // key uncommented, each is one memd knows.
    let memd = inside(&root, "/usr/bin/memd");
    let config = inside(&root, "/etc/memd/memd.toml");
    let check = |config: &Path| {
        run(Command::new(&memd)
            .arg("--check-config")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .env_remove("MEMD_CONFIG")
            .env_remove("MEMD_DATA_DIR")
            .env_remove("MEMD_LOG"))
    };
    let shipped = check(&config);
    assert!(shipped.contains("log level     info"), "{shipped}");
    assert!(shipped.contains("http          off"), "{shipped}");
    let uncommented: String = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || rest.contains(" = ") => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(uncommented.contains("\n[freqtrade]\n"), "{uncommented}");
    let every_key = tmp.path().join("every-key.toml");
    std::fs::write(&every_key, uncommented).unwrap();
    check(&every_key);
    let version = run(Command::new(inside(&root, "/usr/bin/memctl")).arg("--version"));
    assert!(version.starts_with("memctl "), "{version}");

    // The man pages render (man reads the gzip itself) and the completion loads.
    for program in ["memd", "memctl"] {
        let page = inside(&root, &format!("/usr/share/man/man1/{program}.1.gz"));
        let text = mem_e2e::render_man_page(&page);
        assert!(text.contains("NAME") && text.contains(program), "{text}");

        let completion = inside(
            &root,
            &format!("/usr/share/bash-completion/completions/{program}"),
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}' && complete -p {program}",
                completion.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        let line = String::from_utf8_lossy(&out.stdout);
        assert!(
            line.starts_with("complete ") && line.trim_end().ends_with(program),
            "{line}"
        );
    }
}
