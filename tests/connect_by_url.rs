//! `tenure::connect` reaches every compiled-in backend by URL, and the same
//! election code runs unchanged on each: the promise that production code
//! on etcd can swap to the memory backend by changing only the URL.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::time::Duration;

use tenure::{DynBackend, Election};

/// The application code under test: knows nothing of the backend.
async fn elect_and_hand_over(backend: DynBackend, name: &str) {
    let election = |b: &DynBackend| {
        Election::builder(b.clone(), name)
            .ttl(Duration::from_secs(2))
            .build()
            .unwrap()
    };
    let first = election(&backend).campaign("first").await.unwrap();
    let waiting = tokio::spawn({
        let e = election(&backend);
        async move { e.campaign("second").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        &election(&backend).leader().await.unwrap().unwrap().value[..],
        b"first"
    );
    let token = first.token();
    first.resign().await.expect("resign");
    let second = waiting.await.unwrap().unwrap();
    assert!(second.token() > token);
    second.resign().await.expect("resign");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_url() {
    elect_and_hand_over(tenure::connect("memory://").await.unwrap(), "by-url").await;
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread")]
async fn etcd_url() {
    let server = tenure_testkit::etcd_server::EtcdServer::start()
        .await
        .unwrap();
    let hostport = server.endpoint().trim_start_matches("http://").to_string();
    let backend = tenure::connect(&format!("etcd://{hostport}/tenure-test/"))
        .await
        .unwrap();
    assert_eq!(backend.kind(), "etcd");
    elect_and_hand_over(backend, "by-url").await;
}

#[cfg(feature = "zookeeper")]
#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_url() {
    let server = tenure_testkit::zk_server::ZkServer::start().await.unwrap();
    let backend = tenure::connect(&format!("zk://{}/tenure-test", server.connect_string()))
        .await
        .unwrap();
    assert_eq!(backend.kind(), "zookeeper");
    elect_and_hand_over(backend, "by-url").await;
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_etcd_url_is_a_typed_error() {
    // A port held without listening: connections are refused.
    let refused = tenure_testkit::harness::RefusedPort::new().unwrap();
    let port = refused.port();
    let url = format!("etcd://127.0.0.1:{port}");
    let err = tenure::connect(&url).await.unwrap_err();
    assert!(matches!(err, tenure::Error::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread")]
async fn postgres_url() {
    let server = tenure_testkit::pg_server::PgServer::start().await.unwrap();
    for url in [
        format!("{}?schema=by_url", server.url()),
        server.url().replacen("postgres://", "postgresql://", 1),
    ] {
        let backend = tenure::connect(&url).await.unwrap();
        assert_eq!(backend.kind(), "postgres");
        elect_and_hand_over(backend, "by-url").await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_postgres_url_is_a_typed_error() {
    let refused = tenure_testkit::harness::RefusedPort::new().unwrap();
    let port = refused.port();
    let url = format!("postgres://tenure@127.0.0.1:{port}/postgres?connect_timeout=1s");
    let err = tenure::connect(&url).await.unwrap_err();
    assert!(matches!(err, tenure::Error::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}
