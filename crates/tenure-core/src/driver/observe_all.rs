//! Following every election under a prefix at once, without an
//! [`Election`](super::Election) per name: what a status page or an
//! operator with one election per shard or tenant needs.
//!
//! A backend that can read and watch a whole prefix
//! ([`CoordinationBackend::read_prefix`](crate::CoordinationBackend::read_prefix),
//! etcd) is followed through one read, one watch and one probe for every
//! election, by the same rules (see `observe_prefix`). Otherwise the
//! elections come from the backend
//! ([`CoordinationBackend::elections`](crate::CoordinationBackend::elections)),
//! new ones from
//! [`CoordinationBackend::watch_elections`](crate::CoordinationBackend::watch_elections)
//! (or, for a backend that cannot watch for them, from listing again every
//! third of the staleness bound). Each election is then followed by the
//! same observer as [`Election::observe`](super::Election::observe), so
//! the rule that a leader the backend has not confirmed within the bound
//! is shown as [`Observation::Unknown`] holds for each of them alike.

use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::SelectAll;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use super::clock::with_timeout;
use super::observe::{self, LeaderStream, ObserveConfig};
use super::observe_prefix::PrefixFollower;
use crate::machine::{Backoff, ElectionConfig};
use crate::{DynBackend, ElectionName, ElectionStream, Error, Observation, Result};

/// What an [`AllLeaders`] stream yields: an observation of one election.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElectionObservation {
    /// The election.
    pub election: ElectionName,
    /// What is known of its leader, as
    /// [`Election::observe`](super::Election::observe) yields it.
    pub observation: Observation,
}

/// The stream [`observe_all`] returns: each election's current leader as
/// soon as it is found, then every change of any of them. Dropping it
/// stops every background watch.
pub struct AllLeaders {
    rx: mpsc::Receiver<ElectionObservation>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for AllLeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AllLeaders")
    }
}

impl Drop for AllLeaders {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for AllLeaders {
    type Item = ElectionObservation;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// Observes every election whose name starts with `prefix` (`""` for all
/// of them) with the default bounds: [`ObserveAll::new`] then
/// [`start`](ObserveAll::start).
///
/// # Errors
/// As [`ObserveAll::start`].
pub async fn observe_all(backend: DynBackend, prefix: impl Into<String>) -> Result<AllLeaders> {
    ObserveAll::new(backend, prefix).start().await
}

/// Builder of an [`AllLeaders`] stream.
#[derive(Clone, Debug)]
#[must_use]
pub struct ObserveAll {
    backend: DynBackend,
    prefix: String,
    max_staleness: Duration,
    request_timeout: Option<Duration>,
    retry: Backoff,
}

/// How long a leader is shown unconfirmed by default: the default TTL of
/// a campaign, past which its leader may be gone.
const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(10);

/// Buffer between the observers and the reader: a slow reader holds the
/// observers back (each keeps only its latest observation meanwhile).
const BUFFER: usize = 256;

impl ObserveAll {
    /// Every election whose name starts with `prefix` (`""`: every
    /// election in the backend's namespace; `"jobs/"`: those under
    /// `jobs/`), on `backend`.
    pub fn new(backend: DynBackend, prefix: impl Into<String>) -> Self {
        ObserveAll {
            backend,
            prefix: prefix.into(),
            max_staleness: DEFAULT_MAX_STALENESS,
            request_timeout: None,
            retry: ElectionConfig::default().retry,
        }
    }

    /// How long a leader the backend has not confirmed is still shown
    /// (default 10 s, the default TTL): past it, that election's leader
    /// is [`Observation::Unknown`]. Set it to the candidates' TTL.
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound;
        self
    }

    /// The deadline of each request (default: a third of the staleness
    /// bound).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Lists the elections, then follows them and every election that
    /// appears later.
    ///
    /// # Errors
    /// [`Error::InvalidElectionName`] for a prefix no election name can
    /// start with; [`Error::InvalidConfig`] for a zero bound or timeout;
    /// [`Error::Unsupported`] when the backend can neither read a prefix
    /// nor list its elections;
    /// any error of the first listing (unreachable, credentials): later
    /// failures are retried, and show as `Unknown`.
    pub async fn start(self) -> Result<AllLeaders> {
        if !self.prefix.is_empty() {
            // A prefix is the start of a name: it obeys the same rules.
            ElectionName::new(self.prefix.trim_end_matches('/'))?;
        }
        if self.max_staleness.is_zero() {
            return Err(Error::InvalidConfig {
                field: "max_staleness",
                reason: "must be positive".into(),
            });
        }
        let timeout = self.request_timeout.unwrap_or(self.max_staleness / 3);
        if timeout.is_zero() {
            return Err(Error::InvalidConfig {
                field: "request_timeout",
                reason: "must be positive".into(),
            });
        }
        let backend = self.backend;
        let kind = backend.kind();
        let config = ObserveConfig {
            retry: self.retry,
            timeout,
            max_staleness: self.max_staleness,
        };
        let (tx, rx) = mpsc::channel(BUFFER);
        // One read and one watch for the whole prefix where the backend
        // can; one observer per election otherwise.
        let read = with_timeout(
            kind,
            "read prefix",
            timeout,
            backend.read_prefix(&self.prefix),
        )
        .await;
        let task = match read {
            Ok(first) => {
                let follower = PrefixFollower::new(backend, self.prefix, config);
                tokio::spawn(follower.run(first, tx))
            }
            Err(Error::Unsupported { .. }) => {
                let first = with_timeout(
                    kind,
                    "list elections",
                    timeout,
                    backend.elections(&self.prefix),
                )
                .await?;
                let follower = Follower {
                    backend,
                    prefix: self.prefix,
                    config,
                    known: HashSet::new(),
                    observers: SelectAll::new(),
                };
                tokio::spawn(follower.run(first, tx))
            }
            Err(e) => return Err(e),
        };
        Ok(AllLeaders { rx, task })
    }
}

type Tagged =
    futures::stream::Map<LeaderStream, Box<dyn FnMut(Observation) -> ElectionObservation + Send>>;

/// The background task: finds elections, runs one observer each, and
/// forwards what they see.
struct Follower {
    backend: DynBackend,
    prefix: String,
    config: ObserveConfig,
    known: HashSet<ElectionName>,
    observers: SelectAll<Tagged>,
}

impl Follower {
    /// Starts an observer for `election` unless one runs already.
    fn add(&mut self, election: ElectionName) {
        if !election.as_str().starts_with(&self.prefix) || self.known.contains(&election) {
            return;
        }
        self.known.insert(election.clone());
        let stream = observe::spawn(self.backend.clone(), election.clone(), self.config);
        let tag: Box<dyn FnMut(Observation) -> ElectionObservation + Send> =
            Box::new(move |observation| ElectionObservation {
                election: election.clone(),
                observation,
            });
        self.observers.push(stream.map(tag));
    }

    /// Lists the elections again; true if the backend answered.
    async fn relist(&mut self) -> bool {
        let kind = self.backend.kind();
        let listed = with_timeout(
            kind,
            "list elections",
            self.config.timeout,
            self.backend.elections(&self.prefix),
        )
        .await;
        match listed {
            Ok(names) => {
                names.into_iter().for_each(|n| self.add(n));
                true
            }
            Err(e) => {
                debug!(prefix = %self.prefix, error = %e, "observe_all: listing failed");
                false
            }
        }
    }

    async fn run(mut self, first: Vec<ElectionName>, tx: mpsc::Sender<ElectionObservation>) {
        first.into_iter().for_each(|n| self.add(n));
        let kind = self.backend.kind();
        let period = self.config.max_staleness / 3;
        let mut hints: Option<ElectionStream> = None;
        // Whether the backend can watch for new elections at all.
        let mut can_watch = true;
        let mut failures = 0u32;
        // When to list again (or try the watch again).
        let mut next_look = Instant::now();
        loop {
            if Instant::now() >= next_look {
                if hints.is_none() && can_watch {
                    let opened = with_timeout(
                        kind,
                        "watch elections",
                        self.config.timeout,
                        self.backend.watch_elections(&self.prefix),
                    )
                    .await;
                    match opened {
                        Ok(stream) => hints = Some(stream),
                        Err(Error::Unsupported { .. }) => can_watch = false,
                        Err(e) => {
                            debug!(prefix = %self.prefix, error = %e, "observe_all: watch failed");
                        }
                    }
                }
                // After (re)opening the watch: whatever appeared before
                // it was set is found by this listing.
                let listed = self.relist().await;
                failures = if listed && (hints.is_some() || !can_watch) {
                    0
                } else {
                    failures.saturating_add(1)
                };
                next_look = Instant::now()
                    + if failures > 0 {
                        self.config.retry.delay(failures)
                    } else {
                        period
                    };
            }
            let watching = hints.is_some();
            tokio::select! {
                Some(item) = self.observers.next(), if !self.observers.is_empty() => {
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
                hint = async { match hints.as_mut() { Some(h) => h.next().await, None => std::future::pending().await } } => match hint {
                    Some(Ok(name)) => self.add(name),
                    broken => {
                        if let Some(Err(e)) = broken {
                            debug!(prefix = %self.prefix, error = %e, "observe_all: watch broke");
                        }
                        hints = None;
                        next_look = Instant::now();
                    }
                },
                // While watching, nothing needs a periodic listing.
                () = tokio::time::sleep_until(next_look), if !watching || failures > 0 => {}
                () = tx.closed() => return,
            }
        }
    }
}
