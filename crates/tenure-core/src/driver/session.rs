//! A lease kept alive in the background, shared by any number of elections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use super::clock::{self, with_timeout};
use super::keepers::{Keepers, Kept, KeptId};
use super::lease_status::{self, StatusRx};
use crate::machine::{LeaseConfig, LeaseKeeper};
use crate::{check_ttl, DynBackend, Error, LeaseId, LossReason, Result};

/// What a session's lease looks like right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseStatus {
    /// Local deadline: the lease is trusted strictly before this instant.
    pub valid_until: Instant,
    /// Set once the lease has ended, with the reason.
    pub lost: Option<LossReason>,
}

/// Configures a [`Session`].
#[derive(Debug)]
pub struct SessionBuilder {
    backend: DynBackend,
    ttl: Duration,
    safety_margin: Option<Duration>,
    request_timeout: Option<Duration>,
    resume: Option<LeaseId>,
}

impl SessionBuilder {
    /// The TTL to ask for (default 10 s). The backend may grant more;
    /// [`Session::ttl`] tells what was granted.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long before the backend's expiry the lease stops being trusted
    /// locally (default TTL / 5). Must be below TTL / 2.
    pub fn safety_margin(mut self, margin: Duration) -> Self {
        self.safety_margin = Some(margin);
        self
    }

    /// Deadline of each backend request (default TTL / 3).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Re-attaches to `lease`, a lease granted earlier (by this process
    /// before it restarted: keep [`Session::lease`] somewhere that
    /// survives), instead of granting a new one.
    ///
    /// A campaign on the resumed session finds its entry still there and
    /// takes its place back: if it led, it leads again *in the same term*,
    /// with the same fencing token and the proposal it had, without a new
    /// election (etcd's `ResumeElection`). The lease must still be alive:
    /// resume within the TTL of the last keep-alive. [`ttl`](Self::ttl) is
    /// not used: the lease keeps the TTL it was granted with.
    ///
    /// Supported by etcd and the in-memory backend. ZooKeeper cannot: its
    /// lease is a session, and re-attaching one needs the session's
    /// password, which neither a lease id nor the ZooKeeper client lets a
    /// new process recover; it answers [`Error::Unsupported`].
    pub fn resume(mut self, lease: LeaseId) -> Self {
        self.resume = Some(lease);
        self
    }

    /// Grants the lease (or re-attaches to the one given to
    /// [`resume`](Self::resume)) and starts keeping it alive.
    ///
    /// # Errors
    /// [`Error::InvalidTtl`] outside the backend's bounds,
    /// [`Error::InvalidConfig`] for a bad margin, and any error of the
    /// grant request (unreachable backend, timeout, credentials). When
    /// resuming: [`Error::LeaseExpired`] if the lease is gone,
    /// [`Error::Unsupported`] on a backend that cannot resume.
    pub async fn start(self) -> Result<Session> {
        if self.resume.is_none() {
            check_ttl(self.ttl, self.backend.ttl_bounds())?;
        }
        let timeout = self.request_timeout.unwrap_or(self.ttl / 3);
        if timeout.is_zero() {
            return Err(Error::InvalidConfig {
                field: "request_timeout",
                reason: "must be positive".into(),
            });
        }
        let kind = self.backend.kind();
        let sent_at = clock::now();
        let grant = match self.resume {
            None => {
                with_timeout(
                    kind,
                    "grant lease",
                    timeout,
                    self.backend.grant_lease(self.ttl),
                )
                .await?
            }
            Some(lease) => {
                with_timeout(
                    kind,
                    "resume lease",
                    timeout,
                    self.backend.resume_lease(lease),
                )
                .await?
            }
        };
        let mut config = LeaseConfig::for_ttl(grant.ttl);
        if let Some(margin) = self.safety_margin {
            if margin >= grant.ttl / 2 {
                // A lease of our own is given back; a resumed one is left
                // as it was.
                if self.resume.is_none() {
                    let _ = self.backend.revoke_lease(grant.id).await;
                }
                return Err(Error::InvalidConfig {
                    field: "safety_margin",
                    reason: format!(
                        "{margin:?} must be below half the granted TTL {:?}",
                        grant.ttl
                    ),
                });
            }
            config.safety_margin = margin;
        }
        let keeper = LeaseKeeper::new(grant, config, sent_at);
        let (tx, rx) = lease_status::channel(LeaseStatus {
            valid_until: keeper.valid_until(),
            lost: None,
        });
        let keepers = Keepers::of_current_runtime();
        let kept = keepers.keep(Kept {
            backend: self.backend.clone(),
            keeper,
            status: tx,
            timeout,
        });
        debug!(lease = %grant.id, ttl = ?grant.ttl, "session started");
        Ok(Session {
            inner: Arc::new(Inner {
                backend: self.backend,
                lease: grant.id,
                ttl: grant.ttl,
                request_timeout: timeout,
                status: rx,
                keepers,
                kept,
            }),
        })
    }
}

/// A lease kept alive in the background (like etcd's concurrency
/// session). Cloning is cheap and shares the lease.
///
/// Elections that share a session share one keep-alive stream; each
/// election's entry is bound to the lease and disappears with it. When the
/// last clone is dropped, or on [`close`](Self::close), keep-alives stop
/// and the lease is revoked, so every entry bound to it goes at once.
///
/// A session whose lease is lost stays lost: start a new one to campaign
/// again.
#[derive(Clone, Debug)]
pub struct Session {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: DynBackend,
    lease: LeaseId,
    ttl: Duration,
    request_timeout: Duration,
    status: StatusRx,
    /// The runtime's keeper task, which holds this session's lease.
    keepers: Arc<Keepers>,
    kept: KeptId,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.keepers.release(self.kept, false);
    }
}

impl Session {
    /// Configures a session on `backend`.
    pub fn builder(backend: DynBackend) -> SessionBuilder {
        SessionBuilder {
            backend,
            ttl: Duration::from_secs(10),
            safety_margin: None,
            request_timeout: None,
            resume: None,
        }
    }

    /// Starts a session with `ttl` and default settings.
    ///
    /// # Errors
    /// As [`SessionBuilder::start`].
    pub async fn new(backend: DynBackend, ttl: Duration) -> Result<Session> {
        Self::builder(backend).ttl(ttl).start().await
    }

    /// The lease.
    pub fn lease(&self) -> LeaseId {
        self.inner.lease
    }

    /// The TTL the backend granted.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The backend.
    pub fn backend(&self) -> &DynBackend {
        &self.inner.backend
    }

    /// The status right now.
    pub fn status(&self) -> LeaseStatus {
        self.inner.status.borrow()
    }

    /// Whether the lease is still trusted now.
    pub fn is_alive(&self) -> bool {
        let s = self.status();
        s.lost.is_none() && clock::now() < s.valid_until
    }

    /// Resolves when the lease ends, with the reason.
    pub async fn lost(&self) -> LossReason {
        let mut rx = self.inner.status.clone();
        match rx.wait_for(|s| s.lost.is_some()).await {
            Ok(s) => s.lost.unwrap_or(LossReason::Shutdown),
            Err(_) => LossReason::Shutdown,
        }
    }

    /// Stops keep-alives and revokes the lease (every entry bound to it is
    /// deleted). Returns once the revoke was answered or timed out.
    pub async fn close(&self) {
        self.inner.keepers.release(self.inner.kept, false);
        let _ = self.lost().await;
    }

    pub(crate) fn subscribe(&self) -> StatusRx {
        self.inner.status.clone()
    }

    /// Records that the lease was revoked (by the campaign that owns the
    /// session, as its resignation) and ends the session without a second
    /// revoke.
    pub(crate) fn mark_revoked(&self) {
        self.inner.keepers.release(self.inner.kept, true);
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }
}
