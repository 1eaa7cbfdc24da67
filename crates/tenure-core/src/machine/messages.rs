//! What the election machine exchanges with its driver: the requests it
//! asks to run and their replies, the commands it issues, the events it
//! reports to the user, and its coarse phase.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::{
    CreateOutcome, ElectionName, Entry, Error, FencingToken, LeaseId, LossReason, Queued, Revision,
    Slot, Snapshot, WatchScope,
};

/// Identifies a request so that late answers to abandoned requests are
/// recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies a watch the machine asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchId(pub u64);

/// A backend request for the driver to execute; answer it with the
/// matching [`Reply`] through [`ElectionMachine::handle_reply`](super::ElectionMachine::handle_reply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// [`CoordinationBackend::create`](crate::CoordinationBackend::create).
    Create {
        /// Election.
        election: ElectionName,
        /// Where.
        slot: Slot,
        /// Our lease.
        lease: LeaseId,
        /// Our proposal.
        value: Bytes,
    },
    /// [`CoordinationBackend::queue_around`](crate::CoordinationBackend::queue_around).
    Candidates {
        /// Election.
        election: ElectionName,
        /// Our entry, whose neighbourhood is read.
        own: Entry,
    },
    /// [`CoordinationBackend::get`](crate::CoordinationBackend::get).
    Get {
        /// The key.
        key: String,
    },
    /// [`CoordinationBackend::delete`](crate::CoordinationBackend::delete).
    Delete {
        /// Our entry.
        entry: Entry,
    },
}

/// The answer to a [`Request`].
#[derive(Debug)]
pub enum Reply {
    /// Answer to [`Request::Create`].
    Create(Result<CreateOutcome, Error>),
    /// Answer to a [`Request::Create`] in [`Slot::Queue`] from
    /// [`create_queued`](crate::CoordinationBackend::create_queued): with
    /// [`Queued::around`], the machine needs no read to know where it
    /// stands.
    Queued(Result<Queued, Error>),
    /// Answer to [`Request::Candidates`].
    Candidates(Result<Snapshot, Error>),
    /// Answer to [`Request::Get`].
    Get(Result<(Option<Entry>, Revision), Error>),
    /// Answer to [`Request::Delete`].
    Delete(Result<bool, Error>),
}

/// A command for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Command {
    /// Execute a request and report its answer.
    Request {
        /// Echo this in the reply.
        id: RequestId,
        /// What to do.
        request: Request,
    },
    /// Start a watch and feed its events with [`ElectionMachine::handle_watch`](super::ElectionMachine::handle_watch).
    Watch {
        /// Echo this with every event.
        id: WatchId,
        /// What to watch.
        scope: WatchScope,
        /// First revision of interest.
        from: Revision,
    },
    /// Stop a watch started earlier.
    Unwatch {
        /// The watch.
        id: WatchId,
    },
}

/// What the user learns from the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// We lead. Act as leader until `valid_until` at the latest.
    Elected {
        /// Our winning entry.
        entry: Entry,
        /// Fencing token (creation revision of the entry).
        token: FencingToken,
        /// Local deadline; extended by [`Event::Extended`].
        valid_until: Instant,
    },
    /// A keep-alive extended the leader's deadline.
    Extended {
        /// The new deadline.
        valid_until: Instant,
    },
    /// We were leader and are not any more. Stop acting as leader now.
    Lost {
        /// Why.
        reason: LossReason,
    },
    /// The campaign ended before we were elected.
    Failed(FailReason),
    /// Deleting our entry on resign or withdrawal failed for good (a
    /// permanent error, or a transient one past the lease's deadline): the
    /// entry may stay until the lease expires. Followed by
    /// [`Event::Finished`].
    ReleaseFailed(SharedError),
    /// The machine has nothing left to do; the driver may drop it.
    Finished,
}

/// Why a campaign ended before it won.
#[derive(Clone, Debug)]
pub enum FailReason {
    /// The candidate withdrew (resign before winning).
    Withdrawn,
    /// The lease ended (expired, deadline passed, released).
    LeaseLost(LossReason),
    /// The backend rejected a request for good: the error as the backend
    /// reported it ([`Error::is_transient`] is false), shared so that the
    /// event stays cheap to clone. The driver hands it to the caller
    /// unchanged, so callers match on its variant.
    Backend(Arc<Error>),
}

impl PartialEq for FailReason {
    /// Errors compare by identity, or failing that by message (errors hold
    /// sources that cannot be compared).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (FailReason::Withdrawn, FailReason::Withdrawn) => true,
            (FailReason::LeaseLost(a), FailReason::LeaseLost(b)) => a == b,
            (FailReason::Backend(a), FailReason::Backend(b)) => {
                Arc::ptr_eq(a, b) || a.to_string() == b.to_string()
            }
            _ => false,
        }
    }
}

impl Eq for FailReason {}

/// A backend error carried by an [`Event`], shared so that the event stays
/// cheap to clone. Compares by identity, or failing that by message.
#[derive(Clone, Debug)]
pub struct SharedError(pub Arc<Error>);

impl PartialEq for SharedError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for SharedError {}

/// Coarse phase of the machine, for introspection and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting before (re)trying a request.
    Backoff,
    /// Creating our entry.
    Creating,
    /// Reading the queue to find our place.
    Reading,
    /// Following: watching the predecessor (queue) or the leader key.
    Following,
    /// Leading.
    Leader,
    /// Deleting our entry (resign, or cleanup after a loss).
    Releasing,
    /// Done.
    Finished,
}
