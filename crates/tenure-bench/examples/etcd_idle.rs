//! N idle candidates on one etcd connection, as the footprint section
//! queues them (sessions first, in batches of 500; then one campaign per
//! session, elections of at most 1000), with the time of every failure.
//!
//! ```text
//! RUST_LOG=tenure_etcd=debug cargo run --release -p tenure-bench --example etcd_idle -- 10000
//! ```

#![allow(clippy::unwrap_used)] // a measuring tool: fail loudly

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tenure::{DynBackend, Election, Session};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let n = tenure_bench::example::size_arg(10_000);
    let (_server, url) = tenure_bench::example::etcd().await.unwrap();
    let b: DynBackend = tenure::connect(&url).await.unwrap();
    let ttl = Duration::from_secs(6);
    let t0 = Instant::now();
    let ms = move || t0.elapsed().as_millis();
    let mut sessions = Vec::with_capacity(n);
    while sessions.len() < n {
        let batch = (n - sessions.len()).min(500);
        for s in join_all((0..batch).map(|_| Session::new(b.clone(), ttl))).await {
            sessions.push(s.unwrap());
        }
    }
    eprintln!("{:>6} ms: {n} sessions", ms());
    let failed = Arc::new(AtomicUsize::new(0));
    let elected = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, s) in sessions.iter().enumerate() {
        let e = Election::builder(b.clone(), format!("idle-{}", i / 1000))
            .session(s.clone())
            .build()
            .unwrap();
        let (failed, elected) = (failed.clone(), elected.clone());
        tasks.push(tokio::spawn(async move {
            match e.campaign(format!("c{i}")).await {
                Ok(l) => {
                    elected.fetch_add(1, Ordering::Relaxed);
                    let _ = l.lost().await;
                }
                Err(err) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("{:>6} ms: candidate {i}: {err}", ms());
                    }
                }
            }
        }));
    }
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut queued = 0;
        for g in 0..n.div_ceil(1000) {
            let o = Election::builder(b.clone(), format!("idle-{g}"))
                .build()
                .unwrap();
            queued += o.candidates().await.map(|c| c.len()).unwrap_or(0);
        }
        eprintln!(
            "{:>6} ms: queued {queued}, leaders {}, failed {}",
            ms(),
            elected.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed)
        );
    }
}
