//! Unit tests of the election machine: each drives it by hand through one
//! rule it must keep.

use std::time::{Duration, Instant};

use super::*;
use crate::machine::messages::Request;
use crate::{Queued, Slot};

const LEASE: LeaseId = LeaseId(0xa);

fn name() -> ElectionName {
    ElectionName::new("e").unwrap()
}

fn entry(key: &str, lease: i64, created: u64) -> Entry {
    Entry {
        key: key.into(),
        value: Bytes::from_static(b"v"),
        lease: LeaseId(lease),
        created,
        modified: created,
    }
}

fn machine(strategy: Strategy, t0: Instant) -> ElectionMachine {
    let config = ElectionConfig {
        strategy,
        ..ElectionConfig::default()
    };
    ElectionMachine::new(
        name(),
        config,
        "v".into(),
        LEASE,
        t0 + Duration::from_secs(2),
        t0,
        1,
    )
}

fn request(m: &mut ElectionMachine) -> (RequestId, Request) {
    match m.poll_command() {
        Some(Command::Request { id, request }) => (id, request),
        other => panic!("expected a request, got {other:?}"),
    }
}

fn watch(m: &mut ElectionMachine) -> (WatchId, WatchScope, Revision) {
    match m.poll_command() {
        Some(Command::Watch { id, scope, from }) => (id, scope, from),
        other => panic!("expected a watch, got {other:?}"),
    }
}

/// Drives a queue machine to leadership with our entry at revision 5.
fn elect(m: &mut ElectionMachine, t: Instant) -> (Entry, WatchId) {
    let (id, _) = request(m);
    let ours = entry("e/a", 0xa, 5);
    m.handle_reply(
        t,
        id,
        Reply::Create(Ok(CreateOutcome::Created(ours.clone()))),
    );
    let (id, _) = request(m);
    let snapshot = Snapshot {
        entries: vec![ours.clone()],
        revision: 5,
        starts_at_head: true,
    };
    m.handle_reply(t, id, Reply::Candidates(Ok(snapshot)));
    let (w, scope, from) = watch(m);
    assert_eq!(scope, WatchScope::Key("e/a".into()));
    assert_eq!(from, 6);
    assert!(matches!(
        m.poll_event(),
        Some(Event::Elected { token: 5, .. })
    ));
    (ours, w)
}

#[test]
fn queue_follower_watches_its_predecessor_not_the_leader_then_rechecks() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (id, req) = request(&mut m);
    assert!(matches!(
        req,
        Request::Create {
            slot: Slot::Queue,
            lease: LEASE,
            ..
        }
    ));
    let ours = entry("e/a", 0xa, 9);
    m.handle_reply(
        t,
        id,
        Reply::Create(Ok(CreateOutcome::Created(ours.clone()))),
    );
    let (id, _) = request(&mut m);
    let snap = Snapshot {
        entries: vec![entry("e/1", 1, 3), entry("e/2", 2, 7), ours.clone()],
        revision: 9,
        starts_at_head: true,
    };
    m.handle_reply(t, id, Reply::Candidates(Ok(snap)));
    let (w, scope, from) = watch(&mut m);
    assert_eq!(
        scope,
        WatchScope::Key("e/2".into()),
        "predecessor, not the leader"
    );
    assert_eq!(from, 10);
    let (second, scope, from) = watch(&mut m);
    assert_eq!(scope, WatchScope::Key("e/1".into()), "the entry before it");
    assert_eq!(from, 10);
    assert_eq!(m.poll_command(), None);
    assert_eq!(m.phase(), Phase::Following);

    // The predecessor goes first: re-read before claiming anything.
    m.handle_watch(
        t,
        w,
        Some(WatchEvent::Delete {
            key: "e/2".into(),
            revision: 11,
        }),
    );
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: w }));
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: second }));
    let (id, req) = request(&mut m);
    assert!(matches!(req, Request::Candidates { .. }));
    assert_eq!(m.poll_event(), None, "no election without a fresh read");
    // The leader is still there: follow the new predecessor.
    reread_follows(&mut m, t, id, entry("e/1", 1, 3), ours);
    assert_eq!(m.poll_event(), None);
}

/// Answers read `id` with `pred` first and alone before `ours` (revision
/// 11); the machine follows `pred`, with one watch. Returns that watch.
fn reread_follows(
    m: &mut ElectionMachine,
    t: Instant,
    id: RequestId,
    pred: Entry,
    ours: Entry,
) -> WatchId {
    let key = pred.key.clone();
    let snap = Snapshot {
        entries: vec![pred, ours],
        revision: 11,
        starts_at_head: true,
    };
    m.handle_reply(t, id, Reply::Candidates(Ok(snap)));
    let (w, scope, _) = watch(m);
    assert_eq!(scope, WatchScope::Key(key));
    assert_eq!(m.poll_command(), None, "one entry ahead: one watch");
    w
}

/// Drives a queue machine through its create (our entry at revision 9)
/// and a read that shows `ahead` before it, saying whether the first of
/// them was first.
fn placed(m: &mut ElectionMachine, t: Instant, ahead: &[Entry], starts_at_head: bool) -> Entry {
    let (id, _) = request(m);
    let ours = entry("e/a", 0xa, 9);
    m.handle_reply(
        t,
        id,
        Reply::Create(Ok(CreateOutcome::Created(ours.clone()))),
    );
    let (id, _) = request(m);
    let mut entries = ahead.to_vec();
    entries.push(ours.clone());
    let snap = Snapshot {
        entries,
        revision: 9,
        starts_at_head,
    };
    m.handle_reply(t, id, Reply::Candidates(Ok(snap)));
    ours
}

/// Drives a queue machine to following `pred`, with our entry at
/// revision 9, from a read that says whether `pred` was first.
fn follow(
    m: &mut ElectionMachine,
    t: Instant,
    pred: Entry,
    starts_at_head: bool,
) -> (Entry, WatchId) {
    let ours = placed(m, t, std::slice::from_ref(&pred), starts_at_head);
    let (w, scope, _) = watch(m);
    assert_eq!(scope, WatchScope::Key(pred.key));
    (ours, w)
}

fn predecessor_deleted(m: &mut ElectionMachine, t: Instant, w: WatchId, key: &str) {
    m.handle_watch(
        t,
        w,
        Some(WatchEvent::Delete {
            key: key.into(),
            revision: 11,
        }),
    );
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: w }));
}

/// Drives a queue machine to following `pred` with `before` ahead of it
/// (our entry at revision 9), from a read that says whether `before` was
/// first; returns the watches of `pred` and of `before`.
fn follow_second(
    m: &mut ElectionMachine,
    t: Instant,
    before: Entry,
    pred: Entry,
    starts_at_head: bool,
) -> (Entry, WatchId, WatchId) {
    let ours = placed(m, t, &[before.clone(), pred.clone()], starts_at_head);
    let (w, scope, _) = watch(m);
    assert_eq!(scope, WatchScope::Key(pred.key));
    let (second, scope, _) = watch(m);
    assert_eq!(scope, WatchScope::Key(before.key));
    (ours, w, second)
}

/// A queue machine following `e/2` with `e/1` ahead of it, from a read
/// that says whether `e/1` was first: [`follow_second`] on a new machine.
fn two_ahead(first: bool) -> (ElectionMachine, Instant, Entry, WatchId, WatchId) {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (ours, w, second) = follow_second(&mut m, t, entry("e/1", 1, 3), entry("e/2", 2, 7), first);
    (m, t, ours, w, second)
}

#[test]
fn first_of_two_ahead_gone_then_predecessor_gone_reads_only_own_entry() {
    let (mut m, t, ours, w, second) = two_ahead(true);
    // The leader goes: nothing to read, the predecessor is first now.
    predecessor_deleted(&mut m, t, second, "e/1");
    assert_eq!(
        m.poll_command(),
        None,
        "no read, the predecessor's watch stays"
    );
    assert_eq!(m.phase(), Phase::Following);
    // The predecessor goes: our own entry decides.
    predecessor_deleted(&mut m, t, w, "e/2");
    own_entry_read_elects(&mut m, t, ours);
}

#[test]
fn second_ahead_not_first_gone_reads_the_queue_after_the_hand_over() {
    let (mut m, t, ours, w, second) = two_ahead(false);
    predecessor_deleted(&mut m, t, second, "e/1");
    // Not at once: the successor's own read goes first.
    assert_eq!(m.poll_command(), None);
    let at = t + super::SECOND_READ_DELAY;
    assert_eq!(m.poll_timeout(), Some(at));
    m.handle_timeout(at - Duration::from_millis(1));
    assert_eq!(m.poll_command(), None, "too early");
    m.handle_timeout(at);
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: w }));
    let (id, req) = request(&mut m);
    assert!(matches!(req, Request::Candidates { .. }), "{req:?}");
    assert_eq!(m.poll_event(), None);
    // The read shows the predecessor first: follow it alone, and when it
    // goes read only our own entry.
    let w = reread_follows(&mut m, t, id, entry("e/2", 2, 7), ours);
    assert_eq!(m.poll_timeout(), Some(t + Duration::from_secs(2)));
    predecessor_deleted(&mut m, t, w, "e/2");
    let (_, req) = request(&mut m);
    assert_eq!(req, Request::Get { key: "e/a".into() });
}

#[test]
fn predecessor_gone_before_the_delayed_read_reads_at_once() {
    let (mut m, t, _, w, second) = two_ahead(false);
    predecessor_deleted(&mut m, t, second, "e/1");
    assert_eq!(m.poll_command(), None);
    predecessor_deleted(&mut m, t, w, "e/2");
    let (_, req) = request(&mut m);
    assert!(matches!(req, Request::Candidates { .. }), "{req:?}");
    // The delayed read is forgotten: no second read at its time.
    m.handle_timeout(t + super::SECOND_READ_DELAY);
    assert_eq!(m.poll_command(), None);
}

#[test]
fn second_watch_broken_or_unrelated_events_keep_the_predecessor_watch() {
    for event in [None, Some(WatchEvent::HistoryLost)] {
        let (mut m, t, _, w, second) = two_ahead(true);
        // A put on the watched key and another key's delete change nothing.
        m.handle_watch(t, second, Some(WatchEvent::Put(entry("e/1", 1, 3))));
        m.handle_watch(
            t,
            second,
            Some(WatchEvent::Delete {
                key: "e/x".into(),
                revision: 10,
            }),
        );
        assert_eq!(m.poll_command(), None);
        m.handle_watch(t, second, event.clone());
        assert_eq!(m.poll_command(), Some(Command::Unwatch { id: second }));
        assert_eq!(m.poll_command(), None, "{event:?}: no read");
        // Nothing is known of the leader any more: when the predecessor
        // goes, the queue is read.
        predecessor_deleted(&mut m, t, w, "e/2");
        let (_, req) = request(&mut m);
        assert!(
            matches!(req, Request::Candidates { .. }),
            "{event:?}: {req:?}"
        );
    }
}

#[test]
fn withdrawing_follower_drops_both_watches() {
    let (mut m, t, ours, w, second) = two_ahead(true);
    m.resign(t);
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: w }));
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: second }));
    let (_, req) = request(&mut m);
    assert_eq!(req, Request::Delete { entry: ours });
    // A late event of the dropped watch is ignored.
    m.handle_watch(
        t,
        second,
        Some(WatchEvent::Delete {
            key: "e/1".into(),
            revision: 11,
        }),
    );
    assert_eq!(m.poll_command(), None);
}

#[test]
fn first_predecessor_gone_own_entry_read_elects() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (ours, w) = follow(&mut m, t, entry("e/1", 1, 3), true);
    predecessor_deleted(&mut m, t, w, "e/1");
    // Nobody could have come before us since the read: our own entry,
    // not the queue, is what is read.
    own_entry_read_elects(&mut m, t, ours);
}

/// The machine reads our own entry (`e/a`, not the queue) and, finding
/// it at revision 12, is elected with a leader watch from 13.
fn own_entry_read_elects(m: &mut ElectionMachine, t: Instant, ours: Entry) {
    let (id, req) = request(m);
    assert_eq!(req, Request::Get { key: "e/a".into() });
    assert_eq!(m.phase(), Phase::Reading);
    assert_eq!(m.poll_event(), None, "no election before the read");
    m.handle_reply(t, id, Reply::Get(Ok((Some(ours), 12))));
    let (_, scope, from) = watch(m);
    assert_eq!(scope, WatchScope::Key("e/a".into()));
    assert_eq!(from, 13, "the leader watch starts after the read");
    assert!(matches!(
        m.poll_event(),
        Some(Event::Elected { token: 9, .. })
    ));
}

#[test]
fn first_predecessor_gone_and_own_entry_gone_creates_again() {
    let t = Instant::now();
    for found in [
        None,
        Some(entry("e/a", 0xa, 10)),
        Some(entry("e/a", 0xb, 9)),
    ] {
        let mut m = machine(Strategy::Queue, t);
        let (_, w) = follow(&mut m, t, entry("e/1", 1, 3), true);
        predecessor_deleted(&mut m, t, w, "e/1");
        let (id, _) = request(&mut m);
        m.handle_reply(t, id, Reply::Get(Ok((found.clone(), 12))));
        assert_eq!(m.poll_event(), None, "{found:?} is not our entry");
        let (_, req) = request(&mut m);
        assert!(matches!(req, Request::Create { .. }), "{found:?}: {req:?}");
    }
}

#[test]
fn first_predecessor_gone_read_failure_falls_back_to_the_queue() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (_, w) = follow(&mut m, t, entry("e/1", 1, 3), true);
    predecessor_deleted(&mut m, t, w, "e/1");
    let (id, _) = request(&mut m);
    let timeout = Error::Timeout {
        backend: "test",
        operation: "get",
        after: Duration::from_millis(5),
    };
    m.handle_reply(t, id, Reply::Get(Err(timeout)));
    assert_eq!(m.poll_event(), None);
    let retry = m.poll_timeout().expect("a back-off");
    m.handle_timeout(retry);
    let (_, req) = request(&mut m);
    assert!(matches!(req, Request::Candidates { .. }), "{req:?}");
}

#[test]
fn predecessor_not_known_first_reads_the_queue() {
    let t = Instant::now();
    // A read that cannot tell whether the predecessor was first, and a
    // watch that broke rather than saw a delete: the queue is read.
    let mut m = machine(Strategy::Queue, t);
    let (_, w) = follow(&mut m, t, entry("e/1", 1, 3), false);
    predecessor_deleted(&mut m, t, w, "e/1");
    let (_, req) = request(&mut m);
    assert!(matches!(req, Request::Candidates { .. }), "{req:?}");
    let mut m = machine(Strategy::Queue, t);
    let (_, w) = follow(&mut m, t, entry("e/1", 1, 3), true);
    m.handle_watch(t, w, None);
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: w }));
    let (_, req) = request(&mut m);
    assert!(matches!(req, Request::Candidates { .. }), "{req:?}");
}

#[test]
fn never_claims_leadership_when_own_entry_is_gone() {
    // The trap where a candidate "won" after its own key had been deleted:
    // the read shows no entry of ours, so we create again instead.
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (id, _) = request(&mut m);
    m.handle_reply(
        t,
        id,
        Reply::Create(Ok(CreateOutcome::Created(entry("e/a", 0xa, 5)))),
    );
    let (id, _) = request(&mut m);
    m.handle_reply(
        t,
        id,
        Reply::Candidates(Ok(Snapshot {
            entries: vec![],
            revision: 8,
            starts_at_head: true,
        })),
    );
    assert_eq!(m.poll_event(), None);
    let (_, req) = request(&mut m);
    assert!(matches!(req, Request::Create { .. }));
    // A same-key entry re-created by another lease is not ours either.
}

#[test]
fn entry_with_same_key_but_other_creation_is_not_ours() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (id, _) = request(&mut m);
    m.handle_reply(
        t,
        id,
        Reply::Create(Ok(CreateOutcome::Created(entry("e/a", 0xa, 5)))),
    );
    let (id, _) = request(&mut m);
    let snap = Snapshot {
        entries: vec![entry("e/a", 0xa, 12)],
        revision: 12,
        starts_at_head: true,
    };
    m.handle_reply(t, id, Reply::Candidates(Ok(snap)));
    assert_eq!(m.poll_event(), None);
    assert!(matches!(request(&mut m).1, Request::Create { .. }));
}

#[test]
fn does_not_claim_after_the_lease_deadline() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (id, _) = request(&mut m);
    let ours = entry("e/a", 0xa, 5);
    m.handle_reply(
        t,
        id,
        Reply::Create(Ok(CreateOutcome::Created(ours.clone()))),
    );
    let (id, _) = request(&mut m);
    let late = t + Duration::from_secs(3);
    m.handle_reply(
        late,
        id,
        Reply::Candidates(Ok(Snapshot {
            entries: vec![ours],
            revision: 5,
            starts_at_head: true,
        })),
    );
    assert!(matches!(
        m.poll_event(),
        Some(Event::Failed(FailReason::LeaseLost(_)))
    ));
    assert_eq!(m.poll_event(), Some(Event::Finished));
}

#[test]
fn leader_steps_down_at_its_deadline_and_cleans_up() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (ours, w) = elect(&mut m, t);
    assert_eq!(m.poll_timeout(), Some(t + Duration::from_secs(2)));
    assert!(m.is_leader(t + Duration::from_millis(1999)));
    m.handle_timeout(t + Duration::from_secs(2));
    assert_eq!(
        m.poll_event(),
        Some(Event::Lost {
            reason: LossReason::DeadlineExceeded
        })
    );
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: w }));
    let (id, req) = request(&mut m);
    assert_eq!(req, Request::Delete { entry: ours });
    m.handle_reply(t, id, Reply::Delete(Err(Error::Cancelled("unreachable"))));
    // The cleanup failed: told, then done (the entry goes with the lease).
    assert!(matches!(m.poll_event(), Some(Event::ReleaseFailed(_))));
    assert_eq!(m.poll_event(), Some(Event::Finished));
}

#[test]
fn renewal_extends_the_leader_and_is_reported() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    elect(&mut m, t);
    let later = t + Duration::from_secs(3);
    m.handle_renewed(t + Duration::from_secs(1), later);
    assert_eq!(m.poll_event(), Some(Event::Extended { valid_until: later }));
    assert_eq!(m.poll_timeout(), Some(later));
    // An older deadline never moves it back.
    m.handle_renewed(t + Duration::from_secs(1), t + Duration::from_secs(2));
    assert_eq!(m.poll_event(), None);
}

#[test]
fn resign_reports_loss_before_deleting() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (ours, w) = elect(&mut m, t);
    m.resign(t);
    assert_eq!(
        m.poll_event(),
        Some(Event::Lost {
            reason: LossReason::Resigned
        })
    );
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: w }));
    let (id, req) = request(&mut m);
    assert_eq!(req, Request::Delete { entry: ours });
    assert!(!m.is_leader(t));
    m.handle_reply(t, id, Reply::Delete(Ok(true)));
    assert_eq!(m.poll_event(), Some(Event::Finished));
}

#[test]
fn resign_during_create_deletes_what_the_create_made() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (id, _) = request(&mut m);
    m.resign(t);
    assert_eq!(m.poll_command(), None, "waits for the create in flight");
    let ours = entry("e/a", 0xa, 5);
    m.handle_reply(
        t,
        id,
        Reply::Create(Ok(CreateOutcome::Created(ours.clone()))),
    );
    assert_eq!(m.poll_event(), Some(Event::Failed(FailReason::Withdrawn)));
    assert_eq!(request(&mut m).1, Request::Delete { entry: ours });
}

#[test]
fn operator_deleting_the_leader_entry_is_a_typed_loss() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (_, w) = elect(&mut m, t);
    m.handle_watch(
        t,
        w,
        Some(WatchEvent::Delete {
            key: "e/a".into(),
            revision: 9,
        }),
    );
    assert_eq!(
        m.poll_event(),
        Some(Event::Lost {
            reason: LossReason::EntryDeleted
        })
    );
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: w }));
    assert_eq!(m.poll_event(), Some(Event::Finished));
}

#[test]
fn broken_leader_watch_is_verified_not_ignored() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (ours, w) = elect(&mut m, t);
    m.handle_watch(t, w, Some(WatchEvent::HistoryLost));
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: w }));
    let (id, req) = request(&mut m);
    assert_eq!(req, Request::Get { key: "e/a".into() });
    assert!(
        m.is_leader(t),
        "still leader while checking, within the deadline"
    );
    // The entry vanished during the gap: loss.
    m.handle_reply(t, id, Reply::Get(Ok((None, 20))));
    assert_eq!(
        m.poll_event(),
        Some(Event::Lost {
            reason: LossReason::EntryDeleted
        })
    );
    let _ = ours;
}

#[test]
fn broken_leader_watch_rearms_when_entry_is_intact() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (ours, w) = elect(&mut m, t);
    m.handle_watch(t, w, None);
    let _ = m.poll_command();
    let (id, _) = request(&mut m);
    m.handle_reply(t, id, Reply::Get(Ok((Some(ours), 30))));
    let (_, scope, from) = watch(&mut m);
    assert_eq!((scope, from), (WatchScope::Key("e/a".into()), 31));
    assert_eq!(m.poll_event(), None);
    assert_eq!(m.phase(), Phase::Leader);
}

#[test]
fn stale_replies_are_ignored() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (id, _) = request(&mut m);
    m.handle_reply(
        t,
        RequestId(id.0 + 100),
        Reply::Create(Ok(CreateOutcome::Created(entry("e/a", 0xa, 5)))),
    );
    assert_eq!(m.phase(), Phase::Creating);
    assert_eq!(m.poll_command(), None);
}

#[test]
fn transient_errors_back_off_then_retry() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (id, _) = request(&mut m);
    let err = Error::Timeout {
        backend: "test",
        operation: "create",
        after: Duration::from_secs(1),
    };
    m.handle_reply(t, id, Reply::Create(Err(err)));
    assert_eq!(m.phase(), Phase::Backoff);
    let wake = m.poll_timeout().unwrap();
    assert!(wake <= t + Duration::from_millis(50));
    m.handle_timeout(wake);
    assert!(matches!(request(&mut m).1, Request::Create { .. }));
}

#[test]
fn lease_loss_during_campaign_fails_it() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (id, _) = request(&mut m);
    m.handle_reply(
        t,
        id,
        Reply::Create(Err(Error::LeaseExpired { lease: LEASE })),
    );
    assert_eq!(
        m.poll_event(),
        Some(Event::Failed(FailReason::LeaseLost(
            LossReason::LeaseExpired
        )))
    );
    assert_eq!(m.poll_event(), Some(Event::Finished));
}

#[test]
fn single_key_follower_races_again_after_jitter() {
    let t = Instant::now();
    let mut m = machine(Strategy::SingleKey, t);
    let (id, req) = request(&mut m);
    assert!(matches!(
        req,
        Request::Create {
            slot: Slot::Leader,
            ..
        }
    ));
    let theirs = entry("e", 1, 4);
    m.handle_reply(t, id, Reply::Create(Ok(CreateOutcome::Exists(theirs))));
    let (w, scope, from) = watch(&mut m);
    assert_eq!((scope, from), (WatchScope::Key("e".into()), 5));
    m.handle_watch(
        t,
        w,
        Some(WatchEvent::Delete {
            key: "e".into(),
            revision: 6,
        }),
    );
    let _ = m.poll_command(); // unwatch
    assert_eq!(m.phase(), Phase::Backoff);
    let wake = m.poll_timeout().unwrap();
    assert!(
        wake <= t + Duration::from_millis(50),
        "first retry within the initial window"
    );
    m.handle_timeout(wake);
    let (id, _) = request(&mut m);
    let ours = entry("e", 0xa, 7);
    m.handle_reply(wake, id, Reply::Create(Ok(CreateOutcome::Created(ours))));
    let _ = watch(&mut m);
    assert!(matches!(
        m.poll_event(),
        Some(Event::Elected { token: 7, .. })
    ));
}

#[test]
fn start_delay_holds_the_first_create() {
    let t = Instant::now();
    let config = ElectionConfig {
        start_delay: Duration::from_millis(500),
        ..ElectionConfig::default()
    };
    let mut m = ElectionMachine::new(
        name(),
        config,
        "v".into(),
        LEASE,
        t + Duration::from_secs(9),
        t,
        3,
    );
    assert_eq!(m.poll_command(), None);
    let wake = m.poll_timeout().unwrap();
    assert!(wake >= t + Duration::from_millis(500) && wake <= t + Duration::from_secs(1));
    m.handle_timeout(wake);
    assert!(matches!(request(&mut m).1, Request::Create { .. }));
}

#[test]
fn failed_release_is_retried_while_the_lease_lives() {
    // Regression (found by the property tests): a leader resigned while
    // partitioned, its delete failed, and the entry stayed behind bound to
    // a live lease, so the candidate was later "re-elected" with the same
    // fencing token, and on a shared session nobody else could ever win.
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (ours, w) = elect(&mut m, t);
    m.resign(t);
    assert_eq!(
        m.poll_event(),
        Some(Event::Lost {
            reason: LossReason::Resigned
        })
    );
    assert_eq!(m.poll_command(), Some(Command::Unwatch { id: w }));
    let (id, _) = request(&mut m);
    let unreachable = Error::Timeout {
        backend: "test",
        operation: "delete",
        after: Duration::from_millis(1),
    };
    m.handle_reply(t, id, Reply::Delete(Err(unreachable)));
    assert_eq!(m.phase(), Phase::Releasing);
    assert_eq!(
        m.poll_event(),
        None,
        "not finished while the entry may remain"
    );
    let wake = m.poll_timeout().unwrap();
    m.handle_timeout(wake);
    let (id, req) = request(&mut m);
    assert_eq!(req, Request::Delete { entry: ours });
    // A second resign while releasing changes nothing.
    m.resign(wake);
    assert_eq!(m.poll_event(), None);
    m.handle_reply(wake, id, Reply::Delete(Ok(true)));
    assert_eq!(m.poll_event(), Some(Event::Finished));
}

#[test]
fn release_gives_up_at_the_deadline() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let _ = elect(&mut m, t);
    m.resign(t);
    let _ = (m.poll_event(), m.poll_command());
    let (id, _) = request(&mut m);
    let late = t + Duration::from_secs(3);
    let unreachable = Error::Timeout {
        backend: "test",
        operation: "delete",
        after: Duration::from_millis(1),
    };
    m.handle_reply(late, id, Reply::Delete(Err(unreachable)));
    match m.poll_event() {
        Some(Event::ReleaseFailed(SharedError(e))) => {
            assert!(matches!(*e, Error::Timeout { .. }), "{e}")
        }
        other => panic!("expected the failure to be told, got {other:?}"),
    }
    assert_eq!(
        m.poll_event(),
        Some(Event::Finished),
        "the lease keeper revokes from here on"
    );
}

/// A delete that keeps failing transiently is retried until the deadline,
/// then the last failure is told.
#[test]
fn release_retried_until_the_deadline_tells_the_last_failure() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let _ = elect(&mut m, t);
    m.resign(t);
    let _ = (m.poll_event(), m.poll_command());
    let (id, _) = request(&mut m);
    let timeout = || Error::Timeout {
        backend: "test",
        operation: "delete",
        after: Duration::from_millis(1),
    };
    m.handle_reply(t, id, Reply::Delete(Err(timeout())));
    assert_eq!(m.poll_event(), None, "a transient failure is retried");
    assert_eq!(m.phase(), Phase::Releasing);
    m.handle_timeout(t + Duration::from_secs(2));
    assert!(matches!(m.poll_event(), Some(Event::ReleaseFailed(_))));
    assert_eq!(m.poll_event(), Some(Event::Finished));
}

#[test]
fn permanent_errors_end_the_campaign_typed_and_transient_ones_back_off() {
    let t0 = Instant::now();
    // Transient: backs off and asks again.
    let mut m = machine(Strategy::Queue, t0);
    let (id, _) = request(&mut m);
    m.handle_reply(
        t0,
        id,
        Reply::Create(Err(Error::Timeout {
            backend: "test",
            operation: "create",
            after: Duration::from_millis(100),
        })),
    );
    assert_eq!(m.phase(), Phase::Backoff);
    assert_eq!(m.poll_event(), None);

    // Permanent: the backend's own error comes out, unchanged in kind.
    let mut m = machine(Strategy::Queue, t0);
    let (id, _) = request(&mut m);
    m.handle_reply(
        t0,
        id,
        Reply::Create(Err(Error::Unauthenticated {
            backend: "test",
            endpoint: "here".into(),
            reason: "permission denied".into(),
        })),
    );
    match m.poll_event() {
        Some(Event::Failed(FailReason::Backend(e))) => {
            assert!(matches!(*e, Error::Unauthenticated { .. }), "{e:?}")
        }
        other => panic!("expected a typed failure, got {other:?}"),
    }
    assert_eq!(m.poll_event(), Some(Event::Finished));

    // A backend that breaks the contract: a protocol error, permanent.
    let mut m = machine(Strategy::Queue, t0);
    let (id, _) = request(&mut m);
    let foreign = entry("e/a", 0xb, 5);
    m.handle_reply(t0, id, Reply::Create(Ok(CreateOutcome::Exists(foreign))));
    match m.poll_event() {
        Some(Event::Failed(FailReason::Backend(e))) => {
            assert!(matches!(*e, Error::Protocol { .. }), "{e:?}");
            assert!(!e.is_transient());
        }
        other => panic!("expected a protocol failure, got {other:?}"),
    }
}

#[test]
fn a_create_that_places_its_entry_first_elects_without_a_read() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (id, _) = request(&mut m);
    let ours = entry("e/a", 0xa, 5);
    let around = Snapshot {
        entries: vec![ours.clone()],
        revision: 5,
        starts_at_head: true,
    };
    m.handle_reply(
        t,
        id,
        Reply::Queued(Ok(Queued {
            outcome: CreateOutcome::Created(ours),
            around: Some(around),
        })),
    );
    // The leader watch on our own key, and no read request before it.
    let (_, scope, from) = watch(&mut m);
    assert_eq!(scope, WatchScope::Key("e/a".into()));
    assert_eq!(from, 6);
    assert!(matches!(
        m.poll_event(),
        Some(Event::Elected { token: 5, .. })
    ));
    assert!(m.poll_command().is_none(), "no read after a placing create");
}

#[test]
fn a_create_that_does_not_place_its_entry_reads_first() {
    let t = Instant::now();
    let mut m = machine(Strategy::Queue, t);
    let (id, _) = request(&mut m);
    let ours = entry("e/a", 0xa, 5);
    m.handle_reply(
        t,
        id,
        Reply::Queued(Ok(Queued {
            outcome: CreateOutcome::Created(ours.clone()),
            around: None,
        })),
    );
    let (_, req) = request(&mut m);
    assert_eq!(
        req,
        Request::Candidates {
            election: name(),
            own: ours
        }
    );
    assert!(m.poll_event().is_none(), "not elected before the read");
}
