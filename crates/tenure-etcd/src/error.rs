//! The one place where etcd-client errors become tenure errors.

use std::sync::Arc;
use std::time::Duration;

use tenure_core::{Error, LeaseId};
use tonic::Code;

/// Backend kind, as it appears in every error.
pub(crate) const KIND: &str = "etcd";

/// An etcd-client error with what we were doing when it happened.
#[derive(Debug)]
pub(crate) struct EtcdError {
    /// The operation (`"create"`, `"keep-alive"`, ...).
    pub(crate) operation: &'static str,
    /// The endpoint(s) of the client.
    pub(crate) endpoint: String,
    /// The lease the request was about, so that "lease not found" becomes
    /// [`Error::LeaseExpired`] naming it.
    pub(crate) lease: Option<LeaseId>,
    /// The client's error.
    pub(crate) source: etcd_client::Error,
}

/// What kind of failure a client error is.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    Unreachable,
    /// A TLS failure retrying cannot fix, in words.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Tls(String),
    Unauthenticated(String),
    LeaseGone,
    InvalidConfig(String),
    Other,
}

fn is_auth_message(msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    [
        "authentication failed",
        "invalid user id or password",
        "user name is empty",
        "user name not found",
        "invalid auth token",
        "permission denied",
        "auth: revision in header is old",
    ]
    .iter()
    .any(|needle| msg.contains(needle))
}

fn classify(e: &etcd_client::Error) -> Class {
    use etcd_client::Error as E;
    #[cfg(feature = "tls")]
    if let Some(reason) = tenure_core::tls::explain(e) {
        return Class::Tls(reason);
    }
    match e {
        E::GRpcStatus(status) => {
            let msg = status.message();
            if is_auth_message(msg)
                || matches!(
                    status.code(),
                    Code::Unauthenticated | Code::PermissionDenied
                )
            {
                return Class::Unauthenticated(msg.to_owned());
            }
            if msg.contains("lease not found") {
                return Class::LeaseGone;
            }
            match status.code() {
                Code::Unavailable => Class::Unreachable,
                // tonic reports connection failures as `Unknown` with a
                // transport message.
                Code::Unknown if msg.contains("transport") || msg.contains("connect") => {
                    Class::Unreachable
                }
                _ => Class::Other,
            }
        }
        E::TransportError(_) | E::IoError(_) => Class::Unreachable,
        E::LeaseKeepAliveError(msg) if msg.contains("lease not found") => Class::LeaseGone,
        E::InvalidArgs(msg) => Class::InvalidConfig(msg.clone()),
        E::InvalidUri(e) => Class::InvalidConfig(e.to_string()),
        _ => Class::Other,
    }
}

impl From<EtcdError> for Error {
    fn from(e: EtcdError) -> Self {
        match (classify(&e.source), e.lease) {
            (Class::Unreachable, _) => Error::Unreachable {
                backend: KIND,
                endpoint: e.endpoint,
                source: Box::new(e.source),
            },
            (Class::Tls(reason), _) => Error::Tls {
                backend: KIND,
                endpoint: e.endpoint,
                reason,
            },
            (Class::Unauthenticated(reason), _) => Error::Unauthenticated {
                backend: KIND,
                endpoint: e.endpoint,
                reason,
            },
            (Class::LeaseGone, Some(lease)) => Error::LeaseExpired { lease },
            (Class::InvalidConfig(reason), _) => Error::InvalidConfig {
                field: "endpoints",
                reason,
            },
            (Class::LeaseGone | Class::Other, _) => Error::Backend {
                backend: KIND,
                operation: e.operation,
                source: Box::new(e.source),
            },
        }
    }
}

/// The failure of a stream that many requests share (the keep-alive
/// stream of every lease on a connection), as each of its requests
/// reports it. It names no lease: a broken stream says nothing about
/// whether any one lease is alive, so it is never
/// [`Error::LeaseExpired`].
pub(crate) fn shared_stream(
    operation: &'static str,
    endpoint: &str,
    source: &Arc<etcd_client::Error>,
) -> Error {
    let shared = Box::new(SharedSource(Arc::clone(source)));
    match classify(source) {
        Class::Unreachable => Error::Unreachable {
            backend: KIND,
            endpoint: endpoint.to_owned(),
            source: shared,
        },
        Class::Tls(reason) => Error::Tls {
            backend: KIND,
            endpoint: endpoint.to_owned(),
            reason,
        },
        Class::Unauthenticated(reason) => Error::Unauthenticated {
            backend: KIND,
            endpoint: endpoint.to_owned(),
            reason,
        },
        Class::InvalidConfig(reason) => Error::InvalidConfig {
            field: "endpoints",
            reason,
        },
        Class::LeaseGone | Class::Other => Error::Backend {
            backend: KIND,
            operation,
            source: shared,
        },
    }
}

/// An etcd error shared by every request it ended.
#[derive(Debug)]
struct SharedSource(Arc<etcd_client::Error>);

impl std::fmt::Display for SharedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A request that got no answer within its deadline.
pub(crate) fn timeout(operation: &'static str, after: Duration) -> Error {
    Error::timed_out(KIND, operation, after)
}

/// The server answered something that breaks the protocol.
pub(crate) fn protocol(operation: &'static str, what: impl Into<String>) -> Error {
    Error::unusable_answer(KIND, operation, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(source: etcd_client::Error, lease: Option<LeaseId>) -> Error {
        EtcdError {
            operation: "test",
            endpoint: "http://127.0.0.1:1".into(),
            lease,
            source,
        }
        .into()
    }

    #[test]
    fn auth_failures_are_unauthenticated() {
        let e = convert(
            etcd_client::Error::GRpcStatus(tonic::Status::invalid_argument(
                "etcdserver: authentication failed, invalid user ID or password",
            )),
            None,
        );
        assert!(matches!(e, Error::Unauthenticated { .. }), "{e}");
    }

    #[test]
    fn lease_not_found_is_lease_expired_when_the_lease_is_known() {
        let status = || {
            etcd_client::Error::GRpcStatus(tonic::Status::not_found(
                "etcdserver: requested lease not found",
            ))
        };
        assert!(matches!(
            convert(status(), Some(LeaseId(7))),
            Error::LeaseExpired { lease: LeaseId(7) }
        ));
        assert!(matches!(convert(status(), None), Error::Backend { .. }));
    }

    #[test]
    fn unavailable_is_unreachable_and_names_the_endpoint() {
        let e = convert(
            etcd_client::Error::GRpcStatus(tonic::Status::unavailable("connection refused")),
            None,
        );
        assert!(matches!(e, Error::Unreachable { .. }));
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }
}
