//! The settings of one candidacy: the strategy that decides who leads,
//! and how long to wait before creating and between retries.

use std::time::Duration;

use super::Backoff;

/// How candidates of an election decide who leads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// Every candidate creates its own entry; the lowest creation revision
    /// leads; each candidate watches only its immediate predecessor, so a
    /// leader change wakes exactly one candidate. The layout of etcd's own
    /// election recipe and of Curator's / kazoo's.
    #[default]
    Queue,
    /// First writer wins one leader key; every follower watches that key
    /// and retries with jittered back-off when it disappears. Simpler and
    /// compatible with single-key deployments, but every change wakes all
    /// followers.
    SingleKey,
}

/// Settings of one candidacy. Start from [`Default`] and set the fields
/// that differ.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElectionConfig {
    /// Queue (default) or single key.
    pub strategy: Strategy,
    /// Back-off between retries after a failed request, and (single-key)
    /// after the leader key disappears.
    pub retry: Backoff,
    /// Wait this long (plus jitter of up to the same again) before the first
    /// create: the anti-flap re-campaign delay. Zero for no delay.
    pub start_delay: Duration,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        ElectionConfig {
            strategy: Strategy::Queue,
            retry: Backoff::RETRY,
            start_delay: Duration::ZERO,
        }
    }
}
