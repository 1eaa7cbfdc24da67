//! Test tooling shared by every tenure backend.
//!
//! - [`all_elections`]: the `observe_all` scenario every backend runs.
//! - [`conformance`]: the suite every `CoordinationBackend` passes.
//! - [`counting`]: a backend wrapper counting reads and watch events.
//! - [`driver_scenarios`]: crash failover and resign hand-overs through
//!   the driver API, shared by the real backends' tests.
//! - [`history`]: recorded leadership histories and the invariant checker.
//! - [`proxy`]: a fault-injecting TCP proxy on loopback.
//! - [`sim`]: a deterministic simulator of candidates with faults.
//! - [`stats`]: distributions of measured samples (nearest-rank
//!   percentiles), for the benchmark's and the fault campaign's reports.
//! - [`etcd_server`], [`zk_server`], [`pg_server`]: real servers on
//!   loopback for tests.
//! - [`pki`]: certificate authorities and certificates for TLS tests.

pub mod all_elections;
pub mod conformance;
pub mod counting;
pub mod driver_scenarios;
pub mod etcd_server;
pub mod harness;
pub mod history;
pub mod pg_server;
pub mod pki;
pub mod proxy;
pub mod sim;
pub mod stats;
pub mod zk_server;
