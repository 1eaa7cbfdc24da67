//! A backend wrapper that counts what a candidate asks and receives, for
//! tests and benchmarks that show a leader change wakes only the successor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tenure_core::{
    CoordinationBackend, CreateOutcome, DynBackend, ElectionName, Entry, LeaseGrant, LeaseId,
    Result, Revision, Slot, Snapshot, WatchScope, WatchStream,
};

/// Forwards every call to an inner backend and counts queue reads and
/// delivered watch events. Clones share the counts.
#[derive(Clone, Debug)]
pub struct Counting {
    inner: DynBackend,
    reads: Arc<AtomicUsize>,
    events: Arc<AtomicUsize>,
}

impl Counting {
    /// Wraps `inner`.
    pub fn new(inner: DynBackend) -> Counting {
        Counting {
            inner,
            reads: Arc::default(),
            events: Arc::default(),
        }
    }

    /// `candidates` reads so far (a woken candidate re-reads the queue).
    pub fn candidate_reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// Watch events delivered so far, over every watch.
    pub fn watch_events(&self) -> usize {
        self.events.load(Ordering::SeqCst)
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
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.inner.revoke_lease(lease).await
    }
    async fn create(
        &self,
        election: &ElectionName,
        slot: Slot,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        self.inner.create(election, slot, lease, value).await
    }
    async fn candidates(&self, election: &ElectionName) -> Result<Snapshot> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.candidates(election).await
    }
    async fn get(&self, key: &str) -> Result<(Option<Entry>, Revision)> {
        self.inner.get(key).await
    }
    async fn update(&self, entry: &Entry, value: Bytes) -> Result<Entry> {
        self.inner.update(entry, value).await
    }
    async fn delete(&self, entry: &Entry) -> Result<bool> {
        self.inner.delete(entry).await
    }
    async fn guarded_put(&self, guard: &Entry, key: &str, value: Bytes) -> Result<Revision> {
        self.inner.guarded_put(guard, key, value).await
    }
    async fn watch(&self, scope: WatchScope, from: Revision) -> Result<WatchStream> {
        let events = self.events.clone();
        let stream = self.inner.watch(scope, from).await?;
        Ok(stream
            .inspect(move |_| {
                events.fetch_add(1, Ordering::SeqCst);
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
