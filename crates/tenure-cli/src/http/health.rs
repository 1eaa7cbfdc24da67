//! What `/healthz` and `/readyz` answer: a [`Status`] the command loops
//! update as things happen, and the HTTP handlers read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use crate::output::Event;

/// Health and readiness of one `campaign` or `observe` process, shared
/// between its loop (which reports) and the HTTP server (which answers).
/// Cloning gives another handle on the same state.
///
/// - Healthy (`/healthz` 200) from the start, until a lease could not be
///   renewed (`lease_expired`, `deadline_exceeded`) or, for `observe`,
///   while the backend has not confirmed the leader within the staleness
///   bound; healthy again once a new lease is granted (the next
///   `campaigning`) or the backend answers.
/// - Ready (`/readyz` 200): for `campaign`, from `elected` to the end of
///   that term; for `observe`, while a leader is confirmed.
#[derive(Clone, Debug)]
pub struct Status {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    healthy: AtomicBool,
    ready: AtomicBool,
}

impl Default for Status {
    fn default() -> Self {
        Self::new()
    }
}

impl Status {
    /// Healthy, not ready.
    pub fn new() -> Self {
        Status {
            inner: Arc::new(Inner {
                healthy: AtomicBool::new(true),
                ready: AtomicBool::new(false),
            }),
        }
    }

    /// Whether `/healthz` answers 200.
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::SeqCst)
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// Sets both at once (`observe --all`, which judges from every
    /// election).
    pub fn set_both(&self, healthy: bool, ready: bool) {
        self.set(Some(healthy), Some(ready));
    }

    fn set(&self, healthy: Option<bool>, ready: Option<bool>) {
        if let Some(h) = healthy {
            self.inner.healthy.store(h, Ordering::SeqCst);
        }
        if let Some(r) = ready {
            self.inner.ready.store(r, Ordering::SeqCst);
        }
    }

    /// Takes in an event the command prints (the one place where both
    /// `campaign` and `observe` say what happened).
    pub fn saw(&self, event: &Event) {
        match event {
            // A lease was granted: the backend session works.
            Event::Campaigning { .. } => self.set(Some(true), Some(false)),
            Event::Elected { .. } => self.set(None, Some(true)),
            Event::Lost { reason, .. } => {
                let renewal_failed = matches!(*reason, "lease_expired" | "deadline_exceeded");
                self.set(renewal_failed.then_some(false), Some(false));
            }
            Event::Resigned { .. } => self.set(None, Some(false)),
            Event::Leader { proposal, .. } => self.set(Some(true), Some(proposal.is_some())),
            Event::Unknown { .. } => self.set(Some(false), Some(false)),
            _ => {}
        }
    }

    /// Follows `session` until it ends: a lease that could not be renewed
    /// (even while only campaigning, with no `lost` event to tell) makes
    /// the process unhealthy and not ready.
    pub fn follow_session(&self, session: &tenure::Session) {
        let (status, session) = (self.clone(), session.clone());
        tokio::spawn(async move {
            let reason = session.lost().await;
            if matches!(
                reason,
                tenure::LossReason::LeaseExpired | tenure::LossReason::DeadlineExceeded
            ) {
                status.set(Some(false), Some(false));
            }
        });
    }
}

/// `GET /healthz`.
pub(super) async fn healthz(State(status): State<Status>) -> (StatusCode, &'static str) {
    if status.is_healthy() {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the backend did not renew the lease or confirm the leader\n",
        )
    }
}

/// `GET /readyz`.
pub(super) async fn readyz(State(status): State<Status>) -> (StatusCode, &'static str) {
    if status.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_events_drive_health_and_readiness() {
        let s = Status::new();
        assert!(s.is_healthy() && !s.is_ready());
        s.saw(&Event::Elected {
            proposal: "a".into(),
            token: 1,
            lease: "1".into(),
            valid_until_mono_ns: 0,
        });
        assert!(s.is_healthy() && s.is_ready());
        s.saw(&Event::Lost {
            reason: "entry_deleted",
            token: 1,
        });
        assert!(s.is_healthy() && !s.is_ready());
        s.saw(&Event::Lost {
            reason: "deadline_exceeded",
            token: 1,
        });
        assert!(!s.is_healthy() && !s.is_ready());
        s.saw(&Event::Campaigning {
            proposal: "a".into(),
            lease: "2".into(),
            ttl_ms: 1000,
        });
        assert!(s.is_healthy() && !s.is_ready());
    }

    #[test]
    fn observations_drive_health_and_readiness() {
        let s = Status::new();
        s.saw(&Event::Leader {
            proposal: Some("a".into()),
            token: Some(3),
        });
        assert!(s.is_healthy() && s.is_ready());
        s.saw(&Event::Unknown {
            unconfirmed_for_ms: 10,
        });
        assert!(!s.is_healthy() && !s.is_ready());
        s.saw(&Event::Leader {
            proposal: None,
            token: None,
        });
        assert!(s.is_healthy() && !s.is_ready());
    }
}
