//! `CLOCK_MONOTONIC` timestamps: one clock shared by every process on the
//! machine, so events of different `tenure` processes (and of a benchmark
//! reading them) can be ordered and subtracted.

use std::time::Instant;

use nix::time::{clock_gettime, ClockId};

/// Now, in nanoseconds of `CLOCK_MONOTONIC`.
pub fn mono_ns() -> u64 {
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => {
            let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
            let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
            secs.saturating_mul(1_000_000_000).saturating_add(nanos)
        }
        // CLOCK_MONOTONIC always exists on Linux; never panic over a timestamp.
        Err(_) => 0,
    }
}

/// `at` (an [`Instant`], e.g. a leader's `valid_until`) expressed in
/// `CLOCK_MONOTONIC` nanoseconds, by its offset from now.
pub fn instant_to_mono_ns(at: Instant) -> u64 {
    let (now_ns, now) = (mono_ns(), Instant::now());
    if at >= now {
        now_ns.saturating_add(nanos(at - now))
    } else {
        now_ns.saturating_sub(nanos(now - at))
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn monotonic_and_nonzero() {
        let a = mono_ns();
        let b = mono_ns();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn instants_map_by_offset() {
        let now = mono_ns();
        let later = instant_to_mono_ns(Instant::now() + Duration::from_secs(5));
        // 5 s ahead, give or take the time the two reads took.
        assert!(later >= now + 4_900_000_000 && later <= now + 5_500_000_000);
        let past = Instant::now().checked_sub(Duration::from_secs(1));
        if let Some(past) = past {
            assert!(instant_to_mono_ns(past) < mono_ns());
        }
    }
}
