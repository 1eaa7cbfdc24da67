//! The faults a campaign injects, and what each one hits.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// `SIGKILL` a candidate, respawn it after the hold.
    Sigkill,
    /// `SIGSTOP` a candidate for the hold (longer than the TTL), then
    /// `SIGCONT`.
    Sigstop,
    /// The candidate's proxies close every connection and refuse new ones.
    ProxyDrop,
    /// The candidate's proxies forward nothing (connections stay open).
    ProxyBlackhole,
    /// The candidate's proxies add latency.
    ProxyDelay,
    /// The candidate's proxies limit the byte rate.
    ProxySlow,
    /// An operator deletes the leader's entry.
    DeleteKey,
    /// The leader's lease or session expires from outside: on etcd an
    /// operator revokes the lease; on ZooKeeper the leader is cut off
    /// until the server expires its session, then reconnects to find it
    /// gone.
    ExpireLease,
    /// The single server is killed and restarted.
    BackendRestart,
    /// The single server is frozen (`SIGSTOP`) for the hold.
    BackendPause,
    /// One cluster member is killed, and restarted after the hold.
    MemberKill,
    /// One cluster member is frozen for the hold.
    MemberPause,
    /// A leader that runs a gated command (candidates run one only when
    /// this kind is asked for) gets a signal: `SIGHUP`, `SIGQUIT` or
    /// `SIGKILL` (respawned after the hold), or `SIGTSTP` (`SIGCONT` after
    /// the hold, longer than the TTL). The command's grandchildren write
    /// to the candidate's log; none of their lines may follow the
    /// successor's election.
    SignalGated,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 13] = [
        FaultKind::Sigkill,
        FaultKind::Sigstop,
        FaultKind::ProxyDrop,
        FaultKind::ProxyBlackhole,
        FaultKind::ProxyDelay,
        FaultKind::ProxySlow,
        FaultKind::DeleteKey,
        FaultKind::ExpireLease,
        FaultKind::BackendRestart,
        FaultKind::BackendPause,
        FaultKind::MemberKill,
        FaultKind::MemberPause,
        FaultKind::SignalGated,
    ];

    /// The signals [`FaultKind::SignalGated`] sends, by its `param`.
    pub const GATED_SIGNALS: [nix::sys::signal::Signal; 4] = [
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGQUIT,
        nix::sys::signal::Signal::SIGKILL,
        nix::sys::signal::Signal::SIGTSTP,
    ];

    /// The name in logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Sigkill => "sigkill",
            FaultKind::Sigstop => "sigstop",
            FaultKind::ProxyDrop => "proxy-drop",
            FaultKind::ProxyBlackhole => "proxy-blackhole",
            FaultKind::ProxyDelay => "proxy-delay",
            FaultKind::ProxySlow => "proxy-slow",
            FaultKind::DeleteKey => "delete-key",
            FaultKind::ExpireLease => "expire-lease",
            FaultKind::BackendRestart => "backend-restart",
            FaultKind::BackendPause => "backend-pause",
            FaultKind::MemberKill => "member-kill",
            FaultKind::MemberPause => "member-pause",
            FaultKind::SignalGated => "signal-gated",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<FaultKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether it hits the backend as a whole (at most one such fault at
    /// a time keeps a cluster's quorum).
    pub fn hits_backend(self) -> bool {
        matches!(
            self,
            FaultKind::BackendRestart
                | FaultKind::BackendPause
                | FaultKind::MemberKill
                | FaultKind::MemberPause
        )
    }

    /// Whether it acts on the current leader's entry.
    pub fn hits_leader_entry(self) -> bool {
        matches!(self, FaultKind::DeleteKey | FaultKind::ExpireLease)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Whoever leads when the fault starts (or `fallback` if nobody does).
    Leader {
        /// The candidate hit when no leader is known.
        fallback: usize,
    },
    /// A given candidate.
    Candidate(usize),
    /// A given backend member.
    Member(usize),
    /// The backend (single server) or the leader's entry.
    Backend,
}

/// One planned fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The kind.
    pub kind: FaultKind,
    /// What it hits.
    pub target: Target,
    /// How long it lasts before it heals (0 for instantaneous faults).
    pub hold: Duration,
    /// Latency of a delay, byte rate of a slow-down.
    pub param: u64,
}
