//! A candidate whose role does not cover the election's prefix gets a
//! typed, permanent error at once: from `campaign`, from `run`, never a
//! retry loop.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

mod common;

use std::sync::Arc;
use std::time::Duration;

use tenure_core::{Callbacks, DynBackend, Election, Error};
use tenure_etcd::{EtcdBackend, EtcdOptions};
use tenure_testkit::counting::Counting;
use tenure_testkit::etcd_server::EtcdServer;
use tokio_util::sync::CancellationToken;

/// Only a hang guard: every call below answers in milliseconds.
const GUARD: Duration = Duration::from_secs(30);

/// etcd with auth on: `root`, and `app` whose role may read and write
/// `allowed/` only.
async fn server_with_roles() -> EtcdServer {
    let server = common::server().await;
    server
        .enable_auth_with_prefix_user("app", "apppw", "allowed/")
        .await
        .unwrap();
    server
}

async fn app_backend(server: &EtcdServer, prefix: &str) -> Counting {
    let b = EtcdBackend::connect(
        EtcdOptions::new([server.endpoint()])
            .prefix(prefix)
            .user("app", "apppw")
            .connect_timeout(Duration::from_secs(3))
            .request_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    Counting::new(Arc::new(b))
}

/// The election every test here campaigns in.
fn jobs(backend: DynBackend) -> Election {
    Election::builder(backend, "jobs")
        .ttl(Duration::from_secs(2))
        .build()
        .unwrap()
}

fn expect_permission_denied(err: &Error, endpoint: &str) {
    assert!(
        matches!(
            err,
            Error::Unauthenticated {
                backend: "etcd",
                ..
            }
        ),
        "expected Unauthenticated, got {err:?}"
    );
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains(endpoint), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_outside_the_role_is_refused_once_typed() {
    let server = server_with_roles().await;
    let counting = app_backend(&server, "forbidden/").await;
    let election = jobs(Arc::new(counting.clone()));
    let err = tokio::time::timeout(GUARD, election.campaign("a"))
        .await
        .expect("campaign hung")
        .unwrap_err();
    expect_permission_denied(&err, &server.endpoint());
    // The create was sent, refused, and not tried again.
    assert_eq!(counting.counts().writes, 1, "{:?}", counting.counts());

    // The same role inside its prefix campaigns fine (the refusal was
    // about the prefix, not the credentials).
    let ok = jobs(Arc::new(app_backend(&server, "allowed/").await));
    let l = tokio::time::timeout(GUARD, ok.campaign("a"))
        .await
        .expect("campaign hung")
        .unwrap();
    assert!(l.is_leader());
    let _ = l.resign().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_a_permission_error_at_once() {
    let server = server_with_roles().await;
    let counting = app_backend(&server, "forbidden/").await;
    let election = jobs(Arc::new(counting.clone()));
    let shutdown = CancellationToken::new();
    let err = tokio::time::timeout(GUARD, election.run("a", Callbacks::new(), shutdown))
        .await
        .expect("run kept retrying a permanent error")
        .unwrap_err();
    expect_permission_denied(&err, &server.endpoint());
    assert_eq!(counting.counts().writes, 1, "{:?}", counting.counts());
}
