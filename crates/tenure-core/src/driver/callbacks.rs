//! Callbacks in the style of client-go's leader election, for users who
//! prefer handing over three functions to driving the futures themselves.
//!
//! [`Election::run`] campaigns, runs `on_started_leading` while it leads,
//! calls `on_stopped_leading` when the term ends, campaigns again, and
//! reports every leader change to `on_new_leader`, until its shutdown
//! token fires.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::future::FusedFuture;
use futures::{FutureExt, StreamExt};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tracing::{debug, warn};

use super::election::Election;
use super::leadership::Leadership;
use crate::{Error, FencingToken, IntoValue, LossReason, Observation, Result};

type StartedFn = Box<dyn FnMut(LeaderContext) -> BoxFuture<'static, ()> + Send>;
type StoppedFn = Box<dyn FnMut(LossReason) + Send>;
type NewLeaderFn = Box<dyn FnMut(Observation) + Send + 'static>;

/// What `on_started_leading` gets: the term's [`Leadership`] and a signal
/// to stop.
///
/// The work must return soon after [`stopped`](Self::stopped) resolves:
/// [`Election::run`] waits for it before it resigns or campaigns again, so
/// that this process never runs two terms' work at once and the successor
/// never overlaps it after a clean hand-over.
#[derive(Clone, Debug)]
pub struct LeaderContext {
    leadership: Arc<Leadership>,
    stop: CancellationToken,
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

    /// Whether the work may still act as leader now.
    pub fn is_leader(&self) -> bool {
        !self.stop.is_cancelled() && self.leadership.is_leader()
    }

    /// Resolves when the work must stop: leadership was lost, or
    /// [`Election::run`] is shutting down.
    pub fn stopped(&self) -> WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    /// A token cancelled when the work must stop, for code that already
    /// understands cancellation.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

/// The three callbacks [`Election::run`] calls. Each is optional.
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
    started: Option<StartedFn>,
    stopped: Option<StoppedFn>,
    new_leader: Option<NewLeaderFn>,
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_started_leading", &self.started.is_some())
            .field("on_stopped_leading", &self.stopped.is_some())
            .field("on_new_leader", &self.new_leader.is_some())
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
    /// [`Election::run`] returns) or until [`LeaderContext::stopped`] fires
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
    /// staleness bound (see [`Election::observe`]).
    pub fn on_new_leader(mut self, f: impl FnMut(Observation) + Send + 'static) -> Self {
        self.new_leader = Some(Box::new(f));
        self
    }
}

/// Aborts the observer task when `run` returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How one term ended.
enum TermEnd {
    Lost(LossReason),
    Shutdown,
    WorkReturned,
}

impl Election {
    /// Campaigns with proposal `value` over and over, calling `callbacks`
    /// as terms start and end, until `shutdown` is cancelled.
    ///
    /// On shutdown while leading, the work is told to stop and awaited,
    /// then the term is resigned so the successor takes over at once. If
    /// the work returns by itself, the term is resigned and `run` returns.
    /// On shutdown while following, the candidacy is withdrawn. Either way
    /// `run` returns only once the entry is deleted (or the delete has
    /// failed and the lease is revoked or left to expire): a process may
    /// exit right after without leaving its entry ahead of the others.
    /// Transient errors ([`Error::is_transient`]: unreachable backend,
    /// timeouts, a lease lost before winning) are retried with the
    /// election's back-off.
    ///
    /// # Errors
    /// Errors that retrying cannot fix, at once and typed: bad
    /// configuration (a TTL out of range), [`Error::Unauthenticated`]
    /// (credentials, or a role or ACL without permission on the
    /// election), [`Error::Protocol`], a shared
    /// [`Session`](super::Session) whose lease has ended
    /// ([`Error::LeaseExpired`]).
    pub async fn run(
        &self,
        value: impl IntoValue,
        mut callbacks: Callbacks,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let value = value.into_value();
        let _observer = callbacks.new_leader.take().map(|mut f| {
            let mut leaders = self.observe();
            AbortOnDrop(tokio::spawn(async move {
                while let Some(leader) = leaders.next().await {
                    f(leader);
                }
            }))
        });
        let mut failures = 0u32;
        loop {
            // Waits for the withdrawal when shutdown comes first: `run`
            // returns only once the entry is gone.
            let leadership = match self.campaign_until(value.clone(), &shutdown).await {
                Ok(Some(l)) => Arc::new(l),
                Ok(None) => return Ok(()),
                // A campaign on its own session starts a fresh lease each
                // time; a lost shared session never comes back.
                Err(e)
                    if e.is_transient()
                        || (matches!(e, Error::LeaseExpired { .. })
                            && !self.has_shared_session()) =>
                {
                    failures = failures.saturating_add(1);
                    let delay = self.retry().delay(failures);
                    warn!(election = %self.name(), error = %e, ?delay, "campaign failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        () = shutdown.cancelled() => return Ok(()),
                    }
                }
                Err(e) => return Err(e),
            };
            failures = 0;
            let stop = leadership.cancellation_token();
            let ctx = LeaderContext {
                leadership: leadership.clone(),
                stop: stop.clone(),
            };
            let mut work = match callbacks.started.as_mut() {
                Some(f) => f(ctx),
                None => async move { ctx.stop.cancelled().await }.boxed(),
            }
            .fuse();
            let end = tokio::select! {
                biased;
                reason = leadership.lost() => TermEnd::Lost(reason),
                () = shutdown.cancelled() => TermEnd::Shutdown,
                // Work that saw the loss first and returned is a loss too.
                () = &mut work => match leadership.loss_reason() {
                    Some(reason) => TermEnd::Lost(reason),
                    None => TermEnd::WorkReturned,
                },
            };
            if !work.is_terminated() {
                stop.cancel();
                work.await;
            }
            let reason = match end {
                TermEnd::Lost(reason) => reason,
                TermEnd::Shutdown | TermEnd::WorkReturned => {
                    debug!(election = %self.name(), "resigning");
                    LossReason::Resigned
                }
            };
            // Resigns, or after a loss waits for the term's cleanup (the
            // entry's delete, the lease's revoke): nothing of this term is
            // left behind when `run` returns or campaigns again.
            if let Err(error) = leadership.release().await {
                warn!(election = %self.name(), %error, "could not delete our entry; it goes with the lease");
            }
            if let Some(f) = callbacks.stopped.as_mut() {
                f(reason);
            }
            if !matches!(end, TermEnd::Lost(_)) {
                return Ok(());
            }
        }
    }
}
