//! The training pipeline: candles -> features and labels -> a chronological split ->
//! a model -> its holdout figures beside the current model's on the same holdout.
//!
//! The split is by time over all pairs together: the holdout is every row at or after
//! the time that leaves 80% of the rows before it (never shuffled). A training row whose
//! label looks into the holdout period (its 10-candle window ends at or after the split)
//! is left out (purged), so no holdout price reaches training through a label.

use super::metrics::{self, Evaluation};
use super::model::{Hyper, Model, ModelError};
use crate::market::candles::{self, Candle, Timeframe};
use crate::market::features::{self, FeatureRow};
use crate::market::labels;
use mem_protocol::ml::{ModelMetrics, PromotionMetric};
use std::path::{Path, PathBuf};

/// Share of rows (by time) used for training.
pub const TRAIN_SHARE: f64 = 0.8;
/// Fewer usable rows than this and training is refused.
pub const MIN_ROWS: usize = 500;

/// Why training cannot run; each names the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("no pairs to train on: none configured and no {timeframe} candles in {dir}")]
    NoPairs { dir: String, timeframe: Timeframe },
    #[error("{0}")]
    Candles(#[from] candles::CandleError),
    #[error(
        "too little data: {usable} usable rows (need at least {MIN_ROWS}) from {candles} candles of {pairs}; each pair needs more than {} candles (indicator warm-up) plus the label horizon",
        features::WARM_UP
    )]
    TooLittle {
        usable: usize,
        candles: usize,
        pairs: String,
    },
    #[error(
        "the training rows hold a single class ({0}); more data or another timeframe is needed"
    )]
    OneClass(String),
    #[error("model: {0}")]
    Model(#[from] ModelError),
}

/// Rows ready for the model, with their times.
#[derive(Debug, Default)]
pub struct Dataset {
    pub rows: Vec<FeatureRow>,
    pub labels: Vec<u8>,
    /// Open time of each row's candle.
    pub ts: Vec<i64>,
    /// Open time of the last candle of each row's label window.
    pub window_end: Vec<i64>,
    /// What was dropped and why, per pair.
    pub notes: Vec<String>,
    pub candles: usize,
}

/// Features and labels of one pair's candles (already cleaned), appended to `out`.
pub fn add_pair(out: &mut Dataset, pair: &str, candles: &[Candle]) {
    out.candles += candles.len();
    let closes: Vec<f64> = candles.iter().map(|c| c.close).collect();
    let feats = features::batch(candles);
    let labs = labels::labels(&closes, labels::THRESHOLD, labels::HORIZON);
    let before = out.rows.len();
    let mut unlabeled = 0;
    for (t, (f, l)) in feats.iter().zip(&labs).enumerate() {
        match (f, l) {
            (Some(f), Some(l)) => {
                out.rows.push(*f);
                out.labels.push(u8::from(*l));
                out.ts.push(candles[t].ts_ms);
                out.window_end.push(candles[t + labels::HORIZON].ts_ms);
            }
            (Some(_), None) => unlabeled += 1,
            _ => {}
        }
    }
    out.notes.push(format!(
        "{pair}: {} rows from {} candles ({} warm-up, {} at the end whose label is not final yet)",
        out.rows.len() - before,
        candles.len(),
        features::WARM_UP.min(candles.len()),
        unlabeled
    ));
}

/// Reads and cleans each pair's candles into a dataset; data problems become notes.
pub fn load(
    data_dir: &Path,
    pairs: &[String],
    timeframe: Timeframe,
    progress: &mut dyn FnMut(u64, u64, String),
) -> Result<Dataset, TrainError> {
    load_window(data_dir, pairs, timeframe, None, progress)
}

/// Like [`load`], keeping only each pair's last `days` days (counted back from its
/// newest candle, so files that stopped updating still train on their latest data).
pub fn load_window(
    data_dir: &Path,
    pairs: &[String],
    timeframe: Timeframe,
    days: Option<u32>,
    progress: &mut dyn FnMut(u64, u64, String),
) -> Result<Dataset, TrainError> {
    let mut data = Dataset::default();
    for (i, pair) in pairs.iter().enumerate() {
        progress(i as u64, pairs.len() as u64, format!("reading {pair}"));
        let (mut clean, report) = read_resampled(data_dir, pair, timeframe, &mut data.notes)?;
        if let (Some(days), Some(last)) = (days, clean.last().map(|c| c.ts_ms)) {
            let from = last - i64::from(days) * 86_400_000;
            let before = clean.len();
            clean.retain(|c| c.ts_ms > from);
            if clean.len() < before {
                data.notes.push(format!(
                    "{pair}: the last {days} days: {} of {before} candles",
                    clean.len()
                ));
            }
        }
        let check = candles::check(&clean, timeframe);
        if !report.duplicates_dropped.is_empty() || !report.invalid_dropped.is_empty() {
            data.notes.push(format!(
                "{pair}: dropped {} duplicate and {} invalid candles{}",
                report.duplicates_dropped.len(),
                report.invalid_dropped.len(),
                report
                    .invalid_dropped
                    .first()
                    .map(|(ts, why)| format!(" (first: {ts}: {why})"))
                    .unwrap_or_default()
            ));
        }
        if !check.gaps.is_empty() {
            data.notes.push(format!(
                "{pair}: {} gaps, {} missing candles (indicators run across them)",
                check.gaps.len(),
                check.missing_candles()
            ));
        }
        add_pair(&mut data, pair, &clean);
    }
    progress(pairs.len() as u64, pairs.len() as u64, "read".into());
    Ok(data)
}

/// A pair's candles at `timeframe`, cleaned: its own file, else the coarsest finer file
/// that divides it, resampled (with a note).
pub fn read_resampled(
    data_dir: &Path,
    pair: &str,
    timeframe: Timeframe,
    notes: &mut Vec<String>,
) -> Result<(Vec<Candle>, candles::CleanReport), TrainError> {
    let read = read_source(data_dir, pair, timeframe, notes)?;
    Ok((read.candles, read.report))
}

/// A pair's candles read by [`read_source`], with where they came from.
pub struct SourceCandles {
    /// At the timeframe asked for, cleaned.
    pub candles: Vec<Candle>,
    pub report: candles::CleanReport,
    /// The file read, and its own timeframe (finer when resampled).
    pub path: PathBuf,
    pub file_timeframe: Timeframe,
    /// Open time of the file's newest (clean) candle: how fresh the data are.
    pub newest_open_ms: Option<i64>,
}

/// The file a pair's `timeframe` candles are read from: its own, else the coarsest finer
/// file that divides it (resampled when read). Answers the file and its timeframe.
pub fn source_file(
    data_dir: &Path,
    pair: &str,
    timeframe: Timeframe,
) -> Result<(PathBuf, Timeframe), TrainError> {
    let missing = match candles::find_pair_file(data_dir, pair, timeframe) {
        Ok(path) => return Ok((path, timeframe)),
        Err(e @ candles::CandleError::NotFound { .. }) => e,
        Err(e) => return Err(e.into()),
    };
    Timeframe::ALL
        .iter()
        .rev()
        .filter(|f| f.millis() < timeframe.millis() && timeframe.millis() % f.millis() == 0)
        .find_map(|f| {
            candles::find_pair_file(data_dir, pair, *f)
                .ok()
                .map(|path| (path, *f))
        })
        .ok_or_else(|| missing.into())
}

/// [`read_resampled`], telling which file was read and how fresh it is.
pub fn read_source(
    data_dir: &Path,
    pair: &str,
    timeframe: Timeframe,
    notes: &mut Vec<String>,
) -> Result<SourceCandles, TrainError> {
    let (path, from) = source_file(data_dir, pair, timeframe)?;
    let (clean, report) = candles::clean(candles::read_file(&path)?);
    let newest_open_ms = clean.last().map(|c| c.ts_ms);
    let candles = if from == timeframe {
        clean
    } else {
        let resampled = candles::resample(&clean, from, timeframe)?;
        notes.push(format!(
            "{pair}: no {timeframe} file; {} {from} candles resampled to {} {timeframe} candles",
            clean.len(),
            resampled.len()
        ));
        resampled
    };
    Ok(SourceCandles {
        candles,
        report,
        path,
        file_timeframe: from,
        newest_open_ms,
    })
}

/// The chronological split: (train indices, test indices, split time, purged rows).
pub fn split(data: &Dataset) -> (Vec<usize>, Vec<usize>, i64, usize) {
    let mut order: Vec<usize> = (0..data.rows.len()).collect();
    order.sort_by_key(|&i| (data.ts[i], i));
    let cut_at = ((order.len() as f64) * TRAIN_SHARE).floor() as usize;
    let split_ts = order.get(cut_at).map_or(i64::MAX, |&i| data.ts[i]);
    let (mut train, mut test, mut purged) = (Vec::new(), Vec::new(), 0);
    for i in order {
        if data.ts[i] >= split_ts {
            test.push(i);
        } else if data.window_end[i] >= split_ts {
            purged += 1;
        } else {
            train.push(i);
        }
    }
    (train, test, split_ts, purged)
}

/// Holdout figures in the protocol's shape.
pub fn to_metrics(e: &Evaluation) -> ModelMetrics {
    ModelMetrics {
        accuracy: e.accuracy,
        precision: e.precision,
        recall: e.recall,
        f1_score: e.f1,
        roc_auc: e.roc_auc.unwrap_or(0.5),
        log_loss: e.log_loss,
        base_rate: e.base_rate,
        baseline_accuracy: e.majority_baseline_accuracy,
    }
}

/// Evaluates a model on rows.
pub fn evaluate(
    model: &Model,
    rows: &[FeatureRow],
    labels: &[u8],
) -> Result<ModelMetrics, TrainError> {
    let p = model.predict_proba_batch(rows);
    Ok(to_metrics(&metrics::evaluate(labels, &p)?))
}

/// Whether `new` beats `current` by `margin` on `metric`, and the reason in words.
pub fn promotion(
    new: &ModelMetrics,
    current: Option<(&str, &ModelMetrics)>,
    metric: PromotionMetric,
    margin: f64,
) -> (bool, String) {
    let Some((version, cur)) = current else {
        return (true, "first model: nothing to compare with".into());
    };
    let (name, n, c, better) = match metric {
        PromotionMetric::Accuracy => (
            "accuracy",
            new.accuracy,
            cur.accuracy,
            new.accuracy >= cur.accuracy + margin,
        ),
        PromotionMetric::RocAuc => (
            "ROC-AUC",
            new.roc_auc,
            cur.roc_auc,
            new.roc_auc >= cur.roc_auc + margin,
        ),
        PromotionMetric::LogLoss => (
            "log-loss",
            new.log_loss,
            cur.log_loss,
            new.log_loss <= cur.log_loss - margin,
        ),
    };
    let direction = if metric == PromotionMetric::LogLoss {
        "lower"
    } else {
        "higher"
    };
    if better {
        (
            true,
            format!(
                "{name} {n:.4} vs {c:.4} for {version} on the same holdout: at least {margin} {direction}"
            ),
        )
    } else {
        (
            false,
            format!(
                "{name} {n:.4} vs {c:.4} for {version} on the same holdout: not {margin} {direction}; {version} stays current"
            ),
        )
    }
}

/// The hyper-parameters a version was trained with, and on what.
pub fn train_model(data: &Dataset, train: &[usize], hyper: &Hyper) -> Result<Model, TrainError> {
    let x: Vec<FeatureRow> = train.iter().map(|&i| data.rows[i]).collect();
    let y: Vec<u8> = train.iter().map(|&i| data.labels[i]).collect();
    let positives = y.iter().filter(|&&v| v == 1).count();
    if positives == 0 || positives == y.len() {
        return Err(TrainError::OneClass(if positives == 0 {
            "all labels are 0: no reversal".into()
        } else {
            "all labels are 1".into()
        }));
    }
    Ok(Model::train(&x, &y, hyper)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(accuracy: f64, roc_auc: f64, log_loss: f64) -> ModelMetrics {
        ModelMetrics {
            accuracy,
            precision: 0.0,
            recall: 0.0,
            f1_score: 0.0,
            roc_auc,
            log_loss,
            base_rate: 0.3,
            baseline_accuracy: 0.7,
        }
    }

    #[test]
    fn the_two_point_rule_and_its_edges() {
        let cur = m(0.70, 0.60, 0.60);
        let at = |a| {
            promotion(
                &m(a, 0.6, 0.6),
                Some(("v1", &cur)),
                PromotionMetric::Accuracy,
                0.02,
            )
        };
        assert!(at(0.73).0);
        assert!(at(0.7201).0);
        assert!(!at(0.7199).0);
        assert!(!at(0.69).0);
        let (ok, why) = at(0.71);
        assert!(!ok);
        assert!(why.contains("v1 stays current"), "{why}");
        assert!(promotion(&m(0.5, 0.5, 0.5), None, PromotionMetric::Accuracy, 0.02).0);
    }

    #[test]
    fn auc_and_log_loss_rules() {
        let cur = m(0.70, 0.60, 0.60);
        let auc = |v| {
            promotion(
                &m(0.7, v, 0.6),
                Some(("v1", &cur)),
                PromotionMetric::RocAuc,
                0.02,
            )
            .0
        };
        assert!(auc(0.63));
        assert!(!auc(0.61));
        let ll = |v| {
            promotion(
                &m(0.7, 0.6, v),
                Some(("v1", &cur)),
                PromotionMetric::LogLoss,
                0.02,
            )
            .0
        };
        assert!(ll(0.57));
        assert!(!ll(0.59));
    }

    #[test]
    fn the_split_is_chronological_and_purges_labels_that_look_into_the_holdout() {
        let mut d = Dataset::default();
        for t in 0..100i64 {
            d.rows.push([0.0; 12]);
            d.labels.push((t % 3 == 0) as u8);
            d.ts.push(t * 10);
            d.window_end.push(t * 10 + 25);
        }
        let (train, test, split_ts, purged) = split(&d);
        assert_eq!(split_ts, 800);
        assert_eq!(test.len(), 20);
        assert!(test.iter().all(|&i| d.ts[i] >= 800));
        assert!(train.iter().all(|&i| d.window_end[i] < 800));
        // Rows at 780 and 790: their windows end at 805 and 815, inside the holdout.
        assert_eq!(purged, 2);
        assert_eq!(train.len() + test.len() + purged, 100);
    }
}
