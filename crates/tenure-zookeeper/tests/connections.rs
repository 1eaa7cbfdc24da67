//! Opening sessions on real ZooKeeper servers: a burst of sessions from
//! one process, a server whose session bounds exclude the 10 s default,
//! and a server that refuses connections beyond `maxClientCnxns`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use tenure_core::{CoordinationBackend, ElectionName, Error, Slot};
use tenure_testkit::proxy::Proxy;
use tenure_testkit::zk_server::{ZkServer, ZkServerConfig};
use tenure_zookeeper::zookeeper_client as zk;
use tenure_zookeeper::{ZkBackend, ZkOptions};
use tokio::time::Instant;

/// Sessions opened at once in the burst test.
const BURST: usize = 200;

async fn server(config: ZkServerConfig) -> ZkServer {
    ZkServer::start_with(config)
        .await
        .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"))
}

/// The text of an error and of its whole source chain.
fn chain(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(" / ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Two hundred leases (each its own session) granted at once by one
/// backend in one process, with the default connect timeout: every one
/// is granted, although the server cannot answer that many handshakes
/// within one connection timeout (the attempts that time out, or find
/// the server closing the connection, are retried with back-off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sessions_at_once_from_one_process() {
    // A server of its own, with no per-host connection limit (the
    // harness's default; ZooKeeper's own is 60).
    let zk = server(ZkServerConfig::default()).await;
    assert_eq!(zk.config().max_client_cnxns, 0);
    let backend = Arc::new(
        ZkBackend::connect(ZkOptions::new(zk.connect_string()).root("/burst"))
            .await
            .unwrap(),
    );
    let started = Instant::now();
    let election = ElectionName::new("burst").unwrap();
    let grants: Vec<_> = (0..BURST)
        .map(|_| {
            let backend = backend.clone();
            let election = election.clone();
            tokio::spawn(async move {
                let lease = backend.grant_lease(Duration::from_secs(10)).await?;
                backend
                    .create(&election, Slot::Queue, lease.id, "c".into())
                    .await
            })
        })
        .collect();
    let mut failures = Vec::new();
    let mut granted = 0;
    for g in grants {
        match g.await.unwrap() {
            Ok(_) => granted += 1,
            Err(e) => failures.push(chain(&e)),
        }
    }
    println!(
        "{granted} sessions opened at once in {:?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {BURST} grants failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(granted, BURST);
    backend.close().await;
}

/// A server with `tickTime=200` allows sessions of 400 ms .. 4 s only:
/// without a session timeout in the options the shared session gets one
/// within those bounds (the 10 s default clamped to 4 s, or the election's
/// TTL); one set explicitly outside them is an error that says which URL
/// option and which server settings to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_session_fits_a_server_with_tick_time_200() {
    let zk = server(ZkServerConfig {
        tick_time: Duration::from_millis(200),
        min_session_timeout: Duration::from_millis(400),
        max_session_timeout: Duration::from_secs(4),
        ..ZkServerConfig::default()
    })
    .await;
    let url = format!("zk://{}/tick200", zk.connect_string());
    let backend = ZkBackend::connect(ZkOptions::from_url(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(
        backend.ttl_bounds(),
        (Duration::from_millis(400), Duration::from_secs(4))
    );
    assert_eq!(backend.session_timeout(), Duration::from_secs(4), "clamped");
    let g = backend.grant_lease(Duration::from_secs(3)).await.unwrap();
    assert_eq!(g.ttl, Duration::from_secs(3));
    backend.close().await;

    let ttl = ZkBackend::connect(
        ZkOptions::from_url(&url)
            .unwrap()
            .default_session_timeout(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    assert_eq!(ttl.session_timeout(), Duration::from_secs(3));

    let explicit = ZkOptions::from_url(&format!("{url}?session_timeout=10s")).unwrap();
    match ZkBackend::connect(explicit).await {
        Err(
            e @ Error::InvalidConfig {
                field: "session_timeout",
                ..
            },
        ) => {
            let text = e.to_string();
            for hint in [
                "session_timeout=",
                "minSessionTimeout",
                "maxSessionTimeout",
                "tickTime",
                "400ms..=4s",
            ] {
                assert!(text.contains(hint), "{hint:?} missing: {text}");
            }
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// Opens a plain client session directly on the server (one of the
/// host's connections while it lives).
async fn hold_connection(zk: &ZkServer) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&zk.connect_string())
        .await
        .unwrap_or_else(|e| panic!("cannot hold a connection: {e}"))
}

/// A server with `maxClientCnxns=3` closes a fourth connection from
/// loopback right after accepting it. A lease asked for meanwhile is
/// retried (each attempt closed during the handshake) until a connection
/// is free, then granted; one that finds no free connection within its
/// connect timeout fails naming the endpoint, the attempts and the likely
/// cause, as does a new backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_client_cnxns_are_retried_then_explained() {
    let zk = server(ZkServerConfig {
        max_client_cnxns: 3,
        ..ZkServerConfig::default()
    })
    .await;
    // The backend reaches the server through a proxy that counts its
    // connection attempts (the proxy's upstream connections count
    // against the limit like any other from loopback).
    let proxy = Proxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], zk.port())))
        .await
        .unwrap();
    let backend = Arc::new(
        ZkBackend::connect(
            ZkOptions::new(proxy.local_addr().to_string())
                .root("/cnxns")
                .connect_timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap(),
    );
    // The shared session holds one connection; two more fill the limit.
    let held = vec![hold_connection(&zk).await, hold_connection(&zk).await];

    // Waits for a free connection, retrying.
    let before = proxy.accepted_connections();
    let pending = {
        let backend = backend.clone();
        tokio::spawn(async move { backend.grant_lease(Duration::from_secs(10)).await })
    };
    // Proof that attempts were turned away: a second attempt came after
    // the first was closed.
    assert!(
        common::eventually(Duration::from_secs(20), || async {
            proxy.accepted_connections() >= before + 2
        })
        .await,
        "the lease session never retried"
    );
    assert!(!pending.is_finished(), "granted beyond the limit");
    drop(held);
    let g = tokio::time::timeout(Duration::from_secs(30), pending)
        .await
        .expect("grant hangs after a connection was freed")
        .unwrap()
        .unwrap();
    println!(
        "granted after {} connection attempts",
        proxy.accepted_connections() - before
    );

    // Full again (shared session, the lease, one more): within a short
    // connect timeout nothing frees up, and the error says why, both for
    // a session (bounds given, so no probe) and for the bounds probe.
    let _held = hold_connection(&zk).await;
    let short = ZkOptions::new(zk.connect_string())
        .root("/cnxns")
        .connect_timeout(Duration::from_millis(1500));
    let session = ZkBackend::connect(
        short
            .clone()
            .ttl_bounds(Duration::from_millis(200), Duration::from_secs(20)),
    )
    .await;
    let probe = ZkBackend::connect(short).await;
    for (what, result) in [("session", session), ("probe", probe)] {
        let e = result.expect_err(what);
        assert!(matches!(e, Error::Unreachable { .. }), "{what}: {e:?}");
        let text = e.to_string();
        println!("{what}: {text}");
        for part in [
            zk.connect_string().as_str(),
            "attempts",
            "connect timeout of 1.5s",
            "maxClientCnxns",
        ] {
            assert!(text.contains(part), "{what}: {part:?} missing: {text}");
        }
    }
    backend.revoke_lease(g.id).await.unwrap();
    backend.close().await;
}

/// A server that answers each request 1.2 s after it was sent (the proxy
/// holds every chunk 600 ms each way), as one short of CPU under a burst
/// of new sessions does: the first attempt at a session gives up after
/// 1 s of silence, the next waits 2 s and opens it. Connecting and a
/// lease grant both succeed, each after more than one attempt. With a
/// bound that never grew, every attempt gave up just before its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_slower_than_a_second_is_waited_for() {
    let zk = server(ZkServerConfig::default()).await;
    let proxy = Proxy::start(zk.connect_string().parse().unwrap())
        .await
        .unwrap();
    proxy.set_mode(tenure_testkit::proxy::Mode::Delay(Duration::from_millis(
        600,
    )));
    let options = ZkOptions::new(proxy.local_addr().to_string())
        .root("/slow")
        .connect_timeout(Duration::from_secs(10));
    let before = proxy.accepted_connections();
    let backend = ZkBackend::connect(options)
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    // The probe's handshakes, the shared session's first attempt given
    // up, and the attempt that opened it.
    let connecting = proxy.accepted_connections() - before;
    assert!(connecting >= 3, "{connecting} connections");
    let before = proxy.accepted_connections();
    let grant = backend
        .grant_lease(Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    let granting = proxy.accepted_connections() - before;
    assert!(
        granting >= 2,
        "the grant's first attempt was given up: {granting}"
    );
    backend.revoke_lease(grant.id).await.unwrap();
}
