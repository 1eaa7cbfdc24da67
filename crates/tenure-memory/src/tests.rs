//! Unit tests of the fault knobs, expiry timing and bookkeeping, all on
//! paused tokio time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tenure_core::{
    CoordinationBackend, CreateOutcome, ElectionName, Entry, Error, Slot, WatchEvent, WatchScope,
    WatchStream,
};
use tokio::time::Instant;

use crate::{ClientStats, MemoryBackend};

const TTL: Duration = Duration::from_secs(2);

fn name(s: &str) -> ElectionName {
    ElectionName::new(s).unwrap()
}

async fn entry(b: &dyn CoordinationBackend, e: &str, slot: Slot, ttl: Duration) -> Entry {
    let g = b.grant_lease(ttl).await.unwrap();
    match b
        .create(&name(e), slot, g.id, Bytes::from_static(b"v"))
        .await
    {
        Ok(CreateOutcome::Created(entry)) => entry,
        other => panic!("{other:?}"),
    }
}

/// The next item, which must be ready now (no time passes).
fn ready(w: &mut WatchStream) -> Option<tenure_core::Result<WatchEvent>> {
    w.next().now_or_never().expect("an item must be ready")
}

fn deleted(item: Option<tenure_core::Result<WatchEvent>>) -> String {
    match item {
        Some(Ok(WatchEvent::Delete { key, .. })) => key,
        other => panic!("expected a delete, got {other:?}"),
    }
}

#[test]
fn new_needs_no_runtime() {
    let b = MemoryBackend::new();
    assert_eq!(b.revision(), 1);
    assert!(b.keys().is_empty() && b.lease_ids().is_empty());
    assert_eq!(b.kind(), "memory");
    assert_eq!(b.leader_key(&name("x/y")), "x/y");
}

#[test]
fn ttl_bounds_are_configurable_and_validated() {
    let b = MemoryBackend::with_ttl_bounds(Duration::from_secs(1), Duration::from_secs(5)).unwrap();
    assert_eq!(
        b.ttl_bounds(),
        (Duration::from_secs(1), Duration::from_secs(5))
    );
    assert_eq!(b.client().ttl_bounds(), b.ttl_bounds());
    for (min, max) in [(0, 5), (6, 5)] {
        let err =
            MemoryBackend::with_ttl_bounds(Duration::from_secs(min), Duration::from_secs(max))
                .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    field: "ttl_bounds",
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn grant_outside_bounds_is_invalid() {
    let b = MemoryBackend::with_ttl_bounds(Duration::from_secs(1), Duration::from_secs(5)).unwrap();
    for ttl in [Duration::from_millis(999), Duration::from_millis(5001)] {
        let err = b.grant_lease(ttl).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidTtl { ttl: t, .. } if t == ttl),
            "{err}"
        );
    }
    assert!(b.grant_lease(Duration::from_secs(5)).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn key_layout_and_revisions() {
    let b = MemoryBackend::new();
    let g = b.grant_lease(TTL).await.unwrap();
    assert_eq!(b.revision(), 1, "granting a lease changes no key");
    let e = name("svc/e");
    let q = b.create(&e, Slot::Queue, g.id, "q".into()).await.unwrap();
    assert_eq!(q.entry().key, format!("svc/e/{:x}", g.id.0));
    assert_eq!((q.entry().created, q.entry().modified), (2, 2));
    let single = name("svc/s");
    let l = b
        .create(&single, Slot::Leader, g.id, "l".into())
        .await
        .unwrap();
    assert_eq!((l.entry().key.as_str(), l.entry().created), ("svc/s", 3));
    assert_ne!(g.id.0, 0);
    let g2 = b.grant_lease(TTL).await.unwrap();
    assert!(g2.id > g.id, "lease ids increase");
    b.revoke_lease(g.id).await.unwrap();
    assert_eq!(b.revision(), 5, "one revision per deleted key");
    assert_eq!(b.lease_ids(), vec![g2.id]);
}

/// The rule, checked on the state itself (no reaper involved): alive
/// strictly before `t0 + ttl`, gone at `t0 + ttl`.
#[tokio::test(start_paused = true)]
async fn expiry_is_exact_without_the_reaper() {
    let b = MemoryBackend::new();
    let t0 = Instant::now();
    let (key, lease) = {
        let mut s = b.server.lock();
        let g = s.grant(t0, TTL).unwrap();
        let c = s
            .create(t0, &name("e"), Slot::Queue, g.id, "v".into())
            .unwrap();
        (c.entry().key.clone(), g.id)
    };
    let mut s = b.server.lock();
    let just_before = t0 + TTL - Duration::from_nanos(1);
    assert!(
        s.get(just_before, &key).0.is_some(),
        "alive just before t0 + ttl"
    );
    assert_eq!(s.keep_alive(just_before, lease).unwrap(), TTL, "renewable");
    let t1 = just_before;
    assert!(s.get(t1 + TTL - Duration::from_nanos(1), &key).0.is_some());
    assert!(s.get(t1 + TTL, &key).0.is_none(), "gone at t1 + ttl");
    assert!(matches!(
        s.keep_alive(t1 + TTL, lease),
        Err(Error::LeaseExpired { lease: l }) if l == lease
    ));
}

/// The reaper deletes the entries at the expiry instant with nobody
/// calling the backend, and watchers see it then.
#[tokio::test(start_paused = true)]
async fn reaper_expires_leases_on_time() {
    let b = MemoryBackend::new();
    let t0 = Instant::now();
    let e = entry(&b, "e", Slot::Queue, TTL).await;
    let mut w = b.watch(WatchScope::Key(e.key.clone()), 0).await.unwrap();
    let event = w.next().await;
    assert_eq!(deleted(event), e.key);
    assert_eq!(Instant::now(), t0 + TTL, "deleted exactly at expiry");
    assert!(b.keys().is_empty() && b.lease_ids().is_empty());
}

#[tokio::test(start_paused = true)]
async fn keep_alive_extends_from_now() {
    let b = MemoryBackend::new();
    let t0 = Instant::now();
    let e = entry(&b, "e", Slot::Queue, TTL).await;
    tokio::time::sleep(TTL / 2).await;
    assert_eq!(b.keep_alive(e.lease).await.unwrap(), TTL);
    let renewed = Instant::now();
    tokio::time::sleep_until(t0 + TTL + Duration::from_millis(100)).await;
    assert_eq!(b.keys(), vec![e.key.clone()], "alive past the first TTL");
    let mut w = b.watch(WatchScope::Key(e.key.clone()), 0).await.unwrap();
    let _ = w.next().await;
    assert_eq!(Instant::now(), renewed + TTL);
}

#[tokio::test(start_paused = true)]
async fn reaper_replans_when_an_earlier_lease_is_granted() {
    let b = MemoryBackend::new();
    let long = entry(&b, "long", Slot::Queue, Duration::from_secs(60)).await;
    let t0 = Instant::now();
    let short = entry(&b, "short", Slot::Queue, Duration::from_secs(1)).await;
    let mut w = b
        .watch(WatchScope::Election(name("short")), 0)
        .await
        .unwrap();
    assert_eq!(deleted(w.next().await), short.key);
    assert_eq!(Instant::now(), t0 + Duration::from_secs(1));
    assert_eq!(b.keys(), vec![long.key]);
}

#[tokio::test(start_paused = true)]
async fn reaper_exits_when_the_backend_is_dropped() {
    let b = MemoryBackend::new();
    let _ = entry(&b, "e", Slot::Queue, TTL).await;
    let handle = b.server.lock().reaper.take().expect("reaper started");
    let weak = Arc::downgrade(&b.server);
    drop(b);
    tokio::time::timeout(Duration::from_millis(1), handle)
        .await
        .expect("reaper must exit")
        .unwrap();
    assert!(weak.upgrade().is_none(), "nothing keeps the server alive");
}

#[tokio::test(start_paused = true)]
async fn expire_lease_deletes_entries_now() {
    let b = MemoryBackend::new();
    let a = b.client();
    let e = entry(&a, "e", Slot::Leader, TTL).await;
    let mut w = b.watch(WatchScope::Key(e.key.clone()), 0).await.unwrap();
    assert!(b.expire_lease(e.lease));
    assert!(!b.expire_lease(e.lease), "already gone");
    assert_eq!(deleted(ready(&mut w)), e.key);
    let err = a.keep_alive(e.lease).await.unwrap_err();
    assert!(matches!(err, Error::LeaseExpired { lease } if lease == e.lease));
}

#[tokio::test(start_paused = true)]
async fn compact_loses_history_and_ends_live_watches() {
    let b = MemoryBackend::new();
    let e = entry(&b, "e", Slot::Queue, TTL).await; // revision 2
    let u = b.update(&e, "u".into()).await.unwrap(); // revision 3
    let scope = WatchScope::Election(name("e"));
    let mut live = b.watch(scope.clone(), 0).await.unwrap();

    b.compact(3);
    assert!(matches!(
        ready(&mut live),
        Some(Ok(WatchEvent::HistoryLost))
    ));
    assert!(ready(&mut live).is_none(), "the live watch ends");
    // etcd's convention: from the compaction revision itself still works.
    let mut at = b.watch(scope.clone(), 3).await.unwrap();
    assert_eq!(ready(&mut at).unwrap().unwrap(), WatchEvent::Put(u.clone()));
    let mut old = b.watch(scope.clone(), 2).await.unwrap();
    assert!(matches!(ready(&mut old), Some(Ok(WatchEvent::HistoryLost))));
    assert!(ready(&mut old).is_none());

    b.compact_all();
    let mut lost = b.watch(scope.clone(), 3).await.unwrap();
    assert!(matches!(
        ready(&mut lost),
        Some(Ok(WatchEvent::HistoryLost))
    ));
    let mut next = b.watch(scope, 4).await.unwrap();
    let u2 = b.update(&e, "u2".into()).await.unwrap();
    assert_eq!(ready(&mut next).unwrap().unwrap(), WatchEvent::Put(u2));
}

#[tokio::test(start_paused = true)]
async fn drop_watches_ends_streams_with_an_error() {
    let b = MemoryBackend::new();
    let (c1, c2) = (b.client(), b.client());
    let e = entry(&b, "e", Slot::Queue, TTL).await;
    let scope = WatchScope::Key(e.key.clone());
    let mut w1 = c1.watch(scope.clone(), 0).await.unwrap();
    let mut w2 = c2.watch(scope.clone(), 0).await.unwrap();
    b.drop_watches();
    for w in [&mut w1, &mut w2] {
        assert!(matches!(ready(w), Some(Err(Error::Unreachable { .. }))));
        assert!(ready(w).is_none());
    }
    // A new watch resumes from a revision and misses nothing.
    let u = b.update(&e, "u".into()).await.unwrap();
    let mut again = c1.watch(scope, e.created + 1).await.unwrap();
    assert_eq!(ready(&mut again).unwrap().unwrap(), WatchEvent::Put(u));
}

#[tokio::test(start_paused = true)]
async fn unreachable_client_fails_fast_and_loses_its_watches() {
    let b = MemoryBackend::new();
    let (a, other) = (b.client(), b.client());
    let e = entry(&a, "e", Slot::Queue, TTL).await;
    let scope = WatchScope::Key(e.key.clone());
    let mut wa = a.watch(scope.clone(), 0).await.unwrap();
    let mut wo = other.watch(scope.clone(), 0).await.unwrap();

    a.set_latency(Duration::from_secs(1)); // no latency while cut off
    a.set_unreachable(true);
    assert!(a.is_unreachable());
    let t0 = Instant::now();
    let err = a.keep_alive(e.lease).now_or_never().unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Unreachable { backend: "memory", endpoint, .. }
        if *endpoint == format!("memory://{}", a.id())),
        "{err:?}"
    );
    assert!(err.to_string().contains("memory"));
    assert!(a.watch(scope.clone(), 0).await.is_err());
    assert!(a.get(&e.key).await.is_err());
    assert_eq!(Instant::now(), t0);
    assert!(matches!(
        ready(&mut wa),
        Some(Err(Error::Unreachable { .. }))
    ));
    assert!(ready(&mut wa).is_none());

    // The server goes on: the cut-off client's lease expires.
    assert_eq!(deleted(wo.next().await), e.key);
    a.set_unreachable(false);
    let err = a.keep_alive(e.lease).await.unwrap_err();
    assert!(matches!(err, Error::LeaseExpired { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn cut_off_during_latency_loses_the_request() {
    let b = MemoryBackend::new();
    let a = b.client();
    a.set_latency(Duration::from_millis(50));
    let op = tokio::spawn({
        let a = a.clone();
        async move { a.grant_lease(TTL).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    a.set_unreachable(true);
    assert!(matches!(op.await.unwrap(), Err(Error::Unreachable { .. })));
    assert!(b.lease_ids().is_empty(), "the lost request changed nothing");
}

#[tokio::test(start_paused = true)]
async fn latency_delays_each_operation() {
    let b = MemoryBackend::new();
    let a = b.client();
    let t0 = Instant::now();
    a.set_latency(Duration::from_millis(30));
    let g = a.grant_lease(TTL).await.unwrap();
    a.keep_alive(g.id).await.unwrap();
    assert_eq!(Instant::now(), t0 + Duration::from_millis(60));

    a.set_latency(Duration::ZERO);
    let done = a.get("k").now_or_never();
    assert!(
        matches!(done, Some(Ok((None, 1)))),
        "no yield with zero latency"
    );
}

#[tokio::test(start_paused = true)]
async fn stats_count_requests_and_delivered_events_per_client() {
    let b = MemoryBackend::new();
    let (leader, next, far) = (b.client(), b.client(), b.client());
    let l = entry(&leader, "e", Slot::Queue, TTL).await;
    let n = entry(&next, "e", Slot::Queue, TTL).await;
    let _f = entry(&far, "e", Slot::Queue, TTL).await;
    // Each watches only its predecessor (the queue strategy).
    let mut wn = next.watch(WatchScope::Key(l.key.clone()), 0).await.unwrap();
    let _wf = far.watch(WatchScope::Key(n.key.clone()), 0).await.unwrap();
    let before = (next.stats(), far.stats());
    assert_eq!(
        before.0,
        ClientStats {
            requests: 3,
            watch_events: 0
        }
    );

    leader.revoke_lease(l.lease).await.unwrap();
    assert_eq!(deleted(ready(&mut wn)), l.key);
    assert_eq!(next.stats().watch_events, 1, "the successor is woken");
    assert_eq!(far.stats(), before.1, "the others are not");
    assert_eq!(leader.stats().requests, 3);
    assert_eq!(leader.clone().stats(), leader.stats(), "clones share stats");
}

#[tokio::test(start_paused = true)]
async fn watches_replay_then_go_live_and_are_forgotten_when_dropped() {
    let b = MemoryBackend::new();
    let e = entry(&b, "e", Slot::Queue, TTL).await;
    let u = b.update(&e, "u".into()).await.unwrap();
    let w = b.watch(WatchScope::Key(e.key.clone()), 0).await.unwrap();
    let mut from = b.watch(WatchScope::Key(e.key.clone()), 1).await.unwrap();
    assert_eq!(
        ready(&mut from).unwrap().unwrap(),
        WatchEvent::Put(e.clone())
    );
    assert_eq!(ready(&mut from).unwrap().unwrap(), WatchEvent::Put(u));
    assert!(
        from.next().now_or_never().is_none(),
        "then waits for live events"
    );
    assert_eq!(b.server.lock().watchers.len(), 2);
    drop(w);
    b.update(&e, "v".into()).await.unwrap();
    assert_eq!(b.server.lock().watchers.len(), 1, "dropped watch forgotten");
}

#[tokio::test(start_paused = true)]
async fn election_scope_is_exact_even_for_short_hex_names() {
    // "b" is valid hex: the leader key "a/b" must still not count as a
    // queue entry of "a".
    let b = MemoryBackend::new();
    let mut w = b.watch(WatchScope::Election(name("a")), 0).await.unwrap();
    let _ = entry(&b, "a/b", Slot::Leader, TTL).await;
    let _ = entry(&b, "a/c", Slot::Queue, TTL).await;
    let _ = entry(&b, "ab", Slot::Queue, TTL).await;
    assert!(w.next().now_or_never().is_none());
    assert!(b.candidates(&name("a")).await.unwrap().entries.is_empty());
    let mine = entry(&b, "a", Slot::Queue, TTL).await;
    assert_eq!(ready(&mut w).unwrap().unwrap(), WatchEvent::Put(mine));
}

#[tokio::test(start_paused = true)]
async fn guarded_put_detaches_the_key_from_its_lease() {
    let b = MemoryBackend::new();
    let guard = entry(&b, "e", Slot::Leader, Duration::from_secs(60)).await;
    let victim = entry(&b, "v", Slot::Leader, TTL).await;
    b.guarded_put(&guard, &victim.key, "app".into())
        .await
        .unwrap();
    tokio::time::sleep(TTL * 2).await;
    let (found, _) = b.get(&victim.key).await.unwrap();
    let found = found.expect("a plain put outlives the old lease");
    assert_eq!((found.lease.0, &found.value[..]), (0, &b"app"[..]));
    assert_eq!(
        found.created, victim.created,
        "a put keeps the creation revision"
    );
}

/// A guarded put over a queue entry of another election takes the key out
/// of that election's queue: the shortcut read of the entry before a
/// candidate's agrees with the full read.
#[tokio::test(start_paused = true)]
async fn guarded_put_over_a_queue_entry_leaves_that_queue() {
    let b = MemoryBackend::new();
    let guard = entry(&b, "a", Slot::Leader, TTL).await;
    let first = entry(&b, "q", Slot::Queue, TTL).await;
    let second = entry(&b, "q", Slot::Queue, TTL).await;
    let around = b.queue_around(&name("q"), &second).await.unwrap();
    assert_eq!(around.entries, vec![first.clone(), second.clone()]);
    b.guarded_put(&guard, &first.key, "app".into())
        .await
        .unwrap();
    let full = b.candidates(&name("q")).await.unwrap().around(&second);
    let around = b.queue_around(&name("q"), &second).await.unwrap();
    assert_eq!(full.entries, vec![second.clone()]);
    assert_eq!(around.entries, full.entries);
}

/// Watches dropped on keys that never change again are forgotten too (by
/// the sweep that runs as the number of watches grows), so a long-lived
/// server does not keep them.
#[tokio::test(start_paused = true)]
async fn dropped_watches_on_quiet_keys_are_swept() {
    let b = MemoryBackend::new();
    for round in 0..10 {
        let streams: Vec<WatchStream> = futures::future::join_all(
            (0..100).map(|i| b.watch(WatchScope::Key(format!("quiet/{round}/{i}")), 0)),
        )
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
        assert!(
            b.server.lock().watchers.len() >= 100,
            "the watches are held"
        );
        drop(streams);
    }
    let held = b.server.lock().watchers.len();
    assert!(
        held <= 200,
        "{held} watchers held for 100 live streams at most"
    );
}
