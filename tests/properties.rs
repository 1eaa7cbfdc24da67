//! Property tests: random schedules of campaigns, resignations, crashes,
//! restarts that resume their lease, freezes longer than the TTL, partitions, lease expiries, dropped watches
//! and lost history, for 2 to 8 candidates on the in-memory backend, run by
//! the deterministic simulator on paused tokio time. Every history must
//! pass the checker: no overlapping leaders, strictly increasing fencing
//! tokens, every loss reported, and a leader soon after the faults heal.
//!
//! Failing cases are kept in `tests/properties.proptest-regressions` and
//! replayed first on every run.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::time::Duration;

use proptest::prelude::*;
use tenure::machine::Strategy as ElectionStrategy;
use tenure_testkit::sim::{Op, Sim, SimConfig};

const TTL: Duration = Duration::from_secs(2);
/// Slack on top of the TTL for a leader to appear after the faults heal:
/// the single-key strategy's back-off window (1 s) and a few round trips.
const LIVENESS_SLACK: Duration = Duration::from_millis(1500);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One operation on one of `n` candidates. Small integers and durations
/// keep shrinking effective: proptest shrinks towards candidate 0, shorter
/// faults and fewer steps.
fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..n).prop_map(Op::Campaign),
        1 => (0..n).prop_map(Op::Resign),
        1 => (0..n).prop_map(Op::Crash),
        1 => (0..n).prop_map(Op::Restart),
        1 => (0..n, 100..6_000u64).prop_map(|(i, d)| Op::Freeze(i, ms(d))),
        1 => (0..n, 100..6_000u64).prop_map(|(i, d)| Op::Partition(i, ms(d))),
        1 => (0..n).prop_map(Op::ExpireLease),
        1 => Just(Op::DropWatches),
        1 => Just(Op::LoseHistory),
        6 => (0..3_000u64).prop_map(|d| Op::Advance(ms(d))),
    ]
}

fn schedule() -> impl Strategy<Value = (usize, Vec<Op>, u64)> {
    (2..=8usize).prop_flat_map(|n| (Just(n), prop::collection::vec(op(n), 1..50), any::<u64>()))
}

/// Runs one schedule and checks the history; returns the report of the
/// first violation.
fn run(strategy: ElectionStrategy, n: usize, ops: &[Op], seed: u64) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut sim = Sim::new(SimConfig {
            candidates: n,
            ttl: TTL,
            strategy,
            seed,
            ..SimConfig::default()
        });
        for op in ops {
            sim.apply(op).await;
        }
        let healed = sim.heal().await;
        sim.run_for(TTL + LIVENESS_SLACK + Duration::from_secs(1))
            .await;
        let end = sim.now();
        let history = sim.history();
        history.check(end).map_err(|v| v.to_string())?;
        history
            .check_leader_within(end, healed, TTL + LIVENESS_SLACK)
            .map_err(|v| v.to_string())?;
        Ok(())
    })
}

proptest! {
    #[test]
    fn queue_strategy_keeps_its_invariants((n, ops, seed) in schedule()) {
        if let Err(report) = run(ElectionStrategy::Queue, n, &ops, seed) {
            prop_assert!(false, "{}", report);
        }
    }

    #[test]
    fn single_key_strategy_keeps_its_invariants((n, ops, seed) in schedule()) {
        if let Err(report) = run(ElectionStrategy::SingleKey, n, &ops, seed) {
            prop_assert!(false, "{}", report);
        }
    }
}

/// Hand-written schedules for the faults that matter most, kept as plain
/// tests so that they always run.
#[test]
fn frozen_leader_does_not_overlap_its_successor() {
    let ops = [
        Op::Campaign(0),
        Op::Advance(ms(100)),
        Op::Campaign(1),
        Op::Advance(ms(100)),
        Op::Freeze(0, ms(5_000)),
        Op::Advance(ms(6_000)),
    ];
    run(ElectionStrategy::Queue, 2, &ops, 1).unwrap();
}

#[test]
fn partitioned_leader_then_heal() {
    let ops = [
        Op::Campaign(0),
        Op::Campaign(1),
        Op::Campaign(2),
        Op::Advance(ms(500)),
        Op::Partition(0, ms(4_000)),
        Op::Advance(ms(5_000)),
        Op::LoseHistory,
        Op::Advance(ms(500)),
    ];
    run(ElectionStrategy::Queue, 3, &ops, 2).unwrap();
    run(ElectionStrategy::SingleKey, 3, &ops, 2).unwrap();
}

/// A leader that restarts with its lease takes its place back in the same
/// term (same token), ahead of the candidate that was waiting; one that
/// restarts after its lease expired starts afresh behind it.
#[test]
fn restarted_leader_resumes_its_term() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        for strategy in [ElectionStrategy::Queue, ElectionStrategy::SingleKey] {
            let mut sim = Sim::new(SimConfig {
                candidates: 2,
                ttl: TTL,
                strategy,
                seed: 3,
                ..SimConfig::default()
            });
            for op in [
                Op::Campaign(0),
                Op::Advance(ms(100)),
                Op::Campaign(1),
                Op::Advance(ms(500)),
                Op::Restart(0),
                Op::Advance(ms(500)),
            ] {
                sim.apply(&op).await;
            }
            let end = sim.now();
            let terms = sim.history().check(end).unwrap();
            let of_0: Vec<_> = terms.iter().filter(|t| t.candidate == 0).collect();
            assert_eq!(of_0.len(), 2, "{strategy:?}: {terms:#?}");
            assert!(of_0[0].crashed);
            assert_eq!(of_0[1].token, of_0[0].token, "{strategy:?}: the same term");
            assert!(
                terms.iter().all(|t| t.candidate == 0),
                "{strategy:?}: the waiting candidate never led: {terms:#?}"
            );
        }
    });
}
