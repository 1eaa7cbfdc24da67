//! ZooKeeper over TLS (`zks://`, the server's `secureClientPort` with
//! `ssl.clientAuth=need`), with certificates generated for each test:
//! what works, and what fails at once with a typed error naming the
//! cause.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)] // test helpers may unwrap

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tenure_core::{DynBackend, Election, Error, Session};
use tenure_testkit::conformance::{self as suite, Capabilities};
use tenure_testkit::pki::{self, CertFiles, TestPki};
use tenure_testkit::proxy::Proxy;
use tenure_testkit::zk_server::{ZkServer, ZkServerConfig};
use tenure_zookeeper::{ZkBackend, ZkOptions};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Only a hang guard: each step below answers well within it.
const GUARD: Duration = Duration::from_secs(30);

async fn tls_server(pki: &TestPki) -> ZkServer {
    ZkServer::start_tls(pki, ZkServerConfig::default())
        .await
        .unwrap_or_else(|e| panic!("cannot start ZooKeeper with TLS: {e}"))
}

fn enc(path: &Path) -> String {
    // Test paths hold no `&`, `=` or `%`.
    path.display().to_string()
}

/// A `zks://` URL for `hosts` under `root`, trusting `ca`, with a client
/// certificate when given.
fn url(hosts: &str, root: &str, ca: &Path, client: Option<&CertFiles>) -> String {
    let mut url = format!(
        "zks://{hosts}{root}?ca={}&session_timeout=4s&connect_timeout={}ms",
        enc(ca),
        CONNECT_TIMEOUT.as_millis()
    );
    if let Some(c) = client {
        url.push_str(&format!("&cert={}&key={}", enc(&c.cert), enc(&c.key)));
    }
    url
}

async fn connect_url(url: &str) -> tenure_core::Result<ZkBackend> {
    ZkBackend::connect(ZkOptions::from_url(url)?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_campaign_observe_and_guarded_write() {
    let pki = TestPki::generate().unwrap();
    let server = tls_server(&pki).await;
    let client = pki.client("tenure").unwrap();
    let root = common::unique_root("tls");
    let url = url(
        &server.secure_connect_string(),
        &root,
        &pki.ca(),
        Some(&client),
    );
    let backend: DynBackend = Arc::new(connect_url(&url).await.unwrap());
    let election = Election::builder(backend.clone(), "jobs")
        .ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut observer = election.observe();
    let leadership = tokio::time::timeout(GUARD, election.campaign("node-a"))
        .await
        .expect("campaign hung")
        .unwrap();
    assert!(leadership.is_leader());
    let seen = tokio::time::timeout(GUARD, async {
        while let Some(o) = observer.next().await {
            if let Some(l) = o.leader() {
                return l.value.clone();
            }
        }
        panic!("the observer ended");
    })
    .await
    .expect("no leader observed");
    assert_eq!(&seen[..], b"node-a");
    leadership.guarded_put("config", "v1").await.unwrap();
    let stored = backend.get("config").await.unwrap().0.unwrap();
    assert_eq!(&stored.value[..], b"v1");
    let _ = leadership.resign().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_over_mtls() {
    let pki = TestPki::generate().unwrap();
    let server = tls_server(&pki).await;
    let client = pki.client("tenure").unwrap();
    let root = common::unique_root("tls-conf");
    let url = url(
        &server.secure_connect_string(),
        &root,
        &pki.ca(),
        Some(&client),
    );
    let backend: DynBackend = Arc::new(connect_url(&url).await.unwrap());
    let caps = Capabilities::for_backend(&*backend).without_history();
    suite::run_all(backend, caps).await;
}

/// Every refused certificate is an [`Error::Tls`] naming the cause,
/// returned well within the connect timeout (no retry loop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_certificates_are_typed_errors_within_the_connect_timeout() {
    let pki = TestPki::generate().unwrap();
    let server = tls_server(&pki).await;
    let host = server.secure_connect_string();
    let port = host.rsplit(':').next().unwrap().to_owned();
    let expired = pki.expired_client("tenure").unwrap();
    let foreign = pki.foreign_client("tenure").unwrap();
    let good = pki.client("tenure").unwrap();
    let root = common::unique_root("tls-refused");
    let cases = [
        (
            "no client certificate",
            url(&host, &root, &pki.ca(), None),
            "requires a client certificate",
        ),
        (
            "a client certificate from another CA",
            url(&host, &root, &pki.ca(), Some(&foreign)),
            "refused the client certificate",
        ),
        (
            "an expired client certificate",
            url(&host, &root, &pki.ca(), Some(&expired)),
            "refused the client certificate",
        ),
        (
            "a server certificate from a CA we do not trust",
            url(&host, &root, &pki.other_ca(), Some(&good)),
            "not signed by a trusted CA",
        ),
        (
            "a host the server certificate does not name",
            url(&format!("localhost:{port}"), &root, &pki.ca(), Some(&good)),
            "does not name the host",
        ),
    ];
    pki::assert_refused_by_tls(
        "zookeeper",
        &cases,
        CONNECT_TIMEOUT,
        GUARD,
        |u| async move { connect_url(&u).await },
    )
    .await;
}

/// A malformed PEM file fails before any connection, naming the file;
/// TLS options on a plain URL, or `zks://` without a CA, are refused.
#[tokio::test]
async fn bad_tls_options_are_typed_errors() {
    let pki = TestPki::generate().unwrap();
    let garbage = pki.dir().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let err = ZkOptions::from_url(&url("127.0.0.1:1", "/x", &garbage, None)).unwrap_err();
    assert!(
        matches!(&err, Error::CredentialFile { what: "CA certificate", path, .. } if path == &garbage),
        "{err:?}"
    );
    for (url, expect) in [
        (
            format!("zk://127.0.0.1:1?ca={}", enc(&pki.ca())),
            "need zks://",
        ),
        ("zks://127.0.0.1:1".to_owned(), "needs `ca=`"),
    ] {
        let err = ZkOptions::from_url(&url).unwrap_err();
        assert!(matches!(err, Error::UnsupportedUrl { .. }), "{err:?}");
        assert!(err.to_string().contains(expect), "{url}: {err}");
    }
}

/// A lease whose first TLS connection fails is still granted within the
/// grant's budget (a third of a 3 s TTL). Telling a refused certificate
/// from a lost connection takes a test handshake that waits up to a second
/// for the server to speak; the retry runs beside it, not after it (the
/// CLI, which gives up on a failed first grant, exited when it waited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_first_tls_connection_fails_is_granted_within_its_budget() {
    let pki = TestPki::generate().unwrap();
    let server = tls_server(&pki).await;
    let client = pki.client("tenure").unwrap();
    let proxy = Proxy::start(server.secure_connect_string().parse().unwrap())
        .await
        .unwrap();
    let root = common::unique_root("tls-retry");
    let hosts = proxy.local_addr().to_string();
    let backend: DynBackend = Arc::new(
        connect_url(&url(&hosts, &root, &pki.ca(), Some(&client)))
            .await
            .unwrap(),
    );

    let before = proxy.accepted_connections();
    proxy.drop_next(1);
    let session = tokio::time::timeout(
        GUARD,
        Session::builder(backend.clone())
            .ttl(Duration::from_secs(3))
            .start(),
    )
    .await
    .expect("the grant answers");
    let session = session.unwrap_or_else(|e| panic!("grant after one lost connection: {e}"));
    // The lost connection, then the one that opened the session.
    assert!(proxy.accepted_connections() >= before + 2);
    assert!(session.is_alive());
    session.close().await;
}
