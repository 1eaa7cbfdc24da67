//! [`MemoryClient`]: one client connection to the in-memory server, with
//! client-side faults and request counters.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tenure_core::{
    CoordinationBackend, CreateOutcome, ElectionName, Entry, Error, LeaseGrant, LeaseId, Queued,
    Result, Revision, Slot, Snapshot, WatchScope, WatchStream,
};
use tokio::time::Instant;

use crate::server::{Server, State};

/// Counters of one client's traffic, for tests and benchmarks (for
/// example to show that a leader change wakes only the successor).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Calls of [`CoordinationBackend`] methods made through this client
    /// (and its clones), failed ones included.
    pub requests: u64,
    /// Watch events (including `HistoryLost`) sent to this client's watch
    /// streams, replayed ones included.
    pub watch_events: u64,
}

/// The state one client (and its clones) share: identity, faults,
/// counters.
pub(crate) struct ClientShared {
    /// The client id (0 for the backend's own client).
    pub(crate) id: u64,
    unreachable: AtomicBool,
    latency: Mutex<Duration>,
    requests: AtomicU64,
    watch_events: AtomicU64,
}

impl ClientShared {
    pub(crate) fn new(id: u64) -> Arc<ClientShared> {
        Arc::new(ClientShared {
            id,
            unreachable: AtomicBool::new(false),
            latency: Mutex::new(Duration::ZERO),
            requests: AtomicU64::new(0),
            watch_events: AtomicU64::new(0),
        })
    }

    pub(crate) fn count_watch_event(&self) {
        self.watch_events.fetch_add(1, Ordering::Relaxed);
    }
}

/// The error of an operation or watch cut off by a fault.
pub(crate) fn fault(client: u64, why: &'static str) -> Error {
    Error::Unreachable {
        backend: "memory",
        endpoint: format!("memory://{client}"),
        source: Box::new(Fault(why)),
    }
}

/// The source of a fault-injected error.
#[derive(Debug)]
struct Fault(&'static str);

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Fault {}

/// One client connection to a [`MemoryBackend`](crate::MemoryBackend)
/// server, made with [`MemoryBackend::client`](crate::MemoryBackend::client).
///
/// It is a [`CoordinationBackend`] of its own, with faults that affect
/// only this client: a partition ([`set_unreachable`](Self::set_unreachable))
/// and slow responses ([`set_latency`](Self::set_latency)). Clones share
/// the connection: the same faults and the same [`stats`](Self::stats).
#[derive(Clone)]
pub struct MemoryClient {
    server: Arc<Server>,
    shared: Arc<ClientShared>,
}

impl fmt::Debug for MemoryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryClient")
            .field("id", &self.shared.id)
            .field("unreachable", &self.is_unreachable())
            .finish_non_exhaustive()
    }
}

impl MemoryClient {
    pub(crate) fn new(server: Arc<Server>, id: u64) -> MemoryClient {
        MemoryClient {
            server,
            shared: ClientShared::new(id),
        }
    }

    /// The client's id, unique within its server; errors name it as the
    /// endpoint `memory://<id>`.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Cuts this client off from the server (`true`) or reconnects it
    /// (`false`), like a network partition.
    ///
    /// While unreachable, every operation fails at once with
    /// [`Error::Unreachable`] (no latency is simulated) and
    /// [`watch`](CoordinationBackend::watch) fails too. Cutting off also
    /// ends every live watch stream of this client with an
    /// `Error::Unreachable` item. The server keeps running: this client's
    /// leases expire unless it reconnects and renews them in time.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.shared.unreachable.store(unreachable, Ordering::SeqCst);
        if unreachable {
            self.server
                .lock()
                .break_watches(Some(self.shared.id), "client cut off from the server");
        }
    }

    /// Whether the client is cut off ([`set_unreachable`](Self::set_unreachable)).
    pub fn is_unreachable(&self) -> bool {
        self.shared.unreachable.load(Ordering::SeqCst)
    }

    /// Makes every operation wait `latency` of tokio time before it
    /// reaches the server (watch events are still delivered at once).
    ///
    /// With [`Duration::ZERO`] (the default) an operation completes
    /// without yielding to the timer, so a deterministic simulation can
    /// await it without time passing.
    pub fn set_latency(&self, latency: Duration) {
        *self
            .shared
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = latency;
    }

    /// This client's counters (shared with its clones).
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            requests: self.shared.requests.load(Ordering::Relaxed),
            watch_events: self.shared.watch_events.load(Ordering::Relaxed),
        }
    }

    /// Counts the request, simulates latency and faults, then runs `op`
    /// on the server state at the current instant.
    async fn call<T>(&self, op: impl FnOnce(&mut State, Instant) -> T) -> Result<T> {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        self.check_reachable()?;
        let latency = *self
            .shared
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
            // Cut off while the request was in flight: it is lost.
            self.check_reachable()?;
        }
        let mut state = self.server.lock();
        // Checked again under the lock: `set_unreachable` breaks watches
        // under it too, so no watch registers after the cut.
        self.check_reachable()?;
        Ok(op(&mut state, Instant::now()))
    }

    fn check_reachable(&self) -> Result<()> {
        if self.is_unreachable() {
            Err(fault(self.shared.id, "client cut off from the server"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl CoordinationBackend for MemoryClient {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn ttl_bounds(&self) -> (Duration, Duration) {
        self.server.lock().ttl_bounds()
    }

    fn leader_key(&self, election: &ElectionName) -> String {
        election.as_str().to_owned()
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant> {
        let grant = self.call(|s, now| s.grant(now, ttl)).await??;
        self.server.ensure_reaper();
        Ok(grant)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let ttl = self.call(|s, now| s.keep_alive(now, lease)).await??;
        self.server.ensure_reaper();
        Ok(ttl)
    }

    /// Leases live in the server: any client may take one back.
    async fn resume_lease(&self, lease: LeaseId) -> Result<LeaseGrant> {
        let ttl = self.keep_alive(lease).await?;
        Ok(LeaseGrant { id: lease, ttl })
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.call(|s, now| s.revoke(now, lease)).await
    }

    async fn create(
        &self,
        election: &ElectionName,
        slot: Slot,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        self.call(|s, now| s.create(now, election, slot, lease, value))
            .await?
    }

    /// Created and placed in one step of the server, like etcd's one
    /// transaction: `around` when nobody is ahead of the new entry.
    async fn create_queued(
        &self,
        election: &ElectionName,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<Queued> {
        self.call(|s, now| {
            let outcome = s.create(now, election, Slot::Queue, lease, value)?;
            let around = match &outcome {
                CreateOutcome::Created(entry) => Some(s.queue_around(now, election, entry))
                    .filter(|around| around.entries.len() == 1),
                _ => None,
            };
            Ok(Queued { outcome, around })
        })
        .await?
    }

    async fn candidates(&self, election: &ElectionName) -> Result<Snapshot> {
        self.call(|s, now| s.candidates(now, election)).await
    }

    async fn elections(&self, prefix: &str) -> Result<Vec<ElectionName>> {
        self.call(|s, now| s.elections(now, prefix)).await
    }

    /// Reads the two entries before `own` through the election's queue index:
    /// what comes back does not grow with the number of candidates.
    async fn queue_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot> {
        self.call(|s, now| s.queue_around(now, election, own)).await
    }

    async fn get(&self, key: &str) -> Result<(Option<Entry>, Revision)> {
        self.call(|s, now| s.get(now, key)).await
    }

    async fn update(&self, entry: &Entry, value: Bytes) -> Result<Entry> {
        self.call(|s, now| s.update(now, entry, value)).await?
    }

    async fn delete(&self, entry: &Entry) -> Result<bool> {
        self.call(|s, now| s.delete(now, entry)).await
    }

    async fn guarded_put(&self, guard: &Entry, key: &str, value: Bytes) -> Result<Revision> {
        self.call(|s, now| s.guarded_put(now, guard, key, value))
            .await?
    }

    async fn watch(&self, scope: WatchScope, from: Revision) -> Result<WatchStream> {
        let shared = Arc::clone(&self.shared);
        self.call(move |s, now| s.watch(now, &shared, scope, from))
            .await
    }
}
