//! tenure's benchmark suite: handover, crash failover, herd and
//! scale, footprint and the state machine's cost, against the peers
//! (`etcdctl elect`, kazoo) and the raw backend floors measured in the
//! same run. The `tenure-bench` binary runs the sections and writes
//! `report.md` and `latency.svg`; `benches/machine.rs` is the criterion
//! micro-benchmark of the sans-IO machine.
//!
//! A map of the crate:
//!
//! - measurements: [`floor`] (raw clients), [`handover`] (library, in
//!   process), [`peers`] (process level: the CLI, `etcdctl elect`, kazoo),
//!   [`failover`], [`scale`], [`footprint`], [`transitions`];
//! - plumbing: [`servers`] (real servers via the testkit harness),
//!   [`procs`] (child processes, timestamped lines, signals), [`clock`],
//!   [`child`] (the stand-in candidate
//!   process), [`example`] (what the diagnostic examples share); requests are counted by the testkit's `Counting` wrapper;
//! - output: [`stats`], [`report`], [`plot`], [`host`]; [`plan`] sizes the
//!   full and quick runs; [`sections`] ties it together.

pub mod child;
pub mod clock;
pub mod error;
pub mod example;
pub mod failover;
pub mod floor;
pub mod footprint;
pub mod handover;
pub mod host;
pub mod peers;
pub mod plan;
pub mod plot;
pub mod procs;
pub mod report;
pub mod scale;
pub mod sections;
pub mod servers;
pub mod startup;
pub mod stats;
pub mod transitions;
