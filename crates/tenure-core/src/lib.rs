//! Core of tenure: the contract every coordination backend fulfils, the
//! sans-IO election state machine and the async driver that runs it.
//!
//! A map of the crate:
//!
//! - [`backend`]: the [`CoordinationBackend`] trait (leases,
//!   compare-and-create, ordered reads, guarded writes, watches).
//! - [`types`]: plain data: entries, revisions, watch events, loss reasons.
//! - [`name`]: validated [`ElectionName`]s.
//! - [`error`]: the one [`Error`] enum.
//! - [`machine`]: the sans-IO state machines (lease keeper, election,
//!   leader tracker). They read no clock and do no I/O.
//! - [`driver`]: runs the machines on tokio against a backend:
//!   [`Session`], [`Election`], [`Leadership`], and client-go style
//!   [`Callbacks`].
//! - [`queue_reads`]: concurrent queue reads of one election coalesced
//!   into one, for backends whose per-candidate read costs O(N).
//! - [`retry`]: establishing connections and sessions, retried with
//!   jittered back-off within the connect timeout ([`ConnectRetry`]).
//! - [`url_query`]: options in a backend URL's query string, shared by
//!   the backends' URL parsers.
//! - [`credentials`]: password files and PEM files (CA, client
//!   certificate and key), read once and checked before any connection.
//! - `tls` (feature `tls`): the rustls client configuration from PEM
//!   files, and TLS failures that retrying cannot fix, named.
//! - [`value`]: [`IntoValue`], what proposals and guarded writes accept.
//! - [`metrics`]: the names of the metrics the driver records through the
//!   `metrics` facade.

pub mod backend;
pub mod credentials;
pub mod driver;
pub mod error;
pub mod machine;
pub mod metrics;
pub mod name;
pub mod queue_reads;
pub mod retry;
#[cfg(feature = "tls")]
pub mod tls;
pub mod types;
pub mod url_query;
pub mod value;

pub use backend::{CoordinationBackend, DynBackend};
pub use driver::{
    observe_all, AllLeaders, Callbacks, Election, ElectionBuilder, ElectionObservation,
    LeaderContext, LeaderStream, Leadership, LeaseStatus, ObserveAll, RunEnd, RunOptions, Session,
    SessionBuilder,
};
pub use error::{check_ttl, BoxError, Error, Result};
pub use machine::{Backoff, Strategy};
pub use name::{ElectionName, MAX_ELECTION_NAME_LEN};
pub use retry::ConnectRetry;
pub use types::{
    CreateOutcome, ElectionStream, Entry, FencingToken, LeaderInfo, LeaseGrant, LeaseId,
    LossReason, Observation, PrefixWatchStream, Queued, Revision, Slot, Snapshot, WatchEvent,
    WatchScope, WatchStream,
};
pub use value::IntoValue;
