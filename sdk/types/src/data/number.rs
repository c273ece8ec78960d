//! Numbers: the data model has only signed 64-bit integers.

use super::error::DataErrorKind;

/// Converts a JSON number that arrived as a float (`123.0`, `1e3`) to an integer.
///
/// JSON has one number type, so a writer may print an integer as `123.0`; the data model
/// accepts it as the integer 123 (interop vector "float, but integer-like"). A fractional part
/// or a non-finite value is an error, and so is a magnitude above 2^53: from there on a float
/// cannot hold every integer, so the value read may not be the one written (`serde_json` also
/// hands over integers beyond `u64` as floats: `-9223372036854775809` must not become
/// `i64::MIN`).
pub(crate) fn integer_from_f64(value: f64) -> Result<i64, DataErrorKind> {
    if !value.is_finite() || value.fract() != 0.0 {
        return Err(DataErrorKind::Float);
    }
    // 2^53: the largest magnitude below which every integer is a float.
    const SAFE: f64 = 9_007_199_254_740_992.0;
    if value.abs() > SAFE {
        return Err(DataErrorKind::InexactInteger);
    }
    // Integral and within ±2^53, so the conversion is exact.
    Ok(value as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats() {
        assert_eq!(integer_from_f64(123.0), Ok(123));
        assert_eq!(integer_from_f64(-0.0), Ok(0));
        assert_eq!(integer_from_f64(1e3), Ok(1000));
        assert_eq!(integer_from_f64(9_007_199_254_740_992.0), Ok(1 << 53));
        assert_eq!(integer_from_f64(-9_007_199_254_740_992.0), Ok(-(1 << 53)));
        assert_eq!(
            integer_from_f64(9_007_199_254_740_994.0),
            Err(DataErrorKind::InexactInteger)
        );
        assert_eq!(
            integer_from_f64(-9_223_372_036_854_775_808.0),
            Err(DataErrorKind::InexactInteger)
        );
        assert_eq!(integer_from_f64(123.456), Err(DataErrorKind::Float));
        assert_eq!(integer_from_f64(f64::NAN), Err(DataErrorKind::Float));
        assert_eq!(integer_from_f64(f64::INFINITY), Err(DataErrorKind::Float));
        assert_eq!(integer_from_f64(1e30), Err(DataErrorKind::InexactInteger));
    }
}
