//! Sans-IO state machines.
//!
//! Nothing in this module reads a clock, spawns a task or talks to a
//! backend. Each machine takes inputs (`now` is always an argument) and
//! yields commands for a driver to execute, events for the user, and the
//! next instant at which it wants [`handle_timeout`](ElectionMachine::handle_timeout)
//! called. That makes every decision deterministic and property-testable;
//! the [`driver`](crate::driver) module runs the same machines on tokio.
//!
//! - [`LeaseKeeper`]: keeps one lease alive and computes the local
//!   deadline `valid_until` after which a leader must step down.
//! - [`ElectionMachine`]: one candidacy in one election, from the first
//!   create to the end of the term (queue or single-key strategy).
//! - [`LeaderTracker`]: who leads, from a read plus watch events.

mod backoff;
mod config;
mod election;
mod lease;
mod messages;
mod tracker;

pub use backoff::Backoff;
pub use config::{ElectionConfig, Strategy};
pub use election::ElectionMachine;
pub use lease::{LeaseCommand, LeaseConfig, LeaseEvent, LeaseKeeper};
pub use messages::{
    Command, Event, FailReason, Phase, Reply, Request, RequestId, SharedError, WatchId,
};
pub use tracker::LeaderTracker;

/// The front of a machine's output `queue`. Outputs come a few at a time
/// and are drained at once; once the queue is empty its buffer is freed,
/// so an idle machine keeps none (thousands of idle candidates in one
/// process would each hold one per queue).
fn drain_one<T>(queue: &mut std::collections::VecDeque<T>) -> Option<T> {
    let next = queue.pop_front();
    if next.is_none() && queue.capacity() > 0 {
        *queue = std::collections::VecDeque::new();
    }
    next
}
