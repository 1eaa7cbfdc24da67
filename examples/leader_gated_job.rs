//! A periodic job that runs only on the leader, written with the
//! client-go style callbacks, and fenced: every report it writes goes
//! through `Leadership::guarded_put`, which the backend refuses once the
//! writer's entry is gone.
//!
//! Two workers, `node-a` and `node-b`, run the job "compact" on the
//! in-memory backend. `node-a` leads and writes reports. Then its
//! connection turns very slow, as in a long GC pause or a congested link:
//! a report it sent while it still led reaches the backend only after its
//! lease has expired and `node-b` has taken over, and the backend rejects
//! it. `node-b` carries on, and shuts down cleanly at the end.
//!
//! The slow link is one of the in-memory backend's fault knobs. With
//! `--backend URL` the same workers run on another backend, and `node-a`
//! shuts down instead of slowing down: `node-b` takes over at once.
//!
//! ```text
//! cargo run --example leader_gated_job
//! cargo run --features etcd --example leader_gated_job -- --backend etcd://127.0.0.1:2379
//! ```

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tenure::memory::MemoryBackend;
use tenure::{Callbacks, CancellationToken, DynBackend, Election, Error, LeaderContext};

const TTL: Duration = Duration::from_secs(2);
const PERIOD: Duration = Duration::from_millis(500);
const REPORT_KEY: &str = "jobs/compact-reports/last";

/// One run of the job: "compacts" and writes a fenced report. The write
/// runs as its own task, like a request already on the wire: stopping the
/// job does not recall it.
fn run_job(
    who: &'static str,
    ctx: &LeaderContext,
    run: u32,
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let report = format!("run {run} by {who} under token {}", ctx.token());
        let sent = start.elapsed().as_secs_f64();
        let at = || start.elapsed().as_secs_f64();
        match ctx
            .leadership()
            .guarded_put(REPORT_KEY, report.clone())
            .await
        {
            Ok(rev) => println!(
                "[{:>6.3}s] {who}: wrote \"{report}\" (revision {rev})",
                at()
            ),
            Err(e @ Error::NotLeader { .. }) => println!(
                "[{:>6.3}s] {who}: report sent at {sent:.3}s REJECTED by the backend: {e}",
                at()
            ),
            Err(e) => println!("[{:>6.3}s] {who}: report failed: {e}", at()),
        }
    })
}

fn worker(
    backend: DynBackend,
    who: &'static str,
    start: Instant,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<tenure::Result<()>> {
    let callbacks = Callbacks::new()
        .on_started_leading(move |ctx| async move {
            println!(
                "[{:>6.3}s] {who}: started leading (token {}); running the job every {PERIOD:?}",
                start.elapsed().as_secs_f64(),
                ctx.token()
            );
            let mut run = 0;
            loop {
                run += 1;
                // Stop the moment leadership is lost, even mid-write.
                let write = run_job(who, &ctx, run, start);
                tokio::select! {
                    () = ctx.stopped() => break,
                    _ = write => {}
                }
                tokio::select! {
                    () = ctx.stopped() => break,
                    () = tokio::time::sleep(PERIOD) => {}
                }
            }
        })
        .on_stopped_leading(move |reason| {
            println!(
                "[{:>6.3}s] {who}: stopped leading ({reason})",
                start.elapsed().as_secs_f64()
            )
        });
    tokio::spawn(async move {
        let election = Election::builder(backend, "jobs/compact")
            .ttl(TTL)
            // Long enough that node-a's slow write is answered by the
            // backend rather than timed out locally.
            .request_timeout(Duration::from_secs(5))
            .build()?;
        election.run(who, callbacks, shutdown).await
    })
}

#[tokio::main]
async fn main() -> tenure::Result<()> {
    let url = common::backend_url("memory://");
    let start = Instant::now();
    let shutdown = CancellationToken::new();
    let stop_a = shutdown.child_token();
    // On the in-memory backend, two clients of one server: node-a's link
    // can then be slowed down alone.
    let server = MemoryBackend::new();
    let (a, b) = (server.client(), server.client());
    let (backend_a, backend_b): (DynBackend, DynBackend) = if common::is_memory(&url) {
        (Arc::new(a.clone()), Arc::new(b))
    } else {
        (tenure::connect(&url).await?, tenure::connect(&url).await?)
    };

    let node_a = worker(backend_a, "node-a", start, stop_a.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let node_b = worker(backend_b.clone(), "node-b", start, shutdown.child_token());
    tokio::time::sleep(Duration::from_millis(1200)).await;

    if common::is_memory(&url) {
        println!(
            "[{:>6.3}s] -- node-a's link turns slow: every request now takes 3 s",
            start.elapsed().as_secs_f64()
        );
        a.set_latency(Duration::from_secs(3));
        tokio::time::sleep(Duration::from_secs(5)).await;
        // node-a recovers and queues up behind node-b.
        a.set_latency(Duration::ZERO);
    } else {
        println!(
            "[{:>6.3}s] -- node-a shuts down: it stops its job, then resigns",
            start.elapsed().as_secs_f64()
        );
        stop_a.cancel();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "[{:>6.3}s] -- shutting down both workers",
        start.elapsed().as_secs_f64()
    );
    shutdown.cancel();
    for node in [node_a, node_b] {
        node.await.map_err(|e| Error::InvalidConfig {
            field: "worker",
            reason: e.to_string(),
        })??;
    }
    let (last, _) = backend_b.get(REPORT_KEY).await?;
    if let Some(e) = last {
        println!(
            "last report in the store: \"{}\"",
            String::from_utf8_lossy(&e.value)
        );
    }
    Ok(())
}
