//! The async driver: runs the sans-IO machines on tokio against a backend.
//!
//! - [`Session`]: one lease, kept alive by the runtime's keeper task (one
//!   task for every session of a runtime); shareable by
//!   many elections, so a thousand elections cost one keep-alive stream.
//! - [`Election`]: a handle on one named election: campaign, observe, read
//!   the leader.
//! - [`Leadership`]: proof of having won, with the fencing token, the local
//!   deadline, a future that fires on loss, resign, proclaim and a
//!   leader-guarded write.
//! - [`Callbacks`]: client-go style `on_started_leading` /
//!   `on_stopped_leading` / `on_new_leader`, run by [`Election::run`].
//! - [`observe_all`]: every election under a prefix at once, independent
//!   of any [`Election`].

mod callbacks;
mod campaign;
mod clock;
mod closing;
mod election;
mod keepers;
mod leadership;
mod lease_status;
mod observe;
mod observe_all;
mod observe_prefix;
mod run;
mod session;

pub use callbacks::{Callbacks, LeaderContext};
pub use election::{Election, ElectionBuilder};
pub use leadership::Leadership;
pub use observe::LeaderStream;
pub use observe_all::{observe_all, AllLeaders, ElectionObservation, ObserveAll};
pub use run::{RunEnd, RunOptions};
pub use session::{LeaseStatus, Session, SessionBuilder};
