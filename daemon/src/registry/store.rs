//! Files of the registry: where they are, and reading and writing them safely.
//!
//! Whole files are written with [`crate::datadir::write_atomic`] (temporary file, fsync,
//! rename, fsync of the directory). The logs are [`crate::linelog`]s, appended with
//! [`crate::linelog::Durability::Sync`]: on disk before the caller is answered.

use mem_protocol::strategy::{StrategyDocument, StrategyId};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

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
