//! ZooKeeper backend for tenure.
//!
//! [`ZkBackend`] implements [`CoordinationBackend`](tenure_core::CoordinationBackend)
//! over a ZooKeeper ensemble (3.6 or newer) with the `zookeeper-client`
//! crate. A lease is a ZooKeeper session; candidates are
//! ephemeral-sequential nodes in the layout of Apache Curator's
//! `LeaderLatch` (default) or kazoo's `Election`, so tenure candidates
//! share elections with JVM and Python services; the fencing token is the
//! winning node's `czxid`.
//!
//! ```no_run
//! # async fn demo() -> tenure_core::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tenure_core::Election;
//! use tenure_zookeeper::{ZkBackend, ZkOptions};
//!
//! let backend = ZkBackend::connect(ZkOptions::new("127.0.0.1:2181")).await?;
//! let election = Election::builder(Arc::new(backend), "scheduler")
//!     .ttl(Duration::from_secs(5))
//!     .build()?;
//! let leadership = election.campaign("node-a").await?;
//! println!("leading with fencing token {}", leadership.token());
//! # Ok(()) }
//! ```
//!
//! A map of the crate:
//!
//! - `options`: [`ZkOptions`] (connect string, root, layout, timeouts,
//!   digest credentials, [`ZkAcl`]).
//! - `layout`: [`Layout`], how queue candidates are named (Curator's or
//!   kazoo's).
//! - `backend`: [`ZkBackend`], the trait implementation (how leases,
//!   entries, revisions and guarded writes map onto ZooKeeper is described
//!   there), over the parts below.
//! - `session`: opening sessions, with back-off until the connect
//!   timeout, and what a test handshake finds when none opens.
//! - `lease`: a session per lease, the table of live ones, and the task
//!   that closes a session whose lease was not renewed.
//! - `paths`: where elections, candidates and keys live in the tree, and
//!   the shape of a candidate (leader node or a layout's queue entry).
//! - `read`: candidates, keys and revisions from atomic multi-reads.
//! - `create`: candidates, protected against lost replies, one shape per
//!   election.
//! - `write`: updates, deletes and guarded puts that hold only while the
//!   entry is still ours.
//! - `retry`: the one retry loop across connection losses and races.
//! - `watch`: one-shot and persistent ZooKeeper watches as tenure watch
//!   streams, with `HistoryLost` whenever events may have been missed.
//! - `probe`: learns the server's session-timeout bounds.
//! - `error`: the one mapping from client errors to [`tenure_core::Error`].

mod backend;
mod create;
mod elections;
mod error;
mod layout;
mod lease;
mod options;
mod paths;
mod probe;
mod read;
mod retry;
mod session;
#[cfg(feature = "tls")]
mod tls;
mod watch;
mod write;

pub use backend::ZkBackend;
pub use layout::Layout;
pub use options::{ZkAcl, ZkOptions};

/// The ZooKeeper client library this backend is built on, for callers
/// that need raw access (see [`ZkBackend::lease_session`]).
pub use zookeeper_client;
