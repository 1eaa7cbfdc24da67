//! `CLOCK_MONOTONIC` in nanoseconds: one clock shared by every process on
//! the machine, so the logs of separate processes merge into one history.

use std::time::{Duration, Instant};

/// Nanoseconds on `CLOCK_MONOTONIC` now: the CLI's clock, the one the
/// `mono_ns` of its event lines comes from.
pub use tenure_cli::clock::mono_ns;

/// Converts `std::time::Instant`s of this process (what tenure hands out,
/// e.g. `Leadership::valid_until`) to `CLOCK_MONOTONIC` nanoseconds, by
/// their offset from an anchor read at the same moment on both clocks.
#[derive(Clone, Copy, Debug)]
pub struct MonoAnchor {
    instant: Instant,
    ns: u64,
}

impl MonoAnchor {
    /// Anchors now.
    pub fn now() -> MonoAnchor {
        let instant = Instant::now();
        let ns = mono_ns();
        MonoAnchor { instant, ns }
    }

    /// `at` in monotonic nanoseconds.
    pub fn to_ns(&self, at: Instant) -> u64 {
        if at >= self.instant {
            self.ns.saturating_add(nanos(at - self.instant))
        } else {
            self.ns.saturating_sub(nanos(self.instant - at))
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Maps monotonic nanoseconds of a run back to `Instant`s for the history
/// checker: `origin_ns` becomes `base`.
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    base: Instant,
    origin_ns: u64,
}

impl Timeline {
    /// A timeline whose earliest instant is `origin_ns`.
    pub fn new(origin_ns: u64) -> Timeline {
        Timeline {
            base: Instant::now(),
            origin_ns,
        }
    }

    /// `ns` as an `Instant` (instants before the origin clamp to it).
    pub fn instant(&self, ns: u64) -> Instant {
        self.base + Duration::from_nanos(ns.saturating_sub(self.origin_ns))
    }

    /// Seconds since the origin, for reports.
    pub fn secs(&self, ns: u64) -> f64 {
        ns.saturating_sub(self.origin_ns) as f64 / 1e9
    }

    /// The `Instant` back to seconds since the origin.
    pub fn secs_of(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.base).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_agrees_with_the_clock() {
        let anchor = MonoAnchor::now();
        let a = mono_ns();
        let i = Instant::now();
        let b = mono_ns();
        let n = anchor.to_ns(i);
        // The conversion lands between two direct reads (with a little
        // slack for the anchor's own two reads).
        assert!(n + 1_000_000 >= a && n <= b + 1_000_000, "{a} {n} {b}");
        assert!(anchor.to_ns(i - Duration::from_millis(5)) < n);
    }

    #[test]
    fn timeline_round_trips() {
        let t = Timeline::new(1_000);
        assert_eq!(
            t.instant(1_000 + 2_000_000_000) - t.instant(1_000),
            Duration::from_secs(2)
        );
        assert!((t.secs(1_000 + 1_500_000_000) - 1.5).abs() < 1e-9);
        assert!((t.secs_of(t.instant(1_000 + 500_000_000)) - 0.5).abs() < 1e-6);
    }
}
