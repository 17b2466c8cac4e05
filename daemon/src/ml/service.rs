//! The model as the daemon serves it: one training run at a time (with progress events),
//! the current model in memory, promotion and rollback through the store, and cached
//! predictions.
//!
//! The model in memory changes only after the new one has loaded from disk: a corrupt
//! or missing file is an error for the request that asked for it, and predictions go on
//! with the model that was serving.
//!
//! Every write to the model store happens under the `writes` lock, which
//! [`MlService::with_writes_paused`] (a backup) holds while it copies the store.

use super::model::{Hyper, Model};
use super::store::{ModelStore, StoreError};
use super::train::{self, TrainError};
use crate::bus::EventBus;
use crate::config::{MarketConfig, ModelConfig};
use crate::market::candles::{self, Candle, Timeframe};
use crate::market::features::{self, FeatureState};
use chrono::{DateTime, Utc};
use mem_protocol::events::Event;
use mem_protocol::market::Freshness;
use mem_protocol::ml::*;
use mem_protocol::{ErrorCode, RpcError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tracing::{info, warn};

/// Candles read from the end of a pair's file for a prediction: indicators are warm
/// after 50 and the EMAs of MACD have forgotten their seed long before 1,000.
pub const PREDICT_CANDLES: usize = 1000;

/// The serving model and its version.
struct Serving {
    version: String,
    model: Arc<Model>,
}

/// A read handle on the model being served (cheap to clone): a running native
/// deployment asks it at each entry, so a promotion or a rollback reaches it at its next
/// candle rather than at its next start.
#[derive(Clone)]
pub struct ServingModel(Arc<RwLock<Option<Serving>>>);

impl ServingModel {
    /// A handle on one model that never changes (benches, tests).
    pub fn fixed(version: &str, model: Arc<Model>) -> ServingModel {
        ServingModel(Arc::new(RwLock::new(Some(Serving {
            version: version.to_string(),
            model,
        }))))
    }

    /// The model served now, with its version; `None` while there is none.
    pub fn current(&self) -> Option<(String, Arc<Model>)> {
        self.0
            .read()
            .expect("serving lock")
            .as_ref()
            .map(|s| (s.version.clone(), s.model.clone()))
    }
}

/// A model just fitted, with what its version records.
struct Trained {
    model: Model,
    hyper: Hyper,
    metric: PromotionMetric,
    pairs: Vec<String>,
    timeframe: Timeframe,
    metrics: ModelMetrics,
    promoted: bool,
    reason: String,
    train_rows: usize,
    test_rows: usize,
    split_ts: i64,
    purged: usize,
    training_seconds: f64,
    started: Instant,
}

/// The model subsystem.
pub struct MlService {
    store: ModelStore,
    market_dir: PathBuf,
    pairs: Vec<String>,
    timeframe: Timeframe,
    reference_pair: Option<String>,
    conditions_timeframe: Timeframe,
    hyper: Hyper,
    metric: PromotionMetric,
    margin: f64,
    bus: Arc<EventBus>,
    serving: Arc<RwLock<Option<Serving>>>,
    load_error: Mutex<Option<String>>,
    training: AtomicBool,
    /// Held while the store is written (a new version, a pointer change).
    writes: Mutex<()>,
    /// (symbol, timeframe, last candle time, model version) -> prediction.
    cache: Mutex<HashMap<(String, String, i64, String), Prediction>>,
    /// `[market] stale_after_candles`.
    stale_after_candles: u32,
    /// (pair, timeframe) -> the conditions of a version of its source file.
    conditions_cache: Mutex<HashMap<(String, Timeframe), Arc<CachedConditions>>>,
}

/// Which version of a file: a refresh renames a new file in, which differs in all of it.
#[derive(Debug, Clone, PartialEq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            inode: m.ino(),
        })
    }
}

/// Conditions computed from one version of a source file (`mem.enhance` asks for them at
/// every signal: the file is read again only when it changed).
struct CachedConditions {
    path: PathBuf,
    stamp: FileStamp,
    conditions: crate::market::conditions::Conditions,
    newest_open_ms: i64,
    file_timeframe: Timeframe,
}

fn unavailable(message: impl Into<String>) -> RpcError {
    RpcError::new(ErrorCode::Unavailable, message)
}

fn invalid(method: &str, message: impl std::fmt::Display) -> RpcError {
    RpcError::invalid_params(method, message)
}

fn store_error(e: StoreError) -> RpcError {
    match e {
        StoreError::NoSuchVersion(_) => RpcError::not_found(e.to_string()),
        StoreError::BadVersionName(_) => RpcError::invalid_params("ml", e),
        StoreError::Nothing(_) => RpcError::new(ErrorCode::Conflict, e.to_string()),
        other => RpcError::internal(other.to_string()),
    }
}

/// A request's `timeframe` field, or `default` when absent.
fn timeframe_param(
    method: &str,
    given: &Option<String>,
    default: Timeframe,
) -> Result<Timeframe, RpcError> {
    match given {
        Some(t) => t
            .parse()
            .map_err(|e| invalid(method, format!("field `timeframe`: {e}"))),
        None => Ok(default),
    }
}

impl MlService {
    /// Opens the store under `data_dir/models` and loads the current model, if any. A
    /// model that cannot be loaded is reported (status, log), not fatal.
    pub fn open(
        data_dir: &Path,
        market: &MarketConfig,
        model: &ModelConfig,
        bus: Arc<EventBus>,
    ) -> anyhow::Result<MlService> {
        let timeframe: Timeframe = market
            .timeframe
            .as_deref()
            .unwrap_or("5m")
            .parse()
            .map_err(|e| anyhow::anyhow!("[market] timeframe: {e}"))?;
        let conditions_timeframe: Timeframe = market
            .conditions_timeframe
            .as_deref()
            .unwrap_or("1h")
            .parse()
            .map_err(|e| anyhow::anyhow!("[market] conditions_timeframe: {e}"))?;
        let d = Hyper::default();
        let hyper = Hyper {
            n_trees: model.n_trees.unwrap_or(d.n_trees),
            max_depth: model.max_depth.unwrap_or(d.max_depth),
            learning_rate: model.learning_rate.unwrap_or(d.learning_rate),
            min_samples_split: model.min_samples_split.unwrap_or(d.min_samples_split),
            seed: model.seed.unwrap_or(d.seed),
        };
        hyper
            .validate()
            .map_err(|e| anyhow::anyhow!("[model] {e}"))?;
        let stale_after_candles = match market.stale_after_candles {
            None => crate::market::freshness::STALE_AFTER_CANDLES,
            Some(0) => anyhow::bail!("[market] stale_after_candles must be 1 or more"),
            Some(n) => n,
        };
        let service = MlService {
            store: ModelStore::open(&data_dir.join("models"))?,
            market_dir: market
                .data_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("market")),
            pairs: market.pairs.clone(),
            timeframe,
            reference_pair: market.reference_pair.clone(),
            conditions_timeframe,
            hyper,
            metric: model.promotion_metric.unwrap_or(PromotionMetric::Accuracy),
            margin: model.promotion_margin.unwrap_or(0.02),
            bus,
            serving: Arc::new(RwLock::new(None)),
            load_error: Mutex::new(None),
            training: AtomicBool::new(false),
            writes: Mutex::new(()),
            cache: Mutex::new(HashMap::new()),
            stale_after_candles,
            conditions_cache: Mutex::new(HashMap::new()),
        };
        match service.store.reconcile() {
            Ok(0) => {}
            Ok(n) => warn!(
                fixed = n,
                "model statuses disagreed with the current pointer (a crash mid-promotion); corrected"
            ),
            Err(e) => {
                warn!(error = %e, "cannot check the model statuses against the current pointer")
            }
        }
        match service.store.current() {
            Ok(Some(version)) => match service.load(&version) {
                Ok(model) => {
                    info!(%version, "trend-reversal model loaded");
                    *service.serving.write().expect("serving lock") = Some(Serving {
                        version,
                        model: Arc::new(model),
                    });
                }
                Err(e) => {
                    warn!(%version, error = %e, "cannot load the current model; predictions are unavailable until one is promoted");
                    *service.load_error.lock().expect("lock") =
                        Some(format!("current model {version}: {e}"));
                }
            },
            Ok(None) => {}
            Err(e) => {
                *service.load_error.lock().expect("lock") = Some(e.to_string());
            }
        }
        Ok(service)
    }

    fn load(&self, version: &str) -> Result<Model, String> {
        let dir = self.store.dir_of(version).map_err(|e| e.to_string())?;
        if !dir.is_dir() {
            return Err(format!("no model version `{version}`"));
        }
        Model::load(&dir).map_err(|e| e.to_string())
    }

    fn progress(&self, stage: &str, done: u64, total: u64, message: String) {
        self.bus.publish(Event::ModelProgress(TrainProgress {
            stage: stage.into(),
            done,
            total,
            message,
        }));
    }

    fn changed(&self, action: &str, version: &str, reason: &str) {
        let current = self
            .serving
            .read()
            .expect("serving lock")
            .as_ref()
            .map(|s| s.version.clone());
        self.bus.publish(Event::ModelChanged(ModelChanged {
            action: action.into(),
            version: version.into(),
            current,
            reason: reason.into(),
        }));
    }

    /// The pairs training uses by default: the configured ones, else every pair found.
    pub fn default_pairs(&self, timeframe: Timeframe) -> Vec<String> {
        if self.pairs.is_empty() {
            candles::list_pairs(&self.market_dir, timeframe)
        } else {
            self.pairs.clone()
        }
    }

    pub fn status(&self) -> ModelStatusReport {
        let current = self
            .serving
            .read()
            .expect("serving lock")
            .as_ref()
            .and_then(|s| self.store.read_metrics(&s.version).ok());
        ModelStatusReport {
            current,
            versions: self.store.versions().0.len(),
            training: self.training.load(Ordering::Acquire),
            promotion_metric: self.metric,
            promotion_margin: self.margin,
            market_data_dir: self.market_dir.display().to_string(),
            pairs: self.default_pairs(self.timeframe),
            timeframe: self.timeframe.to_string(),
            load_error: self.load_error.lock().expect("lock").clone(),
        }
    }

    pub fn history(&self) -> ModelHistory {
        let (versions, bad) = self.store.versions();
        for e in bad {
            warn!(error = %e, "unreadable model version");
        }
        ModelHistory { versions }
    }

    /// `ml.train`: runs on the caller's (blocking) thread; one run at a time.
    pub fn train(&self, params: TrainParams) -> Result<TrainReport, RpcError> {
        if self.training.swap(true, Ordering::AcqRel) {
            return Err(RpcError::new(
                ErrorCode::Conflict,
                "a training run is already under way; wait for it (memctl model status)",
            ));
        }
        let result = self.train_inner(params);
        self.training.store(false, Ordering::Release);
        if let Err(e) = &result {
            self.progress("failed", 1, 1, e.message.clone());
        }
        result
    }

    fn train_inner(&self, params: TrainParams) -> Result<TrainReport, RpcError> {
        let method = "ml.train";
        let timeframe = timeframe_param(method, &params.timeframe, self.timeframe)?;
        let hyper = self.hyper_for(method, &params)?;
        let metric = params.promotion_metric.unwrap_or(self.metric);
        let pairs = if params.pairs.is_empty() {
            self.default_pairs(timeframe)
        } else {
            params.pairs.clone()
        };
        if pairs.is_empty() {
            return Err(unavailable(
                TrainError::NoPairs {
                    dir: self.market_dir.display().to_string(),
                    timeframe,
                }
                .to_string(),
            ));
        }
        let started = Instant::now();
        let mut progress = |done, total, message| self.progress("reading", done, total, message);
        let data = train::load_window(
            &self.market_dir,
            &pairs,
            timeframe,
            params.days,
            &mut progress,
        )
        .map_err(|e| match e {
            TrainError::Candles(c) => unavailable(c.to_string()),
            other => invalid(method, other),
        })?;
        let (train_idx, test_idx, split_ts, purged) = train::split(&data);
        if train_idx.len() + test_idx.len() < train::MIN_ROWS || test_idx.is_empty() {
            return Err(unavailable(
                TrainError::TooLittle {
                    usable: data.rows.len(),
                    candles: data.candles,
                    pairs: pairs.join(", "),
                }
                .to_string(),
            ));
        }
        self.progress(
            "training",
            0,
            1,
            format!(
                "{} trees on {} rows x 12 features",
                hyper.n_trees,
                train_idx.len()
            ),
        );
        let fit_started = Instant::now();
        let model = train::train_model(&data, &train_idx, &hyper).map_err(|e| match e {
            TrainError::OneClass(_) => unavailable(e.to_string()),
            other => RpcError::internal(other.to_string()),
        })?;
        let training_seconds = fit_started.elapsed().as_secs_f64();
        self.progress(
            "evaluating",
            1,
            1,
            format!("{} holdout rows", test_idx.len()),
        );
        let test_rows: Vec<_> = test_idx.iter().map(|&i| data.rows[i]).collect();
        let test_labels: Vec<u8> = test_idx.iter().map(|&i| data.labels[i]).collect();
        let eval = |m: &Model| {
            train::evaluate(m, &test_rows, &test_labels)
                .map_err(|e| RpcError::internal(e.to_string()))
        };
        let new_metrics = eval(&model)?;
        let serving = self
            .serving
            .read()
            .expect("serving lock")
            .as_ref()
            .map(|s| (s.version.clone(), s.model.clone()));
        let current_metrics = match &serving {
            Some((_, m)) => Some(eval(m)?),
            None => None,
        };
        let (promoted, reason) = train::promotion(
            &new_metrics,
            serving
                .as_ref()
                .zip(current_metrics.as_ref())
                .map(|((v, _), m)| (v.as_str(), m)),
            metric,
            self.margin,
        );
        let trained = Trained {
            model,
            hyper,
            metric,
            pairs,
            timeframe,
            metrics: new_metrics,
            promoted,
            reason,
            train_rows: train_idx.len(),
            test_rows: test_idx.len(),
            split_ts,
            purged,
            training_seconds,
            started,
        };
        let (record, notes) = self.save_trained(trained, &data)?;
        Ok(TrainReport {
            promoted: record.status == ModelStatus::Current,
            model: record,
            current_on_same_holdout: current_metrics,
            previous_version: serving.map(|(v, _)| v),
            data_notes: notes,
        })
    }

    /// The configured hyperparameters with the request's overrides, checked.
    fn hyper_for(&self, method: &str, params: &TrainParams) -> Result<Hyper, RpcError> {
        let mut hyper = self.hyper.clone();
        if let Some(h) = &params.hyper {
            hyper.n_trees = h.n_trees.unwrap_or(hyper.n_trees);
            hyper.max_depth = h.max_depth.unwrap_or(hyper.max_depth);
            hyper.learning_rate = h.learning_rate.unwrap_or(hyper.learning_rate);
            hyper.min_samples_split = h.min_samples_split.unwrap_or(hyper.min_samples_split);
            hyper.seed = h.seed.unwrap_or(hyper.seed);
        }
        hyper
            .validate()
            .map_err(|e| invalid(method, format!("field `hyper`: {e}")))?;
        Ok(hyper)
    }

    /// Writes a trained model as a new version (complete on disk before the pointer may
    /// name it), serves it if it was promoted, and announces it. Answers its record and
    /// the notes on its data.
    fn save_trained(
        &self,
        t: Trained,
        data: &train::Dataset,
    ) -> Result<(ModelVersion, Vec<String>), RpcError> {
        self.progress("saving", 0, 1, "writing the model".into());
        let writing = self.writes.lock().expect("model writes lock");
        let now = Utc::now();
        let (version, dir) = self.store.new_version_dir(now).map_err(store_error)?;
        t.model
            .save(&dir)
            .map_err(|e| RpcError::internal(format!("saving the model: {e}")))?;
        let ts = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let first = data.ts.iter().copied().min().unwrap_or(0);
        let last = data.ts.iter().copied().max().unwrap_or(0);
        let importances = t.model.feature_importances();
        let mut notes = data.notes.clone();
        notes.push(format!(
            "{} training rows left out: their label window reaches into the holdout",
            t.purged
        ));
        let newest = crate::market::freshness::freshness(
            last,
            t.timeframe,
            t.timeframe,
            self.stale_after_candles,
            now,
        );
        if newest.stale {
            notes.push(format!(
                "the newest row trained on is {} old ({}): the model learns the market of then, not of now",
                mem_protocol::market::age_words(newest.age_secs),
                newest.as_of.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        let record = ModelVersion {
            version: version.clone(),
            trained_at: now,
            status: if t.promoted {
                ModelStatus::Current
            } else {
                ModelStatus::Rejected
            },
            reason: t.reason.clone(),
            metrics: t.metrics.clone(),
            pairs: t.pairs.clone(),
            timeframe: t.timeframe.to_string(),
            train_rows: t.train_rows,
            test_rows: t.test_rows,
            data_from: ts(first),
            data_to: ts(last),
            split_at: ts(t.split_ts),
            training_seconds: t.training_seconds,
            feature_importances: FEATURE_NAMES
                .iter()
                .map(|n| n.to_string())
                .zip(importances)
                .collect(),
            hyper: serde_json::to_value(&t.hyper).unwrap_or_default(),
        };
        self.store
            .write_config(
                &version,
                &serde_json::json!({
                    "version": version,
                    "features": FEATURE_NAMES,
                    "feature_formulas": "see daemon/src/market/features.rs",
                    "label": {
                        "kind": "zigzag reversal on closes",
                        "threshold": crate::market::labels::THRESHOLD,
                        "horizon_candles": crate::market::labels::HORIZON,
                    },
                    "hyper": t.hyper,
                    "pairs": t.pairs,
                    "timeframe": t.timeframe.to_string(),
                    "split": {"train_share": train::TRAIN_SHARE, "split_at": ts(t.split_ts), "purged_rows": t.purged},
                    "promotion": {"metric": t.metric, "margin": self.margin},
                    "market_data_dir": self.market_dir,
                    "total_seconds": t.started.elapsed().as_secs_f64(),
                }),
            )
            .map_err(store_error)?;
        let mut stored = record.clone();
        stored.status = ModelStatus::Rejected; // until the pointer names it
        self.store.write_metrics(&stored).map_err(store_error)?;
        if t.promoted {
            self.store
                .set_current(&version, "promoted", &t.reason)
                .map_err(store_error)?;
            *self.serving.write().expect("serving lock") = Some(Serving {
                version: version.clone(),
                model: Arc::new(t.model),
            });
            *self.load_error.lock().expect("lock") = None;
            self.cache.lock().expect("cache lock").clear();
        }
        drop(writing);
        info!(%version, promoted = t.promoted, reason = %t.reason, accuracy = t.metrics.accuracy, roc_auc = t.metrics.roc_auc, "model trained");
        self.progress("done", 1, 1, t.reason.clone());
        self.changed(
            if t.promoted { "promoted" } else { "rejected" },
            &version,
            &t.reason,
        );
        Ok((record, notes))
    }

    /// Makes `version` current: loaded from disk first, so a broken version changes
    /// nothing.
    fn switch_to(
        &self,
        version: &str,
        action: &str,
        reason: &str,
    ) -> Result<ModelVersion, RpcError> {
        self.store.read_metrics(version).map_err(store_error)?;
        let model = self.load(version).map_err(|e| {
            unavailable(format!(
                "cannot load model {version}: {e}; the current model stays"
            ))
        })?;
        let writing = self.writes.lock().expect("model writes lock");
        self.store
            .set_current(version, action, reason)
            .map_err(store_error)?;
        *self.serving.write().expect("serving lock") = Some(Serving {
            version: version.into(),
            model: Arc::new(model),
        });
        drop(writing);
        *self.load_error.lock().expect("lock") = None;
        self.cache.lock().expect("cache lock").clear();
        self.changed(action, version, reason);
        self.store.read_metrics(version).map_err(store_error)
    }

    /// Runs `f` while the model store does not change: a version being written or a
    /// promotion under way finishes first, the next waits until `f` returns. Training
    /// itself goes on meanwhile; only its final writes wait.
    pub fn with_writes_paused<T>(&self, f: impl FnOnce() -> T) -> T {
        let _paused = self.writes.lock().expect("model writes lock");
        f()
    }

    /// Removes the model versions beyond the newest `keep` (never the current one nor the
    /// rollback target), under the writes lock: the retention job's. Answers the names
    /// removed.
    pub fn prune_versions(&self, keep: usize) -> Result<Vec<String>, String> {
        let _writing = self.writes.lock().expect("model writes lock");
        self.store.prune(keep).map_err(|e| e.to_string())
    }

    pub fn promote(&self, p: PromoteParams) -> Result<ModelVersion, RpcError> {
        if p.reason.trim().is_empty() {
            return Err(invalid("ml.promote", "field `reason`: say why"));
        }
        self.switch_to(&p.version, "promoted_by_hand", &p.reason)
    }

    pub fn rollback(&self, p: RollbackParams) -> Result<ModelVersion, RpcError> {
        let version = match p.version {
            Some(v) => v,
            None => self.store.previous().map_err(store_error)?,
        };
        let reason = p.reason.unwrap_or_else(|| "rolled back by hand".into());
        self.switch_to(&version, "rolled_back", &reason)
    }

    /// `market.conditions`: trend and volatility of the reference pair's latest candles,
    /// with how old the newest of them is.
    pub fn conditions(
        &self,
        p: mem_protocol::recommend::ConditionsParams,
    ) -> Result<mem_protocol::recommend::ConditionsReport, RpcError> {
        let method = "market.conditions";
        let timeframe = timeframe_param(method, &p.timeframe, self.conditions_timeframe)?;
        let pair = match p.pair.or_else(|| self.reference_pair()) {
            Some(pair) => pair,
            None => {
                return Err(unavailable(format!(
                    "no candles in {} to read the market from",
                    self.market_dir.display()
                )));
            }
        };
        let computed = self.conditions_of(&pair, timeframe)?;
        let c = &computed.conditions;
        let mut freshness = crate::market::freshness::freshness(
            computed.newest_open_ms,
            computed.file_timeframe,
            timeframe,
            self.stale_after_candles,
            Utc::now(),
        );
        // Only stale data can be the 2018 demo: fresh answers never read the file again.
        freshness.demo = freshness.stale && crate::market::freshness::is_demo_file(&computed.path);
        Ok(mem_protocol::recommend::ConditionsReport {
            pair,
            timeframe: timeframe.to_string(),
            trend: c.trend,
            volatility: c.volatility,
            trend_reason: c.trend_reason.clone(),
            volatility_reason: c.volatility_reason.clone(),
            indicators: c.indicators.clone(),
            candle_ts_ms: c.candle_ts_ms,
            candles: c.candles,
            freshness,
        })
    }

    /// The conditions of `pair` at `timeframe`, computed once per version of its file.
    fn conditions_of(
        &self,
        pair: &str,
        timeframe: Timeframe,
    ) -> Result<Arc<CachedConditions>, RpcError> {
        let (path, _) = train::source_file(&self.market_dir, pair, timeframe)
            .map_err(|e| unavailable(e.to_string()))?;
        let stamp = FileStamp::of(&path);
        let key = (pair.to_string(), timeframe);
        if let Some(hit) = self.conditions_cache.lock().expect("cache lock").get(&key) {
            if hit.path == path && Some(&hit.stamp) == stamp.as_ref() {
                return Ok(hit.clone());
            }
        }
        let mut notes = Vec::new();
        let read = train::read_source(&self.market_dir, pair, timeframe, &mut notes)
            .map_err(|e| unavailable(e.to_string()))?;
        let conditions = crate::market::conditions::compute(&read.candles).ok_or_else(|| {
            unavailable(format!(
                "{pair}: {} {timeframe} candles; at least {} are needed",
                read.candles.len(),
                crate::market::conditions::MIN_CANDLES
            ))
        })?;
        let computed = Arc::new(CachedConditions {
            stamp: FileStamp::of(&read.path).unwrap_or(FileStamp {
                len: 0,
                modified: None,
                inode: 0,
            }),
            path: read.path,
            conditions,
            newest_open_ms: read.newest_open_ms.unwrap_or(0),
            file_timeframe: read.file_timeframe,
        });
        let mut cache = self.conditions_cache.lock().expect("cache lock");
        if cache.len() > 1_000 {
            cache.clear();
        }
        cache.insert(key, computed.clone());
        Ok(computed)
    }

    /// How fresh `pair`'s `timeframe` candles are (what the retrain job checks before it
    /// trains on them).
    pub fn data_freshness(&self, pair: &str, timeframe: Timeframe) -> Result<Freshness, String> {
        let mut notes = Vec::new();
        let read = train::read_source(&self.market_dir, pair, timeframe, &mut notes)
            .map_err(|e| e.to_string())?;
        let newest = read
            .newest_open_ms
            .ok_or_else(|| format!("{pair}: no candles in {}", read.path.display()))?;
        let mut f = crate::market::freshness::freshness(
            newest,
            read.file_timeframe,
            timeframe,
            self.stale_after_candles,
            Utc::now(),
        );
        f.demo = f.stale && crate::market::freshness::is_demo_file(&read.path);
        Ok(f)
    }

    /// The market now, for subscribers (`market` snapshot, `market.changed`).
    pub fn market_state(&self) -> mem_protocol::market::MarketState {
        match self.conditions(Default::default()) {
            Ok(c) => mem_protocol::market::MarketState {
                conditions: Some(Box::new(c)),
                error: None,
            },
            Err(e) => mem_protocol::market::MarketState {
                conditions: None,
                error: Some(e.message),
            },
        }
    }

    /// `[market] stale_after_candles`.
    pub fn stale_after_candles(&self) -> u32 {
        self.stale_after_candles
    }

    /// The conditions timeframe (`[market] conditions_timeframe`).
    pub fn conditions_timeframe(&self) -> Timeframe {
        self.conditions_timeframe
    }

    /// `[market] reference_pair`, else BTC/USDT when it has candles, else the first pair
    /// found; `None` without any candles.
    pub fn reference_pair(&self) -> Option<String> {
        if let Some(pair) = &self.reference_pair {
            return Some(pair.clone());
        }
        let found = candles::list_pairs(&self.market_dir, self.timeframe);
        if found.iter().any(|p| p == "BTC/USDT") {
            return Some("BTC/USDT".to_string());
        }
        found.into_iter().next()
    }

    /// Where candles are read.
    pub fn market_dir(&self) -> &Path {
        &self.market_dir
    }

    /// The trading timeframe (`[market] timeframe`).
    pub fn timeframe(&self) -> Timeframe {
        self.timeframe
    }

    /// The latest cleaned candles of `symbol` at the service's timeframe (what a market
    /// state is read from), `None` when it has no data file.
    pub fn recent_candles(&self, symbol: &str) -> Option<Vec<Candle>> {
        let raw = candles::read_pair(&self.market_dir, symbol, self.timeframe).ok()?;
        let (mut clean, _) = candles::clean(raw);
        let keep = clean.len().saturating_sub(PREDICT_CANDLES);
        clean.drain(..keep);
        Some(clean)
    }

    /// The model in force and its version, for callers that predict on their own
    /// feature rows (native strategies).
    pub fn serving_model(&self) -> Option<(String, Arc<crate::ml::model::Model>)> {
        self.serving_handle().current()
    }

    /// A handle that follows the served model (see [`ServingModel`]).
    pub fn serving_handle(&self) -> ServingModel {
        ServingModel(self.serving.clone())
    }

    /// `ml.predict`.
    pub fn predict(&self, p: PredictParams) -> Result<Prediction, RpcError> {
        let method = "ml.predict";
        let Some((version, model)) = self
            .serving
            .read()
            .expect("serving lock")
            .as_ref()
            .map(|s| (s.version.clone(), s.model.clone()))
        else {
            return Err(unavailable(
                "no current model: train one first (memctl model train)",
            ));
        };
        let timeframe = timeframe_param(method, &p.timeframe, self.timeframe)?;
        let mut source = None;
        let candles: Vec<Candle> = match (&p.symbol, p.candles.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(
                    method,
                    "give either `symbol` or `candles`, not both",
                ));
            }
            (None, true) => return Err(invalid(method, "give `symbol` or `candles`")),
            (None, false) => {
                let cs: Vec<Candle> = p
                    .candles
                    .iter()
                    .map(|r| Candle {
                        ts_ms: r[0] as i64,
                        open: r[1],
                        high: r[2],
                        low: r[3],
                        close: r[4],
                        volume: r[5],
                    })
                    .collect();
                if let Some((i, why)) = cs
                    .iter()
                    .enumerate()
                    .find_map(|(i, c)| c.problem().map(|w| (i, w)))
                {
                    return Err(invalid(method, format!("field `candles[{i}]`: {why}")));
                }
                if cs.windows(2).any(|w| w[1].ts_ms <= w[0].ts_ms) {
                    return Err(invalid(
                        method,
                        "field `candles`: not in ascending time order",
                    ));
                }
                cs
            }
            (Some(symbol), true) => {
                let path = candles::find_pair_file(&self.market_dir, symbol, timeframe)
                    .map_err(|e| unavailable(e.to_string()))?;
                let raw = candles::read_file(&path).map_err(|e| unavailable(e.to_string()))?;
                source = Some(path);
                let (mut clean, _) = candles::clean(raw);
                let keep = clean.len().saturating_sub(PREDICT_CANDLES);
                clean.drain(..keep);
                clean
            }
        };
        if candles.len() <= features::WARM_UP {
            return Err(invalid(
                method,
                format!(
                    "{} candles: at least {} are needed (the 50-candle average's warm-up)",
                    candles.len(),
                    features::WARM_UP + 1
                ),
            ));
        }
        let last = candles[candles.len() - 1];
        let now = Utc::now();
        let key = (
            p.symbol.clone().unwrap_or_default(),
            timeframe.to_string(),
            last.ts_ms,
            version.clone(),
        );
        if p.symbol.is_some() {
            if let Some(hit) = self.cache.lock().expect("cache lock").get(&key) {
                let mut hit = hit.clone();
                hit.cached = true;
                hit.freshness = hit.freshness.map(|f| f.at(now));
                return Ok(hit);
            }
        }
        let mut state = FeatureState::new();
        let mut row = None;
        for c in &candles {
            row = state.update(c);
        }
        let row = row.expect("warm after 50 candles");
        let confidence = model.predict_proba(&row);
        let mut freshness = crate::market::freshness::freshness(
            last.ts_ms,
            timeframe,
            timeframe,
            self.stale_after_candles,
            now,
        );
        freshness.demo =
            freshness.stale && source.is_some_and(|p| crate::market::freshness::is_demo_file(&p));
        let prediction = Prediction {
            is_reversal: confidence >= 0.5,
            confidence,
            // sma_20 above the close: price is below its mean, a trough is the reversal.
            direction: if row[1] > 0.0 { "bullish" } else { "bearish" }.into(),
            model_version: version,
            features: FEATURE_NAMES
                .iter()
                .map(|n| n.to_string())
                .zip(row)
                .collect(),
            candle_ts_ms: last.ts_ms,
            symbol: p.symbol.clone(),
            cached: false,
            freshness: Some(freshness),
        };
        if p.symbol.is_some() {
            let mut cache = self.cache.lock().expect("cache lock");
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, prediction.clone());
        }
        Ok(prediction)
    }
}
