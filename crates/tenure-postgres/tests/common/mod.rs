//! Helpers shared by the PostgreSQL integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use tenure_core::DynBackend;
use tenure_postgres::{PostgresBackend, PostgresOptions};
use tenure_testkit::pg_server::PgServer;

/// Starts a fresh server (panics with the harness's message, e.g. "run
/// scripts/install-deps.sh", when it cannot).
pub async fn server() -> PgServer {
    PgServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start postgres: {e}"))
}

/// The options of a test connection to `url`.
pub fn options(url: &str) -> PostgresOptions {
    PostgresOptions::from_url(url)
        .unwrap_or_else(|e| panic!("{e}"))
        .connect_timeout(Duration::from_secs(10))
        .request_timeout(Duration::from_secs(3))
}

/// Connects a backend (its own connections) to `url`.
pub async fn connect(url: &str) -> PostgresBackend {
    PostgresBackend::connect(options(url))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// As [`connect`], type-erased.
pub async fn dyn_backend(url: &str) -> DynBackend {
    Arc::new(connect(url).await)
}

#[allow(unused_imports)] // not every test binary polls
pub use tenure_testkit::counting::eventually;
