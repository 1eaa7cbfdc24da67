//! The server state: key/value map, leases, revision counter and history.
//!
//! Every operation is a synchronous method of [`State`] taking `now`, so
//! the rules live in one place and are easy to read. Each begins by
//! expiring the leases due at `now` ([`State::expire_due`]), which makes
//! expiry exact and deterministic whether or not the reaper task has run
//! yet.
//!
//! Every operation costs O(log N) in the number of leases, keys and
//! watches, so that ten thousand candidates on one server keep up with
//! their own keep-alives: lease deadlines are kept in order
//! ([`State::deadlines`]), the keys of a lease and the queue of an
//! election have indexes of their own, and a change visits only the
//! watchers of its key and election ([`Watchers`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tenure_core::{
    CreateOutcome, ElectionName, Entry, Error, LeaseGrant, LeaseId, Result, Revision, Slot,
    Snapshot, WatchEvent, WatchScope, WatchStream,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::ClientShared;
use crate::watch::{self, in_scope, Watcher, Watchers};

/// The first lease id handed out. Like etcd's, ids are 16 hex digits, so an
/// election segment named like a short hex number (`"b"`, `"cafe"`) does
/// not collide with a queue key.
const FIRST_LEASE_ID: i64 = 0x7465_6e75_7265_0001;

/// The lease id of entries bound to no lease (etcd's convention).
pub(crate) const NO_LEASE: LeaseId = LeaseId(0);

/// The shared server: state behind a std mutex (never held across an
/// `.await`) and the reaper's wake-up signal.
pub(crate) struct Server {
    state: Mutex<State>,
    /// Wakes the reaper to re-plan when leases change (and to exit when
    /// the server is dropped).
    pub(crate) wake: Arc<Notify>,
    /// Ids of clients handed out so far (0 is the backend's own client).
    next_client: AtomicU64,
}

impl Server {
    /// A fresh server with the given TTL bounds.
    pub(crate) fn new(ttl_bounds: (Duration, Duration)) -> Arc<Server> {
        Arc::new(Server {
            state: Mutex::new(State::new(ttl_bounds)),
            wake: Arc::new(Notify::new()),
            next_client: AtomicU64::new(1),
        })
    }

    /// Locks the state. A poisoned lock (a panic elsewhere while holding
    /// it) is recovered: every operation leaves the state consistent
    /// before it can panic.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new client id.
    pub(crate) fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts the reaper if it is not running (first lease, or the
    /// runtime it ran on has shut down), and makes it re-plan.
    pub(crate) fn ensure_reaper(self: &Arc<Self>) {
        {
            let mut state = self.lock();
            let running = state.reaper.as_ref().is_some_and(|h| !h.is_finished());
            if !running {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    state.reaper = Some(handle.spawn(crate::reaper::run(
                        Arc::downgrade(self),
                        Arc::clone(&self.wake),
                    )));
                }
            }
        }
        self.wake.notify_one();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The reaper holds only a `Weak`; wake it so that it sees the
        // server gone and exits.
        self.wake.notify_one();
    }
}

/// One stored key.
#[derive(Clone, Debug)]
struct Stored {
    value: Bytes,
    lease: LeaseId,
    created: Revision,
    modified: Revision,
    /// Created as a queue entry ([`Slot::Queue`]): only such keys belong
    /// to an election's candidates and its [`WatchScope::Election`].
    queue: bool,
}

impl Stored {
    fn entry(&self, key: &str) -> Entry {
        Entry {
            key: key.to_owned(),
            value: self.value.clone(),
            lease: self.lease,
            created: self.created,
            modified: self.modified,
        }
    }
}

/// One live lease (its keys are in [`State::lease_keys`]).
#[derive(Debug)]
struct Lease {
    ttl: Duration,
    expires_at: Instant,
}

/// One change in the history.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    /// Revision of the change.
    pub(crate) revision: Revision,
    /// Whether the key is (was) a queue entry.
    pub(crate) queue: bool,
    /// The event watchers see (a put or a delete, which names the key).
    pub(crate) event: WatchEvent,
}

impl Change {
    /// The key changed.
    pub(crate) fn key(&self) -> &str {
        match &self.event {
            WatchEvent::Put(entry) => &entry.key,
            WatchEvent::Delete { key, .. } => key,
            // Never recorded as a change (`HistoryLost`, and any kind of
            // event this server does not record).
            _ => "",
        }
    }
}

/// Everything the server knows.
pub(crate) struct State {
    /// Revision of the last change; 1 for the empty store.
    revision: Revision,
    kv: BTreeMap<String, Stored>,
    leases: BTreeMap<i64, Lease>,
    /// Every live lease by its expiry instant, earliest first: the leases
    /// due are found without visiting the others.
    deadlines: BTreeSet<(Instant, i64)>,
    /// The keys bound to each lease, as `(lease id, key)`.
    lease_keys: BTreeSet<(i64, String)>,
    /// The queue entries of each election, as creation revision → the
    /// entry's lease (its key is `queue_key(election, lease)`): the entry
    /// before a candidate's is found without reading the whole queue.
    queues: HashMap<String, BTreeMap<Revision, LeaseId>>,
    next_lease: i64,
    /// Changes with revision `>= compacted`, oldest first.
    history: Vec<Change>,
    /// Watching from a revision below this one reports `HistoryLost`.
    compacted: Revision,
    pub(crate) watchers: Watchers,
    ttl_bounds: (Duration, Duration),
    pub(crate) reaper: Option<JoinHandle<()>>,
}

impl State {
    fn new(ttl_bounds: (Duration, Duration)) -> State {
        State {
            revision: 1,
            kv: BTreeMap::new(),
            leases: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            lease_keys: BTreeSet::new(),
            queues: HashMap::new(),
            next_lease: FIRST_LEASE_ID,
            history: Vec::new(),
            compacted: 1,
            watchers: Watchers::default(),
            ttl_bounds,
            reaper: None,
        }
    }

    /// The TTL bounds.
    pub(crate) fn ttl_bounds(&self) -> (Duration, Duration) {
        self.ttl_bounds
    }

    // ---- leases ------------------------------------------------------

    /// Expires every lease due at `now` (`expires_at <= now`), earliest
    /// first, and returns the next expiry instant, if any.
    pub(crate) fn expire_due(&mut self, now: Instant) -> Option<Instant> {
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                return Some(at);
            }
            self.remove_lease(id);
        }
        None
    }

    /// Removes a lease and deletes its keys in key order (each deletion a
    /// revision). Returns whether the lease existed.
    fn remove_lease(&mut self, id: i64) -> bool {
        let Some(lease) = self.leases.remove(&id) else {
            return false;
        };
        self.deadlines.remove(&(lease.expires_at, id));
        let keys: Vec<String> = self
            .lease_keys
            .range((id, String::new())..)
            .take_while(|(l, _)| *l == id)
            .map(|(_, k)| k.clone())
            .collect();
        for key in keys {
            self.delete_key(&key);
        }
        true
    }

    pub(crate) fn grant(&mut self, now: Instant, ttl: Duration) -> Result<LeaseGrant> {
        self.expire_due(now);
        tenure_core::check_ttl(ttl, self.ttl_bounds)?;
        let id = self.next_lease;
        self.next_lease += 1;
        let expires_at = now + ttl;
        self.leases.insert(id, Lease { ttl, expires_at });
        self.deadlines.insert((expires_at, id));
        Ok(LeaseGrant {
            id: LeaseId(id),
            ttl,
        })
    }

    pub(crate) fn keep_alive(&mut self, now: Instant, lease: LeaseId) -> Result<Duration> {
        self.expire_due(now);
        let l = self
            .leases
            .get_mut(&lease.0)
            .ok_or(Error::LeaseExpired { lease })?;
        self.deadlines.remove(&(l.expires_at, lease.0));
        l.expires_at = now + l.ttl;
        self.deadlines.insert((l.expires_at, lease.0));
        Ok(l.ttl)
    }

    pub(crate) fn revoke(&mut self, now: Instant, lease: LeaseId) {
        self.expire_due(now);
        self.remove_lease(lease.0);
    }

    /// Expires `lease` now, as if its TTL had run out.
    pub(crate) fn expire_lease(&mut self, now: Instant, lease: LeaseId) -> bool {
        self.expire_due(now);
        self.remove_lease(lease.0)
    }

    pub(crate) fn lease_ids(&mut self, now: Instant) -> Vec<LeaseId> {
        self.expire_due(now);
        self.leases.keys().map(|id| LeaseId(*id)).collect()
    }

    // ---- keys --------------------------------------------------------

    pub(crate) fn create(
        &mut self,
        now: Instant,
        election: &ElectionName,
        slot: Slot,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        self.expire_due(now);
        if !self.leases.contains_key(&lease.0) {
            return Err(Error::LeaseExpired { lease });
        }
        let key = match slot {
            Slot::Queue => queue_key(election, lease),
            Slot::Leader => election.as_str().to_owned(),
        };
        let conflict = |existing| Error::ShapeConflict {
            election: election.to_string(),
            existing,
            requested: slot.strategy_name(),
        };
        if let Some(existing) = self.kv.get(&key) {
            if existing.lease == NO_LEASE {
                // Only a guarded put leaves a key without a lease, and it
                // is never a candidate: refuse rather than wait on it.
                return Err(conflict(match slot {
                    Slot::Leader => "a key bound to no lease at its leader key",
                    Slot::Queue => "a key bound to no lease at this candidate's key",
                }));
            }
            return Ok(CreateOutcome::Exists(existing.entry(&key)));
        }
        // One strategy per election, checked under the same lock as the
        // create: a queue entry only while no lease holds the leader key,
        // the leader key only while the queue is empty.
        match slot {
            Slot::Queue => {
                let leader = election.as_str();
                if self.kv.get(leader).is_some_and(|s| s.lease != NO_LEASE) {
                    return Err(conflict("single-key candidates"));
                }
            }
            Slot::Leader => {
                let prefix = format!("{election}/");
                let queued = self
                    .kv
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .any(|(k, s)| watch::in_election(election, k, s.queue));
                if queued {
                    return Err(conflict("queue candidates"));
                }
            }
        }
        let revision = self.bump();
        let stored = Stored {
            value,
            lease,
            created: revision,
            modified: revision,
            queue: slot == Slot::Queue,
        };
        let entry = stored.entry(&key);
        self.kv.insert(key.clone(), stored);
        if slot == Slot::Queue {
            self.queues
                .entry(election.as_str().to_owned())
                .or_default()
                .insert(revision, lease);
        }
        self.lease_keys.insert((lease.0, key));
        self.record(Change {
            revision,
            queue: slot == Slot::Queue,
            event: WatchEvent::Put(entry.clone()),
        });
        Ok(CreateOutcome::Created(entry))
    }

    pub(crate) fn candidates(&mut self, now: Instant, election: &ElectionName) -> Snapshot {
        self.expire_due(now);
        let prefix = format!("{election}/");
        let mut entries: Vec<Entry> = self
            .kv
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, s)| watch::in_election(election, k, s.queue))
            .map(|(k, s)| s.entry(k))
            .collect();
        entries.sort_by_key(|e| e.created);
        Snapshot {
            entries,
            revision: self.revision,
            starts_at_head: true,
        }
    }

    /// The elections whose names start with `prefix` and that hold a live
    /// entry (a queue entry, or a leader key bound to a lease), in name
    /// order. Keys start with their election's name, so only keys under
    /// `prefix` are visited.
    pub(crate) fn elections(&mut self, now: Instant, prefix: &str) -> Vec<ElectionName> {
        self.expire_due(now);
        let names: BTreeSet<&str> = self
            .kv
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, s)| s.lease != LeaseId(0))
            .filter_map(|(k, s)| {
                if s.queue {
                    watch::election_of(k)
                } else {
                    Some(k.as_str())
                }
            })
            .filter(|name| name.starts_with(prefix))
            .collect();
        names
            .into_iter()
            .filter_map(|n| ElectionName::new(n).ok())
            .collect()
    }

    /// What [`Snapshot::around`] keeps of [`candidates`](Self::candidates)
    /// (the two entries before `own`, the entry at `own`'s key, and
    /// whether anyone stands before them), found through the
    /// election's queue index without reading the queue.
    pub(crate) fn queue_around(
        &mut self,
        now: Instant,
        election: &ElectionName,
        own: &Entry,
    ) -> Snapshot {
        self.expire_due(now);
        let mut entries = Vec::new();
        let mut starts_at_head = true;
        let mine = self
            .kv
            .get(&own.key)
            .filter(|s| watch::in_election(election, &own.key, s.queue));
        if let Some(mine) = mine {
            let mut ahead = self
                .queues
                .get(election.as_str())
                .map(|q| q.range(..mine.created).rev())
                .into_iter()
                .flatten();
            // Newest first: the ones `Snapshot::around` keeps, then
            // whether anyone stands before them.
            for (_, lease) in ahead.by_ref().take(Snapshot::AROUND - 1) {
                let key = queue_key(election, *lease);
                if let Some(s) = self.kv.get(&key) {
                    entries.push(s.entry(&key));
                }
            }
            starts_at_head = ahead.next().is_none();
            entries.reverse();
            entries.push(mine.entry(&own.key));
        }
        Snapshot {
            entries,
            revision: self.revision,
            starts_at_head,
        }
    }

    pub(crate) fn get(&mut self, now: Instant, key: &str) -> (Option<Entry>, Revision) {
        self.expire_due(now);
        (self.kv.get(key).map(|s| s.entry(key)), self.revision)
    }

    /// Whether `entry.key` still holds the entry created at `entry.created`.
    fn holds(&self, entry: &Entry) -> bool {
        self.kv
            .get(&entry.key)
            .is_some_and(|s| s.created == entry.created)
    }

    pub(crate) fn update(&mut self, now: Instant, entry: &Entry, value: Bytes) -> Result<Entry> {
        self.expire_due(now);
        let revision = self.revision + 1;
        let Some(stored) = self
            .kv
            .get_mut(&entry.key)
            .filter(|s| s.created == entry.created)
        else {
            return Err(Error::NotOwner {
                key: entry.key.clone(),
            });
        };
        stored.value = value;
        stored.modified = revision;
        let (updated, queue) = (stored.entry(&entry.key), stored.queue);
        self.revision = revision;
        self.record(Change {
            revision,
            queue,
            event: WatchEvent::Put(updated.clone()),
        });
        Ok(updated)
    }

    pub(crate) fn delete(&mut self, now: Instant, entry: &Entry) -> bool {
        self.expire_due(now);
        if !self.holds(entry) {
            return false;
        }
        self.delete_key(&entry.key);
        true
    }

    pub(crate) fn guarded_put(
        &mut self,
        now: Instant,
        guard: &Entry,
        key: &str,
        value: Bytes,
    ) -> Result<Revision> {
        self.expire_due(now);
        if !self.holds(guard) {
            return Err(Error::NotOwner {
                key: guard.key.clone(),
            });
        }
        // The guard's election: the parent of a queue entry, or the leader
        // key itself. Its key space is the leader key and everything under
        // `<election>/` (queue, nested elections).
        let election = match self.kv.get(&guard.key) {
            Some(s) if s.queue => guard
                .key
                .rsplit_once('/')
                .map_or(guard.key.as_str(), |(parent, _)| parent),
            _ => guard.key.as_str(),
        };
        if key == election || key.starts_with(&format!("{election}/")) {
            return Err(Error::KeyInElection {
                key: key.to_owned(),
                election: election.to_owned(),
            });
        }
        let revision = self.bump();
        if let Some(old) = self.kv.get(key) {
            // A plain put detaches the key from its lease (as in etcd)
            // and takes it out of its election's queue.
            let (old_lease, old_created, was_queue) = (old.lease, old.created, old.queue);
            self.lease_keys.remove(&(old_lease.0, key.to_owned()));
            if was_queue {
                self.unqueue(key, old_created);
            }
        }
        let stored = self.kv.entry(key.to_owned()).or_insert(Stored {
            value: Bytes::new(),
            lease: NO_LEASE,
            created: revision,
            modified: revision,
            queue: false,
        });
        stored.value = value;
        stored.lease = NO_LEASE;
        stored.modified = revision;
        stored.queue = false;
        let entry = stored.entry(key);
        self.record(Change {
            revision,
            queue: false,
            event: WatchEvent::Put(entry),
        });
        Ok(revision)
    }

    /// Deletes `key` (if present) as a new revision.
    fn delete_key(&mut self, key: &str) {
        let Some(stored) = self.kv.remove(key) else {
            return;
        };
        self.lease_keys.remove(&(stored.lease.0, key.to_owned()));
        if stored.queue {
            self.unqueue(key, stored.created);
        }
        let revision = self.bump();
        self.record(Change {
            revision,
            queue: stored.queue,
            event: WatchEvent::Delete {
                key: key.to_owned(),
                revision,
            },
        });
    }

    pub(crate) fn keys(&mut self, now: Instant) -> Vec<String> {
        self.expire_due(now);
        self.kv.keys().cloned().collect()
    }

    pub(crate) fn revision(&mut self, now: Instant) -> Revision {
        self.expire_due(now);
        self.revision
    }

    /// Takes the queue entry `key`, created at `created`, out of its
    /// election's queue index.
    fn unqueue(&mut self, key: &str, created: Revision) {
        let Some(election) = watch::election_of(key) else {
            return;
        };
        if let Some(queue) = self.queues.get_mut(election) {
            queue.remove(&created);
            if queue.is_empty() {
                self.queues.remove(election);
            }
        }
    }

    fn bump(&mut self) -> Revision {
        self.revision += 1;
        self.revision
    }

    // ---- history and watches ----------------------------------------

    /// Appends a change to the history and delivers it to live watchers.
    fn record(&mut self, change: Change) {
        self.watchers.deliver(&change);
        self.history.push(change);
    }

    pub(crate) fn watch(
        &mut self,
        now: Instant,
        client: &Arc<ClientShared>,
        scope: WatchScope,
        from: Revision,
    ) -> WatchStream {
        self.expire_due(now);
        let (mut watcher, stream) = Watcher::new(Arc::clone(client), from);
        if from == 0 {
            watcher.from = self.revision + 1;
        } else if from < self.compacted {
            watcher.history_lost();
            return stream;
        }
        // Replay under the same lock that live changes are recorded
        // under: nothing falls between the replay and live delivery.
        let start = self.history.partition_point(|c| c.revision < watcher.from);
        for change in &self.history[start..] {
            if in_scope(&scope, change) && !watcher.deliver(change) {
                return stream;
            }
        }
        self.watchers.add(scope, watcher);
        stream
    }

    /// Forgets every change below `revision` (etcd's convention: watching
    /// from `revision` itself still works). Every live watch receives
    /// `HistoryLost` and ends.
    pub(crate) fn compact(&mut self, now: Instant, revision: Revision) {
        self.expire_due(now);
        let revision = revision.min(self.revision + 1);
        if revision > self.compacted {
            self.compacted = revision;
            let keep = self.history.partition_point(|c| c.revision < revision);
            self.history.drain(..keep);
        }
        for w in self.watchers.take_all() {
            w.history_lost();
        }
    }

    /// Ends the live watches of one client (`Some(id)`) or of all, each
    /// with an `Unreachable` error.
    pub(crate) fn break_watches(&mut self, client: Option<u64>, why: &'static str) {
        self.watchers.retain(|w| {
            if client.is_none_or(|id| w.client.id == id) {
                w.broken(why);
                false
            } else {
                true
            }
        });
    }
}

/// The queue key of `lease` in `election`: `"{election}/{lease hex}"`, the
/// layout of etcd's `concurrency.Election`.
fn queue_key(election: &ElectionName, lease: LeaseId) -> String {
    format!("{election}/{lease}")
}
