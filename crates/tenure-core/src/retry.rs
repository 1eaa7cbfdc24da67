//! Establishing a connection or session, retried with jittered back-off
//! until the connect timeout runs out: [`ConnectRetry`].
//!
//! Every backend opens its connections through this one loop, so that a
//! burst of candidates starting at once (a slow handshake, a connection
//! the server closed while it was busy, a refused port during a restart)
//! is ridden out the same way everywhere, and gives up the same way: with
//! [`Error::Unreachable`] naming the endpoint, the number of attempts and
//! the last cause ([`ConnectFailed`]).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use crate::{Backoff, BoxError, Error, Result};

/// The back-off between connection attempts: full jitter over a window
/// that starts at 50 ms and doubles up to 1 s. Candidates that failed
/// together retry spread over the window instead of all at once.
pub const CONNECT_BACKOFF: Backoff = Backoff::RETRY;

/// How one connection attempt failed.
#[derive(Debug)]
pub enum AttemptError {
    /// Worth another attempt (refused, closed during the handshake, no
    /// answer in time, no host available): the cause is kept for the
    /// final error.
    Transient(BoxError),
    /// Will not go away by retrying (bad credentials, bad configuration):
    /// returned at once.
    Permanent(Error),
}

/// The cause carried by [`Error::Unreachable`] once the connect timeout
/// has run out: how many attempts were made within which bound, and what
/// the last one said (also its [`source`](std::error::Error::source)).
#[derive(Debug)]
pub struct ConnectFailed {
    /// Attempts made.
    pub attempts: u32,
    /// The connect timeout that bounded them.
    pub timeout: Duration,
    /// What the last attempt failed with.
    pub last: BoxError,
}

impl std::fmt::Display for ConnectFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "no connection after {} attempt{plural} within the connect timeout of {:?}; last: {}",
            self.attempts, self.timeout, self.last
        )
    }
}

impl std::error::Error for ConnectFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.last.as_ref())
    }
}

/// Runs connection attempts against one endpoint until one succeeds, one
/// fails for good, or the connect timeout runs out.
///
/// Each attempt is bounded by the time left; between attempts the loop
/// sleeps a delay drawn from the [`Backoff`] (by default
/// [`CONNECT_BACKOFF`]), and stops early when that delay would reach the
/// deadline. The whole call never takes much longer than the timeout.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use tenure_core::retry::{AttemptError, ConnectRetry};
///
/// let retry = ConnectRetry::new("demo", "127.0.0.1:1", Duration::from_millis(200));
/// let r: tenure_core::Result<()> = retry
///     .run(|_attempt| async { Err(AttemptError::Transient("refused".into())) })
///     .await;
/// let message = r.unwrap_err().to_string();
/// assert!(message.contains("127.0.0.1:1") && message.contains("last: refused"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectRetry {
    backend: &'static str,
    endpoint: String,
    timeout: Duration,
    backoff: Backoff,
}

impl ConnectRetry {
    /// Attempts against `endpoint` of backend kind `backend`, bounded by
    /// `timeout` in all.
    pub fn new(backend: &'static str, endpoint: impl Into<String>, timeout: Duration) -> Self {
        ConnectRetry {
            backend,
            endpoint: endpoint.into(),
            timeout,
            backoff: CONNECT_BACKOFF,
        }
    }

    /// Replaces the back-off between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The overall bound.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Calls `attempt(n)` (`n` counts from 0) until it succeeds.
    ///
    /// # Errors
    /// The error of an attempt that failed with
    /// [`AttemptError::Permanent`], at once; otherwise, once the timeout
    /// has run out, [`Error::Unreachable`] naming the endpoint, whose
    /// source is a [`ConnectFailed`] with the number of attempts and the
    /// last cause.
    pub async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = std::result::Result<T, AttemptError>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut rng = fastrand::Rng::new();
        let mut n: u32 = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = tokio::time::timeout(left, attempt(n)).await;
            n = n.saturating_add(1);
            let cause = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(AttemptError::Permanent(e))) => return Err(e),
                Ok(Err(AttemptError::Transient(cause))) => cause,
                Err(_) => format!("attempt {n} got no answer within the {left:?} left").into(),
            };
            let delay = self.backoff.delay_from(n - 1, &mut rng);
            if Instant::now() + delay >= deadline {
                return Err(self.exhausted(n, cause));
            }
            debug!(
                backend = self.backend,
                endpoint = %self.endpoint,
                attempt = n,
                error = %cause,
                retry_in = ?delay,
                "connection attempt failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    fn exhausted(&self, attempts: u32, last: BoxError) -> Error {
        Error::Unreachable {
            backend: self.backend,
            endpoint: self.endpoint.clone(),
            source: Box::new(ConnectFailed {
                attempts,
                timeout: self.timeout,
                last,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn retry(timeout: Duration) -> ConnectRetry {
        ConnectRetry::new("test", "h:1", timeout)
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_one_succeeds() {
        let calls = AtomicU32::new(0);
        let r = retry(Duration::from_secs(5))
            .run(|n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        Err(AttemptError::Transient("closed".into()))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_end_at_once() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let r: Result<()> = retry(Duration::from_secs(5))
            .run(|_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    Err(AttemptError::Permanent(Error::InvalidConfig {
                        field: "x",
                        reason: "bad".into(),
                    }))
                }
            })
            .await;
        assert!(matches!(r, Err(Error::InvalidConfig { field: "x", .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_within_the_timeout_naming_endpoint_attempts_and_cause() {
        let timeout = Duration::from_secs(3);
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let r: Result<()> = retry(timeout)
            .run(|n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { Err(AttemptError::Transient(format!("refused #{n}").into())) }
            })
            .await;
        assert!(started.elapsed() <= timeout, "{:?}", started.elapsed());
        let attempts = calls.load(Ordering::SeqCst);
        assert!(attempts >= 3, "retried with back-off: {attempts}");
        let e = r.unwrap_err();
        assert!(e.is_transient());
        let Error::Unreachable { source, .. } = &e else {
            panic!("{e:?}")
        };
        let failed = source
            .downcast_ref::<ConnectFailed>()
            .expect("ConnectFailed");
        assert_eq!(failed.attempts, attempts);
        let text = e.to_string();
        assert!(text.contains("h:1"), "{text}");
        assert!(
            text.contains(&format!("after {attempts} attempts")),
            "{text}"
        );
        assert!(
            text.contains(&format!("last: refused #{}", attempts - 1)),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_is_cut_at_the_deadline() {
        let timeout = Duration::from_secs(2);
        let started = Instant::now();
        let r: Result<()> = retry(timeout).run(|_| std::future::pending()).await;
        assert_eq!(started.elapsed(), timeout);
        let text = r.unwrap_err().to_string();
        assert!(text.contains("after 1 attempt "), "{text}");
        assert!(text.contains("no answer"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn delays_spread_and_stay_within_the_backoff_window() {
        let times = std::sync::Mutex::new(Vec::new());
        let _: Result<()> = retry(Duration::from_secs(10))
            .run(|_| {
                times.lock().unwrap().push(Instant::now());
                async { Err(AttemptError::Transient("x".into())) }
            })
            .await;
        let times = times.into_inner().unwrap();
        for (i, w) in times.windows(2).enumerate() {
            let gap = w[1] - w[0];
            assert!(gap <= CONNECT_BACKOFF.window(i as u32), "gap {i}: {gap:?}");
        }
    }
}
