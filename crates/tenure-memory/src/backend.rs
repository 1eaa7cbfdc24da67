//! [`MemoryBackend`]: the shared in-memory server, with server-side fault
//! knobs and introspection.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tenure_core::{
    CoordinationBackend, CreateOutcome, ElectionName, Entry, Error, LeaseGrant, LeaseId, Result,
    Revision, Slot, Snapshot, WatchScope, WatchStream,
};
use tokio::time::Instant;

use crate::client::MemoryClient;
use crate::server::Server;

/// The TTL bounds of [`MemoryBackend::new`]: 1 ms to 1 hour.
pub const DEFAULT_TTL_BOUNDS: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_secs(3600));

/// An in-process coordination "server" on tokio time.
///
/// Cloning is cheap and yields another handle to the same server. The
/// backend itself implements [`CoordinationBackend`] as a fault-free
/// client (id 0); [`client`](Self::client) makes further clients, each
/// with its own faults and counters, as separate processes would have.
///
/// # Model
///
/// - A global revision counter: 1 for the empty store, +1 per change
///   (each key created, updated or deleted, including each key deleted
///   by a lease's expiry or revocation).
/// - Keys: the queue entry of lease `L` in election `E` is `"E/L"` (`L`
///   in lowercase hex, as etcd's `concurrency.Election`); the leader key
///   ([`Slot::Leader`]) of `E` is `"E"` itself.
/// - Leases expire exactly `ttl` after their last grant or keep-alive,
///   by tokio time: a background reaper (spawned on the first lease, on
///   the runtime of that call) deletes them, and every operation checks
///   expiry first, so the outcome never depends on when the reaper ran.
///   A backend lives on one runtime's clock: do not share one across
///   runtimes with paused time.
/// - Every change is kept in a history for watches until
///   [`compact`](Self::compact) forgets it.
#[derive(Clone)]
pub struct MemoryBackend {
    pub(crate) server: Arc<Server>,
    /// The backend's own client (id 0).
    own: MemoryClient,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend").finish_non_exhaustive()
    }
}

impl MemoryBackend {
    /// An empty server with [`DEFAULT_TTL_BOUNDS`]. Needs no runtime.
    pub fn new() -> MemoryBackend {
        Self::build(DEFAULT_TTL_BOUNDS)
    }

    /// An empty server granting TTLs in `min..=max`; requests outside
    /// fail with [`Error::InvalidTtl`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `min` is zero or `min > max`.
    pub fn with_ttl_bounds(min: Duration, max: Duration) -> Result<MemoryBackend> {
        if min.is_zero() || min > max {
            return Err(Error::InvalidConfig {
                field: "ttl_bounds",
                reason: format!("need 0 < min <= max, got min {min:?} and max {max:?}"),
            });
        }
        Ok(Self::build((min, max)))
    }

    fn build(ttl_bounds: (Duration, Duration)) -> MemoryBackend {
        let server = Server::new(ttl_bounds);
        let own = MemoryClient::new(Arc::clone(&server), 0);
        MemoryBackend { server, own }
    }

    /// A new client of this server: a separate connection with its own
    /// faults and [`stats`](MemoryClient::stats).
    pub fn client(&self) -> MemoryClient {
        MemoryClient::new(Arc::clone(&self.server), self.server.next_client_id())
    }

    // ---- fault knobs -------------------------------------------------

    /// Expires `lease` now, as if its TTL had run out: the lease and its
    /// entries are deleted (each deletion a revision watchers see), and
    /// its holder's next keep-alive fails with [`Error::LeaseExpired`].
    /// Returns whether the lease was alive.
    pub fn expire_lease(&self, lease: LeaseId) -> bool {
        self.server.lock().expire_lease(Instant::now(), lease)
    }

    /// Forgets the history below `revision` (etcd's convention: a watch
    /// from `revision` itself still works; `revision` is capped at the
    /// current revision + 1). Afterwards a watch from an older revision
    /// yields [`WatchEvent::HistoryLost`](tenure_core::WatchEvent::HistoryLost)
    /// and ends.
    ///
    /// Every live watch, whatever its start, receives `HistoryLost` and
    /// ends: the simplest rule that is never wrong, and the one that
    /// exercises a watcher's recovery path.
    pub fn compact(&self, revision: Revision) {
        self.server.lock().compact(Instant::now(), revision);
    }

    /// Forgets the whole history: [`compact`](Self::compact) at the current
    /// revision + 1, so only watches from the future still work.
    pub fn compact_all(&self) {
        self.compact(Revision::MAX);
    }

    /// Ends every live watch stream, of every client, as a broken
    /// connection would: each stream yields one
    /// [`Error::Unreachable`] item and ends. Watches opened afterwards
    /// work normally (and can resume from their last revision).
    pub fn drop_watches(&self) {
        self.server
            .lock()
            .break_watches(None, "watch stream dropped by the server");
    }

    // ---- introspection -----------------------------------------------

    /// The current revision (1 for the empty store).
    pub fn revision(&self) -> Revision {
        self.server.lock().revision(Instant::now())
    }

    /// The live leases, lowest id first.
    pub fn lease_ids(&self) -> Vec<LeaseId> {
        self.server.lock().lease_ids(Instant::now())
    }

    /// Every stored key, in lexicographic order.
    pub fn keys(&self) -> Vec<String> {
        self.server.lock().keys(Instant::now())
    }
}

/// The backend's own client: never faulty.
#[async_trait]
impl CoordinationBackend for MemoryBackend {
    fn kind(&self) -> &'static str {
        self.own.kind()
    }

    fn ttl_bounds(&self) -> (Duration, Duration) {
        self.own.ttl_bounds()
    }

    fn leader_key(&self, election: &ElectionName) -> String {
        self.own.leader_key(election)
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant> {
        self.own.grant_lease(ttl).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        self.own.keep_alive(lease).await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.own.revoke_lease(lease).await
    }

    async fn create(
        &self,
        election: &ElectionName,
        slot: Slot,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        self.own.create(election, slot, lease, value).await
    }

    async fn candidates(&self, election: &ElectionName) -> Result<Snapshot> {
        self.own.candidates(election).await
    }

    async fn elections(&self, prefix: &str) -> Result<Vec<ElectionName>> {
        self.own.elections(prefix).await
    }

    async fn queue_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot> {
        self.own.queue_around(election, own).await
    }

    async fn get(&self, key: &str) -> Result<(Option<Entry>, Revision)> {
        self.own.get(key).await
    }

    async fn update(&self, entry: &Entry, value: Bytes) -> Result<Entry> {
        self.own.update(entry, value).await
    }

    async fn delete(&self, entry: &Entry) -> Result<bool> {
        self.own.delete(entry).await
    }

    async fn guarded_put(&self, guard: &Entry, key: &str, value: Bytes) -> Result<Revision> {
        self.own.guarded_put(guard, key, value).await
    }

    async fn watch(&self, scope: WatchScope, from: Revision) -> Result<WatchStream> {
        self.own.watch(scope, from).await
    }
}
