//! Helpers shared by the etcd integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use tenure_core::DynBackend;
use tenure_etcd::{EtcdBackend, EtcdOptions};
use tenure_testkit::etcd_server::EtcdServer;

/// Starts a fresh single-node server (panics with the harness's message,
/// e.g. "run scripts/install-deps.sh", when it cannot).
pub async fn server() -> EtcdServer {
    EtcdServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start etcd: {e}"))
}

/// Connects a backend (its own connection) to `endpoint`.
pub async fn connect(endpoint: &str) -> EtcdBackend {
    EtcdBackend::connect(
        EtcdOptions::new([endpoint])
            .connect_timeout(Duration::from_secs(3))
            .request_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot connect to {endpoint}: {e}"))
}

/// As [`connect`], type-erased.
pub async fn dyn_backend(endpoint: &str) -> DynBackend {
    Arc::new(connect(endpoint).await)
}

#[allow(unused_imports)] // not every test binary polls
pub use tenure_testkit::counting::eventually;
