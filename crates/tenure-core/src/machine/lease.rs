//! Keeping one lease alive, and knowing when we can no longer trust it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::{Error, LeaseGrant, LeaseId, LossReason};

/// Timing of a lease's keep-alives and of its local deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseConfig {
    /// Time between successful keep-alives (default: TTL / 3).
    pub keepalive_interval: Duration,
    /// Time between retries after a failed keep-alive.
    pub retry_interval: Duration,
    /// How long before the backend could expire the lease the holder
    /// stops trusting it: `valid_until = send time of the last acknowledged
    /// keep-alive + TTL - safety_margin`. Covers clock-rate drift between
    /// us and the backend and the time to act on the deadline.
    pub safety_margin: Duration,
}

impl LeaseConfig {
    /// Defaults derived from a granted TTL: keep-alive every TTL/3, retry
    /// every TTL/10, safety margin TTL/5.
    pub fn for_ttl(ttl: Duration) -> Self {
        LeaseConfig {
            keepalive_interval: ttl / 3,
            retry_interval: ttl / 10,
            safety_margin: ttl / 5,
        }
    }
}

/// A command for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum LeaseCommand {
    /// Send one keep-alive; report the answer with
    /// [`LeaseKeeper::handle_keepalive`] passing the same `sent_at`.
    KeepAlive {
        /// The lease.
        lease: LeaseId,
        /// When the request is sent (the `now` of the timeout that issued it).
        sent_at: Instant,
    },
    /// Revoke the lease (best effort, no answer expected).
    Revoke {
        /// The lease.
        lease: LeaseId,
    },
}

/// What the keeper tells its users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseEvent {
    /// The lease was confirmed; it can be trusted until `valid_until`.
    Renewed {
        /// The lease.
        lease: LeaseId,
        /// The new local deadline.
        valid_until: Instant,
    },
    /// The lease can no longer be trusted; every entry bound to it must be
    /// treated as gone.
    Lost {
        /// The lease.
        lease: LeaseId,
        /// Backend said so ([`LossReason::LeaseExpired`]), or the local
        /// deadline passed ([`LossReason::DeadlineExceeded`]), or it was
        /// released ([`LossReason::Resigned`]).
        reason: LossReason,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Alive {
        next_keepalive: Instant,
        in_flight: Option<Instant>,
    },
    Ended,
}

/// Keeps one granted lease alive (sans-IO).
///
/// The keeper asks for a keep-alive every `keepalive_interval`, retries
/// failures every `retry_interval`, and declares the lease lost either when
/// the backend says it is gone or when `valid_until` passes without an
/// acknowledged keep-alive — whichever comes first. The deadline is
/// computed from the *send* time of the acknowledged request, so it always
/// falls before the backend's own expiry (which counts from receipt).
#[derive(Debug)]
pub struct LeaseKeeper {
    grant: LeaseGrant,
    config: LeaseConfig,
    valid_until: Instant,
    state: State,
    commands: VecDeque<LeaseCommand>,
    events: VecDeque<LeaseEvent>,
}

impl LeaseKeeper {
    /// Starts keeping `grant` alive. `requested_at` is when the grant
    /// request was sent: the lease is trusted until
    /// `requested_at + ttl - safety_margin`.
    pub fn new(grant: LeaseGrant, config: LeaseConfig, requested_at: Instant) -> Self {
        let valid_until = deadline(requested_at, grant.ttl, config.safety_margin);
        LeaseKeeper {
            grant,
            config,
            valid_until,
            state: State::Alive {
                next_keepalive: requested_at + config.keepalive_interval,
                in_flight: None,
            },
            // No buffer until something is queued: the poll that drains
            // a queue frees it, so an idle session keeps none (thousands
            // of idle sessions in one process would each hold two).
            commands: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The lease being kept.
    pub fn lease(&self) -> LeaseId {
        self.grant.id
    }

    /// The TTL the backend granted.
    pub fn ttl(&self) -> Duration {
        self.grant.ttl
    }

    /// The current local deadline (meaningless once the lease has ended).
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// Whether the lease is still trusted (not lost, not released).
    pub fn is_alive(&self) -> bool {
        matches!(self.state, State::Alive { .. })
    }

    /// Reports the answer to a [`LeaseCommand::KeepAlive`] sent at `sent_at`.
    pub fn handle_keepalive(
        &mut self,
        now: Instant,
        sent_at: Instant,
        reply: Result<Duration, Error>,
    ) {
        let State::Alive { in_flight, .. } = &mut self.state else {
            return;
        };
        if *in_flight != Some(sent_at) {
            return; // an answer to a request we no longer wait for
        }
        *in_flight = None;
        match reply {
            Ok(remaining) if !remaining.is_zero() => {
                let until = deadline(
                    sent_at,
                    remaining.min(self.grant.ttl),
                    self.config.safety_margin,
                );
                self.valid_until = self.valid_until.max(until);
                self.state = State::Alive {
                    next_keepalive: sent_at + self.config.keepalive_interval,
                    in_flight: None,
                };
                self.events.push_back(LeaseEvent::Renewed {
                    lease: self.grant.id,
                    valid_until: self.valid_until,
                });
                // The reply may have arrived after the deadline passed.
                self.handle_timeout(now);
            }
            // A zero TTL or an explicit "not found" both mean gone.
            Ok(_) | Err(Error::LeaseExpired { .. }) => self.end(LossReason::LeaseExpired),
            Err(_) => {
                self.state = State::Alive {
                    next_keepalive: now + self.config.retry_interval,
                    in_flight: None,
                };
                self.handle_timeout(now);
            }
        }
    }

    /// Advances time: issues a due keep-alive, or ends the lease when its
    /// local deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let State::Alive {
            next_keepalive,
            in_flight,
        } = &mut self.state
        else {
            return;
        };
        if now >= self.valid_until {
            self.end(LossReason::DeadlineExceeded);
            return;
        }
        if in_flight.is_none() && now >= *next_keepalive {
            *in_flight = Some(now);
            self.commands.push_back(LeaseCommand::KeepAlive {
                lease: self.grant.id,
                sent_at: now,
            });
        }
    }

    /// Releases the lease on purpose (shutdown): asks for a revoke.
    pub fn release(&mut self) {
        if self.is_alive() {
            self.end(LossReason::Resigned);
        }
    }

    /// The backend told us (elsewhere than in a keep-alive) that the lease
    /// is gone, e.g. a ZooKeeper session expiry event.
    pub fn handle_expired(&mut self) {
        if self.is_alive() {
            self.end(LossReason::LeaseExpired);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Alive {
                next_keepalive,
                in_flight,
            } => Some(match in_flight {
                Some(_) => self.valid_until,
                None => next_keepalive.min(self.valid_until),
            }),
            State::Ended => None,
        }
    }

    /// The next command to execute.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<LeaseCommand> {
        super::drain_one(&mut self.commands)
    }

    /// The next event for users of the lease.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LeaseEvent> {
        super::drain_one(&mut self.events)
    }

    fn end(&mut self, reason: LossReason) {
        self.state = State::Ended;
        // Revoke even after a deadline loss: if the backend still holds the
        // lease, our entries would otherwise block the election until the
        // backend expires it.
        if reason != LossReason::LeaseExpired {
            self.commands.push_back(LeaseCommand::Revoke {
                lease: self.grant.id,
            });
        }
        self.events.push_back(LeaseEvent::Lost {
            lease: self.grant.id,
            reason,
        });
    }
}

fn deadline(sent_at: Instant, ttl: Duration, margin: Duration) -> Instant {
    sent_at + ttl.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keeper(t0: Instant) -> LeaseKeeper {
        let grant = LeaseGrant {
            id: LeaseId(1),
            ttl: Duration::from_secs(3),
        };
        LeaseKeeper::new(grant, LeaseConfig::for_ttl(grant.ttl), t0)
    }

    #[test]
    fn renews_every_third_of_ttl_and_extends_deadline_from_send_time() {
        let t0 = Instant::now();
        let mut k = keeper(t0);
        assert_eq!(k.valid_until(), t0 + Duration::from_millis(2400));
        assert_eq!(k.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        k.handle_timeout(t1);
        assert_eq!(
            k.poll_command(),
            Some(LeaseCommand::KeepAlive {
                lease: LeaseId(1),
                sent_at: t1
            })
        );
        // The answer arrives late; the deadline still counts from the send.
        let t2 = t1 + Duration::from_millis(300);
        k.handle_keepalive(t2, t1, Ok(Duration::from_secs(3)));
        assert_eq!(k.valid_until(), t1 + Duration::from_millis(2400));
        assert!(matches!(k.poll_event(), Some(LeaseEvent::Renewed { .. })));
        assert_eq!(k.poll_timeout(), Some(t1 + Duration::from_secs(1)));
    }

    #[test]
    fn deadline_passes_without_ack_then_lost_and_revoked() {
        let t0 = Instant::now();
        let mut k = keeper(t0);
        let t1 = t0 + Duration::from_secs(1);
        k.handle_timeout(t1);
        let _ = k.poll_command();
        // No answer ever comes: the next wake-up is the deadline.
        assert_eq!(k.poll_timeout(), Some(k.valid_until()));
        k.handle_timeout(k.valid_until());
        assert_eq!(
            k.poll_command(),
            Some(LeaseCommand::Revoke { lease: LeaseId(1) })
        );
        assert_eq!(
            k.poll_event(),
            Some(LeaseEvent::Lost {
                lease: LeaseId(1),
                reason: LossReason::DeadlineExceeded
            })
        );
        // A late success cannot resurrect the lease.
        k.handle_keepalive(t1 + Duration::from_secs(5), t1, Ok(Duration::from_secs(3)));
        assert!(!k.is_alive());
        assert_eq!(k.poll_event(), None);
    }

    #[test]
    fn zero_ttl_reply_means_expired() {
        let t0 = Instant::now();
        let mut k = keeper(t0);
        let t1 = t0 + Duration::from_secs(1);
        k.handle_timeout(t1);
        let _ = k.poll_command();
        k.handle_keepalive(t1, t1, Ok(Duration::ZERO));
        assert_eq!(
            k.poll_event(),
            Some(LeaseEvent::Lost {
                lease: LeaseId(1),
                reason: LossReason::LeaseExpired
            })
        );
        assert_eq!(k.poll_command(), None, "an expired lease needs no revoke");
    }

    #[test]
    fn transient_failure_retries_sooner() {
        let t0 = Instant::now();
        let mut k = keeper(t0);
        let t1 = t0 + Duration::from_secs(1);
        k.handle_timeout(t1);
        let _ = k.poll_command();
        let err = Error::Cancelled("test");
        k.handle_keepalive(t1, t1, Err(err));
        assert_eq!(k.poll_timeout(), Some(t1 + Duration::from_millis(300)));
        assert!(k.is_alive());
    }
}
