//! memctl as a library: the terminal UI's state, drawing and connection, so that the
//! benchmarks (and the binary) share them.
#![forbid(unsafe_code)]

pub mod fleet;
pub mod text;
pub mod ui;

use std::path::PathBuf;

/// memctl's config directory: `$XDG_CONFIG_HOME/memctl` (an absolute `XDG_CONFIG_HOME`,
/// as the XDG spec wants), else `$HOME/.config/memctl`. Holds `keys.toml` and `fleet.toml`.
pub fn config_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| {
        let path = PathBuf::from(v);
        path.is_absolute().then_some(path)
    };
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|home| home.join(".config"))
        })?;
    Some(base.join("memctl"))
}
