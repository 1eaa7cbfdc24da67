//! Backend-level behaviour on a real ZooKeeper server: layouts, protected
//! creates, and typed errors for bad input.

mod common;

use std::sync::Arc;
use std::time::Duration;

use tenure_core::{CoordinationBackend, CreateOutcome, ElectionName, Error, Slot};
use tenure_zookeeper::zookeeper_client as zk;
use tenure_zookeeper::{Layout, ZkAcl, ZkBackend, ZkOptions};

fn name(s: &str) -> ElectionName {
    ElectionName::new(s).unwrap_or_else(|e| panic!("election name {s:?}: {e}"))
}

fn is_seq(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Curator's LeaderLatch names (`_c_<uuid>-latch-<seq>`) and kazoo's
/// Election names (`<hex uuid>__lock__<seq>`), ordered by sequence; the
/// fencing token is the czxid, and the nodes are ephemeral to the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layouts_name_and_order_candidates_like_curator_and_kazoo() {
    let zk = common::shared().await;
    for layout in [Layout::Curator, Layout::Kazoo] {
        let root = common::unique_root("layout");
        let backend =
            ZkBackend::connect(common::options(&zk.connect_string(), &root).layout(layout))
                .await
                .unwrap();
        let e = name("jobs");
        let mut created = Vec::new();
        for i in 0..3 {
            let g = backend.grant_lease(Duration::from_secs(10)).await.unwrap();
            let CreateOutcome::Created(entry) = backend
                .create(&e, Slot::Queue, g.id, format!("c{i}").into())
                .await
                .unwrap()
            else {
                panic!("expected a new entry")
            };
            let node = entry.key.strip_prefix("jobs/").unwrap();
            match layout {
                Layout::Curator => {
                    let rest = node.strip_prefix("_c_").unwrap();
                    let (uuid, seq) = rest.split_at(36);
                    assert_eq!(uuid.matches('-').count(), 4, "{node}");
                    assert!(is_seq(seq.strip_prefix("-latch-").unwrap()), "{node}");
                }
                _ => {
                    let (uuid, seq) = node.split_at(32);
                    assert!(uuid.bytes().all(|b| b.is_ascii_hexdigit()), "{node}");
                    assert!(is_seq(seq.strip_prefix("__lock__").unwrap()), "{node}");
                }
            }
            assert_eq!(entry.lease, g.id, "ephemeralOwner is the lease's session");
            created.push(entry);
        }
        let snap = backend.candidates(&e).await.unwrap();
        assert_eq!(snap.entries, created, "{layout:?}: ordered by sequence");
        assert!(created.windows(2).all(|w| w[0].created < w[1].created));
        // The raw view: the nodes really sit at <root>/jobs.
        let raw = zk::Client::connect(&zk.connect_string()).await.unwrap();
        let children = raw.list_children(&format!("{root}/jobs")).await.unwrap();
        assert_eq!(children.len(), 3, "{children:?}");
        backend.close().await;
        assert!(raw
            .list_children(&format!("{root}/jobs"))
            .await
            .unwrap()
            .is_empty());
    }
}

/// A create retried with the same lease finds the first node instead of
/// making a second one (Curator's protection mode), also when the retries
/// race; and a create whose reply is lost while the server is frozen
/// leaves exactly one node once the connection is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_create_never_leaves_a_second_node() {
    let zk = common::own_server().await;
    let backend = Arc::new(common::connect(&zk.connect_string(), "/prot").await);
    let e = name("prot");
    let g = backend.grant_lease(Duration::from_secs(8)).await.unwrap();
    let (a, b) = tokio::join!(
        backend.create(&e, Slot::Queue, g.id, "x".into()),
        backend.create(&e, Slot::Queue, g.id, "x".into())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.entry(),
        b.entry(),
        "racing creates of one lease share a node"
    );
    assert!(matches!(
        (&a, &b),
        (CreateOutcome::Created(_), CreateOutcome::Exists(_))
            | (CreateOutcome::Exists(_), CreateOutcome::Created(_))
    ));
    assert!(backend.delete(a.entry()).await.unwrap());

    // A connection lost under a pending create: freeze the server, send
    // the create, wait until the lease's client gives up on the
    // connection (the server answers nothing), thaw the server (which
    // still processes what it had received) and let the backend
    // reconnect and look for its protected name before creating again.
    let mut state = backend.lease_state(g.id).expect("the lease's session");
    assert_eq!(state.peek_state(), zk::SessionState::SyncConnected);
    zk.pause().unwrap();
    let pending = {
        let backend = backend.clone();
        let e = e.clone();
        tokio::spawn(async move { backend.create(&e, Slot::Queue, g.id, "y".into()).await })
    };
    // The event itself (the guard only avoids a hang): the client drops
    // the silent connection after a second.
    let dropped = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match state.changed().await {
                zk::SessionState::Disconnected => return,
                s if s.is_terminated() => panic!("the lease's session ended: {s:?}"),
                _ => {}
            }
        }
    })
    .await;
    // The path ran: the create was still waiting when its connection went
    // (checked before the thaw lets it finish).
    let waiting = !pending.is_finished();
    zk.resume().unwrap();
    dropped.expect("the lease's client never dropped the frozen connection");
    assert!(waiting, "the create finished while the server was frozen");
    let outcome = tokio::time::timeout(Duration::from_secs(20), pending)
        .await
        .expect("create hangs after the server came back")
        .unwrap()
        .unwrap();
    assert_eq!(
        state.peek_state(),
        zk::SessionState::SyncConnected,
        "the same session, reconnected"
    );
    let snap = backend.candidates(&e).await.unwrap();
    let ours: Vec<_> = snap.entries.iter().filter(|x| x.lease == g.id).collect();
    assert_eq!(
        ours.len(),
        1,
        "exactly one node for the lease: {:?}",
        snap.entries
    );
    assert_eq!(ours[0], outcome.entry());
    backend.revoke_lease(g.id).await.unwrap();
}

/// An ensemble nobody answers on fails fast with `Unreachable` naming
/// the connect string (refused port, and a port that accepts TCP but
/// never answers) instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_connect_string_is_a_typed_error_not_a_hang() {
    let refused = tenure_testkit::harness::RefusedPort::new().unwrap();
    let closed = refused.port();
    // Accepts connections (the kernel does) but never reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for connect in [
        format!("127.0.0.1:{closed}"),
        format!("127.0.0.1:{silent_port}"),
        format!("127.0.0.1:{closed},127.0.0.1:{silent_port}"),
    ] {
        let options = ZkOptions::new(&connect).connect_timeout(Duration::from_secs(1));
        let r = tokio::time::timeout(Duration::from_secs(15), ZkBackend::connect(options))
            .await
            .unwrap_or_else(|_| panic!("connect to {connect} hangs"));
        match r {
            Err(err @ Error::Unreachable { .. }) => {
                assert!(err.to_string().contains(&connect), "{err}");
                assert!(err.is_transient());
            }
            other => panic!("connect to {connect}: expected Unreachable, got {other:?}"),
        }
    }
    drop(silent);
}

/// Nodes created with a creator-only ACL cannot be read or joined with
/// other digest credentials: `Unauthenticated`, naming the endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_digest_credentials_are_denied_by_the_acl() {
    let zk = common::shared().await;
    let root = common::unique_root("acl");
    let owner = ZkBackend::connect(
        common::options(&zk.connect_string(), &root)
            .digest("app", "right")
            .acl(ZkAcl::CreatorAll),
    )
    .await
    .unwrap();
    let e = name("secured");
    let g = owner.grant_lease(Duration::from_secs(10)).await.unwrap();
    let mine = owner
        .create(&e, Slot::Queue, g.id, "v".into())
        .await
        .unwrap();
    assert_eq!(owner.candidates(&e).await.unwrap().entries.len(), 1);

    for intruder in [
        common::options(&zk.connect_string(), &root).digest("app", "wrong"),
        common::options(&zk.connect_string(), &root),
    ] {
        let intruder = ZkBackend::connect(intruder).await.unwrap();
        let expect_denied = |r: tenure_core::Result<()>, what: &str| match r {
            Err(err @ Error::Unauthenticated { .. }) => {
                assert!(err.to_string().contains(&zk.connect_string()), "{err}");
                assert!(!err.is_transient(), "{what}");
            }
            other => panic!("{what}: expected Unauthenticated, got {other:?}"),
        };
        expect_denied(intruder.candidates(&e).await.map(|_| ()), "candidates");
        expect_denied(intruder.get(&mine.entry().key).await.map(|_| ()), "get");
        let h = intruder.grant_lease(Duration::from_secs(10)).await.unwrap();
        expect_denied(
            intruder
                .create(&e, Slot::Queue, h.id, "x".into())
                .await
                .map(|_| ()),
            "create",
        );
        expect_denied(
            intruder.update(mine.entry(), "x".into()).await.map(|_| ()),
            "update",
        );
        intruder.close().await;
    }
    owner.close().await;
}

/// Invalid paths and names are typed errors before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_paths_are_typed_errors() {
    let zk = common::shared().await;
    for root in ["relative", "/a//b", "/trailing/", "/zookeeper/x", "/a/../b"] {
        match ZkBackend::connect(common::options(&zk.connect_string(), root)).await {
            Err(Error::InvalidConfig { field: "root", .. }) => {}
            other => panic!("root {root:?}: expected InvalidConfig, got {other:?}"),
        }
    }
    match ZkBackend::connect(ZkOptions::new("")).await {
        Err(Error::InvalidConfig {
            field: "connect", ..
        }) => {}
        other => panic!("empty connect string: {other:?}"),
    }
    let backend = common::connect(&zk.connect_string(), &common::unique_root("paths")).await;
    // What ZooKeeper refuses in paths, every backend refuses in names: no
    // name gets as far as a request (private use, specials, U+FFFD).
    for odd in [
        "odd\u{e000}name",
        "odd\u{f8ff}",
        "odd\u{fffd}",
        "odd\u{fffe}",
    ] {
        match ElectionName::new(odd) {
            Err(Error::InvalidElectionName { name, .. }) => assert!(name.contains("odd")),
            other => panic!("{odd:?}: expected InvalidElectionName, got {other:?}"),
        }
    }
    for key in ["a//b", "a/", "/", "a/./b"] {
        match backend.get(key).await {
            Err(Error::InvalidConfig { field: "key", .. }) => {}
            other => panic!("get({key:?}): expected InvalidConfig, got {other:?}"),
        }
    }
    backend.close().await;
}

/// The TTL bounds are the server's session-timeout bounds (the harness
/// runs with 200 ms .. 20 s); TTLs outside are `InvalidTtl`, and so is a
/// shared-session timeout outside them at connect time. The granted TTL is
/// the negotiated session timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timeouts_outside_the_server_bounds_are_rejected() {
    let zk = common::shared().await;
    let backend = common::connect(&zk.connect_string(), &common::unique_root("bounds")).await;
    let (min, max) = backend.ttl_bounds();
    assert_eq!(
        (min, max),
        (
            zk.config().min_session_timeout,
            zk.config().max_session_timeout
        )
    );
    for ttl in [Duration::from_millis(100), Duration::from_secs(30)] {
        match backend.grant_lease(ttl).await {
            Err(Error::InvalidTtl {
                ttl: t,
                min: lo,
                max: hi,
            }) => {
                assert_eq!((t, lo, hi), (ttl, min, max))
            }
            other => panic!("grant_lease({ttl:?}): expected InvalidTtl, got {other:?}"),
        }
    }
    let g = backend
        .grant_lease(Duration::from_millis(1500))
        .await
        .unwrap();
    assert_eq!(g.ttl, Duration::from_millis(1500), "negotiated timeout");
    backend.revoke_lease(g.id).await.unwrap();
    match ZkBackend::connect(
        common::options(&zk.connect_string(), "/x").session_timeout(Duration::from_secs(60)),
    )
    .await
    {
        Err(Error::InvalidConfig {
            field: "session_timeout",
            reason,
        }) => assert!(reason.contains("20s"), "{reason}"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    backend.close().await;
}

/// The request timeout bounds one operation, its retries after
/// connection loss included (the meaning it has on etcd): a frozen server
/// makes each operation fail with `Error::Timeout` naming it and the
/// configured timeout, not with a connection error after many retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_bounds_each_operation_retries_included() {
    let mut zk = common::own_server().await;
    let root = common::unique_root("request-timeout");
    let timeout = Duration::from_millis(700);
    let backend =
        ZkBackend::connect(common::options(&zk.connect_string(), &root).request_timeout(timeout))
            .await
            .unwrap();
    let e = name("bounded");
    // The path runs: a healthy server answers within the bound.
    backend.candidates(&e).await.unwrap();
    zk.pause().unwrap();
    let read = backend.candidates(&e).await;
    let get = backend.get("bounded-key").await;
    zk.resume().unwrap();
    for (op, r) in [
        ("read candidates", read.map(|_| ())),
        ("get", get.map(|_| ())),
    ] {
        match r {
            Err(Error::Timeout {
                operation, after, ..
            }) => {
                assert_eq!(operation, op);
                assert_eq!(after, timeout);
            }
            other => panic!("{op}: expected Error::Timeout, got {other:?}"),
        }
    }
    backend.candidates(&e).await.unwrap();
    zk.stop().await.unwrap();
}

/// A ZooKeeper lease is a session, which a new process cannot re-attach
/// (that needs the session's password): resuming is a typed "unsupported",
/// never a fresh session passed off as the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_lease_is_unsupported() {
    let zk = common::shared().await;
    let root = common::unique_root("resume");
    let backend: Arc<dyn CoordinationBackend> =
        Arc::new(common::connect(&zk.connect_string(), &root).await);
    let lease = backend.grant_lease(Duration::from_secs(4)).await.unwrap();
    let err = tenure_core::Session::builder(backend.clone())
        .resume(lease.id)
        .start()
        .await
        .unwrap_err();
    match &err {
        Error::Unsupported { backend, .. } => assert_eq!(*backend, "zookeeper"),
        other => panic!("expected Error::Unsupported, got {other:?}"),
    }
    assert!(!err.is_transient());
    backend.revoke_lease(lease.id).await.unwrap();
}
