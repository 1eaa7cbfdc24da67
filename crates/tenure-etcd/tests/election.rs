//! Election scenarios through the driver API (`Election`, `Session`,
//! `Leadership`) on real etcd servers.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tenure_core::{DynBackend, Election, LossReason, Observation, Session};
use tenure_testkit::counting::Counting;
use tenure_testkit::driver_scenarios;
use tenure_testkit::etcd_server::EtcdCluster;

const TTL: Duration = Duration::from_secs(2);

fn election(b: DynBackend, name: &str) -> Election {
    driver_scenarios::election(b, name, TTL)
}

async fn wait_queued(e: &Election, n: usize) {
    driver_scenarios::wait_queued(e, n, Duration::from_secs(10)).await;
}

/// Fresh connections to `url`, for the shared scenarios.
fn connector(url: String) -> driver_scenarios::Connect {
    Arc::new(move || {
        let url = url.clone();
        Box::pin(async move { common::dyn_backend(&url).await })
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_crash_successor_within_ttl() {
    let server = common::server().await;
    let failover = driver_scenarios::crash_failover(
        connector(server.endpoint()),
        "crash",
        TTL,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        failover <= TTL + Duration::from_millis(1500),
        "failover took {failover:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_resign_hands_over_in_one_round_trip() {
    let server = common::server().await;
    let times =
        driver_scenarios::resign_handovers(connector(server.endpoint()), "handover", TTL).await;
    // Far below a TTL: the successor does not wait for an expiry.
    assert!(times[4] < TTL / 2, "handover took {:?}", times[4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_delete_ends_leadership_with_entry_deleted() {
    let server = common::server().await;
    let e = election(common::dyn_backend(&server.endpoint()).await, "ops");
    let leadership = e.campaign("a").await.unwrap();
    let key = leadership.entry().key.clone();
    server.etcdctl(&["del", &key]).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), leadership.lost())
        .await
        .expect("leadership not lost after its key was deleted");
    assert_eq!(reason, LossReason::EntryDeleted);
    assert!(!leadership.is_leader());
    assert!(leadership.guarded_put("app/x", "1").await.is_err());
}

async fn candidate_loop(e: Election, value: &'static str, current: Arc<Mutex<Option<u64>>>) {
    loop {
        match e.campaign(value).await {
            Ok(l) => {
                *current.lock().unwrap() = Some(l.token());
                let _ = l.lost().await;
                *current.lock().unwrap() = None;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until `observer` reports a leader that one of `currents` holds.
async fn wait_for_leader(observer: &Election, currents: &[Arc<Mutex<Option<u64>>>]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    loop {
        if let Ok(Some(info)) = observer.leader().await {
            let holders = currents
                .iter()
                .filter(|c| *c.lock().unwrap() == Some(info.token))
                .count();
            if holders == 1 {
                return info.token;
            }
            last = Some(info.token);
        }
        assert!(
            Instant::now() < deadline,
            "no leader recovered (last seen token {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn candidates_recover_after_etcd_restart() {
    let mut server = common::server().await;
    let currents: Vec<_> = (0..2).map(|_| Arc::new(Mutex::new(None))).collect();
    let mut tasks = Vec::new();
    for (i, c) in currents.iter().enumerate() {
        let e = election(common::dyn_backend(&server.endpoint()).await, "restart");
        tasks.push(tokio::spawn(candidate_loop(e, ["a", "b"][i], c.clone())));
    }
    let observer = election(common::dyn_backend(&server.endpoint()).await, "restart");
    let before = wait_for_leader(&observer, &currents).await;
    server.restart().await.unwrap();
    let after = wait_for_leader(&observer, &currents).await;
    assert!(after >= before);
    // Kill longer than the TTL: the leader must step down, and someone
    // leads again once etcd is back.
    server.kill().await.unwrap();
    let ok = common::eventually(TTL + Duration::from_secs(2), || async {
        currents.iter().all(|c| c.lock().unwrap().is_none())
    })
    .await;
    assert!(ok, "a leader kept leading past its deadline with etcd down");
    server.restart().await.unwrap();
    let again = wait_for_leader(&observer, &currents).await;
    assert!(again > after);
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_expired_during_campaign_cannot_win() {
    let server = common::server().await;
    let b = common::dyn_backend(&server.endpoint()).await;
    let ea = election(b.clone(), "expiry");
    let leader = ea.campaign("a").await.unwrap();

    let sb = Session::new(b.clone(), TTL).await.unwrap();
    let sc = Session::new(b.clone(), TTL).await.unwrap();
    let eb = Election::builder(b.clone(), "expiry")
        .session(sb.clone())
        .build()
        .unwrap();
    let ec = Election::builder(b.clone(), "expiry")
        .session(sc.clone())
        .build()
        .unwrap();
    let fb = {
        let eb = eb.clone();
        tokio::spawn(async move { eb.campaign("b").await })
    };
    wait_queued(&ea, 2).await;
    let fc = {
        let ec = ec.clone();
        tokio::spawn(async move { ec.campaign("c").await })
    };
    wait_queued(&ea, 3).await;

    // B's lease dies under it (as if it expired) while it waits.
    let raw = tenure_etcd::EtcdBackend::connect(tenure_etcd::EtcdOptions::new([server.endpoint()]))
        .await
        .unwrap();
    raw.client().lease_revoke(sb.lease().0).await.unwrap();
    let rb = tokio::time::timeout(Duration::from_secs(5), fb)
        .await
        .expect("B's campaign must end when its lease is gone")
        .unwrap();
    assert!(
        matches!(rb, Err(tenure_core::Error::LeaseExpired { .. })),
        "{rb:?}"
    );
    assert_eq!(sb.lost().await, LossReason::LeaseExpired);

    leader.resign().await.expect("resign");
    let lc = tokio::time::timeout(Duration::from_secs(5), fc)
        .await
        .expect("C must win")
        .unwrap()
        .unwrap();
    assert_eq!(lc.entry().lease, sc.lease());
    let cands = ea.candidates().await.unwrap();
    assert_eq!(cands.len(), 1, "{cands:?}");
    assert_eq!(cands[0].lease, sc.lease());
}

#[tokio::test(flavor = "multi_thread")]
async fn observer_misses_no_leader_change_across_compactions() {
    let server = common::server().await;
    let b = common::dyn_backend(&server.endpoint()).await;
    let raw = tenure_etcd::EtcdBackend::connect(tenure_etcd::EtcdOptions::new([server.endpoint()]))
        .await
        .unwrap();
    let observer = election(b.clone(), "observed");
    let mut stream = observer.observe();
    assert_eq!(stream.next().await.unwrap(), Observation::NoLeader);
    let mut last = None;
    for i in 0..5 {
        let l = election(b.clone(), "observed")
            .campaign(format!("leader-{i}"))
            .await
            .unwrap();
        // Compact everything up to now, then change again.
        let (_, rev) = b.get("observed").await.unwrap();
        raw.client()
            .compact(i64::try_from(rev).unwrap(), None)
            .await
            .unwrap();
        if i < 4 {
            l.resign().await.expect("resign");
        } else {
            last = Some(l);
        }
    }
    let want = last.as_ref().unwrap().token();
    let ok = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(seen) = stream.next().await {
            if seen.leader().map(|s| s.token) == Some(want) {
                assert_eq!(
                    seen.into_leader().unwrap().value,
                    Bytes::from_static(b"leader-4")
                );
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ok, Ok(true), "the observer never saw the last leader");
}

#[tokio::test(flavor = "multi_thread")]
async fn hundred_candidates_one_connection_one_leader_and_no_herd() {
    const N: usize = 100;
    let server = common::server().await;
    // One connection for everything.
    let shared = common::dyn_backend(&server.endpoint()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut counters = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..N {
        let counting = Counting::new(shared.clone());
        counters.push(counting.clone());
        let b: DynBackend = Arc::new(counting);
        let e = Election::builder(b, "herd")
            .ttl(Duration::from_secs(5))
            .build()
            .unwrap();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let l = e.campaign(format!("c{i}")).await.unwrap();
            tx.send((i, l)).unwrap();
        }));
    }
    let observer = election(shared.clone(), "herd");
    let ok = common::eventually(Duration::from_secs(30), || async {
        observer
            .candidates()
            .await
            .map(|c| c.len() == N)
            .unwrap_or(false)
    })
    .await;
    assert!(ok, "not all candidates queued");
    let (first, leadership) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let cands = observer.candidates().await.unwrap();
    assert_eq!(cands[0].key, leadership.entry().key);
    assert!(rx.try_recv().is_err(), "two leaders at once");
    let successor_key = cands[1].key.clone();
    // The candidate after the successor, by its proposal `c<i>`.
    let after_successor = (0..N)
        .find(|i| cands[2].value == format!("c{i}").as_bytes())
        .expect("the third candidate's proposal");
    // Count from when every candidate has opened its watch (followers on
    // their predecessor, the leader on its own entry).
    let settled = common::eventually(Duration::from_secs(30), || async {
        counters.iter().all(|c| c.counts().watches >= 1)
    })
    .await;
    assert!(settled, "not every candidate opened its watch");
    let before: Vec<usize> = counters.iter().map(Counting::watch_events).collect();

    leadership.resign().await.expect("resign");
    let (second, l2) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(first, second);
    assert_eq!(l2.entry().key, successor_key);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "two leaders after one resign");
    // The same delete wakes the candidate after the successor: wait for
    // that event itself.
    let third_woken = common::eventually(Duration::from_secs(10), || async {
        counters[after_successor].watch_events() > before[after_successor]
    })
    .await;
    assert!(third_woken, "the candidate after the successor never woke");
    let mut woken: Vec<usize> = (0..N)
        .filter(|&i| i != first && counters[i].watch_events() > before[i])
        .collect();
    woken.sort_unstable();
    let mut expected = vec![second, after_successor];
    expected.sort_unstable();
    assert_eq!(
        woken, expected,
        "a leader change must wake only the successor and the candidate after it"
    );
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_session_many_elections() {
    let server = common::server().await;
    let b = common::dyn_backend(&server.endpoint()).await;
    let session = Session::new(b.clone(), TTL).await.unwrap();
    let mut leaderships = Vec::new();
    for i in 0..50 {
        let e = Election::builder(b.clone(), format!("many/e{i}"))
            .session(session.clone())
            .build()
            .unwrap();
        leaderships.push(e.campaign("me").await.unwrap());
    }
    assert!(leaderships
        .iter()
        .all(|l| l.entry().lease == session.lease()));
    // Past two TTLs the one lease (one keep-alive stream) still holds all.
    tokio::time::sleep(TTL * 2).await;
    assert!(leaderships.iter().all(|l| l.is_leader()));
    session.close().await;
    for l in &leaderships {
        tokio::time::timeout(Duration::from_secs(5), l.lost())
            .await
            .expect("closing the session must end every term");
        assert!(!l.is_leader());
    }
    let out = server
        .etcdctl(&["get", "--prefix", "many/", "--keys-only"])
        .await
        .unwrap();
    assert!(
        out.trim().is_empty(),
        "closing the session removes every entry: {out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn election_continues_when_a_cluster_member_dies() {
    let mut cluster = EtcdCluster::start(3)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let endpoints = cluster.endpoints();
    let connect = || async {
        let b = tenure_etcd::EtcdBackend::connect(
            tenure_etcd::EtcdOptions::new(endpoints.clone())
                .connect_timeout(Duration::from_secs(3))
                .request_timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap();
        Arc::new(b) as DynBackend
    };
    let currents: Vec<_> = (0..2).map(|_| Arc::new(Mutex::new(None))).collect();
    let mut tasks = Vec::new();
    for (i, c) in currents.iter().enumerate() {
        let e = election(connect().await, "cluster");
        tasks.push(tokio::spawn(candidate_loop(e, ["a", "b"][i], c.clone())));
    }
    let observer = election(connect().await, "cluster");
    wait_for_leader(&observer, &currents).await;
    for member in 0..3 {
        cluster.kill(member).await.unwrap();
        wait_for_leader(&observer, &currents).await;
        cluster.restart(member).await.unwrap();
    }
    wait_for_leader(&observer, &currents).await;
    for t in tasks {
        t.abort();
    }
}

/// Campaigns in a runtime of its own that is then torn down without any
/// cleanup (a process killed): returns the lease and the term's token.
/// The entry and the lease stay behind until the TTL runs out.
fn lead_then_crash(
    endpoint: String,
    name: &'static str,
    ttl: Duration,
) -> (tenure_core::LeaseId, u64) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            let b = common::dyn_backend(&endpoint).await;
            let session = Session::new(b.clone(), ttl).await.unwrap();
            let e = Election::builder(b, name)
                .session(session.clone())
                .build()
                .unwrap();
            let l = e.campaign("before-restart").await.unwrap();
            let out = (session.lease(), l.token());
            // Neither the term nor the session is ended: the process dies.
            std::mem::forget(l);
            std::mem::forget(session);
            out
        });
        rt.shutdown_background();
        out
    })
    .join()
    .unwrap()
}

/// A candidate that restarts with the lease it had takes its place back
/// without a new term: same entry, same fencing token, same proposal,
/// while another candidate keeps waiting.
#[tokio::test(flavor = "multi_thread")]
async fn restarted_leader_resumes_its_term_with_its_lease() {
    let server = common::server().await;
    let ttl = Duration::from_secs(5);
    let (lease, token) = lead_then_crash(server.endpoint(), "resume", ttl);

    let other = common::dyn_backend(&server.endpoint()).await;
    let waiting = tokio::spawn({
        let e = Election::builder(other, "resume").ttl(ttl).build().unwrap();
        async move { e.campaign("other").await }
    });
    let b = common::dyn_backend(&server.endpoint()).await;
    let e = Election::builder(b.clone(), "resume").build().unwrap();
    wait_queued(&e, 2).await;

    let session = Session::builder(b.clone())
        .resume(lease)
        .start()
        .await
        .unwrap();
    assert_eq!(session.lease(), lease);
    let resumed = Election::builder(b, "resume")
        .session(session.clone())
        .build()
        .unwrap();
    let l = resumed.campaign("after-restart").await.unwrap();
    assert_eq!(l.token(), token, "the same term: the same fencing token");
    assert_eq!(l.entry().lease, lease);
    assert_eq!(
        &l.entry().value[..],
        b"before-restart",
        "the entry as it was"
    );
    assert!(l.is_leader());
    assert!(!waiting.is_finished(), "the other candidate still waits");

    // The resumed session keeps the lease alive: the deadline moves on
    // past a whole TTL after the resume.
    let first = l.valid_until();
    let guard = Instant::now() + Duration::from_secs(30);
    while l.valid_until() < first + ttl {
        assert!(Instant::now() < guard, "no keep-alive moved the deadline");
        assert!(l.is_leader(), "the resumed term ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(l.is_leader());
    l.resign().await.unwrap();
    let next = waiting.await.unwrap().unwrap();
    assert!(next.token() > token);
    next.resign().await.unwrap();
}

/// Resuming a lease that is gone is a typed error, not a new lease.
#[tokio::test(flavor = "multi_thread")]
async fn resuming_a_lease_that_is_gone_is_lease_expired() {
    let server = common::server().await;
    let b = common::dyn_backend(&server.endpoint()).await;
    let session = Session::new(b.clone(), TTL).await.unwrap();
    let lease = session.lease();
    session.close().await;
    let err = Session::builder(b).resume(lease).start().await.unwrap_err();
    assert!(
        matches!(err, tenure_core::Error::LeaseExpired { .. }),
        "{err}"
    );
}
