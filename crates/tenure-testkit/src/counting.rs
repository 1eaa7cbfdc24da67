//! A backend wrapper that counts every request by kind and every watch
//! event delivered, for tests and benchmarks that show what a leader
//! change costs (a hand-over should wake only the successor, whatever the
//! number of candidates) and what an idle candidate costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tenure_core::{
    CoordinationBackend, CreateOutcome, DynBackend, ElectionName, ElectionStream, Entry,
    LeaseGrant, LeaseId, PrefixWatchStream, Queued, Result, Revision, Slot, Snapshot, WatchScope,
    WatchStream,
};

/// Counters shared by a [`Counting`] wrapper and its clones.
#[derive(Debug, Default)]
struct Counters {
    keep_alives: AtomicU64,
    leases: AtomicU64,
    writes: AtomicU64,
    reads: AtomicU64,
    candidate_reads: AtomicU64,
    watches: AtomicU64,
    watch_events: AtomicU64,
}

/// What went through a [`Counting`] wrapper up to some instant.
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
    /// Queue reads alone (a woken candidate re-reads the queue).
    pub candidate_reads: u64,
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
            candidate_reads: self.candidate_reads.saturating_sub(earlier.candidate_reads),
            watches: self.watches.saturating_sub(earlier.watches),
            watch_events: self.watch_events.saturating_sub(earlier.watch_events),
        }
    }
}

/// Forwards every call to an inner backend and counts it. Clones share
/// the counts.
#[derive(Clone, Debug)]
pub struct Counting {
    inner: DynBackend,
    counters: Arc<Counters>,
}

impl Counting {
    /// Wraps `inner`.
    pub fn new(inner: DynBackend) -> Counting {
        Counting {
            inner,
            counters: Arc::default(),
        }
    }

    /// Every count so far.
    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        Counts {
            keep_alives: get(&c.keep_alives),
            leases: get(&c.leases),
            writes: get(&c.writes),
            reads: get(&c.reads),
            candidate_reads: get(&c.candidate_reads),
            watches: get(&c.watches),
            watch_events: get(&c.watch_events),
        }
    }

    /// `candidates` reads so far (a woken candidate re-reads the queue).
    pub fn candidate_reads(&self) -> usize {
        usize::try_from(self.counts().candidate_reads).unwrap_or(usize::MAX)
    }

    /// Watch events delivered so far, over every watch.
    pub fn watch_events(&self) -> usize {
        usize::try_from(self.counts().watch_events).unwrap_or(usize::MAX)
    }

    fn add(&self, pick: impl Fn(&Counters) -> &AtomicU64) {
        pick(&self.counters).fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl CoordinationBackend for Counting {
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
    async fn create_queued(
        &self,
        election: &ElectionName,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<Queued> {
        self.add(|c| &c.writes);
        self.inner.create_queued(election, lease, value).await
    }
    async fn candidates(&self, election: &ElectionName) -> Result<Snapshot> {
        self.add(|c| &c.reads);
        self.add(|c| &c.candidate_reads);
        self.inner.candidates(election).await
    }
    async fn queue_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot> {
        self.add(|c| &c.reads);
        self.add(|c| &c.candidate_reads);
        self.inner.queue_around(election, own).await
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
    /// A listing counts as a read; a watch for new elections as a watch.
    async fn elections(&self, prefix: &str) -> Result<Vec<ElectionName>> {
        self.add(|c| &c.reads);
        self.inner.elections(prefix).await
    }
    async fn read_prefix(&self, prefix: &str) -> Result<(Vec<(ElectionName, Entry)>, Revision)> {
        self.add(|c| &c.reads);
        self.inner.read_prefix(prefix).await
    }
    async fn watch_prefix(&self, prefix: &str, from: Revision) -> Result<PrefixWatchStream> {
        self.add(|c| &c.watches);
        let counters = self.counters.clone();
        let stream = self.inner.watch_prefix(prefix, from).await?;
        Ok(stream
            .inspect(move |_| {
                counters.watch_events.fetch_add(1, Ordering::SeqCst);
            })
            .boxed())
    }
    async fn watch_elections(&self, prefix: &str) -> Result<ElectionStream> {
        self.add(|c| &c.watches);
        let counters = self.counters.clone();
        let stream = self.inner.watch_elections(prefix).await?;
        Ok(stream
            .inspect(move |_| {
                counters.watch_events.fetch_add(1, Ordering::SeqCst);
            })
            .boxed())
    }
}

/// Polls `check` every 20 ms until it holds (`true`) or `within` passes
/// (`false`). For tests against real servers, where a change shows up
/// after a round trip.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
