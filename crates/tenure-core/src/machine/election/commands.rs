//! How the election machine issues its commands: requests and watches
//! with fresh ids, back-off with jitter, and the end of the candidacy.

use std::time::{Duration, Instant};

use super::{ElectionMachine, Next, Second, State};
use crate::machine::config::Strategy;
use crate::machine::messages::{Command, Event, Request, RequestId, WatchId};
use crate::{Entry, Revision, Slot, WatchScope};

impl ElectionMachine {
    pub(super) fn create(&mut self) {
        let slot = match self.strategy {
            Strategy::Queue => Slot::Queue,
            Strategy::SingleKey => Slot::Leader,
        };
        let req = self.request(Request::Create {
            election: self.election.clone(),
            slot,
            lease: self.lease,
            value: self.value.clone(),
        });
        self.state = State::Creating { req };
    }

    pub(super) fn read(&mut self, entry: Entry) {
        let req = self.request(Request::Candidates {
            election: self.election.clone(),
            own: entry.clone(),
        });
        self.state = State::Reading { req, entry };
    }

    /// Reads our own entry: see [`State::Confirming`].
    pub(super) fn confirm(&mut self, entry: Entry) {
        let req = self.request(Request::Get {
            key: entry.key.clone(),
        });
        self.state = State::Confirming { req, entry };
    }

    pub(super) fn probe(&mut self, key: String) {
        let req = self.request(Request::Get { key: key.clone() });
        self.state = State::Probing { req, key };
    }

    pub(super) fn verify(&mut self, entry: Entry) {
        let req = self.request(Request::Get {
            key: entry.key.clone(),
        });
        self.state = State::Verifying { req, entry };
    }

    pub(super) fn release(&mut self, entry: Entry) {
        let req = self.request(Request::Delete {
            entry: entry.clone(),
        });
        self.state = State::Releasing { req, entry };
    }

    pub(super) fn finish(&mut self) {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Following { watch, second, .. } => {
                self.unwatch_following(watch, second.as_ref())
            }
            State::Leader { watch, .. } => self.unwatch(watch),
            _ => {}
        }
        self.events.push_back(Event::Finished);
    }

    pub(super) fn backoff(&mut self, now: Instant, delay: Duration, then: Next) {
        self.state = State::Backoff {
            until: now + delay,
            then,
        };
    }

    pub(super) fn next_delay(&mut self) -> Duration {
        let d = self.retry.delay_from(self.attempt, &mut self.rng);
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    pub(super) fn request(&mut self, request: Request) -> RequestId {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        self.commands.push_back(Command::Request { id, request });
        id
    }

    pub(super) fn watch(&mut self, scope: WatchScope, from: Revision) -> WatchId {
        self.next_id += 1;
        let id = WatchId(self.next_id);
        self.commands.push_back(Command::Watch { id, scope, from });
        id
    }

    /// Drops a follower's watches: its predecessor's (`watch`) and, if it
    /// still watches it, the entry before that one's.
    pub(super) fn unwatch_following(&mut self, watch: WatchId, second: Option<&Second>) {
        self.unwatch(Some(watch));
        self.unwatch(second.and_then(Second::watch));
    }

    pub(super) fn unwatch(&mut self, watch: Option<WatchId>) {
        if let Some(id) = watch {
            self.commands.push_back(Command::Unwatch { id });
        }
    }
}
