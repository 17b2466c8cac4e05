//! What an installed memd ships besides its binaries: the man pages and shell completions
//! that `memd generate` and `memctl generate` print (issue 28), rendered by the real
//! `man` and loaded by the real bash.

use mem_e2e::{bin, describe};
use std::process::Command;

fn generated(program: &str, what: &str) -> String {
    let out = Command::new(bin(program))
        .args(["generate", what])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} generate {what}: {}",
        describe(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn both_man_pages_render_with_their_options_and_subcommands() {
    for (program, option, subcommand) in [
        ("memd", "--check-config", "setup-freqtrade"),
        ("memctl", "--read-only", "deploy"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join(format!("{program}.1"));
        std::fs::write(&page, generated(program, "man")).unwrap();
        let text = mem_e2e::render_man_page(&page);
        for expected in ["NAME", "SYNOPSIS", program, option, subcommand] {
            assert!(
                text.contains(expected),
                "{program}.1 lacks {expected:?}:\n{text}"
            );
        }
    }
}

#[test]
fn bash_completes_memctls_subcommands_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("memctl.bash");
    std::fs::write(&script, generated("memctl", "bash")).unwrap();
    // What bash offers after `memctl dep` and after `memctl deploy --l`.
    let out = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p memctl && \
             COMP_WORDS=(memctl dep) COMP_CWORD=1 COMP_LINE='memctl dep' COMP_POINT=10 && _memctl memctl dep memctl && echo \"1:${{COMPREPLY[*]}}\" && \
             COMP_WORDS=(memctl deploy --l) COMP_CWORD=2 COMP_LINE='memctl deploy --l' COMP_POINT=17 && _memctl memctl --l deploy && echo \"2:${{COMPREPLY[*]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |n: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(n))
            .unwrap_or_else(|| panic!("no {n} line in {text}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let after_dep = line("1:");
    assert!(
        after_dep.contains(&"deploy".into()) && after_dep.contains(&"deployed".into()),
        "{after_dep:?}"
    );
    assert!(line("2:").contains(&"--live".into()), "{text}");
}

#[test]
fn zsh_and_fish_scripts_name_the_command_and_its_subcommands() {
    for program in ["memd", "memctl"] {
        let zsh = generated(program, "zsh");
        assert!(
            zsh.starts_with(&format!("#compdef {program}")),
            "{zsh:.200}"
        );
        let fish = generated(program, "fish");
        assert!(
            fish.contains(&format!("complete -c {program}")),
            "{fish:.200}"
        );
    }
    assert!(generated("memctl", "fish").contains("-a \"deploy\""));
}
