//! The one error type every tenure API returns.
//!
//! Backends keep their own private error types and convert into [`Error`]
//! at the trait boundary, so callers match on one enum whatever backend
//! they run on.

use std::time::Duration;

/// A boxed error from a backend's client library, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used throughout tenure.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in tenure.
///
/// Each variant names what was wrong (the offending input, the endpoint,
/// the operation) so that the message alone is enough to act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An election name the backends cannot hold.
    #[error("invalid election name {name:?}: {reason}")]
    InvalidElectionName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A TTL outside the range a backend (or tenure) accepts.
    #[error("TTL {ttl:?} is out of range: must be between {min:?} and {max:?}")]
    InvalidTtl {
        /// The rejected TTL.
        ttl: Duration,
        /// Smallest accepted TTL.
        min: Duration,
        /// Largest accepted TTL.
        max: Duration,
    },

    /// A configuration value that is invalid on its own or with others.
    #[error("invalid configuration for `{field}`: {reason}")]
    InvalidConfig {
        /// The configuration field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The lease is unknown to the backend or has expired there.
    #[error("lease {lease} has expired or does not exist")]
    LeaseExpired {
        /// The lease that is gone.
        lease: crate::LeaseId,
    },

    /// A guarded operation found that the entry is no longer the one we
    /// created (deleted, or re-created by someone else).
    #[error("entry {key:?} is no longer owned by this candidate")]
    NotOwner {
        /// Key of the entry.
        key: String,
    },

    /// The operation needs leadership that has already been lost.
    #[error("not leader of election {election:?} any more")]
    NotLeader {
        /// The election.
        election: String,
    },

    /// A candidate would join an election whose live candidates use
    /// another shape: the other strategy (queue or single key), or on
    /// ZooKeeper the other queue layout (Curator or kazoo). Two shapes in
    /// one election would each elect a leader of their own, so the backend
    /// refuses the second one; the candidate must use the election's
    /// shape, or wait until the election is empty.
    #[error("election {election:?} holds {existing}; a {requested} candidate cannot join it")]
    ShapeConflict {
        /// The election.
        election: String,
        /// What the election holds (e.g. "single-key candidates").
        existing: &'static str,
        /// The shape the refused candidate asked for (e.g. "queue").
        requested: &'static str,
    },

    /// A leader-guarded write aimed at a key inside an election's own key
    /// space (its queue, its leader key, or its nested elections), where
    /// it could be taken for a candidate and block the election.
    #[error(
        "key {key:?} lies inside election {election:?}: application keys must live outside it"
    )]
    KeyInElection {
        /// The refused key.
        key: String,
        /// The election whose key space it is in.
        election: String,
    },

    /// The backend could not be reached.
    #[error("{backend} backend unreachable at {endpoint}: {source}")]
    Unreachable {
        /// Backend kind ("etcd", "zookeeper", "memory").
        backend: &'static str,
        /// The endpoint(s) tried.
        endpoint: String,
        /// The underlying cause.
        #[source]
        source: BoxError,
    },

    /// The backend refused our credentials or permissions.
    #[error(
        "{backend} backend at {endpoint} refused the credentials or their permissions: {reason}"
    )]
    Unauthenticated {
        /// Backend kind.
        backend: &'static str,
        /// The endpoint.
        endpoint: String,
        /// What the backend said.
        reason: String,
    },

    /// A TLS connection to the backend failed for a reason that retrying
    /// does not fix: the server's certificate is not signed by a trusted
    /// CA, has expired or does not name the host, or the server refused
    /// the client certificate (missing, expired, or from a CA it does not
    /// trust). The reason names which.
    #[error("TLS to the {backend} backend at {endpoint} failed: {reason}")]
    Tls {
        /// Backend kind.
        backend: &'static str,
        /// The endpoint(s).
        endpoint: String,
        /// What failed, in words.
        reason: String,
    },

    /// A file holding a secret or a certificate (a password file, a CA
    /// certificate, a client certificate or key) could not be read, or
    /// does not hold what it should. Never carries the file's contents.
    #[error("{what} file {path:?}: {reason}")]
    CredentialFile {
        /// What the file was given as (`"password"`, `"CA certificate"`,
        /// `"client certificate"`, `"client key"`).
        what: &'static str,
        /// The path as given.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An operation did not complete within its deadline.
    #[error("{backend} {operation} timed out after {after:?}")]
    Timeout {
        /// Backend kind.
        backend: &'static str,
        /// The operation that timed out.
        operation: &'static str,
        /// How long we waited.
        after: Duration,
    },

    /// The operation was cancelled (the election or session shut down).
    #[error("operation cancelled: {0}")]
    Cancelled(&'static str),

    /// A URL names a backend that is not known or not compiled in.
    #[error("unsupported backend URL {url:?}: {reason}")]
    UnsupportedUrl {
        /// The URL given.
        url: String,
        /// Why it cannot be used (e.g. which cargo feature to enable).
        reason: String,
    },

    /// The backend cannot do this operation (a backend written before it
    /// existed, or one whose service has no way to do it). Permanent.
    #[error("the {backend} backend does not support {operation}")]
    Unsupported {
        /// Backend kind.
        backend: &'static str,
        /// The operation asked for.
        operation: &'static str,
    },

    /// The backend answered something that breaks the contract tenure
    /// relies on (for example a create that returned another lease's
    /// entry at our key). Retrying does not help: the backend, or
    /// something writing into tenure's keys, has to be fixed.
    #[error("the backend broke tenure's protocol during {operation}: {reason}")]
    Protocol {
        /// The operation that got the answer.
        operation: &'static str,
        /// What was wrong with the answer.
        reason: String,
    },

    /// Any other backend failure, with the backend's own error as source.
    /// Treated as transient: the backends map every failure they know to
    /// be permanent (credentials, permissions, invalid names or paths) to
    /// its own variant.
    #[error("{backend} backend error during {operation}: {source}")]
    Backend {
        /// Backend kind.
        backend: &'static str,
        /// The operation that failed.
        operation: &'static str,
        /// The underlying cause.
        #[source]
        source: BoxError,
    },
}

/// Checks `ttl` against a backend's `(min, max)` bounds: the one place
/// every backend and the driver reject an out-of-range TTL.
///
/// # Errors
/// [`Error::InvalidTtl`] naming the TTL and both bounds.
pub fn check_ttl(ttl: Duration, (min, max): (Duration, Duration)) -> Result<()> {
    if ttl < min || ttl > max {
        return Err(Error::InvalidTtl { ttl, min, max });
    }
    Ok(())
}

impl Error {
    /// Whether retrying the same operation later may succeed: the backend
    /// could not be reached, a request timed out, or the backend failed in
    /// a way it did not call permanent ([`Error::Backend`]).
    ///
    /// Everything else is permanent and is returned at once by
    /// [`Election::campaign`](crate::Election::campaign),
    /// [`Election::run`](crate::Election::run) and the CLI, never retried:
    /// [`Error::Unauthenticated`] (credentials, or a role or ACL without
    /// permission on the election), [`Error::Tls`] and
    /// [`Error::CredentialFile`], invalid names, TTLs, configuration and
    /// URLs, [`Error::Protocol`], and the outcomes of a campaign
    /// ([`Error::LeaseExpired`], [`Error::NotOwner`], [`Error::NotLeader`],
    /// [`Error::Cancelled`]), which the caller decides about.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. } | Error::Timeout { .. } | Error::Backend { .. }
        )
    }
}
