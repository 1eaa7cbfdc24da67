//! One candidacy in one election, as a sans-IO state machine.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::config::{ElectionConfig, Strategy};
use super::messages::{Command, Event, FailReason, Phase, Reply, RequestId, SharedError, WatchId};
use super::Backoff;
use crate::{
    CreateOutcome, ElectionName, Entry, Error, LeaseId, LossReason, Revision, Snapshot, WatchEvent,
    WatchScope,
};

#[derive(Clone, Debug)]
enum State {
    /// Waiting until `until`, then `then`.
    Backoff {
        until: Instant,
        then: Next,
    },
    Creating {
        req: RequestId,
    },
    Reading {
        req: RequestId,
        entry: Entry,
    },
    /// Queue: the predecessor, which was first, is gone; reading our own
    /// entry to see that it is still there (then nobody is ahead of it).
    Confirming {
        req: RequestId,
        entry: Entry,
    },
    /// Queue: watching the predecessor (and the entry before it, if
    /// any). Single-key: watching the leader key.
    Following {
        entry: Option<Entry>,
        watch: WatchId,
        key: String,
        /// Queue: the predecessor was first in the read that placed us.
        predecessor_first: bool,
        /// Queue: the entry before the predecessor, watched too.
        second: Option<Second>,
    },
    /// Single-key: the leader key vanished from our view; re-read it.
    Probing {
        req: RequestId,
        key: String,
    },
    Leader {
        entry: Entry,
        watch: Option<WatchId>,
    },
    /// Leader whose watch broke: checking that our entry still exists.
    Verifying {
        req: RequestId,
        entry: Entry,
    },
    Releasing {
        req: RequestId,
        entry: Entry,
    },
    Finished,
}

/// The entry two places ahead of a queue candidate, watched beside its
/// predecessor. When it goes (usually the leader resigning), the
/// candidate learns where its predecessor stands before that predecessor
/// goes in turn: either the read that placed the candidate showed this
/// entry first (then the predecessor is first now, and no read is
/// needed), or the candidate reads the queue again a little later, once
/// the hand-over it just saw has had time to finish. Either way, when its
/// predecessor goes the candidate usually knows that it is next and only
/// reads its own entry: the read of the whole queue leaves the
/// hand-over's critical path.
#[derive(Clone, Debug)]
enum Second {
    /// Watching that entry.
    Watched {
        watch: WatchId,
        key: String,
        /// It was first in the read that placed us.
        first: bool,
    },
    /// It went; read the queue at `at` (the predecessor's watch goes on
    /// meanwhile).
    Gone { at: Instant },
}

impl Second {
    fn watch(&self) -> Option<WatchId> {
        match self {
            Second::Watched { watch, .. } => Some(*watch),
            Second::Gone { .. } => None,
        }
    }
}

/// How long after the entry two places ahead goes a candidate reads the
/// queue (see [`Second`]): longer than a hand-over takes, so that the
/// successor's own read does not queue behind it, and far shorter than a
/// term lasts.
pub(crate) const SECOND_READ_DELAY: Duration = Duration::from_millis(20);

#[derive(Clone, Debug)]
enum Next {
    Create,
    Read(Entry),
    Probe(String),
    Verify(Entry),
    /// Retry deleting our entry: a failed release must not leave the entry
    /// behind while the lease lives (it would block the election).
    Release(Entry),
}

/// One candidacy in one election: from the first create to the end of the
/// term (sans-IO).
///
/// Drive it like this: call [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), feed every answer, watch event and
/// lease event in, and after each input drain
/// [`poll_command`](Self::poll_command) and [`poll_event`](Self::poll_event).
///
/// Safety rules it enforces:
/// - It claims leadership only after a read that shows our own entry, bound
///   to our lease, first in the queue, and only while `now < valid_until`.
///   "First" is read either from the queue, or from a read of our own
///   entry once the one predecessor a queue read showed is deleted: an
///   entry is always created behind every entry there is, so nobody else
///   can have come before us since.
/// - As leader it steps down (emits [`Event::Lost`]) the moment
///   `valid_until` passes without a renewal, when its entry is deleted, or
///   when its lease is lost — before it does anything else.
/// - On resign it emits [`Event::Lost`] *before* it asks for the delete, so
///   the user stops acting as leader before a successor can start.
#[derive(Debug)]
pub struct ElectionMachine {
    election: ElectionName,
    /// Who leads: the config's, kept alone (its start delay is spent at
    /// [`new`](Self::new)).
    strategy: Strategy,
    /// The back-off between retries.
    retry: Backoff,
    value: Bytes,
    lease: LeaseId,
    valid_until: Instant,
    state: State,
    attempt: u32,
    next_id: u64,
    rng: fastrand::Rng,
    resign_pending: bool,
    /// The last failure to delete our entry while releasing, reported if
    /// the lease ends before a retry succeeds.
    release_error: Option<Arc<Error>>,
    commands: VecDeque<Command>,
    events: VecDeque<Event>,
}

impl ElectionMachine {
    /// Starts a candidacy for `election` with proposal `value`, bound to
    /// `lease` which is trusted until `valid_until`. `seed` feeds the
    /// jitter, so runs with the same seed and inputs are identical.
    pub fn new(
        election: ElectionName,
        config: ElectionConfig,
        value: Bytes,
        lease: LeaseId,
        valid_until: Instant,
        now: Instant,
        seed: u64,
    ) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        // The anti-flap delay, plus up to as much again drawn by the one
        // jitter policy (`Backoff`, full jitter over a window of the delay).
        let delay = if config.start_delay.is_zero() {
            Duration::ZERO
        } else {
            let d = config.start_delay;
            d + Backoff::new(d, d).delay_from(0, &mut rng)
        };
        let mut m = ElectionMachine {
            election,
            strategy: config.strategy,
            retry: config.retry,
            value,
            lease,
            valid_until,
            state: State::Finished,
            attempt: 0,
            release_error: None,
            next_id: 0,
            rng,
            resign_pending: false,
            // No buffer until a command comes: `poll_command` frees it
            // again once drained.
            commands: VecDeque::new(),
            events: VecDeque::new(),
        };
        if delay.is_zero() {
            m.create();
        } else {
            m.state = State::Backoff {
                until: now + delay,
                then: Next::Create,
            };
        }
        m
    }

    /// The coarse phase.
    pub fn phase(&self) -> Phase {
        match self.state {
            // A leader re-checking its entry after a broken watch is still
            // leader until its deadline.
            State::Backoff {
                then: Next::Verify(_),
                ..
            } => Phase::Leader,
            State::Backoff {
                then: Next::Release(_),
                ..
            } => Phase::Releasing,
            State::Backoff { .. } => Phase::Backoff,
            State::Creating { .. } => Phase::Creating,
            State::Reading { .. } | State::Confirming { .. } => Phase::Reading,
            State::Following { .. } | State::Probing { .. } => Phase::Following,
            State::Leader { .. } | State::Verifying { .. } => Phase::Leader,
            State::Releasing { .. } => Phase::Releasing,
            State::Finished => Phase::Finished,
        }
    }

    /// Whether we are leader and may act as such at `now`.
    pub fn is_leader(&self, now: Instant) -> bool {
        self.phase() == Phase::Leader && now < self.valid_until
    }

    /// The local deadline of the lease as last reported.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// Our entry, once known.
    pub fn entry(&self) -> Option<&Entry> {
        match &self.state {
            State::Reading { entry, .. }
            | State::Confirming { entry, .. }
            | State::Leader { entry, .. }
            | State::Verifying { entry, .. } => Some(entry),
            State::Following { entry, .. } => entry.as_ref(),
            State::Backoff {
                then: Next::Read(entry) | Next::Verify(entry) | Next::Release(entry),
                ..
            } => Some(entry),
            _ => None,
        }
    }

    /// The lease renewed: the deadline moves to `valid_until`.
    pub fn handle_renewed(&mut self, now: Instant, valid_until: Instant) {
        if valid_until <= self.valid_until {
            return;
        }
        self.valid_until = valid_until;
        if self.phase() == Phase::Leader {
            self.events.push_back(Event::Extended { valid_until });
        }
        self.handle_timeout(now);
    }

    /// The lease is gone: every entry bound to it is gone too.
    pub fn handle_lease_lost(&mut self, _now: Instant, reason: LossReason) {
        match self.phase() {
            Phase::Finished => {}
            Phase::Leader => self.lose(reason, false),
            Phase::Releasing => {
                // A lease the backend reports gone took the entry with it;
                // a local deadline proves nothing about the entry.
                if let Some(error) = self.release_error.take() {
                    if reason != LossReason::LeaseExpired {
                        self.events
                            .push_back(Event::ReleaseFailed(SharedError(error)));
                    }
                }
                self.finish();
            }
            _ => {
                self.events
                    .push_back(Event::Failed(FailReason::LeaseLost(reason)));
                self.finish();
            }
        }
    }

    /// Resign (leader) or withdraw (candidate): delete our entry. A leader
    /// gets [`Event::Lost`] with [`LossReason::Resigned`] at once.
    pub fn resign(&mut self, _now: Instant) {
        if let State::Creating { .. } = self.state {
            // Our entry may be created by the request in flight: wait for
            // its answer, then delete what it created.
            self.resign_pending = true;
            return;
        }
        let was_leader = self.phase() == Phase::Leader;
        if self.phase() == Phase::Releasing {
            return;
        }
        let entry = match std::mem::replace(&mut self.state, State::Finished) {
            State::Leader { entry, watch } => {
                self.unwatch(watch);
                Some(entry)
            }
            State::Following {
                entry,
                watch,
                second,
                ..
            } => {
                self.unwatch_following(watch, second.as_ref());
                entry
            }
            State::Verifying { entry, .. }
            | State::Reading { entry, .. }
            | State::Confirming { entry, .. } => Some(entry),
            State::Backoff {
                then: Next::Read(entry) | Next::Verify(entry),
                ..
            } => Some(entry),
            State::Backoff { .. } | State::Probing { .. } | State::Creating { .. } => None,
            s @ (State::Releasing { .. } | State::Finished) => {
                self.state = s;
                return;
            }
        };
        self.events.push_back(if was_leader {
            Event::Lost {
                reason: LossReason::Resigned,
            }
        } else {
            Event::Failed(FailReason::Withdrawn)
        });
        match entry {
            Some(entry) => self.release(entry),
            None => self.finish(),
        }
    }

    /// Feeds the answer to request `id`. Answers to abandoned requests are
    /// ignored.
    pub fn handle_reply(&mut self, now: Instant, id: RequestId, reply: Reply) {
        match (&self.state, reply) {
            (State::Creating { req }, Reply::Create(r)) if *req == id => {
                self.on_created(now, r.map(|outcome| (outcome, None)))
            }
            (State::Creating { req }, Reply::Queued(r)) if *req == id => {
                self.on_created(now, r.map(|q| (q.outcome, q.around)))
            }
            (State::Reading { req, .. }, Reply::Candidates(r)) if *req == id => {
                self.on_candidates(now, r)
            }
            (State::Probing { req, .. }, Reply::Get(r)) if *req == id => self.on_probed(now, r),
            (State::Confirming { req, .. }, Reply::Get(r)) if *req == id => {
                self.on_confirmed(now, r)
            }
            (State::Verifying { req, .. }, Reply::Get(r)) if *req == id => self.on_verified(now, r),
            (State::Releasing { req, .. }, Reply::Delete(r)) if *req == id => {
                self.on_released(now, r)
            }
            _ => {}
        }
    }

    /// Feeds an event of watch `id`. `None` means the watch stream ended or
    /// failed and must be treated as broken.
    pub fn handle_watch(&mut self, now: Instant, id: WatchId, event: Option<WatchEvent>) {
        if let State::Following { watch, key, .. } = &self.state {
            // A put, another key's delete: the predecessor is still there.
            if *watch == id && !gone_or_unknown(event.as_ref(), key) {
                return;
            }
        }
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Following {
                entry,
                watch,
                key,
                predecessor_first,
                second: Some(second),
            } if second.watch() == Some(id) => {
                let following = (entry, watch, key, predecessor_first);
                self.on_second_event(now, following, second, event)
            }
            State::Following {
                entry,
                watch,
                key,
                predecessor_first,
                second,
            } if watch == id => {
                // Deleted, history lost or watch broken: look again.
                self.unwatch_following(watch, second.as_ref());
                let deleted = matches!(event, Some(WatchEvent::Delete { .. }));
                match (self.strategy, entry) {
                    // The first entry went, and nobody could have come
                    // before ours since: our own entry decides.
                    (Strategy::Queue, Some(entry)) if deleted && predecessor_first => {
                        self.confirm(entry)
                    }
                    (Strategy::Queue, Some(entry)) => self.read(entry),
                    _ if deleted => {
                        // Single key freed: race for it after jitter.
                        let delay = self.next_delay();
                        self.backoff(now, delay, Next::Create);
                    }
                    _ => self.probe(key),
                }
            }
            State::Leader { entry, watch } if watch == Some(id) => match event {
                Some(WatchEvent::Put(e)) if e.key == entry.key && e.created == entry.created => {
                    self.state = State::Leader { entry: e, watch }
                }
                Some(WatchEvent::Put(e)) if e.key == entry.key => {
                    self.unwatch(watch);
                    self.lose(LossReason::EntryDeleted, false)
                }
                Some(WatchEvent::Delete { key, .. }) if key == entry.key => {
                    self.unwatch(watch);
                    self.lose(LossReason::EntryDeleted, false)
                }
                Some(WatchEvent::Put(_) | WatchEvent::Delete { .. }) => {
                    self.state = State::Leader { entry, watch }
                }
                Some(WatchEvent::HistoryLost) | None => {
                    self.unwatch(watch);
                    self.verify(entry);
                }
            },
            other => self.state = other,
        }
    }

    /// Advances time: leader deadline, back-off expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.valid_until {
            match self.phase() {
                Phase::Leader => return self.lose(LossReason::DeadlineExceeded, true),
                Phase::Finished => {}
                Phase::Releasing => {
                    // Past the deadline nobody retries the delete: the lease
                    // keeper revokes the lease, or the backend expires it.
                    // The entry may stay until then: the failure is told.
                    if matches!(self.state, State::Backoff { .. }) {
                        if let Some(error) = self.release_error.take() {
                            self.events
                                .push_back(Event::ReleaseFailed(SharedError(error)));
                        }
                        return self.finish();
                    }
                }
                _ => {
                    // A candidate whose lease cannot be trusted cannot win;
                    // its entry will go with the lease.
                    self.events.push_back(Event::Failed(FailReason::LeaseLost(
                        LossReason::DeadlineExceeded,
                    )));
                    return self.finish();
                }
            }
        }
        if let State::Following {
            entry: Some(entry),
            watch,
            second: Some(Second::Gone { at }),
            ..
        } = &self.state
        {
            if now >= *at {
                let (entry, watch) = (entry.clone(), *watch);
                self.unwatch(Some(watch));
                return self.read(entry);
            }
        }
        if let State::Backoff { until, then } = &self.state {
            if now >= *until {
                match then.clone() {
                    Next::Create => self.create(),
                    Next::Read(entry) => self.read(entry),
                    Next::Probe(key) => self.probe(key),
                    Next::Verify(entry) => self.verify(entry),
                    Next::Release(entry) => self.release(entry),
                }
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            // A release in flight waits for its answer (bounded by the
            // driver's request timeout), whatever the deadline.
            State::Finished | State::Releasing { .. } => None,
            State::Backoff { until, .. }
            | State::Following {
                second: Some(Second::Gone { at: until }),
                ..
            } => Some((*until).min(self.valid_until)),
            _ => Some(self.valid_until),
        }
    }

    /// The election this candidacy is for.
    pub fn election(&self) -> &ElectionName {
        &self.election
    }

    /// The next command for the driver.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        super::drain_one(&mut self.commands)
    }

    /// The next event for the user.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        super::drain_one(&mut self.events)
    }

    // ---- transitions -------------------------------------------------

    /// A create answered, perhaps with where the entry stands (`around`:
    /// then no read is needed).
    fn on_created(
        &mut self,
        now: Instant,
        reply: Result<(CreateOutcome, Option<Snapshot>), Error>,
    ) {
        let (outcome, around) = match reply {
            Ok(o) => o,
            Err(e) => return self.on_error(now, e, Next::Create),
        };
        let ours = outcome.entry().lease == self.lease;
        let entry = outcome.entry().clone();
        if self.resign_pending {
            self.events.push_back(Event::Failed(FailReason::Withdrawn));
            return if ours {
                self.release(entry)
            } else {
                self.finish()
            };
        }
        match (self.strategy, ours) {
            (Strategy::Queue, true) => match around {
                Some(snapshot) => self.place(now, entry, snapshot),
                None => self.read(entry),
            },
            (Strategy::Queue, false) => {
                // The backend put someone else's entry at our key: it broke
                // its contract; do not pretend we hold a place.
                let error = Error::Protocol {
                    operation: "create",
                    reason: format!(
                        "create returned an entry of lease {} at {:?} for lease {}",
                        entry.lease, entry.key, self.lease
                    ),
                };
                self.events
                    .push_back(Event::Failed(FailReason::Backend(Arc::new(error))));
                self.finish()
            }
            (Strategy::SingleKey, true) => {
                let from = entry.modified + 1;
                self.claim(now, entry, from)
            }
            (Strategy::SingleKey, false) => {
                let watch = self.watch(WatchScope::Key(entry.key.clone()), entry.modified + 1);
                self.state = State::Following {
                    entry: None,
                    predecessor_first: false,
                    second: None,
                    watch,
                    key: entry.key,
                };
            }
        }
    }

    fn on_candidates(&mut self, now: Instant, reply: Result<Snapshot, Error>) {
        let State::Reading { entry, .. } = &self.state else {
            return;
        };
        let entry = entry.clone();
        match reply {
            Ok(snapshot) => self.place(now, entry, snapshot),
            Err(e) => self.on_error(now, e, Next::Read(entry)),
        }
    }

    /// Where our `entry` stands in `snapshot`: leader, follower of the
    /// entry before it, or gone (create again).
    fn place(&mut self, now: Instant, entry: Entry, snapshot: Snapshot) {
        let pos = snapshot.entries.iter().position(|e| {
            e.key == entry.key && e.created == entry.created && e.lease == self.lease
        });
        match pos {
            // Our entry is gone (deleted by an operator, or its lease
            // expired without us hearing yet). Never claim leadership on
            // the strength of an earlier read: create it again.
            None => self.create(),
            Some(0) => {
                let fresh = snapshot.entries[0].clone();
                self.claim(now, fresh, snapshot.revision + 1)
            }
            Some(i) => {
                let pred = snapshot.entries[i - 1].key.clone();
                let watch = self.watch(WatchScope::Key(pred.clone()), snapshot.revision + 1);
                let second = (i >= 2).then(|| {
                    let key = snapshot.entries[i - 2].key.clone();
                    Second::Watched {
                        watch: self.watch(WatchScope::Key(key.clone()), snapshot.revision + 1),
                        key,
                        first: i == 2 && snapshot.starts_at_head,
                    }
                });
                self.state = State::Following {
                    entry: Some(entry),
                    watch,
                    key: pred,
                    predecessor_first: i == 1 && snapshot.starts_at_head,
                    second,
                };
            }
        }
    }

    /// An event of the watch on the entry two places ahead (see
    /// [`Second`]) while following: our entry, the predecessor's watch and
    /// key, and whether the predecessor is known to be first.
    fn on_second_event(
        &mut self,
        now: Instant,
        following: (Option<Entry>, WatchId, String, bool),
        second: Second,
        event: Option<WatchEvent>,
    ) {
        let (entry, watch, key, predecessor_first) = following;
        let (predecessor_first, second) = match (second, event) {
            (
                Second::Watched {
                    watch: ahead,
                    key: watched,
                    first,
                },
                Some(WatchEvent::Delete { key: gone, .. }),
            ) if gone == watched => {
                self.unwatch(Some(ahead));
                if first {
                    // Nobody else stood ahead of the two at the read, and
                    // nobody can have come before them since: the
                    // predecessor is first now.
                    (true, None)
                } else {
                    // Where we stand is unknown: read soon, while the
                    // predecessor still holds its place.
                    let at = now + SECOND_READ_DELAY;
                    (predecessor_first, Some(Second::Gone { at }))
                }
            }
            // The history behind the watch is lost or the watch broke:
            // nothing is known of that entry any more; the predecessor's
            // watch alone goes on, as without a second watch.
            (Second::Watched { watch: ahead, .. }, Some(WatchEvent::HistoryLost) | None) => {
                self.unwatch(Some(ahead));
                (predecessor_first, None)
            }
            // A put, another key's delete: nothing changed ahead.
            (second, _) => (predecessor_first, Some(second)),
        };
        self.state = State::Following {
            entry,
            watch,
            key,
            predecessor_first,
            second,
        };
    }

    /// Our predecessor was first and is gone: our entry, if it is still
    /// there, is first now. Gone or replaced: create it again. A failed
    /// read falls back to reading the queue.
    fn on_confirmed(&mut self, now: Instant, reply: Result<(Option<Entry>, Revision), Error>) {
        let State::Confirming { entry, .. } = &self.state else {
            return;
        };
        let entry = entry.clone();
        match reply {
            Err(e) => self.on_error(now, e, Next::Read(entry)),
            Ok((Some(e), rev)) if e.created == entry.created && e.lease == self.lease => {
                let from = rev.max(e.modified) + 1;
                self.claim(now, e, from)
            }
            Ok(_) => self.create(),
        }
    }

    fn on_probed(&mut self, now: Instant, reply: Result<(Option<Entry>, Revision), Error>) {
        let State::Probing { key, .. } = &self.state else {
            return;
        };
        let key = key.clone();
        match reply {
            Err(e) => self.on_error(now, e, Next::Probe(key)),
            Ok((None, _)) => {
                let delay = self.next_delay();
                self.backoff(now, delay, Next::Create)
            }
            Ok((Some(e), rev)) if e.lease == self.lease => {
                let from = rev.max(e.modified) + 1;
                self.claim(now, e, from)
            }
            Ok((Some(e), rev)) => {
                let watch = self.watch(WatchScope::Key(key.clone()), rev.max(e.modified) + 1);
                self.state = State::Following {
                    entry: None,
                    predecessor_first: false,
                    second: None,
                    watch,
                    key,
                };
            }
        }
    }

    fn on_verified(&mut self, now: Instant, reply: Result<(Option<Entry>, Revision), Error>) {
        let State::Verifying { entry, .. } = &self.state else {
            return;
        };
        let entry = entry.clone();
        match reply {
            Err(e) => {
                // Still leader while the deadline holds; retry the check.
                if e.is_transient() {
                    let delay = self.next_delay();
                    self.backoff(now, delay, Next::Verify(entry));
                } else {
                    self.events.push_back(Event::Lost {
                        reason: LossReason::EntryDeleted,
                    });
                    self.release(entry);
                }
            }
            Ok((Some(e), rev)) if e.created == entry.created && e.lease == self.lease => {
                let watch = self.watch(WatchScope::Key(e.key.clone()), rev + 1);
                self.attempt = 0;
                self.state = State::Leader {
                    entry: e,
                    watch: Some(watch),
                };
            }
            Ok(_) => self.lose(LossReason::EntryDeleted, false),
        }
    }

    /// Our entry leads in a fresh read: become leader if the lease is
    /// still trusted.
    fn claim(&mut self, now: Instant, entry: Entry, watch_from: Revision) {
        if now >= self.valid_until {
            self.events.push_back(Event::Failed(FailReason::LeaseLost(
                LossReason::DeadlineExceeded,
            )));
            return self.finish();
        }
        self.attempt = 0;
        let watch = self.watch(WatchScope::Key(entry.key.clone()), watch_from);
        self.events.push_back(Event::Elected {
            token: entry.created,
            valid_until: self.valid_until,
            entry: entry.clone(),
        });
        self.state = State::Leader {
            entry,
            watch: Some(watch),
        };
    }

    /// Leaves leadership. With `cleanup`, deletes our entry (the backend
    /// may still hold it after a local deadline).
    fn lose(&mut self, reason: LossReason, cleanup: bool) {
        let state = std::mem::replace(&mut self.state, State::Finished);
        let entry = match state {
            State::Leader { entry, watch } => {
                self.unwatch(watch);
                Some(entry)
            }
            State::Verifying { entry, .. } => Some(entry),
            State::Backoff {
                then: Next::Verify(entry),
                ..
            } => Some(entry),
            _ => None,
        };
        self.events.push_back(Event::Lost { reason });
        match entry {
            Some(entry) if cleanup => self.release(entry),
            _ => self.finish(),
        }
    }

    fn on_error(&mut self, now: Instant, error: Error, retry: Next) {
        match error {
            Error::LeaseExpired { .. } => {
                self.events.push_back(Event::Failed(FailReason::LeaseLost(
                    LossReason::LeaseExpired,
                )));
                self.finish()
            }
            e if e.is_transient() => {
                let delay = self.next_delay();
                self.backoff(now, delay, retry)
            }
            e => {
                self.events
                    .push_back(Event::Failed(FailReason::Backend(Arc::new(e))));
                self.finish()
            }
        }
    }

    fn on_released(&mut self, now: Instant, reply: Result<bool, Error>) {
        match (reply, &self.state) {
            (Err(e), State::Releasing { entry, .. })
                if e.is_transient() && now < self.valid_until =>
            {
                let entry = entry.clone();
                self.release_error = Some(Arc::new(e));
                let delay = self.next_delay();
                self.backoff(now, delay, Next::Release(entry));
            }
            // The delete failed for good, or kept failing until the
            // deadline: the entry may outlive us until the lease expires.
            (Err(e), State::Releasing { .. }) => {
                self.release_error = None;
                self.events
                    .push_back(Event::ReleaseFailed(SharedError(Arc::new(e))));
                self.finish();
            }
            // Deleted, already gone, not ours any more, or the lease is
            // gone.
            _ => {
                self.release_error = None;
                self.finish();
            }
        }
    }
}

/// Whether a watch `event` on `key` says that `key` is gone, or that the
/// watcher can no longer tell (lost history, a broken watch: `None`).
fn gone_or_unknown(event: Option<&WatchEvent>, key: &str) -> bool {
    match event {
        Some(WatchEvent::Put(_)) => false,
        Some(WatchEvent::Delete { key: k, .. }) => k == key,
        Some(WatchEvent::HistoryLost) | None => true,
    }
}

mod commands;

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
