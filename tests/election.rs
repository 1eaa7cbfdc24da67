//! The async driver end to end on the in-memory backend, under paused
//! tokio time: campaign, handover, crash, partition, operator deletes,
//! observe, fencing, sessions, bad input.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tenure::backend::CoordinationBackend;
use tenure::machine::Strategy;
use tenure::memory::{MemoryBackend, MemoryClient};
use tenure::{DynBackend, Election, Error, LossReason, Session};
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(2);

fn dynb(c: &MemoryClient) -> DynBackend {
    Arc::new(c.clone())
}

fn election(c: &MemoryClient, name: &str) -> Election {
    Election::builder(dynb(c), name).ttl(TTL).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn resign_hands_over_without_waiting_for_the_ttl() {
    let server = MemoryBackend::new();
    let (a, b) = (server.client(), server.client());
    let leader = election(&a, "e").campaign("a").await.unwrap();
    assert!(leader.is_leader());
    let follower = tokio::spawn({
        let e = election(&b, "e");
        async move { e.campaign("b").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!follower.is_finished(), "b must wait while a leads");

    let t0 = Instant::now();
    let token_a = leader.token();
    leader.resign().await.expect("resign");
    let b_lead = follower.await.unwrap().unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(10),
        "handover took {:?}",
        t0.elapsed()
    );
    assert!(b_lead.token() > token_a);
    assert_eq!(&b_lead.entry().value[..], b"b");
}

#[tokio::test(start_paused = true)]
async fn partitioned_leader_steps_down_before_the_successor_is_elected() {
    let server = MemoryBackend::new();
    let (a, b) = (server.client(), server.client());
    let leader = election(&a, "e").campaign("a").await.unwrap();
    let follower = tokio::spawn({
        let e = election(&b, "e");
        async move { e.campaign("b").await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;

    a.set_unreachable(true);
    let reason = leader.lost().await;
    assert_eq!(reason, LossReason::DeadlineExceeded);
    let stepped_down = Instant::now();
    assert!(!leader.is_leader());

    let b_lead = follower.await.unwrap().unwrap();
    let elected = Instant::now();
    assert!(
        elected > stepped_down,
        "successor elected before the old leader stepped down"
    );
    // Failover after a partition takes about one TTL.
    assert!(
        elected - stepped_down <= TTL,
        "{:?}",
        elected - stepped_down
    );
    assert!(b_lead.is_leader());
}

#[tokio::test(start_paused = true)]
async fn lease_expiry_is_reported_as_lease_expired() {
    let server = MemoryBackend::new();
    let a = server.client();
    let leader = election(&a, "e").campaign("a").await.unwrap();
    server.expire_lease(leader.entry().lease);
    // The keep-alive finds the lease gone, or the watch sees the entry go.
    let reason = leader.lost().await;
    assert!(
        matches!(reason, LossReason::LeaseExpired | LossReason::EntryDeleted),
        "{reason:?}"
    );
    assert!(leader.cancellation_token().is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn operator_delete_of_the_leader_entry_is_a_loss() {
    let server = MemoryBackend::new();
    let (a, op) = (server.client(), server.client());
    let leader = election(&a, "e").campaign("a").await.unwrap();
    assert!(op.delete(leader.entry()).await.unwrap());
    assert_eq!(leader.lost().await, LossReason::EntryDeleted);
    assert!(matches!(
        leader.guarded_put("data", "x").await,
        Err(Error::NotLeader { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn deposed_leader_write_is_rejected_by_the_backend() {
    let server = MemoryBackend::new();
    let (a, b) = (server.client(), server.client());
    let old = election(&a, "e").campaign("a").await.unwrap();
    assert!(old.guarded_put("data", "from a").await.is_ok());
    // The old leader's entry disappears behind its back (lease expired on
    // the server); a new leader is elected.
    server.expire_lease(old.entry().lease);
    let new = election(&b, "e").campaign("b").await.unwrap();
    assert!(new.token() > old.token());
    // Whether or not `old` has noticed, the backend refuses its write.
    let err = server
        .client()
        .guarded_put(old.entry(), "data", "late write".into())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotOwner { .. }), "{err}");
    assert!(new.guarded_put("data", "from b").await.is_ok());
    let (stored, _) = server.client().get("data").await.unwrap();
    assert_eq!(&stored.unwrap().value[..], b"from b");
}

#[tokio::test(start_paused = true)]
async fn try_campaign_does_not_wait_and_leaves_no_entry() {
    let server = MemoryBackend::new();
    let (a, b) = (server.client(), server.client());
    let ea = election(&a, "e");
    let leader = ea
        .try_campaign("a")
        .await
        .unwrap()
        .expect("nobody else: elected");
    let eb = election(&b, "e");
    assert!(eb.try_campaign("b").await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(10)).await;
    let queue = eb.candidates().await.unwrap();
    assert_eq!(queue.len(), 1, "b withdrew its entry: {queue:?}");
    assert_eq!(queue[0].key, leader.entry().key);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_campaign_withdraws_the_candidate() {
    let server = MemoryBackend::new();
    let (a, b) = (server.client(), server.client());
    let _leader = election(&a, "e").campaign("a").await.unwrap();
    let eb = election(&b, "e");
    let pending = tokio::time::timeout(Duration::from_millis(100), eb.campaign("b")).await;
    assert!(pending.is_err(), "b cannot win while a leads");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(eb.candidates().await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_leadership_resigns() {
    let server = MemoryBackend::new();
    let (a, b) = (server.client(), server.client());
    let leader = election(&a, "e").campaign("a").await.unwrap();
    let follower = tokio::spawn({
        let e = election(&b, "e");
        async move { e.campaign("b").await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(leader);
    let t0 = Instant::now();
    follower.await.unwrap().unwrap();
    assert!(
        t0.elapsed() < TTL / 2,
        "drop must release, not wait for expiry"
    );
}

#[tokio::test(start_paused = true)]
async fn observe_reports_every_leader_and_survives_lost_history() {
    let server = MemoryBackend::new();
    let (a, b, o) = (server.client(), server.client(), server.client());
    let mut leaders = election(&o, "e").observe();
    assert_eq!(
        leaders.next().await.unwrap(),
        tenure::Observation::NoLeader,
        "nobody leads yet"
    );

    let la = election(&a, "e").campaign("a").await.unwrap();
    let seen = leaders.next().await.unwrap().into_leader().unwrap();
    assert_eq!((&seen.value[..], seen.token), (&b"a"[..], la.token()));

    server.compact_all();
    server.drop_watches();
    la.proclaim("a2").await.unwrap();
    let seen = leaders.next().await.unwrap().into_leader().unwrap();
    assert_eq!(&seen.value[..], b"a2");

    let fb = tokio::spawn({
        let e = election(&b, "e");
        async move { e.campaign("b").await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    la.resign().await.expect("resign");
    let lb = fb.await.unwrap().unwrap();
    let seen = leaders.next().await.unwrap().into_leader().unwrap();
    assert_eq!((&seen.value[..], seen.token), (&b"b"[..], lb.token()));
}

#[tokio::test(start_paused = true)]
async fn leader_reads_the_current_leader() {
    let server = MemoryBackend::new();
    let (a, o) = (server.client(), server.client());
    let eo = election(&o, "e");
    assert_eq!(eo.leader().await.unwrap(), None);
    let la = election(&a, "e").campaign("a").await.unwrap();
    let info = eo.leader().await.unwrap().unwrap();
    assert_eq!(info.token, la.token());
}

#[tokio::test(start_paused = true)]
async fn one_session_serves_many_elections() {
    let server = MemoryBackend::new();
    let a = server.client();
    let session = Session::new(dynb(&a), TTL).await.unwrap();
    let mut held = Vec::new();
    for i in 0..50 {
        let e = Election::builder(dynb(&a), format!("shard/{i}"))
            .session(session.clone())
            .build()
            .unwrap();
        held.push(e.campaign("a").await.unwrap());
    }
    assert_eq!(server.lease_ids().len(), 1, "one lease for all elections");
    // Keep-alives keep every term valid well past the TTL.
    tokio::time::sleep(TTL * 5).await;
    assert!(held.iter().all(|l| l.is_leader()));
    // Losing the session ends every term.
    server.expire_lease(session.lease());
    for l in &held {
        assert!(matches!(
            l.lost().await,
            LossReason::LeaseExpired | LossReason::EntryDeleted
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn single_key_strategy_hands_over() {
    let server = MemoryBackend::new();
    let (a, b) = (server.client(), server.client());
    let build = |c: &MemoryClient| {
        Election::builder(dynb(c), "single")
            .ttl(TTL)
            .strategy(Strategy::SingleKey)
            .build()
            .unwrap()
    };
    let la = build(&a).campaign("a").await.unwrap();
    assert_eq!(la.entry().key, "single");
    let fb = tokio::spawn({
        let e = build(&b);
        async move { e.campaign("b").await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(build(&b).leader().await.unwrap().unwrap().token, la.token());
    la.resign().await.expect("resign");
    let lb = fb.await.unwrap().unwrap();
    assert!(lb.token() > 0);
}

#[tokio::test(start_paused = true)]
async fn recampaign_delay_holds_the_next_term() {
    let server = MemoryBackend::new();
    let a = server.client();
    let e = Election::builder(dynb(&a), "e")
        .ttl(TTL)
        .recampaign_delay(Duration::from_secs(1))
        .build()
        .unwrap();
    let l = e.campaign("a").await.unwrap();
    server.expire_lease(l.entry().lease);
    l.lost().await;
    let t0 = Instant::now();
    let _again = e.campaign("a").await.unwrap();
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "re-campaigned after {waited:?}"
    );
    assert!(
        waited <= Duration::from_secs(2) + Duration::from_millis(100),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_a_typed_error() {
    let server = MemoryBackend::new();
    let a = server.client();
    let err = Election::builder(dynb(&a), "").build().unwrap_err();
    assert!(matches!(err, Error::InvalidElectionName { .. }), "{err}");
    let err = Election::builder(dynb(&a), "a//b").build().unwrap_err();
    assert!(err.to_string().contains("empty path segment"), "{err}");
    let err = Election::builder(dynb(&a), "e")
        .ttl(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTtl { .. }), "{err}");
    let err = Session::new(dynb(&a), Duration::from_secs(100_000))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTtl { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn unreachable_backend_fails_the_campaign_without_hanging() {
    let server = MemoryBackend::new();
    let a = server.client();
    a.set_unreachable(true);
    let err = election(&a, "e").campaign("a").await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("memory"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn campaign_fails_when_the_lease_is_lost_while_waiting() {
    let server = MemoryBackend::new();
    let (a, b) = (server.client(), server.client());
    let _la = election(&a, "e").campaign("a").await.unwrap();
    let session = Session::new(dynb(&b), TTL).await.unwrap();
    let eb = Election::builder(dynb(&b), "e")
        .session(session.clone())
        .build()
        .unwrap();
    let waiting = tokio::spawn(async move { eb.campaign("b").await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.expire_lease(session.lease());
    let err = waiting.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::LeaseExpired { .. }), "{err}");
}

/// An observer cut off from the backend says `Unknown` once the bound has
/// passed without a confirmation (not before), then the leader again when
/// the backend answers; a quiet but healthy backend never makes it
/// unknown.
#[tokio::test(start_paused = true)]
async fn observer_says_unknown_past_the_bound_and_recovers() {
    let server = MemoryBackend::new();
    let (a, watcher) = (server.client(), server.client());
    let leader = election(&a, "e").campaign("a").await.unwrap();
    let mut leaders = Election::builder(dynb(&watcher), "e")
        .ttl(TTL)
        .max_staleness(Duration::from_secs(3))
        .build()
        .unwrap()
        .observe();
    let first = leaders.next().await.unwrap();
    assert_eq!(first.leader().unwrap().token, leader.token());

    // Healthy and quiet for many bounds: nothing new, and the observer
    // kept confirming (its probes reached the backend).
    let before = watcher.stats().requests;
    let quiet = tokio::time::timeout(Duration::from_secs(20), leaders.next()).await;
    assert!(quiet.is_err(), "quiet backend, but got {quiet:?}");
    assert!(
        watcher.stats().requests >= before + 6,
        "the observer did not probe: {} -> {}",
        before,
        watcher.stats().requests
    );

    let cut_at = Instant::now();
    watcher.set_unreachable(true);
    match leaders.next().await.unwrap() {
        tenure::Observation::Unknown { unconfirmed_for } => {
            assert!(
                unconfirmed_for >= Duration::from_secs(3),
                "{unconfirmed_for:?}"
            );
            // The last confirmation came at most a probe interval before
            // the cut; the report comes at the bound after it.
            assert!(
                cut_at.elapsed() <= Duration::from_secs(3),
                "{:?}",
                cut_at.elapsed()
            );
        }
        other => panic!("expected Unknown, got {other:?}"),
    }
    watcher.set_unreachable(false);
    let back = leaders.next().await.unwrap();
    assert_eq!(back.leader().unwrap().token, leader.token(), "{back:?}");
    leader.resign().await.expect("resign");
}

/// A resignation whose delete cannot reach the backend reports the error
/// (the entry stays until the lease expires), and the term still ends
/// locally at once.
#[tokio::test(start_paused = true)]
async fn failed_resign_is_reported_and_the_term_still_ends() {
    let server = MemoryBackend::new();
    let a = server.client();
    let leader = election(&a, "e").campaign("a").await.unwrap();
    let lost = leader.cancellation_token();
    a.set_unreachable(true);
    let err = leader.resign().await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(lost.is_cancelled(), "the term must end locally");
    // The failed delete left the entry (until the lease expires).
    let reader = server.client();
    let name = tenure::ElectionName::new("e").unwrap();
    let left = reader.candidates(&name).await.unwrap();
    assert_eq!(left.entries.len(), 1, "the entry must still be there");
}

/// A successful resignation reports success.
#[tokio::test(start_paused = true)]
async fn resign_reports_success() {
    let server = MemoryBackend::new();
    let a = server.client();
    let leader = election(&a, "e").campaign("a").await.unwrap();
    leader.resign().await.unwrap();
    let reader = server.client();
    let name = tenure::ElectionName::new("e").unwrap();
    let left = reader.candidates(&name).await.unwrap();
    assert!(left.entries.is_empty());
}

/// `.ttl()` beside `.session()` would be ignored: `build()` refuses it,
/// naming both.
#[tokio::test(start_paused = true)]
async fn ttl_with_a_shared_session_is_a_config_error() {
    let server = MemoryBackend::new();
    let a = server.client();
    let session = Session::new(dynb(&a), TTL).await.unwrap();
    let err = Election::builder(dynb(&a), "e")
        .session(session)
        .ttl(Duration::from_secs(5))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { field: "ttl", .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("ttl") && msg.contains("session"), "{msg}");
}

/// `campaign`, `proclaim` and `guarded_put` take borrowed and owned
/// strings and bytes.
#[tokio::test(start_paused = true)]
async fn values_may_be_borrowed_or_owned() {
    let server = MemoryBackend::new();
    let a = server.client();
    let node = String::from("node-a");
    let borrowed: &str = &node;
    let e = election(&a, "e");
    let leader = e.campaign(borrowed).await.unwrap();
    leader.proclaim(&node).await.unwrap();
    leader.proclaim(node.as_bytes()).await.unwrap();
    leader.proclaim(node.clone().into_bytes()).await.unwrap();
    leader.guarded_put("owner", &node).await.unwrap();
    leader
        .guarded_put("owner", tenure::Bytes::from(node.clone()))
        .await
        .unwrap();
    assert_eq!(e.leader().await.unwrap().unwrap().value, node.as_bytes());
    leader.resign().await.unwrap();
}
