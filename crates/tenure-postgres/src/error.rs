//! The one place where driver errors become tenure errors.

use std::time::Duration;

use tenure_core::Error;
use tokio_postgres::error::SqlState;

/// Backend kind, as it appears in every error.
pub(crate) const KIND: &str = "postgres";

/// Maps a driver error of `operation` against `endpoint`.
///
/// Permanent by SQLSTATE: refused credentials and missing privileges
/// ([`Error::Unauthenticated`]), a missing database or a read-only server
/// ([`Error::InvalidConfig`]). The connection closing, the server shutting
/// down or terminating our session, and I/O errors are
/// [`Error::Unreachable`]. The rest (serialization failures, deadlocks,
/// anything unknown) is [`Error::Backend`], which is retried.
pub(crate) fn map(operation: &'static str, endpoint: &str, e: tokio_postgres::Error) -> Error {
    let unreachable = |e: tokio_postgres::Error| Error::Unreachable {
        backend: KIND,
        endpoint: endpoint.to_owned(),
        source: Box::new(e),
    };
    let Some(code) = e.code().cloned() else {
        // No SQLSTATE: the connection closed, an I/O error, or a message
        // the driver could not parse.
        if e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
        {
            return unreachable(e);
        }
        return Error::Backend {
            backend: KIND,
            operation,
            source: Box::new(e),
        };
    };
    let message = e
        .as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string());
    if code == SqlState::INVALID_PASSWORD
        || code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        || code == SqlState::INSUFFICIENT_PRIVILEGE
    {
        return Error::Unauthenticated {
            backend: KIND,
            endpoint: endpoint.to_owned(),
            reason: format!("{message} (SQLSTATE {})", code.code()),
        };
    }
    if code == SqlState::INVALID_CATALOG_NAME {
        return Error::InvalidConfig {
            field: "dbname",
            reason: message,
        };
    }
    if code == SqlState::READ_ONLY_SQL_TRANSACTION {
        return Error::InvalidConfig {
            field: "host",
            reason: format!(
                "the server is read-only ({message}): tenure needs the primary; \
                 add target_session_attrs=read-write to the URL when it lists several hosts"
            ),
        };
    }
    if code == SqlState::ADMIN_SHUTDOWN
        || code == SqlState::CRASH_SHUTDOWN
        || code == SqlState::CANNOT_CONNECT_NOW
        || code == SqlState::TOO_MANY_CONNECTIONS
        || code.code().starts_with("08")
    {
        return unreachable(e);
    }
    Error::Backend {
        backend: KIND,
        operation,
        source: Box::new(e),
    }
}

/// A request that did not answer within the request timeout.
pub(crate) fn timeout(operation: &'static str, after: Duration) -> Error {
    Error::timed_out(KIND, operation, after)
}

/// An answer that breaks what tenure's functions promise.
pub(crate) fn protocol(operation: &'static str, reason: impl Into<String>) -> Error {
    Error::Protocol {
        operation,
        reason: reason.into(),
    }
}
