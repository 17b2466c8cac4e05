//! Numbers for people: one formatter for prices and indicators, so that the daemon's
//! texts (a market condition's reasons) and memctl's tables write them alike.

/// Significant digits of a price or an indicator.
const SIGNIFICANT: i32 = 6;

/// Below this (in absolute value) a number is written in scientific notation: more
/// leading zeros than this are hard to count.
const SMALLEST_FIXED: f64 = 1e-6;

/// A price or an indicator with the digits its size calls for: six significant digits,
/// at least two decimals (97123.45 keeps its cents), trailing zeros dropped: `0.00005123`
/// (a BTC-quoted price), `45.1234`, `97123.45`, `0`; under a millionth, scientific
/// (`-1.23457e-8`). Never `-0.000000`: a value that is not zero shows its digits.
pub fn significant(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    if value == 0.0 {
        return "0".into();
    }
    if value.abs() < SMALLEST_FIXED {
        let text = format!("{:.*e}", (SIGNIFICANT - 1) as usize, value);
        return match text.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => text,
        };
    }
    let exponent = value.abs().log10().floor() as i32;
    let decimals = (SIGNIFICANT - 1 - exponent).max(2) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_string()
}

/// `12.3400` -> `12.34`, `5.000` -> `5`; a number without a point is left alone.
fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_and_indicators_keep_the_digits_their_size_calls_for() {
        for (value, shown) in [
            (0.000051234567, "0.0000512346"),
            (0.00005123, "0.00005123"),
            (0.051234, "0.051234"),
            (45.123456, "45.1235"),
            (25.5, "25.5"),
            (100.0, "100"),
            (97123.456, "97123.46"),
            (1234567.891, "1234567.89"),
            (-0.0000123, "-0.0000123"),
            (-0.000001, "-0.000001"),
            (-1.2345678e-8, "-1.23457e-8"),
            (3e-9, "3e-9"),
            (0.0, "0"),
            (-0.0, "0"),
            (f64::NAN, "n/a"),
        ] {
            assert_eq!(significant(value), shown, "{value:e}");
        }
    }

    #[test]
    fn no_value_reads_as_a_signed_zero() {
        let mut x = -1.0f64;
        while x < -1e-300 {
            let shown = significant(x);
            assert!(
                shown.starts_with('-') && shown.bytes().any(|b| (b'1'..=b'9').contains(&b)),
                "{x:e} shown as {shown}"
            );
            x /= 7.0;
        }
    }
}
