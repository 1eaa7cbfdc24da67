//! The [`CoordinationBackend`] trait: the contract every backend fulfils.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::machine::{Reply, Request};
use crate::{
    CreateOutcome, ElectionName, ElectionStream, Entry, LeaseGrant, LeaseId, PrefixWatchStream,
    Queued, Result, Revision, Slot, Snapshot, WatchScope, WatchStream,
};

/// A coordination service that tenure runs elections on.
///
/// The trait holds only what differs between backends: leases,
/// compare-and-create, an ordered read, guarded updates and deletes, and
/// watches. Everything else (queue or single-key strategy, deadlines,
/// resignation, observation) lives once in the core.
///
/// The trait is object safe: the core works on `Arc<dyn CoordinationBackend>`.
///
/// # Contract
///
/// Every backend passes the conformance suite in `tenure-testkit`, which
/// checks these rules:
///
/// - **Revisions** strictly increase from one transaction to the next; an
///   entry's `created` revision never changes while it exists. One
///   transaction may change several keys at one revision (a revoke deleting
///   a lease's entries), so a watch may deliver several events with the
///   same revision.
/// - **Leases**: [`grant_lease`](Self::grant_lease) returns the TTL really
///   granted. A lease not renewed within its TTL expires and every entry
///   bound to it is deleted (and watchers see the deletion).
///   [`keep_alive`](Self::keep_alive) is one round trip: it either renews
///   and returns the remaining TTL, or fails with
///   [`Error::LeaseExpired`](crate::Error::LeaseExpired).
///   [`revoke_lease`](Self::revoke_lease) deletes the lease's entries at
///   once; revoking an unknown lease succeeds.
/// - **Compare-and-create**: [`create`](Self::create) is atomic: it
///   creates the entry bound to the lease only if its key is absent, and
///   otherwise returns the existing entry unchanged. For [`Slot::Queue`] the
///   key is unique to the lease (a second create with the same lease finds
///   the first entry).
/// - **One shape per election**: a create of one slot fails with
///   [`Error::ShapeConflict`](crate::Error::ShapeConflict) while a live
///   entry (bound to a lease) of the other slot, or on ZooKeeper of the
///   other queue layout, holds the election, and creates nothing that
///   outlives the call; of two racing creates of different shapes at most
///   one succeeds.
/// - **Reads** list an election's queue entries ordered by creation
///   revision, with the revision the read reflects. Keys bound to no
///   lease (application data) are never queue entries.
/// - **Guarded update/delete** succeed only while the key still holds the
///   entry we created (same creation revision); otherwise they fail with
///   [`Error::NotOwner`](crate::Error::NotOwner) (update) or return `false`
///   (delete) and change nothing.
/// - **Keys** that cross the trait (`Entry::key`, [`get`](Self::get),
///   [`guarded_put`](Self::guarded_put), [`WatchScope::Key`])
///   are relative to the backend's namespace (etcd key prefix, ZooKeeper
///   chroot): the same key names the same thing on every backend.
///   [`guarded_put`](Self::guarded_put) refuses keys inside the guard's
///   election with [`Error::KeyInElection`](crate::Error::KeyInElection).
/// - **Elections are not nested**: the queue of `a` holds only the direct
///   entries of `a`, never those of `a/b`.
/// - **Watches** deliver every change after `from` in revision order, or
///   [`WatchEvent::HistoryLost`](crate::WatchEvent::HistoryLost) when they
///   cannot; they never skip a change silently.
#[async_trait]
pub trait CoordinationBackend: Send + Sync + std::fmt::Debug + 'static {
    /// Short name of the backend kind, used in errors and metrics
    /// (`"memory"`, `"etcd"`, `"zookeeper"`).
    fn kind(&self) -> &'static str;

    /// The smallest and largest TTL this backend grants.
    fn ttl_bounds(&self) -> (Duration, Duration);

    /// The key of an election's single leader key ([`Slot::Leader`]).
    fn leader_key(&self, election: &ElectionName) -> String;

    /// Grants a lease with (at least) `ttl`.
    ///
    /// # Errors
    /// [`Error::InvalidTtl`](crate::Error::InvalidTtl) outside
    /// [`ttl_bounds`](Self::ttl_bounds); connection errors.
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant>;

    /// Renews the lease with one round trip and returns its remaining TTL.
    ///
    /// # Errors
    /// [`Error::LeaseExpired`](crate::Error::LeaseExpired) if the lease is
    /// gone; connection errors.
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration>;

    /// Re-attaches to `lease`, granted earlier (possibly by another
    /// process: a candidate that restarted), and renews it with one round
    /// trip: returns the lease with the TTL it now has.
    ///
    /// The default answers [`Error::Unsupported`](crate::Error::Unsupported):
    /// backends whose leases are bound to a connection (ZooKeeper
    /// sessions) cannot. Backends whose leases are server objects named by
    /// their id (etcd) override it.
    ///
    /// # Errors
    /// [`Error::LeaseExpired`](crate::Error::LeaseExpired) if the lease is
    /// gone; [`Error::Unsupported`](crate::Error::Unsupported); connection
    /// errors.
    async fn resume_lease(&self, lease: LeaseId) -> Result<LeaseGrant> {
        let _ = lease;
        Err(crate::Error::Unsupported {
            backend: self.kind(),
            operation: "resuming a lease",
            reason: "its leases cannot be re-attached from another connection".into(),
        })
    }

    /// Revokes the lease, deleting its entries. Unknown leases are ignored.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<()>;

    /// Creates the entry for `lease` in `slot` of `election` if absent.
    ///
    /// # Errors
    /// [`Error::ShapeConflict`](crate::Error::ShapeConflict) when the
    /// election holds live entries of another shape;
    /// [`Error::LeaseExpired`](crate::Error::LeaseExpired); connection
    /// errors.
    async fn create(
        &self,
        election: &ElectionName,
        slot: Slot,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<CreateOutcome>;

    /// [`create`](Self::create) in [`Slot::Queue`], and, where the backend
    /// can tell in the same atomic request at no extra cost, where the new
    /// entry stands ([`Queued::around`]): a candidate that learns with its
    /// create that nobody is ahead leads without a read. That saves the
    /// first leader of a burst the read that would queue behind every
    /// other candidate's create.
    ///
    /// The default creates and leaves `around` empty.
    ///
    /// # Errors
    /// As [`create`](Self::create).
    async fn create_queued(
        &self,
        election: &ElectionName,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<Queued> {
        Ok(Queued {
            outcome: self.create(election, Slot::Queue, lease, value).await?,
            around: None,
        })
    }

    /// Reads the election's queue entries, lowest creation revision first.
    async fn candidates(&self, election: &ElectionName) -> Result<Snapshot>;

    /// Reads the part of the queue a candidate needs to know where it
    /// stands: what [`Snapshot::around`] keeps of
    /// [`candidates`](Self::candidates) (the two entries before `own` and
    /// the entry at `own`'s key), in one consistent read.
    ///
    /// The default reads the whole queue. Backends that can read those
    /// entries directly override it, so that what a candidate receives
    /// does not grow with the number of candidates.
    async fn queue_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot> {
        Ok(self.candidates(election).await?.around(own))
    }

    /// Reads the head of the election's queue, the entry that leads: a
    /// snapshot holding at most one entry, the lowest creation revision
    /// of [`candidates`](Self::candidates), with the revision the read
    /// reflects.
    ///
    /// The default reads the whole queue and keeps its first entry.
    /// Backends that can read the first-created key alone override it
    /// (etcd: a range sorted by creation revision, limit 1), so that
    /// [`Election::leader`](crate::Election::leader) does not grow with
    /// the number of candidates.
    async fn queue_head(&self, election: &ElectionName) -> Result<Snapshot> {
        let mut snapshot = self.candidates(election).await?;
        snapshot.entries.truncate(1);
        Ok(snapshot)
    }

    /// Reads one key, with the revision the read reflects.
    async fn get(&self, key: &str) -> Result<(Option<Entry>, Revision)>;

    /// Replaces the value of `entry` if the key still holds that entry.
    ///
    /// # Errors
    /// [`Error::NotOwner`](crate::Error::NotOwner) when it does not.
    async fn update(&self, entry: &Entry, value: Bytes) -> Result<Entry>;

    /// Deletes `entry` if the key still holds that entry; returns whether
    /// it deleted anything.
    async fn delete(&self, entry: &Entry) -> Result<bool>;

    /// Writes `value` at `key` (an application key, bound to no lease: reads
    /// report it with `LeaseId(0)`)
    /// only while `guard` still exists unchanged: the leader-guarded write
    /// that a deposed leader cannot make. Returns the write's revision.
    ///
    /// # Errors
    /// [`Error::NotOwner`](crate::Error::NotOwner) when `guard` is gone;
    /// [`Error::KeyInElection`](crate::Error::KeyInElection) when `key`
    /// lies inside the guard's election (where it could pass for a
    /// candidate).
    async fn guarded_put(&self, guard: &Entry, key: &str, value: Bytes) -> Result<Revision>;

    /// Watches `scope` for changes at revisions `>= from`; `from == 0`
    /// means "from now on".
    async fn watch(&self, scope: WatchScope, from: Revision) -> Result<WatchStream>;

    /// The elections whose names start with `prefix` (`""` for every
    /// election in the backend's namespace, `"jobs/"` for those under
    /// `jobs/`) and that hold at least one live candidate (an entry bound
    /// to a lease) of either strategy, in name order. What
    /// [`observe_all`](crate::observe_all) starts from.
    ///
    /// # Errors
    /// The default, for backends that cannot list their elections, fails
    /// with [`Error::Unsupported`](crate::Error::Unsupported); connection
    /// errors.
    async fn elections(&self, prefix: &str) -> Result<Vec<ElectionName>> {
        let _ = prefix;
        Err(crate::Error::Unsupported {
            backend: self.kind(),
            operation: "listing elections",
            reason: "this backend does not implement it".into(),
        })
    }

    /// Watches for candidates created in elections whose names start with
    /// `prefix`, yielding each one's election name (repeats are fine:
    /// [`observe_all`](crate::observe_all) starts one observer per new
    /// name and ignores the rest). The stream ends, or yields an error,
    /// when it breaks; the caller lists the elections again and reopens
    /// it.
    ///
    /// # Errors
    /// The default fails with
    /// [`Error::Unsupported`](crate::Error::Unsupported): `observe_all` then
    /// lists the elections again every third of its staleness bound.
    async fn watch_elections(&self, prefix: &str) -> Result<ElectionStream> {
        let _ = prefix;
        Err(crate::Error::Unsupported {
            backend: self.kind(),
            operation: "watching for new elections",
            reason: "this backend does not implement it".into(),
        })
    }

    /// Reads every live entry (queue entries and leader keys bound to a
    /// lease) of the elections whose names start with `prefix`, each with
    /// its election, in one consistent read, with the revision it
    /// reflects. With [`watch_prefix`](Self::watch_prefix), what lets
    /// [`observe_all`](crate::observe_all) follow every election through
    /// one read and one watch, however many there are.
    ///
    /// # Errors
    /// The default fails with
    /// [`Error::Unsupported`](crate::Error::Unsupported): `observe_all`
    /// then follows each election with a watch of its own.
    async fn read_prefix(&self, prefix: &str) -> Result<(Vec<(ElectionName, Entry)>, Revision)> {
        let _ = prefix;
        Err(crate::Error::Unsupported {
            backend: self.kind(),
            operation: "reading a prefix",
            reason: "this backend does not implement it".into(),
        })
    }

    /// Watches every entry of the elections whose names start with
    /// `prefix`, at revisions `>= from`, with the rules of
    /// [`watch`](Self::watch): every change in revision order, or
    /// [`WatchEvent::HistoryLost`](crate::WatchEvent::HistoryLost).
    /// Entries bound to no lease may be reported too (they are never
    /// candidates).
    ///
    /// # Errors
    /// The default fails with
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    async fn watch_prefix(&self, prefix: &str, from: Revision) -> Result<PrefixWatchStream> {
        let _ = (prefix, from);
        Err(crate::Error::Unsupported {
            backend: self.kind(),
            operation: "watching a prefix",
            reason: "this backend does not implement it".into(),
        })
    }
}

/// A shared, type-erased backend.
pub type DynBackend = Arc<dyn CoordinationBackend>;

/// Runs one request of the election machine on `backend`: each
/// [`Request`] is one backend call, answered by the [`Reply`] of the same
/// name ([`Request::Candidates`] is
/// [`queue_around`](CoordinationBackend::queue_around); a create in
/// [`Slot::Queue`] is [`create_queued`](CoordinationBackend::create_queued),
/// answered by [`Reply::Queued`]). With a `timeout`,
/// a call that has not answered within it becomes
/// [`Error::Timeout`](crate::Error::Timeout) naming the backend and the
/// operation.
///
/// This is the one mapping from requests to calls: the driver runs every
/// request through it, and so does a simulator that drives machines by
/// hand.
pub async fn execute(
    backend: &dyn CoordinationBackend,
    request: Request,
    timeout: Option<Duration>,
) -> Reply {
    let kind = backend.kind();
    match request {
        Request::Create {
            election,
            slot: Slot::Queue,
            lease,
            value,
        } => Reply::Queued(
            bounded(
                kind,
                "create",
                timeout,
                backend.create_queued(&election, lease, value),
            )
            .await,
        ),
        Request::Create {
            election,
            slot,
            lease,
            value,
        } => Reply::Create(
            bounded(
                kind,
                "create",
                timeout,
                backend.create(&election, slot, lease, value),
            )
            .await,
        ),
        Request::Candidates { election, own } => Reply::Candidates(
            bounded(
                kind,
                "read candidates",
                timeout,
                backend.queue_around(&election, &own),
            )
            .await,
        ),
        Request::Get { key } => Reply::Get(bounded(kind, "get", timeout, backend.get(&key)).await),
        Request::Delete { entry } => {
            Reply::Delete(bounded(kind, "delete", timeout, backend.delete(&entry)).await)
        }
    }
}

/// `call`, failing with [`Error::Timeout`](crate::Error::Timeout) once
/// `timeout` (if any) has passed without an answer.
async fn bounded<T>(
    kind: &'static str,
    operation: &'static str,
    timeout: Option<Duration>,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let Some(after) = timeout else {
        return call.await;
    };
    match tokio::time::timeout(after, call).await {
        Ok(answer) => answer,
        Err(_) => Err(crate::Error::timed_out(kind, operation, after)),
    }
}
