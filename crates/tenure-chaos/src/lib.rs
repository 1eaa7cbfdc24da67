//! tenure's fault campaign: "at most one valid leader, and a new one
//! soon", checked the way Jepsen checks such promises.
//!
//! A campaign starts a backend (etcd or ZooKeeper, one server or three;
//! or one PostgreSQL server),
//! K candidate processes (`chaos-candidate`), each behind its own
//! fault-injecting proxies, and injects seeded random faults: kills,
//! freezes, partitions, latency, operator deletes and lease revocations,
//! backend restarts and member loss. Every process logs what it was told
//! with `CLOCK_MONOTONIC` timestamps; the merged history goes through the
//! shared checker of `tenure_testkit::history`.
//!
//! - [`clock`]: the monotonic clock shared by the processes.
//! - [`log`]: the JSON-lines event logs.
//! - [`candidate`]: the candidate process.
//! - [`cluster`]: the backend under test and its faults.
//! - [`procs`]: signals, and finding a server's process by its port.
//! - [`faults`], [`schedule`]: the kinds of fault and the seeded plan.
//! - [`live`]: the runner's live view of who leads.
//! - [`runner`]: one campaign from start to stop.
//! - [`record`]: the logs of a campaign merged into one history.
//! - [`check`]: from that history to a verdict and statistics.
//! - [`summary`]: the report, `summary.json` and `summary.md`.

pub mod candidate;
pub mod check;
pub mod clock;
pub mod cluster;
pub mod faults;
pub mod live;
pub mod log;
pub mod procs;
pub mod record;
pub mod runner;
pub mod schedule;
pub mod summary;
