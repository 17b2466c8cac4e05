//! The registry's history files: the audit log, parameter changes, versions and
//! relationships. All are append-only lines or write-once files.

use super::RegistryError;
use super::store::Paths;
use crate::linelog::{Durability, LineLog, read_json};
use chrono::Utc;
use mem_protocol::registry::{
    AuditEntry, LinkParams, ParameterChange, Relationship, RelationshipType, VersionRecord,
};
use mem_protocol::strategy::StrategyId;
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, RwLock};

/// `audit.jsonl`: every mutation, fsynced before the caller is answered.
pub struct Audit {
    file: Mutex<LineLog>,
}

impl Audit {
    pub fn open(paths: &Paths) -> anyhow::Result<Audit> {
        Ok(Audit {
            file: Mutex::new(LineLog::open(&paths.audit, 0o640)?),
        })
    }

    pub fn append(&self, entry: &AuditEntry) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        self.file
            .lock()
            .expect("audit lock")
            .append(&line, Durability::Sync)?;
        Ok(())
    }

    /// The newest `limit` entries (of one strategy if `id`), oldest first.
    pub fn tail(
        &self,
        paths: &Paths,
        id: Option<StrategyId>,
        limit: usize,
    ) -> anyhow::Result<Vec<AuditEntry>> {
        let _guard = self.file.lock().expect("audit lock"); // no half-written entry is read
        let entries: Vec<AuditEntry> = read_json(&paths.audit)?;
        let mut matching: Vec<AuditEntry> = entries
            .into_iter()
            .filter(|e| id.is_none() || e.strategy_id == id)
            .collect();
        let skip = matching.len().saturating_sub(limit);
        Ok(matching.split_off(skip))
    }
}

/// Appends one parameter change to `parameters/{id}.jsonl`.
pub fn append_parameter_change(paths: &Paths, change: &ParameterChange) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(change)?;
    line.push(b'\n');
    LineLog::open(&paths.parameters_file(change.strategy_id), 0o640)?
        .append(&line, Durability::Sync)?;
    Ok(())
}

/// The parameter changes of a strategy (of one parameter if `name`), oldest first.
pub fn parameter_history(
    paths: &Paths,
    id: StrategyId,
    name: Option<&str>,
) -> anyhow::Result<Vec<ParameterChange>> {
    let changes: Vec<ParameterChange> = read_json(&paths.parameters_file(id))?;
    Ok(changes
        .into_iter()
        .filter(|c| name.is_none_or(|n| c.parameter_name == n))
        .collect())
}

/// Parses a version string strictly (it becomes a file name).
pub fn parse_version(field: &str, version: &str) -> Result<semver::Version, RegistryError> {
    semver::Version::parse(version).map_err(|e| {
        RegistryError::invalid(
            field,
            format!("{version:?} is not a semantic version (like 1.2.0): {e}"),
        )
    })
}

/// Every version of a strategy, oldest first.
pub fn versions(paths: &Paths, id: StrategyId) -> anyhow::Result<Vec<VersionRecord>> {
    let dir = paths.versions_dir(id);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
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
        match serde_json::from_slice::<VersionRecord>(&std::fs::read(&path)?) {
            Ok(record) => out.push(record),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "skipping an unreadable version file")
            }
        }
    }
    out.sort_by_key(|v| semver_key(&v.version_number));
    Ok(out)
}

fn semver_key(v: &str) -> Option<semver::Version> {
    semver::Version::parse(v).ok()
}

/// Writes a new version file; an existing version is a conflict.
pub fn write_version(paths: &Paths, record: &VersionRecord) -> Result<(), RegistryError> {
    let version = parse_version("version", &record.version_number)?;
    if paths
        .versions_dir(record.strategy_id)
        .join(format!("{version}.json"))
        .exists()
    {
        return Err(RegistryError::Conflict(format!(
            "version {version} of strategy {} already exists",
            record.strategy_id
        )));
    }
    replace_version(paths, record)
}

/// Writes a version file over the one there (a backtest recorded on its version).
pub fn replace_version(paths: &Paths, record: &VersionRecord) -> Result<(), RegistryError> {
    let version = parse_version("version", &record.version_number)?;
    let dir = paths.versions_dir(record.strategy_id);
    crate::datadir::ensure_dir(&dir, 0o750).map_err(RegistryError::Io)?;
    let mut bytes = serde_json::to_vec_pretty(record).expect("versions serialize");
    bytes.push(b'\n');
    crate::datadir::write_atomic(&dir.join(format!("{version}.json")), &bytes, 0o640)
        .map_err(RegistryError::Io)
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

/// Relationships, replayed from `relationships.jsonl` at start and kept in memory.
pub struct Relations {
    file: Mutex<LineLog>,
    links: RwLock<Vec<Relationship>>,
}

impl Relations {
    pub fn open(paths: &Paths) -> anyhow::Result<Relations> {
        let lines: Vec<RelationshipLine> = read_json(&paths.relationships)?;
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
        Ok(Relations {
            file: Mutex::new(LineLog::open(&paths.relationships, 0o640)?),
            links: RwLock::new(links),
        })
    }

    /// Adds a link; linking the same pair twice is a no-op that returns the first link.
    pub fn link(&self, params: LinkParams) -> anyhow::Result<(Relationship, bool)> {
        let mut file = self.file.lock().expect("relations lock");
        if let Some(existing) = self.find(params.from, params.to, params.relationship) {
            return Ok((existing, false));
        }
        let link = Relationship {
            from: params.from,
            to: params.to,
            relationship: params.relationship,
            note: params.note,
            similarity_score: params.similarity_score,
            created_at: Utc::now(),
        };
        let mut line = serde_json::to_vec(&RelationshipLine {
            op: LinkOp::Link,
            link: link.clone(),
        })?;
        line.push(b'\n');
        file.append(&line, Durability::Sync)?;
        self.links
            .write()
            .expect("relations lock")
            .push(link.clone());
        Ok((link, true))
    }

    /// Removes a link; returns whether there was one.
    pub fn unlink(
        &self,
        from: StrategyId,
        to: StrategyId,
        relationship: RelationshipType,
    ) -> anyhow::Result<bool> {
        let mut file = self.file.lock().expect("relations lock");
        let Some(existing) = self.find(from, to, relationship) else {
            return Ok(false);
        };
        let mut line = serde_json::to_vec(&RelationshipLine {
            op: LinkOp::Unlink,
            link: existing,
        })?;
        line.push(b'\n');
        file.append(&line, Durability::Sync)?;
        self.links
            .write()
            .expect("relations lock")
            .retain(|r| !(r.from == from && r.to == to && r.relationship == relationship));
        Ok(true)
    }

    fn find(
        &self,
        from: StrategyId,
        to: StrategyId,
        relationship: RelationshipType,
    ) -> Option<Relationship> {
        self.links
            .read()
            .expect("relations lock")
            .iter()
            .find(|r| r.from == from && r.to == to && r.relationship == relationship)
            .cloned()
    }

    /// Every link touching `id`.
    pub fn touching(&self, id: StrategyId) -> Vec<Relationship> {
        self.links
            .read()
            .expect("relations lock")
            .iter()
            .filter(|r| r.from == id || r.to == id)
            .cloned()
            .collect()
    }
}
