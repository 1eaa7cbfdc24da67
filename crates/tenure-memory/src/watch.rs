//! Watchers: which changes a scope sees, and how they reach the stream.
//!
//! Each watch is an unbounded channel: the server pushes changes into it
//! while holding its lock (so replay and live delivery never leave a gap
//! or reorder), and the receiving half is the [`WatchStream`].

use std::sync::Arc;

use futures::StreamExt;
use tenure_core::{ElectionName, Result, Revision, WatchEvent, WatchScope, WatchStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::client::{fault, ClientShared};
use crate::server::Change;

/// One live watch.
pub(crate) struct Watcher {
    /// The client that opened the watch (its faults break it, its stats
    /// count the events).
    pub(crate) client: Arc<ClientShared>,
    /// What the watch observes.
    scope: WatchScope,
    /// First revision delivered.
    pub(crate) from: Revision,
    tx: mpsc::UnboundedSender<Result<WatchEvent>>,
}

impl Watcher {
    /// A watcher and its stream.
    pub(crate) fn new(
        client: Arc<ClientShared>,
        scope: WatchScope,
        from: Revision,
    ) -> (Watcher, WatchStream) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stream = UnboundedReceiverStream::new(rx).boxed();
        (
            Watcher {
                client,
                scope,
                from,
                tx,
            },
            stream,
        )
    }

    /// Delivers `change` if the watch wants it. Returns `false` once the
    /// stream has been dropped, so the server can forget the watcher.
    pub(crate) fn deliver(&self, change: &Change) -> bool {
        if change.revision < self.from || !self.matches(change) {
            return !self.tx.is_closed();
        }
        let sent = self.tx.send(Ok(change.event.clone())).is_ok();
        if sent {
            self.client.count_watch_event();
        }
        sent
    }

    /// Ends the stream with `HistoryLost`.
    pub(crate) fn history_lost(self) {
        if self.tx.send(Ok(WatchEvent::HistoryLost)).is_ok() {
            self.client.count_watch_event();
        }
    }

    /// Ends the stream with an `Unreachable` error, as a broken
    /// connection would.
    pub(crate) fn broken(&self, why: &'static str) {
        let _ = self.tx.send(Err(fault(self.client.id, why)));
    }

    fn matches(&self, change: &Change) -> bool {
        match &self.scope {
            WatchScope::Key(key) => *key == change.key,
            WatchScope::Election(election) => in_election(election, &change.key, change.queue),
        }
    }
}

/// Whether `key` is a queue entry of `election`: created as a queue entry
/// and named `"{election}/{lease hex}"`. The last segment excludes nested
/// elections (`"a/b/…"` is not in `"a"`) and names that merely share a
/// prefix (`"ab/…"`); the queue flag excludes the leader key of a nested
/// election (`"a/b"`) and application keys.
pub(crate) fn in_election(election: &ElectionName, key: &str, queue: bool) -> bool {
    queue
        && key
            .rsplit_once('/')
            .is_some_and(|(parent, _)| parent == election.as_str())
}
