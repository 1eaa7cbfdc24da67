//! The one retry policy of ZooKeeper requests: across connection losses
//! (the client reconnects meanwhile) and races with other changes (a bad
//! version, a node created or deleted under us), at most [`RETRIES`]
//! attempts paced by [`pause`].

use std::time::Duration;

use tenure_core::Result;
use zookeeper_client as zk;

use crate::error::Ctx;

/// How often an operation is attempted when ZooKeeper says it raced with
/// another change (bad version, node created or deleted under us) or the
/// connection dropped.
pub(crate) const RETRIES: usize = 20;

/// A pause before retry `attempt` after a connection loss or a race:
/// 20 ms doubling up to 500 ms, so that the retries of one operation span
/// a reconnection (about 8 s in all).
async fn pause(attempt: usize) {
    let ms = 20u64 << attempt.min(5);
    tokio::time::sleep(Duration::from_millis(ms.min(500))).await;
}

/// Whether `e` says the connection dropped (`Custom`: the client's own
/// connection failures, "no response from connection"): the request may
/// or may not have happened, and the client is reconnecting.
pub(crate) fn lost(e: &zk::Error) -> bool {
    matches!(e, zk::Error::ConnectionLoss | zk::Error::Custom(_))
}

/// Counts the attempts of one operation and paces them: every retry loop
/// of this crate asks it whether (and when) to try again.
#[derive(Debug, Default)]
pub(crate) struct Retries {
    made: usize,
}

impl Retries {
    pub(crate) fn new() -> Retries {
        Retries::default()
    }

    /// After an attempt lost to a dropped connection or a race: pauses
    /// (longer each time), then says whether another attempt may follow
    /// (`false` once [`RETRIES`] have been made).
    pub(crate) async fn pause(&mut self) -> bool {
        pause(self.made).await;
        self.count()
    }

    /// After an attempt that learnt what the next one must do differently
    /// (create instead of update, read again after a change in between):
    /// counts it, with no pause, and says whether another may follow.
    pub(crate) fn count(&mut self) -> bool {
        self.made += 1;
        self.made < RETRIES
    }

    /// [`pause`](Retries::pause), or the connection loss (as `ctx` names
    /// it: [`Error::Unreachable`](tenure_core::Error::Unreachable)) once
    /// the attempts have run out.
    pub(crate) async fn after_pause(&mut self, ctx: Ctx<'_>) -> Result<()> {
        if self.pause().await {
            Ok(())
        } else {
            Err(ctx.error(zk::Error::ConnectionLoss))
        }
    }

    /// [`count`](Retries::count), or the connection loss once the
    /// attempts have run out.
    pub(crate) fn at_once(&mut self, ctx: Ctx<'_>) -> Result<()> {
        if self.count() {
            Ok(())
        } else {
            Err(ctx.error(zk::Error::ConnectionLoss))
        }
    }
}

/// One request, retried while the connection is lost: its first other
/// answer, or the connection loss once the attempts have run out.
pub(crate) async fn answer<T, Fut>(
    mut request: impl FnMut() -> Fut,
) -> std::result::Result<T, zk::Error>
where
    Fut: std::future::Future<Output = std::result::Result<T, zk::Error>>,
{
    let mut retries = Retries::new();
    loop {
        match request().await {
            Err(e) if lost(&e) => {
                if !retries.pause().await {
                    return Err(zk::Error::ConnectionLoss);
                }
            }
            other => return other,
        }
    }
}
