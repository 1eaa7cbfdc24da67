//! Distributions of measured samples: min / median / p99 / max over n runs.

use std::time::Duration;

/// A summary of samples (in any unit; latencies are milliseconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Distribution {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample.
    pub min: f64,
    /// Median (mean of the two middle samples for an even count).
    pub median: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// The samples, sorted ascending (for plots).
    pub sorted: Vec<f64>,
}

impl Distribution {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Distribution> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Distribution {
            n,
            min: sorted[0],
            median,
            p99: sorted[percentile_rank(n, 0.99)],
            max: sorted[n - 1],
            sorted,
        })
    }

    /// Summarises durations in milliseconds.
    pub fn of_millis(samples: &[Duration]) -> Option<Distribution> {
        let ms: Vec<f64> = samples.iter().map(|d| millis(*d)).collect();
        Self::of(&ms)
    }
}

/// Index of the nearest-rank percentile `q` (0..=1) among `n` sorted samples.
fn percentile_rank(n: usize, q: f64) -> usize {
    let rank = (q * n as f64).ceil() as usize;
    rank.clamp(1, n) - 1
}

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
    fn summary_of_one_to_hundred() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let d = Distribution::of(&v).expect("samples");
        assert_eq!((d.n, d.min, d.max), (100, 1.0, 100.0));
        assert_eq!(d.median, 50.5);
        assert_eq!(d.p99, 99.0);
    }

    #[test]
    fn odd_count_and_empty() {
        let d = Distribution::of(&[3.0, 1.0, 2.0]).expect("samples");
        assert_eq!((d.median, d.p99), (2.0, 3.0));
        assert!(Distribution::of(&[]).is_none());
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
    }
}
