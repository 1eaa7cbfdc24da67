//! A backend wrapper that counts every request by kind and every watch
//! event delivered, so a section can tell what one leader change cost.
//!
//! (The testkit's `Counting` wrapper counts only queue reads and watch
//! events; the scale section also needs keep-alives and writes apart.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tenure::{
    CoordinationBackend, CreateOutcome, DynBackend, ElectionName, Entry, LeaseGrant, LeaseId,
    Result, Revision, Slot, Snapshot, WatchScope, WatchStream,
};

/// Counters shared by a [`Traffic`] wrapper and its clones.
#[derive(Debug, Default)]
struct Counters {
    keep_alives: AtomicU64,
    leases: AtomicU64,
    writes: AtomicU64,
    reads: AtomicU64,
    watches: AtomicU64,
    watch_events: AtomicU64,
}

/// What went through the wrapper up to some instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Keep-alive requests.
    pub keep_alives: u64,
    /// Lease grants and revokes.
    pub leases: u64,
    /// Creates, updates, deletes and guarded writes.
    pub writes: u64,
    /// Queue reads and single-key gets.
    pub reads: u64,
    /// Watches started.
    pub watches: u64,
    /// Watch events delivered (over every watch).
    pub watch_events: u64,
}

impl Counts {
    /// Every request except keep-alives (grants, revokes, writes, reads,
    /// watch starts).
    pub fn requests_but_keep_alives(&self) -> u64 {
        self.leases + self.writes + self.reads + self.watches
    }

    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            keep_alives: self.keep_alives.saturating_sub(earlier.keep_alives),
            leases: self.leases.saturating_sub(earlier.leases),
            writes: self.writes.saturating_sub(earlier.writes),
            reads: self.reads.saturating_sub(earlier.reads),
            watches: self.watches.saturating_sub(earlier.watches),
            watch_events: self.watch_events.saturating_sub(earlier.watch_events),
        }
    }
}

/// Forwards every call to an inner backend and counts it.
#[derive(Clone, Debug)]
pub struct Traffic {
    inner: DynBackend,
    counters: Arc<Counters>,
}

impl Traffic {
    /// Wraps `inner`.
    pub fn new(inner: DynBackend) -> Traffic {
        Traffic {
            inner,
            counters: Arc::default(),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        Counts {
            keep_alives: get(&c.keep_alives),
            leases: get(&c.leases),
            writes: get(&c.writes),
            reads: get(&c.reads),
            watches: get(&c.watches),
            watch_events: get(&c.watch_events),
        }
    }

    fn add(&self, pick: impl Fn(&Counters) -> &AtomicU64) {
        pick(&self.counters).fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl CoordinationBackend for Traffic {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn ttl_bounds(&self) -> (Duration, Duration) {
        self.inner.ttl_bounds()
    }
    fn leader_key(&self, election: &ElectionName) -> String {
        self.inner.leader_key(election)
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant> {
        self.add(|c| &c.leases);
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        self.add(|c| &c.keep_alives);
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.add(|c| &c.leases);
        self.inner.revoke_lease(lease).await
    }
    async fn create(
        &self,
        election: &ElectionName,
        slot: Slot,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        self.add(|c| &c.writes);
        self.inner.create(election, slot, lease, value).await
    }
    async fn candidates(&self, election: &ElectionName) -> Result<Snapshot> {
        self.add(|c| &c.reads);
        self.inner.candidates(election).await
    }
    async fn get(&self, key: &str) -> Result<(Option<Entry>, Revision)> {
        self.add(|c| &c.reads);
        self.inner.get(key).await
    }
    async fn update(&self, entry: &Entry, value: Bytes) -> Result<Entry> {
        self.add(|c| &c.writes);
        self.inner.update(entry, value).await
    }
    async fn delete(&self, entry: &Entry) -> Result<bool> {
        self.add(|c| &c.writes);
        self.inner.delete(entry).await
    }
    async fn guarded_put(&self, guard: &Entry, key: &str, value: Bytes) -> Result<Revision> {
        self.add(|c| &c.writes);
        self.inner.guarded_put(guard, key, value).await
    }
    async fn watch(&self, scope: WatchScope, from: Revision) -> Result<WatchStream> {
        self.add(|c| &c.watches);
        let counters = self.counters.clone();
        let stream = self.inner.watch(scope, from).await?;
        Ok(stream
            .inspect(move |_| {
                counters.watch_events.fetch_add(1, Ordering::SeqCst);
            })
            .boxed())
    }
}
