//! The strategy registry: metadata files under `strategy_registry/metadata/`, held in
//! memory, listed and filtered.
//!
//! Invariants: a strategy id is a UUID and nothing else reaches a path; a metadata file is
//! named `{id}.json` and the id inside must match its name. A file that cannot be read is
//! reported (log and `daemon.status`) and skipped, never fatal and never rewritten.
//! This is the read side; registration, versions, trades and live reload build on it.

use anyhow::Context;
use mem_protocol::methods::{ListStrategiesParams, StrategyList};
use mem_protocol::strategy::{StrategyDetail, StrategyDocument, StrategyId, StrategySummary};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A metadata file that could not be loaded, and why.
#[derive(Debug, Clone)]
pub struct LoadIssue {
    pub path: PathBuf,
    pub problem: String,
}

/// All strategies, by id.
#[derive(Debug, Default)]
pub struct Registry {
    strategies: BTreeMap<StrategyId, StrategyDocument>,
    issues: Vec<LoadIssue>,
}

impl Registry {
    /// Loads every `metadata/{id}.json` under `registry_dir` (creating `metadata/` if absent).
    pub fn load(registry_dir: &Path) -> anyhow::Result<Registry> {
        let metadata_dir = registry_dir.join("metadata");
        crate::datadir::ensure_dir(&metadata_dir, 0o750)?;
        let entries = fs::read_dir(&metadata_dir)
            .with_context(|| format!("cannot list {}", metadata_dir.display()))?;
        let mut registry = Registry::default();
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", metadata_dir.display()))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // temporary files of an interrupted atomic write
            }
            match load_file(&path, &name) {
                Ok(doc) => {
                    registry.strategies.insert(doc.strategy.id, doc);
                }
                Err(problem) => registry.issues.push(LoadIssue { path, problem }),
            }
        }
        registry.issues.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(registry)
    }

    pub fn len(&self) -> usize {
        self.strategies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strategies.is_empty()
    }

    /// Files skipped at the last load.
    pub fn issues(&self) -> &[LoadIssue] {
        &self.issues
    }

    /// How many strategies have each status.
    pub fn count_by_status(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for doc in self.strategies.values() {
            *counts.entry(doc.strategy.status.to_string()).or_insert(0) += 1;
        }
        counts
    }

    /// Every strategy's summary, ordered by display name.
    pub fn summaries(&self) -> Vec<StrategySummary> {
        self.list(&ListStrategiesParams::default()).strategies
    }

    /// The strategies matching every given filter, ordered by display name, then paged.
    pub fn list(&self, params: &ListStrategiesParams) -> StrategyList {
        let filter = Filter::new(params);
        let mut matches: Vec<StrategySummary> = self
            .strategies
            .values()
            .filter(|doc| filter.matches(doc))
            .map(|doc| doc.summary(false))
            .collect();
        matches.sort_by(|a, b| {
            a.display_name
                .to_lowercase()
                .cmp(&b.display_name.to_lowercase())
                .then_with(|| a.id.cmp(&b.id))
        });
        let total = matches.len();
        let offset = params.offset.unwrap_or(0).min(total);
        let limit = params.limit.unwrap_or(usize::MAX);
        let strategies = matches.into_iter().skip(offset).take(limit).collect();
        StrategyList { strategies, total }
    }

    /// One strategy in full.
    pub fn get(&self, id: StrategyId) -> Option<StrategyDetail> {
        self.strategies.get(&id).map(|doc| StrategyDetail {
            summary: doc.summary(false),
            metadata: doc.clone(),
        })
    }
}

/// Reads one metadata file; the error says what is wrong with it.
fn load_file(path: &Path, name: &str) -> Result<StrategyDocument, String> {
    let Some(stem) = name.strip_suffix(".json") else {
        return Err("not a metadata file: names must be {uuid}.json".into());
    };
    let file_id: StrategyId = stem.parse().map_err(|e| format!("bad file name: {e}"))?;
    let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let doc: StrategyDocument =
        serde_json::from_slice(&bytes).map_err(|e| format!("invalid metadata: {e}"))?;
    if doc.strategy.id != file_id {
        return Err(format!(
            "the file is named {file_id} but holds strategy {}",
            doc.strategy.id
        ));
    }
    Ok(doc)
}

/// The filters of `strategies.list`, prepared once per call.
struct Filter<'a> {
    params: &'a ListStrategiesParams,
    category: Option<String>,
    tag: Option<String>,
    words: Vec<String>,
}

impl<'a> Filter<'a> {
    fn new(params: &'a ListStrategiesParams) -> Self {
        Filter {
            params,
            category: params.category.as_deref().map(str::to_lowercase),
            tag: params.tag.as_deref().map(str::to_lowercase),
            words: params
                .query
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_lowercase)
                .collect(),
        }
    }

    fn matches(&self, doc: &StrategyDocument) -> bool {
        let s = &doc.strategy;
        if let Some(category) = &self.category {
            if s.classification.category.to_lowercase() != *category {
                return false;
            }
        }
        if let Some(status) = self.params.status {
            if s.status != status {
                return false;
            }
        }
        if let Some(tag) = &self.tag {
            if !s
                .classification
                .tags
                .iter()
                .any(|t| t.to_lowercase() == *tag)
            {
                return false;
            }
        }
        if let Some(min) = self.params.min_sharpe {
            if !s
                .performance
                .backtest
                .sharpe_ratio
                .is_some_and(|sharpe| sharpe >= min)
            {
                return false;
            }
        }
        if !self.words.is_empty() {
            let haystack = [
                s.name.as_str(),
                s.display_name.as_str(),
                s.description.as_str(),
                s.classification.category.as_str(),
                s.classification.sub_category.as_str(),
                &s.classification.tags.join(" "),
            ]
            .join(" ")
            .to_lowercase();
            if !self.words.iter().all(|w| haystack.contains(w.as_str())) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        crate::datadir::seed_registry(dir.path()).unwrap();
        let registry = Registry::load(dir.path()).unwrap();
        (dir, registry)
    }

    #[test]
    fn default_data_has_the_eleven_seed_strategies() {
        let (_dir, registry) = seeded();
        assert_eq!(registry.len(), 11, "issues: {:?}", registry.issues());
        assert!(registry.issues().is_empty());
    }

    #[test]
    fn filters_combine() {
        let (_dir, registry) = seeded();
        let list = |p: ListStrategiesParams| {
            registry
                .list(&p)
                .strategies
                .into_iter()
                .map(|s| s.display_name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            list(ListStrategiesParams {
                tag: Some("FREQTRADE".into()),
                min_sharpe: Some(1.2),
                ..Default::default()
            }),
            ["Freqtrade Aggressive RSI", "Freqtrade MACD Hunter"]
        );
        assert_eq!(
            list(ListStrategiesParams {
                category: Some("carry".into()),
                ..Default::default()
            }),
            ["Currency Carry Trade"]
        );
        assert_eq!(
            list(ListStrategiesParams {
                query: Some("macd hunter".into()),
                ..Default::default()
            }),
            ["Freqtrade MACD Hunter"]
        );
        let page = registry.list(&ListStrategiesParams {
            limit: Some(2),
            offset: Some(10),
            ..Default::default()
        });
        assert_eq!((page.total, page.strategies.len()), (11, 1));
    }

    #[test]
    fn bad_files_are_reported_and_skipped() {
        let (dir, _) = seeded();
        let meta = dir.path().join("metadata");
        fs::write(meta.join("notes.txt"), "x").unwrap();
        fs::write(
            meta.join("00000000-0000-4000-8000-000000000000.json"),
            "{ torn",
        )
        .unwrap();
        // A good document under another strategy's name.
        fs::copy(
            meta.join("4ce3a79b-c22b-4b42-9d87-3a58052a9eec.json"),
            meta.join("11111111-1111-4111-8111-111111111111.json"),
        )
        .unwrap();
        let registry = Registry::load(dir.path()).unwrap();
        assert_eq!(registry.len(), 11);
        let problems: Vec<_> = registry
            .issues()
            .iter()
            .map(|i| i.problem.clone())
            .collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("invalid metadata")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("{uuid}.json")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("holds strategy")),
            "{problems:?}"
        );
    }
}
