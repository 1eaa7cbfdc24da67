//! The conformance suite: the [`CoordinationBackend`] contract as
//! executable checks, run by every backend's tests (as `object_store`'s
//! `integration.rs` is).
//!
//! Each public function checks one part of the contract and panics with a
//! message naming what broke. [`run_all`] runs them all:
//!
//! ```no_run
//! # async fn f(backend: tenure_core::DynBackend) {
//! use tenure_testkit::conformance::{run_all, Capabilities};
//! let caps = Capabilities::for_backend(&*backend);
//! run_all(backend, caps).await;
//! # }
//! ```
//!
//! The checks run against real servers too, so they use only the trait
//! (no memory-only fault knobs), give every test its own election names
//! (unique per process and run), take their TTLs from [`Capabilities`]
//! and wait for lease expiry with `tokio::time` (free under paused time,
//! real on a real server). Absence of an event is checked by order, never
//! by waiting: the event that must not be seen is written before one that
//! must, and the first event seen must be the latter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tenure_core::{
    CoordinationBackend, CreateOutcome, DynBackend, ElectionName, Entry, Error, LeaseGrant,
    LeaseId, Queued, Revision, Slot, Snapshot, WatchEvent, WatchScope, WatchStream,
};
use tokio::time::Instant;

/// What the suite may assume about a backend, and how long it waits.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Capabilities {
    /// TTL of leases that must outlive a test (they are revoked at its
    /// end). Make it comfortably longer than one test takes.
    pub ttl: Duration,
    /// TTL of leases the suite lets expire (and renews by hand): short, so
    /// that the expiry tests are quick on real servers.
    pub expiry_ttl: Duration,
    /// How long after its TTL an unrenewed lease may take to disappear
    /// from the server (etcd checks expiry periodically, ZooKeeper on
    /// ticks).
    pub max_expiry_wait: Duration,
    /// How long to wait for a watch event that must come.
    pub event_timeout: Duration,
    /// Whether a watch from a past revision replays the changes since
    /// (etcd, memory). A backend without history (ZooKeeper) must answer
    /// [`WatchEvent::HistoryLost`] instead, never skip silently.
    pub replays_history: bool,
}

impl Capabilities {
    /// Defaults for `backend`: `ttl` 30 s and `expiry_ttl` 1 s, each
    /// clamped into the backend's [`ttl_bounds`](CoordinationBackend::ttl_bounds);
    /// 5 s of expiry slack; 10 s for an expected event.
    pub fn for_backend(backend: &dyn CoordinationBackend) -> Capabilities {
        let (min, max) = backend.ttl_bounds();
        let clamp = |d: Duration| d.max(min).min(max);
        Capabilities {
            ttl: clamp(Duration::from_secs(30)),
            expiry_ttl: clamp(Duration::from_secs(1)),
            max_expiry_wait: Duration::from_secs(5),
            event_timeout: Duration::from_secs(10),
            replays_history: true,
        }
    }

    /// The same, for a backend that keeps no watch history.
    pub fn without_history(mut self) -> Capabilities {
        self.replays_history = false;
        self
    }
}

/// Runs every check of the suite against `backend`, one after another.
pub async fn run_all(backend: DynBackend, caps: Capabilities) {
    let b: &dyn CoordinationBackend = &*backend;
    lease_ttl_bounds(b, &caps).await;
    keep_alive_fails_after_revoke(b, &caps).await;
    keep_alive_extends_lease(b, &caps).await;
    revoke_deletes_entries(b, &caps).await;
    lease_expiry_deletes_entries(b, &caps).await;
    create_queue_is_idempotent_per_lease(b, &caps).await;
    create_leader_first_writer_wins(b, &caps).await;
    create_with_dead_lease_fails(b, &caps).await;
    candidates_ordered_by_creation(b, &caps).await;
    queue_around_agrees_with_candidates(b, &caps).await;
    create_queued_places_what_it_creates(b, &caps).await;
    revisions_strictly_increase(b, &caps).await;
    update_and_delete_are_guarded(b, &caps).await;
    guarded_put_requires_guard(b, &caps).await;
    guarded_put_refuses_election_keys(b, &caps).await;
    one_shape_per_election(b, &caps).await;
    reads_ignore_keys_without_lease(b, &caps).await;
    if caps.replays_history {
        watch_replays_from_revision(b, &caps).await;
    } else {
        watch_from_the_past_reports_history_lost(b, &caps).await;
    }
    watch_key_scope_sees_only_that_key(b, &caps).await;
    watch_election_scope_excludes_other_elections(b, &caps).await;
}

// ---- leases ------------------------------------------------------------

/// `grant_lease` grants TTLs within `ttl_bounds` (at least the TTL asked
/// for), distinct lease ids, and rejects TTLs outside the bounds with
/// [`Error::InvalidTtl`] naming the TTL and both bounds.
pub async fn lease_ttl_bounds(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    let (min, max) = backend.ttl_bounds();
    assert!(
        !min.is_zero() && min <= max,
        "ttl_bounds() = ({min:?}, {max:?}): need 0 < min <= max"
    );
    let mut ids = Vec::new();
    for ask in [min, caps.ttl, caps.expiry_ttl] {
        let g = grant(backend, ask).await;
        assert!(
            g.ttl >= ask && g.ttl <= max,
            "grant_lease({ask:?}) granted {:?}: must be in [{ask:?}, {max:?}]",
            g.ttl
        );
        assert!(!ids.contains(&g.id), "lease id {} granted twice", g.id);
        ids.push(g.id);
    }
    for id in ids {
        revoke(backend, id).await;
    }

    let mut bad = vec![Duration::ZERO];
    if !(min / 2).is_zero() {
        bad.push(min / 2);
    }
    bad.extend(max.checked_add(Duration::from_secs(1)));
    for ttl in bad {
        let err = match backend.grant_lease(ttl).await {
            Ok(g) => {
                revoke(backend, g.id).await;
                panic!("grant_lease({ttl:?}) outside ({min:?}, {max:?}) granted {g:?}");
            }
            Err(err) => err,
        };
        let Error::InvalidTtl {
            ttl: t,
            min: lo,
            max: hi,
        } = &err
        else {
            panic!("grant_lease({ttl:?}): expected InvalidTtl, got {err}");
        };
        assert_eq!(
            (*t, *lo, *hi),
            (ttl, min, max),
            "InvalidTtl fields for {ttl:?}"
        );
        let msg = err.to_string();
        for part in [format!("{ttl:?}"), format!("{min:?}"), format!("{max:?}")] {
            assert!(
                msg.contains(&part),
                "InvalidTtl message {msg:?} lacks {part}"
            );
        }
    }
}

/// `keep_alive` renews a live lease and returns a TTL in `(0, granted]`;
/// after `revoke_lease` it fails with [`Error::LeaseExpired`] naming the
/// lease; revoking an unknown lease succeeds.
pub async fn keep_alive_fails_after_revoke(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    let g = grant(backend, caps.ttl).await;
    let left = backend
        .keep_alive(g.id)
        .await
        .unwrap_or_else(|e| panic!("keep_alive of a live lease: {e}"));
    assert!(
        !left.is_zero() && left <= g.ttl,
        "keep_alive returned {left:?}: must be in (0, {:?}]",
        g.ttl
    );
    revoke(backend, g.id).await;
    assert_lease_expired(
        backend.keep_alive(g.id).await,
        g.id,
        "keep_alive after revoke",
    );
    backend
        .revoke_lease(g.id)
        .await
        .unwrap_or_else(|e| panic!("revoking an already revoked lease must succeed: {e}"));
}

/// A lease renewed every half TTL outlives its TTL, and so do its
/// entries.
pub async fn keep_alive_extends_lease(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    let e = unique("keep-alive");
    let g = grant(backend, caps.expiry_ttl).await;
    let entry = created(backend.create(&e, Slot::Queue, g.id, v("x")).await);
    let start = Instant::now();
    for _ in 0..3 {
        tokio::time::sleep(g.ttl / 2).await;
        backend.keep_alive(g.id).await.unwrap_or_else(|err| {
            panic!(
                "lease of TTL {:?}, renewed every {:?}, is gone after {:?}: {err}",
                g.ttl,
                g.ttl / 2,
                start.elapsed()
            )
        });
    }
    let (found, _) = get(backend, &entry.key).await;
    assert_eq!(
        found.as_ref(),
        Some(&entry),
        "entry of a renewed lease after {:?}",
        start.elapsed()
    );
    revoke(backend, g.id).await;
}

/// `revoke_lease` deletes the lease's entries at once, and watchers see
/// the deletions.
pub async fn revoke_deletes_entries(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    // The leader key in an election of its own: one strategy per election.
    let (e, single) = (unique("revoke"), unique("revoke-single"));
    let g = grant(backend, caps.ttl).await;
    let queue = created(backend.create(&e, Slot::Queue, g.id, v("q")).await);
    let leader = created(backend.create(&single, Slot::Leader, g.id, v("l")).await);
    let from = leader.created + 1;
    let mut on_queue = Watch::open(backend, caps, WatchScope::Election(e.clone()), from).await;
    let mut on_leader = Watch::open(backend, caps, WatchScope::Key(leader.key.clone()), from).await;

    revoke(backend, g.id).await;
    on_queue.expect_delete(&queue.key).await;
    on_leader.expect_delete(&leader.key).await;
    for key in [&queue.key, &leader.key] {
        let (found, _) = get(backend, key).await;
        assert_eq!(found, None, "{key:?} after its lease was revoked");
    }
    let snap = candidates(backend, &e).await;
    assert!(snap.entries.is_empty(), "candidates after revoke: {snap:?}");
}

/// A lease that is not renewed expires after its TTL (not before), its
/// entries are deleted and watchers see it; the lease can then neither be
/// renewed nor used.
pub async fn lease_expiry_deletes_entries(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    // The leader key in an election of its own: one strategy per election.
    let (e, single) = (unique("expiry"), unique("expiry-single"));
    // Counted from before the grant is sent: a backend may start the TTL
    // as soon as it receives the request (etcd does), so the time the
    // answer takes to come back is part of the lease's life.
    let asked_at = Instant::now();
    let g = grant(backend, caps.expiry_ttl).await;
    let queue = created(backend.create(&e, Slot::Queue, g.id, v("q")).await);
    let leader = created(backend.create(&single, Slot::Leader, g.id, v("l")).await);
    let from = leader.created + 1;
    let mut on_queue = Watch::open(backend, caps, WatchScope::Election(e.clone()), from).await;
    let mut on_leader = Watch::open(backend, caps, WatchScope::Key(leader.key.clone()), from).await;

    let wait = g.ttl + caps.max_expiry_wait;
    on_queue.timeout = wait;
    on_leader.timeout = wait;
    on_queue.expect_delete(&queue.key).await;
    let elapsed = asked_at.elapsed();
    assert!(
        elapsed >= g.ttl,
        "lease of TTL {:?} expired {elapsed:?} after its grant was asked for",
        g.ttl
    );
    on_leader.expect_delete(&leader.key).await;

    assert_lease_expired(
        backend.keep_alive(g.id).await,
        g.id,
        "keep_alive after expiry",
    );
    assert_lease_expired(
        backend.create(&e, Slot::Queue, g.id, v("again")).await,
        g.id,
        "create with an expired lease",
    );
    let snap = candidates(backend, &e).await;
    assert!(snap.entries.is_empty(), "candidates after expiry: {snap:?}");
}

// ---- compare-and-create ------------------------------------------------

/// A queue create makes an entry bound to the lease; a second create with
/// the same lease finds that entry unchanged; another lease gets its own
/// entry.
pub async fn create_queue_is_idempotent_per_lease(
    backend: &dyn CoordinationBackend,
    caps: &Capabilities,
) {
    let e = unique("create-queue");
    let (a, b) = (
        grant(backend, caps.ttl).await,
        grant(backend, caps.ttl).await,
    );
    let first = created(backend.create(&e, Slot::Queue, a.id, v("v1")).await);
    assert_eq!(first.lease, a.id, "lease of the created entry");
    assert_eq!(first.value, v("v1"), "value of the created entry");
    assert_eq!(
        first.created, first.modified,
        "fresh entry: created == modified"
    );
    assert_ne!(
        first.key,
        backend.leader_key(&e),
        "a queue entry is not the leader key"
    );

    let again = backend.create(&e, Slot::Queue, a.id, v("v2")).await;
    assert_eq!(
        expect_ok(again, "second create"),
        CreateOutcome::Exists(first.clone()),
        "a second queue create with the same lease must find the first entry, unchanged"
    );

    let other = created(backend.create(&e, Slot::Queue, b.id, v("w")).await);
    assert_ne!(other.key, first.key, "two leases share a queue key");
    assert!(other.created > first.created, "later entry, later revision");
    let (found, rev) = get(backend, &first.key).await;
    assert_eq!(found, Some(first), "get of the first entry");
    assert!(
        rev >= other.created,
        "get reflects revision {rev} < {}",
        other.created
    );
    revoke(backend, a.id).await;
    revoke(backend, b.id).await;
}

/// The leader slot is first-writer-wins: the second creator gets the
/// first's entry, and the leader key is not a queue entry.
pub async fn create_leader_first_writer_wins(
    backend: &dyn CoordinationBackend,
    caps: &Capabilities,
) {
    let e = unique("create-leader");
    let (a, b) = (
        grant(backend, caps.ttl).await,
        grant(backend, caps.ttl).await,
    );
    let first = created(backend.create(&e, Slot::Leader, a.id, v("a")).await);
    assert_eq!(first.key, backend.leader_key(&e), "key of the leader entry");
    assert_eq!((first.lease, first.value.clone()), (a.id, v("a")));
    for (lease, who) in [(b.id, "another lease"), (a.id, "the same lease")] {
        let outcome = backend.create(&e, Slot::Leader, lease, v("b")).await;
        assert_eq!(
            expect_ok(outcome, "second leader create"),
            CreateOutcome::Exists(first.clone()),
            "leader create by {who} must find the first entry, unchanged"
        );
    }
    let snap = candidates(backend, &e).await;
    assert!(
        snap.entries.is_empty(),
        "the leader key must not be listed as a queue entry: {snap:?}"
    );
    revoke(backend, a.id).await;
    revoke(backend, b.id).await;
}

/// Creating with a revoked lease fails with [`Error::LeaseExpired`] and
/// creates nothing.
pub async fn create_with_dead_lease_fails(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    let e = unique("create-dead");
    let g = grant(backend, caps.ttl).await;
    revoke(backend, g.id).await;
    for slot in [Slot::Queue, Slot::Leader] {
        let r = backend.create(&e, slot, g.id, v("x")).await;
        assert_lease_expired(r, g.id, &format!("{slot:?} create with a revoked lease"));
    }
    let snap = candidates(backend, &e).await;
    assert!(
        snap.entries.is_empty(),
        "entries after failed creates: {snap:?}"
    );
    let (found, _) = get(backend, &backend.leader_key(&e)).await;
    assert_eq!(found, None, "leader key after a failed create");
}

// ---- reads and revisions -----------------------------------------------

/// `candidates` lists the queue in creation order (not lease or key
/// order), with strictly increasing creation revisions and a revision at
/// least the newest entry's.
pub async fn candidates_ordered_by_creation(
    backend: &dyn CoordinationBackend,
    caps: &Capabilities,
) {
    let e = unique("order");
    let mut leases = Vec::new();
    for _ in 0..4 {
        leases.push(grant(backend, caps.ttl).await);
    }
    let mut expected = Vec::new();
    for i in [2, 0, 3, 1] {
        let value = Bytes::from(format!("c{i}"));
        expected.push(created(
            backend.create(&e, Slot::Queue, leases[i].id, value).await,
        ));
    }
    let snap = candidates(backend, &e).await;
    assert_eq!(snap.entries, expected, "candidates in creation order");
    for w in snap.entries.windows(2) {
        assert!(
            w[0].created < w[1].created,
            "creation revisions must strictly increase: {} then {}",
            w[0].created,
            w[1].created
        );
    }
    let newest = expected.last().map_or(0, |e| e.created);
    assert!(
        snap.revision >= newest,
        "snapshot revision {} < newest entry {newest}",
        snap.revision
    );
    for g in leases {
        revoke(backend, g.id).await;
    }
}

/// `queue_around(own)` holds exactly what [`Snapshot::around`] keeps of
/// the full read: the two entries before `own` and `own`, for every
/// position in the queue; nothing once `own` is gone; and the same when a
/// nested election's entries share the election's key prefix. It never
/// says the first entry it keeps was the queue's first
/// ([`Snapshot::starts_at_head`]) when someone stood before it: a
/// candidate would then lead without reading the queue.
pub async fn queue_around_agrees_with_candidates(
    backend: &dyn CoordinationBackend,
    caps: &Capabilities,
) {
    let e = unique("around");
    let nested = match ElectionName::new(format!("{e}/inner")) {
        Ok(n) => n,
        Err(err) => panic!("nested election name: {err}"),
    };
    let mut leases = Vec::new();
    let mut mine = Vec::new();
    for i in 0..5 {
        let g = grant(backend, caps.ttl).await;
        if i == 2 {
            // A nested election's entry, created between ours.
            created(backend.create(&nested, Slot::Queue, g.id, v("n")).await);
        }
        mine.push(created(
            backend
                .create(&e, Slot::Queue, g.id, Bytes::from(format!("c{i}")))
                .await,
        ));
        leases.push(g);
    }
    let check = |label: String, got: Snapshot, full: Snapshot, own: &Entry| {
        let full_keys: Vec<String> = full.entries.iter().map(|e| e.key.clone()).collect();
        let want = full.around(own);
        assert_eq!(
            got.entries, want.entries,
            "queue_around({label}) must hold the two entries before it and the entry itself"
        );
        assert!(
            got.revision >= own.created,
            "{label}: revision before the entry"
        );
        assert!(
            !got.starts_at_head || want.starts_at_head,
            "queue_around({label}) says its first entry was the queue's first; the queue: {:?}",
            full_keys
        );
    };
    for (i, own) in mine.iter().enumerate() {
        let got = expect_ok(backend.queue_around(&e, own).await, "queue_around");
        let full = candidates(backend, &e).await;
        check(format!("entry {i} of 5"), got, full, own);
    }
    let gone = mine[3].clone();
    assert!(expect_ok(backend.delete(&gone).await, "delete"));
    let got = expect_ok(backend.queue_around(&e, &gone).await, "queue_around");
    assert!(
        got.entries.is_empty(),
        "queue_around of a deleted entry must be empty, got {:?}",
        got.entries
    );
    for g in leases {
        revoke(backend, g.id).await;
    }
}

/// `create_queued` creates like `create` in the queue slot, and where it
/// also says where the entry stands, that agrees with `queue_around`
/// read right after (nothing changed in between): the first entry alone,
/// a later one after its predecessor; a lease that already holds its
/// entry finds it (`Exists`), with no placement.
pub async fn create_queued_places_what_it_creates(
    backend: &dyn CoordinationBackend,
    caps: &Capabilities,
) {
    let e = unique("queued");
    let mut leases = Vec::new();
    for i in 0..3 {
        let g = grant(backend, caps.ttl).await;
        leases.push(g.id);
        let value = Bytes::from(format!("c{i}"));
        let queued = expect_ok(
            backend.create_queued(&e, g.id, value.clone()).await,
            "create_queued",
        );
        let CreateOutcome::Created(own) = &queued.outcome else {
            panic!("create_queued of a new lease must create, got {queued:?}");
        };
        assert_eq!(
            (own.lease, &own.value),
            (g.id, &value),
            "create_queued created another entry"
        );
        if let Some(around) = &queued.around {
            let read = expect_ok(backend.queue_around(&e, own).await, "queue_around");
            assert_eq!(
                around.entries, read.entries,
                "candidate {i}: create_queued placed its entry unlike queue_around"
            );
            assert!(
                around.revision >= own.created,
                "candidate {i}: placement older than the entry"
            );
            assert!(
                !around.starts_at_head || read.starts_at_head,
                "candidate {i}: create_queued says its first entry was first, queue_around does not"
            );
        }
        let again = expect_ok(
            backend.create_queued(&e, g.id, value).await,
            "create_queued again",
        );
        assert_eq!(
            again,
            Queued {
                outcome: CreateOutcome::Exists(own.clone()),
                around: None
            },
            "create_queued of a lease holding its entry must find it"
        );
    }
    for lease in leases {
        revoke(backend, lease).await;
    }
}

/// Every change (create, update, guarded put, delete) gets a revision
/// above all before it; an entry's creation revision never changes.
pub async fn revisions_strictly_increase(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    let (e, single) = (unique("revisions"), unique("revisions-single"));
    let g = grant(backend, caps.ttl).await;
    let (_, r0) = get(backend, &backend.leader_key(&e)).await;
    let queue = created(backend.create(&e, Slot::Queue, g.id, v("q")).await);
    let leader = created(backend.create(&single, Slot::Leader, g.id, v("l")).await);
    let updated = expect_ok(backend.update(&leader, v("l2")).await, "update");
    let put = expect_ok(
        backend
            .guarded_put(&updated, &app_key(backend, &e), v("p"))
            .await,
        "guarded_put",
    );
    assert!(
        expect_ok(backend.delete(&queue).await, "delete"),
        "delete of a live entry"
    );
    let (_, r_end) = get(backend, &queue.key).await;
    let seq = [r0, queue.created, leader.created, updated.modified, put];
    for w in seq.windows(2) {
        assert!(w[0] < w[1], "revisions must strictly increase: {seq:?}");
    }
    assert!(
        r_end > put,
        "revision after the delete {r_end} <= previous {put}"
    );
    assert_eq!(
        updated.created, leader.created,
        "update changed the creation revision"
    );
    let (found, _) = get(backend, &leader.key).await;
    assert_eq!(found, Some(updated), "leader entry after update");
    cleanup_app_key(backend, &e).await;
    revoke(backend, g.id).await;
}

// ---- guarded writes ----------------------------------------------------

/// `update`/`delete` act only while the key holds the entry we created:
/// after it is deleted and re-created (by another lease, or the same one),
/// they fail with [`Error::NotOwner`] / return `false` and change nothing.
pub async fn update_and_delete_are_guarded(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    let e = unique("guarded");
    let (a, b) = (
        grant(backend, caps.ttl).await,
        grant(backend, caps.ttl).await,
    );
    let mine = created(backend.create(&e, Slot::Leader, a.id, v("a")).await);
    let updated = expect_ok(backend.update(&mine, v("a2")).await, "update");
    assert_eq!(
        (&updated.key, updated.lease, updated.created, &updated.value),
        (&mine.key, a.id, mine.created, &v("a2")),
        "updated entry"
    );
    assert!(
        updated.modified > mine.modified,
        "update must bump modified"
    );
    let (found, _) = get(backend, &mine.key).await;
    assert_eq!(found, Some(updated), "get after update");

    // Guarded by the creation revision only: a stale `modified` is fine.
    assert!(
        expect_ok(backend.delete(&mine).await, "delete"),
        "delete own entry"
    );
    assert!(
        !expect_ok(backend.delete(&mine).await, "delete"),
        "second delete"
    );

    let theirs = created(backend.create(&e, Slot::Leader, b.id, v("b")).await);
    match backend.update(&mine, v("late")).await {
        Err(err @ Error::NotOwner { .. }) => {
            assert!(
                matches!(&err, Error::NotOwner { key } if *key == mine.key),
                "NotOwner must name {:?}: {err:?}",
                mine.key
            );
            assert!(
                err.to_string().contains(&mine.key),
                "message {err} lacks the key"
            );
        }
        other => panic!("update of a re-created entry: expected NotOwner, got {other:?}"),
    }
    assert!(
        !expect_ok(backend.delete(&mine).await, "delete"),
        "delete of an entry re-created by another lease"
    );
    let (found, _) = get(backend, &mine.key).await;
    assert_eq!(
        found,
        Some(theirs),
        "the other lease's entry must be untouched"
    );

    // Same lease, same queue slot, new incarnation (in an election of its
    // own: `e` is held by a single-key candidate).
    let e = unique("guarded-queue");
    let q1 = created(backend.create(&e, Slot::Queue, a.id, v("q")).await);
    assert!(
        expect_ok(backend.delete(&q1).await, "delete"),
        "delete queue entry"
    );
    let q2 = created(backend.create(&e, Slot::Queue, a.id, v("q")).await);
    assert!(q2.created > q1.created, "re-created entry, later revision");
    assert!(
        matches!(
            backend.update(&q1, v("late")).await,
            Err(Error::NotOwner { .. })
        ),
        "update through a previous incarnation must fail with NotOwner"
    );
    assert!(
        !expect_ok(backend.delete(&q1).await, "delete"),
        "delete through a previous incarnation"
    );
    let (found, _) = get(backend, &q2.key).await;
    assert_eq!(found, Some(q2), "current incarnation untouched");
    revoke(backend, a.id).await;
    revoke(backend, b.id).await;
}

/// `guarded_put` writes while the guard entry exists, and is rejected with
/// [`Error::NotOwner`] naming the guard once it is gone (even when another
/// lease has re-created the guard's key).
pub async fn guarded_put_requires_guard(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    let e = unique("guarded-put");
    let key = app_key(backend, &e);
    let (a, b) = (
        grant(backend, caps.ttl).await,
        grant(backend, caps.ttl).await,
    );
    let guard = created(backend.create(&e, Slot::Leader, a.id, v("a")).await);
    let r1 = expect_ok(
        backend.guarded_put(&guard, &key, v("1")).await,
        "guarded_put",
    );
    assert!(
        r1 > guard.created,
        "put revision {r1} <= guard's {}",
        guard.created
    );
    let (found, rev) = get(backend, &key).await;
    let found = found.unwrap_or_else(|| panic!("{key:?} missing after guarded_put"));
    assert_eq!(
        (found.value, found.modified),
        (v("1"), r1),
        "{key:?} after put"
    );
    assert!(rev >= r1, "get revision {rev} < put revision {r1}");
    let r2 = expect_ok(
        backend.guarded_put(&guard, &key, v("2")).await,
        "guarded_put",
    );
    assert!(r2 > r1, "second put revision {r2} <= {r1}");

    revoke(backend, a.id).await;
    expect_not_owner(
        backend.guarded_put(&guard, &key, v("late")).await,
        &guard.key,
    );
    let theirs = created(backend.create(&e, Slot::Leader, b.id, v("b")).await);
    expect_not_owner(
        backend.guarded_put(&guard, &key, v("late")).await,
        &guard.key,
    );
    let (found, _) = get(backend, &key).await;
    assert_eq!(
        found.map(|e| e.value),
        Some(v("2")),
        "a rejected guarded_put must not write"
    );
    let r3 = expect_ok(
        backend.guarded_put(&theirs, &key, v("3")).await,
        "guarded_put",
    );
    assert!(r3 > r2, "put revision {r3} <= {r2}");
    cleanup_app_key(backend, &e).await;
    revoke(backend, b.id).await;
}

/// `guarded_put` refuses, with [`Error::KeyInElection`] naming the key
/// and the election, keys inside the guard's election: its leader key, a
/// key among its queue entries, a key of an election nested in it. It
/// writes nothing then.
pub async fn guarded_put_refuses_election_keys(
    backend: &dyn CoordinationBackend,
    caps: &Capabilities,
) {
    let (q, s) = (unique("refuse-queue"), unique("refuse-single"));
    let g = grant(backend, caps.ttl).await;
    let queued = created(backend.create(&q, Slot::Queue, g.id, v("q")).await);
    let single = created(backend.create(&s, Slot::Leader, g.id, v("s")).await);
    for (guard, election) in [(&queued, &q), (&single, &s)] {
        for key in [
            backend.leader_key(election),
            format!("{election}/0"),
            format!("{election}/nested/0"),
        ] {
            match backend.guarded_put(guard, &key, v("app")).await {
                Err(Error::KeyInElection {
                    key: k,
                    election: el,
                }) => {
                    assert_eq!(k, key, "KeyInElection must name the key");
                    assert_eq!(
                        el,
                        election.as_str(),
                        "KeyInElection must name the election"
                    );
                }
                other => panic!(
                    "guarded_put at {key:?} inside election {election}: \
                     expected KeyInElection, got {other:?}"
                ),
            }
            if key != guard.key {
                let (found, _) = get(backend, &key).await;
                assert_eq!(found, None, "a refused guarded_put wrote {key:?}");
            }
        }
    }
    // Outside the election it writes (and proves the guard alive).
    expect_ok(
        backend
            .guarded_put(&queued, &app_key(backend, &q), v("app"))
            .await,
        "guarded_put next to the election",
    );
    cleanup_app_key(backend, &q).await;
    revoke(backend, g.id).await;
}

/// An election holds one strategy at a time: a leader-key create while a
/// live queue entry exists, or a queue create while a lease holds the
/// leader key, fails with [`Error::ShapeConflict`] naming the election
/// and creates nothing; once the other strategy's candidates are gone, the
/// election takes either again.
pub async fn one_shape_per_election(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    let e = unique("one-shape");
    let (a, b) = (
        grant(backend, caps.ttl).await,
        grant(backend, caps.ttl).await,
    );
    let expect_conflict = |r: tenure_core::Result<CreateOutcome>, what: &str| match r {
        Err(err @ Error::ShapeConflict { .. }) => {
            assert!(
                matches!(&err, Error::ShapeConflict { election, .. } if *election == e.as_str()),
                "{what}: ShapeConflict names the wrong election: {err:?}"
            );
            assert!(err.to_string().contains(e.as_str()), "{what}: {err}");
        }
        other => panic!("{what}: expected ShapeConflict, got {other:?}"),
    };
    let queued = created(backend.create(&e, Slot::Queue, a.id, v("q")).await);
    expect_conflict(
        backend.create(&e, Slot::Leader, b.id, v("s")).await,
        "leader create in a queue election",
    );
    let (found, _) = get(backend, &backend.leader_key(&e)).await;
    assert_eq!(found, None, "a refused leader create left a leader key");
    assert_eq!(
        candidates(backend, &e).await.entries,
        vec![queued.clone()],
        "queue after a refused leader create"
    );
    // The queue empties: the election may turn single-key...
    revoke(backend, a.id).await;
    let leader = created(backend.create(&e, Slot::Leader, b.id, v("s")).await);
    let c = grant(backend, caps.ttl).await;
    expect_conflict(
        backend.create(&e, Slot::Queue, c.id, v("q")).await,
        "queue create in a single-key election",
    );
    assert!(
        candidates(backend, &e).await.entries.is_empty(),
        "a refused queue create left an entry"
    );
    let (found, _) = get(backend, &leader.key).await;
    assert_eq!(
        found,
        Some(leader),
        "the leader after a refused queue create"
    );
    // ...and back.
    revoke(backend, b.id).await;
    created(backend.create(&e, Slot::Queue, c.id, v("q")).await);
    revoke(backend, c.id).await;
}

/// Keys bound to no lease are application data, never candidates: one at
/// `<election>/0` (written under another election's guard) is not listed
/// by `candidates`, not found by `queue_around`, not delivered by an
/// election watch, and blocks neither strategy.
pub async fn reads_ignore_keys_without_lease(
    backend: &dyn CoordinationBackend,
    caps: &Capabilities,
) {
    let (e, other) = (unique("no-lease"), unique("no-lease-guard"));
    let g = grant(backend, caps.ttl).await;
    let guard = created(backend.create(&other, Slot::Leader, g.id, v("g")).await);
    let (_, now) = get(backend, &backend.leader_key(&e)).await;
    let mut w = Watch::open(backend, caps, WatchScope::Election(e.clone()), now + 1).await;
    let data = format!("{e}/0");
    expect_ok(
        backend.guarded_put(&guard, &data, v("app")).await,
        "guarded_put into another election",
    );
    let snap = candidates(backend, &e).await;
    assert!(
        snap.entries.is_empty(),
        "a key without lease listed as a candidate: {snap:?}"
    );
    // Both strategies can still start; the watch's first event is the
    // real candidate, not the application key written before it.
    let h = grant(backend, caps.ttl).await;
    let single = created(backend.create(&e, Slot::Leader, h.id, v("s")).await);
    assert!(expect_ok(backend.delete(&single).await, "delete"));
    let own = created(backend.create(&e, Slot::Queue, h.id, v("q")).await);
    w.expect_put(&own).await;
    let around = expect_ok(backend.queue_around(&e, &own).await, "queue_around");
    assert_eq!(
        around.entries,
        vec![own.clone()],
        "queue_around with a key without lease"
    );
    assert_eq!(
        candidates(backend, &e).await.entries,
        vec![own],
        "candidates"
    );
    if let (Some(entry), _) = get(backend, &data).await {
        assert_eq!(entry.lease, LeaseId(0), "an application key has no lease");
        let _ = backend.delete(&entry).await;
    }
    revoke(backend, g.id).await;
    revoke(backend, h.id).await;
}

// ---- watches -----------------------------------------------------------

/// For a backend without history: a watch from a past revision starts
/// with [`WatchEvent::HistoryLost`] (never a silent gap), and a watch from
/// the revision of a fresh read delivers live changes.
pub async fn watch_from_the_past_reports_history_lost(
    backend: &dyn CoordinationBackend,
    caps: &Capabilities,
) {
    let e = unique("no-history");
    let (a, b) = (
        grant(backend, caps.ttl).await,
        grant(backend, caps.ttl).await,
    );
    let e1 = created(backend.create(&e, Slot::Queue, a.id, v("1")).await);
    let e2 = created(backend.create(&e, Slot::Queue, b.id, v("2")).await);
    assert!(expect_ok(backend.delete(&e2).await, "delete"), "delete e2");
    let scope = WatchScope::Election(e.clone());
    let mut past = Watch::open(backend, caps, scope.clone(), e1.created).await;
    let first = tokio::time::timeout(caps.event_timeout, past.stream.next()).await;
    assert!(
        matches!(first, Ok(Some(Ok(WatchEvent::HistoryLost)))),
        "a watch from before a change it cannot replay must say so, got {first:?}"
    );
    let snapshot = expect_ok(backend.candidates(&e).await, "candidates");
    let mut live = Watch::open(backend, caps, scope, snapshot.revision + 1).await;
    let e3 = created(backend.create(&e, Slot::Queue, b.id, v("3")).await);
    live.expect_put(&e3).await;
    revoke(backend, a.id).await;
    revoke(backend, b.id).await;
}

/// A watch from a past revision replays every change of its scope from
/// there, in order (with the values of the time), then delivers live
/// changes; a watch from the middle of the history starts there.
pub async fn watch_replays_from_revision(backend: &dyn CoordinationBackend, caps: &Capabilities) {
    let e = unique("replay");
    let (a, b) = (
        grant(backend, caps.ttl).await,
        grant(backend, caps.ttl).await,
    );
    let e1 = created(backend.create(&e, Slot::Queue, a.id, v("1")).await);
    let e2 = created(backend.create(&e, Slot::Queue, b.id, v("2")).await);
    let u1 = expect_ok(backend.update(&e1, v("1b")).await, "update");
    assert!(expect_ok(backend.delete(&e2).await, "delete"), "delete e2");
    let (_, after_delete) = get(backend, &e2.key).await;

    let scope = WatchScope::Election(e.clone());
    let mut w = Watch::open(backend, caps, scope.clone(), e1.created).await;
    w.expect_put(&e1).await;
    w.expect_put(&e2).await;
    w.expect_put(&u1).await;
    let deleted_at = w.expect_delete(&e2.key).await;
    assert!(
        u1.modified < deleted_at && deleted_at <= after_delete,
        "delete revision {deleted_at} outside ({}, {after_delete}]",
        u1.modified
    );
    let e3 = created(backend.create(&e, Slot::Queue, b.id, v("3")).await);
    w.expect_put(&e3).await;

    let mut mid = Watch::open(backend, caps, scope.clone(), e2.created).await;
    mid.expect_put(&e2).await;
    let mut live = Watch::open(backend, caps, scope, e3.created + 1).await;
    let u3 = expect_ok(backend.update(&e3, v("3b")).await, "update");
    live.expect_put(&u3).await;
    w.expect_put(&u3).await;
    revoke(backend, a.id).await;
    revoke(backend, b.id).await;
}

/// A key watch sees only that key: not the election's queue entries, not
/// other elections, not keys it is a prefix of; and it goes on after the
/// key is deleted.
pub async fn watch_key_scope_sees_only_that_key(
    backend: &dyn CoordinationBackend,
    caps: &Capabilities,
) {
    let (e, other) = (unique("key-scope"), unique("key-scope-other"));
    let g = grant(backend, caps.ttl).await;
    let key = backend.leader_key(&e);
    let (_, now) = get(backend, &key).await;
    let mut w = Watch::open(backend, caps, WatchScope::Key(key.clone()), now + 1).await;

    // A queue entry of `e` (gone before `e` turns single-key: one
    // strategy at a time), and both kinds of key in other elections.
    let queued = created(backend.create(&e, Slot::Queue, g.id, v("q")).await);
    assert!(expect_ok(backend.delete(&queued).await, "delete"));
    let other_queue = unique("key-scope-other-queue");
    created(backend.create(&other, Slot::Leader, g.id, v("o")).await);
    created(
        backend
            .create(&other_queue, Slot::Queue, g.id, v("o"))
            .await,
    );
    let leader = created(backend.create(&e, Slot::Leader, g.id, v("l")).await);
    w.expect_put(&leader).await;
    // `app_key` extends the election's name (on etcd and memory, its
    // leader key): a prefix match would see it.
    expect_ok(
        backend
            .guarded_put(&leader, &app_key(backend, &e), v("p"))
            .await,
        "guarded_put",
    );
    let updated = expect_ok(backend.update(&leader, v("l2")).await, "update");
    w.expect_put(&updated).await;
    assert!(
        expect_ok(backend.delete(&updated).await, "delete"),
        "delete leader"
    );
    w.expect_delete(&key).await;
    // The watch goes on after a deletion: the key taken again is seen.
    let again = created(backend.create(&e, Slot::Leader, g.id, v("l3")).await);
    w.expect_put(&again).await;
    assert!(
        expect_ok(backend.delete(&again).await, "delete"),
        "delete leader again"
    );
    w.expect_delete(&key).await;
    cleanup_app_key(backend, &e).await;
    revoke(backend, g.id).await;
}

/// An election watch sees that election's queue entries only: not its
/// leader key, not elections whose names extend it (`a/b`, `ab`), not its
/// parent (`a` inside `base`).
pub async fn watch_election_scope_excludes_other_elections(
    backend: &dyn CoordinationBackend,
    caps: &Capabilities,
) {
    let base = unique("scope");
    let sub = |s: &str| {
        ElectionName::new(format!("{base}/{s}"))
            .unwrap_or_else(|err| panic!("election name {base}/{s}: {err}"))
    };
    let (a, ab, a_b) = (sub("a"), sub("ab"), sub("a/b"));
    // Single-key elections next to and inside `a` (an election holds one
    // strategy at a time, so these are not the queue elections above).
    let (ac, a_c) = (sub("ac"), sub("a/c"));
    let (g1, g2) = (
        grant(backend, caps.ttl).await,
        grant(backend, caps.ttl).await,
    );
    let (_, now) = get(backend, &backend.leader_key(&a)).await;
    let mut w = Watch::open(backend, caps, WatchScope::Election(a.clone()), now + 1).await;

    let mut others = Vec::new();
    for election in [&ab, &a_b, &base] {
        others.push(created(
            backend.create(election, Slot::Queue, g1.id, v("x")).await,
        ));
    }
    for election in [&ac, &a_c] {
        created(backend.create(election, Slot::Leader, g1.id, v("x")).await);
    }
    // `a`'s own leader key, gone before its queue starts.
    let single = created(backend.create(&a, Slot::Leader, g1.id, v("x")).await);
    assert!(expect_ok(backend.delete(&single).await, "delete"));
    let first = created(backend.create(&a, Slot::Queue, g1.id, v("1")).await);
    w.expect_put(&first).await;
    let second = created(backend.create(&a, Slot::Queue, g2.id, v("2")).await);
    w.expect_put(&second).await;

    let snap = candidates(backend, &a).await;
    assert_eq!(
        snap.entries,
        vec![first.clone(), second.clone()],
        "candidates of {a}"
    );
    for (election, entry) in [&ab, &a_b, &base].into_iter().zip(&others) {
        let snap = candidates(backend, election).await;
        assert_eq!(
            snap.entries,
            vec![entry.clone()],
            "candidates of {election}"
        );
    }

    // Revoking g1 deletes six keys; the watch sees only `first` go.
    revoke(backend, g1.id).await;
    w.expect_delete(&first.key).await;
    revoke(backend, g2.id).await;
    w.expect_delete(&second.key).await;
}

// ---- helpers -----------------------------------------------------------

/// A fresh election name: unique per process, run and call.
fn unique(test: &str) -> ElectionName {
    static RUN: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let run = RUN.get_or_init(|| {
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish() & 0xffff_ffff
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!(
        "tenure-conformance-{run:08x}-{}-{n}-{test}",
        std::process::id()
    );
    ElectionName::new(name.clone()).unwrap_or_else(|err| panic!("election name {name}: {err}"))
}

/// An application key (no lease) next to an election, outside its key
/// space (`guarded_put` refuses keys inside it); the election's name is a
/// proper prefix of it.
fn app_key(_backend: &dyn CoordinationBackend, election: &ElectionName) -> String {
    format!("{election}-data")
}

/// Deletes the application key of `election`, if present.
async fn cleanup_app_key(backend: &dyn CoordinationBackend, election: &ElectionName) {
    if let (Some(entry), _) = get(backend, &app_key(backend, election)).await {
        let _ = backend.delete(&entry).await;
    }
}

fn v(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[track_caller]
fn expect_ok<T>(r: tenure_core::Result<T>, what: &str) -> T {
    r.unwrap_or_else(|err| panic!("{what} failed: {err}"))
}

async fn grant(backend: &dyn CoordinationBackend, ttl: Duration) -> LeaseGrant {
    expect_ok(
        backend.grant_lease(ttl).await,
        &format!("grant_lease({ttl:?})"),
    )
}

async fn revoke(backend: &dyn CoordinationBackend, lease: LeaseId) {
    expect_ok(
        backend.revoke_lease(lease).await,
        &format!("revoke_lease({lease})"),
    );
}

async fn get(backend: &dyn CoordinationBackend, key: &str) -> (Option<Entry>, Revision) {
    expect_ok(backend.get(key).await, &format!("get({key:?})"))
}

async fn candidates(
    backend: &dyn CoordinationBackend,
    election: &ElectionName,
) -> tenure_core::Snapshot {
    expect_ok(
        backend.candidates(election).await,
        &format!("candidates({election})"),
    )
}

/// The entry of a create that must have created it.
#[track_caller]
fn created(r: tenure_core::Result<CreateOutcome>) -> Entry {
    match expect_ok(r, "create") {
        CreateOutcome::Created(e) => e,
        CreateOutcome::Exists(e) => panic!("create found an existing entry: {e:?}"),
        other => panic!("create returned an outcome this suite does not know: {other:?}"),
    }
}

#[track_caller]
fn assert_lease_expired<T: std::fmt::Debug>(r: tenure_core::Result<T>, lease: LeaseId, what: &str) {
    match r {
        Err(err @ Error::LeaseExpired { .. }) => {
            assert!(
                matches!(&err, Error::LeaseExpired { lease: l } if *l == lease),
                "{what}: LeaseExpired names the wrong lease: {err:?}, expected {lease}"
            );
            assert!(
                err.to_string().contains(&lease.to_string()),
                "{what}: message {err} lacks the lease id {lease}"
            );
        }
        other => panic!("{what}: expected LeaseExpired, got {other:?}"),
    }
}

#[track_caller]
fn expect_not_owner(r: tenure_core::Result<Revision>, guard_key: &str) {
    match r {
        Err(Error::NotOwner { key }) => {
            assert_eq!(key, guard_key, "NotOwner must name the guard's key")
        }
        other => panic!("guarded_put without its guard: expected NotOwner, got {other:?}"),
    }
}

/// A watch under test: every event must come within the timeout and
/// carry a revision above the previous one.
struct Watch {
    stream: WatchStream,
    what: String,
    last: Revision,
    timeout: Duration,
}

impl Watch {
    async fn open(
        backend: &dyn CoordinationBackend,
        caps: &Capabilities,
        scope: WatchScope,
        from: Revision,
    ) -> Watch {
        let what = format!("watch({scope:?}, from {from})");
        let stream = expect_ok(backend.watch(scope, from).await, &what);
        Watch {
            stream,
            what,
            last: 0,
            timeout: caps.event_timeout,
        }
    }

    async fn next(&mut self) -> WatchEvent {
        let event = match tokio::time::timeout(self.timeout, self.stream.next()).await {
            Err(_) => panic!("{}: no event within {:?}", self.what, self.timeout),
            Ok(None) => panic!("{}: stream ended", self.what),
            Ok(Some(Err(err))) => panic!("{}: stream failed: {err}", self.what),
            Ok(Some(Ok(event))) => event,
        };
        let revision = match &event {
            WatchEvent::Put(e) => e.modified,
            WatchEvent::Delete { revision, .. } => *revision,
            other => panic!("{}: unexpected {other:?}", self.what),
        };
        assert!(
            revision > self.last,
            "{}: event revision {revision} after {}: {event:?}",
            self.what,
            self.last
        );
        self.last = revision;
        event
    }

    async fn expect_put(&mut self, entry: &Entry) {
        let event = self.next().await;
        assert_eq!(
            event,
            WatchEvent::Put(entry.clone()),
            "{}: expected the put of {:?}",
            self.what,
            entry.key
        );
    }

    /// Returns the deletion's revision.
    async fn expect_delete(&mut self, key: &str) -> Revision {
        match self.next().await {
            WatchEvent::Delete { key: k, revision } if k == key => revision,
            other => panic!(
                "{}: expected the delete of {key:?}, got {other:?}",
                self.what
            ),
        }
    }
}
