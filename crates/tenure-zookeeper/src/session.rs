//! Opening ZooKeeper sessions: one attempt per host list with a bounded
//! handshake, retried with back-off until the connect timeout, and what a
//! test handshake finds when every attempt failed.

use std::time::Duration;

use tenure_core::retry::{AttemptError, ConnectFailed};
use tenure_core::{ConnectRetry, Error, Result};
use zookeeper_client as zk;

use crate::error::{Ctx, KIND};
use crate::options::ZkOptions;
use crate::probe;

/// The longest a session's connection may stay silent before the client
/// gives up on it and tries again. zookeeper-client's default is 2/5 of
/// the session timeout: 4 s for the 10 s shared session, so a
/// reconnection that reached a server still starting up (connection
/// accepted, never answered) stalled every read for 4 s after a server
/// restart (found by the fault campaign). The client pings every 3/8 of
/// this, so a live connection is never silent that long.
///
/// The first attempt at opening a session has the same bound: a
/// handshake left unanswered that long is given up, and the next host (or
/// the same, after a back-off) is tried while the connect timeout lasts.
/// Later attempts wait longer: see [`handshake_timeout`].
pub(crate) const MAX_SILENCE: Duration = Duration::from_secs(1);

/// How long attempt `attempt` (from 0) at opening a session with
/// `session_timeout` waits for a silent server: [`MAX_SILENCE`], doubled
/// on each later attempt, never more than 2/5 of the session timeout.
///
/// A server that answers handshakes in more than a second (a burst of
/// new sessions on a machine short of CPU) would otherwise never be
/// waited for: every attempt would give up just before its answer, and
/// send the server one more handshake to work through. A frozen host
/// among several is still passed over after a second on the first
/// attempt.
///
/// zookeeper-client keeps the bound for the session's life (it pings at
/// 3/8 of it): the cap keeps at least two pings within the session
/// timeout, so a session opened on a later attempt is never expired by a
/// server that does answer. Such a session notices a dead connection
/// later (up to the bound) than one opened at once.
pub(crate) fn handshake_timeout(session_timeout: Duration, attempt: u32) -> Duration {
    let grown = MAX_SILENCE.saturating_mul(1 << attempt.min(8));
    (session_timeout * 2 / 5).min(grown)
}

/// The retry loop of every session opened with `options`.
pub(crate) fn connect_retry(options: &ZkOptions) -> ConnectRetry {
    ConnectRetry::new(KIND, options.connect.clone(), options.connect_timeout)
}

/// Opens one session with `session_timeout`, retrying failed attempts
/// with back-off until the connect timeout runs out.
///
/// # Errors
/// [`Error::Unreachable`] (endpoint, attempts, last cause, and what a
/// test handshake found) after the connect timeout; [`Error::InvalidConfig`]
/// for a bad connect string, [`Error::Unauthenticated`] when the server
/// rejects the credentials, at once.
pub(crate) async fn open_session(
    options: &ZkOptions,
    session_timeout: Duration,
) -> Result<zk::Client> {
    match connect_retry(options)
        .run(|attempt| session_attempt(options, session_timeout, attempt))
        .await
    {
        Ok(client) => Ok(client),
        Err(e) => Err(diagnosed(e, options).await),
    }
}

/// The TLS settings of the backend's own handshakes with the servers.
///
/// # Errors
/// [`Error::InvalidConfig`] when the certificates cannot be used.
pub(crate) fn probe_tls(options: &ZkOptions) -> Result<Option<probe::ProbeTls>> {
    #[cfg(feature = "tls")]
    return crate::tls::rustls_config(options);
    #[cfg(not(feature = "tls"))]
    {
        let _ = options;
        Ok(None)
    }
}

/// Runs `attempt`; when it fails in a way worth retrying, finds out
/// whether TLS is why (a certificate refused on either side: permanent).
///
/// Without TLS nothing needs telling: the failure is transient, and the
/// retry loop backs off before the next attempt. With TLS, telling takes
/// a test handshake that may wait up to a second for the server to speak,
/// longer than a short lease's grant may take; so a second attempt runs
/// beside it at once. What that attempt opens is kept (the test
/// handshake is dropped); a refusal the test handshake finds is returned;
/// when both fail, the later cause is kept.
pub(crate) async fn checked<T, F>(
    options: &ZkOptions,
    attempt: impl Fn() -> F,
) -> std::result::Result<T, AttemptError>
where
    F: std::future::Future<Output = std::result::Result<T, AttemptError>>,
{
    let cause = match attempt().await {
        Err(AttemptError::Transient(cause)) => cause,
        settled => return settled,
    };
    #[cfg(feature = "tls")]
    if options.tls.is_some() {
        let (diagnosis, again) = (crate::tls::failure(options), attempt());
        tokio::pin!(diagnosis, again);
        return tokio::select! {
            found = &mut diagnosis => match found {
                Some(e) => Err(AttemptError::Permanent(e)),
                None => again.await,
            },
            result = &mut again => match result {
                Err(AttemptError::Transient(later)) => match diagnosis.await {
                    Some(e) => Err(AttemptError::Permanent(e)),
                    None => Err(AttemptError::Transient(later)),
                },
                settled => settled,
            },
        };
    }
    #[cfg(not(feature = "tls"))]
    let _ = options;
    Err(AttemptError::Transient(cause))
}

/// zookeeper-client's one word for "every host failed" (the real cause
/// goes to its log only): the cause of an attempt that ended so.
#[derive(Debug)]
struct NoHostAvailable {
    handshake_timeout: Duration,
}

impl std::fmt::Display for NoHostAvailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no available hosts (each refused the connection, closed it, or left the \
             handshake unanswered for {:?})",
            self.handshake_timeout
        )
    }
}

impl std::error::Error for NoHostAvailable {}

/// Attempt `attempt` (from 0) at opening a session: every host of the
/// connect string tried once (`with_fail_eagerly`), each handshake given
/// up after [`handshake_timeout`] of silence; a transient failure is
/// checked for a TLS cause and, under TLS, tried once more beside the
/// check ([`checked`]).
pub(crate) async fn session_attempt(
    options: &ZkOptions,
    session_timeout: Duration,
    attempt: u32,
) -> std::result::Result<zk::Client, AttemptError> {
    let silence = handshake_timeout(session_timeout, attempt);
    checked(options, || connect_once(options, session_timeout, silence)).await
}

/// One connection attempt, its failure classified but not diagnosed.
async fn connect_once(
    options: &ZkOptions,
    session_timeout: Duration,
    handshake_timeout: Duration,
) -> std::result::Result<zk::Client, AttemptError> {
    let mut connector = zk::Client::connector()
        .with_session_timeout(session_timeout)
        .with_connection_timeout(handshake_timeout)
        .with_fail_eagerly();
    if let Some((user, password)) = &options.digest {
        connector = connector.with_auth("digest", format!("{user}:{password}").as_bytes());
    }
    let ctx = Ctx {
        operation: "connect",
        endpoint: &options.connect,
        lease: None,
    };
    #[cfg(feature = "tls")]
    let connected = match &options.tls {
        Some(pem) => {
            let tls = crate::tls::client_options(pem).map_err(AttemptError::Permanent)?;
            connector
                .with_tls(tls)
                .secure_connect(&options.connect)
                .await
        }
        None => connector.connect(&options.connect).await,
    };
    #[cfg(not(feature = "tls"))]
    let connected = connector.connect(&options.connect).await;
    match connected {
        Ok(client) => Ok(client),
        Err(zk::Error::BadArguments(reason)) => {
            Err(AttemptError::Permanent(Error::InvalidConfig {
                field: "connect",
                reason: format!("bad connect string {:?}: {reason}", options.connect),
            }))
        }
        Err(e @ zk::Error::AuthFailed) => Err(AttemptError::Permanent(ctx.error(e))),
        Err(zk::Error::NoHosts) => Err(AttemptError::Transient(Box::new(NoHostAvailable {
            handshake_timeout,
        }))),
        // Connection loss, a handshake cut short, a session the server
        // closed at once: the next attempt may well succeed (unless TLS
        // is why).
        Err(e) => Err(AttemptError::Transient(Box::new(e))),
    }
}

/// Adds to an [`Error::Unreachable`] whose retries ended on "no available
/// hosts" what one test handshake per host finds (a refused port, a
/// server closing connections beyond `maxClientCnxns`, a frozen server).
pub(crate) async fn diagnosed(e: Error, options: &ZkOptions) -> Error {
    let Error::Unreachable {
        backend,
        endpoint,
        source,
    } = e
    else {
        return e;
    };
    let source = match source.downcast::<ConnectFailed>() {
        Ok(mut failed) if failed.last.is::<NoHostAvailable>() => {
            let tls = probe_tls(options).ok().flatten();
            let found = probe::diagnose(&options.connect, MAX_SILENCE, tls.as_ref()).await;
            failed.last = format!("{}; a test handshake found {found}", failed.last).into();
            failed
        }
        Ok(failed) => failed,
        Err(other) => other,
    };
    Error::Unreachable {
        backend,
        endpoint,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_attempts_wait_longer_for_a_silent_server_within_the_cap() {
        let ten = Duration::from_secs(10);
        let waits: Vec<_> = (0..5).map(|n| handshake_timeout(ten, n)).collect();
        let s = Duration::from_secs;
        assert_eq!(waits, [s(1), s(2), s(4), s(4), s(4)]);
        // A short session keeps 2/5 of its timeout, however many attempts.
        let short = Duration::from_secs(1);
        assert_eq!(handshake_timeout(short, 0), Duration::from_millis(400));
        assert_eq!(
            handshake_timeout(short, u32::MAX),
            Duration::from_millis(400)
        );
    }
}
