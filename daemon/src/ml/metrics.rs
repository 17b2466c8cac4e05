//! Evaluation of a binary classifier's probabilities against 0/1 labels.
//!
//! The threshold metrics (accuracy, precision, recall, F1) call a row positive when its
//! probability is at least [`THRESHOLD`] (0.5) and are about the positive class (label
//! 1). When a ratio has a zero denominator (no predicted positives for precision, no
//! actual positives for recall) it is 0, as scikit-learn's `zero_division=0`.
//!
//! ROC-AUC is rank based (Mann-Whitney U): the probability that a random positive scores
//! above a random negative, ties counting one half (tied scores share their average
//! rank). It is undefined, `None`, when only one class is present.
//!
//! The single metric functions assume well-formed input and panic when the two slices
//! differ in length; [`evaluate`] checks its input first and returns an error instead.

use crate::ml::model::ModelError;
use serde::{Deserialize, Serialize};

/// A probability at or above this is a positive prediction.
pub const THRESHOLD: f64 = 0.5;

/// Probabilities are clipped to `[EPS, 1 - EPS]` in [`log_loss`] (as scikit-learn does)
/// so that a confident miss costs a large but finite amount.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Every figure [`evaluate`] computes, for a model's holdout report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Evaluation {
    /// Number of rows evaluated.
    pub n: usize,
    /// Share of positives (label 1) among the labels.
    pub base_rate: f64,
    /// Accuracy of always predicting the majority class: `max(base_rate, 1 - base_rate)`.
    pub majority_baseline_accuracy: f64,
    /// Share of rows whose thresholded prediction equals the label.
    pub accuracy: f64,
    /// Of the rows predicted positive, the share that are positive.
    pub precision: f64,
    /// Of the positive rows, the share predicted positive.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Rank-based ROC-AUC; `None` when the labels hold a single class.
    pub roc_auc: Option<f64>,
    /// Mean negative log-likelihood of the labels (natural log, clipped probabilities).
    pub log_loss: f64,
}

/// Computes every metric, after checking that the input is usable: the same non-zero
/// number of labels and probabilities, labels 0 or 1, probabilities finite in `[0, 1]`.
pub fn evaluate(labels: &[u8], probabilities: &[f64]) -> Result<Evaluation, ModelError> {
    if labels.is_empty() {
        return Err(ModelError::EmptyData("no labels to evaluate"));
    }
    if labels.len() != probabilities.len() {
        return Err(ModelError::LengthMismatch {
            what: "probabilities",
            rows: probabilities.len(),
            labels: labels.len(),
        });
    }
    if let Some((index, &value)) = labels.iter().enumerate().find(|(_, v)| **v > 1) {
        return Err(ModelError::InvalidLabel { index, value });
    }
    if let Some((index, &value)) = probabilities
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        return Err(ModelError::InvalidProbability { index, value });
    }
    let base_rate = base_rate(labels);
    Ok(Evaluation {
        n: labels.len(),
        base_rate,
        majority_baseline_accuracy: majority_baseline_accuracy(labels),
        accuracy: accuracy(labels, probabilities),
        precision: precision(labels, probabilities),
        recall: recall(labels, probabilities),
        f1: f1(labels, probabilities),
        roc_auc: roc_auc(labels, probabilities),
        log_loss: log_loss(labels, probabilities),
    })
}

/// Share of positives (label 1); 0 for no labels.
pub fn base_rate(labels: &[u8]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    labels.iter().filter(|&&y| y == 1).count() as f64 / labels.len() as f64
}

/// Accuracy of always predicting the more frequent class: `max(base_rate, 1 - base_rate)`.
pub fn majority_baseline_accuracy(labels: &[u8]) -> f64 {
    let rate = base_rate(labels);
    rate.max(1.0 - rate)
}

/// Counts of the confusion matrix at [`THRESHOLD`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Confusion {
    tp: usize,
    fp: usize,
    tn: usize,
    fn_: usize,
}

fn confusion(labels: &[u8], probabilities: &[f64]) -> Confusion {
    assert_eq!(
        labels.len(),
        probabilities.len(),
        "labels and probabilities differ in length"
    );
    let mut c = Confusion::default();
    for (&y, &p) in labels.iter().zip(probabilities) {
        match (y == 1, p >= THRESHOLD) {
            (true, true) => c.tp += 1,
            (false, true) => c.fp += 1,
            (false, false) => c.tn += 1,
            (true, false) => c.fn_ += 1,
        }
    }
    c
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Share of rows whose prediction (`p >= 0.5`) equals the label; 0 for no rows.
pub fn accuracy(labels: &[u8], probabilities: &[f64]) -> f64 {
    let c = confusion(labels, probabilities);
    ratio(c.tp + c.tn, labels.len())
}

/// `tp / (tp + fp)`; 0 when nothing is predicted positive.
pub fn precision(labels: &[u8], probabilities: &[f64]) -> f64 {
    let c = confusion(labels, probabilities);
    ratio(c.tp, c.tp + c.fp)
}

/// `tp / (tp + fn)`; 0 when there is no positive label.
pub fn recall(labels: &[u8], probabilities: &[f64]) -> f64 {
    let c = confusion(labels, probabilities);
    ratio(c.tp, c.tp + c.fn_)
}

/// `2 tp / (2 tp + fp + fn)`, the harmonic mean of precision and recall; 0 when there
/// is neither a positive label nor a positive prediction.
pub fn f1(labels: &[u8], probabilities: &[f64]) -> f64 {
    let c = confusion(labels, probabilities);
    ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn_)
}

/// Rank-based ROC-AUC (Mann-Whitney U over the average ranks of the scores), in
/// O(n log n). `None` when the labels hold only one class (or none). Any label other than
/// 1 counts as negative. NaN scores rank above everything (total order).
pub fn roc_auc(labels: &[u8], scores: &[f64]) -> Option<f64> {
    assert_eq!(
        labels.len(),
        scores.len(),
        "labels and scores differ in length"
    );
    let positives = labels.iter().filter(|&&y| y == 1).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]].total_cmp(&scores[order[start]]).is_eq() {
            end += 1;
        }
        // Ranks start+1 ..= end share their mean.
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end]
            .iter()
            .filter(|&&i| labels[i] == 1)
            .count();
        rank_sum += mean_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Mean of `-[y ln p + (1 - y) ln (1 - p)]` with `p` clipped to `[1e-15, 1 - 1e-15]`;
/// 0 for no rows.
pub fn log_loss(labels: &[u8], probabilities: &[f64]) -> f64 {
    assert_eq!(
        labels.len(),
        probabilities.len(),
        "labels and probabilities differ in length"
    );
    if labels.is_empty() {
        return 0.0;
    }
    let total: f64 = labels
        .iter()
        .zip(probabilities)
        .map(|(&y, &p)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            if y == 1 { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / labels.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn roc_auc_perfect_reversed_and_tied() {
        let y = [0, 0, 1, 1, 0, 1];
        let perfect = [0.1, 0.2, 0.8, 0.9, 0.3, 0.7];
        assert_eq!(roc_auc(&y, &perfect), Some(1.0));
        let reversed: Vec<f64> = perfect.iter().map(|p| 1.0 - p).collect();
        assert_eq!(roc_auc(&y, &reversed), Some(0.0));
        assert_eq!(roc_auc(&y, &[0.5; 6]), Some(0.5));
    }

    #[test]
    fn roc_auc_by_hand_with_ties() {
        // Pairs (pos, neg): 0.8>0.1, 0.8>0.4, 0.35<0.4, 0.35>0.1 -> 3/4.
        assert!(close(
            roc_auc(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]).unwrap(),
            0.75
        ));
        // One positive tied with one negative at 0.5, above the other negative: (1 + 0.5)/2.
        assert!(close(roc_auc(&[0, 0, 1], &[0.5, 0.2, 0.5]).unwrap(), 0.75));
        // Pairwise definition on a bigger tie-heavy case.
        let y = [1, 0, 1, 0, 0, 1, 1, 0, 1, 0];
        let s = [0.3, 0.3, 0.7, 0.1, 0.7, 0.7, 0.1, 0.3, 0.9, 0.1];
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for i in 0..y.len() {
            for j in 0..y.len() {
                if y[i] == 1 && y[j] == 0 {
                    pairs += 1.0;
                    if s[i] > s[j] {
                        wins += 1.0;
                    } else if s[i] == s[j] {
                        wins += 0.5;
                    }
                }
            }
        }
        assert!(close(roc_auc(&y, &s).unwrap(), wins / pairs));
    }

    #[test]
    fn roc_auc_single_class_is_none() {
        assert_eq!(roc_auc(&[1, 1, 1], &[0.1, 0.2, 0.3]), None);
        assert_eq!(roc_auc(&[0, 0], &[0.1, 0.2]), None);
        assert_eq!(roc_auc(&[], &[]), None);
    }

    #[test]
    fn roc_auc_agrees_with_smartcore() {
        use smartcore::metrics::Metrics;
        use smartcore::metrics::auc::AUC;
        let y = [1u8, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0];
        let s = [0.3, 0.3, 0.7, 0.1, 0.7, 0.7, 0.1, 0.3, 0.9, 0.1, 0.05, 0.6];
        let yf: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let theirs = AUC::new().get_score(&yf, &s.to_vec());
        assert!(close(roc_auc(&y, &s).unwrap(), theirs));
    }

    #[test]
    fn threshold_metrics_by_hand() {
        // y:    1    1    1    0    0    0    0    1
        // p:   .9   .6   .2   .7   .1   .5   .3   .49
        // pred: 1    1    0    1    0    1    0    0   (0.5 counts as positive)
        // tp = 2, fp = 2, fn = 2, tn = 2
        let y = [1, 1, 1, 0, 0, 0, 0, 1];
        let p = [0.9, 0.6, 0.2, 0.7, 0.1, 0.5, 0.3, 0.49];
        assert!(close(accuracy(&y, &p), 0.5));
        assert!(close(precision(&y, &p), 0.5));
        assert!(close(recall(&y, &p), 0.5));
        assert!(close(f1(&y, &p), 0.5));

        // tp = 1, fp = 0, fn = 2, tn = 1: precision 1, recall 1/3, f1 = 0.5.
        let y = [1, 1, 1, 0];
        let p = [0.8, 0.1, 0.2, 0.3];
        assert!(close(precision(&y, &p), 1.0));
        assert!(close(recall(&y, &p), 1.0 / 3.0));
        assert!(close(f1(&y, &p), 0.5));
        assert!(close(accuracy(&y, &p), 0.5));
    }

    #[test]
    fn zero_denominators_give_zero() {
        // Nothing predicted positive: precision 0; recall 0; f1 0.
        let y = [1, 0, 0];
        let p = [0.1, 0.2, 0.3];
        assert_eq!(precision(&y, &p), 0.0);
        assert_eq!(recall(&y, &p), 0.0);
        assert_eq!(f1(&y, &p), 0.0);
        // No positive label at all.
        assert_eq!(recall(&[0, 0], &[0.9, 0.1]), 0.0);
        assert_eq!(f1(&[0, 0], &[0.1, 0.1]), 0.0);
    }

    #[test]
    fn log_loss_and_base_rates() {
        let y = [1, 0];
        let p = [0.8, 0.4];
        let expected = -(0.8f64.ln() + 0.6f64.ln()) / 2.0;
        assert!(close(log_loss(&y, &p), expected));
        // Certain and right costs ~0; certain and wrong is clipped, not infinite.
        assert!(log_loss(&[1], &[1.0]) < 1e-14);
        let wrong = log_loss(&[1], &[0.0]);
        assert!(wrong.is_finite() && (wrong - 34.538776394910684).abs() < 1e-9);

        assert!(close(base_rate(&[1, 0, 0, 0]), 0.25));
        assert!(close(majority_baseline_accuracy(&[1, 0, 0, 0]), 0.75));
        assert!(close(majority_baseline_accuracy(&[1, 1, 1, 0]), 0.75));
        assert!(close(majority_baseline_accuracy(&[1, 0]), 0.5));
    }

    #[test]
    fn evaluate_fills_every_field_and_roundtrips() {
        let y = [1, 1, 1, 0, 0, 0, 0, 1];
        let p = [0.9, 0.6, 0.2, 0.7, 0.1, 0.5, 0.3, 0.49];
        let e = evaluate(&y, &p).unwrap();
        assert_eq!(e.n, 8);
        assert!(close(e.base_rate, 0.5));
        assert!(close(e.majority_baseline_accuracy, 0.5));
        assert!(close(e.accuracy, 0.5) && close(e.f1, 0.5));
        assert_eq!(e.roc_auc, roc_auc(&y, &p));
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"majority_baseline_accuracy\"") && json.contains("\"roc_auc\""));
        assert_eq!(serde_json::from_str::<Evaluation>(&json).unwrap(), e);

        let single = evaluate(&[0, 0], &[0.2, 0.3]).unwrap();
        assert_eq!(single.roc_auc, None);
        let json = serde_json::to_string(&single).unwrap();
        assert_eq!(serde_json::from_str::<Evaluation>(&json).unwrap(), single);
    }

    #[test]
    fn evaluate_rejects_bad_input() {
        let msg = |r: Result<Evaluation, ModelError>| r.unwrap_err().to_string();
        assert!(msg(evaluate(&[], &[])).contains("no labels"));
        assert!(msg(evaluate(&[1, 0], &[0.5])).contains("1 probabilities but 2 labels"));
        assert!(msg(evaluate(&[1, 2], &[0.5, 0.5])).contains("label 1 is 2"));
        let m = msg(evaluate(&[1, 0], &[0.5, f64::NAN]));
        assert!(m.contains("probability 1 is NaN"), "{m}");
        assert!(msg(evaluate(&[1, 0], &[1.5, 0.5])).contains("probability 0 is 1.5"));
    }
}
