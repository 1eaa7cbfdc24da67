//! Jittered exponential back-off: the one retry and re-campaign delay
//! policy of tenure.

use std::time::Duration;

/// Exponential back-off with full jitter: the n-th delay is drawn
/// uniformly from `[0, min(max, initial * 2^n)]`.
///
/// Full jitter spreads candidates that lost the same race over the whole
/// window, so a leader change on the single-key strategy does not turn
/// into a synchronized storm of creates. The same policy paces retries of
/// failed requests, reconnections, and the re-campaigns of
/// [`Election::run`](crate::Election::run).
///
/// ```
/// use std::time::Duration;
/// use tenure_core::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// for failures in 0..3 {
///     assert!(backoff.delay(failures) <= backoff.window(failures));
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Default for Backoff {
    /// [`Backoff::RETRY`].
    fn default() -> Self {
        Backoff::RETRY
    }
}

impl Backoff {
    /// The recommended back-off between retries of a transient error
    /// ([`Error::is_transient`](crate::Error::is_transient)): full jitter
    /// over a window that starts at 50 ms and doubles up to 1 s. The
    /// default of every election.
    pub const RETRY: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));

    /// A back-off whose window starts at `initial` and doubles up to
    /// `max`. An `initial` above `max` is capped at `max`; elections
    /// refuse it at [`build`](crate::ElectionBuilder::build) with
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig).
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max }
    }

    /// Upper bound of the first delay.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// Cap on the upper bound of every delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The upper bound of the delay window for attempt `n` (0-based).
    pub fn window(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A delay for attempt `n` (0-based), drawn uniformly from
    /// `[0, window(n)]` by a thread-local random source.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_from(attempt, &mut fastrand::Rng::new())
    }

    /// [`delay`](Self::delay) drawn from `rng`: the sans-IO machines
    /// draw from a seeded source so that a simulation replays.
    pub(crate) fn delay_from(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let window = u64::try_from(self.window(attempt).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(if window == 0 { 0 } else { rng.u64(0..=window) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_doubles_until_capped() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
        assert_eq!(b.window(0), Duration::from_millis(10));
        assert_eq!(b.window(1), Duration::from_millis(20));
        assert_eq!(b.window(2), Duration::from_millis(40));
        assert_eq!(b.window(3), Duration::from_millis(50));
        assert_eq!(b.window(40), Duration::from_millis(50));
        let mut rng = fastrand::Rng::with_seed(7);
        for n in 0..10 {
            assert!(b.delay_from(n, &mut rng) <= b.window(n));
            assert!(b.delay(n) <= b.window(n));
        }
    }
}
