//! `registry.migrate`: copies the registry this daemon runs on into another, empty store
//! (a PostgreSQL database, or a directory of files), then reads the copy back and
//! compares it, document by document and trade by trade. The daemon keeps running on
//! its own registry; the operator points memd at the copy when it suits (the operator
//! guide says how).
//!
//! Writes are paused while it copies, so the copy is of one moment.

use super::backend::{Commit, DocumentWrite, LinkWrite, Store, VersionWrite};
use super::files::FileStore;
use super::postgres::PgStore;
use super::trades::TradeStore;
use super::{Registry, RegistryError, Result};
use mem_protocol::registry::{
    MigrateParams, MigrateReport, ParameterChange, TradeRecord, VersionRecord,
};
use mem_protocol::strategy::{StrategyDocument, StrategyId};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

/// Audit entries written in one commit.
const AUDIT_BATCH: usize = 1000;
/// Trades written in one batch.
const TRADE_BATCH: usize = 2000;

/// The store to copy into, and its trades.
struct Target {
    name: String,
    /// A database: documents, versions and parameter changes are kept as JSONB there.
    jsonb: bool,
    store: Arc<dyn Store>,
    trades: TradeStore,
}

impl Target {
    fn open(params: MigrateParams) -> Result<Target> {
        match params {
            MigrateParams::Postgres {
                url,
                password,
                server,
            } => {
                let server = server.unwrap_or_else(|| {
                    sysinfo::System::host_name()
                        .ok()
                        .unwrap_or_else(|| "memd".into())
                });
                let store = PgStore::connect(&url, password.as_deref(), &server)
                    .map_err(|e| RegistryError::invalid("url", e.to_string()))?;
                if !store.is_empty()? {
                    return Err(RegistryError::Conflict(format!(
                        "the database {} already holds strategies: migrate into an empty one",
                        super::postgres::target_of(&url)
                    )));
                }
                let store = Arc::new(store);
                Ok(Target {
                    name: super::postgres::target_of(&url),
                    jsonb: true,
                    trades: TradeStore::on_rows(store.clone()),
                    store,
                })
            }
            MigrateParams::Files { dir } => {
                let root = std::path::PathBuf::from(&dir);
                if !root.is_absolute() {
                    return Err(RegistryError::invalid(
                        "dir",
                        format!("{dir:?} is not an absolute path"),
                    ));
                }
                if root.join("metadata").exists() {
                    return Err(RegistryError::Conflict(format!(
                        "{dir} already holds a registry (metadata/): migrate into an empty directory"
                    )));
                }
                let files = FileStore::open(&root)
                    .map_err(|e| RegistryError::invalid("dir", format!("{e:#}")))?;
                Ok(Target {
                    name: dir,
                    jsonb: false,
                    trades: TradeStore::new(files.paths().clone()),
                    store: Arc::new(files),
                })
            }
        }
    }
}

impl Registry {
    /// `registry.migrate`: see the module's comment.
    pub fn migrate(&self, params: MigrateParams) -> Result<MigrateReport> {
        let started = Instant::now();
        let target = Target::open(params)?;
        self.with_writes_paused(|| self.copy_into(&target, started))
    }

    fn copy_into(&self, target: &Target, started: Instant) -> Result<MigrateReport> {
        let mut ids: Vec<StrategyId> = self
            .index
            .read()
            .expect("index lock")
            .records()
            .iter()
            .map(|r| r.id())
            .collect();
        ids.sort();
        let mut report = MigrateReport {
            target: target.name.clone(),
            strategies: 0,
            versions: 0,
            parameter_changes: 0,
            relationships: 0,
            audit_entries: 0,
            trades: 0,
            checksum: String::new(),
            seconds: 0.0,
        };
        let mut source_sum = Sha256::new();
        // Each strategy's parts digested apart too, to name what differs if the sums do.
        let mut source_parts = Vec::with_capacity(ids.len());
        for &id in &ids {
            let (doc, _) = self.store.document(id)?;
            let versions = self.store.versions(id)?;
            let changes = self.store.parameter_changes(id, None)?;
            // What the target keeps of them (a negative zero, in a database, as zero).
            let (doc, versions, changes) = if target.jsonb {
                use super::postgres::as_jsonb_keeps;
                (
                    as_jsonb_keeps(&doc),
                    as_jsonb_keeps(&versions),
                    as_jsonb_keeps(&changes),
                )
            } else {
                (doc, versions, changes)
            };
            report.versions += versions.len();
            target.store.commit(&Commit {
                document: Some(DocumentWrite::Create(&doc)),
                versions: versions.iter().cloned().map(VersionWrite::New).collect(),
                ..Commit::default()
            })?;
            for change in &changes {
                target.store.commit(&Commit {
                    parameter_change: Some(change),
                    ..Commit::default()
                })?;
            }
            report.parameter_changes += changes.len();
            let trades = self.all_trades(&self.trades, id)?;
            for batch in trades.chunks(TRADE_BATCH) {
                let log = target.trades.log(id).map_err(RegistryError::Io)?;
                let duplicates = log
                    .lock()
                    .expect("trade log lock")
                    .append(batch, chrono::Utc::now())
                    .map_err(RegistryError::Io)?;
                if !duplicates.is_empty() {
                    return Err(RegistryError::Io(anyhow::anyhow!(
                        "strategy {id}: the target already had trades {duplicates:?}"
                    )));
                }
            }
            report.trades += trades.len();
            source_parts.push(digest(&mut source_sum, &doc, &versions, &changes, &trades));
            report.strategies += 1;
        }
        let relations = self.relations.read().expect("relations lock").clone();
        for r in relations {
            target.store.commit(&Commit {
                link: Some(LinkWrite::Link(r)),
                ..Commit::default()
            })?;
            report.relationships += 1;
        }
        let audit = self.store.audit_tail(None, usize::MAX)?;
        for batch in audit.chunks(AUDIT_BATCH) {
            target.store.commit(&Commit {
                audit: batch.to_vec(),
                ..Commit::default()
            })?;
        }
        report.audit_entries = audit.len();

        // Read back from the target and compare.
        let loaded = target.store.load()?;
        if loaded.records.len() != report.strategies {
            return Err(mismatch(format!(
                "{} strategies copied, {} read back",
                report.strategies,
                loaded.records.len()
            )));
        }
        let counted = (
            loaded.relations.len(),
            target.store.audit_tail(None, usize::MAX)?.len(),
        );
        if counted != (report.relationships, report.audit_entries) {
            return Err(mismatch(format!(
                "{} relationships and {} audit entries copied, {} and {} read back",
                report.relationships, report.audit_entries, counted.0, counted.1
            )));
        }
        let mut target_sum = Sha256::new();
        for (&id, source) in ids.iter().zip(&source_parts) {
            let (doc, _) = target.store.document(id)?;
            let versions = target.store.versions(id)?;
            let changes = target.store.parameter_changes(id, None)?;
            let trades = self.all_trades(&target.trades, id)?;
            let copied = digest(&mut target_sum, &doc, &versions, &changes, &trades);
            if let Some(part) = PARTS
                .iter()
                .zip(source.iter().zip(&copied))
                .find(|(_, (a, b))| a != b)
            {
                let detail = if part.0 == &"document" {
                    let (mine, _) = self.store.document(id)?;
                    let mine = if target.jsonb {
                        super::postgres::as_jsonb_keeps(&mine)
                    } else {
                        mine
                    };
                    first_difference(&to_value(&mine), &to_value(&doc), "")
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                return Err(mismatch(format!(
                    "strategy {id}: its {} reads back differently{detail}",
                    part.0
                )));
            }
        }
        let (source_sum, target_sum) = (hex(source_sum), hex(target_sum));
        if source_sum != target_sum {
            return Err(mismatch(format!(
                "the copy reads back differently (checksum {target_sum}, the registry's {source_sum})"
            )));
        }
        report.checksum = target_sum;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Every trade of a strategy in `trades`, in a stable order (by trade id).
    fn all_trades(&self, trades: &TradeStore, id: StrategyId) -> Result<Vec<TradeRecord>> {
        if !trades.may_have_trades(id) {
            return Ok(Vec::new());
        }
        let log = trades.log(id).map_err(RegistryError::Io)?;
        let log = log.lock().expect("trade log lock");
        let (mut all, _) = log
            .list(None, None, 0, usize::MAX)
            .map_err(RegistryError::Io)?;
        all.sort_by(|a, b| a.trade_id.cmp(&b.trade_id));
        Ok(all)
    }
}

/// What [`digest`] sums apart, in its order.
const PARTS: [&str; 4] = ["document", "versions", "parameter changes", "trades"];

/// Adds a strategy's document, versions, parameter changes and trades to the checksum of
/// the whole registry (as JSON: what memd reads back), and answers each part's own sum
/// (to name what differs when the whole ones do); each item is serialized once.
fn digest(
    total: &mut Sha256,
    doc: &StrategyDocument,
    versions: &[VersionRecord],
    changes: &[ParameterChange],
    trades: &[TradeRecord],
) -> [[u8; 32]; 4] {
    fn part<T: serde::Serialize>(total: &mut Sha256, items: &[T]) -> [u8; 32] {
        let mut sum = Sha256::new();
        for item in items {
            let json = serde_json::to_vec(item).expect("registry types serialize");
            sum.update(&json);
            total.update(&json);
        }
        sum.finalize().into()
    }
    [
        part(total, std::slice::from_ref(doc)),
        part(total, versions),
        part(total, changes),
        part(total, trades),
    ]
}

fn to_value(doc: &StrategyDocument) -> serde_json::Value {
    serde_json::to_value(doc).expect("documents serialize")
}

/// Where two JSON values first differ (a path and both sides), if they do.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let here = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => first_difference(p, q, &here),
                    (p, q) => {
                        let show = |v: Option<&Value>| v.map_or("absent".into(), Value::to_string);
                        Some(format!(
                            "{here} is {} here, {} in the copy",
                            show(p),
                            show(q)
                        ))
                    }
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]"))),
        _ => {
            // As text: -0.0 and 0.0 are equal numbers but digest differently.
            let (here, there) = (a.to_string(), b.to_string());
            (here != there).then(|| format!("{path} is {here} here, {there} in the copy"))
        }
    }
}

fn hex(sum: Sha256) -> String {
    sum.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn mismatch(what: String) -> RegistryError {
    RegistryError::Io(anyhow::anyhow!(
        "the migration did not copy faithfully: {what}; the target is left as it is for a look, the registry is unchanged"
    ))
}

#[cfg(test)]
mod tests {
    use super::first_difference;
    use serde_json::json;

    #[test]
    fn the_first_difference_names_its_path_and_both_sides() {
        let a = json!({"strategy": {"performance": {"backtest": {"sharpe_ratio": -0.0}}, "tags": ["a", "b"]}});
        let b = json!({"strategy": {"performance": {"backtest": {"sharpe_ratio": 0.0}}, "tags": ["a", "b"]}});
        assert_eq!(
            first_difference(&a, &b, "").as_deref(),
            Some(".strategy.performance.backtest.sharpe_ratio is -0.0 here, 0.0 in the copy")
        );
        let c = json!({"strategy": {"tags": ["a", "c"], "new": 1}});
        let d = json!({"strategy": {"tags": ["a", "b"]}});
        assert_eq!(
            first_difference(&c, &d, "").as_deref(),
            Some(".strategy.new is 1 here, absent in the copy")
        );
        assert_eq!(first_difference(&a, &a.clone(), ""), None);
    }
}
