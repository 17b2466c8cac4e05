//! The data directory: creating it, locking it against a second daemon, and seeding a
//! new one with the built-in strategies.
//!
//! The default data of the repository's `data/` directory is embedded in the binary, so
//! an installed `memd` needs no checkout and a checkout is never written into: on the
//! first start with an empty registry, its files are copied into the chosen directory.

use anyhow::{Context, bail};
use include_dir::{Dir, include_dir};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The repository's `data/` directory, as it was at build time.
pub static DEFAULT_DATA: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../data");

/// Creates `dir` (and its parents) if missing; a directory created here gets `mode`.
pub fn ensure_dir(dir: &Path, mode: u32) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    // The umask may have removed bits; set exactly what was asked.
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))
}

/// An exclusive `flock` held for the life of the daemon. The file stays on disk (removing
/// lock files races); the kernel releases the lock when the process dies, even by SIGKILL.
#[derive(Debug)]
pub struct LockFile {
    _lock: Flock<File>,
    pub path: PathBuf,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is locked by another memd (pid {pid})", path.display())]
    Held { path: PathBuf, pid: String },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LockFile {
    /// Takes the lock at `path` without waiting, and writes our pid into it.
    pub fn acquire(path: &Path) -> Result<LockFile, LockError> {
        // A memd killed a moment ago can leave the lock held for a moment by a child it
        // had just forked (the lock goes with the child's copy of the descriptor until it
        // execs): when the memd named in the file is gone, try again for a while.
        let patience = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            match Self::try_acquire(path) {
                Err(LockError::Held { pid, .. })
                    if !pid_alive(&pid) && std::time::Instant::now() < patience =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn try_acquire(path: &Path) -> Result<LockFile, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, errno)) if errno == nix::errno::Errno::EWOULDBLOCK => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim().to_string();
                return Err(LockError::Held {
                    path: path.to_path_buf(),
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid
                    },
                });
            }
            Err((_, errno)) => return Err(io_err(errno.into())),
        };
        lock.set_len(0).map_err(io_err)?;
        lock.rewind().map_err(io_err)?;
        writeln!(lock, "{}", std::process::id()).map_err(io_err)?;
        Ok(LockFile {
            _lock: lock,
            path: path.to_path_buf(),
        })
    }
}

/// Whether `pid` (as a lock file holds it) names a live process.
fn pid_alive(pid: &str) -> bool {
    match pid.parse::<i32>() {
        Ok(pid) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok(),
        Err(_) => true,
    }
}

/// Copies the built-in registry into `registry_dir` when it has no `metadata/` yet.
/// Returns how many files were written.
pub fn seed_registry(registry_dir: &Path) -> anyhow::Result<usize> {
    if registry_dir.join("metadata").exists() {
        return Ok(0);
    }
    let Some(template) = DEFAULT_DATA.get_dir("strategy_registry") else {
        bail!("this memd binary was built without default registry data");
    };
    let mut written = 0;
    copy_tree(
        template,
        Path::new("strategy_registry"),
        registry_dir,
        &mut written,
    )?;
    Ok(written)
}

/// The built-in strategies' documents (what [`seed_registry`] copies as files), for a
/// registry in a database.
pub fn builtin_strategies() -> anyhow::Result<Vec<mem_protocol::strategy::StrategyDocument>> {
    let Some(metadata) = DEFAULT_DATA.get_dir("strategy_registry/metadata") else {
        bail!("this memd binary was built without default registry data");
    };
    metadata
        .files()
        .map(|f| {
            serde_json::from_slice(f.contents())
                .with_context(|| format!("built-in strategy {}", f.path().display()))
        })
        .collect()
}

fn copy_tree(
    dir: &Dir<'_>,
    strip: &Path,
    dest_root: &Path,
    written: &mut usize,
) -> anyhow::Result<()> {
    for file in dir.files() {
        let relative = file
            .path()
            .strip_prefix(strip)
            .expect("files live under their directory");
        let dest = dest_root.join(relative);
        if let Some(parent) = dest.parent() {
            ensure_dir(parent, 0o750)?;
        }
        write_atomic(&dest, file.contents(), 0o640)?;
        *written += 1;
    }
    for sub in dir.dirs() {
        copy_tree(sub, strip, dest_root, written)?;
    }
    Ok(())
}

/// Copies the built-in Freqtrade strategies and base configs into `data_dir/freqtrade`
/// when that directory does not exist yet. Returns how many files were written.
pub fn seed_freqtrade(data_dir: &Path) -> anyhow::Result<usize> {
    let dest = data_dir.join("freqtrade");
    if dest.exists() {
        return Ok(0);
    }
    let Some(template) = DEFAULT_DATA.get_dir("freqtrade") else {
        return Ok(0);
    };
    let mut written = 0;
    copy_tree(template, Path::new("freqtrade"), &dest, &mut written)?;
    Ok(written)
}

/// The memd mixin's module, relative to the data directory: the Python side of the bots'
/// MEM calls, beside the strategies that import it.
pub const MIXIN: &str = "freqtrade/strategies/memd_mixin.py";

/// Writes the built-in memd mixin ([`MIXIN`]) into `data_dir/freqtrade/strategies` when it
/// is missing there or differs: the module speaks this daemon's protocol, so a data
/// directory seeded by an earlier memd gets this one's (strategies are never touched).
/// Answers whether it wrote it; nothing without a strategies directory.
pub fn refresh_mixin(data_dir: &Path) -> anyhow::Result<bool> {
    let dir = data_dir.join("freqtrade/strategies");
    let Some(module) = DEFAULT_DATA.get_file(MIXIN) else {
        return Ok(false);
    };
    if !dir.is_dir() {
        return Ok(false);
    }
    let path = data_dir.join(MIXIN);
    if fs::read(&path).is_ok_and(|now| now == module.contents()) {
        return Ok(false);
    }
    write_atomic(&path, module.contents(), 0o640)?;
    Ok(true)
}

/// Copies the shipped candles into `data_dir/market` when that directory does not exist
/// yet. Returns how many files were written.
pub fn seed_market(data_dir: &Path) -> anyhow::Result<usize> {
    let dest = data_dir.join("market");
    if dest.exists() {
        return Ok(0);
    }
    let Some(template) = DEFAULT_DATA.get_dir("market") else {
        return Ok(0);
    };
    let mut written = 0;
    copy_tree(template, Path::new("market"), &dest, &mut written)?;
    Ok(written)
}

/// The bytes under `path`, files and directories alike (symlinks not followed).
pub fn disk_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| disk_bytes(&e.path())).sum())
        .unwrap_or(0)
}

/// Writes a whole file crash-safely: a temporary file in the same directory, fsync,
/// rename over the target, fsync the directory.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .context("a file to write has a parent directory")?;
    let name = path
        .file_name()
        .context("a file to write has a name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let _first = LockFile::acquire(&path).unwrap();
        // flock locks belong to the open file description, so a second open in the same
        // process conflicts just like another process would.
        match LockFile::acquire(&path) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("expected Held, got {other:?}"),
        }
    }

    /// What a memd killed while it forks a bot leaves: the lock still held (by the child's
    /// copy of the descriptor, until it execs) and the file naming the dead memd. Here the
    /// test holds the lock on a descriptor of its own, and names a pid that is gone.
    fn held_for_a_dead_memd(path: &Path) -> Flock<std::fs::File> {
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = gone.id();
        gone.wait().unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap();
        let mut held = Flock::lock(file, FlockArg::LockExclusiveNonblock).unwrap();
        writeln!(held, "{dead_pid}").unwrap();
        held
    }

    #[test]
    fn a_lock_whose_memd_is_gone_is_waited_for_until_its_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memd.lock");
        let held = held_for_a_dead_memd(&path);
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(400));
            drop(held);
        });
        let started = std::time::Instant::now();
        let lock = LockFile::acquire(&path).expect("taken once the holder let go");
        assert!(started.elapsed() >= std::time::Duration::from_millis(350));
        release.join().unwrap();
        let named = fs::read_to_string(&path).unwrap();
        assert_eq!(named.trim(), std::process::id().to_string());
        drop(lock);
    }

    #[test]
    fn a_lock_held_on_past_the_wait_is_refused_naming_the_memd_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memd.lock");
        let _held = held_for_a_dead_memd(&path);
        let named = fs::read_to_string(&path).unwrap().trim().to_string();
        let started = std::time::Instant::now();
        match LockFile::acquire(&path) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, named),
            other => panic!("expected Held, got {other:?}"),
        }
        // Waited its 3 s, no more.
        let waited = started.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(2900)
                && waited < std::time::Duration::from_secs(10),
            "{waited:?}"
        );
    }

    #[test]
    fn the_mixin_is_kept_as_this_memd_ships_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            !refresh_mixin(dir.path()).unwrap(),
            "no strategies directory"
        );
        ensure_dir(&dir.path().join("freqtrade/strategies"), 0o750).unwrap();
        assert!(refresh_mixin(dir.path()).unwrap());
        let path = dir.path().join(MIXIN);
        let shipped = fs::read(&path).unwrap();
        assert!(String::from_utf8_lossy(&shipped).contains("class MemdMixin"));
        assert!(!refresh_mixin(dir.path()).unwrap(), "already current");
        fs::write(&path, b"# an older mixin").unwrap();
        assert!(refresh_mixin(dir.path()).unwrap());
        assert_eq!(fs::read(&path).unwrap(), shipped);
    }

    #[test]
    fn seeding_copies_once() {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("reg");
        let n = seed_registry(&registry).unwrap();
        assert_eq!(n, fs::read_dir(registry.join("metadata")).unwrap().count());
        assert!(n >= 11);
        fs::remove_file(
            fs::read_dir(registry.join("metadata"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
        )
        .unwrap();
        assert_eq!(
            seed_registry(&registry).unwrap(),
            0,
            "an existing registry is never re-seeded"
        );
    }
}

/// A path a client gave (`relative`, or absolute), confined to `base`: no `..`, and
/// once symlinks are resolved it must still lie inside `base`. Client input never
/// reaches a file outside the directory it is meant for.
pub fn confined(base: &Path, given: &str) -> Result<PathBuf, String> {
    use std::path::Component;
    let path = Path::new(given);
    if given.is_empty() || given.contains('\0') {
        return Err(format!("{given:?} is not a file name"));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("{given:?} may not contain `..`"));
    }
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let base_real = fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    // A file that does not exist yet is judged by its parent.
    let real = fs::canonicalize(&joined).or_else(|_| {
        joined
            .parent()
            .map(fs::canonicalize)
            .unwrap_or_else(|| Ok(joined.clone()))
            .map(|parent| parent.join(joined.file_name().unwrap_or_default()))
    });
    match real {
        Ok(real) if real.starts_with(&base_real) => Ok(joined),
        _ => Err(format!(
            "{given:?} is outside {} (only files there may be named)",
            base.display()
        )),
    }
}

#[cfg(test)]
mod confined_tests {
    use super::*;

    #[test]
    fn client_paths_stay_inside_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("market");
        fs::create_dir_all(base.join("futures")).unwrap();
        fs::write(base.join("ETH_BTC-5m.csv"), "x").unwrap();
        assert_eq!(
            confined(&base, "ETH_BTC-5m.csv").unwrap(),
            base.join("ETH_BTC-5m.csv")
        );
        assert!(
            confined(&base, "futures/new.csv").is_ok(),
            "not there yet, parent inside"
        );
        let inside = base.join("ETH_BTC-5m.csv");
        assert!(
            confined(&base, inside.to_str().unwrap()).is_ok(),
            "absolute, inside"
        );
        for bad in ["../x", "futures/../../x", "/etc/passwd", "", "a\0b"] {
            let err = confined(&base, bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        // A symlink inside that points outside is refused.
        std::os::unix::fs::symlink("/etc", base.join("etc")).unwrap();
        assert!(confined(&base, "etc/passwd").is_err());
    }
}
