//! # tenure
//!
//! Leader election with pluggable coordination backends. A process
//! campaigns for leadership of a named election, learns the instant it
//! wins, learns the instant it must stop acting as leader, hands over
//! cleanly on shutdown, and can watch who leads. Consensus is delegated to
//! a real coordination service (etcd, ZooKeeper, or a PostgreSQL database
//! the service already runs); the in-memory backend serves tests, examples
//! and simulation.
//!
//! There are three ways to use an [`Election`].
//!
//! **1. Campaign, lead until lost.** [`Election::campaign`] resolves once
//! elected with a [`Leadership`]; do leader work until
//! [`Leadership::lost`] resolves, pass [`Leadership::token`] (the fencing
//! token) downstream, and [`resign`](Leadership::resign) to hand over at
//! once.
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
//! let node = String::from("node-a");
//! let leadership = election.campaign(&node).await?;
//! println!("leading with fencing token {}", leadership.token());
//! tokio::select! {
//!     reason = leadership.lost() => println!("stopped leading: {reason}"),
//!     () = async { /* leader work */ } => {}
//! }
//! leadership.resign().await?; // the next candidate takes over at once
//! # Ok(()) }
//! ```
//!
//! **2. Hand over the loop, with callbacks.** [`Election::run`] campaigns,
//! runs `on_started_leading` while it leads, campaigns again after a loss,
//! retries transient errors with [`Backoff::RETRY`], and on shutdown stops
//! the work before it resigns. [`Election::run_with`] adds
//! [`RunOptions`]: one term only, a new campaign when the work returns.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tenure::Result<()> {
//! use tenure::{Callbacks, CancellationToken, Election, RunEnd, RunOptions};
//!
//! let election = Election::builder(tenure::connect("memory://").await?, "jobs").build()?;
//! let callbacks = Callbacks::new()
//!     .on_started_leading(|ctx| async move {
//!         println!("leading with token {}", ctx.token());
//!         // leader work; return when done, or soon after ctx.stopped()
//!     })
//!     .on_stopped_leading(|reason| println!("stopped: {reason}"));
//! let shutdown = CancellationToken::new(); // cancel it on SIGTERM
//! let end = election
//!     .run_with("node-a", callbacks, RunOptions::new().once(true), shutdown)
//!     .await?;
//! assert_eq!(end, RunEnd::WorkReturned);
//! # Ok(()) }
//! ```
//!
//! **3. Observe who leads.** [`Election::observe`] streams
//! [`Observation`]s: the leader, no leader, or unknown when the backend has
//! not confirmed it lately; [`Election::leader`] reads it once.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tenure::Result<()> {
//! use tenure::{Election, Observation, StreamExt};
//!
//! let election = Election::builder(tenure::connect("memory://").await?, "jobs").build()?;
//! let mut leaders = election.observe();
//! assert_eq!(leaders.next().await, Some(Observation::NoLeader));
//! # Ok(()) }
//! ```
//!
//! Errors are one typed [`Error`]: retry those for which
//! [`Error::is_transient`] holds (with [`Backoff::RETRY`]), report the
//! others. Backend authors find the trait and its helpers in [`backend`].
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
    observe_all, AllLeaders, Backoff, BoxError, Callbacks, DynBackend, Election, ElectionBuilder,
    ElectionName, ElectionObservation, Entry, Error, FencingToken, IntoValue, LeaderContext,
    LeaderInfo, LeaderStream, Leadership, LeaseId, LeaseStatus, LossReason, Observation,
    ObserveAll, Result, Revision, RunEnd, RunOptions, Session, SessionBuilder, Strategy,
    MAX_ELECTION_NAME_LEN,
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
    pub use tenure_core::backend::{execute, CoordinationBackend};
    #[doc(inline)]
    pub use tenure_core::error::check_ttl;
    #[doc(inline)]
    pub use tenure_core::queue_reads::{self, QueueReads, QueueSource};
    #[doc(inline)]
    pub use tenure_core::retry::{self, ConnectRetry};
    #[cfg(any(feature = "etcd", feature = "zookeeper"))]
    #[doc(inline)]
    pub use tenure_core::tls;
    #[doc(inline)]
    pub use tenure_core::types::{
        CreateOutcome, ElectionStream, LeaseGrant, PrefixWatchStream, Queued, Slot, Snapshot,
        WatchEvent, WatchScope, WatchStream,
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

// Every snippet of the README and the guides compiles (and runs, unless
// marked `no_run`): `cargo test --doc` checks them with the crate's docs.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/getting-started.md")]
    struct GettingStarted;
    #[doc = include_str!("../docs/concepts.md")]
    struct Concepts;
    #[doc = include_str!("../docs/safety.md")]
    struct Safety;
    #[doc = include_str!("../docs/operations.md")]
    struct Operations;
    #[doc = include_str!("../docs/reliability.md")]
    struct Reliability;
    #[doc = include_str!("../docs/security.md")]
    struct Security;
    #[doc = include_str!("../docs/backends/etcd.md")]
    struct Etcd;
    #[doc = include_str!("../docs/backends/zookeeper.md")]
    struct ZooKeeper;
    #[doc = include_str!("../docs/backends/memory.md")]
    struct Memory;
    #[doc = include_str!("../docs/backends/postgres.md")]
    struct Postgres;
}
