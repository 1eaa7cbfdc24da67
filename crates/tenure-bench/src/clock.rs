//! The machine-wide monotonic clock, in nanoseconds.
//!
//! `CLOCK_MONOTONIC` is shared by every process on the machine, so the
//! bench's own readings compare directly with the `mono_ns` the `tenure`
//! CLI prints.

use std::time::Duration;

/// `CLOCK_MONOTONIC` now, in nanoseconds: the CLI's own clock.
pub use tenure_cli::clock::mono_ns;

/// The time from `earlier` to `later` (zero if `later` is not later).
pub fn between(earlier: u64, later: u64) -> Duration {
    Duration::from_nanos(later.saturating_sub(earlier))
}
