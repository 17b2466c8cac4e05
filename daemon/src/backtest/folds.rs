//! A rolling walk-forward's folds: the range cut into `n + 1` equal parts; fold `k`
//! optimises on part `k` (in-sample) and tests on part `k + 1` (out-of-sample), so every
//! part but the first is tested once, on parameters chosen without seeing it.
//!
//! Parts are half-open, `[from, to)`, in whole milliseconds: each part ends where the next
//! begins and the last ends at `to`.

use chrono::{DateTime, Utc};

/// One fold's two ranges, each `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldRange {
    /// 0 for the first fold.
    pub index: u32,
    pub in_sample_from: DateTime<Utc>,
    pub in_sample_to: DateTime<Utc>,
    pub out_of_sample_from: DateTime<Utc>,
    pub out_of_sample_to: DateTime<Utc>,
}

/// The `n` folds of `[from, to)`. Errors name the bad input: fewer than 2 folds, an empty
/// range, or a range too short to give each part a millisecond.
pub fn folds(from: DateTime<Utc>, to: DateTime<Utc>, n: u32) -> Result<Vec<FoldRange>, String> {
    if n < 2 {
        return Err(format!("a walk-forward needs at least 2 folds, got {n}"));
    }
    if from >= to {
        return Err(format!(
            "the walk-forward's range is empty: from {from} is not before to {to}"
        ));
    }
    let (start, end) = (from.timestamp_millis(), to.timestamp_millis());
    let parts = i128::from(n) + 1;
    let span = i128::from(end - start);
    if span < parts {
        return Err(format!(
            "the walk-forward's range {from} to {to} is too short for {n} folds"
        ));
    }
    // Boundary i of n + 1 parts; i128 so that span · i cannot overflow.
    let boundary = |i: u32| {
        let ms = start as i128 + span * i128::from(i) / parts;
        DateTime::from_timestamp_millis(ms as i64).expect("between two valid times")
    };
    Ok((0..n)
        .map(|k| FoldRange {
            index: k,
            in_sample_from: boundary(k),
            in_sample_to: boundary(k + 1),
            out_of_sample_from: boundary(k + 1),
            out_of_sample_to: boundary(k + 2),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn five_parts_for_four_folds() {
        let day = 86_400_000;
        let from = at(1_700_000_000_000);
        let to = at(1_700_000_000_000 + 50 * day);
        let f = folds(from, to, 4).unwrap();
        assert_eq!(f.len(), 4);
        for (k, fold) in f.iter().enumerate() {
            let part = |i: i64| at(1_700_000_000_000 + i * 10 * day);
            assert_eq!(fold.index, k as u32);
            assert_eq!(fold.in_sample_from, part(k as i64));
            assert_eq!(fold.in_sample_to, part(k as i64 + 1));
            assert_eq!(fold.out_of_sample_from, fold.in_sample_to);
            assert_eq!(fold.out_of_sample_to, part(k as i64 + 2));
        }
        // Each out-of-sample part is the next fold's in-sample part; the last ends at `to`.
        for pair in f.windows(2) {
            assert_eq!(pair[0].out_of_sample_from, pair[1].in_sample_from);
            assert_eq!(pair[0].out_of_sample_to, pair[1].in_sample_to);
        }
        assert_eq!(f[0].in_sample_from, from);
        assert_eq!(f[3].out_of_sample_to, to);
    }

    #[test]
    fn uneven_ranges_cover_everything() {
        // 10 ms in 3 parts: 0-3, 3-6, 6-10.
        let f = folds(at(0), at(10), 2).unwrap();
        let edges: Vec<(i64, i64, i64)> = f
            .iter()
            .map(|f| {
                (
                    f.in_sample_from.timestamp_millis(),
                    f.in_sample_to.timestamp_millis(),
                    f.out_of_sample_to.timestamp_millis(),
                )
            })
            .collect();
        assert_eq!(edges, [(0, 3, 6), (3, 6, 10)]);
    }

    #[test]
    fn bad_inputs_are_named() {
        let (a, b) = (at(0), at(86_400_000));
        for n in [0, 1] {
            let e = folds(a, b, n).unwrap_err();
            assert!(
                e.contains("at least 2 folds") && e.contains(&n.to_string()),
                "{e}"
            );
        }
        for (from, to) in [(b, a), (a, a)] {
            let e = folds(from, to, 3).unwrap_err();
            assert!(e.contains("empty") && e.contains(&from.to_string()), "{e}");
        }
        let e = folds(at(0), at(3), 3).unwrap_err();
        assert!(e.contains("too short for 3 folds"), "{e}");
        assert_eq!(folds(at(0), at(4), 3).unwrap().len(), 3);
    }
}
