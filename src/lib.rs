//! # tenure
//!
//! Leader election with pluggable coordination backends. A process
//! campaigns for leadership of a named election, learns the instant it
//! wins, learns the instant it must stop acting as leader, hands over
//! cleanly on shutdown, and can watch who leads. Consensus is delegated to
//! a real coordination service (etcd, ZooKeeper, or a PostgreSQL database
//! the service already runs); the in-memory backend
//! serves tests, examples and simulation.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tenure::Result<()> {
//! use std::time::Duration;
//! use tenure::Election;
//!
//! let backend = tenure::connect("memory://").await?; // or "etcd://10.0.0.1:2379"
//! let election = Election::builder(backend, "scheduler")
//!     .ttl(Duration::from_secs(2))
//!     .build()?;
//! let leadership = election.campaign("node-a").await?;
//! assert!(leadership.is_leader());
//! println!("leading with fencing token {}", leadership.token());
//! leadership.resign().await?; // the next candidate takes over at once
//! # Ok(()) }
//! ```
//!
//! ## Features
//!
//! | feature     | backend                      | default |
//! |-------------|------------------------------|---------|
//! | `memory`    | in-process ([`memory`])      | yes     |
//! | `etcd`      | etcd v3 (needs `protoc`)     | no      |
//! | `zookeeper` | ZooKeeper 3.6 or newer       | no      |
//! | `postgres`  | PostgreSQL 11 or newer       | no      |
//! | `full`      | all of the above             | no      |

// The user's surface, named one by one: what an application writes.
#[doc(inline)]
pub use tenure_core::{
    Backoff, BoxError, Callbacks, DynBackend, Election, ElectionBuilder, ElectionName, Entry,
    Error, FencingToken, IntoValue, LeaderContext, LeaderInfo, LeaderStream, Leadership, LeaseId,
    LeaseStatus, LossReason, Observation, Result, Revision, RunEnd, RunOptions, Session,
    SessionBuilder, Strategy, MAX_ELECTION_NAME_LEN,
};

/// Byte buffers: what proposals and values are stored as (re-exported from
/// the `bytes` crate, so that a user need not depend on it).
pub use bytes::Bytes;

/// The token that stops [`Election::run`] and
/// [`Election::campaign_until`] (re-exported from `tokio-util`, so that a
/// user need not depend on it).
pub use tokio_util::sync::CancellationToken;

/// `next()` on a [`LeaderStream`] (re-exported from `futures`).
pub use futures::StreamExt;

#[doc(inline)]
pub use tenure_core::metrics;

/// The sans-IO election machines the driver runs: for simulations and
/// custom drivers. Applications use [`Election`].
pub mod machine {
    #[doc(inline)]
    pub use tenure_core::machine::*;
}

/// For authors of backends: the [`CoordinationBackend`](backend::CoordinationBackend)
/// contract, the data that crosses it, and the helpers the bundled
/// backends share (URL options, credentials, TLS, connection retries).
/// An application never needs this module unless it implements a
/// backend or calls one directly.
pub mod backend {
    #[doc(inline)]
    pub use tenure_core::backend::CoordinationBackend;
    #[doc(inline)]
    pub use tenure_core::error::check_ttl;
    #[doc(inline)]
    pub use tenure_core::retry::{self, ConnectRetry};
    #[cfg(any(feature = "etcd", feature = "zookeeper"))]
    #[doc(inline)]
    pub use tenure_core::tls;
    #[doc(inline)]
    pub use tenure_core::types::{
        CreateOutcome, LeaseGrant, Slot, Snapshot, WatchEvent, WatchScope, WatchStream,
    };
    #[doc(inline)]
    pub use tenure_core::{credentials, url_query};
}

#[cfg(feature = "memory")]
#[doc(inline)]
pub use tenure_memory as memory;

#[cfg(feature = "etcd")]
#[doc(inline)]
pub use tenure_etcd as etcd;

#[cfg(feature = "zookeeper")]
#[doc(inline)]
pub use tenure_zookeeper as zookeeper;

#[cfg(feature = "postgres")]
#[doc(inline)]
pub use tenure_postgres as postgres;

mod url;

pub use url::{connect, connect_with, ConnectOptions, Scheme};
