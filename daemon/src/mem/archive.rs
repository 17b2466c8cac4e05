//! The memory's two logs kept bounded: `decisions.jsonl` and `core_memory_updates.txt`
//! are archived when they pass a size or an age (`[mem] decision_log_max_bytes`,
//! `text_log_max_bytes`, `log_max_age_days`), archives are compressed (gzip) and, past
//! `archive_keep_days`, deleted.
//!
//! - Archiving is a rename, under the memory's write lock, so no line is lost or split:
//!   `decisions.jsonl` becomes `decisions.{YYYYMMDDTHHMMSS.mmm}.jsonl`.
//! - Compressing is slow (seconds for 64 MiB), so it runs on a thread of its own, never
//!   holding the write lock: the archive is written to `….gz.tmp`, synced, renamed to
//!   `….gz`, then the plain archive is removed. Cut short, the plain archive is still
//!   there and the next pass (at start, or the next archive) compresses it again.
//! - The lines are archived as they are on disk: an encrypted memory's archives hold
//!   encrypted records (a key rotation re-encrypts them like the logs).
//! - The start reads the newest decisions from the log and, when it is shorter than the
//!   window, from the newest archives: archiving never shrinks what memd loads.

use chrono::{DateTime, NaiveDateTime, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One of the memory's two logs, and how its archives are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Log {
    /// The log's file name (and its records' kind for encryption).
    pub file: &'static str,
    prefix: &'static str,
    suffix: &'static str,
}

pub const TEXT: Log = Log {
    file: super::store::TEXT_LOG,
    prefix: "core_memory_updates.",
    suffix: ".txt",
};

pub const DECISIONS: Log = Log {
    file: super::store::DECISIONS,
    prefix: "decisions.",
    suffix: ".jsonl",
};

const STAMP: &str = "%Y%m%dT%H%M%S%.3f";
const GZ: &str = ".gz";
const TMP: &str = ".tmp";

/// How big and how old the logs may grow, and how long archives are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub text_max_bytes: u64,
    pub decisions_max_bytes: u64,
    /// A log whose first record is older than this is archived at the next append.
    pub max_age: Option<chrono::Duration>,
    /// Archives older than this (by the time in their name) are deleted.
    pub keep: Option<chrono::Duration>,
}

pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            text_max_bytes: DEFAULT_MAX_BYTES,
            decisions_max_bytes: DEFAULT_MAX_BYTES,
            max_age: Some(chrono::Duration::days(30)),
            keep: Some(chrono::Duration::days(365)),
        }
    }
}

impl Limits {
    pub fn max_bytes(&self, log: Log) -> u64 {
        if log == DECISIONS {
            self.decisions_max_bytes
        } else {
            self.text_max_bytes
        }
    }
}

/// An archive of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub path: PathBuf,
    /// When it was archived (from its name).
    pub at: DateTime<Utc>,
    pub compressed: bool,
}

impl Log {
    /// The archive's path for a log archived at `at`.
    pub fn archive_path(self, dir: &Path, at: DateTime<Utc>) -> PathBuf {
        dir.join(format!(
            "{}{}{}",
            self.prefix,
            at.format(STAMP),
            self.suffix
        ))
    }

    /// An archive's time and whether it is compressed, from its file name.
    fn parse(self, name: &str) -> Option<(DateTime<Utc>, bool)> {
        let rest = name.strip_prefix(self.prefix)?;
        let (rest, compressed) = match rest.strip_suffix(GZ) {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let stamp = rest.strip_suffix(self.suffix)?;
        let at = NaiveDateTime::parse_from_str(stamp, STAMP).ok()?.and_utc();
        Some((at, compressed))
    }

    /// The log's archives, oldest first.
    pub fn archives(self, dir: &Path) -> std::io::Result<Vec<Archive>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if let Some((at, compressed)) = self.parse(&name.to_string_lossy()) {
                found.push(Archive {
                    path: entry.path(),
                    at,
                    compressed,
                });
            }
        }
        found.sort_by_key(|a| (a.at, a.compressed));
        // Compressed but not yet removed (a pass under way, or cut short): the plain one
        // is the whole truth until then.
        found.dedup_by_key(|a| a.at);
        Ok(found)
    }
}

/// The lines of a log or an archive, decompressed when it is gzip.
pub fn reader(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path)?;
    Ok(if is_gz(path) {
        Box::new(BufReader::new(GzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// Writes `path` (0600) as a log or an archive is written: gzip when its name says so.
/// `finish` flushes, compresses the end and syncs.
pub struct Writer {
    inner: WriterKind,
}

enum WriterKind {
    Plain(std::io::BufWriter<std::fs::File>),
    Gz(GzEncoder<std::io::BufWriter<std::fs::File>>),
}

impl Writer {
    /// `path` is created (truncated); `gzip` says whether its content is compressed.
    pub fn create(path: &Path, gzip: bool) -> std::io::Result<Writer> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        let buffered = std::io::BufWriter::new(file);
        Ok(Writer {
            inner: if gzip {
                WriterKind::Gz(GzEncoder::new(buffered, Compression::default()))
            } else {
                WriterKind::Plain(buffered)
            },
        })
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.inner {
            WriterKind::Plain(w) => w.write_all(bytes),
            WriterKind::Gz(w) => w.write_all(bytes),
        }
    }

    pub fn finish(self) -> std::io::Result<()> {
        let buffered = match self.inner {
            WriterKind::Plain(w) => w,
            WriterKind::Gz(w) => w.finish()?,
        };
        buffered
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()
    }
}

pub fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Renames the log to a new archive (the caller holds the write lock and has synced it).
pub fn archive_now(dir: &Path, log: Log, now: DateTime<Utc>) -> std::io::Result<PathBuf> {
    let archive = log.archive_path(dir, now);
    std::fs::rename(dir.join(log.file), &archive)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(archive)
}

/// What a pass over the archives did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tidied {
    pub compressed: usize,
    pub deleted: usize,
}

/// Compresses each plain archive of both logs, deletes the archives older than `keep`,
/// and removes what an earlier pass cut short left (`….gz.tmp`).
pub fn tidy(dir: &Path, limits: &Limits, now: DateTime<Utc>) -> std::io::Result<Tidied> {
    let mut done = Tidied::default();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(".gz.tmp") {
            std::fs::remove_file(&path)?;
        }
    }
    for log in [DECISIONS, TEXT] {
        for archive in log.archives(dir)? {
            if limits.keep.is_some_and(|keep| archive.at < now - keep) {
                std::fs::remove_file(&archive.path)?;
                done.deleted += 1;
            } else if !archive.compressed {
                compress(&archive.path)?;
                done.compressed += 1;
            }
        }
    }
    if done != Tidied::default() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(done)
}

/// `x` -> `x.gz` (written aside, synced, renamed), then `x` removed. A compressed copy
/// already there (a pass cut short after its rename) is replaced: `x` is the whole truth.
fn compress(path: &Path) -> std::io::Result<()> {
    let gz = PathBuf::from(format!("{}{GZ}", path.display()));
    let tmp = PathBuf::from(format!("{}{TMP}", gz.display()));
    let mut input = std::fs::File::open(path)?;
    let mut out = Writer::create(&tmp, true)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
    }
    out.finish()?;
    std::fs::rename(&tmp, &gz)?;
    std::fs::remove_file(path)
}

/// The last whole lines of an archive, at most `max` bytes of them.
pub fn tail_of(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    if !is_gz(path) {
        return crate::linelog::read_tail(path, max);
    }
    // A gzip stream is read from its start; only the last `max` bytes are kept.
    let mut reader = reader(path)?;
    let mut kept: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        kept.extend(&buf[..n]);
        let excess = kept.len().saturating_sub(max as usize);
        kept.drain(..excess);
    }
    let mut bytes: Vec<u8> = kept.into();
    if bytes.len() as u64 == max {
        // Cut at a line's start: drop the partial first line.
        match bytes.iter().position(|b| *b == b'\n') {
            Some(i) => {
                bytes.drain(..=i);
            }
            None => bytes.clear(),
        }
    }
    Ok(bytes)
}

/// When a log's first record was written: the text log's `[YYYY-MM-DD HH:MM:SS]` stamp, a
/// decision's `at` or an outcome's `closed_at`. `None` for an empty or unreadable start.
pub fn first_record_at(first_record: &[u8]) -> Option<DateTime<Utc>> {
    let text = std::str::from_utf8(first_record).ok()?;
    if let Some(stamp) = text.strip_prefix('[').and_then(|t| t.get(..19)) {
        return NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|t| t.and_utc());
    }
    let first_line = text.lines().next()?;
    let v: serde_json::Value = serde_json::from_str(first_line).ok()?;
    v.get("at")
        .or_else(|| v.get("closed_at"))
        .and_then(|t| t.as_str())
        .and_then(|t| t.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn archives_are_named_found_compressed_and_deleted_past_their_age() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let lines: String = (0..2000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        for day in ["2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"] {
            std::fs::write(DECISIONS.archive_path(d, at(day)), &lines).unwrap();
        }
        std::fs::write(TEXT.archive_path(d, at("2026-06-02T00:00:00Z")), "[x] y\n").unwrap();
        std::fs::write(d.join("decisions.jsonl"), "{}\n").unwrap();
        std::fs::write(d.join("decisions.20260101T000000.000.jsonl.gz.tmp"), "torn").unwrap();
        assert_eq!(DECISIONS.archives(d).unwrap().len(), 2);

        let limits = Limits {
            keep: Some(chrono::Duration::days(100)),
            ..Limits::default()
        };
        let done = tidy(d, &limits, at("2026-06-10T00:00:00Z")).unwrap();
        assert_eq!(
            done,
            Tidied {
                compressed: 2,
                deleted: 1
            }
        );
        let archives = DECISIONS.archives(d).unwrap();
        assert_eq!(archives.len(), 1);
        assert!(archives[0].compressed && archives[0].at == at("2026-06-01T00:00:00Z"));
        let mut back = String::new();
        reader(&archives[0].path)
            .unwrap()
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, lines);
        assert!(std::fs::metadata(&archives[0].path).unwrap().len() < lines.len() as u64 / 3);
        // The last whole lines of a compressed archive.
        let tail = tail_of(&archives[0].path, 30).unwrap();
        assert_eq!(tail, b"{\"n\":1998}\n{\"n\":1999}\n");
        assert_eq!(
            tail_of(&archives[0].path, 1 << 20).unwrap(),
            lines.as_bytes()
        );
        // Nothing else touched; nothing left over.
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "core_memory_updates.20260602T000000.000.txt.gz",
                "decisions.20260601T000000.000.jsonl.gz",
                "decisions.jsonl"
            ]
        );
        // A second pass has nothing to do.
        assert_eq!(
            tidy(d, &limits, at("2026-06-10T00:00:00Z")).unwrap(),
            Tidied::default()
        );
    }

    #[test]
    fn a_logs_first_record_time_is_read_from_either_log() {
        assert_eq!(
            first_record_at(b"[2026-11-22 10:00:00] Strategy: x - Decision: BUY\n"),
            Some(at("2026-11-22T10:00:00Z"))
        );
        assert_eq!(
            first_record_at(b"{\"kind\":\"decision\",\"at\":\"2026-11-22T10:00:00Z\"}\n"),
            Some(at("2026-11-22T10:00:00Z"))
        );
        assert_eq!(
            first_record_at(b"{\"kind\":\"outcome\",\"closed_at\":\"2026-11-23T10:00:00Z\"}\n"),
            Some(at("2026-11-23T10:00:00Z"))
        );
        assert_eq!(first_record_at(b""), None);
        assert_eq!(first_record_at(b"garbage"), None);
    }
}
