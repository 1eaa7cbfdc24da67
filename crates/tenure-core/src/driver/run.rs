//! [`Election::run`] and [`Election::run_with`]: the loop of terms every
//! long-running candidate needs, written once.
//!
//! A term: a session (a fresh lease unless the election shares one),
//! `on_campaigning`, the campaign, the work while leading, the release of
//! the entry, `on_stopped_leading`. Between terms: the election's
//! anti-flap [`recampaign_delay`](super::ElectionBuilder::recampaign_delay)
//! after a term, its [`Backoff`](crate::Backoff) after a failed campaign.
//! [`RunOptions`] say when the loop stops.

use std::sync::Arc;

use futures::future::FusedFuture;
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use super::callbacks::{Callbacks, LeaderContext};
use super::election::Election;
use crate::{Error, IntoValue, LossReason, Result};

/// When [`Election::run_with`] stops campaigning.
///
/// The default is what [`Election::run`] does: campaign again after every
/// lost term, retry transient errors with the election's back-off, stop
/// when the work returns by itself or the shutdown token fires.
///
/// ```
/// use tenure_core::RunOptions;
///
/// // One term, as `tenure campaign --once` runs.
/// let once = RunOptions::new().once(true);
/// // A supervisor: the work ending (a command that exited) starts the
/// // next campaign; errors at start-up end the run.
/// let supervisor = RunOptions::new()
///     .recampaign_after_work(true)
///     .retry_before_first_session(false);
/// # let _ = (once, supervisor);
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RunOptions {
    once: bool,
    recampaign_after_work: bool,
    retry_before_first_session: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            once: false,
            recampaign_after_work: false,
            retry_before_first_session: true,
        }
    }
}

impl RunOptions {
    /// The defaults of [`Election::run`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Run one term only (default false): return after the first term
    /// ends, however it ends, and return the first campaign error instead
    /// of retrying it.
    pub fn once(mut self, once: bool) -> Self {
        self.once = once;
        self
    }

    /// Campaign again when the work returns by itself (default false:
    /// resign and return [`RunEnd::WorkReturned`]).
    pub fn recampaign_after_work(mut self, recampaign: bool) -> Self {
        self.recampaign_after_work = recampaign;
        self
    }

    /// Retry transient errors before a session has ever been started
    /// (default true). False: an error at start-up (an unreachable
    /// backend, refused credentials, a permission denied) ends the run at
    /// once; once a session has started, outages are waited out.
    ///
    /// A grant that timed out ([`Error::Timeout`]) is retried either way:
    /// it says the backend was slow to answer, as when a burst of
    /// candidates opens sessions on one server together, not that it
    /// cannot be used. Ending the run on it would make one of many
    /// candidates started at once give up for a moment's load.
    pub fn retry_before_first_session(mut self, retry: bool) -> Self {
        self.retry_before_first_session = retry;
        self
    }
}

/// How [`Election::run_with`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunEnd {
    /// The shutdown token fired: the term (if any) was resigned, the
    /// candidacy withdrawn.
    Shutdown,
    /// The term was lost ([`RunOptions::once`] only; otherwise the run
    /// campaigns again).
    Lost(LossReason),
    /// The work returned by itself; the term was resigned.
    WorkReturned,
}

/// How one term ended.
enum TermEnd {
    Lost(LossReason),
    Shutdown,
    WorkReturned,
}

/// Aborts the observer task when the run returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Election {
    /// Campaigns with proposal `value` over and over, calling `callbacks`
    /// as terms start and end, until `shutdown` is cancelled:
    /// [`run_with`](Self::run_with) with the default [`RunOptions`].
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
        callbacks: Callbacks,
        shutdown: CancellationToken,
    ) -> Result<()> {
        self.run_with(value, callbacks, RunOptions::new(), shutdown)
            .await
            .map(|_| ())
    }

    /// [`run`](Self::run) with `options`: one term or many, campaign again
    /// or stop when the work returns, retry or fail on errors at start-up.
    /// Returns how the run ended.
    ///
    /// Each term runs on a fresh session (a lease of its own, revoked when
    /// the term ends: one write deletes the entry) unless the election
    /// shares a [`Session`](super::Session). Between terms the election's
    /// [`recampaign_delay`](super::ElectionBuilder::recampaign_delay)
    /// applies, after a failed campaign its
    /// [`retry`](super::ElectionBuilder::retry) back-off: one jitter
    /// policy for every wait.
    ///
    /// # Errors
    /// As [`run`](Self::run); with [`RunOptions::once`], any campaign
    /// error; with [`RunOptions::retry_before_first_session`] false, any
    /// error but a timeout before the first session started.
    pub async fn run_with(
        &self,
        value: impl IntoValue,
        mut callbacks: Callbacks,
        options: RunOptions,
        shutdown: CancellationToken,
    ) -> Result<RunEnd> {
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
        let mut session_started = false;
        loop {
            let started = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(RunEnd::Shutdown),
                s = self.session_for_campaign() => s,
            };
            // Every log line of a term, the library's and the hooks', names
            // its lease.
            let mut span = tracing::Span::none();
            let leadership = match started {
                Ok((session, owns)) => {
                    session_started = true;
                    span = info_span!("term", lease = %session.lease());
                    if let Some(f) = callbacks.campaigning.as_mut() {
                        span.in_scope(|| f(&session));
                    }
                    let ttl = session.ttl();
                    // Waits for the withdrawal when shutdown comes first:
                    // `run` returns only once the entry is gone.
                    self.start_on(value.clone(), session, owns, false, Some(&shutdown))
                        .instrument(span.clone())
                        .await
                        .map(|l| l.map(|l| (l, ttl)))
                }
                Err(e) => Err(e),
            };
            let (leadership, ttl) = match leadership {
                Ok(Some((l, ttl))) => (Arc::new(l), ttl),
                // Shutdown came first: the candidacy is withdrawn.
                Ok(None) => return Ok(RunEnd::Shutdown),
                Err(e) if self.worth_retrying(&e, options, session_started) => {
                    failures = failures.saturating_add(1);
                    let delay = self.retry().delay(failures - 1);
                    span.in_scope(|| {
                        warn!(election = %self.name(), error = %e, ?delay, "campaign failed; retrying");
                    });
                    if let Some(f) = callbacks.retry.as_mut() {
                        f(&e, delay);
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        () = shutdown.cancelled() => return Ok(RunEnd::Shutdown),
                    }
                }
                Err(e) => return Err(e),
            };
            failures = 0;
            let stop = leadership.cancellation_token();
            let ctx = LeaderContext {
                leadership: leadership.clone(),
                stop: stop.clone(),
                ttl,
            };
            let mut work = match callbacks.started.as_mut() {
                Some(f) => span.in_scope(|| f(ctx)),
                None => async move { ctx.stop.cancelled().await }.boxed(),
            }
            .instrument(span.clone())
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
                    span.in_scope(|| debug!(election = %self.name(), "resigning"));
                    LossReason::Resigned
                }
            };
            // Resigns, or after a loss waits for the term's cleanup (the
            // entry's delete, the lease's revoke): nothing of this term is
            // left behind when `run` returns or campaigns again.
            if let Err(error) = leadership.release().instrument(span.clone()).await {
                span.in_scope(|| {
                    warn!(election = %self.name(), %error, "could not delete our entry; it goes with the lease");
                });
            }
            if let Some(f) = callbacks.stopped.as_mut() {
                span.in_scope(|| f(reason));
            }
            match end {
                TermEnd::Shutdown => return Ok(RunEnd::Shutdown),
                TermEnd::Lost(reason) if options.once => return Ok(RunEnd::Lost(reason)),
                TermEnd::WorkReturned if options.once || !options.recampaign_after_work => {
                    return Ok(RunEnd::WorkReturned)
                }
                TermEnd::Lost(_) | TermEnd::WorkReturned => {}
            }
        }
    }

    /// Whether `run_with` campaigns again after `e`.
    fn worth_retrying(&self, e: &Error, options: RunOptions, session_started: bool) -> bool {
        if options.once {
            return false;
        }
        if !session_started && !options.retry_before_first_session {
            return matches!(e, Error::Timeout { .. });
        }
        // A campaign on its own session starts a fresh lease each time; a
        // lost shared session never comes back.
        e.is_transient() || (matches!(e, Error::LeaseExpired { .. }) && !self.has_shared_session())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_those_of_run() {
        let o = RunOptions::new();
        assert!(!o.once && !o.recampaign_after_work && o.retry_before_first_session);
    }
}
