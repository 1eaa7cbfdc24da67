//! Where N candidates starting at once on one etcd connection queue up:
//! each phase of a campaign (grant, keep-alive, create, the first read of
//! the queue around the candidate's entry, the watch on its predecessor),
//! run for all N at once through the backend trait and timed per request.
//!
//! ```text
//! cargo run --release -p tenure-bench --example etcd_phases -- 1000
//! ```

#![allow(clippy::unwrap_used)] // a measuring tool: fail loudly

use std::time::{Duration, Instant};

use futures::future::join_all;
use tenure::backend::{Slot, WatchScope};
use tenure::{DynBackend, ElectionName};
use tenure_bench::stats::Distribution;

/// Prints one phase: all done, and the per-request distribution.
fn report(what: &str, t0: Instant, v: Vec<Duration>) {
    let all = t0.elapsed();
    let Some(d) = Distribution::of_millis(&v) else {
        return;
    };
    eprintln!(
        "{what:28} all {:8.1} ms | first done {:7.1} p50 {:7.1} p99 {:7.1} max {:7.1} ms",
        all.as_secs_f64() * 1e3,
        d.min,
        d.median,
        d.p99,
        d.max
    );
}

/// `f`'s output and when it was ready, since `t0`.
async fn timed<T>(t0: Instant, f: impl std::future::Future<Output = T>) -> (Duration, T) {
    let r = f.await;
    (t0.elapsed(), r)
}

#[tokio::main]
async fn main() {
    let n = tenure_bench::example::size_arg(1000);
    let (_server, url) = tenure_bench::example::etcd().await.unwrap();
    let b: DynBackend = tenure::connect(&url).await.unwrap();
    let e = ElectionName::new("phases").unwrap();
    let ttl = Duration::from_secs(6);

    let t0 = Instant::now();
    let r = join_all((0..n).map(|_| timed(t0, b.grant_lease(ttl)))).await;
    report("grant", t0, r.iter().map(|x| x.0).collect());
    let leases: Vec<_> = r.into_iter().map(|x| x.1.unwrap().id).collect();

    let t0 = Instant::now();
    let r = join_all(leases.iter().map(|l| timed(t0, b.keep_alive(*l)))).await;
    report(
        "first keep-alive (opens)",
        t0,
        r.iter().map(|x| x.0).collect(),
    );
    let t0 = Instant::now();
    let r = join_all(leases.iter().map(|l| timed(t0, b.keep_alive(*l)))).await;
    report("second keep-alive", t0, r.iter().map(|x| x.0).collect());

    let t0 = Instant::now();
    let r = join_all(
        leases
            .iter()
            .map(|l| timed(t0, b.create(&e, Slot::Queue, *l, "v".into()))),
    )
    .await;
    report("create", t0, r.iter().map(|x| x.0).collect());
    let entries: Vec<_> = r
        .into_iter()
        .map(|x| x.1.unwrap().entry().clone())
        .collect();

    let t0 = Instant::now();
    let r = join_all(entries.iter().map(|en| timed(t0, b.queue_around(&e, en)))).await;
    report("queue_around", t0, r.iter().map(|x| x.0).collect());
    let snaps: Vec<_> = r.into_iter().map(|x| x.1.unwrap()).collect();

    let t0 = Instant::now();
    let r = join_all(snaps.iter().filter(|s| s.entries.len() == 2).map(|s| {
        timed(
            t0,
            b.watch(WatchScope::Key(s.entries[0].key.clone()), s.revision + 1),
        )
    }))
    .await;
    report("watch predecessor", t0, r.iter().map(|x| x.0).collect());
    let _streams: Vec<_> = r.into_iter().map(|x| x.1.unwrap()).collect();

    let t0 = Instant::now();
    let r = join_all(leases.iter().map(|l| timed(t0, b.keep_alive(*l)))).await;
    report(
        "keep-alive with watches",
        t0,
        r.iter().map(|x| x.0).collect(),
    );
    let t0 = Instant::now();
    let r = join_all(entries.iter().map(|en| timed(t0, b.get(&en.key)))).await;
    report("get with watches", t0, r.iter().map(|x| x.0).collect());
}
