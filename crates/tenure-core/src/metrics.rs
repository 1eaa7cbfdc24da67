//! The metrics tenure records, through the `metrics` crate's facade.
//!
//! tenure only records; the application installs whichever exporter it
//! likes (Prometheus, StatsD, OpenTelemetry, ...). Without an installed
//! recorder every call below is a cheap no-op.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | [`IS_LEADER`] | gauge | `election` | 1 while this process leads the election, 0 after it stops |
//! | [`ELECTIONS_WON`] | counter | `election` | terms won |
//! | [`LEADERSHIP_LOST`] | counter | `election`, `reason` | terms ended, by [`LossReason::as_str`] |
//! | [`LEADERSHIP_DURATION`] | histogram (s) | `election` | length of each term, recorded when it ends |
//! | [`CAMPAIGN_DURATION`] | histogram (s) | `election` | from the start of a campaign to its election |
//! | [`KEEPALIVE_LATENCY`] | histogram (s) | `backend` | round trip of each acknowledged keep-alive |
//! | [`KEEPALIVE_FAILURES`] | counter | `backend` | keep-alives that failed or timed out |
//! | [`LEASES_LOST`] | counter | `backend`, `reason` | sessions whose lease ended, other than by release |
//! | [`WATCH_RECONNECTS`] | counter | `election`, `role` | watches that broke or failed to open and were re-established; `role` is `candidate` or `observer` |
//!
//! Durations are measured on tokio's clock, so tests that pause time see
//! exact values. When several candidates of one election run in one
//! process, they share the [`IS_LEADER`] series: the latest transition
//! wins.

use std::time::Duration;

use crate::{ElectionName, LossReason};

/// Gauge: 1 while leader of `election`, 0 once the term ends.
pub const IS_LEADER: &str = "tenure_is_leader";
/// Counter: terms won, per `election`.
pub const ELECTIONS_WON: &str = "tenure_elections_won_total";
/// Counter: terms ended, per `election` and `reason`.
pub const LEADERSHIP_LOST: &str = "tenure_leadership_lost_total";
/// Histogram, seconds: length of each term, per `election`.
pub const LEADERSHIP_DURATION: &str = "tenure_leadership_duration_seconds";
/// Histogram, seconds: campaign start to election, per `election`.
pub const CAMPAIGN_DURATION: &str = "tenure_campaign_duration_seconds";
/// Histogram, seconds: keep-alive round trip, per `backend`.
pub const KEEPALIVE_LATENCY: &str = "tenure_keepalive_latency_seconds";
/// Counter: failed or timed-out keep-alives, per `backend`.
pub const KEEPALIVE_FAILURES: &str = "tenure_keepalive_failures_total";
/// Counter: leases that ended other than by release, per `backend` and
/// `reason`.
pub const LEASES_LOST: &str = "tenure_leases_lost_total";
/// Counter: watches re-established after breaking, per `election` and
/// `role` (`candidate` or `observer`).
pub const WATCH_RECONNECTS: &str = "tenure_watch_reconnects_total";

/// Every metric name, for exporters that want to describe them up front.
pub const ALL: [&str; 9] = [
    IS_LEADER,
    ELECTIONS_WON,
    LEADERSHIP_LOST,
    LEADERSHIP_DURATION,
    CAMPAIGN_DURATION,
    KEEPALIVE_LATENCY,
    KEEPALIVE_FAILURES,
    LEASES_LOST,
    WATCH_RECONNECTS,
];

/// Registers a unit and a description for every metric with the installed
/// recorder. Optional: call it once after installing an exporter that
/// shows descriptions (Prometheus `# HELP` lines, for example).
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(IS_LEADER, "1 while this process leads the election");
    describe_counter!(ELECTIONS_WON, "Leadership terms won");
    describe_counter!(LEADERSHIP_LOST, "Leadership terms ended, by reason");
    describe_histogram!(
        LEADERSHIP_DURATION,
        Unit::Seconds,
        "Length of each leadership term"
    );
    describe_histogram!(
        CAMPAIGN_DURATION,
        Unit::Seconds,
        "Time from the start of a campaign to its election"
    );
    describe_histogram!(
        KEEPALIVE_LATENCY,
        Unit::Seconds,
        "Round trip of each acknowledged lease keep-alive"
    );
    describe_counter!(KEEPALIVE_FAILURES, "Failed or timed-out keep-alives");
    describe_counter!(LEASES_LOST, "Leases that ended other than by release");
    describe_counter!(WATCH_RECONNECTS, "Watches re-established after breaking");
}

/// Which side of an election a watch serves.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WatchRole {
    Candidate,
    Observer,
}

pub(crate) fn elected(election: &ElectionName, campaign: Duration) {
    let e = election.to_string();
    ::metrics::gauge!(IS_LEADER, "election" => e.clone()).set(1.0);
    ::metrics::counter!(ELECTIONS_WON, "election" => e.clone()).increment(1);
    ::metrics::histogram!(CAMPAIGN_DURATION, "election" => e).record(campaign.as_secs_f64());
}

pub(crate) fn lost(election: &ElectionName, reason: LossReason, term: Duration) {
    let e = election.to_string();
    ::metrics::gauge!(IS_LEADER, "election" => e.clone()).set(0.0);
    ::metrics::counter!(LEADERSHIP_LOST, "election" => e.clone(), "reason" => reason.as_str())
        .increment(1);
    ::metrics::histogram!(LEADERSHIP_DURATION, "election" => e).record(term.as_secs_f64());
}

pub(crate) fn keepalive_acked(backend: &'static str, round_trip: Duration) {
    ::metrics::histogram!(KEEPALIVE_LATENCY, "backend" => backend).record(round_trip.as_secs_f64());
}

pub(crate) fn keepalive_failed(backend: &'static str) {
    ::metrics::counter!(KEEPALIVE_FAILURES, "backend" => backend).increment(1);
}

pub(crate) fn lease_lost(backend: &'static str, reason: LossReason) {
    ::metrics::counter!(LEASES_LOST, "backend" => backend, "reason" => reason.as_str())
        .increment(1);
}

pub(crate) fn watch_reconnect(election: &ElectionName, role: WatchRole) {
    let role = match role {
        WatchRole::Candidate => "candidate",
        WatchRole::Observer => "observer",
    };
    ::metrics::counter!(WATCH_RECONNECTS, "election" => election.to_string(), "role" => role)
        .increment(1);
}
