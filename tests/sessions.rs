//! Sessions kept alive by their runtime's one keeper task, on the
//! in-memory backend under paused tokio time.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::sync::Arc;
use std::time::Duration;

use tenure::backend::{CoordinationBackend, LeaseGrant, Slot, Snapshot, WatchScope, WatchStream};
use tenure::memory::MemoryBackend;
use tenure::{DynBackend, Session};

const TTL: Duration = Duration::from_secs(2);

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits (in paused time) until `done` holds; fails the test if it does
/// not within `bound`.
async fn within(bound: Duration, done: impl Fn() -> bool) {
    tokio::time::timeout(bound, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not within {bound:?}"));
}

/// A hundred sessions are kept alive by one task: each renews on its own
/// well past its TTL; dropping half revokes exactly those leases; the
/// task ends once the last session is gone (after its revoke), and the
/// next session starts a new one.
#[tokio::test(start_paused = true)]
async fn every_session_of_a_runtime_is_kept_alive_by_one_task() {
    let server = MemoryBackend::new();
    // The server's own task (it expires leases) starts with its first
    // lease: count from after it.
    let warm_up = server.client();
    let lease = warm_up.grant_lease(TTL).await.unwrap();
    warm_up.revoke_lease(lease.id).await.unwrap();
    let before = alive_tasks();
    let mut sessions = Vec::new();
    for _ in 0..100 {
        let backend: DynBackend = Arc::new(server.client());
        sessions.push(Session::new(backend, TTL).await.unwrap());
    }
    assert_eq!(
        alive_tasks(),
        before + 1,
        "one keeper task for 100 sessions"
    );
    assert_eq!(server.lease_ids().len(), 100);

    tokio::time::sleep(TTL * 5).await;
    assert!(sessions.iter().all(Session::is_alive), "all renewed");
    assert_eq!(server.lease_ids().len(), 100);

    let dropped: Vec<_> = sessions.drain(..50).collect();
    let gone: Vec<_> = dropped.iter().map(Session::lease).collect();
    drop(dropped);
    // Revoked, not expired: well within the TTL of their last renewal.
    within(TTL / 2, || server.lease_ids().len() == 50).await;
    let left = server.lease_ids();
    assert!(
        gone.iter().all(|l| !left.contains(l)),
        "the dropped ones revoked"
    );

    tokio::time::sleep(TTL * 3).await;
    assert!(
        sessions.iter().all(Session::is_alive),
        "the rest still renewed"
    );

    let last = sessions.pop().unwrap();
    drop(sessions);
    last.close().await;
    assert_eq!(last.status().lost, Some(tenure::LossReason::Resigned));
    within(TTL / 2, || server.lease_ids().is_empty()).await;
    drop(last);
    // The keeper task ends once its last revoke was answered.
    within(TTL / 2, || alive_tasks() == before).await;

    let backend: DynBackend = Arc::new(server.client());
    let again = Session::new(backend, TTL).await.unwrap();
    assert_eq!(alive_tasks(), before + 1, "a new keeper task");
    tokio::time::sleep(TTL * 3).await;
    assert!(again.is_alive());
    again.close().await;
}

/// A backend whose keep-alive panics for one lease (a backend bug), and
/// that is otherwise the in-memory backend.
#[derive(Debug)]
struct PanicsOnKeepAlive {
    inner: tenure::memory::MemoryClient,
    lease: std::sync::Mutex<Option<tenure::LeaseId>>,
}

#[async_trait::async_trait]
impl CoordinationBackend for PanicsOnKeepAlive {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn ttl_bounds(&self) -> (Duration, Duration) {
        self.inner.ttl_bounds()
    }
    fn leader_key(&self, election: &tenure::ElectionName) -> String {
        self.inner.leader_key(election)
    }
    async fn grant_lease(&self, ttl: Duration) -> tenure::Result<LeaseGrant> {
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: tenure::LeaseId) -> tenure::Result<Duration> {
        let doomed = *self.lease.lock().unwrap();
        assert_ne!(Some(lease), doomed, "a backend bug");
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: tenure::LeaseId) -> tenure::Result<()> {
        self.inner.revoke_lease(lease).await
    }
    async fn create(
        &self,
        election: &tenure::ElectionName,
        slot: Slot,
        lease: tenure::LeaseId,
        value: tenure::Bytes,
    ) -> tenure::Result<tenure::backend::CreateOutcome> {
        self.inner.create(election, slot, lease, value).await
    }
    async fn candidates(&self, election: &tenure::ElectionName) -> tenure::Result<Snapshot> {
        self.inner.candidates(election).await
    }
    async fn get(&self, key: &str) -> tenure::Result<(Option<tenure::Entry>, tenure::Revision)> {
        self.inner.get(key).await
    }
    async fn update(
        &self,
        entry: &tenure::Entry,
        value: tenure::Bytes,
    ) -> tenure::Result<tenure::Entry> {
        self.inner.update(entry, value).await
    }
    async fn delete(&self, entry: &tenure::Entry) -> tenure::Result<bool> {
        self.inner.delete(entry).await
    }
    async fn guarded_put(
        &self,
        guard: &tenure::Entry,
        key: &str,
        value: tenure::Bytes,
    ) -> tenure::Result<tenure::Revision> {
        self.inner.guarded_put(guard, key, value).await
    }
    async fn watch(
        &self,
        scope: WatchScope,
        from: tenure::Revision,
    ) -> tenure::Result<WatchStream> {
        self.inner.watch(scope, from).await
    }
}

/// A keep-alive whose task panics fails that session's keep-alive only:
/// the session whose backend call panics loses its lease at its deadline,
/// the other session, on the same keeper task, goes on renewing.
#[tokio::test(start_paused = true)]
async fn a_panicking_keep_alive_costs_only_its_own_session() {
    let server = MemoryBackend::new();
    let backend = Arc::new(PanicsOnKeepAlive {
        inner: server.client(),
        lease: std::sync::Mutex::new(None),
    });
    let dynb: DynBackend = backend.clone();
    let doomed = Session::new(dynb.clone(), TTL).await.unwrap();
    let healthy = Session::new(dynb, TTL).await.unwrap();
    *backend.lease.lock().unwrap() = Some(doomed.lease());
    assert_eq!(doomed.lost().await, tenure::LossReason::DeadlineExceeded);
    tokio::time::sleep(TTL * 3).await;
    assert!(healthy.is_alive(), "still renewed after {:?}", TTL * 3);
    assert!(healthy.status().lost.is_none());
}
