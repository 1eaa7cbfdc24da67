//! Closing an election handle: [`Closing`] tells the handle's campaigns to
//! withdraw, and lets [`Election::close`](super::Election::close) wait
//! until every campaign task has ended.
//!
//! One small shared value in place of a cancellation token and a task
//! tracker: each of those is an allocation of its own (about 170 bytes
//! together), and a process with thousands of shards holds an election
//! handle per shard.

use std::future::Ready;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use futures::future::Either;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// Whether an election handle is closed, and how many of its campaign
/// tasks still run.
#[derive(Debug, Default)]
pub(crate) struct Closing {
    closed: AtomicBool,
    running: AtomicUsize,
    /// Woken when the handle is closed and when the last task ends.
    changed: Notify,
}

/// One running campaign task, counted until it is dropped.
#[derive(Debug)]
pub(crate) struct Running(Arc<Closing>);

impl Closing {
    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Counts a campaign task from now until the guard is dropped. Take it
    /// before checking [`is_closed`](Self::is_closed): then either the
    /// check sees the close, or [`ended`](Self::ended) waits for the task.
    pub(crate) fn enter(self: &Arc<Self>) -> Running {
        self.running.fetch_add(1, Ordering::SeqCst);
        Running(Arc::clone(self))
    }

    /// Marks the handle closed and wakes every campaign waiting in
    /// [`Running::closed`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Resolves once no campaign task runs.
    pub(crate) async fn ended(&self) {
        loop {
            // Created before the check, as in `Running::closed`: a last
            // task ending after the check still wakes it.
            let notified = self.changed.notified();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Running {
    /// Whether the handle was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Resolves once the handle is closed, or (rarely) at another wake-up
    /// of the handle: the caller checks [`is_closed`](Self::is_closed)
    /// and waits again. A plain future, not an `async fn`: a campaign's
    /// `select!` keeps it in the task's state, so its size counts for
    /// every idle candidate.
    pub(crate) fn closed(&self) -> Either<Ready<()>, Notified<'_>> {
        // Created before the check: a close after the check still wakes it.
        let notified = self.0.changed.notified();
        if self.is_closed() {
            Either::Left(std::future::ready(()))
        } else {
            Either::Right(notified)
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_close_wakes_a_waiting_campaign_and_waits_for_its_end() {
        let closing = Arc::new(Closing::default());
        let running = closing.enter();
        let (ended_tx, mut ended_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            while !running.is_closed() {
                running.closed().await;
            }
            // Withdrawing takes a while; `ended` must wait for it.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = ended_tx.send(());
            drop(running);
        });
        tokio::task::yield_now().await;
        assert!(!closing.is_closed());
        closing.close();
        closing.ended().await;
        assert!(
            ended_rx.try_recv().is_ok(),
            "ended() returned before the task finished"
        );
        task.await.expect("task");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_entered_after_close_sees_it() {
        let closing = Arc::new(Closing::default());
        closing.close();
        let running = closing.enter();
        assert!(running.is_closed());
        // Already closed: resolves at once.
        running.closed().await;
        drop(running);
        closing.ended().await;
    }

    #[tokio::test(start_paused = true)]
    async fn ended_waits_for_every_task() {
        let closing = Arc::new(Closing::default());
        let a = closing.enter();
        let b = closing.enter();
        closing.close();
        let waiter = {
            let closing = Arc::clone(&closing);
            tokio::spawn(async move { closing.ended().await })
        };
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one task still runs");
        drop(b);
        waiter.await.expect("ended");
    }
}
