//! `memd generate ...` and `memctl generate ...`: the man page and the shell completions of
//! a command line, made from its clap definition, so they never drift from `--help`. The
//! Debian package ships what these print.

use std::io::Write;

/// What `generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    /// The man page (roff, section 1): `man -l <(memctl generate man)`.
    Man,
    /// A bash completion script: `source <(memctl generate bash)`.
    Bash,
    /// A zsh completion script (`_memctl`, for a directory of `$fpath`).
    Zsh,
    /// A fish completion script (for `~/.config/fish/completions/`).
    Fish,
}

/// Writes `what` for the command line `command` to `out` (made whole in memory first: a
/// reader that goes away early is a write error, not a panic in the generator).
pub fn generate(
    mut command: clap::Command,
    what: Generated,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    use clap_complete::Shell;
    let mut text = Vec::new();
    let shell = match what {
        Generated::Man => None,
        Generated::Bash => Some(Shell::Bash),
        Generated::Zsh => Some(Shell::Zsh),
        Generated::Fish => Some(Shell::Fish),
    };
    match shell {
        None => clap_mangen::Man::new(command).render(&mut text)?,
        Some(shell) => {
            let name = command.get_name().to_string();
            clap_complete::generate(shell, &mut command, name, &mut text);
        }
    }
    out.write_all(&text)?;
    out.flush()
}

/// Prints `what` for `command` on stdout, for a binary's `generate` subcommand: its exit
/// status (a failure said on stderr).
pub fn print(command: clap::Command, what: Generated) -> std::process::ExitCode {
    let name = command.get_name().to_string();
    match generate(command, what, &mut std::io::stdout()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: cannot print it: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
