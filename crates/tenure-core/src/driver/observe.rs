//! Following who leads an election, without ever skipping the latest.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_stream::wrappers::WatchStream;
use tracing::debug;

use super::clock::with_timeout;
use crate::machine::{Backoff, LeaderTracker};
use crate::metrics::{self, WatchRole};
use crate::{
    DynBackend, ElectionName, LeaderInfo, LeaseId, Observation, Result, Revision, Snapshot,
    WatchScope,
};

/// Stream of what an observer knows of the leader, returned by
/// [`Election::observe`](super::Election::observe). Dropping it stops the
/// background watch.
pub struct LeaderStream {
    inner: Pin<Box<dyn Stream<Item = Observation> + Send>>,
}

impl std::fmt::Debug for LeaderStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaderStream")
    }
}

impl Stream for LeaderStream {
    type Item = Observation;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// How an observer reads, watches and decides that it no longer knows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ObserveConfig {
    pub(crate) retry: Backoff,
    /// Deadline of each request.
    pub(crate) timeout: Duration,
    /// Longer than this without a confirmation from the backend, the
    /// leader is [`Observation::Unknown`].
    pub(crate) max_staleness: Duration,
}

pub(crate) fn spawn(
    backend: DynBackend,
    election: ElectionName,
    config: ObserveConfig,
) -> LeaderStream {
    // `None` = not read yet; never shown to the reader.
    let (tx, rx) = watch::channel(None::<Observation>);
    tokio::spawn(async move {
        tokio::select! {
            () = follow(&backend, &election, config, &tx) => {}
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
            starts_at_head: true,
        },
        queue_revision: queue.revision,
        key_revision,
    })
}

/// The leader of an election whatever the strategy it runs: the head of
/// its queue or the entry of its single leader key (when a lease holds
/// it), whichever was created first.
pub(crate) async fn read_head(
    backend: &DynBackend,
    election: &ElectionName,
    timeout: Duration,
) -> Result<Option<crate::Entry>> {
    let kind = backend.kind();
    let key = backend.leader_key(election);
    let (head, (leader, _)) = futures::future::try_join(
        with_timeout(kind, "read leader", timeout, backend.queue_head(election)),
        with_timeout(kind, "get", timeout, backend.get(&key)),
    )
    .await?;
    Ok(head
        .entries
        .into_iter()
        .chain(leader)
        .filter(|e| e.lease != LeaseId(0))
        .min_by_key(|e| e.created))
}

/// `stream`, then an error item when it ends: a watch's end means it is
/// broken.
fn ended(stream: crate::WatchStream) -> crate::WatchStream {
    stream
        .chain(futures::stream::once(async {
            Err(crate::Error::Cancelled("watch ended"))
        }))
        .boxed()
}

/// When the backend last confirmed what the observer shows, and whether
/// the reader has been told that it no longer knows.
struct Freshness<'a> {
    tx: &'a watch::Sender<Option<Observation>>,
    max_staleness: Duration,
    confirmed: Instant,
}

impl Freshness<'_> {
    /// Publishes a confirmed observation (the reader sees it only if it
    /// differs from what it saw last, `Unknown` included).
    fn confirm(&mut self, observation: Observation) {
        self.confirmed = Instant::now();
        self.tx.send_if_modified(|cur| {
            let changed = cur.as_ref() != Some(&observation);
            *cur = Some(observation);
            changed
        });
    }

    /// The backend answered without news: what is shown stays true.
    fn touch(&mut self, current: Option<&LeaderInfo>) {
        if self.is_unknown() {
            self.confirm(current.cloned().into());
        } else {
            self.confirmed = Instant::now();
        }
    }

    /// Whether the reader has been told that the leader is unknown.
    fn is_unknown(&self) -> bool {
        self.tx
            .borrow()
            .as_ref()
            .is_some_and(Observation::is_unknown)
    }

    /// When the shown leader stops being confirmed.
    fn stale_at(&self) -> Instant {
        self.confirmed + self.max_staleness
    }

    /// Past the bound: tells the reader, once, that it no longer knows.
    fn check(&self) {
        let unconfirmed_for = self.confirmed.elapsed();
        if unconfirmed_for < self.max_staleness {
            return;
        }
        self.tx.send_if_modified(|cur| {
            if cur.as_ref().is_some_and(Observation::is_unknown) {
                return false;
            }
            debug!(
                ?unconfirmed_for,
                "observe: leader unconfirmed past the bound"
            );
            *cur = Some(Observation::Unknown { unconfirmed_for });
            true
        });
    }

    /// Sleeps `delay`, waking at the staleness bound to report it.
    async fn sleep(&self, delay: Duration) {
        let until = Instant::now() + delay;
        if self.stale_at() < until {
            tokio::time::sleep_until(self.stale_at()).await;
            self.check();
        }
        tokio::time::sleep_until(until).await;
        self.check();
    }
}

async fn follow(
    backend: &DynBackend,
    election: &ElectionName,
    config: ObserveConfig,
    tx: &watch::Sender<Option<Observation>>,
) {
    // Both strategies' keys: an election holds one strategy at a time
    // (backends refuse a candidate of the other), so readers agree on who
    // leads whatever strategy they were built with.
    let queue_scope = WatchScope::Election(election.clone());
    let key_scope = WatchScope::Key(backend.leader_key(election));
    // A quiet watch says nothing about whether the backend is alive (a
    // frozen server keeps the connection open): a cheap read of one key,
    // a third of the bound after the last confirmation, tells.
    let probe_key = backend.leader_key(election);
    let probe_every = config.max_staleness / 3;
    let kind = backend.kind();
    let mut tracker = LeaderTracker::new();
    let mut rng = fastrand::Rng::new();
    let mut failures = 0u32;
    let mut fresh = Freshness {
        tx,
        max_staleness: config.max_staleness,
        confirmed: Instant::now(),
    };
    loop {
        let reading = match read(backend, election, config.timeout).await {
            Ok(s) => s,
            Err(e) => {
                debug!(%election, error = %e, "observe: read failed, retrying");
                fresh.check();
                failures = failures.saturating_add(1);
                fresh
                    .sleep(config.retry.delay_from(failures, &mut rng))
                    .await;
                continue;
            }
        };
        tracker.reset(&reading.snapshot);
        fresh.confirm(tracker.leader().cloned().into());
        let watches = futures::future::try_join(
            with_timeout(
                kind,
                "watch",
                config.timeout,
                backend.watch(queue_scope.clone(), reading.queue_revision + 1),
            ),
            with_timeout(
                kind,
                "watch",
                config.timeout,
                backend.watch(key_scope.clone(), reading.key_revision + 1),
            ),
        )
        .await;
        // Either stream failing or ending breaks the pair: each ends with
        // an error item, so the merged stream says so as soon as one does.
        let mut stream = match watches {
            Ok((queue, key)) => futures::stream::select(ended(queue), ended(key)),
            Err(e) => {
                debug!(%election, error = %e, "observe: watch failed, retrying");
                metrics::watch_reconnect(election, WatchRole::Observer);
                failures = failures.saturating_add(1);
                fresh
                    .sleep(config.retry.delay_from(failures, &mut rng))
                    .await;
                continue;
            }
        };
        let mut probe: Option<BoxFuture<'static, Result<()>>> = None;
        let mut probed = fresh.confirmed;
        let mut resync = false;
        loop {
            let next_probe = fresh.confirmed.max(probed) + probe_every;
            tokio::select! {
                event = stream.next() => match event {
                    Some(Ok(event)) => {
                        match tracker.apply(&event) {
                            Ok(Some(leader)) => fresh.confirm(leader.into()),
                            Ok(None) => fresh.touch(tracker.leader()),
                            Err(()) => break, // history lost: read again
                        }
                        failures = 0;
                    }
                    _ => break,
                },
                r = async { match probe.as_mut() { Some(p) => p.await, None => std::future::pending().await } } => {
                    probe = None;
                    probed = Instant::now();
                    match r {
                        // Back after an outage: what the watch delivered
                        // may lag behind; read afresh before saying who
                        // leads.
                        Ok(()) if fresh.is_unknown() => {
                            resync = true;
                            break;
                        }
                        Ok(()) => fresh.touch(tracker.leader()),
                        Err(e) => {
                            debug!(%election, error = %e, "observe: backend did not confirm");
                            fresh.check();
                        }
                    }
                }
                () = tokio::time::sleep_until(next_probe), if probe.is_none() => {
                    let (b, key, timeout) = (backend.clone(), probe_key.clone(), config.timeout);
                    probe = Some(Box::pin(async move {
                        with_timeout(kind, "get", timeout, b.get(&key)).await.map(|_| ())
                    }));
                }
                () = tokio::time::sleep_until(fresh.stale_at()), if !fresh.is_unknown() => fresh.check(),
            }
        }
        if resync {
            continue;
        }
        metrics::watch_reconnect(election, WatchRole::Observer);
        // The watch ended, failed or lost history. Back off before reading
        // again, growing while watches keep breaking before delivering
        // anything (a backend that reports lost history on every churn must
        // not make the observer spin).
        failures = failures.saturating_add(1);
        fresh
            .sleep(config.retry.delay_from(failures, &mut rng))
            .await;
    }
}
