//! Plain data shared by the trait, the state machine and the driver.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::ElectionName;

/// A backend revision: a position in the backend's totally ordered history
/// (etcd revision, ZooKeeper zxid, the memory backend's counter).
///
/// Revisions only grow, so an entry's creation revision orders candidates
/// and doubles as the leader's fencing token.
pub type Revision = u64;

/// Identifier of a lease (etcd lease, ZooKeeper session, memory lease).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub i64);

impl fmt::Display for LeaseId {
    /// Lower-case hex, as etcd's own election names its keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl fmt::Debug for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseId({:x})", self.0)
    }
}

/// A lease as granted by the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The lease.
    pub id: LeaseId,
    /// The TTL the backend actually granted; it may exceed the one asked
    /// for (etcd's minimum TTL, ZooKeeper's negotiated session timeout).
    pub ttl: Duration,
}

/// Where a candidate's entry goes in an election.
///
/// Exhaustive on purpose, like [`WatchScope`]: every backend must place
/// every slot, so a new one is a change every backend has to make, caught
/// by the compiler rather than by a wildcard arm at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Queue strategy: one entry per candidate under the election, named
    /// by the backend (etcd `<election>/<lease hex>`, ZooKeeper an
    /// ephemeral-sequential child). The lowest entry leads.
    Queue,
    /// Single-key strategy: the one leader key of the election
    /// ([`CoordinationBackend::leader_key`](crate::CoordinationBackend::leader_key));
    /// whoever creates it leads.
    Leader,
}

impl Slot {
    /// The strategy this slot belongs to, as errors name it (`"queue"`,
    /// `"single-key"`).
    pub fn strategy_name(self) -> &'static str {
        match self {
            Slot::Queue => "queue",
            Slot::Leader => "single-key",
        }
    }
}

/// One stored entry: a candidate (or the single leader key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Full key (or ZooKeeper path) in the backend.
    pub key: String,
    /// The candidate's proposal.
    pub value: Bytes,
    /// The lease the entry is bound to; it disappears with the lease.
    pub lease: LeaseId,
    /// Revision at which the entry was created: orders candidates and is
    /// the fencing token when this entry leads.
    pub created: Revision,
    /// Revision of the last change to the entry.
    pub modified: Revision,
}

/// Result of a compare-and-create.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateOutcome {
    /// The entry did not exist and now does, bound to our lease.
    Created(Entry),
    /// An entry already existed under that key; here it is, unchanged.
    /// It may be ours (same lease: a campaign resumed) or someone else's.
    Exists(Entry),
}

/// What [`create_queued`](crate::CoordinationBackend::create_queued)
/// did: the create's outcome and, when the same request could tell, where
/// the new entry stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    /// What [`create`](crate::CoordinationBackend::create) would return.
    pub outcome: CreateOutcome,
    /// What [`queue_around`](crate::CoordinationBackend::queue_around)
    /// would read for the entry, read by the create's own atomic request
    /// (so as current as a read sent after it); `None` when the backend
    /// did not find out in that request, and the candidate reads.
    pub around: Option<Snapshot>,
}

impl CreateOutcome {
    /// The entry, created or found.
    pub fn entry(&self) -> &Entry {
        match self {
            CreateOutcome::Created(e) | CreateOutcome::Exists(e) => e,
        }
    }
}

/// A consistent read of an election's queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Entries ordered by creation revision, lowest (the leader) first.
    pub entries: Vec<Entry>,
    /// The backend revision the read reflects; watching from
    /// `revision + 1` misses nothing that happened after the read.
    pub revision: Revision,
    /// Whether `entries[0]` was the first entry of the queue at
    /// `revision`: true for a read of the whole queue, and for a cut
    /// around one entry ([`around`](Self::around)) that left nothing out
    /// before the entries it kept. False when unknown.
    ///
    /// Why: a candidate whose predecessor was first at the read has
    /// nobody else ahead of it (an entry is always created behind every
    /// entry there is), so when that predecessor goes it only needs to
    /// see its own entry still there, not the whole queue again. The same
    /// holds one place further back: a candidate that saw the two entries
    /// ahead of it, the first of them first, knows its predecessor is
    /// first once that first entry goes. A backend that cannot tell says
    /// false, and the candidate reads the queue as before.
    pub starts_at_head: bool,
}

impl Snapshot {
    /// What a candidate needs of the queue to know where it stands: the
    /// two entries just before `own` (its predecessor, the one to watch,
    /// and the entry before that, whose departure tells it that its
    /// predecessor leads) and the entry at `own`'s key, at the same
    /// revision, and whether the first entry kept was the queue's first
    /// ([`starts_at_head`](Self::starts_at_head)). `own` alone means it
    /// leads; an empty snapshot means its entry is gone.
    pub fn around(self, own: &Entry) -> Snapshot {
        let pos = self.entries.iter().position(|e| e.key == own.key);
        self.around_position(pos)
    }

    /// [`around`](Self::around) for the entry at `pos` (`None`: absent),
    /// for a caller that located it already; copies at most
    /// [`AROUND`](Self::AROUND) entries.
    pub(crate) fn around_position(&self, pos: Option<usize>) -> Snapshot {
        let ahead = Self::AROUND - 1;
        let entries = match pos {
            Some(pos) => self.entries[pos.saturating_sub(ahead)..=pos].to_vec(),
            None => Vec::new(),
        };
        Snapshot {
            entries,
            revision: self.revision,
            starts_at_head: self.starts_at_head && pos.is_some_and(|p| p <= ahead),
        }
    }

    /// How many entries [`around`](Self::around) keeps at most: the
    /// candidate's own and the two before it.
    pub const AROUND: usize = 3;
}

/// What a watch observes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WatchScope {
    /// One key.
    Key(String),
    /// Every queue entry of an election (not its single leader key).
    Election(ElectionName),
}

/// A change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// An entry was created or updated.
    Put(Entry),
    /// An entry was deleted (or expired with its lease).
    Delete {
        /// The deleted key.
        key: String,
        /// Revision of the deletion. A backend whose notifications do not
        /// carry it (ZooKeeper before 3.9) reports a revision after every
        /// earlier event of the stream and no later than the first read
        /// showing the key absent.
        revision: Revision,
    },
    /// The backend can no longer say what happened since the watch's start
    /// revision (compaction, session moved, reconnect without history).
    /// The watcher must re-read the state; the stream may end after this.
    HistoryLost,
}

/// A stream of watch events. An `Err` item or the end of the stream means
/// the watch is broken and must be re-established from the last revision
/// seen (or the state re-read).
pub type WatchStream = futures::stream::BoxStream<'static, crate::Result<WatchEvent>>;

/// What [`CoordinationBackend::watch_elections`](crate::CoordinationBackend::watch_elections)
/// yields: the name of an election in which a candidate was just
/// created (the same election may come many times).
pub type ElectionStream = futures::stream::BoxStream<'static, crate::Result<ElectionName>>;

/// What [`CoordinationBackend::watch_prefix`](crate::CoordinationBackend::watch_prefix)
/// yields: a change of an entry with the election it belongs to (`None`
/// for [`WatchEvent::HistoryLost`], which concerns them all).
pub type PrefixWatchStream =
    futures::stream::BoxStream<'static, crate::Result<(Option<ElectionName>, WatchEvent)>>;

/// A fencing token: strictly increases from one leader of an election to
/// the next. It is the creation revision of the winning entry.
pub type FencingToken = u64;

/// Who leads an election, as seen by a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    /// Key of the leading entry.
    pub key: String,
    /// The leader's proposal.
    pub value: Bytes,
    /// The leader's fencing token.
    pub token: FencingToken,
}

impl From<&Entry> for LeaderInfo {
    fn from(e: &Entry) -> Self {
        LeaderInfo {
            key: e.key.clone(),
            value: e.value.clone(),
            token: e.created,
        }
    }
}

/// What an observer knows of an election's leader: an item of
/// [`Election::observe`](crate::Election::observe).
///
/// An observer never shows a leader as current when it cannot confirm
/// it: once the backend has not answered for longer than the election's
/// [staleness bound](crate::ElectionBuilder::max_staleness), it says
/// [`Unknown`](Observation::Unknown), and then the leader again (or
/// [`NoLeader`](Observation::NoLeader)) once the backend answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observation {
    /// This candidate leads, as confirmed by the backend.
    Leader(LeaderInfo),
    /// Nobody leads, as confirmed by the backend.
    NoLeader,
    /// The backend has not confirmed anything for `unconfirmed_for`,
    /// longer than the bound: the leader last seen may be gone (its lease
    /// may have expired), and another may lead. Do not treat the last
    /// leader seen as current.
    Unknown {
        /// Time since the last confirmation, when this was reported.
        unconfirmed_for: Duration,
    },
}

impl Observation {
    /// The leader, when one is confirmed.
    pub fn leader(&self) -> Option<&LeaderInfo> {
        match self {
            Observation::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// The leader, when one is confirmed, by value.
    pub fn into_leader(self) -> Option<LeaderInfo> {
        match self {
            Observation::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// Whether this is [`Observation::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, Observation::Unknown { .. })
    }
}

impl From<Option<LeaderInfo>> for Observation {
    fn from(leader: Option<LeaderInfo>) -> Self {
        match leader {
            Some(l) => Observation::Leader(l),
            None => Observation::NoLeader,
        }
    }
}

/// Why a leader stopped being leader. Every loss reaches the user as one
/// of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossReason {
    /// The leader resigned (explicitly, by drop, or on shutdown).
    Resigned,
    /// The backend reported the lease (or ZooKeeper session) gone.
    LeaseExpired,
    /// No keep-alive was acknowledged in time: the local deadline
    /// (`valid_until`) passed before the backend could confirm the lease.
    /// The backend may still hold the lease for a little while; the leader
    /// steps down first so that two leaders never act at once.
    DeadlineExceeded,
    /// Our entry was deleted or replaced by someone else (an operator).
    EntryDeleted,
    /// The election driver shut down (its task ended).
    Shutdown,
}

impl LossReason {
    /// A stable snake_case label (`resigned`, `lease_expired`,
    /// `deadline_exceeded`, `entry_deleted`, `shutdown`), used as a metric
    /// label and in machine-readable output. [`Display`](fmt::Display)
    /// gives the human sentence instead.
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::Resigned => "resigned",
            LossReason::LeaseExpired => "lease_expired",
            LossReason::DeadlineExceeded => "deadline_exceeded",
            LossReason::EntryDeleted => "entry_deleted",
            LossReason::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::Resigned => "resigned",
            LossReason::LeaseExpired => "lease expired",
            LossReason::DeadlineExceeded => "keep-alive deadline exceeded",
            LossReason::EntryDeleted => "entry deleted",
            LossReason::Shutdown => "shutdown",
        })
    }
}
