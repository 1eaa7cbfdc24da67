//! Bad input gets typed errors, quickly.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tenure_core::{CoordinationBackend, Election, Error, Session};
use tenure_etcd::{EtcdBackend, EtcdOptions};
use tenure_testkit::etcd_server::EtcdServer;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

fn options(endpoint: &str) -> EtcdOptions {
    EtcdOptions::new([endpoint]).connect_timeout(CONNECT_TIMEOUT)
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_endpoint_fails_within_the_connect_timeout() {
    // A port held without listening (refused) ...
    let refused = tenure_testkit::harness::RefusedPort::new().unwrap();
    let port = refused.port();
    // ... and one that accepts TCP but never speaks (a hung server).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for endpoint in [
        format!("http://127.0.0.1:{port}"),
        format!("127.0.0.1:{silent_port}"),
    ] {
        let t0 = Instant::now();
        let err = EtcdBackend::connect(options(&endpoint)).await.unwrap_err();
        let took = t0.elapsed();
        assert!(
            took < CONNECT_TIMEOUT + Duration::from_millis(500),
            "{took:?}"
        );
        assert!(
            matches!(
                err,
                Error::Unreachable {
                    backend: "etcd",
                    ..
                }
            ),
            "{err:?}"
        );
        let host = endpoint.trim_start_matches("http://");
        assert!(err.to_string().contains(host), "{err}");
        assert!(err.is_transient());
    }
    drop(silent);
}

/// Connections closed as soon as they are accepted (a server restarting,
/// or refusing connections while busy) are retried within the connect
/// timeout: once the endpoint answers again, `connect` succeeds. When it
/// never does, the error names the endpoint, the attempts and the cause.
#[tokio::test(flavor = "multi_thread")]
async fn connect_retries_closed_connections_within_the_connect_timeout() {
    use tenure_testkit::proxy::{Mode, Proxy};

    let server = common::server().await;
    let proxy = Proxy::start(server.client_addr()).await.unwrap();
    proxy.set_mode(Mode::Drop);
    let endpoint = format!("http://{}", proxy.local_addr());
    let pending = {
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            EtcdBackend::connect(
                EtcdOptions::new([endpoint]).connect_timeout(Duration::from_secs(30)),
            )
            .await
        })
    };
    // Proof that attempts were turned away before the endpoint answered.
    assert!(
        common::eventually(Duration::from_secs(20), || async {
            proxy.accepted_connections() >= 2
        })
        .await,
        "connect never retried"
    );
    assert!(
        !pending.is_finished(),
        "connected through a closed endpoint"
    );
    proxy.set_mode(Mode::Pass);
    let backend = tokio::time::timeout(Duration::from_secs(30), pending)
        .await
        .expect("connect hangs after the endpoint answered")
        .unwrap()
        .unwrap();
    backend.client().status().await.unwrap();

    proxy.set_mode(Mode::Drop);
    let err = EtcdBackend::connect(options(&endpoint)).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    for part in [endpoint.as_str(), "attempts", "connect timeout of 1s"] {
        assert!(text.contains(part), "{part:?} missing: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_options_are_invalid_config() {
    let none: [&str; 0] = [];
    assert!(matches!(
        EtcdBackend::connect(EtcdOptions::new(none)).await,
        Err(Error::InvalidConfig {
            field: "endpoints",
            ..
        })
    ));
    assert!(matches!(
        EtcdBackend::connect(
            EtcdOptions::new(["http://127.0.0.1:1"]).request_timeout(Duration::ZERO)
        )
        .await,
        Err(Error::InvalidConfig {
            field: "request_timeout",
            ..
        })
    ));
    assert!(matches!(
        EtcdBackend::connect(EtcdOptions::new(["http://127.0.0.1:1"]).writes_in_flight(0)).await,
        Err(Error::InvalidConfig {
            field: "writes_in_flight",
            ..
        })
    ));
    assert!(matches!(
        EtcdOptions::from_url("zk://127.0.0.1:2181"),
        Err(Error::UnsupportedUrl { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_unauthenticated() {
    let server = common::server().await;
    server
        .etcdctl(&["user", "add", "root:rootpw", "--interactive=false"])
        .await
        .unwrap();
    server.etcdctl(&["role", "add", "root"]).await.unwrap();
    server
        .etcdctl(&["user", "grant-role", "root", "root"])
        .await
        .unwrap();
    server.etcdctl(&["auth", "enable"]).await.unwrap();

    let err = EtcdBackend::connect(options(&server.endpoint()).user("root", "wrong"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unauthenticated {
                backend: "etcd",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&server.endpoint()), "{err}");

    // No credentials at all: reads are refused, typed. (etcd 3.4 lets
    // anyone grant leases, so the read is the first request to check.)
    let anon = EtcdBackend::connect(options(&server.endpoint())).await;
    if let Ok(anon) = anon {
        let name = tenure_core::ElectionName::new("authed").unwrap();
        let err = anon.candidates(&name).await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    }

    // The right password works end to end.
    let b = EtcdBackend::connect(options(&server.endpoint()).user("root", "rootpw"))
        .await
        .unwrap();
    let e = Election::builder(Arc::new(b), "authed")
        .ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    let l = e.campaign("x").await.unwrap();
    assert!(l.is_leader());
    let _ = l.resign().await;
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread")]
async fn tls_to_a_plain_server_is_a_typed_error() {
    let server = common::server().await;
    let https = server.endpoint().replace("http://", "https://");
    let t0 = Instant::now();
    let err = EtcdBackend::connect(options(&https).tls(tenure_etcd::TlsConfig::new()))
        .await
        .unwrap_err();
    assert!(t0.elapsed() < CONNECT_TIMEOUT + Duration::from_millis(500));
    assert!(
        matches!(
            err,
            Error::Unreachable {
                backend: "etcd",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&https), "{err}");

    // TLS options with an http:// endpoint are a configuration mistake.
    let err = EtcdBackend::connect(options(&server.endpoint()).tls(tenure_etcd::TlsConfig::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_names_and_ttls() {
    let server = common::server().await;
    let b = common::dyn_backend(&server.endpoint()).await;
    for bad in ["", "a//b", "/a", "a/", "a/../b", " a"] {
        let err = Election::builder(b.clone(), bad).build().unwrap_err();
        assert!(
            matches!(err, Error::InvalidElectionName { .. }),
            "{bad:?}: {err:?}"
        );
    }
    let (min, max) = b.ttl_bounds();
    for ttl in [
        Duration::ZERO,
        Duration::from_millis(999),
        max + Duration::from_secs(1),
    ] {
        assert!(matches!(
            Election::builder(b.clone(), "ok").ttl(ttl).build(),
            Err(Error::InvalidTtl { .. })
        ));
        assert!(matches!(
            Session::new(b.clone(), ttl).await,
            Err(Error::InvalidTtl { .. })
        ));
        assert!(matches!(
            b.grant_lease(ttl).await,
            Err(Error::InvalidTtl { .. })
        ));
    }
    assert_eq!(min, Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_minimum_ttl_is_reported_not_hidden() {
    // etcd's default timing (100 ms heartbeat, 1 s election timeout)
    // makes its minimum lease TTL 2 s: a 1 s request is raised, and the
    // grant says so.
    let server =
        EtcdServer::start_with_args(&["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    let b = common::dyn_backend(&server.endpoint()).await;
    let g = b.grant_lease(Duration::from_secs(1)).await.unwrap();
    assert_eq!(g.ttl, Duration::from_secs(2));
    let s = Session::new(b, Duration::from_secs(1)).await.unwrap();
    assert_eq!(s.ttl(), Duration::from_secs(2));
}
