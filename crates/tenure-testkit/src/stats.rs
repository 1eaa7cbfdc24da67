//! Distributions of measured samples, summarised one way for every
//! report (the benchmark's tables and the fault campaign's timings).
//!
//! Every percentile, the median included, is taken by **nearest rank**:
//! the `⌈q·n⌉`-th smallest sample. Each figure is therefore a sample that
//! was measured (never an average of two), and a p99 over fewer than 100
//! samples is the largest one.

use std::time::Duration;

use serde::Serialize;

/// A summary of samples (in any one unit: the benchmark uses
/// milliseconds, the fault campaign seconds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Distribution {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample.
    pub min: f64,
    /// Median (the 50th percentile, nearest rank).
    pub median: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// The samples, sorted ascending (for plots).
    #[serde(skip)]
    pub sorted: Vec<f64>,
}

impl Distribution {
    /// Summarises the finite values of `samples`; `None` when there are
    /// none.
    pub fn of(samples: &[f64]) -> Option<Distribution> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        Some(Distribution {
            n,
            min: sorted[0],
            median: sorted[rank(n, 0.5)],
            p90: sorted[rank(n, 0.9)],
            p99: sorted[rank(n, 0.99)],
            max: sorted[n - 1],
            sorted,
        })
    }

    /// Summarises durations in milliseconds.
    pub fn of_millis(samples: &[Duration]) -> Option<Distribution> {
        let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        Self::of(&ms)
    }

    /// Summarises durations in seconds.
    pub fn of_secs(samples: &[Duration]) -> Option<Distribution> {
        let s: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
        Self::of(&s)
    }
}

/// Index of the nearest-rank percentile `q` (0..=1) among `n` sorted
/// samples.
fn rank(n: usize, q: f64) -> usize {
    let rank = (q * n as f64).ceil() as usize;
    rank.clamp(1, n) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_to_hundred_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let d = Distribution::of(&v).expect("samples");
        assert_eq!((d.n, d.min, d.max), (100, 1.0, 100.0));
        assert_eq!((d.median, d.p90, d.p99), (50.0, 90.0, 99.0));
    }

    #[test]
    fn odd_counts_single_samples_and_nothing() {
        let d = Distribution::of(&[3.0, 1.0, 2.0]).expect("samples");
        assert_eq!((d.median, d.p99, d.sorted.len()), (2.0, 3.0, 3));
        let one = Distribution::of(&[1.3]).expect("one sample");
        assert_eq!(
            (one.min, one.median, one.p99, one.max),
            (1.3, 1.3, 1.3, 1.3)
        );
        assert!(Distribution::of(&[]).is_none());
        assert!(Distribution::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn durations_in_either_unit() {
        let d = [Duration::from_millis(1500)];
        assert_eq!(Distribution::of_millis(&d).map(|d| d.median), Some(1500.0));
        assert_eq!(Distribution::of_secs(&d).map(|d| d.median), Some(1.5));
    }
}
