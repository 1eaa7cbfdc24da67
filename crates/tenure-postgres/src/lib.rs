//! PostgreSQL backend for tenure: leader election with fencing for
//! services that already run PostgreSQL.
//!
//! [`PostgresBackend`] implements
//! [`CoordinationBackend`](tenure_core::CoordinationBackend) over plain
//! tables and functions in a schema of its own (created on first use):
//! leases whose expiry PostgreSQL computes on its own clock, entries bound
//! to them, a revision sequence whose values are the fencing tokens, and
//! watches over LISTEN/NOTIFY backed by a change log. No advisory locks
//! are involved, so a pool recycling connections cannot silently release
//! anything.
//!
//! ```no_run
//! # async fn demo() -> tenure_core::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tenure_core::Election;
//! use tenure_postgres::PostgresBackend;
//!
//! let backend = PostgresBackend::connect_url("postgres://app@127.0.0.1:5432/app").await?;
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
//! - `options`: [`PostgresOptions`] (the libpq URL, schema, timeouts,
//!   password file).
//! - `schema`: the versioned DDL ([`ddl`], [`SCHEMA_VERSION`]) and its
//!   idempotent installation.
//! - `sql`: the statements, written once per schema.
//! - `keys`: the etcd key layout.
//! - `connection`: the shared command connection, reopened after it broke.
//! - `backend`: [`PostgresBackend`], the trait implementation.
//! - `listener`: the listening connection and its fan-out to watches.
//! - `watch`: watch streams (notifications, change log, due leases).
//! - `error`: the one mapping from driver errors to
//!   [`tenure_core::Error`].

mod backend;
mod connection;
mod error;
mod keys;
mod listener;
mod options;
mod schema;
mod sql;
mod watch;

pub use backend::PostgresBackend;
pub use keys::MAX_KEY_LEN;
pub use options::{PostgresOptions, DEFAULT_SCHEMA, MAX_SCHEMA_LEN};
pub use schema::{ddl, SCHEMA_VERSION};

/// The PostgreSQL driver this backend is built on, for building a
/// [`Config`](tokio_postgres::Config) by hand.
pub use tokio_postgres;
