//! Cost of the sans-IO machines' transitions: whole candidacies driven by
//! hand, with answers made up in memory (no I/O, no clock reads inside).
//! Shared by the criterion bench (`benches/machine.rs`) and the report.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tenure::backend::{CreateOutcome, LeaseGrant, Snapshot, WatchEvent};
use tenure::machine::{
    Command, ElectionConfig, ElectionMachine, Event, LeaseCommand, LeaseConfig, LeaseKeeper, Reply,
    RequestId, WatchId,
};
use tenure::{ElectionName, Entry, LeaseId};

/// Inputs fed to the machine in one [`leader_cycle`].
pub const LEADER_CYCLE_TRANSITIONS: u64 = 6;
/// Inputs fed to the machine in one [`follower_cycle`].
pub const FOLLOWER_CYCLE_TRANSITIONS: u64 = 7;
/// Inputs fed to the keeper in one [`keepalive_cycle`].
pub const KEEPALIVE_CYCLE_TRANSITIONS: u64 = 2;

const OURS: LeaseId = LeaseId(0xa);
const OTHER: LeaseId = LeaseId(0xb);

/// Fixed inputs of the cycles.
#[derive(Clone, Debug)]
pub struct Fixture {
    name: ElectionName,
    ours: Entry,
    predecessor: Entry,
    t0: Instant,
}

impl Fixture {
    /// Builds the fixture (one clock reading, here, outside the machine).
    ///
    /// # Panics
    /// Never: the election name is a valid constant.
    pub fn new() -> Fixture {
        let name = match ElectionName::new("bench") {
            Ok(n) => n,
            Err(e) => unreachable!("constant election name: {e}"),
        };
        let entry = |key: &str, lease: LeaseId, rev: u64| Entry {
            key: key.to_owned(),
            value: Bytes::from_static(b"v"),
            lease,
            created: rev,
            modified: rev,
        };
        Fixture {
            name,
            ours: entry("bench/a", OURS, 7),
            predecessor: entry("bench/b", OTHER, 5),
            t0: Instant::now(),
        }
    }

    fn machine(&self) -> ElectionMachine {
        ElectionMachine::new(
            self.name.clone(),
            ElectionConfig::default(),
            Bytes::from_static(b"v"),
            OURS,
            self.t0 + Duration::from_secs(10),
            self.t0,
            1,
        )
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

fn next_request(m: &mut ElectionMachine) -> Option<RequestId> {
    while let Some(c) = m.poll_command() {
        if let Command::Request { id, .. } = c {
            return Some(id);
        }
    }
    None
}

fn next_watch(m: &mut ElectionMachine) -> Option<WatchId> {
    while let Some(c) = m.poll_command() {
        if let Command::Watch { id, .. } = c {
            return Some(id);
        }
    }
    None
}

fn drain_events(m: &mut ElectionMachine) -> usize {
    let mut n = 0;
    while let Some(e) = m.poll_event() {
        n += usize::from(matches!(e, Event::Elected { .. }));
    }
    n
}

/// Create → read (first in line) → elected → renewed → resign → deleted.
/// Returns how many times the machine reported `Elected` (1).
pub fn leader_cycle(f: &Fixture) -> usize {
    let t = f.t0;
    let mut m = f.machine();
    let mut elected = 0;
    if let Some(id) = next_request(&mut m) {
        m.handle_reply(
            t,
            id,
            Reply::Create(Ok(CreateOutcome::Created(f.ours.clone()))),
        );
    }
    if let Some(id) = next_request(&mut m) {
        let snapshot = Snapshot {
            entries: vec![f.ours.clone()],
            revision: 7,
            starts_at_head: false,
        };
        m.handle_reply(t, id, Reply::Candidates(Ok(snapshot)));
    }
    elected += drain_events(&mut m);
    m.handle_renewed(t, t + Duration::from_secs(11));
    m.resign(t);
    if let Some(id) = next_request(&mut m) {
        m.handle_reply(t, id, Reply::Delete(Ok(true)));
    }
    elected + drain_events(&mut m)
}

/// Create → read (second in line) → follow → predecessor deleted → read
/// (first) → elected → resign → deleted. Returns the `Elected` count (1).
pub fn follower_cycle(f: &Fixture) -> usize {
    let t = f.t0;
    let mut m = f.machine();
    if let Some(id) = next_request(&mut m) {
        m.handle_reply(
            t,
            id,
            Reply::Create(Ok(CreateOutcome::Created(f.ours.clone()))),
        );
    }
    if let Some(id) = next_request(&mut m) {
        let snapshot = Snapshot {
            entries: vec![f.predecessor.clone(), f.ours.clone()],
            revision: 7,
            starts_at_head: false,
        };
        m.handle_reply(t, id, Reply::Candidates(Ok(snapshot)));
    }
    if let Some(w) = next_watch(&mut m) {
        let gone = WatchEvent::Delete {
            key: f.predecessor.key.clone(),
            revision: 8,
        };
        m.handle_watch(t, w, Some(gone));
    }
    if let Some(id) = next_request(&mut m) {
        let snapshot = Snapshot {
            entries: vec![f.ours.clone()],
            revision: 8,
            starts_at_head: false,
        };
        m.handle_reply(t, id, Reply::Candidates(Ok(snapshot)));
    }
    let mut elected = drain_events(&mut m);
    m.resign(t);
    if let Some(id) = next_request(&mut m) {
        m.handle_reply(t, id, Reply::Delete(Ok(true)));
    }
    elected += drain_events(&mut m);
    elected
}

/// A lease keeper: `rounds` keep-alive rounds (timeout → keep-alive sent,
/// answer → renewed). Returns the number of renewals.
pub fn keepalive_cycle(f: &Fixture, rounds: u32) -> usize {
    let ttl = Duration::from_secs(9);
    let grant = LeaseGrant { id: OURS, ttl };
    let config = LeaseConfig::for_ttl(ttl);
    let mut k = LeaseKeeper::new(grant, config, f.t0);
    let mut renewed = 0;
    let mut now = f.t0;
    for _ in 0..rounds {
        now += config.keepalive_interval;
        k.handle_timeout(now);
        while let Some(c) = k.poll_command() {
            if let LeaseCommand::KeepAlive { sent_at, .. } = c {
                k.handle_keepalive(now, sent_at, Ok(ttl));
            }
        }
        while k.poll_event().is_some() {
            renewed += 1;
        }
    }
    renewed
}

/// Nanoseconds per transition of `cycle`, one sample per batch of
/// `per_batch` cycles, `batches` samples.
pub fn per_transition_ns(
    batches: usize,
    per_batch: u32,
    transitions_per_cycle: u64,
    mut cycle: impl FnMut() -> usize,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(batches);
    let mut sink = 0usize;
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..per_batch {
            sink = sink.wrapping_add(std::hint::black_box(cycle()));
        }
        let ns = start.elapsed().as_nanos() as f64;
        out.push(ns / (f64::from(per_batch) * transitions_per_cycle as f64));
    }
    std::hint::black_box(sink);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_elect_once() {
        let f = Fixture::new();
        assert_eq!(leader_cycle(&f), 1);
        assert_eq!(follower_cycle(&f), 1);
        assert_eq!(keepalive_cycle(&f, 3), 3);
    }
}
