//! The model store: `models/trend_reversal/{YYYYMMDD_HHMMSS}/` per version, holding the
//! model and its scaler (`Model::save`), `config.json` (what it was trained on and how)
//! and `model_metrics.json` (its holdout figures, status and reason).
//!
//! `current` names the serving version; it is replaced atomically (write to a temporary
//! file, fsync, rename), so a crash leaves the old or the new pointer, never half of
//! one. `pointer.jsonl` appends every change of the pointer (promotion, rollback), which
//! is what a rollback without a version goes back along.

use crate::datadir::write_atomic;
use chrono::{DateTime, Utc};
use mem_protocol::ml::{ModelStatus, ModelVersion};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of the store; each names the file or version at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid model_metrics.json: {source}")]
    BadMetrics {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no model version `{0}` (see `memctl model history`)")]
    NoSuchVersion(String),
    #[error("a version name is YYYYMMDD_HHMMSS, got `{0}`")]
    BadVersionName(String),
    #[error("{0}")]
    Nothing(String),
}

/// Writes a whole file atomically (temporary file, fsync, rename).
fn atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic(path, bytes, 0o644).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("{e:#}")),
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One change of the current pointer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointerChange {
    pub at: DateTime<Utc>,
    pub version: String,
    /// `promoted`, `rolled_back`, `promoted_by_hand`.
    pub action: String,
    pub reason: String,
}

/// `models/trend_reversal/`.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
}

/// A version name is a timestamp and nothing else reaches a path.
pub fn valid_version_name(name: &str) -> bool {
    name.len() == 15
        && name.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'_',
            _ => b.is_ascii_digit(),
        })
}

impl ModelStore {
    pub fn open(models_dir: &Path) -> Result<ModelStore, StoreError> {
        let root = models_dir.join("trend_reversal");
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(ModelStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir_of(&self, version: &str) -> Result<PathBuf, StoreError> {
        if !valid_version_name(version) {
            return Err(StoreError::BadVersionName(version.into()));
        }
        Ok(self.root.join(version))
    }

    /// A fresh directory for a new version named after `now` (a second later if taken).
    pub fn new_version_dir(&self, now: DateTime<Utc>) -> Result<(String, PathBuf), StoreError> {
        let mut t = now;
        loop {
            let name = t.format("%Y%m%d_%H%M%S").to_string();
            let dir = self.root.join(&name);
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok((name, dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    t += chrono::Duration::seconds(1);
                }
                Err(e) => return Err(io(&dir)(e)),
            }
        }
    }

    /// Writes a version's `model_metrics.json` (atomically: its status changes later).
    pub fn write_metrics(&self, v: &ModelVersion) -> Result<(), StoreError> {
        let path = self.dir_of(&v.version)?.join("model_metrics.json");
        let bytes = serde_json::to_vec_pretty(v).expect("metrics serialize");
        atomic(&path, &bytes)
    }

    /// Writes a version's `config.json`.
    pub fn write_config(
        &self,
        version: &str,
        config: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let path = self.dir_of(version)?.join("config.json");
        let bytes = serde_json::to_vec_pretty(config).expect("config serializes");
        atomic(&path, &bytes)
    }

    pub fn read_metrics(&self, version: &str) -> Result<ModelVersion, StoreError> {
        let path = self.dir_of(version)?.join("model_metrics.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NoSuchVersion(version.into()));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| StoreError::BadMetrics { path, source })
    }

    /// Every version with readable metrics, newest first; unreadable ones are returned
    /// apart with their error.
    pub fn versions(&self) -> (Vec<ModelVersion>, Vec<String>) {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_version_name(n))
            .collect();
        names.sort_unstable_by(|a, b| b.cmp(a));
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        for name in names {
            match self.read_metrics(&name) {
                Ok(v) => ok.push(v),
                Err(e) => bad.push(e.to_string()),
            }
        }
        (ok, bad)
    }

    /// The version `current` names, if any.
    pub fn current(&self) -> Result<Option<String>, StoreError> {
        let path = self.root.join("current");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let name = text.trim().to_string();
                if valid_version_name(&name) {
                    Ok(Some(name))
                } else {
                    Err(StoreError::BadVersionName(name))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Points `current` at `version` and records why; the previous current version is
    /// marked retired and this one current.
    pub fn set_current(&self, version: &str, action: &str, reason: &str) -> Result<(), StoreError> {
        let mut target = self.read_metrics(version)?;
        if let Some(previous) = self.current()?.filter(|p| p != version) {
            if let Ok(mut old) = self.read_metrics(&previous) {
                old.status = ModelStatus::Retired;
                self.write_metrics(&old)?;
            }
        }
        let path = self.root.join("current");
        atomic(&path, format!("{version}\n").as_bytes())?;
        target.status = ModelStatus::Current;
        target.reason = reason.to_string();
        self.write_metrics(&target)?;
        let change = PointerChange {
            at: Utc::now(),
            version: version.into(),
            action: action.into(),
            reason: reason.into(),
        };
        let log = self.root.join("pointer.jsonl");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io(&log))?;
        let mut line = serde_json::to_vec(&change).expect("change serializes");
        line.push(b'\n');
        file.write_all(&line).map_err(io(&log))?;
        file.sync_data().map_err(io(&log))?;
        Ok(())
    }

    /// Makes the stored statuses agree with `current` (a crash between writing the
    /// pointer and the versions' metrics can leave two, or no, versions marked current):
    /// the version `current` names is marked current, any other marked current retired.
    /// Answers how many metrics files were corrected.
    pub fn reconcile(&self) -> Result<usize, StoreError> {
        let current = self.current()?;
        let (versions, _) = self.versions();
        let mut fixed = 0;
        for mut v in versions {
            let should_be_current = current.as_deref() == Some(v.version.as_str());
            let is_current = v.status == ModelStatus::Current;
            if should_be_current && !is_current {
                v.status = ModelStatus::Current;
            } else if !should_be_current && is_current {
                v.status = ModelStatus::Retired;
            } else {
                continue;
            }
            self.write_metrics(&v)?;
            fixed += 1;
        }
        Ok(fixed)
    }

    /// Removes the version directories beyond the newest `keep` (by name: their time),
    /// never the current one nor the one a rollback goes back to ([`ModelStore::previous`]);
    /// answers the names removed. The caller holds the service's writes lock (a version
    /// being written is the newest, and kept).
    pub fn prune(&self, keep: usize) -> Result<Vec<String>, StoreError> {
        let current = self.current()?;
        let previous = self.previous().ok();
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .map_err(io(&self.root))?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_version_name(n))
            .collect();
        names.sort_unstable_by(|a, b| b.cmp(a));
        let mut removed = Vec::new();
        for name in names.into_iter().skip(keep) {
            if Some(&name) == current.as_ref() || Some(&name) == previous.as_ref() {
                continue;
            }
            let dir = self.root.join(&name);
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
            removed.push(name);
        }
        Ok(removed)
    }

    /// Pointer changes, oldest first (a torn last line is skipped).
    pub fn pointer_history(&self) -> Vec<PointerChange> {
        std::fs::read_to_string(self.root.join("pointer.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The version a rollback without a name goes back to: the one current before the
    /// present one.
    pub fn previous(&self) -> Result<String, StoreError> {
        let current = self.current()?;
        self.pointer_history()
            .iter()
            .rev()
            .map(|c| c.version.clone())
            .find(|v| Some(v) != current.as_ref())
            .ok_or_else(|| StoreError::Nothing("no earlier model to roll back to".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_are_timestamps_only() {
        assert!(valid_version_name("20261122_040506"));
        for bad in [
            "",
            "../etc",
            "20261122-040506",
            "20261122_04050",
            "2026112x_040506",
        ] {
            assert!(!valid_version_name(bad), "{bad}");
        }
    }

    #[test]
    fn only_the_newest_versions_are_kept_with_the_current_and_the_rollback_target() {
        let models = tempfile::tempdir().unwrap();
        let store = ModelStore::open(models.path()).unwrap();
        let dir = store.root();
        let names: Vec<String> = (1..=6).map(|d| format!("2026110{d}_020000")).collect();
        for name in &names {
            std::fs::create_dir(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join("model.json"), b"{}").unwrap();
        }
        // The 1st was current, then the 2nd (rolled back to by default).
        let pointer = |v: &str| {
            format!(
                r#"{{"at":"2026-11-02T02:00:00Z","version":"{v}","action":"promoted","reason":"r"}}"#
            )
        };
        std::fs::write(
            dir.join("pointer.jsonl"),
            format!("{}\n{}\n", pointer(&names[0]), pointer(&names[1])),
        )
        .unwrap();
        std::fs::write(dir.join("current"), format!("{}\n", names[1])).unwrap();
        assert!(store.prune(6).unwrap().is_empty());
        let removed = store.prune(2).unwrap();
        assert_eq!(removed, [names[3].clone(), names[2].clone()]);
        for kept in [&names[0], &names[1], &names[4], &names[5]] {
            assert!(dir.join(kept).is_dir(), "{kept}");
        }
        assert!(dir.join("current").exists() && dir.join("pointer.jsonl").exists());
    }
}
