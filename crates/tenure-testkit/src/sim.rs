//! A deterministic simulation of candidates running the sans-IO machines
//! against the in-memory backend, with faults.
//!
//! The simulator owns time (tokio's paused clock), executes every command
//! of every candidate's [`LeaseKeeper`] and [`ElectionMachine`] against its
//! own [`MemoryClient`], and records what each candidate is told into a
//! [`History`]. Faults act where real ones do:
//!
//! - **crash**: the candidate vanishes; its lease expires on the server;
//! - **freeze** (the "GC pause"): the candidate runs nothing — no timers, no
//!   messages — until it thaws, then catches up with a backlog;
//! - **partition**: the candidate runs but its requests fail and its
//!   watches break;
//! - **expire lease**, **drop watches**, **lose history** act on the server.
//!
//! It must run on a current-thread tokio runtime with paused time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tenure_core::machine::{
    Command, ElectionConfig, ElectionMachine, Event, LeaseCommand, LeaseConfig, LeaseEvent,
    LeaseKeeper, Strategy, WatchId,
};
use tenure_core::{backend, CoordinationBackend, ElectionName, WatchStream};
use tenure_memory::{MemoryBackend, MemoryClient};

use crate::history::{History, RecordKind};

/// Parameters of a simulation.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of candidates.
    pub candidates: usize,
    /// Lease TTL.
    pub ttl: Duration,
    /// Election strategy.
    pub strategy: Strategy,
    /// Seed for the candidates' jitter.
    pub seed: u64,
    /// Largest single time step (bounds how late the server's lease reaper
    /// runs relative to an exact expiry).
    pub max_step: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            candidates: 3,
            ttl: Duration::from_secs(2),
            strategy: Strategy::Queue,
            seed: 0,
            max_step: Duration::from_millis(50),
        }
    }
}

/// One scheduled action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// The candidate (re)starts campaigning and keeps doing so after each
    /// term (a crashed candidate restarts).
    Campaign(usize),
    /// The candidate resigns (or withdraws) and stops campaigning.
    Resign(usize),
    /// The candidate process dies without cleanup.
    Crash(usize),
    /// The candidate process dies without cleanup and starts again at
    /// once, resuming the lease it had (`SessionBuilder::resume`): if its
    /// entry is still there it takes its place back, in the same term when
    /// it led.
    Restart(usize),
    /// The candidate process is frozen for a while.
    Freeze(usize, Duration),
    /// The candidate cannot reach the backend for a while.
    Partition(usize, Duration),
    /// The server expires the candidate's lease now.
    ExpireLease(usize),
    /// The server breaks every watch stream.
    DropWatches,
    /// The server compacts its history (watches see `HistoryLost`).
    LoseHistory,
    /// Time passes.
    Advance(Duration),
}

struct Candidate {
    client: Option<MemoryClient>,
    keeper: Option<LeaseKeeper>,
    machine: Option<ElectionMachine>,
    watches: BTreeMap<WatchId, WatchStream>,
    wants: bool,
    frozen_until: Option<Instant>,
    partitioned_until: Option<Instant>,
    starts: u64,
    /// The lease to resume at the next start (after a restart).
    resume: Option<tenure_core::LeaseId>,
}

/// The simulated world.
pub struct Sim {
    config: SimConfig,
    election: ElectionName,
    server: MemoryBackend,
    candidates: Vec<Candidate>,
    history: History,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Sim {
    /// A world with `config.candidates` idle candidates.
    pub fn new(config: SimConfig) -> Sim {
        let server = MemoryBackend::new();
        let candidates = (0..config.candidates)
            .map(|_| Candidate {
                client: Some(server.client()),
                keeper: None,
                machine: None,
                watches: BTreeMap::new(),
                wants: false,
                frozen_until: None,
                partitioned_until: None,
                starts: 0,
                resume: None,
            })
            .collect();
        Sim {
            config,
            election: ElectionName::new("sim").unwrap_or_else(|_| unreachable!("valid name")),
            server,
            candidates,
            history: History::new(),
        }
    }

    /// The recorded history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The server.
    pub fn server(&self) -> &MemoryBackend {
        &self.server
    }

    /// Now, on the simulated clock.
    pub fn now(&self) -> Instant {
        now()
    }

    /// Applies one operation (an [`Op::Advance`] runs the world).
    pub async fn apply(&mut self, op: &Op) {
        let t = now();
        if !matches!(op, Op::Advance(_)) {
            self.history
                .push(t, op_subject(op), RecordKind::Note(format!("{op:?}")));
        }
        let n = self.candidates.len();
        match *op {
            Op::Campaign(i) => {
                let server = self.server.clone();
                let c = &mut self.candidates[i % n];
                if c.client.is_none() {
                    c.client = Some(server.client());
                }
                c.wants = true;
            }
            Op::Resign(i) => {
                let c = &mut self.candidates[i % n];
                c.wants = false;
                if let Some(m) = c.machine.as_mut() {
                    if c.frozen_until.is_none() {
                        m.resign(t);
                    }
                }
            }
            Op::Crash(i) => {
                let c = &mut self.candidates[i % n];
                if c.client.take().is_some() {
                    c.keeper = None;
                    c.machine = None;
                    c.watches.clear();
                    c.wants = false;
                    c.frozen_until = None;
                    c.partitioned_until = None;
                    self.history.push(t, i % n, RecordKind::Crashed);
                }
            }
            Op::Restart(i) => {
                let server = self.server.clone();
                let c = &mut self.candidates[i % n];
                if c.client.is_some() {
                    // The new process reaches the backend; the old one's
                    // connection goes with it.
                    c.partitioned_until = None;
                    c.resume = c.keeper.take().map(|k| k.lease());
                    c.client = Some(server.client());
                    c.machine = None;
                    c.watches.clear();
                    c.frozen_until = None;
                    c.wants = true;
                    self.history.push(t, i % n, RecordKind::Crashed);
                }
            }
            Op::Freeze(i, d) => {
                let c = &mut self.candidates[i % n];
                if c.client.is_some() {
                    c.frozen_until = Some(c.frozen_until.unwrap_or(t).max(t + d));
                }
            }
            Op::Partition(i, d) => {
                let c = &mut self.candidates[i % n];
                if let Some(client) = &c.client {
                    client.set_unreachable(true);
                    c.partitioned_until = Some(c.partitioned_until.unwrap_or(t).max(t + d));
                }
            }
            Op::ExpireLease(i) => {
                if let Some(k) = &self.candidates[i % n].keeper {
                    if self.server.expire_lease(k.lease()) {
                        self.history.push(t, i % n, RecordKind::Deposed);
                    }
                }
            }
            Op::DropWatches => self.server.drop_watches(),
            Op::LoseHistory => self.server.compact_all(),
            Op::Advance(d) => self.run_for(d).await,
        }
        if !matches!(op, Op::Advance(_)) {
            self.settle().await;
        }
    }

    /// Ends every fault (thaws, reconnects) and makes every live candidate
    /// campaign; if none is alive, restarts candidate 0. Returns the
    /// instant of the heal.
    pub async fn heal(&mut self) -> Instant {
        let t = now();
        for c in &mut self.candidates {
            c.frozen_until = c.frozen_until.map(|_| t);
            c.partitioned_until = c.partitioned_until.map(|_| t);
        }
        if self.candidates.iter().all(|c| c.client.is_none()) {
            self.candidates[0].client = Some(self.server.client());
        }
        for c in &mut self.candidates {
            if c.client.is_some() {
                c.wants = true;
            }
        }
        self.history.push(t, 0, RecordKind::Note("heal".into()));
        self.settle().await;
        t
    }

    /// Runs the world for `d` of simulated time.
    pub async fn run_for(&mut self, d: Duration) {
        let target = now() + d;
        loop {
            self.settle().await;
            let t = now();
            if t >= target {
                return;
            }
            let mut next = target.min(t + self.config.max_step);
            for c in &self.candidates {
                // A frozen candidate runs nothing until it thaws: its own
                // overdue timers must not drag the clock in tiny steps.
                let wake = match c.frozen_until {
                    Some(thaw) => [Some(thaw), None, None, c.partitioned_until],
                    None => [
                        c.keeper.as_ref().and_then(|k| k.poll_timeout()),
                        c.machine.as_ref().and_then(|m| m.poll_timeout()),
                        None,
                        c.partitioned_until,
                    ],
                };
                for w in wake.into_iter().flatten() {
                    next = next.min(w.max(t));
                }
            }
            let step = next
                .saturating_duration_since(t)
                .max(Duration::from_micros(1));
            tokio::time::advance(step).await;
            // Let the server's lease reaper run.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Runs every candidate until none has anything left to do at this
    /// instant.
    ///
    /// # Panics
    /// When a running candidate's machine, having handled its timeout, still
    /// asks to be woken at an instant already past: a driver would
    /// busy-loop on it. The property tests report this like any other
    /// broken invariant.
    async fn settle(&mut self) {
        for _ in 0..64 {
            let mut progress = false;
            for i in 0..self.candidates.len() {
                progress |= self.step_candidate(i).await;
            }
            if !progress {
                break;
            }
        }
        let t = now();
        for (i, c) in self.candidates.iter().enumerate() {
            if c.client.is_none() || c.frozen_until.is_some() {
                continue;
            }
            let overdue = [
                (
                    "lease keeper",
                    c.keeper.as_ref().and_then(|k| k.poll_timeout()),
                ),
                (
                    "election machine",
                    c.machine.as_ref().and_then(|m| m.poll_timeout()),
                ),
            ];
            for (what, wake) in overdue {
                if let Some(at) = wake.filter(|at| *at < t) {
                    panic!(
                        "invariant violated: no busy loop: candidate {i}'s {what} asks to be woken {:?} in the past after handling its timeout",
                        t - at
                    );
                }
            }
        }
    }

    /// Runs one candidate at the current instant; returns whether anything
    /// happened.
    async fn step_candidate(&mut self, i: usize) -> bool {
        let t = now();
        let ttl = self.config.ttl;
        let strategy = self.config.strategy;
        let seed = self.config.seed;
        let election = self.election.clone();
        let c = &mut self.candidates[i];
        let Some(client) = c.client.clone() else {
            return false;
        };
        if let Some(until) = c.partitioned_until {
            if t >= until {
                client.set_unreachable(false);
                c.partitioned_until = None;
            }
        }
        match c.frozen_until {
            Some(until) if t < until => return false,
            Some(_) => c.frozen_until = None,
            None => {}
        }
        let mut progress = false;

        // The lease.
        if let Some(k) = c.keeper.as_mut() {
            k.handle_timeout(t);
            while let Some(cmd) = k.poll_command() {
                progress = true;
                match cmd {
                    LeaseCommand::KeepAlive { lease, sent_at } => {
                        let r = client.keep_alive(lease).await;
                        k.handle_keepalive(now(), sent_at, r);
                    }
                    LeaseCommand::Revoke { lease } => {
                        let _ = client.revoke_lease(lease).await;
                    }
                }
            }
            while let Some(ev) = k.poll_event() {
                progress = true;
                if let Some(m) = c.machine.as_mut() {
                    match ev {
                        LeaseEvent::Renewed { valid_until, .. } => m.handle_renewed(t, valid_until),
                        LeaseEvent::Lost { reason, .. } => m.handle_lease_lost(t, reason),
                    }
                }
            }
            if !k.is_alive() {
                c.keeper = None;
            }
        }

        // Start a campaign.
        if c.wants && c.machine.is_none() {
            if c.keeper.is_none() {
                let sent = now();
                // A restarted candidate takes its lease back if it is
                // still alive; otherwise it starts afresh.
                let resumed = match c.resume.take() {
                    Some(lease) => client.resume_lease(lease).await.ok(),
                    None => None,
                };
                if let Some(grant) = resumed {
                    c.keeper = Some(LeaseKeeper::new(
                        grant,
                        LeaseConfig::for_ttl(grant.ttl),
                        sent,
                    ));
                    progress = true;
                } else if let Ok(grant) = client.grant_lease(ttl).await {
                    c.keeper = Some(LeaseKeeper::new(
                        grant,
                        LeaseConfig::for_ttl(grant.ttl),
                        sent,
                    ));
                    progress = true;
                }
            }
            if let Some(k) = &c.keeper {
                c.starts += 1;
                let mut config = ElectionConfig::default();
                config.strategy = strategy;
                c.machine = Some(ElectionMachine::new(
                    election,
                    config,
                    format!("candidate-{i}").into(),
                    k.lease(),
                    k.valid_until(),
                    t,
                    seed ^ ((i as u64) << 32) ^ c.starts,
                ));
                progress = true;
            }
        }

        // The election.
        let Some(m) = c.machine.as_mut() else {
            return progress;
        };
        m.handle_timeout(t);
        loop {
            let mut did = false;
            while let Some(cmd) = m.poll_command() {
                did = true;
                match cmd {
                    Command::Request { id, request } => {
                        // No timeout: the simulated client answers or
                        // fails at once.
                        let reply = backend::execute(&client, request, None).await;
                        m.handle_reply(now(), id, reply);
                    }
                    Command::Watch { id, scope, from } => match client.watch(scope, from).await {
                        Ok(s) => {
                            c.watches.insert(id, s);
                        }
                        Err(_) => m.handle_watch(now(), id, None),
                    },
                    Command::Unwatch { id } => {
                        c.watches.remove(&id);
                    }
                }
            }
            // Deliver whatever the watches have ready, in watch order.
            let ids: Vec<WatchId> = c.watches.keys().copied().collect();
            for id in ids {
                let Some(stream) = c.watches.get_mut(&id) else {
                    continue;
                };
                match stream.next().now_or_never() {
                    None => {}
                    Some(Some(Ok(ev))) => {
                        did = true;
                        m.handle_watch(now(), id, Some(ev));
                    }
                    Some(Some(Err(_)) | None) => {
                        did = true;
                        c.watches.remove(&id);
                        m.handle_watch(now(), id, None);
                    }
                }
            }
            let mut finished = false;
            while let Some(ev) = m.poll_event() {
                did = true;
                let at = now();
                match ev {
                    Event::Elected {
                        token, valid_until, ..
                    } => self
                        .history
                        .push(at, i, RecordKind::Elected { token, valid_until }),
                    Event::Extended { valid_until } => {
                        self.history
                            .push(at, i, RecordKind::Extended { valid_until })
                    }
                    Event::Lost { reason } => self.history.push(at, i, RecordKind::Lost { reason }),
                    Event::Failed(_) | Event::ReleaseFailed(_) => {}
                    Event::Finished => finished = true,
                }
            }
            if finished {
                c.machine = None;
                c.watches.clear();
                return true;
            }
            if !did {
                break;
            }
            progress = true;
        }
        progress
    }
}

fn op_subject(op: &Op) -> usize {
    match *op {
        Op::Campaign(i)
        | Op::Resign(i)
        | Op::Crash(i)
        | Op::Restart(i)
        | Op::Freeze(i, _)
        | Op::Partition(i, _)
        | Op::ExpireLease(i) => i,
        _ => 0,
    }
}
