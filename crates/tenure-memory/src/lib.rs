//! An in-process [`CoordinationBackend`](tenure_core::CoordinationBackend)
//! on tokio time, with fault knobs: the backend of unit tests, examples and
//! the deterministic simulator.
//!
//! It follows the contract faithfully rather than approximately: revisions
//! strictly increase, leases really expire (a background reaper deletes
//! them and their entries, and every operation also checks expiry itself),
//! watches replay history and report [`HistoryLost`](tenure_core::WatchEvent::HistoryLost)
//! after compaction. All time is tokio time, so everything works under
//! `tokio::time::pause()`: a lease of TTL `T` renewed at `t0` is alive
//! strictly before `t0 + T` and gone at `t0 + T`.
//!
//! A map of the crate:
//!
//! - [`MemoryBackend`] (`backend.rs`): the shared "server", cheap to clone,
//!   with server-side fault knobs ([`expire_lease`](MemoryBackend::expire_lease),
//!   [`compact`](MemoryBackend::compact), [`drop_watches`](MemoryBackend::drop_watches))
//!   and introspection. It is itself a backend (a fault-free client).
//! - [`MemoryClient`] (`client.rs`): one client connection to the server,
//!   with client-side faults ([`set_unreachable`](MemoryClient::set_unreachable),
//!   [`set_latency`](MemoryClient::set_latency)) and [`ClientStats`].
//! - `server.rs`: the state (key/value map, leases, history) and every
//!   operation as a synchronous function of `now`.
//! - `watch.rs`: watchers, scopes and streams.
//! - `reaper.rs`: the background task that expires leases on time.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tenure_core::Result<()> {
//! use std::time::Duration;
//! use tenure_core::{CoordinationBackend, ElectionName, Slot};
//! use tenure_memory::MemoryBackend;
//!
//! let server = MemoryBackend::new();
//! let (a, b) = (server.client(), server.client());
//! let election = ElectionName::new("scheduler")?;
//! let lease = a.grant_lease(Duration::from_secs(2)).await?;
//! a.create(&election, Slot::Queue, lease.id, "a".into()).await?;
//! assert_eq!(b.candidates(&election).await?.entries.len(), 1);
//!
//! b.set_unreachable(true); // a partition between `b` and the server
//! assert!(b.candidates(&election).await.is_err());
//! server.expire_lease(lease.id); // as if `a` had stopped renewing
//! assert!(server.keys().is_empty());
//! # Ok(()) }
//! ```

mod backend;
mod client;
mod reaper;
mod server;
mod watch;

pub use backend::{MemoryBackend, DEFAULT_TTL_BOUNDS};
pub use client::{ClientStats, MemoryClient};

#[cfg(test)]
mod tests;
