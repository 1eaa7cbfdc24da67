//! Measured samples: their [`Distribution`] (min / median / p99 / max over
//! n runs) and the unit conversions of the report.

use std::time::Duration;

/// The one summary of samples (nearest-rank percentiles, median
/// included), shared with the fault campaign.
pub use tenure_testkit::stats::Distribution;

/// A duration in (fractional) milliseconds.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Signed difference `a - b` in milliseconds.
pub fn signed_millis(a: Duration, b: Duration) -> f64 {
    millis(a) - millis(b)
}

/// `a / b`, or `None` when `b` is zero or either is missing.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_differences() {
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(None, Some(2.0)), None);
        let d = signed_millis(Duration::from_millis(5), Duration::from_millis(7));
        assert!((d + 2.0).abs() < 1e-9);
    }
}
