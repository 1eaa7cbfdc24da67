//! The status of a session's lease, written by the runtime's keeper task and
//! read (or waited on) by the session's handles and campaigns: a watch
//! channel of one small value.
//!
//! Why not `tokio::sync::watch`: its shared state reserves eight wait
//! lists (about 370 bytes) for every channel, and a session is one
//! channel; at ten thousand idle candidates that is most of a kilobyte
//! per candidate once the tasks around it are counted. One wait list and
//! a version number do the same job here.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::session::LeaseStatus;

/// The writing half, held by the keeper task. Dropping it closes the
/// channel: every waiter learns that no status will come any more.
#[derive(Debug)]
pub(crate) struct StatusTx(Arc<Shared>);

/// A reading half: the status now, and waits for changes it has not
/// seen yet.
#[derive(Clone, Debug)]
pub(crate) struct StatusRx {
    shared: Arc<Shared>,
    /// The version this reader saw last.
    seen: u64,
}

/// The writer is gone: no later status can come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Closed;

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug)]
struct State {
    status: LeaseStatus,
    /// Bumped by every write.
    version: u64,
    closed: bool,
}

/// A channel holding `initial`, seen by the reader returned.
pub(crate) fn channel(initial: LeaseStatus) -> (StatusTx, StatusRx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            status: initial,
            version: 0,
            closed: false,
        }),
        changed: Notify::new(),
    });
    (StatusTx(Arc::clone(&shared)), StatusRx { shared, seen: 0 })
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a plain value: a panic while it was held cannot
        // have left it half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StatusTx {
    /// Changes the status with `f` and wakes every waiter.
    pub(crate) fn send_modify(&self, f: impl FnOnce(&mut LeaseStatus)) {
        {
            let mut state = self.0.lock();
            f(&mut state.status);
            state.version += 1;
        }
        self.0.changed.notify_waiters();
    }
}

impl Drop for StatusTx {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.changed.notify_waiters();
    }
}

impl StatusRx {
    /// The status now.
    pub(crate) fn borrow(&self) -> LeaseStatus {
        self.shared.lock().status
    }

    /// The status now, marked as seen.
    pub(crate) fn borrow_and_update(&mut self) -> LeaseStatus {
        let state = self.shared.lock();
        self.seen = state.version;
        state.status
    }

    /// Waits until the status changes from the last one this reader saw,
    /// and marks the new one seen.
    ///
    /// # Errors
    /// [`Closed`] once the writer is gone and every status it wrote has
    /// been seen.
    pub(crate) async fn changed(&mut self) -> Result<(), Closed> {
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            // Registered before the check: a write after it wakes us, a
            // write before it is seen by it.
            notified.as_mut().enable();
            {
                let state = self.shared.lock();
                if state.version != self.seen {
                    self.seen = state.version;
                    return Ok(());
                }
                if state.closed {
                    return Err(Closed);
                }
            }
            notified.await;
        }
    }

    /// Waits until the status satisfies `ready` (checked now first), and
    /// returns that status.
    ///
    /// # Errors
    /// [`Closed`] once the writer is gone and no status it wrote does.
    pub(crate) async fn wait_for(
        &mut self,
        ready: impl Fn(&LeaseStatus) -> bool,
    ) -> Result<LeaseStatus, Closed> {
        loop {
            let now = self.borrow_and_update();
            if ready(&now) {
                return Ok(now);
            }
            self.changed().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::LossReason;

    fn status(at: Instant) -> LeaseStatus {
        LeaseStatus {
            valid_until: at,
            lost: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_wakes_a_waiter_and_is_seen_once() {
        let t = Instant::now();
        let (tx, mut rx) = channel(status(t));
        let mut other = rx.clone();
        let waiter =
            tokio::spawn(async move { other.changed().await.map(|()| other.borrow_and_update()) });
        tokio::task::yield_now().await;
        tx.send_modify(|s| s.valid_until = t + Duration::from_secs(1));
        let seen = waiter.await.unwrap().unwrap();
        assert_eq!(seen.valid_until, t + Duration::from_secs(1));
        // A change made before the wait is not missed, and is seen once.
        tx.send_modify(|s| s.lost = Some(LossReason::LeaseExpired));
        assert_eq!(rx.changed().await, Ok(()));
        assert_eq!(rx.borrow().lost, Some(LossReason::LeaseExpired));
        let again = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
        assert!(again.is_err(), "no second wake for one change");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_writer_closes_after_its_last_change() {
        let t = Instant::now();
        let (tx, mut rx) = channel(status(t));
        tx.send_modify(|s| s.lost = Some(LossReason::Resigned));
        drop(tx);
        // The last change first, then the end.
        assert_eq!(rx.changed().await, Ok(()));
        assert_eq!(rx.changed().await, Err(Closed));
        let mut fresh = rx.clone();
        let lost = fresh.wait_for(|s| s.lost.is_some()).await;
        assert_eq!(lost.map(|s| s.lost), Ok(Some(LossReason::Resigned)));
        let (tx, mut waiting) = channel(status(t));
        let waiter = tokio::spawn(async move { waiting.wait_for(|s| s.lost.is_some()).await });
        tokio::task::yield_now().await;
        drop(tx);
        assert_eq!(waiter.await.unwrap(), Err(Closed));
    }
}
