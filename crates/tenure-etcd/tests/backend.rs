//! The trait operations against a real etcd: layout, transactions,
//! leases, watches (including compaction).

mod common;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tenure_core::{
    CoordinationBackend, CreateOutcome, ElectionName, Error, LeaseId, Slot, WatchEvent, WatchScope,
};
use tenure_etcd::{EtcdBackend, EtcdOptions, DEFAULT_WRITES_IN_FLIGHT};

fn name(s: &str) -> ElectionName {
    ElectionName::new(s).expect("valid test name")
}

#[tokio::test(flavor = "multi_thread")]
async fn create_uses_etcd_election_layout_and_is_compare_and_create() {
    let server = common::server().await;
    let b = common::connect(&server.endpoint()).await;
    let lease = b.grant_lease(Duration::from_secs(5)).await.unwrap();
    let e = name("jobs");

    let first = b
        .create(&e, Slot::Queue, lease.id, Bytes::from_static(b"node-a"))
        .await
        .unwrap();
    let CreateOutcome::Created(entry) = first else {
        panic!("expected Created, got {first:?}")
    };
    assert_eq!(entry.key, format!("jobs/{:x}", lease.id.0));
    assert_eq!(entry.lease, lease.id);
    assert_eq!(entry.created, entry.modified);

    // Same lease again: finds the first entry, unchanged.
    let again = b
        .create(&e, Slot::Queue, lease.id, Bytes::from_static(b"other"))
        .await
        .unwrap();
    assert_eq!(again, CreateOutcome::Exists(entry.clone()));

    // etcdctl sees exactly the Go layout, bound to the lease.
    let out = server
        .etcdctl(&["get", "--prefix", "jobs/", "-w", "fields"])
        .await
        .unwrap();
    assert!(
        out.contains(&format!("\"Key\" : \"jobs/{:x}\"", lease.id.0)),
        "{out}"
    );
    assert!(out.contains("\"Value\" : \"node-a\""), "{out}");
    assert!(
        out.contains(&format!("\"Lease\" : {}", lease.id.0)),
        "{out}"
    );

    // One strategy per election: no single leader key next to a queue.
    let other = b.grant_lease(Duration::from_secs(5)).await.unwrap();
    assert_eq!(b.leader_key(&e), "jobs");
    match b.create(&e, Slot::Leader, other.id, Bytes::new()).await {
        Err(Error::ShapeConflict { election, .. }) => assert_eq!(election, "jobs"),
        refused => panic!("a leader key next to a queue: {refused:?}"),
    }

    // Single leader key: first writer wins, the second finds it.
    let queue = entry;
    let e = name("solo");
    assert_eq!(b.leader_key(&e), "solo");
    let won = b
        .create(&e, Slot::Leader, lease.id, Bytes::from_static(b"a"))
        .await
        .unwrap();
    assert!(matches!(won, CreateOutcome::Created(_)));
    let lost = b
        .create(&e, Slot::Leader, other.id, Bytes::from_static(b"b"))
        .await
        .unwrap();
    match lost {
        CreateOutcome::Exists(found) => {
            assert_eq!(found.lease, lease.id);
            assert_eq!(found.value, Bytes::from_static(b"a"));
        }
        other => panic!("expected Exists, got {other:?}"),
    }
    // The queue read does not include the single leader key.
    assert!(b.candidates(&e).await.unwrap().entries.is_empty());
    assert_eq!(
        b.candidates(&name("jobs")).await.unwrap().entries,
        vec![queue]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn candidates_are_ordered_by_creation_and_scoped() {
    let server = common::server().await;
    let b = common::connect(&server.endpoint()).await;
    let e = name("svc");
    let mut created = Vec::new();
    for i in 0..4 {
        let l = b.grant_lease(Duration::from_secs(5)).await.unwrap();
        let o = b
            .create(&e, Slot::Queue, l.id, Bytes::from(format!("n{i}")))
            .await
            .unwrap();
        created.push(o.entry().clone());
    }
    // A nested election and a sibling with a common prefix are not ours.
    let l = b.grant_lease(Duration::from_secs(5)).await.unwrap();
    b.create(&name("svc/inner"), Slot::Queue, l.id, Bytes::new())
        .await
        .unwrap();
    b.create(&name("svc2"), Slot::Queue, l.id, Bytes::new())
        .await
        .unwrap();

    let snap = b.candidates(&e).await.unwrap();
    assert_eq!(snap.entries, created);
    assert!(snap.revision >= created.last().unwrap().created);
    let (got, rev) = b.get(&created[2].key).await.unwrap();
    assert_eq!(got.as_ref(), Some(&created[2]));
    assert!(rev >= snap.revision);
    assert_eq!(b.get("svc/none").await.unwrap().0, None);
}

/// The queue's head is its first-created entry, even when a key that is
/// no candidate (written under the election by another client, bound to
/// no lease) was created before it: the limit-1 read finds that key first
/// and falls back to the full read.
#[tokio::test(flavor = "multi_thread")]
async fn queue_head_is_the_first_created_entry() {
    let server = common::server().await;
    let b = common::connect(&server.endpoint()).await;
    let e = name("head");
    assert!(b.queue_head(&e).await.unwrap().entries.is_empty());
    // Created before any candidate: a key under the election, no lease.
    server.etcdctl(&["put", "head/stray", "x"]).await.unwrap();
    let mut created = Vec::new();
    for i in 0..3 {
        let l = b.grant_lease(Duration::from_secs(5)).await.unwrap();
        let o = b
            .create(&e, Slot::Queue, l.id, Bytes::from(format!("n{i}")))
            .await
            .unwrap();
        created.push(o.entry().clone());
    }
    let head = b.queue_head(&e).await.unwrap();
    assert_eq!(head.entries, vec![created[0].clone()]);
    assert!(head.revision >= created[2].created);
    // Without the stray key in front: the direct limit-1 read.
    server.etcdctl(&["del", "head/stray"]).await.unwrap();
    assert!(b.delete(&created[0]).await.unwrap());
    let head = b.queue_head(&e).await.unwrap();
    assert_eq!(head.entries, vec![created[1].clone()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn guarded_update_delete_and_put() {
    let server = common::server().await;
    let b = common::connect(&server.endpoint()).await;
    let e = name("guarded");
    let lease = b.grant_lease(Duration::from_secs(5)).await.unwrap();
    let entry = b
        .create(&e, Slot::Queue, lease.id, Bytes::from_static(b"v1"))
        .await
        .unwrap()
        .entry()
        .clone();

    let updated = b.update(&entry, Bytes::from_static(b"v2")).await.unwrap();
    assert_eq!(updated.value, Bytes::from_static(b"v2"));
    assert_eq!(updated.created, entry.created);
    assert!(updated.modified > entry.modified);
    // The update kept the lease (a plain put would have detached it).
    assert_eq!(updated.lease, lease.id);

    let rev = b
        .guarded_put(&entry, "app/config", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(rev > updated.modified);
    let (app, _) = b.get("app/config").await.unwrap();
    assert_eq!(app.unwrap().lease, LeaseId(0));

    // A stale entry (other creation revision) cannot delete or update.
    let stale = tenure_core::Entry {
        created: entry.created + 1000,
        ..entry.clone()
    };
    assert!(!b.delete(&stale).await.unwrap());
    assert!(matches!(
        b.update(&stale, Bytes::new()).await,
        Err(Error::NotOwner { .. })
    ));

    assert!(b.delete(&entry).await.unwrap());
    assert!(!b.delete(&entry).await.unwrap());
    assert!(matches!(
        b.update(&entry, Bytes::new()).await,
        Err(Error::NotOwner { .. })
    ));
    assert!(matches!(
        b.guarded_put(&entry, "app/config", Bytes::from_static(b"y"))
            .await,
        Err(Error::NotOwner { .. })
    ));
    assert_eq!(
        b.get("app/config").await.unwrap().0.unwrap().value,
        Bytes::from_static(b"x")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_keep_alive_expire_and_revoke() {
    let server = common::server().await;
    let b = common::connect(&server.endpoint()).await;
    let (min, _) = b.ttl_bounds();
    assert_eq!(min, Duration::from_secs(1));
    assert!(matches!(
        b.grant_lease(Duration::from_millis(500)).await,
        Err(Error::InvalidTtl { .. })
    ));

    // 1.2 s rounds up to 2 s: never less than asked for.
    let g = b.grant_lease(Duration::from_millis(1200)).await.unwrap();
    assert_eq!(g.ttl, Duration::from_secs(2));

    let lease = b.grant_lease(Duration::from_secs(1)).await.unwrap();
    assert!(lease.ttl >= Duration::from_secs(1));
    for _ in 0..5 {
        let ttl = b.keep_alive(lease.id).await.unwrap();
        assert_eq!(ttl, lease.ttl);
    }
    let e = name("leases");
    let entry = b
        .create(&e, Slot::Queue, lease.id, Bytes::new())
        .await
        .unwrap()
        .entry()
        .clone();

    // Without keep-alives the lease expires and takes the entry along;
    // a watcher sees the deletion.
    let mut w = b
        .watch(WatchScope::Key(entry.key.clone()), entry.created + 1)
        .await
        .unwrap();
    let ev = tokio::time::timeout(lease.ttl + Duration::from_secs(3), w.next())
        .await
        .expect("the lease did not expire")
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, WatchEvent::Delete { ref key, .. } if *key == entry.key),
        "{ev:?}"
    );
    assert!(matches!(
        b.keep_alive(lease.id).await,
        Err(Error::LeaseExpired { lease: l }) if l == lease.id
    ));
    // Creating with the dead lease is a typed error too.
    assert!(matches!(
        b.create(&e, Slot::Queue, lease.id, Bytes::new()).await,
        Err(Error::LeaseExpired { .. })
    ));

    // Revoke deletes the entries at once; unknown leases are fine.
    let l2 = b.grant_lease(Duration::from_secs(10)).await.unwrap();
    let e2 = b
        .create(&e, Slot::Queue, l2.id, Bytes::new())
        .await
        .unwrap()
        .entry()
        .clone();
    b.keep_alive(l2.id).await.unwrap();
    b.revoke_lease(l2.id).await.unwrap();
    assert_eq!(b.get(&e2.key).await.unwrap().0, None);
    assert!(matches!(
        b.keep_alive(l2.id).await,
        Err(Error::LeaseExpired { .. })
    ));
    b.revoke_lease(l2.id).await.unwrap();
    b.revoke_lease(LeaseId(0x1234_5678)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_delivers_every_change_in_order_from_a_revision() {
    let server = common::server().await;
    let b = common::connect(&server.endpoint()).await;
    let e = name("watched");
    let lease = b.grant_lease(Duration::from_secs(10)).await.unwrap();
    let start = b.candidates(&e).await.unwrap().revision + 1;
    let a = b
        .create(&e, Slot::Queue, lease.id, Bytes::from_static(b"a"))
        .await
        .unwrap()
        .entry()
        .clone();
    // Noise the election scope must not deliver.
    let l2 = b.grant_lease(Duration::from_secs(10)).await.unwrap();
    b.create(&name("watched/nested"), Slot::Queue, l2.id, Bytes::new())
        .await
        .unwrap();
    b.create(&name("watched/solo"), Slot::Leader, l2.id, Bytes::new())
        .await
        .unwrap();
    let a2 = b.update(&a, Bytes::from_static(b"a2")).await.unwrap();

    // History from `start`, then live changes.
    let mut w = b
        .watch(WatchScope::Election(e.clone()), start)
        .await
        .unwrap();
    let c = b
        .create(&e, Slot::Queue, l2.id, Bytes::from_static(b"c"))
        .await
        .unwrap()
        .entry()
        .clone();
    assert!(b.delete(&a2).await.unwrap());

    let mut got = Vec::new();
    while got.len() < 4 {
        let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .expect("watch stalled")
            .expect("watch ended")
            .expect("watch failed");
        got.push(ev);
    }
    assert_eq!(got[0], WatchEvent::Put(a.clone()));
    assert_eq!(got[1], WatchEvent::Put(a2.clone()));
    assert_eq!(got[2], WatchEvent::Put(c));
    assert!(
        matches!(&got[3], WatchEvent::Delete { key, revision } if *key == a.key && *revision > a2.modified),
        "{:?}",
        got[3]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_from_a_compacted_revision_reports_history_lost() {
    let server = common::server().await;
    let b = common::connect(&server.endpoint()).await;
    let e = name("compacted");
    let lease = b.grant_lease(Duration::from_secs(10)).await.unwrap();
    let first = b
        .create(&e, Slot::Queue, lease.id, Bytes::from_static(b"0"))
        .await
        .unwrap()
        .entry()
        .clone();
    let mut last = first.clone();
    for i in 1..5 {
        last = b.update(&last, Bytes::from(format!("{i}"))).await.unwrap();
    }
    let mut client = b.client();
    client
        .compact(i64::try_from(last.modified).unwrap(), None)
        .await
        .unwrap();

    // A watcher that asks for compacted history is told, not fed a gap.
    let mut w = b
        .watch(WatchScope::Election(e.clone()), first.created)
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("watch stalled");
    assert!(matches!(ev, Some(Ok(WatchEvent::HistoryLost))), "{ev:?}");
    assert!(
        w.next().await.is_none(),
        "the stream ends after HistoryLost"
    );

    // From the compaction point on, everything is delivered.
    let mut w = b
        .watch(WatchScope::Key(last.key.clone()), last.modified)
        .await
        .unwrap();
    let ev = w.next().await.unwrap().unwrap();
    assert_eq!(ev, WatchEvent::Put(last));
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_breaks_with_an_error_when_the_server_dies_and_keep_alive_recovers() {
    let mut server = common::server().await;
    let b = common::connect(&server.endpoint()).await;
    let lease = b.grant_lease(Duration::from_secs(30)).await.unwrap();
    b.keep_alive(lease.id).await.unwrap();
    let mut w = b.watch(WatchScope::Key("k".into()), 0).await.unwrap();
    server.kill().await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("a dead server must break the watch");
    assert!(matches!(ev, Some(Err(_)) | None), "{ev:?}");
    server.restart().await.unwrap();
    // The lease survived the restart (etcd persists leases); the old
    // keep-alive stream is dead, the backend opens a new one.
    let ok = common::eventually(Duration::from_secs(10), || {
        let b = b.clone();
        async move { b.keep_alive(lease.id).await.is_ok() }
    })
    .await;
    assert!(ok, "keep-alive did not recover after the restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn prefix_namespaces_every_key() {
    let server = common::server().await;
    let b = EtcdBackend::connect(EtcdOptions::new([server.endpoint()]).prefix("/ns/"))
        .await
        .unwrap();
    let e = name("jobs");
    let lease = b.grant_lease(Duration::from_secs(5)).await.unwrap();
    let entry = b
        .create(&e, Slot::Queue, lease.id, Bytes::from_static(b"v"))
        .await
        .unwrap()
        .entry()
        .clone();
    // Keys handed out are relative to the prefix; etcd holds them under it.
    assert_eq!(entry.key, format!("jobs/{:x}", lease.id.0));
    let out = server
        .etcdctl(&["get", "--prefix", "/ns/jobs/", "--keys-only"])
        .await
        .unwrap();
    assert!(out.contains(&format!("/ns/jobs/{:x}", lease.id.0)), "{out}");
    assert_eq!(b.candidates(&e).await.unwrap().entries, vec![entry.clone()]);
    let mut w = b
        .watch(WatchScope::Key(entry.key.clone()), 0)
        .await
        .unwrap();
    assert!(b.delete(&entry).await.unwrap());
    let ev = w.next().await.unwrap().unwrap();
    assert!(matches!(ev, WatchEvent::Delete { key, .. } if key == entry.key));
}

/// Keep-alive streams the server has started so far (etcd's own gRPC
/// counter).
async fn keep_alive_streams_started(endpoint: &str) -> u64 {
    metric(endpoint, |l| {
        l.starts_with("grpc_server_started_total{") && l.contains("grpc_method=\"LeaseKeepAlive\"")
    })
    .await as u64
}

/// The value of the first line of etcd's `/metrics` page that `line`
/// picks (0 when none does).
async fn metric(endpoint: &str, line: fn(&str) -> bool) -> f64 {
    let addr = endpoint.trim_start_matches("http://").to_owned();
    let text = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).expect("connect to /metrics");
        write!(
            s,
            "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("request /metrics");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read /metrics");
        text
    })
    .await
    .expect("the /metrics reader");
    text.lines()
        .find(|l| line(l))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// The leases of a connection renew over its keep-alive lanes: each lane's
/// stream is opened once and serves every lease hashed to it, so later
/// rounds open no stream; each reply reaches the lease it answers, and a
/// lease found gone on a shared stream is reported expired alone while
/// the others renew on.
#[tokio::test(flavor = "multi_thread")]
async fn leases_share_the_keep_alive_streams() {
    let server = common::server().await;
    let b = common::connect(&server.endpoint()).await;
    let before = keep_alive_streams_started(&server.endpoint()).await;
    let mut leases = Vec::new();
    for ttl in 20..40u64 {
        leases.push(b.grant_lease(Duration::from_secs(ttl)).await.unwrap());
    }
    let round = || futures::future::join_all(leases.iter().map(|l| b.keep_alive(l.id)));
    for ttl in round().await.into_iter().zip(&leases) {
        assert_eq!(ttl.0.unwrap(), ttl.1.ttl, "the reply of lease {}", ttl.1.id);
    }
    let opened = keep_alive_streams_started(&server.endpoint()).await - before;
    assert!(
        (1..=leases.len() as u64).contains(&opened),
        "{opened} streams for {} leases",
        leases.len()
    );
    for (ttl, lease) in round().await.into_iter().zip(&leases) {
        assert_eq!(ttl.unwrap(), lease.ttl, "the reply of lease {}", lease.id);
    }
    b.revoke_lease(leases[0].id).await.unwrap();
    let ttls = round().await;
    assert!(
        matches!(&ttls[0], Err(Error::LeaseExpired { lease }) if *lease == leases[0].id),
        "{:?}",
        ttls[0]
    );
    for (lease, ttl) in leases.iter().zip(&ttls).skip(1) {
        assert_eq!(ttl.as_ref().unwrap(), &lease.ttl);
    }
    let after = keep_alive_streams_started(&server.endpoint()).await - before;
    assert_eq!(after, opened, "later rounds reuse the streams");
}

/// Ten thousand writes at once on one connection (here queue entries, as
/// a burst of candidates makes them): etcd neither refuses them ("too
/// many requests", past 5,000 writes waiting to be applied) nor holds back
/// the keep-alives of a lease until its keep-alive wait for the applied
/// index times out, because the connection keeps only
/// [`DEFAULT_WRITES_IN_FLIGHT`] writes in flight: etcd's own count of
/// proposals waiting to be applied never goes past it.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_writes_neither_overloads_etcd_nor_starves_keep_alives() {
    const BURST: usize = 10_000;
    let server = common::server().await;
    // A request timeout long enough for the last write of the burst to
    // wait its turn: what is tested is etcd's answer, not the deadline.
    let b = EtcdBackend::connect(
        EtcdOptions::new([server.endpoint()]).request_timeout(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    let ttl = Duration::from_secs(5);
    let held = b.grant_lease(ttl).await.unwrap();
    let owner = b.grant_lease(Duration::from_secs(60)).await.unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let burst = async {
        let creates = futures::future::join_all((0..BURST).map(|i| {
            let b = &b;
            async move {
                b.create(
                    &name(&format!("burst-{i}")),
                    Slot::Queue,
                    owner.id,
                    Bytes::new(),
                )
                .await
            }
        }))
        .await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        creates
    };
    let renew = async {
        let mut during = Vec::new();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            during.push(b.keep_alive(held.id).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        during
    };
    let pending = async {
        let mut most = 0.0f64;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let now = metric(&server.endpoint(), |l| {
                l.starts_with("etcd_server_proposals_pending ")
            })
            .await;
            most = most.max(now);
        }
        most
    };
    let (creates, during, most_pending) = tokio::join!(burst, renew, pending);
    let failed: Vec<_> = creates.iter().filter_map(|c| c.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {BURST} creates failed, the first: {}",
        failed.len(),
        failed[0]
    );
    // The keep-alives ran while the burst was in flight, and each came
    // back with the lease's TTL.
    assert!(!during.is_empty(), "no keep-alive ran during the burst");
    for (i, r) in during.iter().enumerate() {
        assert_eq!(
            r.as_ref().ok(),
            Some(&held.ttl),
            "keep-alive {i} during the burst: {r:?}"
        );
    }
    // etcd saw writes waiting, never more than the bound.
    assert!(most_pending > 0.0, "no proposal was ever seen pending");
    assert!(
        most_pending <= DEFAULT_WRITES_IN_FLIGHT as f64,
        "{most_pending} proposals pending at once"
    );
}

/// When the shared stream breaks, every keep-alive waiting on it fails
/// (none waits for a reply that cannot come), and once the server is back
/// every lease renews again on a new stream.
#[tokio::test(flavor = "multi_thread")]
async fn a_broken_keep_alive_stream_fails_every_lease_on_it_then_recovers() {
    let mut server = common::server().await;
    // A request timeout far above the guard below: a keep-alive that ends
    // within the guard ended because the stream broke.
    let b = EtcdBackend::connect(
        EtcdOptions::new([server.endpoint()])
            .connect_timeout(Duration::from_secs(3))
            .request_timeout(Duration::from_secs(120)),
    )
    .await
    .unwrap();
    let mut leases = Vec::new();
    for _ in 0..10 {
        leases.push(b.grant_lease(Duration::from_secs(60)).await.unwrap());
    }
    for l in &leases {
        b.keep_alive(l.id).await.unwrap();
    }
    // Frozen: the requests go out on the stream and wait for replies.
    server.pause().await.unwrap();
    let pending: Vec<_> = leases
        .iter()
        .map(|l| {
            let b = b.clone();
            let id = l.id;
            tokio::spawn(async move { b.keep_alive(id).await })
        })
        .collect();
    tokio::task::yield_now().await;
    assert!(
        pending.iter().all(|p| !p.is_finished()),
        "the keep-alives wait on the frozen server"
    );
    // The stream breaks when the server dies.
    server.kill().await.unwrap();
    let results = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(pending))
        .await
        .expect("every keep-alive on the broken stream must fail, not wait");
    for r in results {
        let r = r.unwrap();
        assert!(
            matches!(r, Err(Error::Unreachable { .. } | Error::Backend { .. })),
            "{r:?}"
        );
    }
    server.restart().await.unwrap();
    for l in &leases {
        let ok = common::eventually(Duration::from_secs(20), || {
            let b = b.clone();
            let id = l.id;
            async move { b.keep_alive(id).await.is_ok() }
        })
        .await;
        assert!(ok, "lease {} did not renew after the restart", l.id);
    }
}

/// The first candidate of an empty election learns from its create alone
/// that it leads (the count in the create's transaction); a later one, or
/// one behind a stray key under the election's directory, is sent to the
/// usual read.
#[tokio::test(flavor = "multi_thread")]
async fn create_queued_places_only_an_entry_with_nobody_ahead() {
    let server = common::server().await;
    let b = common::connect(&server.endpoint()).await;
    let e = name("placed");
    let first = b.grant_lease(Duration::from_secs(5)).await.unwrap();
    let q = b
        .create_queued(&e, first.id, Bytes::from_static(b"a"))
        .await
        .unwrap();
    let CreateOutcome::Created(own) = &q.outcome else {
        panic!("expected Created, got {q:?}")
    };
    let around = q.around.expect("the first entry is placed by its create");
    assert_eq!(around.entries, vec![own.clone()]);
    assert_eq!(around.revision, own.created);

    let second = b.grant_lease(Duration::from_secs(5)).await.unwrap();
    let q = b
        .create_queued(&e, second.id, Bytes::from_static(b"b"))
        .await
        .unwrap();
    assert!(matches!(q.outcome, CreateOutcome::Created(_)), "{q:?}");
    assert_eq!(q.around, None, "someone is ahead: the candidate must read");

    // A stray key bound to no lease alone under the directory (written
    // by some other tool): counted too, so the candidate reads (and the
    // read finds that it leads).
    let stray_election = name("lonely");
    b.client()
        .kv_client()
        .put("lonely/stray", "x", None)
        .await
        .unwrap();
    let fourth = b.grant_lease(Duration::from_secs(5)).await.unwrap();
    let q = b
        .create_queued(&stray_election, fourth.id, Bytes::from_static(b"d"))
        .await
        .unwrap();
    assert_eq!(
        q.around, None,
        "a stray key under the directory must send it to read"
    );
    let own = q.outcome.entry().clone();
    let read = b.queue_around(&stray_election, &own).await.unwrap();
    assert_eq!(read.entries, vec![own]);
}
