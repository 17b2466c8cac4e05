//! The append-only line log every subsystem writes its history with: the registry's
//! trade, audit, parameter and relationship logs, the memory's decision logs, the jobs'
//! history; the backup copies them by its rules.
//!
//! Invariants, one policy for all:
//! - Lines are appended whole, with one `write_all`; a failed append (a full disk writes
//!   part of the lines) is cut back to where it began.
//! - A torn last line (a crash mid-append) is cut off, and reported, before the next
//!   append, and never read: readers see whole lines only.
//! - [`Durability::Sync`] appends are on disk (`fdatasync`) before the caller is
//!   answered; [`Durability::Batched`] ones wait for the writer's next sync.

use serde::de::DeserializeOwned;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tracing::warn;

/// When an append reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fdatasync` before returning: the line survives a crash once the caller is answered.
    Sync,
    /// Left to the OS until the writer syncs (a fast replay logs thousands a second).
    Batched,
}

/// A line log open for appending.
pub struct LineLog {
    file: File,
    path: PathBuf,
}

fn at(path: &Path, what: &str, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

impl LineLog {
    /// Opens `path` for appending (created with `mode`), cutting a torn last line first.
    pub fn open(path: &Path, mode: u32) -> std::io::Result<LineLog> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(mode)
            .open(path)
            .map_err(|e| at(path, "open", e))?;
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                let keep = whole_len(&mut file, len)?;
                warn!(file = %path.display(), dropped_bytes = len - keep, "cut a torn last line left by a crash");
                file.set_len(keep).map_err(|e| at(path, "cut", e))?;
                file.sync_all()?;
            }
        }
        Ok(LineLog {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends whole lines (each ending in `\n`); answers the offset they start at. On
    /// failure the file is cut back to where it was: a partial line would otherwise
    /// swallow the next append's first line.
    pub fn append(&mut self, lines: &[u8], durability: Durability) -> std::io::Result<u64> {
        debug_assert!(lines.is_empty() || lines.ends_with(b"\n"));
        let offset = self.file.seek(SeekFrom::End(0))?;
        let written = self
            .file
            .write_all(lines)
            .map_err(|e| at(&self.path, "append to", e))
            .and_then(|()| match durability {
                Durability::Sync => self.file.sync_data().map_err(|e| at(&self.path, "sync", e)),
                Durability::Batched => Ok(()),
            });
        if let Err(e) = written {
            if let Err(cut) = self.file.set_len(offset) {
                warn!(file = %self.path.display(), error = %cut, "cannot cut back a failed append; the next open cuts the torn line");
            }
            return Err(e);
        }
        Ok(offset)
    }

    /// Flushes batched appends to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

/// Appends whole lines to the log at `path` (opened, appended, closed: for logs written
/// now and then).
pub fn append(path: &Path, mode: u32, lines: &[u8], durability: Durability) -> std::io::Result<()> {
    LineLog::open(path, mode)?
        .append(lines, durability)
        .map(drop)
}

/// Where [`roll_aside`] moves a log past its size, until [`archive_rolled`] compresses it.
pub fn rolled_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".rolled");
    path.with_file_name(name)
}

/// The name prefix and suffix of a log's archives: `actions.jsonl` is archived as
/// `actions.{YYYYMMDDTHHMMSSZ}.jsonl.gz`.
fn archive_affixes(path: &Path) -> (String, String) {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let ext = path.extension().unwrap_or_default().to_string_lossy();
    (format!("{stem}."), format!(".{ext}.gz"))
}

/// Renames the log at `path` aside when it is longer than `max_bytes` (answers whether it
/// did); the next append starts a new file. The caller holds its writer's lock and reopens
/// the log it holds open; then [`archive_rolled`] compresses what was set aside, outside
/// the lock. A log set aside earlier and not yet archived (a crash between the two) is
/// left as it is: nothing is renamed over it.
pub fn roll_aside(path: &Path, max_bytes: u64) -> std::io::Result<bool> {
    let rolled = rolled_path(path);
    if rolled.exists() || std::fs::metadata(path).map_or(true, |m| m.len() <= max_bytes) {
        return Ok(false);
    }
    std::fs::rename(path, &rolled).map_err(|e| at(path, "roll over", e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(true)
}

/// Compresses the log [`roll_aside`] set aside (if any) into a gzip archive beside it
/// (written whole and fsynced before the set-aside file is removed: a crash leaves one or
/// the other), then removes the oldest archives beyond `keep`. Answers the archive
/// written, if one was.
pub fn archive_rolled(
    path: &Path,
    keep: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Option<PathBuf>> {
    use std::io::BufReader;
    let rolled = rolled_path(path);
    let (prefix, suffix) = archive_affixes(path);
    let mut written = None;
    if let Ok(file) = File::open(&rolled) {
        let mode = std::os::unix::fs::PermissionsExt::mode(&file.metadata()?.permissions());
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::copy(&mut BufReader::new(file), &mut encoder)?;
        let bytes = encoder.finish()?;
        let archive = path.with_file_name(format!(
            "{prefix}{}{suffix}",
            now.format("%Y%m%dT%H%M%S%.3fZ")
        ));
        crate::datadir::write_atomic(&archive, &bytes, mode & 0o777)?;
        std::fs::remove_file(&rolled).map_err(|e| at(&rolled, "remove", e))?;
        written = Some(archive);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut archives: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| at(dir, "list", e))?
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with(&suffix)
        })
        .map(|e| e.path())
        .collect();
    // The names sort by time.
    archives.sort();
    let excess = archives.len().saturating_sub(keep);
    for old in &archives[..excess] {
        std::fs::remove_file(old).map_err(|e| at(old, "remove", e))?;
    }
    Ok(written)
}

/// The length of `file` (`len` bytes long) up to and including its last newline: its
/// whole lines.
pub fn whole_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut end = len;
    let mut buf = vec![0u8; (64 * 1024).min(len.max(1) as usize)];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The whole lines of the log at `path` (none when it does not exist); a torn last line
/// is left out and reported.
pub fn read_whole(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at(path, "read", e)),
    };
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        warn!(file = %path.display(), bytes = bytes.len() - whole, "ignoring a torn last line");
        bytes.truncate(whole);
    }
    Ok(bytes)
}

/// The whole lines within the last `max` bytes of the log at `path` (the first, cut in
/// the middle, left out).
pub fn read_tail(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at(path, "open", e)),
    };
    let len = file.metadata()?.len();
    let end = whole_len(&mut file, len)?;
    let start = end.saturating_sub(max);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = vec![0u8; (end - start) as usize];
    file.read_exact(&mut bytes)?;
    if start > 0 {
        let first = bytes.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes.drain(..first);
    }
    Ok(bytes)
}

/// The non-blank lines of whole-line `bytes`.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
}

/// The JSON lines of the log at `path`, skipping (and reporting) lines that do not parse.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<Vec<T>> {
    let bytes = read_whole(path)?;
    let mut out = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(value) => out.push(value),
            Err(e) => {
                warn!(file = %path.display(), line = n + 1, error = %e, "skipping an unreadable line")
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_cut_before_appending_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        assert_eq!(read_whole(&path).unwrap(), b"{\"a\":1}\n{\"a\":2}\n");
        let read: Vec<serde_json::Value> = read_json(&path).unwrap();
        assert_eq!(read.len(), 2);
        append(&path, 0o600, b"{\"a\":3}\n", Durability::Sync).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let fresh = dir.path().join("fresh.jsonl");
        append(&fresh, 0o600, b"x\n", Durability::Batched).unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_file_with_no_newline_is_all_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"half a line").unwrap();
        assert!(read_whole(&path).unwrap().is_empty());
        let mut log = LineLog::open(&path, 0o600).unwrap();
        assert_eq!(log.append(b"one\n", Durability::Sync).unwrap(), 0);
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
    }

    #[test]
    fn the_tail_holds_whole_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"first\nsecond\nthird\nfourth").unwrap();
        assert_eq!(read_tail(&path, 1000).unwrap(), b"first\nsecond\nthird\n");
        // The last 10 whole-line bytes are "d\nthird\n": the cut "d" is left out.
        assert_eq!(read_tail(&path, 10).unwrap(), b"third\n");
        assert!(read_tail(&dir.path().join("none"), 10).unwrap().is_empty());
        let all: Vec<&[u8]> = lines(b"a\n\n b\n").collect();
        assert_eq!(all, vec![&b"a"[..], &b" b"[..]]);
    }

    #[test]
    fn a_log_past_its_size_is_archived_compressed_and_the_newest_archives_kept() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actions.jsonl");
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        append(&path, 0o640, b"{\"a\":1}\n", Durability::Sync).unwrap();
        // Within its size: nothing happens.
        assert!(!roll_aside(&path, 1024).unwrap());
        assert_eq!(
            archive_rolled(&path, 2, at("2026-12-01T00:00:00Z")).unwrap(),
            None
        );
        let mut archives = Vec::new();
        for (i, when) in [
            "2026-12-01T01:00:00Z",
            "2026-12-01T02:00:00Z",
            "2026-12-01T03:00:00Z",
        ]
        .into_iter()
        .enumerate()
        {
            append(
                &path,
                0o640,
                format!("{{\"roll\":{i}}}\n").as_bytes(),
                Durability::Sync,
            )
            .unwrap();
            assert!(roll_aside(&path, 4).unwrap());
            // A crash here: the set-aside file is not replaced by a second roll.
            append(&path, 0o640, b"{\"next\":1}\n", Durability::Sync).unwrap();
            assert!(!roll_aside(&path, 4).unwrap());
            std::fs::remove_file(&path).unwrap();
            archives.push(archive_rolled(&path, 2, at(when)).unwrap().unwrap());
        }
        assert!(
            !archives[0].exists(),
            "the oldest archive beyond 2 is removed"
        );
        assert!(archives[1].exists() && archives[2].exists());
        assert_eq!(
            archives[2].file_name().unwrap(),
            "actions.20261201T030000.000Z.jsonl.gz"
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&archives[2]).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"roll\":2}\n");
        assert!(!rolled_path(&path).exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archives[2])
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}
