//! [`observe_all`](super::observe_all) on a backend that can read and
//! watch a whole prefix (etcd): one read, one watch and one probe for
//! every election, however many there are.
//!
//! The rules are those of a single observer, applied to the whole prefix:
//! a broken watch or lost history means reading everything again; while
//! the watch is quiet, a read of one key every third of the bound
//! confirms that the backend still answers; past the bound without a
//! confirmation every election is reported [`Observation::Unknown`], and
//! once the backend answers again everything is read afresh and every
//! election's leader (or "no leader") reported again.

use std::collections::HashMap;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use super::clock::with_timeout;
use super::observe::ObserveConfig;
use super::observe_all::ElectionObservation;
use crate::machine::LeaderTracker;
use crate::{DynBackend, ElectionName, Entry, Observation, Result, Revision, Snapshot};

/// What the read of the whole prefix found.
pub(crate) type PrefixRead = (Vec<(ElectionName, Entry)>, Revision);

/// One election's tracker and what the reader was last told of it.
struct Followed {
    tracker: LeaderTracker,
    shown: Option<Observation>,
}

/// The state of the prefix observer.
pub(crate) struct PrefixFollower {
    pub(crate) backend: DynBackend,
    pub(crate) prefix: String,
    pub(crate) config: ObserveConfig,
    elections: HashMap<ElectionName, Followed>,
    confirmed: Instant,
    unknown: bool,
}

/// Tells the reader `observation` of `election` unless it was told that
/// already; false once the reader has gone.
async fn show(
    tx: &mpsc::Sender<ElectionObservation>,
    election: &ElectionName,
    followed: &mut Followed,
    observation: Observation,
) -> bool {
    if followed.shown.as_ref() == Some(&observation) {
        return true;
    }
    followed.shown = Some(observation.clone());
    tx.send(ElectionObservation {
        election: election.clone(),
        observation,
    })
    .await
    .is_ok()
}

impl PrefixFollower {
    pub(crate) fn new(backend: DynBackend, prefix: String, config: ObserveConfig) -> Self {
        PrefixFollower {
            backend,
            prefix,
            config,
            elections: HashMap::new(),
            confirmed: Instant::now(),
            unknown: false,
        }
    }

    async fn read(&self) -> Result<PrefixRead> {
        with_timeout(
            self.backend.kind(),
            "read prefix",
            self.config.timeout,
            self.backend.read_prefix(&self.prefix),
        )
        .await
    }

    /// Takes in a fresh read: every election's leader, "no leader" for
    /// those that no longer have a candidate. False once the reader has
    /// gone.
    async fn reset(&mut self, read: PrefixRead, tx: &mpsc::Sender<ElectionObservation>) -> bool {
        let (entries, revision) = read;
        let mut by_election: HashMap<ElectionName, Vec<Entry>> = HashMap::new();
        for (election, entry) in entries {
            by_election.entry(election).or_default().push(entry);
        }
        for name in by_election.keys() {
            self.elections
                .entry(name.clone())
                .or_insert_with(|| Followed {
                    tracker: LeaderTracker::new(),
                    shown: None,
                });
        }
        self.confirmed = Instant::now();
        self.unknown = false;
        for (name, followed) in &mut self.elections {
            let mut entries = by_election.remove(name).unwrap_or_default();
            entries.sort_by_key(|e| e.created);
            followed.tracker.reset(&Snapshot {
                entries,
                revision,
                starts_at_head: true,
            });
            let now = followed.tracker.leader().cloned().into();
            if !show(tx, name, followed, now).await {
                return false;
            }
        }
        true
    }

    /// Reports every election `Unknown`, once, past the bound.
    async fn check(&mut self, tx: &mpsc::Sender<ElectionObservation>) -> bool {
        let unconfirmed_for = self.confirmed.elapsed();
        if self.unknown || unconfirmed_for < self.config.max_staleness {
            return true;
        }
        self.unknown = true;
        debug!(prefix = %self.prefix, ?unconfirmed_for, "observe_all: leaders unconfirmed past the bound");
        for (name, followed) in &mut self.elections {
            if !show(tx, name, followed, Observation::Unknown { unconfirmed_for }).await {
                return false;
            }
        }
        true
    }

    /// Sleeps `delay`, reporting the bound if it passes meanwhile.
    async fn sleep(
        &mut self,
        delay: std::time::Duration,
        tx: &mpsc::Sender<ElectionObservation>,
    ) -> bool {
        let until = Instant::now() + delay;
        let stale_at = self.confirmed + self.config.max_staleness;
        if !self.unknown && stale_at < until {
            tokio::time::sleep_until(stale_at).await;
            if !self.check(tx).await {
                return false;
            }
        }
        tokio::time::sleep_until(until).await;
        self.check(tx).await
    }

    /// Follows the prefix from `first` (the read that showed the backend
    /// supports it) until the reader goes.
    pub(crate) async fn run(mut self, first: PrefixRead, tx: mpsc::Sender<ElectionObservation>) {
        let kind = self.backend.kind();
        let probe_every = self.config.max_staleness / 3;
        let mut failures = 0u32;
        let mut next: Option<PrefixRead> = Some(first);
        loop {
            let read = match next.take() {
                Some(r) => r,
                None => match self.read().await {
                    Ok(r) => r,
                    Err(e) => {
                        debug!(prefix = %self.prefix, error = %e, "observe_all: read failed");
                        failures = failures.saturating_add(1);
                        let delay = self.config.retry.delay(failures);
                        if !self.sleep(delay, &tx).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            let from = read.1 + 1;
            if !self.reset(read, &tx).await {
                return;
            }
            let opened = with_timeout(
                kind,
                "watch prefix",
                self.config.timeout,
                self.backend.watch_prefix(&self.prefix, from),
            )
            .await;
            let mut stream = match opened {
                Ok(s) => s,
                Err(e) => {
                    debug!(prefix = %self.prefix, error = %e, "observe_all: watch failed");
                    failures = failures.saturating_add(1);
                    let delay = self.config.retry.delay(failures);
                    if !self.sleep(delay, &tx).await {
                        return;
                    }
                    continue;
                }
            };
            let mut probe: Option<futures::future::BoxFuture<'static, Result<()>>> = None;
            let mut probed = self.confirmed;
            let mut resync = false;
            loop {
                let next_probe = self.confirmed.max(probed) + probe_every;
                let stale_at = self.confirmed + self.config.max_staleness;
                tokio::select! {
                    event = stream.next() => match event {
                        Some(Ok((Some(name), event))) => {
                            failures = 0;
                            self.confirmed = Instant::now();
                            if self.unknown {
                                // Back after an outage: read afresh first.
                                resync = true;
                                break;
                            }
                            let candidate = matches!(&event, crate::WatchEvent::Put(e) if e.lease.0 != 0);
                            if !candidate && !self.elections.contains_key(&name) {
                                continue; // application data, or an election never seen
                            }
                            let followed = self.elections.entry(name.clone()).or_insert_with(|| Followed {
                                tracker: LeaderTracker::new(),
                                shown: None,
                            });
                            match followed.tracker.apply(&event) {
                                Ok(_) => {
                                    let now = followed.tracker.leader().cloned().into();
                                    if !show(&tx, &name, followed, now).await {
                                        return;
                                    }
                                }
                                Err(()) => break,
                            }
                        }
                        // History lost, an error or the end: read again.
                        _ => break,
                    },
                    r = async { match probe.as_mut() { Some(p) => p.await, None => std::future::pending().await } } => {
                        probe = None;
                        probed = Instant::now();
                        match r {
                            Ok(()) if self.unknown => {
                                resync = true;
                                break;
                            }
                            Ok(()) => self.confirmed = Instant::now(),
                            Err(e) => {
                                debug!(prefix = %self.prefix, error = %e, "observe_all: backend did not confirm");
                                if !self.check(&tx).await {
                                    return;
                                }
                            }
                        }
                    }
                    () = tokio::time::sleep_until(next_probe), if probe.is_none() => {
                        let (b, timeout) = (self.backend.clone(), self.config.timeout);
                        // Any key: the answer, not its content, confirms.
                        let key = self.prefix.clone() + PROBE_KEY;
                        probe = Some(Box::pin(async move {
                            with_timeout(kind, "get", timeout, b.get(&key)).await.map(|_| ())
                        }));
                    }
                    () = tokio::time::sleep_until(stale_at), if !self.unknown => {
                        if !self.check(&tx).await {
                            return;
                        }
                    }
                    () = tx.closed() => return,
                }
            }
            if resync {
                continue;
            }
            // The watch ended, failed or lost history: back off, growing
            // while watches keep breaking, then read again.
            failures = failures.saturating_add(1);
            let delay = self.config.retry.delay(failures);
            if !self.sleep(delay, &tx).await {
                return;
            }
        }
    }
}

/// The key the probe reads under the prefix (absent, normally: only the
/// backend's answer matters).
const PROBE_KEY: &str = "tenure-probe";
