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
//! leadership.resign().await; // the next candidate takes over at once
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

#[doc(inline)]
pub use tenure_core::*;

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
