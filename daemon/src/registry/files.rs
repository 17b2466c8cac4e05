//! The registry on files, under one directory ([`Paths`]): `metadata/{id}.json`,
//! `versions/{id}/{semver}.json`, `parameters/{id}.jsonl`, `relationships.jsonl` (link
//! and unlink lines, replayed at start) and `audit.jsonl`. Trades stay in
//! [`super::trades`] for now.
//!
//! File-only concerns are inherent methods here, not in [`Store`]: the paths (backup, the
//! watcher) and reading one metadata file in full (a hand edit, the background check).

use super::backend::{
    Commit, DocumentWrite, Health, LinkWrite, Loaded, Stamp, Store, StoreError, VersionWrite,
};
use super::index::Record;
use super::store::{self, Paths};
use super::{shapes, validate};
use crate::linelog::{Durability, LineLog, read_json};
use anyhow::Context;
use mem_protocol::registry::{AuditEntry, ParameterChange, Relationship, VersionRecord};
use mem_protocol::strategy::{StrategyDocument, StrategyId};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tracing::{info, warn};

/// Threads reading metadata files at start-up: more than the cores, since a cold start
/// waits on the disk.
const LOAD_THREADS: usize = 8;

pub struct FileStore {
    paths: Paths,
    audit: Mutex<LineLog>,
    relationships: Mutex<LineLog>,
}

impl FileStore {
    /// Opens the registry's directory, creating what is missing.
    pub fn open(root: &Path) -> anyhow::Result<FileStore> {
        let paths = Paths::new(root);
        paths.create_dirs()?;
        Ok(FileStore {
            relationships: Mutex::new(LineLog::open(&paths.relationships, 0o640)?),
            audit: Mutex::new(LineLog::open(&paths.audit, 0o640)?),
            paths,
        })
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The metadata files, without hidden ones.
    pub fn metadata_files(&self) -> std::io::Result<Vec<PathBuf>> {
        Ok(std::fs::read_dir(&self.paths.metadata)?
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect())
    }

    /// Reads and checks one metadata file in full into an index record.
    pub fn check_file(&self, path: &Path) -> Result<Record, String> {
        load_record(path)
    }

    /// Loads a file that just changed on disk. One that fails is read again until its bytes
    /// stop changing: an editor or `cp` may be half-way through writing it (a truncated,
    /// empty file is the usual sight), and only a file that stays broken is reported.
    pub fn read_changed(&self, path: &Path) -> Result<Record, String> {
        let mut previous: Option<Vec<u8>> = None;
        for _ in 0..10 {
            let problem = match load_record(path) {
                Ok(record) => return Ok(record),
                Err(problem) => problem,
            };
            let bytes = std::fs::read(path).ok();
            if bytes.is_some() && bytes == previous {
                return Err(problem);
            }
            previous = bytes;
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        load_record(path)
    }

    /// Lists `metadata/`, deleting the temporary files of writes a crash cut short.
    fn list_metadata(&self) -> anyhow::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.paths.metadata)
            .with_context(|| format!("cannot list {}", self.paths.metadata.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".tmp-") {
                // A write cut short by a crash: the real file is intact, this is debris.
                let _ = std::fs::remove_file(entry.path());
                info!(file = %entry.path().display(), "removed the temporary file of an interrupted write");
            } else if !name.starts_with('.') {
                files.push(entry.path());
            }
        }
        Ok(files)
    }

    fn write_version(&self, write: &VersionWrite) -> Result<(), StoreError> {
        let (record, new) = match write {
            VersionWrite::New(record) => (record, true),
            VersionWrite::Replace(record) => (record, false),
        };
        let version = semver::Version::parse(&record.version_number)
            .map_err(|e| anyhow::anyhow!("version {:?}: {e}", record.version_number))?;
        let dir = self.paths.versions_dir(record.strategy_id);
        let path = dir.join(format!("{version}.json"));
        if new && path.exists() {
            return Err(StoreError::Conflict(format!(
                "version {version} of strategy {} already exists",
                record.strategy_id
            )));
        }
        crate::datadir::ensure_dir(&dir, 0o750)?;
        let mut bytes = serde_json::to_vec_pretty(record).expect("versions serialize");
        bytes.push(b'\n');
        crate::datadir::write_atomic(&path, &bytes, 0o640)?;
        Ok(())
    }

    fn append_parameter_change(&self, change: &ParameterChange) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(change)?;
        line.push(b'\n');
        LineLog::open(&self.paths.parameters_file(change.strategy_id), 0o640)?
            .append(&line, Durability::Sync)?;
        Ok(())
    }

    fn append_link(&self, write: &LinkWrite) -> anyhow::Result<()> {
        let (op, link) = match write {
            LinkWrite::Link(link) => (LinkOp::Link, link),
            LinkWrite::Unlink(link) => (LinkOp::Unlink, link),
        };
        let mut line = serde_json::to_vec(&RelationshipLine {
            op,
            link: link.clone(),
        })?;
        line.push(b'\n');
        self.relationships
            .lock()
            .expect("relationships lock")
            .append(&line, Durability::Sync)?;
        Ok(())
    }

    fn append_audit(&self, entry: &AuditEntry) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        self.audit
            .lock()
            .expect("audit lock")
            .append(&line, Durability::Sync)?;
        Ok(())
    }

    /// Replays `relationships.jsonl`.
    fn read_relations(&self) -> anyhow::Result<Vec<Relationship>> {
        let _guard = self.relationships.lock().expect("relationships lock");
        let lines: Vec<RelationshipLine> = read_json(&self.paths.relationships)?;
        let mut links: Vec<Relationship> = Vec::new();
        for line in lines {
            let same = |r: &Relationship| {
                r.from == line.link.from
                    && r.to == line.link.to
                    && r.relationship == line.link.relationship
            };
            match line.op {
                LinkOp::Link if !links.iter().any(same) => links.push(line.link),
                LinkOp::Link => {}
                LinkOp::Unlink => links.retain(|r| !same(r)),
            }
        }
        Ok(links)
    }
}

impl Store for FileStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        let files = self.list_metadata()?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(LOAD_THREADS)
            .build()
            .context("cannot start the loading threads")?;
        let loaded: Vec<(PathBuf, Result<Record, String>)> = pool.install(|| {
            files
                .into_par_iter()
                .map(|p| {
                    let r = load_index_record(&p);
                    (p, r)
                })
                .collect()
        });
        let mut records = Vec::with_capacity(loaded.len());
        let mut issues = BTreeMap::new();
        for (path, result) in loaded {
            match result {
                Ok(record) => records.push(record),
                Err(problem) => {
                    warn!(file = %path.display(), %problem, "skipped a metadata file");
                    issues.insert(path, problem);
                }
            }
        }
        Ok(Loaded {
            records,
            issues,
            relations: self.read_relations()?,
        })
    }

    /// Writes versions, the parameter change, the document, the link and the audit lines,
    /// in that order; the writer's lock in the registry keeps two commits apart.
    fn commit(&self, commit: &Commit<'_>) -> Result<Option<Stamp>, StoreError> {
        if let Some(DocumentWrite::Create(doc)) = &commit.document {
            let path = self.paths.metadata_file(doc.strategy.id);
            if path.exists() {
                return Err(StoreError::Conflict(format!(
                    "{} exists but is not a usable strategy; move it away first",
                    path.display()
                )));
            }
        }
        for write in &commit.versions {
            self.write_version(write)?;
        }
        if let Some(change) = commit.parameter_change {
            self.append_parameter_change(change)?;
        }
        let stamp = match &commit.document {
            // Files have no revision to compare `expected` with: a hand edit reaches the
            // registry through the watcher instead.
            Some(DocumentWrite::Create(doc)) | Some(DocumentWrite::Update { doc, .. }) => Some(
                store::write_document(&self.paths.metadata_file(doc.strategy.id), doc)?,
            ),
            None => None,
        };
        if let Some(link) = &commit.link {
            self.append_link(link)?;
        }
        for entry in &commit.audit {
            self.append_audit(entry)?;
        }
        Ok(stamp)
    }

    fn document(&self, id: StrategyId) -> Result<(StrategyDocument, Stamp), StoreError> {
        let path = self.paths.metadata_file(id);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(id));
            }
            Err(e) => {
                return Err(StoreError::Io(
                    anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
                ));
            }
        };
        let doc = shapes::parse_bytes(&bytes).map_err(|e| {
            StoreError::Conflict(format!(
                "the metadata file {} is unreadable ({e}); lists keep its last good version until it is fixed",
                path.display()
            ))
        })?;
        Ok((doc, store::content_hash(&bytes)))
    }

    fn versions(&self, id: StrategyId) -> Result<Vec<VersionRecord>, StoreError> {
        let dir = self.paths.versions_dir(id);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(anyhow::Error::from(e).into()),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(anyhow::Error::from)?.path();
            let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if stem.starts_with('.') || semver::Version::parse(stem).is_err() {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(anyhow::Error::from)?;
            match serde_json::from_slice::<VersionRecord>(&bytes) {
                Ok(record) => out.push(record),
                Err(e) => {
                    warn!(file = %path.display(), error = %e, "skipping an unreadable version file")
                }
            }
        }
        out.sort_by_key(|v| semver::Version::parse(&v.version_number).ok());
        Ok(out)
    }

    fn parameter_changes(
        &self,
        id: StrategyId,
        name: Option<&str>,
    ) -> Result<Vec<ParameterChange>, StoreError> {
        let changes: Vec<ParameterChange> =
            read_json(&self.paths.parameters_file(id)).map_err(anyhow::Error::from)?;
        Ok(changes
            .into_iter()
            .filter(|c| name.is_none_or(|n| c.parameter_name == n))
            .collect())
    }

    fn audit_tail(
        &self,
        id: Option<StrategyId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let _guard = self.audit.lock().expect("audit lock"); // no half-written entry is read
        let entries: Vec<AuditEntry> = read_json(&self.paths.audit).map_err(anyhow::Error::from)?;
        let mut matching: Vec<AuditEntry> = entries
            .into_iter()
            .filter(|e| id.is_none() || e.strategy_id == id)
            .collect();
        let skip = matching.len().saturating_sub(limit);
        Ok(matching.split_off(skip))
    }

    fn health(&self) -> Health {
        Health::Up
    }

    fn relations(&self) -> Result<Vec<Relationship>, StoreError> {
        Ok(self.read_relations()?)
    }
}

/// One line of `relationships.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
struct RelationshipLine {
    op: LinkOp,
    #[serde(flatten)]
    link: Relationship,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LinkOp {
    Link,
    Unlink,
}

/// Reads a metadata file whose name must be `{uuid}.json`, within the size limit.
fn read_metadata_file(path: &Path) -> Result<(StrategyId, Vec<u8>), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(stem) = name.strip_suffix(".json") else {
        return Err("not a metadata file: names must be {uuid}.json".into());
    };
    let file_id: StrategyId = stem.parse().map_err(|e| format!("bad file name: {e}"))?;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() > validate::MAX_DOCUMENT_BYTES {
        return Err(format!(
            "{} bytes; the limit is {}",
            bytes.len(),
            validate::MAX_DOCUMENT_BYTES
        ));
    }
    Ok((file_id, bytes))
}

fn check_id(file_id: StrategyId, inside: StrategyId) -> Result<(), String> {
    if inside != file_id {
        return Err(format!(
            "the file is named {file_id} but holds strategy {inside}"
        ));
    }
    Ok(())
}

/// Reads and checks one metadata file in full into an index record.
fn load_record(path: &Path) -> Result<Record, String> {
    let (file_id, bytes) = read_metadata_file(path)?;
    let doc = shapes::parse_bytes(&bytes).map_err(|e| format!("invalid metadata: {e}"))?;
    validate::document(&doc).map_err(|e| format!("invalid metadata: {e}"))?;
    check_id(file_id, doc.strategy.id)?;
    Ok(Record::from_doc(&doc, store::content_hash(&bytes)))
}

/// Reads one metadata file into an index record, quickly: only the members the index
/// needs are read, and only the file name and id are checked. The full check
/// ([`load_record`]) runs in the background after start-up
/// ([`super::Registry::validate_all`]).
fn load_index_record(path: &Path) -> Result<Record, String> {
    let (file_id, bytes) = read_metadata_file(path)?;
    let fields =
        shapes::view::index_fields(&bytes).map_err(|e| format!("invalid metadata: {e}"))?;
    check_id(file_id, fields.id)?;
    Ok(Record::new(fields, store::content_hash(&bytes)))
}
