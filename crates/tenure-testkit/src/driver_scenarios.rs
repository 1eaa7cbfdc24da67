//! Election scenarios through the driver API (`Election`, `Leadership`)
//! that every real backend's tests run the same way: a crashed leader's
//! successor, and a chain of resign hand-overs. Each takes a `connect`
//! function that opens a fresh connection to the backend under test and
//! returns what it measured; the caller asserts its backend's bound.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tenure_core::{DynBackend, Election};

use crate::counting::eventually;

/// Opens a fresh connection to the backend under test.
pub type Connect = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = DynBackend> + Send>> + Send + Sync>;

/// An election named `name` with lease TTL `ttl` on `backend`.
///
/// # Panics
/// If the name or TTL is refused (a test set-up error).
pub fn election(backend: DynBackend, name: &str, ttl: Duration) -> Election {
    match Election::builder(backend, name).ttl(ttl).build() {
        Ok(e) => e,
        Err(err) => panic!("election {name:?}: {err}"),
    }
}

/// Waits (up to `within`) until `e` lists exactly `n` candidates.
///
/// # Panics
/// If it does not happen in time.
pub async fn wait_queued(e: &Election, n: usize, within: Duration) {
    let ok = eventually(within, || async {
        e.candidates().await.map(|c| c.len() == n).unwrap_or(false)
    })
    .await;
    assert!(ok, "expected {n} candidates within {within:?}");
}

/// A leader on its own runtime and connection that can "crash": when the
/// returned sender is used (or dropped), its runtime is shut down, so
/// nothing resigns, deletes or revokes; only the lease's expiry removes
/// its entry. The receiver yields its token once it is elected.
pub fn crashable_leader(
    connect: Connect,
    name: &'static str,
    ttl: Duration,
) -> (std::sync::mpsc::Receiver<u64>, std::sync::mpsc::Sender<()>) {
    let (elected_tx, elected_rx) = std::sync::mpsc::channel();
    let (crash_tx, crash_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("crashable leader's runtime: {e}"),
        };
        let leadership = rt.block_on(async {
            let b = connect().await;
            match election(b, name, ttl).campaign("crashy").await {
                Ok(l) => l,
                Err(e) => panic!("crashable leader's campaign: {e}"),
            }
        });
        let _ = elected_tx.send(leadership.token());
        let _ = crash_rx.recv();
        rt.shutdown_background();
        // Nothing may run on its behalf any more: no resign on drop.
        std::mem::forget(leadership);
    });
    (elected_rx, crash_tx)
}

/// A leader crashes while a successor waits in `name`: returns the time
/// from the crash to the successor's election, having checked that the
/// successor leads with a greater token.
///
/// # Panics
/// If no successor is elected within the TTL plus `slack`.
pub async fn crash_failover(
    connect: Connect,
    name: &'static str,
    ttl: Duration,
    slack: Duration,
) -> Duration {
    let (elected, crash) = crashable_leader(connect.clone(), name, ttl);
    let token_a = match tokio::task::spawn_blocking(move || elected.recv_timeout(slack * 4)).await {
        Ok(Ok(t)) => t,
        other => panic!("the first candidate was not elected: {other:?}"),
    };
    let eb = election(connect().await, name, ttl);
    let follower = {
        let eb = eb.clone();
        tokio::spawn(async move { eb.campaign("b").await })
    };
    wait_queued(&eb, 2, slack * 4).await;
    let t0 = Instant::now();
    let _ = crash.send(());
    let lb = match tokio::time::timeout(ttl + slack, follower).await {
        Ok(Ok(Ok(l))) => l,
        other => panic!("no successor within {:?}: {other:?}", ttl + slack),
    };
    let failover = t0.elapsed();
    println!("failover after leader crash: {failover:?} (TTL {ttl:?})");
    assert!(lb.token() > token_a, "fencing token must increase");
    assert!(lb.is_leader());
    failover
}

/// Five resign hand-overs between two connections in `name`: returns the
/// times from `resign()` to the successor's election, sorted, having
/// checked that every successor's token is greater.
///
/// # Panics
/// If a successor is not elected within 5 s.
pub async fn resign_handovers(connect: Connect, name: &str, ttl: Duration) -> Vec<Duration> {
    let ea = election(connect().await, name, ttl);
    let eb = election(connect().await, name, ttl);
    let mut leader = match ea.campaign("a").await {
        Ok(l) => l,
        Err(e) => panic!("first campaign: {e}"),
    };
    let (mut waiting, mut idle) = (eb, ea);
    let mut times = Vec::new();
    let mut last_token = leader.token();
    for round in 0..5 {
        let value = format!("r{round}");
        let next = {
            let w = waiting.clone();
            tokio::spawn(async move { w.campaign(value).await })
        };
        wait_queued(&waiting, 2, Duration::from_secs(20)).await;
        let t0 = Instant::now();
        let _ = leader.resign().await;
        leader = match tokio::time::timeout(Duration::from_secs(5), next).await {
            Ok(Ok(Ok(l))) => l,
            other => panic!("no successor after resign: {other:?}"),
        };
        times.push(t0.elapsed());
        assert!(leader.token() > last_token, "fencing token must increase");
        last_token = leader.token();
        std::mem::swap(&mut waiting, &mut idle);
    }
    times.sort();
    println!(
        "handover after resign: median {:?}, max {:?}",
        times[2], times[4]
    );
    times
}
