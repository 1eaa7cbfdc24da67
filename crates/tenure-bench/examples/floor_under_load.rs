//! Whether the raw hand-over floor itself grows with the number of idle
//! candidates: etcd's delete → watcher notified (raw clients, as the
//! bench's floor), first on a quiet server, then with N candidates of
//! another election queued and kept alive on one tenure connection (as
//! the scale section holds them).
//!
//! ```text
//! cargo run --release -p tenure-bench --example floor_under_load -- 1000
//! ```

#![allow(clippy::unwrap_used)] // a measuring tool: fail loudly

use std::time::{Duration, Instant};

use etcd_client::{Client, EventType};
use futures::StreamExt;
use tenure::backend::{WatchEvent, WatchScope};
use tenure::{DynBackend, Election};
use tenure_bench::example::{next_event, raw_client};
use tenure_bench::stats::Distribution;

async fn floor(a: &mut Client, b: &mut Client, runs: usize) -> Vec<Duration> {
    let key = "floor-under-load";
    let mut events = b.watch(key, None).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..runs {
        a.put(key, "v", None).await.unwrap();
        next_event(&mut events, EventType::Put).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        a.delete(key, None).await.unwrap();
        next_event(&mut events, EventType::Delete).await.unwrap();
        out.push(t0.elapsed());
    }
    out
}

/// As [`floor`], seen by a successor on `conn`: its watch of the key
/// reports the delete, then it reads one key; both through `conn`.
async fn through(a: &mut Client, conn: &DynBackend, runs: usize) -> Vec<Duration> {
    let key = "through-load";
    let mut out = Vec::new();
    for _ in 0..runs {
        let rev = a
            .put(key, "v", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        let mut events = conn
            .watch(WatchScope::Key(key.into()), u64::try_from(rev).unwrap() + 1)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        a.delete(key, None).await.unwrap();
        while let Some(e) = events.next().await {
            if matches!(e.unwrap(), WatchEvent::Delete { .. }) {
                break;
            }
        }
        conn.get("floor-under-load-own").await.unwrap();
        out.push(t0.elapsed());
    }
    out
}

fn median_ms(v: &[Duration]) -> f64 {
    Distribution::of_millis(v).map_or(f64::NAN, |d| d.median)
}

#[tokio::main]
async fn main() {
    let n = tenure_bench::example::size_arg(1000);
    let (server, url) = tenure_bench::example::etcd().await.unwrap();
    let mut a = raw_client(&server).await.unwrap();
    let mut b = raw_client(&server).await.unwrap();
    let quiet = floor(&mut a, &mut b, 50).await;
    let conn: DynBackend = tenure::connect(&url).await.unwrap();
    let quiet_conn = through(&mut a, &conn, 50).await;
    let mut tasks = Vec::new();
    for i in 0..n {
        let e = Election::builder(conn.clone(), "load")
            .ttl(Duration::from_secs(6))
            .build()
            .unwrap();
        tasks.push(tokio::spawn(async move {
            if let Ok(l) = e.campaign(format!("c{i}")).await {
                let _ = l.lost().await;
            }
        }));
    }
    let observer = Election::builder(conn.clone(), "load").build().unwrap();
    while observer.candidates().await.map(|c| c.len()).unwrap_or(0) < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let loaded = floor(&mut a, &mut b, 50).await;
    let loaded_conn = through(&mut a, &conn, 50).await;
    let quiet_again = {
        for t in &tasks {
            t.abort();
        }
        drop(tasks);
        tokio::time::sleep(Duration::from_secs(7)).await;
        floor(&mut a, &mut b, 50).await
    };
    println!(
        "raw floor median: quiet {:.2} ms; with {n} candidates kept alive {:.2} ms ({:.2}×); quiet again {:.2} ms",
        median_ms(&quiet),
        median_ms(&loaded),
        median_ms(&loaded) / median_ms(&quiet),
        median_ms(&quiet_again)
    );
    println!(
        "through the candidates' connection (watch event, then one get): quiet {:.2} ms; with {n} candidates on it {:.2} ms ({:.2}×)",
        median_ms(&quiet_conn),
        median_ms(&loaded_conn),
        median_ms(&loaded_conn) / median_ms(&quiet_conn)
    );
}
