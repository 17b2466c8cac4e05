//! The trend-reversal classifier: gradient-boosted decision trees with logistic loss on
//! standard-scaled features.
//!
//! # Choice
//!
//! Training is done by [`forust_ml`] 0.8 (forust: Apache-2.0, pure Rust, maintained,
//! with 0.5 to 0.8 released in 2026), an XGBoost-style histogram booster. It takes the
//! seed's number of trees, maximum depth and learning rate as they are, fits the
//! logistic loss (`LogLoss`), and is deterministic: no sampling is used, and its
//! parallel histogram sums run in a fixed order, so the result does not depend on the
//! thread count (tested). It saves to JSON and reports split-gain feature importance.
//!
//! Measured on the realistic matrix of the tests (45,000 x 12 features on very
//! different scales, weak partly non-linear signal, 25% positives; holdout 10,000 rows;
//! release; medians of 3; 2 cores shared with other builds, so +-50%):
//!
//! | candidate | train | holdout ROC-AUC | verdict |
//! | --- | --- | --- | --- |
//! | forust-ml 0.8 as wrapped here, defaults | 0.40 s (0.8 s under load) | 0.660 | chosen |
//! | smartcore 0.7 `XGRegressor` (squared error only) | 29 s | 0.660 | no logistic loss, 70x slower |
//! | smartcore 0.7 `LogisticRegression` (baseline) | 0.09 s | 0.646 | baseline only |
//! | smartcore 0.7 `RandomForestClassifier`, 100 trees, depth 8 | 18 s | (labels only) | no probabilities |
//! | perpetual 3.0.0-rc.2, budget 0.5 / 1.0 | 2.5 to 7 s | 0.624 / 0.646 | cannot take the seed's settings |
//! | gbdt 0.1.3 (gbdt-rs) | 8.9 s | 0.660 | unmaintained, unseeded |
//! | lightgbm3 1.0.11 (C++ bindings) | 0.64 s | 0.661 | needs CMake >= 3.28 and libclang |
//!
//! - perpetual's 2.x releases need a nightly compiler (`#![feature(array_ptr_get)]`);
//!   3.0 is a release candidate. It has no number of trees, depth, learning rate or
//!   minimum split size, only a "budget" (learning rate = 10^-budget, as many trees as
//!   its own stopping rule wants: 37 to 40 here), so it cannot honour the seed's
//!   hyper-parameters.
//! - gbdt: last release January 2024; samples with an unseeded `thread_rng`; exact
//!   (non-histogram) splits.
//! - lightgbm3: Debian 12's CMake (3.25) is too old, so it needs CMake from PyPI plus
//!   libclang-dev, and compiles LightGBM's C++ (6.5 minutes here). Its batch of 10,000
//!   rows took 78 ms without OpenMP.
//! - smartcore stays as a dev-dependency: the baselines above (test `baselines`) and an
//!   oracle for this module's scaler and the ROC-AUC in the tests.
//!
//! # min_samples_split
//!
//! forust limits splits by hessian mass, not row counts: each child of a split must
//! hold a hessian sum of at least `min_leaf_weight`. For the logistic loss each row
//! weighs `p (1 - p)`, which for the first tree is `r (1 - r)` with `r` the base rate.
//! [`Hyper::min_samples_split`] is mapped to
//! `min_leaf_weight = min_samples_split / 2 * r (1 - r)`: at the first tree a node must
//! hold at least `min_samples_split` rows to be split and each side at least half of
//! that; later trees keep the same hessian floor. This is stricter than scikit-learn's
//! rule (which allows a 19-to-1 split of 20 rows) and is the nearest honest mapping.
//!
//! # Prediction
//!
//! After training (and after loading) the trees are compiled into a flat array with
//! both children of a split side by side, so a step down a tree is a branch-free
//! `left + (x >= threshold)`; leaves point to themselves so every tree is walked a fixed
//! number of steps, and batches go tree by tree over blocks of 64 rows, eight rows in
//! lockstep. This gives the same numbers as forust's own `predict`, bit for bit (the
//! tests check it): the same comparisons, and leaf values summed in the same order
//! after the same base score. Rows holding NaN take forust's own walk, which sends NaN
//! down its learned missing-value branch. Batches of 4,096 rows or more are spread over
//! rayon's pool; each row's result does not depend on how rows are grouped.
//!
//! # Measured (release, the matrix above, default hyper-parameters, medians)
//!
//! | what | quiet machine | other builds running |
//! | --- | --- | --- |
//! | train (scaler + 200 trees) | 0.40 s | 0.6 to 0.8 s |
//! | one prediction (12 raw features to a probability) | 2.4 µs | 2.4 to 3.8 µs |
//! | batch of 10,000 rows, 2 threads | 5.9 ms | 10.7 to 15.7 ms |
//! | batch of 10,000 rows, 1 thread | 11.7 ms | 14.8 to 18.4 ms |
//!
//! forust's own `predict` takes 40 to 70 ms for the batch, hence the compiled forest.
//! Re-measure with
//! `cargo test -p memd --release ml::model::tests::timings -- --ignored --nocapture`
//! (and `ml::model::tests::baselines` for smartcore's options).
//!
//! # Files
//!
//! [`Model::save`] writes `model.json` (forust's own JSON, with this module's
//! [`Hyper`] and the feature count under the metadata key `memd`) and `scaler.json`
//! (the [`Scaler`]), each atomically. [`Model::load`] names the file at fault when one
//! is missing or corrupt.

use crate::datadir::write_atomic;
use forust_ml::gradientbooster::ImportanceMethod;
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};

/// The model's file in a model directory.
pub const MODEL_FILE: &str = "model.json";
/// The scaler's file in a model directory.
pub const SCALER_FILE: &str = "scaler.json";
/// The deepest trees accepted, in training and in loading.
pub const MAX_DEPTH_LIMIT: usize = 16;
/// The metadata key in `model.json` holding [`ModelMeta`].
const META_KEY: &str = "memd";
/// Rows per block in batch prediction.
const BLOCK_ROWS: usize = 64;
/// Batches at least this long are predicted on rayon's pool.
const PARALLEL_ROWS: usize = 4096;
/// Rows walked down a tree in lockstep in batch prediction.
const LANES: usize = 8;

/// Hyper-parameters of the booster. The defaults are the seed's: 200 trees of depth at
/// most 5, learning rate 0.1, nodes of fewer than 20 rows not split, seed 42.
///
/// In JSON the fields are snake_case and a missing field takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct Hyper {
    /// Number of boosting rounds (trees), at least 1.
    pub n_trees: usize,
    /// Maximum depth of a tree (the root has depth 0), 1 to [`MAX_DEPTH_LIMIT`].
    pub max_depth: usize,
    /// Shrinkage applied to each tree's leaf values, in (0, 1]. forust keeps it as f32.
    pub learning_rate: f64,
    /// Minimum rows in a node for it to be split, at least 2; see the module
    /// documentation for how it maps to forust's hessian floor.
    pub min_samples_split: usize,
    /// Seed of any randomness. The defaults use none (no row or column sampling), so
    /// training is deterministic whatever the seed; it is kept for settings that sample.
    pub seed: u64,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper {
            n_trees: 200,
            max_depth: 5,
            learning_rate: 0.1,
            min_samples_split: 20,
            seed: 42,
        }
    }
}

impl Hyper {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |name, reason: String| Err(ModelError::InvalidHyper { name, reason });
        if self.n_trees == 0 {
            return bad("n_trees", "must be at least 1".into());
        }
        if !(1..=MAX_DEPTH_LIMIT).contains(&self.max_depth) {
            return bad(
                "max_depth",
                format!("must be 1 to {MAX_DEPTH_LIMIT}, got {}", self.max_depth),
            );
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad(
                "learning_rate",
                format!("must be in (0, 1], got {}", self.learning_rate),
            );
        }
        if self.min_samples_split < 2 {
            return bad(
                "min_samples_split",
                format!("must be at least 2, got {}", self.min_samples_split),
            );
        }
        Ok(())
    }
}

/// Errors of training, evaluation, saving and loading. Input errors name the row,
/// feature or label at fault; file errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No rows, or rows without features.
    #[error("empty data: {0}")]
    EmptyData(&'static str),
    /// Features (or probabilities) and labels do not pair up.
    #[error("{rows} {what} but {labels} labels: they must pair up one to one")]
    LengthMismatch {
        what: &'static str,
        rows: usize,
        labels: usize,
    },
    /// A row's length differs from the first row's.
    #[error("row {row} has {len} features, but row 0 has {expected}")]
    RaggedRow {
        row: usize,
        len: usize,
        expected: usize,
    },
    /// NaN or infinity in the features.
    #[error("row {row}, feature {feature} is {value}: features must be finite numbers")]
    NonFinite {
        row: usize,
        feature: usize,
        value: f64,
    },
    /// A label other than 0 or 1.
    #[error("label {index} is {value}: labels must be 0 or 1")]
    InvalidLabel { index: usize, value: u8 },
    /// Only one class among the labels.
    #[error("all labels are {label}: training needs both classes (0 and 1)")]
    SingleClass { label: u8 },
    /// A probability outside [0, 1] or NaN, in evaluation.
    #[error("probability {index} is {value}: probabilities must be in [0, 1]")]
    InvalidProbability { index: usize, value: f64 },
    /// A hyper-parameter out of range.
    #[error("invalid hyper-parameter {name}: {reason}")]
    InvalidHyper { name: &'static str, reason: String },
    /// forust refused or failed.
    #[error("training failed: {0}")]
    Booster(String),
    /// A model file is not there.
    #[error("{}: file is missing", path.display())]
    MissingFile { path: PathBuf },
    /// A model file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A model file could not be written.
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    /// A model file is truncated, not JSON, or inconsistent with the other.
    #[error("{} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

/// Per-feature standardisation, `(x - mean) / std`, fitted on the training rows only
/// and saved with the model as `scaler.json`.
///
/// `std` is the population standard deviation (divisor n, as scikit-learn's and
/// smartcore's `StandardScaler`). A feature with zero variance in the training rows gets
/// `std = 1`, so it scales to `x - mean` (0 on the training rows) instead of dividing by
/// zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Scaler {
    /// Mean of each feature over the training rows.
    pub mean: Vec<f64>,
    /// Population standard deviation of each feature (1 where it is 0).
    pub std: Vec<f64>,
}

impl Scaler {
    /// Fits on rows of equal length (`&[Vec<f64>]`, `&[[f64; N]]`, ...), which must be
    /// finite.
    pub fn fit<R: AsRef<[f64]>>(rows: &[R]) -> Result<Scaler, ModelError> {
        check_features(rows)?;
        Ok(Scaler::fit_checked(rows))
    }

    fn fit_checked<R: AsRef<[f64]>>(rows: &[R]) -> Scaler {
        let d = rows[0].as_ref().len();
        let n = rows.len() as f64;
        let mut mean = vec![0.0; d];
        for row in rows {
            for (m, x) in mean.iter_mut().zip(row.as_ref()) {
                *m += x;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut std = vec![0.0; d];
        for row in rows {
            for ((s, x), m) in std.iter_mut().zip(row.as_ref()).zip(&mean) {
                *s += (x - m) * (x - m);
            }
        }
        for s in &mut std {
            *s = (*s / n).sqrt();
            if *s == 0.0 || !s.is_finite() {
                *s = 1.0;
            }
        }
        Scaler { mean, std }
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Writes the scaled `row` into `out`.
    ///
    /// # Panics
    /// When `row` or `out` is not [`Scaler::n_features`] long.
    pub fn transform_row(&self, row: &[f64], out: &mut [f64]) {
        assert_eq!(
            row.len(),
            self.mean.len(),
            "row has {} features, the scaler {}",
            row.len(),
            self.mean.len()
        );
        assert_eq!(out.len(), self.mean.len(), "output length");
        for (((o, x), m), s) in out.iter_mut().zip(row).zip(&self.mean).zip(&self.std) {
            *o = (x - m) / s;
        }
    }

    /// The reason a loaded scaler cannot serve a model of `n_features` features.
    fn check(&self, n_features: usize) -> Result<(), String> {
        if self.mean.len() != n_features || self.std.len() != n_features {
            return Err(format!(
                "{} means and {} standard deviations for a model of {n_features} features",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some(j) = self.mean.iter().position(|m| !m.is_finite()) {
            return Err(format!("mean of feature {j} is not finite"));
        }
        if let Some(j) = self.std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(format!(
                "standard deviation of feature {j} is {}, not a positive number",
                self.std[j]
            ));
        }
        Ok(())
    }
}

/// What `model.json` carries for this module, beside forust's own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
struct ModelMeta {
    n_features: usize,
    hyper: Hyper,
}

/// A trained classifier: scaler, forust booster, and the booster compiled for fast
/// prediction. Raw (unscaled) features go in; the model scales them.
pub struct Model {
    scaler: Scaler,
    booster: GradientBooster,
    meta: ModelMeta,
    forest: Forest,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("n_features", &self.meta.n_features)
            .field("hyper", &self.meta.hyper)
            .field("n_trees", &self.forest.trees.len())
            .field("base_score", &self.forest.base_score)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Fits the scaler on `x`, then boosts trees on the scaled rows against `y`.
    ///
    /// `x` holds one row per sample, all of the same length, finite; `y` one 0/1 label
    /// per row, with both classes present.
    pub fn train<R: AsRef<[f64]>>(x: &[R], y: &[u8], hyper: &Hyper) -> Result<Model, ModelError> {
        hyper.validate()?;
        if x.is_empty() {
            return Err(ModelError::EmptyData("no rows"));
        }
        if x.len() != y.len() {
            return Err(ModelError::LengthMismatch {
                what: "feature rows",
                rows: x.len(),
                labels: y.len(),
            });
        }
        let n_features = check_features(x)?;
        let positives = check_labels(y)?;

        let scaler = Scaler::fit_checked(x);
        let n = x.len();
        // forust reads column-major data.
        let mut columns = vec![0.0; n * n_features];
        let mut scaled = vec![0.0; n_features];
        for (i, row) in x.iter().enumerate() {
            scaler.transform_row(row.as_ref(), &mut scaled);
            for (j, v) in scaled.iter().enumerate() {
                columns[j * n + i] = *v;
            }
        }
        let labels: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();

        let rate = positives as f64 / n as f64;
        let min_leaf_weight = hyper.min_samples_split as f64 / 2.0 * rate * (1.0 - rate);
        let mut booster = GradientBooster::default()
            .set_objective_type(ObjectiveType::LogLoss)
            .set_iterations(hyper.n_trees)
            .set_learning_rate(hyper.learning_rate as f32)
            .set_max_depth(hyper.max_depth)
            .set_min_leaf_weight(min_leaf_weight as f32)
            .set_seed(hyper.seed)
            // Pinned so that a change of forust's defaults cannot change our models.
            .set_l1(0.0)
            .set_l2(1.0)
            .set_gamma(0.0)
            .set_nbins(256)
            .set_subsample(1.0)
            .set_colsample_bytree(1.0)
            .set_initialize_base_score(true)
            .set_parallel(true);
        booster
            .fit_unweighted(&Matrix::new(&columns, n, n_features), &labels, None)
            .map_err(|e| ModelError::Booster(e.to_string()))?;

        let meta = ModelMeta {
            n_features,
            hyper: hyper.clone(),
        };
        let meta_json = serde_json::to_string(&meta).expect("the metadata serialises");
        booster.insert_metadata(META_KEY.to_string(), meta_json);
        let forest = Forest::compile(&booster, n_features).map_err(ModelError::Booster)?;
        Ok(Model {
            scaler,
            booster,
            meta,
            forest,
        })
    }

    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.meta.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.forest.trees.len()
    }

    /// The hyper-parameters the model was trained with.
    pub fn hyper(&self) -> &Hyper {
        &self.meta.hyper
    }

    /// The scaler fitted on the training rows.
    pub fn scaler(&self) -> &Scaler {
        &self.scaler
    }

    /// Probability of label 1 for one row of raw features.
    ///
    /// # Panics
    /// When `row` is not [`Model::n_features`] long.
    pub fn predict_proba(&self, row: &[f64]) -> f64 {
        let d = self.meta.n_features;
        let mut stack = [0.0; 32];
        let mut heap = Vec::new();
        let scaled = if d <= stack.len() {
            &mut stack[..d]
        } else {
            heap.resize(d, 0.0);
            &mut heap[..]
        };
        self.scaler.transform_row(row, scaled);
        sigmoid(self.raw_score(scaled))
    }

    /// Probabilities of label 1 for many rows of raw features, in order. Each equals
    /// [`Model::predict_proba`] of its row, bit for bit.
    ///
    /// # Panics
    /// When a row is not [`Model::n_features`] long.
    pub fn predict_proba_batch<R: AsRef<[f64]> + Sync>(&self, rows: &[R]) -> Vec<f64> {
        let mut out = vec![0.0; rows.len()];
        if rows.len() >= PARALLEL_ROWS {
            out.par_chunks_mut(BLOCK_ROWS)
                .zip(rows.par_chunks(BLOCK_ROWS))
                .for_each(|(out, rows)| self.predict_block(rows, out));
        } else {
            out.chunks_mut(BLOCK_ROWS)
                .zip(rows.chunks(BLOCK_ROWS))
                .for_each(|(out, rows)| self.predict_block(rows, out));
        }
        out
    }

    /// Split-gain importance of each feature (the total gain of the splits on it),
    /// normalised to sum to 1; all zeros when no tree has a split.
    pub fn feature_importances(&self) -> Vec<f64> {
        let mut importance = vec![0.0; self.meta.n_features];
        let gains = self
            .booster
            .calculate_feature_importance(ImportanceMethod::TotalGain, false);
        for (feature, gain) in gains {
            if let Some(slot) = importance.get_mut(feature) {
                *slot = f64::from(gain);
            }
        }
        let total: f64 = importance.iter().sum();
        if total > 0.0 {
            importance.iter_mut().for_each(|v| *v /= total);
        }
        importance
    }

    /// Writes `model.json` and `scaler.json` into `dir` (created if needed), each
    /// atomically.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        std::fs::create_dir_all(dir).map_err(|e| ModelError::Write {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let model_path = dir.join(MODEL_FILE);
        let model_json = self.booster.json_dump().map_err(|e| ModelError::Write {
            path: model_path.clone(),
            reason: e.to_string(),
        })?;
        let scaler_path = dir.join(SCALER_FILE);
        let scaler_json =
            serde_json::to_string_pretty(&self.scaler).expect("the scaler serialises");
        for (path, bytes) in [(model_path, model_json), (scaler_path, scaler_json)] {
            write_atomic(&path, bytes.as_bytes(), 0o644).map_err(|e| ModelError::Write {
                path: path.clone(),
                reason: format!("{e:#}"),
            })?;
        }
        Ok(())
    }

    /// Reads a model saved by [`Model::save`] from `dir`. A missing, unreadable,
    /// truncated or otherwise corrupt file, or two files that do not belong together,
    /// give an error naming the file.
    pub fn load(dir: &Path) -> Result<Model, ModelError> {
        let model_path = dir.join(MODEL_FILE);
        let scaler_path = dir.join(SCALER_FILE);
        let corrupt = |path: &Path, reason: String| ModelError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };

        let text = read_text(&model_path)?;
        let booster = GradientBooster::from_json(&text)
            .map_err(|e| corrupt(&model_path, format!("not a forust model: {e}")))?;
        let meta_json = booster.get_metadata(&META_KEY.to_string()).ok_or_else(|| {
            corrupt(
                &model_path,
                format!("no `{META_KEY}` metadata (not written by Model::save)"),
            )
        })?;
        let meta: ModelMeta = serde_json::from_str(&meta_json)
            .map_err(|e| corrupt(&model_path, format!("bad `{META_KEY}` metadata: {e}")))?;
        if meta.n_features == 0 {
            return Err(corrupt(&model_path, "a model of 0 features".into()));
        }
        let forest =
            Forest::compile(&booster, meta.n_features).map_err(|e| corrupt(&model_path, e))?;

        let text = read_text(&scaler_path)?;
        let scaler: Scaler = serde_json::from_str(&text)
            .map_err(|e| corrupt(&scaler_path, format!("not a scaler: {e}")))?;
        scaler
            .check(meta.n_features)
            .map_err(|e| corrupt(&scaler_path, e))?;

        Ok(Model {
            scaler,
            booster,
            meta,
            forest,
        })
    }

    /// The log-odds of one scaled row.
    fn raw_score(&self, scaled: &[f64]) -> f64 {
        if scaled.iter().any(|v| v.is_nan()) {
            self.raw_score_forust(scaled)
        } else {
            self.forest.score(scaled)
        }
    }

    /// forust's own walk (follows the missing-value branches), summed in the same order.
    fn raw_score_forust(&self, scaled: &[f64]) -> f64 {
        let mut z = self.booster.base_score;
        for tree in &self.booster.trees[..self.forest.trees.len()] {
            z += tree.predict_row_from_row_slice(scaled, &self.booster.missing);
        }
        z
    }

    /// Predicts up to [`BLOCK_ROWS`] rows into `out`.
    fn predict_block<R: AsRef<[f64]>>(&self, rows: &[R], out: &mut [f64]) {
        let d = self.meta.n_features;
        let mut scaled = vec![0.0; rows.len() * d];
        for (row, buf) in rows.iter().zip(scaled.chunks_exact_mut(d)) {
            self.scaler.transform_row(row.as_ref(), buf);
        }
        let blocks: Vec<&[f64]> = scaled.chunks_exact(d).collect();
        if blocks.iter().any(|r| r.iter().any(|v| v.is_nan())) {
            for (r, o) in blocks.iter().zip(out.iter_mut()) {
                *o = sigmoid(self.raw_score(r));
            }
        } else {
            self.forest.score_block(&blocks, out);
            out.iter_mut().for_each(|z| *z = sigmoid(*z));
        }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Reads a whole file as UTF-8, telling a missing file from other failures.
fn read_text(path: &Path) -> Result<String, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ModelError::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            ModelError::Read {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    String::from_utf8(bytes).map_err(|e| ModelError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("not UTF-8 text ({e})"),
    })
}

/// Checks that the rows are non-empty, of equal non-zero length and finite; returns
/// their length.
fn check_features<R: AsRef<[f64]>>(x: &[R]) -> Result<usize, ModelError> {
    let Some(first) = x.first() else {
        return Err(ModelError::EmptyData("no rows"));
    };
    let expected = first.as_ref().len();
    if expected == 0 {
        return Err(ModelError::EmptyData("rows have no features"));
    }
    for (row, values) in x.iter().enumerate() {
        let values = values.as_ref();
        if values.len() != expected {
            return Err(ModelError::RaggedRow {
                row,
                len: values.len(),
                expected,
            });
        }
        if let Some(feature) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                row,
                feature,
                value: values[feature],
            });
        }
    }
    Ok(expected)
}

/// Checks that the labels are 0/1 with both classes; returns the number of 1s.
fn check_labels(y: &[u8]) -> Result<usize, ModelError> {
    if let Some(index) = y.iter().position(|&v| v > 1) {
        return Err(ModelError::InvalidLabel {
            index,
            value: y[index],
        });
    }
    let positives = y.iter().filter(|&&v| v == 1).count();
    match positives {
        0 => Err(ModelError::SingleClass { label: 0 }),
        p if p == y.len() => Err(ModelError::SingleClass { label: 1 }),
        p => Ok(p),
    }
}

/// One node of the compiled forest. A split sends a row to `left` when
/// `x[feature] < threshold` and to `left + 1` otherwise. A leaf has a NaN threshold
/// (every comparison is false) and `left` one below its own index, so it keeps the row.
#[derive(Debug, Clone, Copy)]
struct Node {
    threshold: f64,
    feature: u32,
    left: u32,
}

/// 1 when a row goes right: `!(value < threshold)`, forust's rule for non-NaN values.
/// Written negated on purpose: a leaf's NaN threshold sends every value "right", which
/// is the leaf itself.
#[inline(always)]
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn goes_right(value: f64, threshold: f64) -> usize {
    usize::from(!(value < threshold))
}

/// The trees flattened for prediction (see the module documentation).
#[derive(Debug, Clone)]
struct Forest {
    base_score: f64,
    nodes: Vec<Node>,
    /// Leaf values, by node index (0 for splits).
    values: Vec<f64>,
    /// Each tree's root index and depth (the steps that reach any of its leaves).
    trees: Vec<(u32, u32)>,
}

impl Forest {
    /// Compiles forust's trees, checking what a corrupt file could break: node indices,
    /// feature indices, cycles and depth.
    fn compile(booster: &GradientBooster, n_features: usize) -> Result<Forest, String> {
        let n_trees = booster
            .prediction_iteration
            .unwrap_or(booster.trees.len())
            .min(booster.trees.len());
        if n_trees == 0 {
            return Err("the model has no trees".into());
        }
        if !booster.base_score.is_finite() {
            return Err(format!("base score is {}", booster.base_score));
        }
        // Node 0 is a placeholder, so that every leaf's `left` (its index - 1) exists.
        let placeholder = Node {
            threshold: f64::NAN,
            feature: 0,
            left: 0,
        };
        let mut nodes = vec![placeholder];
        let mut values = vec![0.0];
        let mut trees = Vec::with_capacity(n_trees);
        for (t, tree) in booster.trees[..n_trees].iter().enumerate() {
            let src = &tree.nodes;
            if src.is_empty() {
                return Err(format!("tree {t} has no nodes"));
            }
            let root = nodes.len();
            nodes.push(placeholder);
            values.push(0.0);
            let mut depth = 0;
            let mut visited = 0;
            let mut queue = VecDeque::from([(0usize, root, 0usize)]);
            while let Some((from, to, level)) = queue.pop_front() {
                visited += 1;
                if visited > src.len() || level > MAX_DEPTH_LIMIT {
                    return Err(format!(
                        "tree {t} is cyclic or deeper than {MAX_DEPTH_LIMIT}"
                    ));
                }
                let node = &src[from];
                if node.is_leaf {
                    nodes[to].left = (to - 1) as u32;
                    values[to] = f64::from(node.weight_value);
                    if !values[to].is_finite() {
                        return Err(format!("tree {t} has a non-finite leaf value"));
                    }
                    depth = depth.max(level);
                    continue;
                }
                if node.split_feature >= n_features {
                    return Err(format!(
                        "tree {t} splits on feature {} of {n_features}",
                        node.split_feature
                    ));
                }
                let (l, r) = (node.left_child, node.right_child);
                if l >= src.len() || r >= src.len() || node.missing_node >= src.len() {
                    return Err(format!("tree {t} has a child index out of range"));
                }
                let left = nodes.len();
                nodes.extend([placeholder, placeholder]);
                values.extend([0.0, 0.0]);
                nodes[to] = Node {
                    threshold: node.split_value,
                    feature: node.split_feature as u32,
                    left: left as u32,
                };
                queue.push_back((l, left, level + 1));
                queue.push_back((r, left + 1, level + 1));
            }
            trees.push((root as u32, depth as u32));
        }
        if u32::try_from(nodes.len()).is_err() {
            return Err("too many nodes".into());
        }
        Ok(Forest {
            base_score: booster.base_score,
            nodes,
            values,
            trees,
        })
    }

    #[inline]
    fn leaf(&self, root: u32, depth: u32, x: &[f64]) -> usize {
        let mut i = root as usize;
        for _ in 0..depth {
            let node = &self.nodes[i];
            i = node.left as usize + goes_right(x[node.feature as usize], node.threshold);
        }
        i
    }

    /// Log-odds of one scaled row without NaN.
    fn score(&self, x: &[f64]) -> f64 {
        let mut z = self.base_score;
        for &(root, depth) in &self.trees {
            z += self.values[self.leaf(root, depth, x)];
        }
        z
    }

    /// Log-odds of a block of scaled rows without NaN, tree by tree, [`LANES`] rows in
    /// lockstep (independent walks the CPU overlaps). Each row's sum runs in the same
    /// order as in [`Forest::score`].
    fn score_block(&self, rows: &[&[f64]], out: &mut [f64]) {
        out.iter_mut().for_each(|z| *z = self.base_score);
        for &(root, depth) in &self.trees {
            let mut lanes = rows.chunks_exact(LANES);
            let mut sums = out.chunks_exact_mut(LANES);
            for (x, z) in (&mut lanes).zip(&mut sums) {
                let mut i = [root as usize; LANES];
                for _ in 0..depth {
                    for k in 0..LANES {
                        let node = &self.nodes[i[k]];
                        i[k] = node.left as usize
                            + goes_right(x[k][node.feature as usize], node.threshold);
                    }
                }
                for k in 0..LANES {
                    z[k] += self.values[i[k]];
                }
            }
            for (x, z) in lanes.remainder().iter().zip(sums.into_remainder()) {
                *z += self.values[self.leaf(root, depth, x)];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::metrics;
    use std::time::Instant;

    /// SplitMix64: a small seeded generator for test data.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let u1 = self.uniform().max(1e-300);
            let u2 = self.uniform();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    /// label = [x0 + x1 + noise > 0], 4 more pure-noise features, on assorted scales.
    fn easy(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<u8>) {
        let mut rng = Rng(seed);
        let mut x = Vec::with_capacity(n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let z: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
            y.push(u8::from(z[0] + z[1] + 0.3 * rng.normal() > 0.0));
            x.push(vec![
                z[0] * 10.0 + 3.0,
                z[1] * 0.01,
                z[2],
                z[3] * 1000.0 - 50.0,
                z[4],
                z[5],
            ]);
        }
        (x, y)
    }

    /// The realistic matrix: 12 features on very different scales, a weak, partly
    /// non-linear signal in 7 of them, about 25% positives.
    fn realistic(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<u8>) {
        const SCALE: [f64; 12] = [
            1.0, 100.0, 0.01, 5.0, 1.0, 1000.0, 1.0, 0.5, 20.0, 1.0, 3.0, 1e4,
        ];
        const SHIFT: [f64; 12] = [
            0.0, 5000.0, 0.1, -3.0, 0.0, 1e5, 2.0, 0.0, 100.0, 0.0, 0.0, 1e6,
        ];
        let mut rng = Rng(seed);
        let mut x = Vec::with_capacity(n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let z: Vec<f64> = (0..12).map(|_| rng.normal()).collect();
            let logit = -1.45 + 0.45 * z[0] - 0.35 * z[1]
                + 0.3 * z[2] * z[3]
                + if z[4] > 0.8 { 0.4 } else { 0.0 }
                + 0.25 * z[5].abs()
                - 0.2 * z[6].max(0.0);
            y.push(u8::from(rng.uniform() < sigmoid(logit)));
            x.push((0..12).map(|j| z[j] * SCALE[j] + SHIFT[j]).collect());
        }
        (x, y)
    }

    fn small_hyper() -> Hyper {
        Hyper {
            n_trees: 40,
            max_depth: 4,
            ..Hyper::default()
        }
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|p| p.to_bits()).collect()
    }

    fn err<T: fmt::Debug>(r: Result<T, ModelError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn hyper_defaults_and_serde() {
        let h = Hyper::default();
        assert_eq!(
            (
                h.n_trees,
                h.max_depth,
                h.learning_rate,
                h.min_samples_split,
                h.seed
            ),
            (200, 5, 0.1, 20, 42)
        );
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"n_trees": 200, "max_depth": 5, "learning_rate": 0.1,
                "min_samples_split": 20, "seed": 42})
        );
        let partial: Hyper = serde_json::from_str(r#"{"n_trees": 50}"#).unwrap();
        assert_eq!(
            partial,
            Hyper {
                n_trees: 50,
                ..Hyper::default()
            }
        );
        h.validate().unwrap();
    }

    #[test]
    fn scaler_on_hand_data() {
        let rows = [
            [1.0, 10.0, 5.0],
            [2.0, 20.0, 5.0],
            [3.0, 30.0, 5.0],
            [4.0, 40.0, 5.0],
        ];
        let s = Scaler::fit(&rows).unwrap();
        assert_eq!(s.mean, vec![2.5, 25.0, 5.0]);
        let pop = (1.25f64).sqrt();
        assert!((s.std[0] - pop).abs() < 1e-15 && (s.std[1] - 10.0 * pop).abs() < 1e-12);
        // Zero variance: std 1, so the column scales to x - mean.
        assert_eq!(s.std[2], 1.0);
        let mut out = [0.0; 3];
        s.transform_row(&[4.0, 10.0, 7.0], &mut out);
        assert!((out[0] - 1.5 / pop).abs() < 1e-15);
        assert!((out[1] + 1.5 / pop).abs() < 1e-12);
        assert_eq!(out[2], 2.0);
        // Vec rows give the same scaler, and it survives JSON.
        let vec_rows: Vec<Vec<f64>> = rows.iter().map(|r| r.to_vec()).collect();
        assert_eq!(Scaler::fit(&vec_rows).unwrap(), s);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"mean\"") && json.contains("\"std\""));
        assert_eq!(serde_json::from_str::<Scaler>(&json).unwrap(), s);
    }

    #[test]
    fn scaler_agrees_with_smartcore() {
        use smartcore::api::{Transformer, UnsupervisedEstimator};
        use smartcore::linalg::basic::arrays::Array;
        use smartcore::linalg::basic::matrix::DenseMatrix;
        use smartcore::preprocessing::numerical::{StandardScaler, StandardScalerParameters};
        let (x, _) = easy(200, 3);
        let ours = Scaler::fit(&x).unwrap();
        let m = DenseMatrix::from_2d_vec(&x).unwrap();
        let theirs = StandardScaler::fit(&m, StandardScalerParameters::default()).unwrap();
        let t = theirs.transform(&m).unwrap();
        let mut out = vec![0.0; 6];
        for (i, row) in x.iter().enumerate() {
            ours.transform_row(row, &mut out);
            for (j, v) in out.iter().enumerate() {
                assert!((v - t.get((i, j))).abs() < 1e-9, "row {i} feature {j}");
            }
        }
    }

    #[test]
    fn scaler_rejects_bad_rows() {
        assert!(err(Scaler::fit::<Vec<f64>>(&[])).contains("no rows"));
        assert!(err(Scaler::fit(&[vec![1.0], vec![f64::NAN]])).contains("row 1, feature 0 is NaN"));
    }

    #[test]
    fn learns_a_learnable_problem() {
        let (x, y) = easy(3000, 1);
        let (xt, yt) = easy(2000, 2);
        let model = Model::train(&x, &y, &small_hyper()).unwrap();
        assert_eq!(model.n_trees(), 40);
        let p = model.predict_proba_batch(&xt);
        let e = metrics::evaluate(&yt, &p).unwrap();
        assert!(e.roc_auc.unwrap() > 0.9, "{e:?}");
        assert!(e.accuracy > e.majority_baseline_accuracy + 0.2, "{e:?}");
        assert!(p.iter().all(|p| (0.0..=1.0).contains(p)));

        let imp = model.feature_importances();
        assert_eq!(imp.len(), 6);
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(
            imp[0] + imp[1] > 0.8,
            "signal features should dominate: {imp:?}"
        );
        // Depth is honoured.
        assert!(model.forest.trees.iter().all(|&(_, d)| d as usize <= 4));
    }

    #[test]
    fn training_is_deterministic() {
        let (x, y) = easy(1500, 5);
        let (xt, _) = easy(500, 6);
        let a = Model::train(&x, &y, &small_hyper()).unwrap();
        let b = Model::train(&x, &y, &small_hyper()).unwrap();
        assert_eq!(
            bits(&a.predict_proba_batch(&xt)),
            bits(&b.predict_proba_batch(&xt))
        );
        assert_eq!(
            a.booster.json_dump().unwrap(),
            b.booster.json_dump().unwrap()
        );
        // Whatever the number of threads.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let c = one.install(|| Model::train(&x, &y, &small_hyper()).unwrap());
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let d = three.install(|| Model::train(&x, &y, &small_hyper()).unwrap());
        let json = a.booster.json_dump().unwrap();
        assert_eq!(c.booster.json_dump().unwrap(), json);
        assert_eq!(d.booster.json_dump().unwrap(), json);
    }

    #[test]
    fn fast_prediction_equals_forust_bit_for_bit() {
        let (x, y) = realistic(3000, 11);
        let (mut xt, _) = realistic(5000, 12);
        let model = Model::train(&x, &y, &small_hyper()).unwrap();
        // Some rows with NaN (forust's missing branch) and infinities.
        xt[3][2] = f64::NAN;
        xt[70][0] = f64::INFINITY;
        xt[71][5] = f64::NEG_INFINITY;
        xt[4999][11] = f64::NAN;

        let n = xt.len();
        let d = model.n_features();
        let mut columns = vec![0.0; n * d];
        let mut scaled = vec![0.0; d];
        for (i, row) in xt.iter().enumerate() {
            model.scaler.transform_row(row, &mut scaled);
            for j in 0..d {
                columns[j * n + i] = scaled[j];
            }
        }
        let theirs: Vec<f64> = model
            .booster
            .predict(&Matrix::new(&columns, n, d), false)
            .into_iter()
            .map(sigmoid)
            .collect();
        // Large batch (parallel), small batch (sequential) and single rows.
        let batch = model.predict_proba_batch(&xt);
        let small = model.predict_proba_batch(&xt[..1003]);
        let single: Vec<f64> = xt.iter().map(|r| model.predict_proba(r)).collect();
        assert_eq!(bits(&batch), bits(&theirs));
        assert_eq!(bits(&small), bits(&theirs[..1003]));
        assert_eq!(bits(&single), bits(&theirs));
        assert!(model.predict_proba_batch::<Vec<f64>>(&[]).is_empty());
    }

    #[test]
    fn save_and_load_give_identical_predictions() {
        let (x, y) = easy(1500, 7);
        let (xt, _) = easy(500, 8);
        let model = Model::train(&x, &y, &small_hyper()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("v1");
        model.save(&target).unwrap();
        assert!(target.join(MODEL_FILE).is_file() && target.join(SCALER_FILE).is_file());
        let loaded = Model::load(&target).unwrap();
        assert_eq!(loaded.n_features(), 6);
        assert_eq!(loaded.hyper(), model.hyper());
        assert_eq!(loaded.scaler(), model.scaler());
        assert_eq!(
            bits(&loaded.predict_proba_batch(&xt)),
            bits(&model.predict_proba_batch(&xt))
        );
        assert_eq!(loaded.feature_importances(), model.feature_importances());
        // Saving the loaded model writes the same files.
        let again = dir.path().join("v2");
        loaded.save(&again).unwrap();
        for file in [MODEL_FILE, SCALER_FILE] {
            assert_eq!(
                std::fs::read(target.join(file)).unwrap(),
                std::fs::read(again.join(file)).unwrap()
            );
        }
    }

    #[test]
    fn constant_feature_trains() {
        let (mut x, y) = easy(800, 9);
        x.iter_mut().for_each(|r| r[2] = 7.0);
        let model = Model::train(&x, &y, &small_hyper()).unwrap();
        assert_eq!(model.scaler().std[2], 1.0);
        assert_eq!(model.feature_importances()[2], 0.0);
        assert!(model.predict_proba(&x[0]).is_finite());
    }

    #[test]
    fn bad_training_input() {
        let h = Hyper::default();
        let (x, y) = easy(50, 4);
        assert!(err(Model::train::<Vec<f64>>(&[], &[], &h)).contains("empty data: no rows"));
        assert!(
            err(Model::train(&[vec![], vec![]], &[0, 1], &h)).contains("rows have no features")
        );
        assert_eq!(
            err(Model::train(&x, &y[..49], &h)),
            "50 feature rows but 49 labels: they must pair up one to one"
        );
        let mut ragged = x.clone();
        ragged[7].pop();
        assert_eq!(
            err(Model::train(&ragged, &y, &h)),
            "row 7 has 5 features, but row 0 has 6"
        );
        let mut nan = x.clone();
        nan[12][3] = f64::NAN;
        assert_eq!(
            err(Model::train(&nan, &y, &h)),
            "row 12, feature 3 is NaN: features must be finite numbers"
        );
        let mut inf = x.clone();
        inf[0][5] = f64::NEG_INFINITY;
        assert!(err(Model::train(&inf, &y, &h)).contains("row 0, feature 5 is -inf"));
        assert_eq!(
            err(Model::train(&x, &[0; 50], &h)),
            "all labels are 0: training needs both classes (0 and 1)"
        );
        assert!(err(Model::train(&x, &[1; 50], &h)).contains("all labels are 1"));
        let mut two = y.clone();
        two[9] = 2;
        assert_eq!(
            err(Model::train(&x, &two, &h)),
            "label 9 is 2: labels must be 0 or 1"
        );
    }

    #[test]
    fn bad_hyper_parameters() {
        let (x, y) = easy(50, 4);
        let cases = [
            (
                Hyper {
                    n_trees: 0,
                    ..Hyper::default()
                },
                "n_trees",
            ),
            (
                Hyper {
                    max_depth: 0,
                    ..Hyper::default()
                },
                "max_depth",
            ),
            (
                Hyper {
                    max_depth: 17,
                    ..Hyper::default()
                },
                "max_depth",
            ),
            (
                Hyper {
                    learning_rate: 0.0,
                    ..Hyper::default()
                },
                "learning_rate",
            ),
            (
                Hyper {
                    learning_rate: f64::NAN,
                    ..Hyper::default()
                },
                "learning_rate",
            ),
            (
                Hyper {
                    learning_rate: 1.5,
                    ..Hyper::default()
                },
                "learning_rate",
            ),
            (
                Hyper {
                    min_samples_split: 1,
                    ..Hyper::default()
                },
                "min_samples_split",
            ),
        ];
        for (h, name) in cases {
            let m = err(Model::train(&x, &y, &h));
            assert!(
                m.starts_with(&format!("invalid hyper-parameter {name}:")),
                "{m}"
            );
        }
    }

    #[test]
    fn corrupt_or_missing_files() {
        let (x, y) = easy(400, 10);
        let model = Model::train(&x, &y, &small_hyper()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let model_path = dir.path().join(MODEL_FILE);
        let scaler_path = dir.path().join(SCALER_FILE);
        let model_bytes = std::fs::read(&model_path).unwrap();
        let scaler_bytes = std::fs::read(&scaler_path).unwrap();
        let restore = || {
            std::fs::write(&model_path, &model_bytes).unwrap();
            std::fs::write(&scaler_path, &scaler_bytes).unwrap();
        };
        let load = || err(Model::load(dir.path()));
        let named = |m: &str, path: &Path| m.contains(&path.display().to_string());

        std::fs::remove_file(&model_path).unwrap();
        let m = load();
        assert!(
            named(&m, &model_path) && m.ends_with("file is missing"),
            "{m}"
        );
        restore();
        std::fs::remove_file(&scaler_path).unwrap();
        let m = load();
        assert!(
            named(&m, &scaler_path) && m.ends_with("file is missing"),
            "{m}"
        );
        restore();

        let cases: [(&Path, Vec<u8>, &str); 7] = [
            (
                &model_path,
                model_bytes[..model_bytes.len() / 2].to_vec(),
                "not a forust model",
            ),
            (&model_path, vec![0xff, 0xfe, 0x00, 0x13, 0x37], "not UTF-8"),
            (&model_path, b"garbage".to_vec(), "not a forust model"),
            (&model_path, Vec::new(), "not a forust model"),
            (
                &scaler_path,
                scaler_bytes[..scaler_bytes.len() - 3].to_vec(),
                "not a scaler",
            ),
            (
                &scaler_path,
                b"{\"mean\": [1.0], \"std\": [1.0]}".to_vec(),
                "1 means",
            ),
            (&scaler_path, b"\x00\x01garbage".to_vec(), "not a scaler"),
        ];
        for (path, bytes, reason) in cases {
            std::fs::write(path, bytes).unwrap();
            let m = load();
            assert!(
                named(&m, path) && m.contains("is corrupt") && m.contains(reason),
                "{m}"
            );
            restore();
        }

        // A scaler with a zero standard deviation, and a model.json without our metadata.
        let mut s = model.scaler().clone();
        s.std[1] = 0.0;
        std::fs::write(&scaler_path, serde_json::to_vec(&s).unwrap()).unwrap();
        assert!(load().contains("standard deviation of feature 1 is 0"));
        restore();
        let mut bare =
            GradientBooster::from_json(std::str::from_utf8(&model_bytes).unwrap()).unwrap();
        bare.insert_metadata(META_KEY.to_string(), "{}".into());
        std::fs::write(&model_path, bare.json_dump().unwrap()).unwrap();
        let m = load();
        assert!(
            named(&m, &model_path) && m.contains("bad `memd` metadata"),
            "{m}"
        );
        restore();
        Model::load(dir.path()).unwrap();
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// Timing of the chosen booster on the realistic matrix, with the defaults.
    /// `cargo test -p memd --release ml::model::tests::timings -- --ignored --nocapture`
    #[test]
    #[ignore = "timing; run in release"]
    fn timings() {
        let (x, y) = realistic(45_000, 7);
        let (xt, yt) = realistic(10_000, 8);
        println!("base rate {:.3}", metrics::base_rate(&y));
        let mut train = vec![];
        let mut model = None;
        for _ in 0..3 {
            let t = Instant::now();
            model = Some(Model::train(&x, &y, &Hyper::default()).unwrap());
            train.push(t.elapsed().as_secs_f64());
        }
        let model = model.unwrap();
        let p = model.predict_proba_batch(&xt);
        let e = metrics::evaluate(&yt, &p).unwrap();
        let mut batch = vec![];
        for _ in 0..9 {
            let t = Instant::now();
            std::hint::black_box(model.predict_proba_batch(&xt));
            batch.push(t.elapsed().as_secs_f64());
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let mut batch1 = vec![];
        for _ in 0..9 {
            let t = Instant::now();
            std::hint::black_box(one.install(|| model.predict_proba_batch(&xt)));
            batch1.push(t.elapsed().as_secs_f64());
        }
        let mut single = vec![];
        for _ in 0..5 {
            let t = Instant::now();
            let mut acc = 0.0;
            for row in &xt {
                acc += model.predict_proba(std::hint::black_box(row));
            }
            std::hint::black_box(acc);
            single.push(t.elapsed().as_secs_f64() / xt.len() as f64);
        }
        println!("train (s): {train:.3?} median {:.3}", median(train.clone()));
        println!(
            "batch 10k (ms): median {:.2} (2 threads), {:.2} (1 thread)",
            median(batch) * 1e3,
            median(batch1) * 1e3
        );
        println!("single (us): median {:.2}", median(single) * 1e6);
        println!("holdout: {e:?}");
        println!("importances: {:.3?}", model.feature_importances());
    }

    /// smartcore's options on the same matrix (train time, holdout ROC-AUC).
    /// `cargo test -p memd --release ml::model::tests::baselines -- --ignored --nocapture`
    #[test]
    #[ignore = "timing; run in release; takes minutes"]
    fn baselines() {
        use smartcore::ensemble::random_forest_classifier::{
            RandomForestClassifier, RandomForestClassifierParameters,
        };
        use smartcore::linalg::basic::arrays::Array;
        use smartcore::linalg::basic::matrix::DenseMatrix;
        use smartcore::linear::logistic_regression::{
            LogisticRegression, LogisticRegressionParameters,
        };
        use smartcore::xgboost::{XGRegressor, XGRegressorParameters};

        let (x, y) = realistic(45_000, 7);
        let (xt, yt) = realistic(10_000, 8);
        let scaler = Scaler::fit(&x).unwrap();
        let scale = |rows: &[Vec<f64>]| -> Vec<Vec<f64>> {
            rows.iter()
                .map(|r| {
                    let mut o = vec![0.0; r.len()];
                    scaler.transform_row(r, &mut o);
                    o
                })
                .collect()
        };
        let (xs, xts) = (scale(&x), scale(&xt));
        let m = DenseMatrix::from_2d_vec(&xs).unwrap();
        let mt = DenseMatrix::from_2d_vec(&xts).unwrap();
        let yf: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let yi: Vec<i32> = y.iter().map(|&v| i32::from(v)).collect();
        let auc = |s: &[f64]| metrics::roc_auc(&yt, s).unwrap();
        let reps: usize = std::env::var("REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);

        let mut t_lr = vec![];
        let mut lr = None;
        for _ in 0..reps {
            let t = Instant::now();
            lr = Some(
                LogisticRegression::fit(&m, &yi, LogisticRegressionParameters::default()).unwrap(),
            );
            t_lr.push(t.elapsed().as_secs_f64());
        }
        let lr = lr.unwrap();
        let (w, b) = (lr.coefficients(), *lr.intercept().get((0, 0)));
        let s: Vec<f64> = xts
            .iter()
            .map(|r| b + (0..r.len()).map(|j| w.get((0, j)) * r[j]).sum::<f64>())
            .collect();
        println!(
            "logistic regression: train {t_lr:.3?} median {:.3} s, roc_auc {:.4}",
            median(t_lr.clone()),
            auc(&s)
        );

        let mut t_xg = vec![];
        let mut xg = None;
        for _ in 0..reps {
            let p = XGRegressorParameters::default()
                .with_n_estimators(200)
                .with_max_depth(5)
                .with_learning_rate(0.1)
                .with_seed(42)
                .with_base_score(metrics::base_rate(&y));
            let t = Instant::now();
            xg = Some(XGRegressor::fit(&m, &yf, p).unwrap());
            t_xg.push(t.elapsed().as_secs_f64());
        }
        let s = xg.unwrap().predict(&mt).unwrap();
        println!(
            "XGRegressor (squared error): train {t_xg:.3?} median {:.3} s, roc_auc {:.4}",
            median(t_xg.clone()),
            auc(&s)
        );

        let mut t_rf = vec![];
        let mut rf = None;
        for _ in 0..reps {
            let p = RandomForestClassifierParameters::default()
                .with_n_trees(100)
                .with_max_depth(8)
                .with_min_samples_split(20)
                .with_seed(42);
            let t = Instant::now();
            rf = Some(RandomForestClassifier::fit(&m, &yi, p).unwrap());
            t_rf.push(t.elapsed().as_secs_f64());
        }
        let s: Vec<f64> = rf
            .unwrap()
            .predict(&mt)
            .unwrap()
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        println!(
            "random forest (hard labels only): train {t_rf:.3?} median {:.3} s, roc_auc of labels {:.4}",
            median(t_rf.clone()),
            auc(&s)
        );
    }
}
