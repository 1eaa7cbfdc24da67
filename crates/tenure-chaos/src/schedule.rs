//! The seeded plan of a campaign: which fault comes next, what it hits,
//! how long it lasts, whether a second one overlaps it, and the gaps.
//!
//! The plan is a pure function of the seed and the campaign's settings;
//! the exact interleaving with the processes is not (a replay reproduces
//! the same sequence of faults, not the same microseconds).

use std::time::Duration;

use crate::cluster::BackendKind;
use crate::faults::{Fault, FaultKind, Target};

/// Chooses faults from a seeded generator.
#[derive(Debug)]
pub struct Planner {
    rng: fastrand::Rng,
    kinds: Vec<(FaultKind, u32)>,
    candidates: usize,
    members: usize,
    ttl: Duration,
}

impl Planner {
    /// A planner for `backend` with `candidates` candidates and `ttl`.
    pub fn new(seed: u64, backend: BackendKind, candidates: usize, ttl: Duration) -> Planner {
        let mut kinds = vec![
            (FaultKind::Sigkill, 10),
            (FaultKind::Sigstop, 10),
            (FaultKind::ProxyDrop, 8),
            (FaultKind::ProxyBlackhole, 10),
            (FaultKind::ProxyDelay, 6),
            (FaultKind::ProxySlow, 4),
            (FaultKind::DeleteKey, 6),
            (FaultKind::ExpireLease, 6),
        ];
        // Opt-in (weight 0 until asked for): it makes every candidate run
        // a gated command, and keeps the plans of existing seeds as they were.
        kinds.push((FaultKind::SignalGated, 0));
        if backend.is_cluster() {
            kinds.push((FaultKind::MemberKill, 6));
            kinds.push((FaultKind::MemberPause, 5));
        } else {
            kinds.push((FaultKind::BackendRestart, 4));
            kinds.push((FaultKind::BackendPause, 4));
        }
        Planner {
            rng: fastrand::Rng::with_seed(seed),
            kinds,
            candidates: candidates.max(1),
            members: if backend.is_cluster() { 3 } else { 1 },
            ttl,
        }
    }

    /// Draws only from `only` (when not empty): to reproduce one kind of
    /// fault at a time.
    pub fn restrict(mut self, only: &[FaultKind]) -> Planner {
        if !only.is_empty() {
            let kept: Vec<_> = self
                .kinds
                .iter()
                .copied()
                .filter(|(k, _)| only.contains(k))
                .map(|(k, w)| (k, w.max(OPT_IN_WEIGHT)))
                .collect();
            if !kept.is_empty() {
                self.kinds = kept;
            }
        }
        self
    }

    /// The kinds this planner draws from.
    pub fn kinds(&self) -> Vec<FaultKind> {
        self.kinds
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(k, _)| *k)
            .collect()
    }

    /// A duration uniformly in `[lo, hi]` times the TTL.
    fn ttls(&mut self, lo: f64, hi: f64) -> Duration {
        self.ttl.mul_f64(lo + (hi - lo) * self.rng.f64())
    }

    fn candidate_target(&mut self, leader_share: f64) -> Target {
        let fallback = self.rng.usize(..self.candidates);
        if self.rng.f64() < leader_share {
            Target::Leader { fallback }
        } else {
            Target::Candidate(fallback)
        }
    }

    /// The next fault; never one that hits the backend when
    /// `backend_busy` (another backend fault is under way).
    pub fn next(&mut self, backend_busy: bool) -> Fault {
        let choices: Vec<(FaultKind, u32)> = self
            .kinds
            .iter()
            .copied()
            .filter(|(k, w)| *w > 0 && !(backend_busy && k.hits_backend()))
            .collect();
        let total: u32 = choices.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.u32(..total.max(1));
        let mut kind = choices.first().map_or(FaultKind::Sigkill, |c| c.0);
        for (k, w) in &choices {
            if pick < *w {
                kind = *k;
                break;
            }
            pick -= w;
        }
        let (target, hold, param) = match kind {
            FaultKind::Sigkill => (self.candidate_target(0.6), self.ttls(0.1, 1.0), 0),
            FaultKind::Sigstop => (self.candidate_target(0.6), self.ttls(1.2, 3.0), 0),
            FaultKind::ProxyDrop | FaultKind::ProxyBlackhole => {
                (self.candidate_target(0.6), self.ttls(0.3, 3.0), 0)
            }
            FaultKind::ProxyDelay => (
                self.candidate_target(0.6),
                self.ttls(1.0, 4.0),
                self.rng.u64(20..=600),
            ),
            FaultKind::ProxySlow => (
                self.candidate_target(0.6),
                self.ttls(1.0, 4.0),
                self.rng.u64(200..=20_000),
            ),
            FaultKind::DeleteKey => (Target::Backend, Duration::ZERO, 0),
            // ZooKeeper: the cut-off lasts past the session timeout.
            FaultKind::ExpireLease => (
                Target::Leader {
                    fallback: self.rng.usize(..self.candidates),
                },
                self.ttls(2.0, 3.0),
                0,
            ),
            FaultKind::BackendRestart => (Target::Backend, Duration::ZERO, 0),
            FaultKind::BackendPause => (Target::Backend, self.ttls(0.3, 2.5), 0),
            FaultKind::MemberKill => (
                Target::Member(self.rng.usize(..self.members)),
                self.ttls(0.5, 4.0),
                0,
            ),
            FaultKind::MemberPause => (
                Target::Member(self.rng.usize(..self.members)),
                self.ttls(0.3, 3.0),
                0,
            ),
            FaultKind::SignalGated => {
                let signals = FaultKind::GATED_SIGNALS.len();
                let param = self.rng.usize(..signals);
                let stop = FaultKind::GATED_SIGNALS[param] == nix::sys::signal::Signal::SIGTSTP;
                // Stopped past the TTL, so that a successor is elected.
                let hold = if stop {
                    self.ttls(1.5, 3.0)
                } else {
                    self.ttls(0.1, 1.0)
                };
                (self.candidate_target(0.9), hold, param as u64)
            }
        };
        Fault {
            kind,
            target,
            hold,
            param,
        }
    }

    /// Whether a second fault overlaps the one just planned, and if so how
    /// far into the first it starts.
    pub fn overlap(&mut self, first: &Fault) -> Option<Duration> {
        (self.rng.f64() < 0.25).then(|| first.hold.mul_f64(self.rng.f64() * 0.8))
    }

    /// The pause between episodes, once a leader is back.
    pub fn gap(&mut self) -> Duration {
        self.ttls(0.1, 0.8)
    }
}

/// The weight of an opt-in kind once asked for.
const OPT_IN_WEIGHT: u32 = 6;

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(seed: u64) -> Vec<Fault> {
        let mut p = Planner::new(seed, BackendKind::Etcd3, 5, Duration::from_secs(1));
        (0..200).map(|i| p.next(i % 3 == 0)).collect()
    }

    #[test]
    fn same_seed_same_plan() {
        assert_eq!(plan(7), plan(7));
        assert_ne!(plan(7), plan(8));
    }

    #[test]
    fn respects_busy_backend_and_kinds_of_the_backend() {
        let mut p = Planner::new(3, BackendKind::Etcd3, 5, Duration::from_secs(1));
        for _ in 0..500 {
            assert!(!p.next(true).kind.hits_backend());
        }
        let kinds = p.kinds();
        assert!(kinds.contains(&FaultKind::MemberKill));
        assert!(!kinds.contains(&FaultKind::BackendRestart));
        let single = Planner::new(3, BackendKind::Zk, 5, Duration::from_secs(1)).kinds();
        assert!(single.contains(&FaultKind::BackendRestart));
        assert!(!single.contains(&FaultKind::MemberKill));
    }

    #[test]
    fn restrict_keeps_only_the_kinds_asked_for() {
        let mut p = Planner::new(5, BackendKind::Zk, 5, Duration::from_secs(1))
            .restrict(&[FaultKind::BackendRestart, FaultKind::MemberKill]);
        assert_eq!(p.kinds(), vec![FaultKind::BackendRestart]);
        assert!((0..50).all(|_| p.next(false).kind == FaultKind::BackendRestart));
        // Nothing of the backend's: the restriction is ignored.
        let all = Planner::new(5, BackendKind::Zk, 5, Duration::from_secs(1));
        let n = all.kinds().len();
        assert_eq!(all.restrict(&[FaultKind::MemberKill]).kinds().len(), n);
    }

    #[test]
    fn signal_gated_is_opt_in() {
        let all = Planner::new(5, BackendKind::Etcd, 5, Duration::from_secs(1));
        assert!(!all.kinds().contains(&FaultKind::SignalGated));
        let mut p = Planner::new(5, BackendKind::Etcd, 5, Duration::from_secs(1))
            .restrict(&[FaultKind::SignalGated]);
        assert_eq!(p.kinds(), vec![FaultKind::SignalGated]);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let f = p.next(false);
            assert_eq!(f.kind, FaultKind::SignalGated);
            let sig = FaultKind::GATED_SIGNALS[usize::try_from(f.param).unwrap()];
            if sig == nix::sys::signal::Signal::SIGTSTP {
                assert!(f.hold > Duration::from_secs(1));
            }
            seen.insert(f.param);
        }
        assert_eq!(seen.len(), FaultKind::GATED_SIGNALS.len());
    }

    #[test]
    fn stop_outlasts_the_ttl() {
        let mut p = Planner::new(11, BackendKind::Zk, 5, Duration::from_secs(1));
        for _ in 0..500 {
            let f = p.next(false);
            if f.kind == FaultKind::Sigstop {
                assert!(f.hold > Duration::from_secs(1));
            }
            if let Target::Candidate(c) | Target::Leader { fallback: c } = f.target {
                assert!(c < 5);
            }
        }
    }
}
