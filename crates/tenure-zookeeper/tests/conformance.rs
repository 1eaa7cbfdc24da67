//! The shared conformance suite against a real ZooKeeper server.

mod common;

use std::sync::Arc;

use futures::StreamExt;
use tenure_core::{CoordinationBackend, CreateOutcome, ElectionName, Slot, WatchEvent, WatchScope};
use tenure_testkit::conformance::{self as suite, Capabilities};

/// Every check of `tenure_testkit::conformance` except
/// `watch_replays_from_revision`: ZooKeeper keeps no history, so a watch
/// from a past revision cannot replay it; the backend answers
/// `HistoryLost` instead, as the contract allows (checked below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let zk = common::shared().await;
    let backend = common::dyn_backend(&zk.connect_string(), &common::unique_root("conf")).await;
    let caps = Capabilities::for_backend(&*backend);
    let b: &dyn CoordinationBackend = &*backend;
    suite::lease_ttl_bounds(b, &caps).await;
    suite::keep_alive_fails_after_revoke(b, &caps).await;
    suite::keep_alive_extends_lease(b, &caps).await;
    suite::revoke_deletes_entries(b, &caps).await;
    suite::lease_expiry_deletes_entries(b, &caps).await;
    suite::create_queue_is_idempotent_per_lease(b, &caps).await;
    suite::create_leader_first_writer_wins(b, &caps).await;
    suite::create_with_dead_lease_fails(b, &caps).await;
    suite::candidates_ordered_by_creation(b, &caps).await;
    suite::revisions_strictly_increase(b, &caps).await;
    suite::update_and_delete_are_guarded(b, &caps).await;
    suite::guarded_put_requires_guard(b, &caps).await;
    suite::watch_key_scope_sees_only_that_key(b, &caps).await;
    suite::watch_election_scope_excludes_other_elections(b, &caps).await;
}

/// The one check ZooKeeper cannot pass as written: replay from a past
/// revision. It must say `HistoryLost` (never skip silently), and a watch
/// from the current revision must deliver live changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_the_past_reports_history_lost() {
    let zk = common::shared().await;
    let backend =
        Arc::new(common::connect(&zk.connect_string(), &common::unique_root("past")).await);
    let e = ElectionName::new("replay").unwrap();
    let (a, b) = (
        backend
            .grant_lease(std::time::Duration::from_secs(10))
            .await
            .unwrap(),
        backend
            .grant_lease(std::time::Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let e1 = backend
        .create(&e, Slot::Queue, a.id, "1".into())
        .await
        .unwrap();
    let e2 = backend
        .create(&e, Slot::Queue, b.id, "2".into())
        .await
        .unwrap();
    assert!(backend.delete(e2.entry()).await.unwrap());
    let mut w = backend
        .watch(WatchScope::Election(e.clone()), e1.entry().created)
        .await
        .unwrap();
    assert_eq!(w.next().await.unwrap().unwrap(), WatchEvent::HistoryLost);

    let snap = backend.candidates(&e).await.unwrap();
    let mut live = backend
        .watch(WatchScope::Election(e.clone()), snap.revision + 1)
        .await
        .unwrap();
    let CreateOutcome::Created(e3) = backend
        .create(&e, Slot::Queue, b.id, "3".into())
        .await
        .unwrap()
    else {
        panic!("expected a new entry")
    };
    assert_eq!(live.next().await.unwrap().unwrap(), WatchEvent::Put(e3));
    backend.revoke_lease(a.id).await.unwrap();
    backend.revoke_lease(b.id).await.unwrap();
}
