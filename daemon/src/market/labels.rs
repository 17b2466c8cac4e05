//! Reversal labels: what the model learns to predict.
//!
//! Definition (the seed's "peak or trough with a 2% threshold, zigzag style; label 1
//! when one occurs within the next 10 candles"), exactly:
//!
//! 1. Pivots, zigzag on closing prices with threshold `th` (0.02). Walk the closes,
//!    keeping the extreme of the current leg. In an up-leg the extreme is the highest
//!    close since the leg began; when a close falls to `extreme * (1 - th)` or below,
//!    the extreme's candle is a **peak** and a down-leg begins at that close. In a
//!    down-leg, symmetrically, a close at `extreme * (1 + th)` or above makes the lowest
//!    close a **trough**. The first leg's direction is set by the first move of `th`
//!    from the first close (up if the price rose `th` first); the first extreme found
//!    before that move (the first close's side that did not win) is a pivot too. Ties
//!    keep the earlier candle.
//! 2. Label: candle `t` is 1 when a pivot lies at an index `j` with `t < j <= t + h`
//!    (`h` = 10), else 0.
//! 3. Only labels that cannot change are given: a pivot is final once confirmed, but
//!    the running extreme of the last leg may still become one, so a label is given only
//!    when `t + h <=` the index of the last confirmed pivot. Later candles get `None`.
//!
//! Labels look ahead by definition; features never do (see `features`). Where a
//! training set is split in time, rows whose label window crosses the split are left
//! out of the training part (the pipeline does this), so no holdout price leaks into
//! training through a label.

/// The seed's reversal threshold: a 2% move.
pub const THRESHOLD: f64 = 0.02;
/// The seed's horizon: a reversal within the next 10 candles.
pub const HORIZON: usize = 10;

/// A confirmed turning point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pivot {
    Peak(usize),
    Trough(usize),
}

impl Pivot {
    pub fn index(self) -> usize {
        match self {
            Pivot::Peak(i) | Pivot::Trough(i) => i,
        }
    }
}

/// The confirmed pivots of a series of closes, in order.
pub fn pivots(closes: &[f64], threshold: f64) -> Vec<Pivot> {
    let mut out = Vec::new();
    let Some(&first) = closes.first() else {
        return out;
    };
    // Before the first move of `threshold`, track both the highest and the lowest close.
    let (mut hi, mut hi_at, mut lo, mut lo_at) = (first, 0, first, 0);
    let mut up: Option<bool> = None; // direction of the current leg, once known
    let (mut extreme, mut extreme_at) = (first, 0);
    for (i, &c) in closes.iter().enumerate().skip(1) {
        match up {
            None => {
                if c > hi {
                    (hi, hi_at) = (c, i);
                }
                if c < lo {
                    (lo, lo_at) = (c, i);
                }
                if c >= lo * (1.0 + threshold) {
                    // Rose from the low: the low was a trough, an up-leg runs.
                    out.push(Pivot::Trough(lo_at));
                    up = Some(true);
                    (extreme, extreme_at) = (hi, hi_at);
                    if c > extreme {
                        (extreme, extreme_at) = (c, i);
                    }
                } else if c <= hi * (1.0 - threshold) {
                    out.push(Pivot::Peak(hi_at));
                    up = Some(false);
                    (extreme, extreme_at) = (lo, lo_at);
                    if c < extreme {
                        (extreme, extreme_at) = (c, i);
                    }
                }
            }
            Some(true) => {
                if c > extreme {
                    (extreme, extreme_at) = (c, i);
                } else if c <= extreme * (1.0 - threshold) {
                    out.push(Pivot::Peak(extreme_at));
                    up = Some(false);
                    (extreme, extreme_at) = (c, i);
                }
            }
            Some(false) => {
                if c < extreme {
                    (extreme, extreme_at) = (c, i);
                } else if c >= extreme * (1.0 + threshold) {
                    out.push(Pivot::Trough(extreme_at));
                    up = Some(true);
                    (extreme, extreme_at) = (c, i);
                }
            }
        }
    }
    out
}

/// The label of every candle: `Some(true)` when a pivot lies within the next `horizon`
/// candles, `Some(false)` when none does, `None` when it cannot be known yet.
pub fn labels(closes: &[f64], threshold: f64, horizon: usize) -> Vec<Option<bool>> {
    let pivots = pivots(closes, threshold);
    let Some(last) = pivots.last().map(|p| p.index()) else {
        return vec![None; closes.len()];
    };
    // next_pivot[t]: the first pivot index > t (a walk from the end).
    let mut labels = vec![None; closes.len()];
    let mut next = pivots.iter().map(|p| p.index()).peekable();
    let mut upcoming: Option<usize> = None;
    for (t, label) in labels.iter_mut().enumerate() {
        while upcoming.is_none_or(|j| j <= t) {
            match next.next() {
                Some(j) => upcoming = Some(j),
                None => {
                    upcoming = None;
                    break;
                }
            }
        }
        if t + horizon > last {
            break;
        }
        *label = Some(upcoming.is_some_and(|j| j <= t + horizon));
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_made_zigzag() {
        // 100 up to 110 (peak at 3), down to 99 (trough at 6), up to 104 (a 5% rise).
        let closes = [100.0, 104.0, 108.0, 110.0, 107.0, 103.0, 99.0, 101.0, 104.0];
        assert_eq!(
            pivots(&closes, 0.02),
            [Pivot::Trough(0), Pivot::Peak(3), Pivot::Trough(6)]
        );
    }

    #[test]
    fn moves_under_the_threshold_are_not_pivots() {
        let closes = [100.0, 101.0, 100.2, 101.5, 100.5, 101.9, 100.1];
        assert!(pivots(&closes, 0.02).is_empty());
        assert_eq!(labels(&closes, 0.02, 3), vec![None; closes.len()]);
    }

    #[test]
    fn exactly_two_percent_counts() {
        let closes = [100.0, 102.0, 99.96];
        // 100 -> 102 is exactly +2%: trough at 0; 102 -> 99.96 is exactly -2%: peak at 1.
        assert_eq!(pivots(&closes, 0.02), [Pivot::Trough(0), Pivot::Peak(1)]);
    }

    #[test]
    fn labels_look_h_candles_ahead_and_stop_where_unknown() {
        // Pivots at 0 (trough), 3 (peak), 6 (trough).
        let closes = [100.0, 104.0, 108.0, 110.0, 107.0, 103.0, 99.0, 101.0, 104.0];
        let l = labels(&closes, 0.02, 2);
        // t=0: pivots in (0, 2]? none (3 is too far) -> 0; t=1: 3 in (1,3] -> 1;
        // t=2: 1; t=3: (3,5] none -> 0; t=4: 6 in (4,6] -> 1; t>4: t+2 > 6 -> unknown.
        assert_eq!(
            l,
            [
                Some(false),
                Some(true),
                Some(true),
                Some(false),
                Some(true),
                None,
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn a_pivot_at_t_itself_does_not_count_for_t() {
        let closes = [100.0, 110.0, 100.0, 110.0];
        // Trough 0, peak 1, trough 2.
        let l = labels(&closes, 0.02, 1);
        assert_eq!(l[0], Some(true)); // the peak at 1 is in (0, 1]
        assert_eq!(l[1], Some(true)); // the trough at 2
        assert_eq!(l[2], None); // 2 + 1 > last pivot 2
    }

    #[test]
    fn empty_and_tiny_series() {
        assert!(labels(&[], 0.02, 10).is_empty());
        assert_eq!(labels(&[1.0], 0.02, 10), [None]);
        assert!(pivots(&[5.0, 5.0, 5.0], 0.02).is_empty());
    }

    #[test]
    fn no_future_beyond_the_horizon_changes_a_label() {
        // Appending candles changes no label that was already given.
        let closes: Vec<f64> = (0..400)
            .map(|i| 100.0 * (1.0 + 0.05 * ((i as f64) * 0.37).sin()))
            .collect();
        let full = labels(&closes, 0.02, 10);
        for cut in [100, 200, 300] {
            let part = labels(&closes[..cut], 0.02, 10);
            for (t, l) in part.iter().enumerate() {
                if let Some(v) = l {
                    assert_eq!(full[t], Some(*v), "t={t} cut={cut}");
                }
            }
        }
    }
}
