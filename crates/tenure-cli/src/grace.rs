//! `--grace` and the safety margin.
//!
//! A leader's local deadline comes one safety margin (TTL / 5, the
//! library's default) before the backend can expire its lease and elect a
//! successor. Everything the command does after a loss must fit in that
//! margin: the `SIGTERM`, the grace, the `SIGKILL` and the moment it takes
//! to land, plus any drift between our clock's rate and the backend's. So
//! the grace may take at most half of the margin (TTL / 10): a longer
//! `--grace` is refused at start, and the default is that maximum.

use std::time::Duration;

use tenure::machine::LeaseConfig;

use crate::CliError;

/// The longest grace that fits in the safety margin of a lease of `ttl`.
pub fn max_grace(ttl: Duration) -> Duration {
    LeaseConfig::for_ttl(ttl).safety_margin / 2
}

/// Refuses a `--grace` that cannot fit in the safety margin of `--ttl`.
///
/// # Errors
/// A usage error (exit 2) with the numbers and the ways out.
pub fn check(grace: Option<Duration>, ttl: Duration) -> Result<(), CliError> {
    let Some(grace) = grace else { return Ok(()) };
    let max = max_grace(ttl);
    if grace <= max {
        return Ok(());
    }
    let margin = LeaseConfig::for_ttl(ttl).safety_margin;
    Err(CliError::usage(format!(
        "--grace {} does not fit in the safety margin of --ttl {}: the leader steps down {} \
         (TTL / 5) before the backend can elect a successor, and the command must be killed \
         within half of that, {}; use --grace {} or less, or --ttl {} or more",
        fmt(grace),
        fmt(ttl),
        fmt(margin),
        fmt(max),
        fmt(max),
        fmt(grace.saturating_mul(10)),
    )))
}

/// The grace for one term, given the TTL the backend granted (which may
/// differ from the one asked for): `--grace`, or the maximum by default;
/// a `--grace` that no longer fits is cut to the maximum, with a warning.
pub fn for_granted_ttl(grace: Option<Duration>, granted: Duration) -> Duration {
    let max = max_grace(granted);
    match grace {
        None => max,
        Some(g) if g <= max => g,
        Some(g) => {
            tracing::warn!(
                grace = %fmt(g),
                granted_ttl = %fmt(granted),
                used = %fmt(max),
                "--grace does not fit in the safety margin of the TTL the backend granted; using the maximum"
            );
            max
        }
    }
}

fn fmt(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_takes_at_most_half_the_margin() {
        assert_eq!(
            max_grace(Duration::from_secs(2)),
            Duration::from_millis(200)
        );
        assert_eq!(max_grace(Duration::from_secs(10)), Duration::from_secs(1));
        assert!(check(None, Duration::from_secs(2)).is_ok());
        assert!(check(Some(Duration::from_millis(200)), Duration::from_secs(2)).is_ok());
        let e = check(Some(Duration::from_secs(30)), Duration::from_secs(2)).unwrap_err();
        assert_eq!(e.exit().code(), 2);
        let msg = e.to_string();
        for needle in ["--grace 30s", "--ttl 2s", "400ms", "200ms", "--ttl 5m"] {
            assert!(msg.contains(needle), "{needle}: {msg}");
        }
    }

    #[test]
    fn a_granted_ttl_too_short_for_the_grace_cuts_it() {
        let ttl = Duration::from_secs(10);
        assert_eq!(for_granted_ttl(None, ttl), Duration::from_secs(1));
        let short = Some(Duration::from_millis(300));
        assert_eq!(for_granted_ttl(short, ttl), Duration::from_millis(300));
        let long = Some(Duration::from_secs(5));
        assert_eq!(for_granted_ttl(long, ttl), Duration::from_secs(1));
    }
}
