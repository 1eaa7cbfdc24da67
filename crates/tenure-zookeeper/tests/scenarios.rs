//! Election scenarios through the driver API (`Election`, `Leadership`)
//! on real ZooKeeper servers. Times printed are observations, not
//! assertions (run with `--nocapture` to see them).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tenure_core::{DynBackend, Election, Leadership, LossReason};
use tenure_testkit::counting::Counting;
use tenure_zookeeper::zookeeper_client as zk;
use tokio::time::Instant;

const TTL: Duration = Duration::from_millis(1500);

fn election(backend: DynBackend, name: &str) -> Election {
    Election::builder(backend, name)
        .ttl(TTL)
        .build()
        .unwrap_or_else(|e| panic!("election {name}: {e}"))
}

async fn within<T>(d: Duration, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(d, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {d:?}"))
}

/// Waits until the election lists `n` candidates. The limit only guards
/// against a hang (a hundred candidates queue in a few seconds on a
/// loaded machine).
async fn wait_candidates(e: &Election, n: usize) {
    assert!(
        common::eventually(Duration::from_secs(30), || async {
            e.candidates().await.map(|c| c.len() == n).unwrap_or(false)
        })
        .await,
        "never saw {n} candidates"
    );
}

/// Graceful resign: the successor takes over in about one round trip,
/// with a larger fencing token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_resign_hands_over_at_once() {
    let zk = common::shared().await;
    let root = common::unique_root("resign");
    let a = election(
        common::dyn_backend(&zk.connect_string(), &root).await,
        "svc",
    );
    let b = election(
        common::dyn_backend(&zk.connect_string(), &root).await,
        "svc",
    );
    let la = within(Duration::from_secs(10), "a elected", a.campaign("a"))
        .await
        .unwrap();
    let pending = tokio::spawn(async move { b.campaign("b").await });
    wait_candidates(&a, 2).await;
    let token_a = la.token();
    let started = Instant::now();
    la.resign().await.expect("resign");
    let lb = within(Duration::from_secs(10), "b elected", pending)
        .await
        .unwrap()
        .unwrap();
    let handover = started.elapsed();
    println!("handover after resign: {handover:?}");
    assert!(lb.token() > token_a, "fencing token must grow");
    assert_eq!(lb.entry().value, Bytes::from("b"));
    assert!(lb.is_leader());
}

/// A leader that crashes (its process dies: sockets closed, nothing
/// resigned) is succeeded once the server expires its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_crash_fails_over_after_session_expiry() {
    let zk = common::shared().await;
    let root = common::unique_root("crash");
    let connect = zk.connect_string();
    // The doomed leader lives in a runtime of its own, which we drop.
    let crashing = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (root2, connect2) = (root.clone(), connect.clone());
    let la: Leadership = std::thread::spawn(move || {
        let l = crashing.block_on(async move {
            let a = election(common::dyn_backend(&connect2, &root2).await, "svc");
            a.campaign("a").await.unwrap()
        });
        (crashing, l)
    })
    .join()
    .map(|(rt, l)| {
        CRASH.with(|c| *c.borrow_mut() = Some(rt));
        l
    })
    .unwrap();
    let b = election(common::dyn_backend(&connect, &root).await, "svc");
    let b2 = b.clone();
    let pending = tokio::spawn(async move { b2.campaign("b").await });
    wait_candidates(&b, 2).await;

    let crashed_at = Instant::now();
    CRASH.with(|c| {
        if let Some(rt) = c.borrow_mut().take() {
            rt.shutdown_background();
        }
    });
    let lb = within(TTL + Duration::from_secs(10), "b elected", pending)
        .await
        .unwrap()
        .unwrap();
    let failover = crashed_at.elapsed();
    println!("failover after crash (TTL {TTL:?}): {failover:?}");
    assert!(lb.token() > la.token());
    std::mem::forget(la); // its runtime is gone
}

thread_local! {
    static CRASH: std::cell::RefCell<Option<tokio::runtime::Runtime>> = const { std::cell::RefCell::new(None) };
}

/// The leader's session is expired from outside (as Curator's
/// `KillSession` does: another client attaches to the session and closes
/// it): the leader learns it as a typed loss and the follower takes over.
///
/// The leader reaches the server through a fault-injecting proxy, held in
/// a blackhole while the killer attaches and closes the session, so the
/// leader's own client cannot move the session back before the close (the
/// race that made this test flaky). Then the proxy resets the leader's
/// connections: its client reconnects at once and finds the session gone.
/// The TTL is long enough that the leader's deadline cannot pass first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_while_leader_is_a_typed_loss() {
    use tenure_testkit::proxy::{Mode, Proxy};

    let zk = common::shared().await;
    let root = common::unique_root("expire");
    let proxy = Proxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], zk.port())))
        .await
        .unwrap();
    let backend_a = Arc::new(common::connect(&proxy.local_addr().to_string(), &root).await);
    let a = Election::builder(backend_a.clone(), "svc")
        .ttl(Duration::from_secs(4))
        .build()
        .unwrap();
    let b = election(
        common::dyn_backend(&zk.connect_string(), &root).await,
        "svc",
    );
    let la = a.campaign("a").await.unwrap();
    let b2 = b.clone();
    let pending = tokio::spawn(async move { b2.campaign("b").await });
    wait_candidates(&b, 2).await;

    let session = backend_a
        .lease_session(la.entry().lease)
        .expect("lease session");
    proxy.set_mode(Mode::Blackhole);
    let killed_at = Instant::now();
    let killer = within(
        Duration::from_secs(5),
        "killer connects",
        zk::Client::connector()
            .with_session(session)
            .connect(&zk.connect_string()),
    )
    .await
    .unwrap();
    drop(killer); // closes the session: the leader's node goes with it
    wait_candidates(&b, 1).await;
    assert!(la.is_leader(), "the cut-off leader has not noticed yet");
    proxy.set_mode(Mode::Drop);
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.set_mode(Mode::Pass);
    let reason = within(Duration::from_secs(10), "loss", la.lost()).await;
    println!(
        "loss after session kill: {reason} in {:?}",
        killed_at.elapsed()
    );
    assert!(
        matches!(reason, LossReason::LeaseExpired | LossReason::EntryDeleted),
        "{reason:?}"
    );
    assert!(!la.is_leader());
    let lb = within(Duration::from_secs(10), "b elected", pending)
        .await
        .unwrap()
        .unwrap();
    assert!(lb.token() > la.token());
}

/// An operator deletes the leader's node (`zkCli.sh delete`): the leader
/// steps down with `EntryDeleted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_node_deleted_by_an_operator_is_entry_deleted() {
    let zk = common::shared().await;
    let root = common::unique_root("operator");
    let a = election(
        common::dyn_backend(&zk.connect_string(), &root).await,
        "svc",
    );
    let la = a.campaign("a").await.unwrap();
    let operator = zk::Client::connect(&zk.connect_string()).await.unwrap();
    operator
        .delete(&format!("{root}/{}", la.entry().key), None)
        .await
        .unwrap();
    let reason = within(Duration::from_secs(10), "loss", la.lost()).await;
    assert_eq!(reason, LossReason::EntryDeleted);
    assert!(!la.is_leader());
}

/// The server stops answering (frozen): the leader steps down on its own
/// deadline, before the server could expire the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_past_the_deadline_steps_down() {
    let zk = common::own_server().await;
    let a = election(
        common::dyn_backend(&zk.connect_string(), "/frozen").await,
        "svc",
    );
    let la = a.campaign("a").await.unwrap();
    zk.pause().unwrap();
    let frozen_at = Instant::now();
    let reason = within(TTL * 4, "loss", la.lost()).await;
    let after = frozen_at.elapsed();
    zk.resume().unwrap();
    println!("stepped down {after:?} after the server froze (TTL {TTL:?})");
    assert_eq!(reason, LossReason::DeadlineExceeded);
}

/// 100 candidates: exactly one leads; when it resigns, exactly one
/// candidate (its successor) wakes up and reads, once, its own entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_candidates_one_leader_and_no_herd() {
    let zk = common::shared().await;
    let root = common::unique_root("herd");
    let counting = Arc::new(Counting::new(
        common::dyn_backend(&zk.connect_string(), &root).await,
    ));
    let backend: DynBackend = counting.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let e = Election::builder(backend.clone(), "herd")
            .ttl(Duration::from_secs(4))
            .build()
            .unwrap();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let l = e.campaign(format!("c{i}")).await;
            let _ = tx.send((i, l));
            std::future::pending::<()>().await;
        }));
    }
    let observer = Election::builder(backend.clone(), "herd")
        .ttl(Duration::from_secs(4))
        .build()
        .unwrap();
    // Until all are queued, a campaign that fails ends the test with its
    // error at once (the leader may be elected before the queue is full).
    let mut elected = None;
    {
        let queued = wait_candidates(&observer, 100);
        tokio::pin!(queued);
        loop {
            tokio::select! {
                () = &mut queued => break,
                Some((i, l)) = rx.recv() => match l {
                    Ok(l) => {
                        assert!(elected.is_none(), "a second leader c{i}");
                        elected = Some((i, l));
                    }
                    Err(e) => panic!("candidate c{i} failed to campaign: {e}"),
                },
            }
        }
    }
    let (first, l1) = match elected {
        Some(first) => first,
        None => {
            let (i, l) = within(Duration::from_secs(10), "first leader", rx.recv())
                .await
                .unwrap();
            (i, l.unwrap_or_else(|e| panic!("candidate c{i}: {e}")))
        }
    };
    // Everyone is in place: nobody else may lead.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        rx.try_recv().is_err(),
        "a second leader while {first} leads"
    );
    let queue = observer.candidates().await.unwrap();
    assert_eq!(
        queue[0].key,
        l1.entry().key,
        "the leader is the head of the queue"
    );
    let successor_value = queue[1].value.clone();

    let reads_before = counting.counts();
    let started = Instant::now();
    l1.resign().await.expect("resign");
    let (second, l2) = within(Duration::from_secs(10), "successor", rx.recv())
        .await
        .unwrap();
    let l2 = l2.unwrap();
    println!("100 candidates: handover {:?}", started.elapsed());
    assert_eq!(l2.entry().value, successor_value, "the next in line leads");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let woken = counting.counts().since(&reads_before);
    // Only the successor reads, once: its own entry, not the queue (its
    // predecessor was first, so nobody else can be ahead of it).
    assert_eq!(
        (woken.reads, woken.candidate_reads),
        (1, 0),
        "reads after the leader left (only the successor {second}, of its own entry)"
    );
    assert!(rx.try_recv().is_err(), "a third leader");
    for t in tasks {
        t.abort();
    }
    drop(l2);
}

/// A 3-server ensemble loses its quorum leader: elections go on (the
/// clients move to the survivors), and the member comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_member_killed_election_continues() {
    let mut ensemble = tenure_testkit::zk_server::ZkEnsemble::start(3)
        .await
        .unwrap_or_else(|e| panic!("cannot start a ZooKeeper ensemble: {e}"));
    let connect = ensemble.connect_string();
    let ttl = Duration::from_secs(4);
    let mk = |b: DynBackend| Election::builder(b, "svc").ttl(ttl).build().unwrap();
    let a = mk(common::dyn_backend(&connect, "/ens").await);
    let b = mk(common::dyn_backend(&connect, "/ens").await);
    let la = within(Duration::from_secs(20), "a elected", a.campaign("a"))
        .await
        .unwrap();
    let b2 = b.clone();
    let pending = tokio::spawn(async move { b2.campaign("b").await });
    wait_candidates(&a, 2).await;

    let leader = ensemble.leader().await.expect("a quorum leader");
    ensemble.kill(leader).await.unwrap();
    // The survivors elect a new quorum leader; sessions move to them.
    let reason_or_resign = tokio::time::timeout(Duration::from_secs(2), la.lost()).await;
    println!(
        "after killing member {leader}: leader a {:?}",
        reason_or_resign.ok()
    );
    if la.is_leader() {
        la.resign().await.expect("resign");
    }
    let lb = within(Duration::from_secs(30), "b elected", pending)
        .await
        .unwrap()
        .unwrap();
    assert!(lb.is_leader());
    ensemble.restart(leader).await.unwrap();
    assert!(
        ensemble.mode(leader).await.is_some(),
        "member {leader} serves again"
    );
}
