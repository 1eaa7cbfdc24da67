//! The driver's one source of time: tokio's clock (so tests can pause it),
//! handed to the machines as `std::time::Instant`.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Now, on tokio's clock.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until `at` (forever when `None`).
pub(crate) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Runs a backend request with a deadline, turning the timeout into a
/// typed [`Error::Timeout`].
pub(crate) async fn with_timeout<T>(
    backend: &'static str,
    operation: &'static str,
    after: Duration,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(after, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            backend,
            operation,
            after,
        }),
    }
}
