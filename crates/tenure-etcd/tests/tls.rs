//! etcd over TLS with client certificates (`--client-cert-auth`), with
//! certificates generated for each test: what works, and what fails at
//! once with a typed error naming the cause.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)] // test helpers may unwrap

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tenure_core::{DynBackend, Election, Error};
use tenure_etcd::{EtcdBackend, EtcdOptions};
use tenure_testkit::conformance::{self as suite, Capabilities};
use tenure_testkit::etcd_server::EtcdServer;
use tenure_testkit::pki::{self, CertFiles, TestPki, SERVER_NAME};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Only a hang guard: each step below answers in milliseconds.
const GUARD: Duration = Duration::from_secs(30);

async fn tls_server(pki: &TestPki) -> EtcdServer {
    EtcdServer::start_tls(pki)
        .await
        .unwrap_or_else(|e| panic!("cannot start etcd with TLS: {e}"))
}

/// `host:port` of the server.
fn host_port(server: &EtcdServer) -> String {
    server.endpoint().trim_start_matches("https://").to_owned()
}

fn enc(path: &Path) -> String {
    // Test paths hold no `&`, `=` or `%`.
    path.display().to_string()
}

/// An `etcds://` URL for `host` with the CA of `ca` and, when given, a
/// client certificate, plus `extra` options.
fn url(host: &str, ca: &Path, client: Option<&CertFiles>, extra: &str) -> String {
    let mut url = format!(
        "etcds://{host}/app/?ca={}&connect_timeout={}ms",
        enc(ca),
        CONNECT_TIMEOUT.as_millis()
    );
    if let Some(c) = client {
        url.push_str(&format!("&cert={}&key={}", enc(&c.cert), enc(&c.key)));
    }
    url.push_str(extra);
    url
}

async fn connect_url(url: &str) -> tenure_core::Result<EtcdBackend> {
    EtcdBackend::connect(EtcdOptions::from_url(url)?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_campaign_observe_and_guarded_write() {
    let pki = TestPki::generate().unwrap();
    let server = tls_server(&pki).await;
    let client = pki.client("tenure").unwrap();
    let url = url(&host_port(&server), &pki.ca(), Some(&client), "");
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
    // The observer sees node-a lead (it may first see nobody).
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
    let rev = leadership.guarded_put("config", "v1").await.unwrap();
    assert!(rev > 0);
    let stored = backend.get("config").await.unwrap().0.unwrap();
    assert_eq!(&stored.value[..], b"v1");
    // The write went over TLS into the prefix, as etcdctl sees it.
    let out = server
        .etcdctl(&["get", "app/config", "--print-value-only"])
        .await
        .unwrap();
    assert_eq!(out.trim(), "v1");
    let _ = leadership.resign().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_over_mtls() {
    let pki = TestPki::generate().unwrap();
    let server = tls_server(&pki).await;
    let client = pki.client("tenure").unwrap();
    let url = url(&host_port(&server), &pki.ca(), Some(&client), "");
    let backend: DynBackend = Arc::new(connect_url(&url).await.unwrap());
    let caps = Capabilities::for_backend(&*backend);
    suite::run_all(backend, caps).await;
}

/// The expected server name can be given when the host in the URL is not
/// in the certificate; verification stays on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_name_names_the_expected_certificate() {
    let pki = TestPki::generate().unwrap();
    let server = tls_server(&pki).await;
    let client = pki.client("tenure").unwrap();
    let port = host_port(&server).rsplit(':').next().unwrap().to_owned();
    let by_localhost = format!("localhost:{port}");
    let named = url(
        &by_localhost,
        &pki.ca(),
        Some(&client),
        &format!("&server_name={SERVER_NAME}"),
    );
    connect_url(&named).await.unwrap();
}

/// Every refused certificate is an [`Error::Tls`] naming the cause,
/// returned well within the connect timeout (no retry loop), and never
/// mistaken for a network failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_certificates_are_typed_errors_within_the_connect_timeout() {
    let pki = TestPki::generate().unwrap();
    let server = tls_server(&pki).await;
    let host = host_port(&server);
    let port = host.rsplit(':').next().unwrap().to_owned();
    let expired = pki.expired_client("tenure").unwrap();
    let foreign = pki.foreign_client("tenure").unwrap();
    let good = pki.client("tenure").unwrap();
    let cases = [
        (
            "no client certificate",
            url(&host, &pki.ca(), None, ""),
            "requires a client certificate",
        ),
        (
            "a client certificate from another CA",
            url(&host, &pki.ca(), Some(&foreign), ""),
            "refused the client certificate",
        ),
        (
            "an expired client certificate",
            url(&host, &pki.ca(), Some(&expired), ""),
            "refused the client certificate",
        ),
        (
            "a server certificate from a CA we do not trust",
            url(&host, &pki.other_ca(), Some(&good), ""),
            "not signed by a trusted CA",
        ),
        (
            "a host the server certificate does not name",
            url(&format!("localhost:{port}"), &pki.ca(), Some(&good), ""),
            "does not name the host",
        ),
        (
            "an expected server name the certificate does not hold",
            url(
                &host,
                &pki.ca(),
                Some(&good),
                "&server_name=other.tenure.test",
            ),
            "does not name the host",
        ),
    ];
    pki::assert_refused_by_tls("etcd", &cases, CONNECT_TIMEOUT, GUARD, |u| async move {
        connect_url(&u).await
    })
    .await;
}

/// A malformed or missing PEM file fails before any connection, naming
/// the file; so does a missing password file.
#[tokio::test]
async fn unreadable_files_are_named_in_typed_errors() {
    let pki = TestPki::generate().unwrap();
    let garbage = pki.dir().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = pki.dir().join("missing.pem");
    let client = pki.client("tenure").unwrap();
    for (url, path, what) in [
        (
            url("127.0.0.1:1", &garbage, None, ""),
            &garbage,
            "CA certificate",
        ),
        (
            url("127.0.0.1:1", &missing, None, ""),
            &missing,
            "CA certificate",
        ),
        (
            format!(
                "etcds://127.0.0.1:1?ca={}&cert={}&key={}",
                enc(&pki.ca()),
                enc(&client.cert),
                enc(&client.cert)
            ),
            &client.cert,
            "client key",
        ),
        (
            format!(
                "etcd://127.0.0.1:1?user=app&password_file={}",
                enc(&missing)
            ),
            &missing,
            "password",
        ),
    ] {
        let err = EtcdOptions::from_url(&url).unwrap_err();
        match &err {
            Error::CredentialFile {
                what: w, path: p, ..
            } => {
                assert_eq!(w, &what, "{err}");
                assert_eq!(p, path, "{err}");
            }
            other => panic!("{url}: expected CredentialFile, got {other:?}"),
        }
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }
}

/// Least privilege over mutual TLS: etcd takes the client certificate's
/// common name as the user, so a certificate named `app` gets exactly
/// the role of user `app` (read and write under `allowed/`), with no
/// password anywhere. Outside its prefix a campaign fails at once with a
/// typed permission error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_identity_gets_its_role_and_nothing_more() {
    let pki = TestPki::generate().unwrap();
    let server = tls_server(&pki).await;
    server
        .enable_auth_with_prefix_user("app", "unused-password", "allowed/")
        .await
        .unwrap();
    let app = pki.client("app").unwrap();
    let host = host_port(&server);
    let connect = |prefix: &str| {
        let url = format!(
            "etcds://{host}/{prefix}?ca={}&cert={}&key={}",
            enc(&pki.ca()),
            enc(&app.cert),
            enc(&app.key)
        );
        async move { connect_url(&url).await.unwrap() }
    };
    let allowed = Election::builder(Arc::new(connect("allowed/").await), "jobs")
        .ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    let l = tokio::time::timeout(GUARD, allowed.campaign("a"))
        .await
        .expect("campaign hung")
        .unwrap();
    assert!(l.is_leader());
    let _ = l.resign().await;

    let counting = tenure_testkit::counting::Counting::new(Arc::new(connect("forbidden/").await));
    let forbidden = Election::builder(Arc::new(counting.clone()), "jobs")
        .ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    let err = tokio::time::timeout(GUARD, forbidden.campaign("a"))
        .await
        .expect("campaign hung")
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
    assert!(!err.is_transient());
    assert_eq!(counting.counts().writes, 1, "{:?}", counting.counts());
}
