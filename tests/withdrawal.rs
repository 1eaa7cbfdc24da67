//! Withdrawal you can await: a replica that stops (follower or leader)
//! has deleted its entry by the time `Election::run` returns, so a
//! process may exit right after without leaving its entry ahead of the
//! others; `Election::close` does the same for hand-written campaigns.
//!
//! Each replica runs on a runtime of its own, on a thread of its own, and
//! that runtime is dropped as soon as `run` returns: background tasks die
//! with it, exactly as they do when a process exits. Checked on real etcd
//! and ZooKeeper servers.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::time::Duration;

use futures::StreamExt;
use tenure::{Callbacks, DynBackend, Election, Observation};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_secs(2);

/// Only a hang guard: the events waited for come in milliseconds.
const GUARD: Duration = Duration::from_secs(30);

/// One replica: a thread with its own runtime and connection, running
/// `Election::run` until stopped, then dropping the runtime.
struct Replica {
    stop: CancellationToken,
    thread: std::thread::JoinHandle<tenure::Result<()>>,
    elected: mpsc::UnboundedReceiver<u64>,
}

impl Replica {
    fn start(url: &str, election: &str, proposal: &str) -> Replica {
        let (url, election, proposal) = (url.to_owned(), election.to_owned(), proposal.to_owned());
        let stop = CancellationToken::new();
        let (tx, elected) = mpsc::unbounded_channel();
        let token = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let result = rt.block_on(async move {
                let backend = tenure::connect(&url).await?;
                let e = Election::builder(backend, election).ttl(TTL).build()?;
                let callbacks = Callbacks::new().on_started_leading(move |ctx| {
                    let _ = tx.send(ctx.token());
                    async move { ctx.stopped().await }
                });
                e.run(proposal, callbacks, token).await
            });
            // As at process exit: whatever `run` left to background tasks
            // dies here.
            drop(rt);
            result
        });
        Replica {
            stop,
            thread,
            elected,
        }
    }

    async fn elected(&mut self) -> u64 {
        tokio::time::timeout(GUARD, self.elected.recv())
            .await
            .expect("never elected")
            .expect("replica ended before it was elected")
    }

    /// Stops it and waits until its runtime is gone.
    async fn stop(self) {
        self.stop.cancel();
        let thread = self.thread;
        let joined = tokio::task::spawn_blocking(move || thread.join());
        let result = tokio::time::timeout(GUARD, joined)
            .await
            .expect("run did not return")
            .unwrap()
            .unwrap();
        result.unwrap();
    }
}

async fn proposals(checker: &Election) -> Vec<String> {
    checker
        .candidates()
        .await
        .unwrap()
        .iter()
        .map(|e| String::from_utf8_lossy(&e.value).into_owned())
        .collect()
}

/// Waits until the queue holds exactly `want` (the replicas' own
/// progress, not time, is what the test waits for).
async fn wait_queue(checker: &Election, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let now = proposals(checker).await;
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue never became {want:?}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Stop follower B, then leader A, then start C: each stopped replica's
/// entry is gone the moment its `run` has returned (read at once, no
/// waiting), and an observer never sees B, which never led, as leader.
async fn rolling_restart(url: &str) {
    let name = format!("rolling-{:x}", fastrand::u64(..));
    let backend: DynBackend = tenure::connect(url).await.unwrap();
    let checker = Election::builder(backend, name.clone())
        .ttl(TTL)
        .build()
        .unwrap();
    let mut observer = checker.observe();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(async move {
        while let Some(o) = observer.next().await {
            if seen_tx.send(o).is_err() {
                return;
            }
        }
    });

    let mut a = Replica::start(url, &name, "A");
    a.elected().await;
    // The observer's stream holds the latest state (a slow reader skips
    // intermediate ones), so wait for the states that last: A while A
    // leads, then C.
    let mut leaders = Vec::new();
    next_leader(&mut seen, &mut leaders, "A").await;
    let b = Replica::start(url, &name, "B");
    wait_queue(&checker, &["A", "B"]).await;

    b.stop().await;
    assert_eq!(proposals(&checker).await, ["A"], "B's entry outlived B");
    a.stop().await;
    assert!(proposals(&checker).await.is_empty(), "A's entry outlived A");

    let mut c = Replica::start(url, &name, "C");
    c.elected().await;
    // Everything the observer saw up to C is A, nobody, or C; a dead B
    // left at the head of the queue would have been the latest state for
    // a whole TTL.
    next_leader(&mut seen, &mut leaders, "C").await;
    assert!(
        !leaders.contains(&"B".to_owned()),
        "dead B shown as leader: {leaders:?}"
    );
    c.stop().await;
    assert!(proposals(&checker).await.is_empty());
    recorder.abort();
}

/// Reads observations into `leaders` (proposals, or the observation
/// itself when nobody is confirmed) until `want` leads.
async fn next_leader(
    seen: &mut mpsc::UnboundedReceiver<Observation>,
    leaders: &mut Vec<String>,
    want: &str,
) {
    let deadline = tokio::time::Instant::now() + GUARD;
    while leaders.last().map(String::as_str) != Some(want) {
        let o = tokio::time::timeout_at(deadline, seen.recv())
            .await
            .unwrap_or_else(|_| panic!("observer never saw {want}: {leaders:?}"))
            .unwrap();
        leaders.push(match o {
            Observation::Leader(l) => String::from_utf8_lossy(&l.value).into_owned(),
            other => format!("{other:?}"),
        });
    }
}

/// A hand-written campaign: a dropped `Leadership` and a dropped campaign
/// future only start their release; `Election::close` awaits it.
async fn close_awaits_every_campaign(url: &str) {
    let name = format!("close-{:x}", fastrand::u64(..));
    let backend: DynBackend = tenure::connect(url).await.unwrap();
    let checker = Election::builder(backend, name.clone())
        .ttl(TTL)
        .build()
        .unwrap();
    let (url2, name2) = (url.to_owned(), name.clone());
    let (queued_tx, mut queued) = mpsc::unbounded_channel::<()>();
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    let process = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let backend = tenure::connect(&url2).await.unwrap();
            let e = Election::builder(backend, name2).ttl(TTL).build().unwrap();
            let leader = e.campaign("L").await.unwrap();
            let waiting = tokio::spawn({
                let e = e.clone();
                async move { e.campaign("F").await }
            });
            queued_tx.send(()).unwrap();
            go.await.unwrap();
            waiting.abort();
            drop(leader);
            e.close().await;
            // Closed: no new campaign starts.
            assert!(matches!(
                e.campaign("late").await,
                Err(tenure::Error::Cancelled(_))
            ));
        });
        drop(rt);
    });
    queued.recv().await.unwrap();
    wait_queue(&checker, &["L", "F"]).await;
    go_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || process.join())
        .await
        .unwrap()
        .unwrap();
    assert!(
        proposals(&checker).await.is_empty(),
        "entries outlived the process"
    );
}

#[cfg(feature = "etcd")]
mod etcd {
    use tenure_testkit::etcd_server::EtcdServer;

    fn url(server: &EtcdServer) -> String {
        let host = server.endpoint().trim_start_matches("http://").to_owned();
        format!("etcd://{host}/withdrawal/")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rolling_restart_leaves_no_dead_leader() {
        let server = EtcdServer::start().await.unwrap();
        super::rolling_restart(&url(&server)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn close_awaits_every_campaign() {
        let server = EtcdServer::start().await.unwrap();
        super::close_awaits_every_campaign(&url(&server)).await;
    }
}

#[cfg(feature = "zookeeper")]
mod zookeeper {
    use tenure_testkit::zk_server::ZkServer;

    async fn url() -> String {
        let server = ZkServer::shared().await.unwrap();
        format!(
            "zk://{}/withdrawal-{:x}",
            server.connect_string(),
            fastrand::u64(..)
        )
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rolling_restart_leaves_no_dead_leader() {
        super::rolling_restart(&url().await).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn close_awaits_every_campaign() {
        super::close_awaits_every_campaign(&url().await).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_close_awaits_every_campaign() {
    // Memory backends live in one process: the same checks, one runtime.
    let backend: DynBackend = tenure::connect("memory://withdrawal").await.unwrap();
    let e = Election::builder(backend.clone(), "e")
        .ttl(TTL)
        .build()
        .unwrap();
    let leader = e.campaign("L").await.unwrap();
    let waiting = tokio::spawn({
        let e = e.clone();
        async move { e.campaign("F").await }
    });
    wait_queue(&e, &["L", "F"]).await;
    waiting.abort();
    drop(leader);
    e.close().await;
    assert!(proposals(&e).await.is_empty());
}
