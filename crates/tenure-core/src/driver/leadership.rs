//! The handle a winner holds for the length of its term.

use std::fmt;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::campaign::{Control, TermStatus};
use super::clock::{self, with_timeout};
use crate::{
    DynBackend, ElectionName, Entry, Error, FencingToken, IntoValue, LossReason, Result, Revision,
};

/// Proof of leadership for one term of one election.
///
/// Act as leader only while [`is_leader`](Self::is_leader) holds, and stop
/// the moment [`lost`](Self::lost) resolves (or the
/// [`cancellation_token`](Self::cancellation_token) fires). Writes that must
/// not come from a deposed leader go through
/// [`guarded_put`](Self::guarded_put), which the backend rejects once our
/// entry is gone, whatever our local view.
///
/// # Ending a term
///
/// [`resign`](Self::resign) (or [`release`](Self::release) through a
/// shared reference, e.g. an `Arc<Leadership>`) stops acting as leader at
/// once, deletes the entry and returns when that is done: the successor
/// takes over in one round trip. Dropping the handle only *starts* the
/// same resignation on a background task. A process that drops it and
/// then exits (the end of `main`, a runtime shut down) may end that task
/// before the delete is sent: the entry then stays until the lease
/// expires, one TTL, and observers see the dead process as leader
/// meanwhile. Await `resign()` or
/// [`Election::close`](super::Election::close) before exiting.
pub struct Leadership {
    election: ElectionName,
    /// Boxed: the handle is held (with a [`lost`](Self::lost) future
    /// beside it) by every leader's task for its whole term.
    entry: Box<Entry>,
    backend: DynBackend,
    request_timeout: Duration,
    term: watch::Receiver<TermStatus>,
    control: mpsc::UnboundedSender<Control>,
    cancel: CancellationToken,
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field("election", &self.election)
            .field("key", &self.entry.key)
            .field("token", &self.token())
            .finish_non_exhaustive()
    }
}

impl Leadership {
    pub(crate) fn new(
        election: ElectionName,
        entry: Entry,
        backend: DynBackend,
        request_timeout: Duration,
        term: watch::Receiver<TermStatus>,
        control: mpsc::UnboundedSender<Control>,
    ) -> Self {
        let cancel = CancellationToken::new();
        // Fire the token on loss, or when the campaign task goes away.
        let mut rx = term.clone();
        let token = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = rx.wait_for(|s| s.lost.is_some()) => {}
                () = token.cancelled() => {}
            }
            token.cancel();
        });
        Leadership {
            election,
            entry: Box::new(entry),
            backend,
            request_timeout,
            term,
            control,
            cancel,
        }
    }

    /// The election won.
    pub fn election(&self) -> &ElectionName {
        &self.election
    }

    /// The fencing token: strictly greater than every earlier leader's of
    /// this election. Pass it to downstream systems so they can reject a
    /// deposed leader's requests.
    pub fn token(&self) -> FencingToken {
        self.entry.created
    }

    /// Our winning entry (key, proposal, lease).
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The local deadline: never act as leader at or after this instant
    /// unless it has been extended (it moves with every keep-alive).
    pub fn valid_until(&self) -> Instant {
        self.term.borrow().valid_until
    }

    /// Whether we are still leader now: not lost, deadline not passed.
    pub fn is_leader(&self) -> bool {
        let s = self.term.borrow();
        s.lost.is_none() && clock::now() < s.valid_until
    }

    /// Why the term ended, if it has.
    pub fn loss_reason(&self) -> Option<LossReason> {
        self.term.borrow().lost
    }

    /// Resolves when leadership is lost, with the reason. Resolves
    /// immediately if it already was.
    pub async fn lost(&self) -> LossReason {
        let mut rx = self.term.clone();
        let result = match rx.wait_for(|s| s.lost.is_some()).await {
            Ok(s) => s.lost.unwrap_or(LossReason::Shutdown),
            Err(_) => LossReason::Shutdown,
        };
        result
    }

    /// A token cancelled the moment leadership is lost, for plugging into
    /// code that already understands cancellation.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.child_token()
    }

    /// Resigns: stops acting as leader at once and deletes our entry so the
    /// next candidate takes over in one round trip. Returns once the delete
    /// was answered; on a session of the campaign's own, once the lease
    /// was revoked too.
    ///
    /// The term ends locally whatever the outcome: [`lost`](Self::lost)
    /// resolves with [`LossReason::Resigned`] and the work must stop.
    ///
    /// # Errors
    /// The backend's error when the delete failed for good (a permanent
    /// error, or transient ones retried until the lease's deadline): the
    /// entry may then stay, and observers see this process as leader, until
    /// the lease expires (one TTL) or, on a session of the campaign's own,
    /// until the revoke that follows lands. An entry that was already gone
    /// is not an error.
    pub async fn resign(self) -> Result<()> {
        self.release().await
    }

    /// [`resign`](Self::resign) through a shared reference (an
    /// `Arc<Leadership>`). Later calls, and calls after the term was lost,
    /// return once the campaign's cleanup is over.
    ///
    /// # Errors
    /// As [`resign`](Self::resign).
    pub async fn release(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.control.unbounded_send(Control::Resign(tx)).is_ok() {
            if let Ok(result) = rx.await {
                return result;
            }
        }
        // The campaign task has ended: its cleanup is over.
        Ok(())
    }

    /// Replaces our proposal (the value other candidates and observers
    /// see) while we lead.
    ///
    /// # Errors
    /// [`Error::NotLeader`] if the term has ended or our entry is gone.
    pub async fn proclaim(&self, value: impl IntoValue) -> Result<()> {
        self.ensure_leader()?;
        let kind = self.backend.kind();
        let update = self.backend.update(&self.entry, value.into_value());
        match with_timeout(kind, "proclaim", self.request_timeout, update).await {
            Ok(_) => Ok(()),
            Err(Error::NotOwner { .. }) => Err(self.not_leader()),
            Err(e) => Err(e),
        }
    }

    /// Writes `value` at `key` only if we still lead, checked by the backend
    /// in the same transaction as the write (our entry must still exist
    /// unchanged). A deposed leader's write is rejected even if it has not
    /// yet noticed its loss.
    ///
    /// # Errors
    /// [`Error::NotLeader`] if the local term has ended or the backend
    /// rejects the write; [`Error::KeyInElection`] for a key inside this
    /// election (its leader key, anything under `<election>/`), where it
    /// could pass for a candidate; [`Error::Timeout`] after the request
    /// timeout (the write may or may not have been applied).
    pub async fn guarded_put(&self, key: &str, value: impl IntoValue) -> Result<Revision> {
        self.ensure_leader()?;
        let kind = self.backend.kind();
        let put = self
            .backend
            .guarded_put(&self.entry, key, value.into_value());
        match with_timeout(kind, "guarded put", self.request_timeout, put).await {
            Err(Error::NotOwner { .. }) => Err(self.not_leader()),
            other => other,
        }
    }

    fn ensure_leader(&self) -> Result<()> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(self.not_leader())
        }
    }

    fn not_leader(&self) -> Error {
        Error::NotLeader {
            election: self.election.to_string(),
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // The campaign task resigns when the last control sender goes; the
        // explicit message makes it immediate even if clones linger.
        let (tx, _rx) = oneshot::channel();
        let _ = self.control.unbounded_send(Control::Resign(tx));
        self.cancel.cancel();
    }
}
