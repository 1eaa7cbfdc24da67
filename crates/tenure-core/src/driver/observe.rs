//! Following who leads an election, without ever skipping the latest.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tracing::debug;

use super::clock::with_timeout;
use crate::machine::{Backoff, LeaderTracker};
use crate::metrics::{self, WatchRole};
use crate::{
    DynBackend, ElectionName, LeaderInfo, LeaseId, Result, Revision, Snapshot, WatchScope,
};

/// Stream of leader changes returned by
/// [`Election::observe`](super::Election::observe). Dropping it stops the
/// background watch.
pub struct LeaderStream {
    inner: Pin<Box<dyn Stream<Item = Option<LeaderInfo>> + Send>>,
}

impl std::fmt::Debug for LeaderStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaderStream")
    }
}

impl Stream for LeaderStream {
    type Item = Option<LeaderInfo>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

pub(crate) fn spawn(
    backend: DynBackend,
    election: ElectionName,
    retry: Backoff,
    timeout: Duration,
) -> LeaderStream {
    // `None` = not read yet; never shown to the reader.
    let (tx, rx) = watch::channel(None::<Option<LeaderInfo>>);
    tokio::spawn(async move {
        tokio::select! {
            () = follow(&backend, &election, retry, timeout, &tx) => {}
            () = tx.closed() => {}
        }
    });
    LeaderStream {
        inner: Box::pin(WatchStream::new(rx).filter_map(|v| async move { v })),
    }
}

/// An election's live candidates of either strategy, leader first, and
/// the revisions of the two reads that found them.
pub(crate) struct Reading {
    /// Queue entries and the leader key's entry (when a lease holds it),
    /// lowest creation revision first.
    pub(crate) snapshot: Snapshot,
    /// Revision of the queue read.
    queue_revision: Revision,
    /// Revision of the leader key read.
    key_revision: Revision,
}

/// Reads an election's candidates whatever strategy the reader was built
/// with: its queue and its single leader key. An election holds one
/// strategy at a time (backends refuse a candidate of the other), so
/// readers of both strategies agree on who leads. Entries bound to no
/// lease are application data, never candidates.
pub(crate) async fn read(
    backend: &DynBackend,
    election: &ElectionName,
    timeout: Duration,
) -> Result<Reading> {
    let kind = backend.kind();
    let key = backend.leader_key(election);
    let (queue, leader) = futures::future::try_join(
        with_timeout(
            kind,
            "read candidates",
            timeout,
            backend.candidates(election),
        ),
        with_timeout(kind, "get", timeout, backend.get(&key)),
    )
    .await?;
    let (entry, key_revision) = leader;
    let mut entries: Vec<_> = queue
        .entries
        .into_iter()
        .chain(entry)
        .filter(|e| e.lease != LeaseId(0))
        .collect();
    entries.sort_by_key(|e| e.created);
    Ok(Reading {
        snapshot: Snapshot {
            entries,
            revision: queue.revision.max(key_revision),
        },
        queue_revision: queue.revision,
        key_revision,
    })
}

async fn follow(
    backend: &DynBackend,
    election: &ElectionName,
    retry: Backoff,
    timeout: Duration,
    tx: &watch::Sender<Option<Option<LeaderInfo>>>,
) {
    let queue_scope = WatchScope::Election(election.clone());
    let key_scope = WatchScope::Key(backend.leader_key(election));
    let mut tracker = LeaderTracker::new();
    let mut rng = fastrand::Rng::new();
    let mut failures = 0u32;
    let publish = |leader: Option<LeaderInfo>| {
        tx.send_if_modified(|cur| {
            let changed = cur.as_ref() != Some(&leader);
            *cur = Some(leader);
            changed
        });
    };
    loop {
        let reading = match read(backend, election, timeout).await {
            Ok(s) => s,
            Err(e) => {
                debug!(%election, error = %e, "observe: read failed, retrying");
                failures = failures.saturating_add(1);
                tokio::time::sleep(retry.delay(failures, &mut rng)).await;
                continue;
            }
        };
        tracker.reset(&reading.snapshot);
        publish(tracker.leader().cloned());
        // Both strategies' keys: the queue and the leader key, each from
        // its own read.
        let watches = futures::future::try_join(
            with_timeout(
                backend.kind(),
                "watch",
                timeout,
                backend.watch(queue_scope.clone(), reading.queue_revision + 1),
            ),
            with_timeout(
                backend.kind(),
                "watch",
                timeout,
                backend.watch(key_scope.clone(), reading.key_revision + 1),
            ),
        )
        .await;
        let mut stream = match watches {
            Ok((queue, key)) => futures::stream::select(queue, key),
            Err(e) => {
                debug!(%election, error = %e, "observe: watch failed, retrying");
                metrics::watch_reconnect(election, WatchRole::Observer);
                failures = failures.saturating_add(1);
                tokio::time::sleep(retry.delay(failures, &mut rng)).await;
                continue;
            }
        };
        // Either stream ending or failing ends both: read again.
        while let Some(Ok(event)) = stream.next().await {
            match tracker.apply(&event) {
                Ok(Some(leader)) => publish(leader),
                Ok(None) => {}
                Err(()) => break, // history lost: read again
            }
            failures = 0;
        }
        metrics::watch_reconnect(election, WatchRole::Observer);
        // The watch ended, failed or lost history. Back off before reading
        // again, growing while watches keep breaking before delivering
        // anything (a backend that reports lost history on every churn must
        // not make the observer spin).
        failures = failures.saturating_add(1);
        tokio::time::sleep(retry.delay(failures, &mut rng)).await;
    }
}
