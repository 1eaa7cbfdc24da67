//! Leases as ZooKeeper sessions: one session per granted lease, the
//! table of live ones, and the task that gives a lease etcd's "expires
//! unless renewed" meaning.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tenure_core::{Error, LeaseId, Result};
use tracing::debug;
use zookeeper_client as zk;

use crate::layout::Uuid;

/// Locks `m`, recovering the guard if another thread panicked while
/// holding it: the values behind these locks (a table of sessions, an
/// instant, learnt bounds) stay consistent at every step, so a panic
/// elsewhere must not make them look empty.
pub(crate) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One granted lease: its own session.
pub(crate) struct LeaseSession {
    pub(crate) id: LeaseId,
    pub(crate) client: zk::Client,
    /// Makes the names of this lease's queue entries unique ("protected"
    /// in Curator's words).
    pub(crate) uuid: Uuid,
    pub(crate) ttl: Duration,
    /// When the lease was last renewed (granted or kept alive).
    renewed: Mutex<tokio::time::Instant>,
    /// Serialises this lease's creates, so that two concurrent creates
    /// cannot both miss the other's protected node.
    pub(crate) creating: tokio::sync::Mutex<()>,
}

impl LeaseSession {
    /// A lease on `client`'s session, renewed at `granted`.
    pub(crate) fn new(
        client: zk::Client,
        ttl: Duration,
        granted: tokio::time::Instant,
    ) -> LeaseSession {
        LeaseSession {
            id: LeaseId(client.session_id().0),
            client,
            uuid: Uuid::new_v4(),
            ttl,
            renewed: Mutex::new(granted),
            creating: tokio::sync::Mutex::new(()),
        }
    }

    fn renewed(&self) -> tokio::time::Instant {
        *locked(&self.renewed)
    }

    /// Records a renewal sent at `at` (a later one is never undone).
    pub(crate) fn renew(&self, at: tokio::time::Instant) {
        let mut r = locked(&self.renewed);
        *r = (*r).max(at);
    }
}

/// The live lease sessions by id.
#[derive(Default)]
pub(crate) struct Leases {
    by_id: Mutex<HashMap<i64, Arc<LeaseSession>>>,
}

impl Leases {
    /// The session of `lease`, if known.
    pub(crate) fn get(&self, lease: LeaseId) -> Option<Arc<LeaseSession>> {
        locked(&self.by_id).get(&lease.0).cloned()
    }

    /// The live session of `lease`, or [`Error::LeaseExpired`] (a session
    /// found ended is forgotten).
    pub(crate) fn live(&self, lease: LeaseId) -> Result<Arc<LeaseSession>> {
        match self.get(lease) {
            Some(l) if !l.client.state().is_terminated() => Ok(l),
            Some(_) => {
                self.remove(lease);
                Err(Error::LeaseExpired { lease })
            }
            None => Err(Error::LeaseExpired { lease }),
        }
    }

    pub(crate) fn insert(&self, lease: Arc<LeaseSession>) {
        locked(&self.by_id).insert(lease.id.0, lease);
    }

    pub(crate) fn remove(&self, lease: LeaseId) -> Option<Arc<LeaseSession>> {
        locked(&self.by_id).remove(&lease.0)
    }

    /// The ids of every known lease.
    pub(crate) fn ids(&self) -> Vec<LeaseId> {
        locked(&self.by_id).keys().map(|id| LeaseId(*id)).collect()
    }

    pub(crate) fn len(&self) -> usize {
        locked(&self.by_id).len()
    }
}

/// Gives a lease etcd's semantics on top of a session: the ZooKeeper
/// client pings on its own, so a session lives as long as its process,
/// whether or not anybody renews the lease. This task runs `revoke` (which
/// closes the session) once the lease has not been renewed for a whole
/// TTL (a process that is frozen or cut off loses it on the server's
/// clock anyway). It ends when the lease is dropped.
pub(crate) async fn expire_unrenewed<F, Fut>(lease: Weak<LeaseSession>, revoke: F)
where
    F: FnOnce(LeaseId) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        let Some(l) = lease.upgrade() else { return };
        let deadline = l.renewed() + l.ttl;
        let id = l.id;
        drop(l);
        tokio::time::sleep_until(deadline).await;
        let Some(l) = lease.upgrade() else { return };
        if tokio::time::Instant::now() >= l.renewed() + l.ttl {
            drop(l);
            debug!(lease = %id, "lease not renewed within its TTL: closing its session");
            revoke(id).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_yields_its_value() {
        let table = Arc::new(Mutex::new(HashMap::from([(7_i64, "lease")])));
        let held = Arc::clone(&table);
        let panicked = std::thread::spawn(move || {
            let _guard = held.lock();
            panic!("a holder of the lock panics");
        })
        .join();
        assert!(panicked.is_err());
        assert!(table.is_poisoned(), "the path under test ran");
        assert_eq!(locked(&table).get(&7), Some(&"lease"));
    }
}
