//! The one place where zookeeper-client errors become tenure errors.

use std::time::Duration;

use tenure_core::{Error, LeaseId};
use zookeeper_client as zk;

/// Backend kind, as it appears in every error.
pub(crate) const KIND: &str = "zookeeper";

/// What we were doing when a client error happened.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    /// The operation (`"create"`, `"keep-alive"`, ...).
    pub(crate) operation: &'static str,
    /// The connect string.
    pub(crate) endpoint: &'a str,
    /// The lease (session) the request ran on, so that an expired or
    /// closed session becomes [`Error::LeaseExpired`] naming it.
    pub(crate) lease: Option<LeaseId>,
}

impl Ctx<'_> {
    /// Converts a client error.
    pub(crate) fn error(&self, e: zk::Error) -> Error {
        use zk::Error as E;
        match e {
            E::SessionExpired | E::ClientClosed | E::SessionMoved if self.lease.is_some() => {
                Error::LeaseExpired {
                    lease: self.lease.unwrap_or(LeaseId(0)),
                }
            }
            E::NoAuth => Error::Unauthenticated {
                backend: KIND,
                endpoint: self.endpoint.to_owned(),
                reason: format!(
                    "{}: not authorized by the node's ACL (wrong or missing digest credentials?)",
                    self.operation
                ),
            },
            E::AuthFailed => Error::Unauthenticated {
                backend: KIND,
                endpoint: self.endpoint.to_owned(),
                reason: format!("{}: authentication failed", self.operation),
            },
            // `Custom`: the client's own connection failures (I/O errors,
            // "no response from connection").
            E::ConnectionLoss | E::NoHosts | E::Timeout | E::Custom(_) => Error::Unreachable {
                backend: KIND,
                endpoint: self.endpoint.to_owned(),
                source: Box::new(e),
            },
            E::BadArguments(reason) => Error::InvalidConfig {
                field: "path",
                reason: format!("{}: {reason}", self.operation),
            },
            E::InvalidAcl => Error::InvalidConfig {
                field: "acl",
                reason: format!("{}: the server rejected the ACL", self.operation),
            },
            other => Error::Backend {
                backend: KIND,
                operation: self.operation,
                source: Box::new(other),
            },
        }
    }
}

/// A request that got no answer within its deadline.
pub(crate) fn timeout(operation: &'static str, after: Duration) -> Error {
    Error::timed_out(KIND, operation, after)
}

/// The server answered something we cannot use.
pub(crate) fn protocol(operation: &'static str, what: impl Into<String>) -> Error {
    Error::unusable_answer(KIND, operation, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(lease: Option<LeaseId>) -> Ctx<'static> {
        Ctx {
            operation: "test",
            endpoint: "127.0.0.1:1",
            lease,
        }
    }

    #[test]
    fn expired_sessions_are_expired_leases_only_for_lease_requests() {
        assert!(matches!(
            ctx(Some(LeaseId(7))).error(zk::Error::SessionExpired),
            Error::LeaseExpired { lease: LeaseId(7) }
        ));
        assert!(matches!(
            ctx(None).error(zk::Error::SessionExpired),
            Error::Backend { .. }
        ));
    }

    #[test]
    fn acl_denial_is_unauthenticated_and_connection_loss_unreachable() {
        let e = ctx(None).error(zk::Error::NoAuth);
        assert!(matches!(e, Error::Unauthenticated { .. }), "{e}");
        assert!(!e.is_transient());
        let e = ctx(None).error(zk::Error::ConnectionLoss);
        assert!(matches!(e, Error::Unreachable { .. }));
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }
}
