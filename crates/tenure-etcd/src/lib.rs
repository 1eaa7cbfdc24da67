//! etcd v3 backend for tenure.
//!
//! [`EtcdBackend`] implements [`CoordinationBackend`](tenure_core::CoordinationBackend)
//! over an etcd v3 cluster with the `etcd-client` crate. It uses exactly
//! the key layout of etcd's own `concurrency.Election`
//! (`<election>/<lease id in hex>`, lowest creation revision leads), so a
//! tenure candidate, `etcdctl elect` and Go services share elections.
//!
//! ```no_run
//! # async fn demo() -> tenure_core::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tenure_core::Election;
//! use tenure_etcd::{EtcdBackend, EtcdOptions};
//!
//! let backend = EtcdBackend::connect(EtcdOptions::new(["http://127.0.0.1:2379"])).await?;
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
//! - `options`: [`EtcdOptions`] (endpoints, key prefix, timeouts,
//!   credentials) and, with the `tls` feature (on by default),
//!   [`TlsConfig`].
//! - `backend`: [`EtcdBackend`], the trait implementation: leases with
//!   keep-alive streams shared by the connection's leases, compare-and-create transactions,
//!   ordered reads, guarded updates, deletes and writes.
//! - `watch`: etcd watches as tenure watch streams (compaction becomes
//!   [`WatchEvent::HistoryLost`](tenure_core::WatchEvent::HistoryLost)).
//! - `error`: the one mapping from etcd-client errors to
//!   [`tenure_core::Error`].

mod backend;
mod elections;
mod error;
mod keepalive;
mod options;
mod watch;

pub use backend::EtcdBackend;
#[cfg(feature = "tls")]
pub use options::TlsConfig;
pub use options::{EtcdOptions, DEFAULT_WRITES_IN_FLIGHT};

/// The etcd client library this backend is built on, for callers that
/// need raw access (see [`EtcdBackend::client`]).
pub use etcd_client;
