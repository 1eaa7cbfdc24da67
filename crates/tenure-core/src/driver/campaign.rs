//! The task that runs one [`ElectionMachine`] against a backend.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio_stream::StreamMap;
use tracing::{debug, info, warn};

use crate::metrics::{self, WatchRole};

use super::clock::{self, with_timeout};
use super::closing::Running;
use super::session::{LeaseStatus, Session};
use crate::machine::{
    Command, ElectionMachine, Event, FailReason, Phase, Reply, Request, RequestId, WatchId,
};
use crate::{DynBackend, Entry, Error, LossReason, Result, WatchEvent, WatchStream};

/// What the leader's handle sees of its term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TermStatus {
    pub(crate) valid_until: Instant,
    pub(crate) lost: Option<LossReason>,
}

/// How a campaign ended before or at election.
pub(crate) enum Outcome {
    Elected {
        entry: Entry,
        term: watch::Receiver<TermStatus>,
    },
    /// `try_campaign` found someone else ahead and withdrew.
    NotLeader,
}

/// Where the task sends how the campaign ended, once. The outcome is
/// boxed: the channel a waiting candidate keeps open then holds a
/// pointer, not room for an entry and an error.
pub(crate) type OutcomeSender = oneshot::Sender<Box<Result<Outcome>>>;

/// Requests from handles to the task.
pub(crate) enum Control {
    /// Resign/withdraw; the sender learns when the entry is deleted, or
    /// why it could not be.
    Resign(oneshot::Sender<Result<()>>),
}

/// Everything the task needs.
pub(crate) struct CampaignTask {
    pub(crate) backend: DynBackend,
    /// The election's name is the machine's ([`ElectionMachine::election`]).
    pub(crate) machine: ElectionMachine,
    pub(crate) session: Session,
    /// Close the session when done (it was started for this campaign).
    pub(crate) owns_session: bool,
    /// `try_campaign`: give up as soon as we would have to wait.
    pub(crate) give_up_when_following: bool,
    pub(crate) outcome: Option<OutcomeSender>,
    pub(crate) control: mpsc::UnboundedReceiver<Control>,
    /// Counts this task on its election handle until it ends; says when
    /// the handle is closed (withdraw or resign).
    pub(crate) running: Running,
    /// Told the instant a term ends (for the anti-flap delay).
    /// Taken on the first loss.
    pub(crate) on_loss: Option<Box<dyn FnOnce(Instant) + Send>>,
}

enum Done {
    Reply(RequestId, Reply),
    WatchOpened(WatchId, Result<WatchStream>),
}

impl CampaignTask {
    /// The campaign's task. A plain function returning an `async move`
    /// block, not an `async fn`: the block uses `self` in place, where an
    /// `async fn` would keep a second copy of it (with the machine) for
    /// the task's whole life.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    pub(crate) fn run(mut self) -> impl Future<Output = ()> + Send + 'static {
        async move {
            let mut lease_rx = self.session.subscribe();
            let mut pending = InFlight::default();
            let mut watches: StreamMap<WatchId, EndTold> =
                // A follower watches two keys at most (its predecessor and
                // the entry before it), a leader one: room for two, which
                // a replacement may briefly exceed.
                StreamMap::with_capacity(2);
            // Watches dropped before they opened: a few at most.
            let mut cancelled_watches: Vec<WatchId> = Vec::new();
            let mut term: Option<watch::Sender<TermStatus>> = None;
            let mut resign_acks: Vec<oneshot::Sender<Result<()>>> = Vec::new();
            // Why the entry could not be deleted, if it could not.
            let mut release_failed: Option<std::sync::Arc<Error>> = None;
            let mut control_open = true;
            let mut lease_open = true;
            // Since the campaign started, then since it was elected.
            let mut since = clock::now();
            let mut leading = false;
            let mut phase = self.machine.phase();
            debug!(?phase, "campaign started");

            // The lease may already have moved on since the machine was built.
            let status = lease_rx.borrow_and_update();
            apply_lease(&mut self.machine, status);

            loop {
                while let Some(cmd) = self.machine.poll_command() {
                    match cmd {
                        Command::Request { id, request } => {
                            // A session of the campaign's own holds nothing but
                            // our entry: revoking its lease deletes the entry and
                            // ends the session in one write, where a delete and
                            // then a revoke take two.
                            let revoke = self.owns_session.then(|| self.session.clone());
                            let timeout = self.session.request_timeout();
                            pending.push(
                                execute(self.backend.clone(), timeout, id, request, revoke).boxed(),
                            );
                        }
                        Command::Watch { id, scope, from } => {
                            let b = self.backend.clone();
                            let timeout = self.session.request_timeout();
                            pending.push(
                                async move {
                                    let kind = b.kind();
                                    let r =
                                        with_timeout(kind, "watch", timeout, b.watch(scope, from))
                                            .await;
                                    Done::WatchOpened(id, r)
                                }
                                .boxed(),
                            );
                        }
                        Command::Unwatch { id } => {
                            if watches.remove(&id).is_none() {
                                cancelled_watches.push(id);
                            }
                        }
                    }
                }
                // An idle candidate waits on watches alone: the set of
                // requests in flight is freed until the next one.
                pending.free_if_empty();
                if self.machine.phase() != phase {
                    phase = self.machine.phase();
                    debug!(?phase, "phase changed");
                }
                let mut finished = false;
                while let Some(event) = self.machine.poll_event() {
                    match event {
                        Event::Elected {
                            entry,
                            token,
                            valid_until,
                        } => {
                            let now = clock::now();
                            info!(election = %self.machine.election(), token, key = %entry.key, "elected");
                            metrics::elected(
                                self.machine.election(),
                                now.saturating_duration_since(since),
                            );
                            (since, leading) = (now, true);
                            let (tx, rx) = watch::channel(TermStatus {
                                valid_until,
                                lost: None,
                            });
                            term = Some(tx);
                            if let Some(out) = self.outcome.take() {
                                let _ =
                                    out.send(Box::new(Ok(Outcome::Elected { entry, term: rx })));
                            }
                        }
                        Event::Extended { valid_until } => {
                            if let Some(t) = &term {
                                t.send_modify(|s| s.valid_until = valid_until);
                            }
                        }
                        Event::Lost { reason } => {
                            let now = clock::now();
                            info!(election = %self.machine.election(), %reason, "leadership lost");
                            if std::mem::take(&mut leading) {
                                metrics::lost(
                                    self.machine.election(),
                                    reason,
                                    now.saturating_duration_since(since),
                                );
                            }
                            if let Some(t) = &term {
                                t.send_modify(|s| s.lost = Some(reason));
                            }
                            if let Some(f) = self.on_loss.take() {
                                f(now);
                            }
                        }
                        Event::Failed(reason) => {
                            debug!(election = %self.machine.election(), ?reason, "campaign ended without winning");
                            if let Some(out) = self.outcome.take() {
                                let _ = out.send(Box::new(match reason {
                                    FailReason::Withdrawn => {
                                        Err(Error::Cancelled("campaign withdrawn"))
                                    }
                                    FailReason::LeaseLost(_) => Err(Error::LeaseExpired {
                                        lease: self.session.lease(),
                                    }),
                                    // The machine's events are not cloned on
                                    // the way here, so the error is ours alone.
                                    FailReason::Backend(error) => Err(std::sync::Arc::try_unwrap(
                                        error,
                                    )
                                    .unwrap_or_else(|shared| Error::Backend {
                                        backend: self.backend.kind(),
                                        operation: "campaign",
                                        source: Box::new(shared),
                                    })),
                                }));
                            }
                        }
                        Event::ReleaseFailed(error) => {
                            warn!(election = %self.machine.election(), error = %error.0, "could not delete our entry");
                            release_failed = Some(error.0);
                        }
                        Event::Finished => finished = true,
                    }
                }
                if finished {
                    break;
                }
                if self.give_up_when_following && self.machine.phase() == Phase::Following {
                    self.give_up_when_following = false;
                    if let Some(out) = self.outcome.take() {
                        let _ = out.send(Box::new(Ok(Outcome::NotLeader)));
                    }
                    self.machine.resign(clock::now());
                    continue;
                }
                // Nobody waits for the result and nobody holds the leadership:
                // withdraw (a dropped campaign future must not leave an entry).
                if control_open
                    && self.outcome.as_ref().is_some_and(|o| o.is_closed())
                    && term.is_none()
                {
                    self.machine.resign(clock::now());
                    control_open = false;
                    continue;
                }

                let deadline = self.machine.poll_timeout();
                let outcome_closed = async {
                    match self.outcome.as_mut() {
                        Some(o) => o.closed().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    // A `Sleep` in place, not `clock::sleep_until`'s
                    // wrapper: the select's futures live in the task's
                    // state, and every idle candidate keeps one.
                    () = tokio::time::sleep_until(deadline.unwrap_or_else(clock::now).into()),
                        if deadline.is_some() => self.machine.handle_timeout(clock::now()),
                    Some(done) = pending.next() => match done {
                        Done::Reply(id, reply) => self.machine.handle_reply(clock::now(), id, reply),
                        Done::WatchOpened(id, Ok(stream)) => {
                            if !take(&mut cancelled_watches, id) {
                                watches.insert(id, EndTold::new(stream));
                            }
                        }
                        Done::WatchOpened(id, Err(e)) => {
                            if !take(&mut cancelled_watches, id) {
                                // The machine re-reads; a backend that keeps failing
                                // fails the read too, which backs off.
                                warn!(election = %self.machine.election(), error = %e, "watch failed to open");
                                metrics::watch_reconnect(self.machine.election(), WatchRole::Candidate);
                                self.machine.handle_watch(clock::now(), id, None);
                            }
                        }
                    },
                    Some((id, event)) = watches.next() => {
                        if event.is_none() {
                            debug!(election = %self.machine.election(), "watch ended");
                            metrics::watch_reconnect(self.machine.election(), WatchRole::Candidate);
                            watches.remove(&id);
                        }
                        self.machine.handle_watch(clock::now(), id, event);
                    }
                    changed = lease_rx.changed(), if lease_open => {
                        let status = match changed {
                            Ok(()) => lease_rx.borrow_and_update(),
                            Err(_) => {
                                // The keeper task dropped the lease: it is
                                // over, whatever its last status said.
                                lease_open = false;
                                let last = lease_rx.borrow();
                                LeaseStatus { lost: Some(last.lost.unwrap_or(LossReason::Shutdown)), ..last }
                            }
                        };
                        apply_lease(&mut self.machine, status);
                    }
                    ctrl = self.control.next(), if control_open => match ctrl {
                        Some(Control::Resign(ack)) => {
                            resign_acks.push(ack);
                            self.machine.resign(clock::now());
                        }
                        None => {
                            // Every handle is gone: release.
                            control_open = false;
                            self.machine.resign(clock::now());
                        }
                    },
                    () = outcome_closed => {}
                    // Another wake-up of the handle (its last task
                    // ending) is not a close: the loop waits again.
                    () = self.running.closed(), if control_open => {
                        if self.running.is_closed() {
                            control_open = false;
                            self.machine.resign(clock::now());
                        }
                    }
                }
            }
            if self.owns_session {
                self.session.close().await;
            }
            if let Some(out) = self.outcome.take() {
                let _ = out.send(Box::new(Err(Error::Cancelled("campaign ended"))));
            }
            // The last caller gets the error as the backend reported it; any
            // other gets it as the source of an `Error::Backend`.
            let kind = self.backend.kind();
            let shared = |error: std::sync::Arc<Error>| Error::Backend {
                backend: kind,
                operation: "resign",
                source: Box::new(SharedSource(error)),
            };
            let mut acks = resign_acks.into_iter().peekable();
            while let Some(ack) = acks.next() {
                let result = match release_failed.take() {
                    None => Ok(()),
                    Some(error) if acks.peek().is_none() => {
                        Err(std::sync::Arc::try_unwrap(error).unwrap_or_else(shared))
                    }
                    Some(error) => {
                        release_failed = Some(error.clone());
                        Err(shared(error))
                    }
                };
                let _ = ack.send(result);
            }
            // Dropping `term` tells any remaining leadership handle `Shutdown`
            // unless a loss was already recorded.
        }
    }
}

/// A shared backend error as the source of each resigning caller's own
/// [`Error::Backend`]: every caller gets the typed original through
/// `source()`.
#[derive(Debug)]
struct SharedSource(std::sync::Arc<Error>);

impl std::fmt::Display for SharedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

fn apply_lease(machine: &mut ElectionMachine, status: LeaseStatus) {
    let now = clock::now();
    match status.lost {
        Some(reason) => machine.handle_lease_lost(now, reason),
        None => machine.handle_renewed(now, status.valid_until),
    }
}

/// Runs one request of the machine, bounded by the request timeout. With
/// `revoke` (a session of the campaign's own), the release's delete is a
/// revoke of that session's lease instead.
async fn execute(
    backend: DynBackend,
    timeout: Duration,
    id: RequestId,
    request: Request,
    revoke: Option<Session>,
) -> Done {
    let kind = backend.kind();
    let reply = match (request, revoke) {
        (Request::Delete { .. }, Some(session)) => {
            let lease = session.lease();
            let revoked = with_timeout(kind, "revoke", timeout, backend.revoke_lease(lease)).await;
            if revoked.is_ok() {
                session.mark_revoked();
            }
            Reply::Delete(revoked.map(|()| true))
        }
        (request, _) => crate::backend::execute(&*backend, request, Some(timeout)).await,
    };
    Done::Reply(id, reply)
}

/// The machine's requests and watch openings in flight. Allocated on the
/// first one and freed once none is left: an empty `FuturesUnordered`
/// still holds two allocations (about 150 bytes), which thousands of idle
/// candidates in one process would each keep for nothing.
#[derive(Default)]
struct InFlight(Option<FuturesUnordered<BoxFuture<'static, Done>>>);

impl InFlight {
    fn push(&mut self, future: BoxFuture<'static, Done>) {
        self.0
            .get_or_insert_with(FuturesUnordered::new)
            .push(future);
    }

    /// The next one to finish; pending while none is in flight (the
    /// caller polls again after its other wakers, as a `select!` does).
    /// A `poll_fn`, not an `async fn`: the future is a pointer, where an
    /// `async fn` would add its own state to the campaign's.
    fn next(&mut self) -> impl Future<Output = Option<Done>> + '_ {
        futures::future::poll_fn(move |cx| match &mut self.0 {
            Some(set) if !set.is_empty() => set.poll_next_unpin(cx),
            _ => std::task::Poll::Pending,
        })
    }

    fn free_if_empty(&mut self) {
        if self.0.as_ref().is_some_and(FuturesUnordered::is_empty) {
            self.0 = None;
        }
    }
}

/// A watch as the campaign reads it: each event, then one `None` when the
/// stream fails or ends, so that the machine hears of it (a `StreamMap`
/// drops an ended stream without a word). Held in place, not boxed: an
/// idle follower keeps two.
struct EndTold {
    stream: WatchStream,
    ended: bool,
}

impl EndTold {
    fn new(stream: WatchStream) -> Self {
        EndTold {
            stream,
            ended: false,
        }
    }
}

impl futures::Stream for EndTold {
    type Item = Option<WatchEvent>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.ended {
            return Poll::Ready(None);
        }
        match self.stream.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(event))) => Poll::Ready(Some(Some(event))),
            Poll::Ready(Some(Err(_)) | None) => {
                self.ended = true;
                Poll::Ready(Some(None))
            }
        }
    }
}

/// Removes `id` from `ids`; whether it was there.
fn take(ids: &mut Vec<WatchId>, id: WatchId) -> bool {
    match ids.iter().position(|&i| i == id) {
        Some(at) => {
            ids.swap_remove(at);
            true
        }
        None => false,
    }
}
