//! The shared conformance suite against a real ZooKeeper server.
//!
//! ZooKeeper keeps no watch history, so the suite checks that a watch from
//! a past revision reports `HistoryLost` instead of replaying.

mod common;

use tenure_testkit::conformance::{self as suite, Capabilities};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let zk = common::shared().await;
    let backend = common::dyn_backend(&zk.connect_string(), &common::unique_root("conf")).await;
    let caps = Capabilities::for_backend(&*backend).without_history();
    suite::run_all(backend, caps).await;
}
