//! Helpers shared by the ZooKeeper integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tenure_core::DynBackend;
use tenure_testkit::zk_server::ZkServer;
use tenure_zookeeper::{ZkBackend, ZkOptions};

/// The server shared by this test binary (panics with the harness's
/// message, e.g. "run scripts/install-deps.sh", when it cannot start).
pub async fn shared() -> &'static ZkServer {
    ZkServer::shared()
        .await
        .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"))
}

/// A fresh server of the test's own (for tests that kill or restart it).
pub async fn own_server() -> ZkServer {
    ZkServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"))
}

/// A root path unique to this process and call, so tests sharing a
/// server never see each other's nodes.
pub fn unique_root(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "/t-{}-{}-{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Options for `connect` with test-friendly timeouts.
pub fn options(connect: &str, root: &str) -> ZkOptions {
    ZkOptions::new(connect)
        .root(root)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(3))
}

/// Connects a backend (its own sessions) under `root`.
pub async fn connect(connect: &str, root: &str) -> ZkBackend {
    ZkBackend::connect(options(connect, root))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {connect}: {e}"))
}

/// As [`connect`], type-erased.
pub async fn dyn_backend(connect_string: &str, root: &str) -> DynBackend {
    Arc::new(connect(connect_string, root).await)
}

#[allow(unused_imports)] // not every test binary polls
pub use tenure_testkit::counting::eventually;
