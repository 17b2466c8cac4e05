//! Every `memctl` command the README shows works when pasted: each line of its `sh` blocks
//! that runs memctl is run, in the README's order, by the real memctl against a real memd
//! on fresh data, with the real Freqtrade on PATH and the mock exchange as the docs set it
//! up (the README's readers without internet do the same). Left out, and why: `memctl
//! setup freqtrade` (it installs from PyPI; the tests' Freqtrade stands for it) and
//! `memctl --spawn` (this test starts memd itself). `memctl daemon stop`, which the README
//! names in its text, ends the test.
//!
//! Needs `MEMD_TEST_FREQTRADE`; without it the test says it is skipped.

use mem_e2e::{Daemon, bin, describe, freqtrade, isolated_command, mock_exchange};
use std::process::Stdio;
use std::time::Duration;

/// The memctl commands of the README's `sh` blocks, in order, as argument lists (a
/// `a && b` line gives two).
fn readme_commands() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = line.split(" # ").next().unwrap_or(line).trim();
        for part in code.split("&&").map(str::trim) {
            let Some(args) = part.strip_prefix("memctl ") else {
                continue;
            };
            assert!(
                !args.contains(['"', '\'', '$', '|', '>']),
                "README line {line:?}: this test splits memctl lines on spaces only; teach it quoting"
            );
            commands.push(args.split_whitespace().map(str::to_string).collect());
        }
    }
    commands
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_memctl_command_of_the_readme_works_when_pasted() {
    let Some(freqtrade) = freqtrade::binary() else {
        return;
    };
    let commands = readme_commands();
    assert!(
        commands.len() >= 10,
        "the README's memctl lines were not found: {commands:?}"
    );
    // The README deploys a seed bot on its own port: other tests doing so take turns.
    let _ports = mem_e2e::seed::preferred_ports().await;
    let mock = mock_exchange::start(&[]).await;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![freqtrade.parent().unwrap().to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    let path = std::env::join_paths(paths).unwrap();
    let mut daemon = Daemon::start_with(|cmd| {
        cmd.env("PATH", &path);
    });
    // The docs' offline setup: the mock's exchange section in <data>/freqtrade/overrides.json.
    std::fs::write(
        daemon.data_dir.join("freqtrade/overrides.json"),
        mock.memd_overrides().to_string(),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap(); // where `memctl backup` writes
    for args in commands {
        match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["setup", "freqtrade"] | ["--spawn"] => continue,
            ["logs", _, "-f"] => {
                // Following never ends by itself: the first lines are enough.
                let mut child = isolated_command(&bin("memctl"), daemon.root.path())
                    .env("MEMD_SOCKET", &daemon.socket)
                    .args(&args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "`memctl {}` ended instead of following",
                    args.join(" ")
                );
                child.kill().unwrap();
                let output = child.wait_with_output().unwrap();
                assert!(
                    !output.stdout.is_empty(),
                    "`memctl {}` printed no line",
                    args.join(" ")
                );
                continue;
            }
            _ => {}
        }
        let output = isolated_command(&bin("memctl"), daemon.root.path())
            .env("MEMD_SOCKET", &daemon.socket)
            .current_dir(work.path())
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "`memctl {}` failed:\n{}",
            args.join(" "),
            describe(&output)
        );
    }
    let stopped = daemon.memctl(&["daemon", "stop"]);
    assert!(stopped.status.success(), "{}", describe(&stopped));
    assert!(daemon.wait_exit(Duration::from_secs(5)).is_some());
    mock.shutdown().await;
}
