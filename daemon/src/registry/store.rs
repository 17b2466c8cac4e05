//! Files of the registry: where they are, and reading and writing them safely.
//!
//! Whole files are written with [`crate::datadir::write_atomic`] (temporary file, fsync,
//! rename, fsync of the directory). Appends are whole lines written with one `write_all`
//! and `fdatasync`ed before the caller is answered; a torn last line left by a crash is
//! cut off (and reported) the next time the file is opened for appending.

use anyhow::Context;
use mem_protocol::strategy::{StrategyDocument, StrategyId};
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tracing::warn;

/// The registry's directories and files.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub metadata: PathBuf,
    pub performance: PathBuf,
    pub versions: PathBuf,
    pub parameters: PathBuf,
    pub relationships: PathBuf,
    pub audit: PathBuf,
}

impl Paths {
    pub fn new(root: &Path) -> Paths {
        Paths {
            root: root.to_path_buf(),
            metadata: root.join("metadata"),
            performance: root.join("performance"),
            versions: root.join("versions"),
            parameters: root.join("parameters"),
            relationships: root.join("relationships.jsonl"),
            audit: root.join("audit.jsonl"),
        }
    }

    pub fn create_dirs(&self) -> anyhow::Result<()> {
        for dir in [
            &self.root,
            &self.metadata,
            &self.performance,
            &self.versions,
            &self.parameters,
        ] {
            crate::datadir::ensure_dir(dir, 0o750)?;
        }
        Ok(())
    }

    /// `metadata/{id}.json`: the id is a UUID, so the path cannot leave the directory.
    pub fn metadata_file(&self, id: StrategyId) -> PathBuf {
        self.metadata.join(format!("{id}.json"))
    }

    pub fn trades_file(&self, id: StrategyId) -> PathBuf {
        self.performance.join(format!("{id}.jsonl"))
    }

    /// The seed's Python registry wrote trades here; read, never written.
    pub fn legacy_trades_file(&self, id: StrategyId) -> PathBuf {
        self.performance.join(format!("{id}_trades.jsonl"))
    }

    pub fn parameters_file(&self, id: StrategyId) -> PathBuf {
        self.parameters.join(format!("{id}.jsonl"))
    }

    /// `versions/{id}/`; a version string is checked as semver before it reaches a path.
    pub fn versions_dir(&self, id: StrategyId) -> PathBuf {
        self.versions.join(id.to_string())
    }
}

/// A fast hash of a file's bytes.
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The bytes a document is written as.
pub fn document_bytes(doc: &StrategyDocument) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(doc).expect("documents serialize");
    bytes.push(b'\n');
    bytes
}

/// Writes a document crash-safely; returns the hash of what was written.
pub fn write_document(path: &Path, doc: &StrategyDocument) -> anyhow::Result<u64> {
    let bytes = document_bytes(doc);
    crate::datadir::write_atomic(path, &bytes, 0o640)?;
    Ok(content_hash(&bytes))
}

/// An append-only JSON-lines file.
pub struct AppendFile {
    file: File,
    pub path: PathBuf,
}

impl AppendFile {
    /// Opens (creating with `mode`) for appending, cutting a torn last line first.
    pub fn open(path: &Path, mode: u32) -> anyhow::Result<AppendFile> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(mode)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                let keep = last_newline_end(&mut file, len)?;
                warn!(file = %path.display(), dropped_bytes = len - keep, "cut a torn last line left by a crash");
                file.set_len(keep)?;
                file.sync_all()?;
            }
        }
        Ok(AppendFile {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends whole lines (each ending in `\n`) and waits until they are on disk. On
    /// failure (a full disk writes part of the lines) the file is cut back to where it
    /// was: a partial line would otherwise swallow the next append's first line.
    pub fn append_durable(&mut self, lines: &[u8]) -> anyhow::Result<u64> {
        debug_assert!(lines.is_empty() || lines.ends_with(b"\n"));
        let offset = self.file.seek(SeekFrom::End(0))?;
        let written = self
            .file
            .write_all(lines)
            .with_context(|| format!("cannot append to {}", self.path.display()))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .with_context(|| format!("cannot sync {}", self.path.display()))
            });
        if let Err(e) = written {
            if let Err(cut) = self.file.set_len(offset) {
                warn!(file = %self.path.display(), error = %cut, "cannot cut back a failed append; the next open cuts the torn line");
            }
            return Err(e);
        }
        Ok(offset)
    }
}

/// The length of the file up to and including its last newline.
fn last_newline_end(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
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

/// Reads the complete lines of a JSON-lines file, skipping (and reporting) lines that do
/// not parse; a torn last line is expected after a crash and ignored.
pub fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() {
        warn!(file = %path.display(), bytes = bytes.len() - complete, "ignoring a torn last line");
    }
    let mut out = Vec::new();
    for (n, line) in bytes[..complete].split(|b| *b == b'\n').enumerate() {
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
    fn a_torn_tail_is_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        let mut f = AppendFile::open(&path, 0o600).unwrap();
        f.append_durable(b"{\"a\":3}\n").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"
        );
        let values: Vec<serde_json::Value> = read_lines(&path).unwrap();
        assert_eq!(values.len(), 3);
    }
}
