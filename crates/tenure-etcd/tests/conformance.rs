//! The shared conformance suite against a real etcd server, with and
//! without a key prefix (namespace).

mod common;

use std::sync::Arc;
use std::time::Duration;

use tenure_etcd::{EtcdBackend, EtcdOptions};
use tenure_testkit::conformance::{self as suite, Capabilities};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let server = common::server().await;
    let backend = common::dyn_backend(&server.endpoint()).await;
    let caps = Capabilities::for_backend(&*backend);
    suite::run_all(backend, caps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_under_a_prefix() {
    let server = common::server().await;
    let backend = EtcdBackend::connect(
        EtcdOptions::new([server.endpoint()])
            .prefix("tenant-a/")
            .request_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let backend = Arc::new(backend);
    let caps = Capabilities::for_backend(&*backend);
    suite::run_all(backend, caps).await;
}
