//! The machine-wide monotonic clock, in nanoseconds.
//!
//! `CLOCK_MONOTONIC` is shared by every process on the machine, so the
//! bench's own readings compare directly with the `mono_ns` the `tenure`
//! CLI prints.

use std::time::Duration;

use rustix::time::{clock_gettime, ClockId};

/// `CLOCK_MONOTONIC` now, in nanoseconds.
pub fn mono_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// The time from `earlier` to `later` (zero if `later` is not later).
pub fn between(earlier: u64, later: u64) -> Duration {
    Duration::from_nanos(later.saturating_sub(earlier))
}
