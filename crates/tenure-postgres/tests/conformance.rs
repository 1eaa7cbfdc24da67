//! The shared conformance suite against a real PostgreSQL server, in the
//! default schema and in a schema of its own.

mod common;

use std::sync::Arc;

use tenure_testkit::conformance::{self as suite, Capabilities};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let server = common::server().await;
    let backend = common::dyn_backend(&server.url()).await;
    let caps = Capabilities::for_backend(&*backend);
    suite::run_all(backend, caps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_in_another_schema() {
    let server = common::server().await;
    let url = format!("{}?schema=tenant_a", server.url());
    let backend = Arc::new(common::connect(&url).await);
    let caps = Capabilities::for_backend(&*backend);
    suite::run_all(backend, caps).await;
}
