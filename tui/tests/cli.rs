//! The `memctl` binary's command line (this also makes `cargo test` build the binary that
//! the end-to-end tests in tests/ run).

use std::process::Command;

#[test]
fn help_lists_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_memctl"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "status",
        "strategies",
        "--spawn",
        "--json",
        "--read-only",
        "--socket",
    ] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
}
