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

/// Writes `what` for the command line `command` to `out`.
pub fn generate(
    mut command: clap::Command,
    what: Generated,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    use clap_complete::Shell;
    let name = command.get_name().to_string();
    let shell = match what {
        Generated::Man => return clap_mangen::Man::new(command).render(out),
        Generated::Bash => Shell::Bash,
        Generated::Zsh => Shell::Zsh,
        Generated::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, name, out);
    Ok(())
}
