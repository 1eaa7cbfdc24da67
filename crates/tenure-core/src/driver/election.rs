//! [`Election`]: a handle on one named election.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::mpsc;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::campaign::{CampaignTask, Control, Outcome};
use super::clock;
use super::closing::Closing;
use super::leadership::Leadership;
use super::observe::{self, LeaderStream};
use super::session::Session;
use crate::machine::{Backoff, ElectionConfig, ElectionMachine, Strategy};
use crate::{check_ttl, DynBackend, ElectionName, Entry, Error, IntoValue, LeaderInfo, Result};

/// The lease TTL of an election whose builder was given none.
const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// Configures an [`Election`].
#[derive(Debug)]
pub struct ElectionBuilder {
    backend: DynBackend,
    name: Result<ElectionName>,
    /// `None`: the default, fitted into the backend's TTL bounds.
    ttl: Option<Duration>,
    strategy: Strategy,
    session: Option<Session>,
    retry: Backoff,
    recampaign_delay: Duration,
    request_timeout: Option<Duration>,
    max_staleness: Option<Duration>,
}

impl ElectionBuilder {
    /// Lease TTL for campaigns that start their own session (default 10 s,
    /// or the nearest TTL the backend grants when 10 s is outside its
    /// bounds). Failover after a crash takes about this long; keep-alives
    /// run every TTL / 3. A shared [`session`](Self::session) has a TTL of
    /// its own: giving both is an [`Error::InvalidConfig`] at
    /// [`build`](Self::build).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Queue (default) or single-key strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Campaign on this shared session instead of starting one lease per
    /// campaign. Many elections can share one session (one keep-alive
    /// stream); resigning then deletes only this election's entry. The
    /// session's TTL applies: do not also set [`ttl`](Self::ttl).
    pub fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    /// Back-off for retries after failed requests and, on the single-key
    /// strategy, before racing for a freed leader key (default: full jitter
    /// from 50 ms doubling to 1 s).
    pub fn retry(mut self, retry: Backoff) -> Self {
        self.retry = retry;
        self
    }

    /// Anti-flap: after a term ends, a new campaign on this handle waits
    /// until this long has passed since the loss (plus up to as much again
    /// of jitter). Default zero.
    pub fn recampaign_delay(mut self, delay: Duration) -> Self {
        self.recampaign_delay = delay;
        self
    }

    /// Deadline of each backend request (default TTL / 3).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// How long an observer ([`Election::observe`]) may go without a
    /// confirmation from the backend before it reports the leader as
    /// [`Observation::Unknown`](crate::Observation::Unknown) (default: the
    /// TTL, or the shared session's). Must be positive.
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = Some(bound);
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// [`Error::InvalidElectionName`] and [`Error::InvalidTtl`] (checked
    /// against the backend's bounds); [`Error::InvalidConfig`] for a zero
    /// staleness bound, a back-off whose first window exceeds its cap, or
    /// a [`ttl`](Self::ttl) given together with a
    /// [`session`](Self::session) (whose own TTL would silently win).
    pub fn build(self) -> Result<Election> {
        let name = self.name?;
        if let (Some(ttl), Some(session)) = (self.ttl, &self.session) {
            return Err(Error::InvalidConfig {
                field: "ttl",
                reason: format!(
                    "ttl ({ttl:?}) and session (lease {}, TTL {:?}) both given: a campaign on \
                     a shared session uses the session's TTL; set the TTL on the \
                     SessionBuilder instead",
                    session.lease(),
                    session.ttl()
                ),
            });
        }
        let ttl = match self.ttl {
            // An explicit TTL the backend cannot grant is an error...
            Some(ttl) => {
                check_ttl(ttl, self.backend.ttl_bounds())?;
                ttl
            }
            // ...the default is fitted (a reader against a ZooKeeper whose
            // sessions last at most 6 s must not fail on a TTL it never
            // asked for).
            None => {
                let (min, max) = self.backend.ttl_bounds();
                DEFAULT_TTL.clamp(min, max.max(min))
            }
        };
        if self.max_staleness.is_some_and(|b| b.is_zero()) {
            return Err(Error::InvalidConfig {
                field: "max_staleness",
                reason: "must be positive".into(),
            });
        }
        if self.retry.initial() > self.retry.max() {
            return Err(Error::InvalidConfig {
                field: "retry",
                reason: format!(
                    "initial back-off {:?} exceeds the maximum {:?}",
                    self.retry.initial(),
                    self.retry.max()
                ),
            });
        }
        Ok(Election {
            inner: Arc::new(Inner {
                backend: self.backend,
                name,
                ttl,
                strategy: self.strategy,
                session: self.session,
                retry: self.retry,
                recampaign_delay: self.recampaign_delay,
                request_timeout: self.request_timeout,
                max_staleness: self.max_staleness,
                last_loss: Mutex::new(None),
                closing: Arc::default(),
            }),
        })
    }
}

/// A handle on one named election.
///
/// ```
/// # async fn demo(backend: tenure_core::DynBackend) -> tenure_core::Result<()> {
/// use std::time::Duration;
/// use tenure_core::Election;
///
/// let election = Election::builder(backend, "scheduler")
///     .ttl(Duration::from_secs(5))
///     .build()?;
/// let leadership = election.campaign("node-a").await?;
/// println!("leading with fencing token {}", leadership.token());
/// let reason = leadership.lost().await; // do leader work until this fires
/// println!("stopped leading: {reason}");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Election {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: DynBackend,
    name: ElectionName,
    ttl: Duration,
    strategy: Strategy,
    session: Option<Session>,
    retry: Backoff,
    recampaign_delay: Duration,
    request_timeout: Option<Duration>,
    max_staleness: Option<Duration>,
    last_loss: Mutex<Option<Instant>>,
    /// Set by [`Election::close`] (every campaign withdraws), and counts
    /// the campaign tasks started on this handle, so that close can wait
    /// until their entries are withdrawn.
    closing: Arc<Closing>,
}

impl Election {
    /// Configures an election named `name` on `backend`. The name is
    /// validated by [`ElectionBuilder::build`].
    pub fn builder(backend: DynBackend, name: impl Into<String>) -> ElectionBuilder {
        ElectionBuilder {
            backend,
            name: ElectionName::new(name),
            ttl: None,
            strategy: Strategy::Queue,
            session: None,
            retry: ElectionConfig::default().retry,
            recampaign_delay: Duration::ZERO,
            request_timeout: None,
            max_staleness: None,
        }
    }

    /// The election's name.
    pub fn name(&self) -> &ElectionName {
        &self.inner.name
    }

    /// The backend.
    pub fn backend(&self) -> &DynBackend {
        &self.inner.backend
    }

    /// Campaigns with proposal `value` and resolves once elected.
    ///
    /// Waits as long as others lead. Dropping the future withdraws the
    /// candidacy: the entry is deleted by a background task, which a
    /// runtime that shuts down (the end of `main`) may never run. To stop
    /// waiting and know that the entry is gone, use
    /// [`campaign_until`](Self::campaign_until) or [`close`](Self::close).
    ///
    /// # Errors
    /// Permanent errors come back at once, typed as the backend reported
    /// them ([`Error::is_transient`] is false): [`Error::Unauthenticated`]
    /// for credentials or a role/ACL without permission on the election,
    /// invalid names or configuration, [`Error::Protocol`].
    /// [`Error::LeaseExpired`] if the lease ends before we win (a shared
    /// session that was lost, or a backend unreachable past the deadline);
    /// errors starting the session ([`Error::Unreachable`],
    /// [`Error::Timeout`]); [`Error::Cancelled`] once the election is
    /// [closed](Self::close).
    pub async fn campaign(&self, value: impl IntoValue) -> Result<Leadership> {
        match self.start(value.into_value(), false, None).await? {
            Some(l) => Ok(l),
            None => Err(Error::Cancelled("campaign withdrawn")),
        }
    }

    /// Campaigns like [`campaign`](Self::campaign) until `stop` is
    /// cancelled. If `stop` fires first, withdraws the candidacy and
    /// returns `Ok(None)` only once the entry is deleted (or the request
    /// to delete it has failed or timed out, and, on a session of its own,
    /// the lease has been revoked): a process may exit right after.
    ///
    /// # Errors
    /// As [`campaign`](Self::campaign).
    pub async fn campaign_until(
        &self,
        value: impl IntoValue,
        stop: &CancellationToken,
    ) -> Result<Option<Leadership>> {
        self.start(value.into_value(), false, Some(stop)).await
    }

    /// Withdraws every campaign started on this handle (or its clones)
    /// and resigns every term they won, then waits until each has deleted
    /// its entry (or given up on the request, bounded by the request
    /// timeout) and closed the session it started. Campaigns started after
    /// this fail with [`Error::Cancelled`].
    ///
    /// This is the call to await before a process exits: a dropped
    /// [`Leadership`] or campaign future only starts the release in the
    /// background.
    pub async fn close(&self) {
        self.inner.closing.close();
        self.inner.closing.ended().await;
    }

    /// Campaigns once without waiting: returns the leadership if we are
    /// elected straight away, or `None` (having withdrawn our entry) if
    /// someone else leads.
    ///
    /// # Errors
    /// As [`campaign`](Self::campaign).
    pub async fn try_campaign(&self, value: impl IntoValue) -> Result<Option<Leadership>> {
        self.start(value.into_value(), true, None).await
    }

    /// The current leader, read from the backend now: the head of the
    /// queue and the single leader key, whichever strategy the election
    /// runs (on etcd, two reads of one key each whatever the number of
    /// candidates).
    ///
    /// # Errors
    /// Backend errors ([`Error::Unreachable`], [`Error::Timeout`] after
    /// the request timeout, ...).
    pub async fn leader(&self) -> Result<Option<LeaderInfo>> {
        let inner = &self.inner;
        let head = observe::read_head(&inner.backend, &inner.name, self.request_timeout()).await?;
        Ok(head.as_ref().map(LeaderInfo::from))
    }

    /// The candidates in order, the leader first: the queue, or on an
    /// election run with the single-key strategy the leader alone. Both
    /// are read whatever this handle's strategy, so every reader agrees on
    /// who leads; keys bound to no lease are never candidates.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn candidates(&self) -> Result<Vec<Entry>> {
        let inner = &self.inner;
        let reading = observe::read(&inner.backend, &inner.name, self.request_timeout()).await?;
        Ok(reading.snapshot.entries)
    }

    /// A stream of leader changes: the current leader first
    /// ([`Observation::NoLeader`](crate::Observation::NoLeader) when nobody
    /// leads), then every change. A slow reader may skip intermediate
    /// leaders but always sees the latest. The stream survives broken
    /// watches and lost history by re-reading.
    ///
    /// It never shows a stale leader as current: when the backend has not
    /// confirmed the leader for longer than the
    /// [staleness bound](ElectionBuilder::max_staleness) (the TTL by
    /// default) — a frozen or unreachable backend, a watch that cannot be
    /// re-established — it yields
    /// [`Observation::Unknown`](crate::Observation::Unknown), then the
    /// leader (or no leader) again once the backend answers. While the
    /// watch is quiet the observer confirms with a read of one key every
    /// third of the bound.
    pub fn observe(&self) -> LeaderStream {
        let config = observe::ObserveConfig {
            retry: self.inner.retry,
            timeout: self.request_timeout(),
            max_staleness: self.max_staleness(),
        };
        observe::spawn(self.inner.backend.clone(), self.inner.name.clone(), config)
    }

    /// How long an observer shows a leader it cannot confirm: the
    /// configured bound, else the TTL (the shared session's, if any).
    fn max_staleness(&self) -> Duration {
        self.inner
            .max_staleness
            .unwrap_or_else(|| match &self.inner.session {
                Some(s) => s.ttl(),
                None => self.inner.ttl,
            })
    }

    /// Whether campaigns share a session given to the builder.
    pub(crate) fn has_shared_session(&self) -> bool {
        self.inner.session.is_some()
    }

    /// The back-off for retries.
    pub(crate) fn retry(&self) -> Backoff {
        self.inner.retry
    }

    fn request_timeout(&self) -> Duration {
        self.inner
            .request_timeout
            .unwrap_or_else(|| match &self.inner.session {
                Some(s) => s.request_timeout(),
                None => self.inner.ttl / 3,
            })
    }

    async fn start(
        &self,
        value: Bytes,
        try_only: bool,
        stop: Option<&CancellationToken>,
    ) -> Result<Option<Leadership>> {
        let (session, owns_session) = self.session_for_campaign().await?;
        self.start_on(value, session, owns_session, try_only, stop)
            .await
    }

    /// The session a campaign runs on: the shared one given to the
    /// builder, or a fresh one of its own (`true`: the campaign closes it).
    ///
    /// # Errors
    /// [`Error::Cancelled`] once the election is closed; errors starting
    /// the session.
    pub(crate) async fn session_for_campaign(&self) -> Result<(Session, bool)> {
        let inner = &self.inner;
        if inner.closing.is_closed() {
            return Err(Error::Cancelled("election closed"));
        }
        Ok(match &inner.session {
            Some(s) => (s.clone(), false),
            None => {
                let mut b = Session::builder(inner.backend.clone()).ttl(inner.ttl);
                if let Some(t) = inner.request_timeout {
                    b = b.request_timeout(t);
                }
                // Boxed: the session start is a large future that a
                // campaign with a session of its own awaits once; inline,
                // it would size every waiting campaign future.
                (Box::pin(b.start()).await?, true)
            }
        })
    }

    /// Campaigns on `session` (closed at the end when `owns_session`).
    pub(crate) async fn start_on(
        &self,
        value: Bytes,
        session: Session,
        owns_session: bool,
        try_only: bool,
        stop: Option<&CancellationToken>,
    ) -> Result<Option<Leadership>> {
        let inner = &self.inner;
        // Counted before the check: a close either is seen here or waits
        // for this campaign's task.
        let running = inner.closing.enter();
        if running.is_closed() {
            if owns_session {
                // Boxed, as every await that a waiting campaign does not
                // reach: inline, it would size every campaign future.
                Box::pin(session.close()).await;
            }
            return Err(Error::Cancelled("election closed"));
        }
        let status = session.status();
        if status.lost.is_some() {
            return Err(Error::LeaseExpired {
                lease: session.lease(),
            });
        }
        let now = clock::now();
        let start_delay = self.start_delay(now);
        let config = ElectionConfig {
            strategy: inner.strategy,
            retry: inner.retry,
            start_delay,
        };
        let lease = session.lease();
        let machine = ElectionMachine::new(
            inner.name.clone(),
            config,
            value,
            session.lease(),
            status.valid_until,
            now,
            fastrand::u64(..),
        );
        let (out_tx, out_rx) = oneshot::channel();
        // `futures`' unbounded channel allocates per message: an idle
        // candidate's control channel costs a few hundred bytes less than
        // one that reserves a block of slots up front.
        let (ctl_tx, ctl_rx) = mpsc::unbounded();
        let me = Arc::downgrade(&self.inner);
        let task = CampaignTask {
            backend: inner.backend.clone(),
            machine,
            session,
            owns_session,
            give_up_when_following: try_only,
            outcome: Some(out_tx),
            control: ctl_rx,
            running,
            on_loss: Some(Box::new(move |at| {
                if let Some(inner) = me.upgrade() {
                    *inner.last_loss.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
                }
            })),
        };
        let span = tracing::info_span!("campaign", election = %inner.name, lease = %lease);
        tokio::spawn(task.run().instrument(span));
        let outcome = match stop {
            None => out_rx.await,
            Some(stop) => {
                let withdrawn = Box::pin(async {
                    tokio::select! {
                        biased;
                        o = out_rx => Some(o),
                        () = stop.cancelled() => {
                            // Withdraw and wait until the task has deleted
                            // the entry (or won meanwhile: then the term is
                            // resigned).
                            let (ack_tx, ack_rx) = oneshot::channel();
                            if ctl_tx.unbounded_send(Control::Resign(ack_tx)).is_ok() {
                                let _ = ack_rx.await;
                            }
                            None
                        }
                    }
                });
                match withdrawn.await {
                    Some(o) => o,
                    None => return Ok(None),
                }
            }
        };
        match outcome.map(|boxed| *boxed) {
            Ok(Ok(Outcome::Elected { entry, term })) => Ok(Some(Leadership::new(
                inner.name.clone(),
                entry,
                inner.backend.clone(),
                self.request_timeout(),
                term,
                ctl_tx,
            ))),
            Ok(Ok(Outcome::NotLeader)) => Ok(None),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Cancelled("campaign task ended")),
        }
    }

    fn start_delay(&self, now: Instant) -> Duration {
        if self.inner.recampaign_delay.is_zero() {
            return Duration::ZERO;
        }
        let last = *self
            .inner
            .last_loss
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match last {
            Some(at) => (at + self.inner.recampaign_delay).saturating_duration_since(now),
            None => Duration::ZERO,
        }
    }
}
