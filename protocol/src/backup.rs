//! Backups: `daemon.backup` copies the data directory into a new directory while the
//! daemon's writers are paused, and writes `backup.json` (this module's [`Manifest`]) last;
//! `memctl restore` checks a backup against its manifest before copying it into an empty
//! data directory. A backup without a manifest is incomplete and is never restored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The manifest's file name, at the top of a backup.
pub const MANIFEST: &str = "backup.json";

/// The manifest format this version writes and reads.
pub const FORMAT: u32 = 1;

/// `daemon.backup` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupParams {
    /// Where to write the backup: an absolute path that does not exist yet (its parent
    /// must) or an empty directory, outside the data directory (but `{data_dir}/backups/`).
    pub dir: String,
    /// Also copy the market candles (re-seedable data, left out by default).
    #[serde(default)]
    pub with_market: bool,
    /// Also copy the daemon's own log files (left out by default).
    #[serde(default)]
    pub with_logs: bool,
}

/// What a backup holds, counted from the files copied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupCounts {
    /// Metadata files (`strategy_registry/metadata/*.json`).
    pub strategies: usize,
    /// Trade lines in every performance log.
    pub trades: u64,
    /// Trade lines per strategy id (only strategies with a performance log).
    pub trades_by_strategy: BTreeMap<String, u64>,
    /// Model versions (`models/trend_reversal/{YYYYMMDD_HHMMSS}/`).
    pub model_versions: usize,
    /// The version `models/trend_reversal/current` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_model: Option<String>,
    /// Deployments in `deployments/state.json`, and how many of them were active.
    pub deployments: usize,
    pub active_deployments: usize,
    /// Lines of `mem_knowledge/decisions.jsonl` (decisions and outcomes).
    pub decision_log_lines: u64,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    /// Relative to the backup (and to the data directory it restores into), `/`-separated.
    pub path: String,
    pub size: u64,
    /// Permission bits (0o600 for the files that hold secrets).
    pub mode: u32,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}

/// One directory of a backup, with its permission bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestDir {
    pub path: String,
    pub mode: u32,
}

/// `backup.json`: written last, so a backup that has one is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    pub memd_version: String,
    pub created_at: DateTime<Utc>,
    /// The data directory copied: paths under it in deployment records are moved to the
    /// restored directory.
    pub source_data_dir: String,
    /// What was left out, and why.
    pub excluded: Vec<String>,
    pub counts: BackupCounts,
    /// How long the daemon's writers were paused for the copy.
    pub paused_millis: u64,
    pub total_bytes: u64,
    pub dirs: Vec<ManifestDir>,
    pub files: Vec<ManifestFile>,
}

/// `daemon.backup` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupReport {
    /// The backup's directory.
    pub dir: String,
    pub created_at: DateTime<Utc>,
    pub counts: BackupCounts,
    pub files: usize,
    pub bytes: u64,
    pub paused_millis: u64,
    pub took_millis: u64,
    pub excluded: Vec<String>,
    /// Entries of the data directory not copied because they are not regular files or
    /// directories (symbolic links, sockets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}
