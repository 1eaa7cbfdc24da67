//! Watchers: which changes a scope sees, how they reach the stream, and the
//! index that finds the watchers of a change without visiting the others.
//!
//! Each watch is an unbounded channel: the server pushes changes into it
//! while holding its lock (so replay and live delivery never leave a gap
//! or reorder), and the receiving half is the [`WatchStream`]. The channel
//! is `futures`' unbounded one, which allocates per queued event: an idle
//! watch costs a few hundred bytes, where a channel that reserves a block
//! of slots up front would cost kilobytes per candidate. Its items are
//! boxed, because the channel keeps one empty node of its item's size for
//! its whole life: a pointer's worth instead of an event's.

use std::collections::HashMap;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::StreamExt;
use tenure_core::{ElectionName, Result, Revision, WatchEvent, WatchScope, WatchStream};

use crate::client::{fault, ClientShared};
use crate::server::Change;

/// One live watch. What it observes is not kept here: the bucket of
/// [`Watchers`] that holds it says (a key or an election), and replay
/// filters by the scope before the watcher is filed.
pub(crate) struct Watcher {
    /// The client that opened the watch (its faults break it, its stats
    /// count the events).
    pub(crate) client: Arc<ClientShared>,
    /// First revision delivered.
    pub(crate) from: Revision,
    tx: mpsc::UnboundedSender<Box<Result<WatchEvent>>>,
}

impl Watcher {
    /// A watcher and its stream.
    pub(crate) fn new(client: Arc<ClientShared>, from: Revision) -> (Watcher, WatchStream) {
        let (tx, rx) = mpsc::unbounded();
        (Watcher { client, from, tx }, rx.map(|item| *item).boxed())
    }

    /// Delivers `change`, which is in the watch's scope, unless it came
    /// before the watch's first revision. Returns `false` once the stream
    /// has been dropped, so the server can forget the watcher.
    pub(crate) fn deliver(&self, change: &Change) -> bool {
        if change.revision < self.from {
            return !self.tx.is_closed();
        }
        let sent = self
            .tx
            .unbounded_send(Box::new(Ok(change.event.clone())))
            .is_ok();
        if sent {
            self.client.count_watch_event();
        }
        sent
    }

    /// Ends the stream with `HistoryLost`.
    pub(crate) fn history_lost(self) {
        if self
            .tx
            .unbounded_send(Box::new(Ok(WatchEvent::HistoryLost)))
            .is_ok()
        {
            self.client.count_watch_event();
        }
    }

    /// Ends the stream with an `Unreachable` error, as a broken
    /// connection would.
    pub(crate) fn broken(&self, why: &'static str) {
        let _ = self
            .tx
            .unbounded_send(Box::new(Err(fault(self.client.id, why))));
    }

    /// Whether the stream has been dropped.
    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Whether `scope` observes `change`.
pub(crate) fn in_scope(scope: &WatchScope, change: &Change) -> bool {
    match scope {
        WatchScope::Key(key) => *key == change.key(),
        WatchScope::Election(election) => in_election(election, change.key(), change.queue),
    }
}

/// Whether `key` is a queue entry of `election`: created as a queue entry
/// and named `"{election}/{lease hex}"`. The last segment excludes nested
/// elections (`"a/b/…"` is not in `"a"`) and names that merely share a
/// prefix (`"ab/…"`); the queue flag excludes the leader key of a nested
/// election (`"a/b"`) and application keys.
pub(crate) fn in_election(election: &ElectionName, key: &str, queue: bool) -> bool {
    queue && election_of(key) == Some(election.as_str())
}

/// The election whose queue a queue entry's key belongs to: the key
/// without its last segment.
pub(crate) fn election_of(key: &str) -> Option<&str> {
    key.rsplit_once('/').map(|(parent, _)| parent)
}

/// The live watches, indexed by what they observe: a change visits the
/// watchers of its key and, for a queue entry, those of its election, and
/// no others, however many watches are open.
///
/// A watcher whose stream was dropped is forgotten the next time a change
/// visits its bucket, or by a sweep of every bucket each time the number
/// of watchers has doubled since the last one (amortised constant time per
/// watch opened), so buckets that never change do not keep them forever.
#[derive(Default)]
pub(crate) struct Watchers {
    /// Watchers of one key, by key.
    by_key: HashMap<String, Vec<Watcher>>,
    /// Watchers of an election's queue, by election name.
    by_election: HashMap<String, Vec<Watcher>>,
    /// Watchers in both maps.
    len: usize,
    /// The number of watchers at which the next sweep runs.
    sweep_at: usize,
}

/// The first sweep runs at this many watchers.
const FIRST_SWEEP: usize = 64;

impl Watchers {
    /// The number of watchers held (dropped streams not yet forgotten
    /// included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds a live watcher of `scope`.
    pub(crate) fn add(&mut self, scope: WatchScope, watcher: Watcher) {
        let (map, name) = match &scope {
            WatchScope::Key(key) => (&mut self.by_key, key.as_str()),
            WatchScope::Election(e) => (&mut self.by_election, e.as_str()),
        };
        match map.get_mut(name) {
            Some(bucket) => {
                // A key is watched by a few candidates at most (its
                // successor and the one after): grow by one, not double.
                bucket.reserve_exact(1);
                bucket.push(watcher);
            }
            // Most buckets hold one watcher: no spare capacity. A key
            // scope's own string becomes the bucket's name.
            None => {
                let name = match scope {
                    WatchScope::Key(key) => key,
                    WatchScope::Election(e) => e.as_str().to_owned(),
                };
                map.insert(name, vec![watcher]);
            }
        }
        self.len += 1;
        if self.len >= self.sweep_at {
            self.retain(|w| !w.is_closed());
            self.sweep_at = (self.len * 2).max(FIRST_SWEEP);
        }
    }

    /// Delivers `change` to the watchers of its key and of its election,
    /// forgetting those whose stream is gone.
    pub(crate) fn deliver(&mut self, change: &Change) {
        let mut removed = 0;
        let mut visit = |map: &mut HashMap<String, Vec<Watcher>>, name: &str| {
            if let Some(bucket) = map.get_mut(name) {
                let before = bucket.len();
                bucket.retain(|w| w.deliver(change));
                removed += before - bucket.len();
                if bucket.is_empty() {
                    map.remove(name);
                }
            }
        };
        visit(&mut self.by_key, change.key());
        if change.queue {
            if let Some(election) = election_of(change.key()) {
                visit(&mut self.by_election, election);
            }
        }
        self.len -= removed;
    }

    /// Keeps the watchers for which `keep` holds.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Watcher) -> bool) {
        let mut len = 0;
        for map in [&mut self.by_key, &mut self.by_election] {
            map.retain(|_, bucket| {
                bucket.retain(&mut keep);
                len += bucket.len();
                !bucket.is_empty()
            });
        }
        self.len = len;
    }

    /// Removes every watcher.
    pub(crate) fn take_all(&mut self) -> Vec<Watcher> {
        self.len = 0;
        self.by_key
            .drain()
            .chain(self.by_election.drain())
            .flat_map(|(_, bucket)| bucket)
            .collect()
    }
}
