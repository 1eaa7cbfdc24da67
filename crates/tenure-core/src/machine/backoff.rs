//! Jittered exponential back-off.

use std::time::Duration;

/// Exponential back-off with full jitter: the n-th delay is drawn
/// uniformly from `[0, min(max, initial * 2^n)]`.
///
/// Full jitter spreads candidates that lost the same race over the whole
/// window, so a leader change on the single-key strategy does not turn
/// into a synchronized storm of creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Upper bound of the first delay.
    pub initial: Duration,
    /// Cap on the upper bound.
    pub max: Duration,
}

impl Backoff {
    /// The upper bound of the delay window for attempt `n` (0-based).
    pub fn window(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Draws the delay for attempt `n` from `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let window = self.window(attempt).as_nanos() as u64;
        Duration::from_nanos(if window == 0 { 0 } else { rng.u64(0..=window) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_doubles_until_capped() {
        let b = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        };
        assert_eq!(b.window(0), Duration::from_millis(10));
        assert_eq!(b.window(1), Duration::from_millis(20));
        assert_eq!(b.window(2), Duration::from_millis(40));
        assert_eq!(b.window(3), Duration::from_millis(50));
        assert_eq!(b.window(40), Duration::from_millis(50));
        let mut rng = fastrand::Rng::with_seed(7);
        for n in 0..10 {
            assert!(b.delay(n, &mut rng) <= b.window(n));
        }
    }
}
