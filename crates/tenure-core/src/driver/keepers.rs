//! One task per tokio runtime keeps every session's lease alive.
//!
//! Each [`Session`](super::Session) hands its [`LeaseKeeper`] (the sans-IO
//! machine) to the runtime's keeper task and keeps only an id. The task
//! holds every keeper of the runtime, one timer for the earliest of their
//! deadlines, and the keep-alive and revoke requests in flight.
//!
//! Why one task and not one per session: an idle session's own task cost
//! its task cell (about 770 bytes with the timer and the cancellation
//! wait inside), plus a cancellation token to stop it; at ten thousand
//! idle candidates, each on a session of its own, that was a sixth of the
//! heap per candidate. A keeper here costs its own state and an entry in
//! a map and in a timer set.
//!
//! Behaviour is the per-session task's, request for request:
//! - a keeper's commands are run as they come: keep-alives bounded by the
//!   session's request timeout, a revoke unless the session's campaign
//!   revoked the lease itself;
//! - while a keeper's revoke is in flight, its events wait: a released
//!   session reports its end only once the revoke was answered (or timed
//!   out), which is what [`Session::close`](super::Session::close) waits
//!   for;
//! - a keeper whose lease has ended is dropped, which closes its status
//!   channel.
//!
//! The task ends once every session of the runtime has been dropped and
//! every revoke answered. The next session starts a new one.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tracing::{debug, trace, warn};

use super::clock::{self, with_timeout};
use super::lease_status::StatusTx;
use crate::machine::{LeaseCommand, LeaseEvent, LeaseKeeper};
use crate::metrics;
use crate::{DynBackend, Error, LossReason, Result};

/// The handle on one runtime's keeper task. Sessions hold it; the task
/// ends once every handle is gone and its work is done.
#[derive(Debug)]
pub(crate) struct Keepers {
    to_task: mpsc::UnboundedSender<Message>,
}

/// One session's lease, as the keeper task holds it.
pub(crate) struct Kept {
    pub(crate) backend: DynBackend,
    pub(crate) keeper: LeaseKeeper,
    pub(crate) status: StatusTx,
    /// Bound on each keep-alive and on the revoke.
    pub(crate) timeout: Duration,
}

/// A session's id within its keeper task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct KeptId(u64);

enum Message {
    Keep(KeptId, Box<Entry>),
    /// Stop keeping the lease alive and revoke it, unless `revoked`: the
    /// session's campaign revoked it already.
    Release {
        id: KeptId,
        revoked: bool,
    },
}

impl Keepers {
    /// The keeper task of the current runtime, started if it has none.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub(crate) fn of_current_runtime() -> Arc<Keepers> {
        /// Each runtime's handle, while any session holds it.
        static BY_RUNTIME: Mutex<Vec<(tokio::runtime::Id, Weak<Keepers>)>> = Mutex::new(Vec::new());
        let runtime = tokio::runtime::Handle::current().id();
        let mut all = BY_RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|(_, keepers)| keepers.strong_count() > 0);
        let found = all
            .iter()
            .filter(|(r, _)| *r == runtime)
            .find_map(|(_, keepers)| keepers.upgrade());
        if let Some(keepers) = found {
            return keepers;
        }
        let (to_task, from_handles) = mpsc::unbounded();
        // Unconstrained: tokio's cooperative budget (about 128 timer,
        // channel and lock operations per turn) is sized for a task doing
        // one thing; this one takes the answers of every session's
        // requests, and with the budget a burst of answers would wait for
        // several turns of a scheduler that may be running thousands of
        // campaigns. It never runs long: each lease's step is short, and
        // it returns as soon as nothing is ready.
        tokio::spawn(tokio::task::unconstrained(
            Task::default().run(from_handles),
        ));
        let keepers = Arc::new(Keepers { to_task });
        all.push((runtime, Arc::downgrade(&keepers)));
        keepers
    }

    /// Starts keeping `kept` alive; returns its id.
    pub(crate) fn keep(&self, kept: Kept) -> KeptId {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = KeptId(NEXT.fetch_add(1, Ordering::Relaxed));
        self.send(Message::Keep(
            id,
            Box::new(Entry {
                kept,
                due: None,
                revoking: false,
                revoked: false,
            }),
        ));
        id
    }

    /// Releases `id`'s lease: keep-alives stop and the lease is revoked
    /// (unless `revoked`: it was already). A lease already ended, or
    /// released before, is left as it is.
    pub(crate) fn release(&self, id: KeptId, revoked: bool) {
        self.send(Message::Release { id, revoked });
    }

    fn send(&self, message: Message) {
        // The task only ends once every handle, this one included, is
        // gone, or when its runtime shuts down: then there is nothing left
        // to keep alive, and every status channel is closed already.
        let _ = self.to_task.unbounded_send(message);
    }
}

/// One lease in the task (boxed in the map: a map slot is then a
/// pointer, and the map's spare slots cost little).
struct Entry {
    kept: Kept,
    /// The instant it is filed under in the timer set, if any.
    due: Option<Instant>,
    /// Its revoke is in flight: its events wait for the answer.
    revoking: bool,
    /// Its campaign revoked the lease: no revoke to send.
    revoked: bool,
}

enum Done {
    KeptAlive {
        id: KeptId,
        sent_at: Instant,
        reply: Result<Duration>,
    },
    Revoked(KeptId),
}

#[derive(Default)]
struct Task {
    entries: HashMap<KeptId, Box<Entry>>,
    /// Every entry's next deadline, earliest first.
    timers: BTreeSet<(Instant, KeptId)>,
    /// Requests in flight, each on a task of its own (see `service`).
    in_flight: FuturesUnordered<BoxFuture<'static, Done>>,
}

impl Task {
    async fn run(mut self, mut from_handles: mpsc::UnboundedReceiver<Message>) {
        let mut handles_left = true;
        while handles_left || !self.entries.is_empty() {
            let next = self.timers.first().map(|(at, _)| *at);
            // Biased: answers first, then deadlines, then releases. An
            // answer already in counts before a deadline (a renewal counts
            // from when it was sent, so counting it late is exact), and a
            // deadline that passed at the same instant as a release is
            // reported as what it was.
            tokio::select! {
                biased;
                Some(done) = self.in_flight.next() => self.handle_done(done),
                () = clock::sleep_until(next) => self.handle_timers(clock::now()),
                message = from_handles.next(), if handles_left => match message {
                    Some(Message::Keep(id, entry)) => {
                        self.entries.insert(id, entry);
                        self.service(id);
                    }
                    Some(Message::Release { id, revoked }) => {
                        if let Some(entry) = self.entries.get_mut(&id) {
                            entry.revoked |= revoked;
                            entry.kept.keeper.release();
                            self.service(id);
                        }
                    }
                    None => handles_left = false,
                },
            }
        }
    }

    fn handle_timers(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.due = None;
                entry.kept.keeper.handle_timeout(now);
                self.service(id);
            }
        }
    }

    fn handle_done(&mut self, done: Done) {
        match done {
            Done::KeptAlive { id, sent_at, reply } => {
                let Some(entry) = self.entries.get_mut(&id) else {
                    return;
                };
                let kind = entry.kept.backend.kind();
                let now = clock::now();
                match &reply {
                    Ok(_) => metrics::keepalive_acked(kind, now.saturating_duration_since(sent_at)),
                    Err(e) => {
                        debug!(lease = %entry.kept.keeper.lease(), error = %e, "keep-alive failed");
                        metrics::keepalive_failed(kind);
                    }
                }
                entry.kept.keeper.handle_keepalive(now, sent_at, reply);
                self.service(id);
            }
            Done::Revoked(id) => {
                if let Some(entry) = self.entries.get_mut(&id) {
                    entry.revoking = false;
                    self.service(id);
                }
            }
        }
    }

    /// Runs `id`'s commands, publishes its events, files its next
    /// deadline, and drops it once its lease has ended.
    fn service(&mut self, id: KeptId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let kept = &mut entry.kept;
        let kind = kept.backend.kind();
        let timeout = kept.timeout;
        // Each request runs on a task of its own, alive while it is in
        // flight (an idle session has none): requests that queue on a
        // shared resource (an etcd keep-alive stream's lock) hand it on as
        // separate tasks do, at once, where futures polled by this one
        // task would each wait for its next turn. A request whose task
        // panicked (a backend bug) fails that one request: the keep-alive
        // is retried, the revoke left to the backend's expiry; every other
        // session goes on.
        while let Some(command) = kept.keeper.poll_command() {
            let backend = kept.backend.clone();
            match command {
                LeaseCommand::KeepAlive { lease, sent_at } => {
                    let call = async move { backend.keep_alive(lease).await };
                    let reply = on_own_task(kind, "keep-alive", timeout, call);
                    self.in_flight.push(
                        async move {
                            let reply = reply.await;
                            Done::KeptAlive { id, sent_at, reply }
                        }
                        .boxed(),
                    );
                }
                LeaseCommand::Revoke { .. } if entry.revoked => {}
                LeaseCommand::Revoke { lease } => {
                    entry.revoking = true;
                    let call = async move { backend.revoke_lease(lease).await };
                    let revoked = on_own_task(kind, "revoke", timeout, call);
                    self.in_flight.push(
                        async move {
                            if let Err(e) = revoked.await {
                                debug!(%lease, error = %e, "revoke failed; the backend will expire the lease");
                            }
                            Done::Revoked(id)
                        }
                        .boxed(),
                    );
                }
            }
        }
        if !entry.revoking {
            while let Some(event) = kept.keeper.poll_event() {
                match event {
                    LeaseEvent::Renewed { lease, valid_until } => {
                        trace!(%lease, "lease renewed");
                        kept.status.send_modify(|s| s.valid_until = valid_until);
                    }
                    LeaseEvent::Lost { lease, reason } => {
                        if reason != LossReason::Resigned {
                            warn!(%lease, %reason, "lease lost");
                            metrics::lease_lost(kind, reason);
                        }
                        kept.status.send_modify(|s| s.lost = Some(reason));
                    }
                }
            }
        }
        let due = if entry.revoking {
            None
        } else {
            kept.keeper.poll_timeout()
        };
        if due != entry.due {
            if let Some(old) = entry.due {
                self.timers.remove(&(old, id));
            }
            if let Some(new) = due {
                self.timers.insert((new, id));
            }
            entry.due = due;
        }
        if !entry.revoking && !entry.kept.keeper.is_alive() {
            // Dropping the status sender closes the channel: every
            // receiver has seen the loss by now.
            self.entries.remove(&id);
        }
    }
}

/// Runs `call` (bounded by `timeout`) on a task of its own, started now;
/// the returned future yields its answer. A task that panicked answers
/// [`Error::Backend`] for `operation`, so one backend bug fails one
/// request, not the keeper task.
fn on_own_task<T: Send + 'static>(
    kind: &'static str,
    operation: &'static str,
    timeout: Duration,
    call: impl Future<Output = Result<T>> + Send + 'static,
) -> impl Future<Output = Result<T>> {
    let task = tokio::spawn(with_timeout(kind, operation, timeout, call));
    async move {
        task.await.unwrap_or_else(|e| {
            Err(Error::Backend {
                backend: kind,
                operation,
                source: Box::new(e),
            })
        })
    }
}
