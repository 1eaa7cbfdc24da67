//! Callbacks in the style of client-go's leader election, for users who
//! prefer handing over a few functions to driving the futures themselves.
//!
//! [`Election::run`](crate::Election::run) campaigns, runs `on_started_leading` while it leads,
//! calls `on_stopped_leading` when the term ends, campaigns again, and
//! reports every leader change to `on_new_leader`, until its shutdown
//! token fires. The per-term hooks `on_campaigning` and `on_retry` tell
//! what happens between terms.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::leadership::Leadership;
use super::session::Session;
use crate::{Error, FencingToken, LossReason, Observation};

pub(crate) type StartedFn = Box<dyn FnMut(LeaderContext) -> BoxFuture<'static, ()> + Send>;
type StoppedFn = Box<dyn FnMut(LossReason) + Send>;
type NewLeaderFn = Box<dyn FnMut(Observation) + Send + 'static>;
type CampaigningFn = Box<dyn FnMut(&Session) + Send>;
type RetryFn = Box<dyn FnMut(&Error, Duration) + Send>;

/// What `on_started_leading` gets: the term's [`Leadership`] and a signal
/// to stop.
///
/// The work must return soon after [`stopped`](Self::stopped) resolves:
/// [`Election::run`](crate::Election::run) waits for it before it resigns or campaigns again, so
/// that this process never runs two terms' work at once and the successor
/// never overlaps it after a clean hand-over.
#[derive(Clone, Debug)]
pub struct LeaderContext {
    pub(crate) leadership: Arc<Leadership>,
    pub(crate) stop: CancellationToken,
    pub(crate) ttl: Duration,
}

impl LeaderContext {
    /// The term: token, deadline, [`guarded_put`](Leadership::guarded_put).
    pub fn leadership(&self) -> &Leadership {
        &self.leadership
    }

    /// The fencing token of this term.
    pub fn token(&self) -> FencingToken {
        self.leadership.token()
    }

    /// The proposal this process campaigned with (what observers see as
    /// the leader's value), so the work need not capture it.
    pub fn proposal(&self) -> &Bytes {
        &self.leadership.entry().value
    }

    /// The TTL the backend granted to the term's lease: how long the
    /// backend keeps the entry after the last acknowledged keep-alive.
    pub fn lease_ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether the work may still act as leader now.
    pub fn is_leader(&self) -> bool {
        !self.stop.is_cancelled() && self.leadership.is_leader()
    }

    /// Resolves when the work must stop: leadership was lost, or
    /// [`Election::run`](crate::Election::run) is shutting down.
    pub fn stopped(&self) -> WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    /// A token cancelled when the work must stop, for code that already
    /// understands cancellation.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

/// The callbacks [`Election::run`](crate::Election::run) calls. Each is optional.
///
/// ```
/// # async fn demo(election: tenure_core::Election) -> tenure_core::Result<()> {
/// use tenure_core::Callbacks;
/// use tokio_util::sync::CancellationToken;
///
/// let shutdown = CancellationToken::new(); // cancel it on SIGTERM
/// let callbacks = Callbacks::new()
///     .on_started_leading(|ctx| async move {
///         println!("leading with token {}", ctx.token());
///         ctx.stopped().await; // do leader work until told to stop
///     })
///     .on_stopped_leading(|reason| println!("stopped leading: {reason}"))
///     .on_new_leader(|leader| println!("leader is now {leader:?}"));
/// election.run("node-a", callbacks, shutdown).await?;
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct Callbacks {
    pub(crate) started: Option<StartedFn>,
    pub(crate) stopped: Option<StoppedFn>,
    pub(crate) new_leader: Option<NewLeaderFn>,
    pub(crate) campaigning: Option<CampaigningFn>,
    pub(crate) retry: Option<RetryFn>,
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_started_leading", &self.started.is_some())
            .field("on_stopped_leading", &self.stopped.is_some())
            .field("on_new_leader", &self.new_leader.is_some())
            .field("on_campaigning", &self.campaigning.is_some())
            .field("on_retry", &self.retry.is_some())
            .finish()
    }
}

impl Callbacks {
    /// No callbacks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs when this process is elected. The future is the leader's work:
    /// it runs until it returns by itself (then the term is resigned and
    /// [`Election::run`](crate::Election::run) returns) or until [`LeaderContext::stopped`] fires
    /// (then it must return promptly).
    pub fn on_started_leading<F, Fut>(mut self, mut f: F) -> Self
    where
        F: FnMut(LeaderContext) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.started = Some(Box::new(move |ctx| f(ctx).boxed()));
        self
    }

    /// Runs after each term has ended and its work has returned, with the
    /// reason ([`LossReason::Resigned`] on shutdown).
    pub fn on_stopped_leading(mut self, f: impl FnMut(LossReason) + Send + 'static) -> Self {
        self.stopped = Some(Box::new(f));
        self
    }

    /// Runs with the current leader first
    /// ([`Observation::NoLeader`] when nobody leads), then on every change,
    /// whoever the leader is, and with [`Observation::Unknown`] when the
    /// backend has not confirmed the leader within the election's
    /// staleness bound (see [`Election::observe`](crate::Election::observe)).
    pub fn on_new_leader(mut self, f: impl FnMut(Observation) + Send + 'static) -> Self {
        self.new_leader = Some(Box::new(f));
        self
    }

    /// Runs before each campaign, with the session it runs on (a fresh
    /// lease per campaign unless the election shares one): its
    /// [`lease`](Session::lease) and granted [`ttl`](Session::ttl).
    pub fn on_campaigning(mut self, f: impl FnMut(&Session) + Send + 'static) -> Self {
        self.campaigning = Some(Box::new(f));
        self
    }

    /// Runs when a campaign failed with an error worth retrying, with the
    /// error and the delay before the next campaign (the election's
    /// [`Backoff`](crate::Backoff)).
    pub fn on_retry(mut self, f: impl FnMut(&Error, Duration) + Send + 'static) -> Self {
        self.retry = Some(Box::new(f));
        self
    }
}
