//! Following who leads an election, without ever skipping the latest.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tracing::debug;

use super::clock::with_timeout;
use crate::machine::{Backoff, LeaderTracker, Strategy};
use crate::metrics::{self, WatchRole};
use crate::{DynBackend, ElectionName, LeaderInfo, Result, Snapshot, WatchScope};

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
    strategy: Strategy,
    retry: Backoff,
    timeout: Duration,
) -> LeaderStream {
    // `None` = not read yet; never shown to the reader.
    let (tx, rx) = watch::channel(None::<Option<LeaderInfo>>);
    tokio::spawn(async move {
        tokio::select! {
            () = follow(&backend, &election, strategy, retry, timeout, &tx) => {}
            () = tx.closed() => {}
        }
    });
    LeaderStream {
        inner: Box::pin(WatchStream::new(rx).filter_map(|v| async move { v })),
    }
}

/// Reads an election's entries, leader first: the queue (queue strategy)
/// or the one leader key (single-key strategy).
pub(crate) async fn read(
    backend: &DynBackend,
    election: &ElectionName,
    strategy: Strategy,
    timeout: Duration,
) -> Result<Snapshot> {
    let kind = backend.kind();
    match strategy {
        Strategy::Queue => {
            with_timeout(
                kind,
                "read candidates",
                timeout,
                backend.candidates(election),
            )
            .await
        }
        Strategy::SingleKey => {
            let key = backend.leader_key(election);
            let (entry, revision) = with_timeout(kind, "get", timeout, backend.get(&key)).await?;
            Ok(Snapshot {
                entries: entry.into_iter().collect(),
                revision,
            })
        }
    }
}

async fn follow(
    backend: &DynBackend,
    election: &ElectionName,
    strategy: Strategy,
    retry: Backoff,
    timeout: Duration,
    tx: &watch::Sender<Option<Option<LeaderInfo>>>,
) {
    let scope = match strategy {
        Strategy::Queue => WatchScope::Election(election.clone()),
        Strategy::SingleKey => WatchScope::Key(backend.leader_key(election)),
    };
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
        let snapshot = match read(backend, election, strategy, timeout).await {
            Ok(s) => s,
            Err(e) => {
                debug!(%election, error = %e, "observe: read failed, retrying");
                failures = failures.saturating_add(1);
                tokio::time::sleep(retry.delay(failures, &mut rng)).await;
                continue;
            }
        };
        tracker.reset(&snapshot);
        publish(tracker.leader().cloned());
        let mut stream = match with_timeout(
            backend.kind(),
            "watch",
            timeout,
            backend.watch(scope.clone(), snapshot.revision + 1),
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                debug!(%election, error = %e, "observe: watch failed, retrying");
                metrics::watch_reconnect(election, WatchRole::Observer);
                failures = failures.saturating_add(1);
                tokio::time::sleep(retry.delay(failures, &mut rng)).await;
                continue;
            }
        };
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
