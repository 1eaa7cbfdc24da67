//! Sessions kept alive by their runtime's one keeper task, on the
//! in-memory backend under paused tokio time.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::sync::Arc;
use std::time::Duration;

use tenure::backend::CoordinationBackend;
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
