//! Heap profile of idle candidates by allocation site, with dhat: the
//! footprint section's setup (elections of `footprint::GROUP` candidates,
//! one lease each), profiled instead of counted.
//!
//! ```text
//! cargo run --release -p tenure-bench --example heap_profile -- memory 1000
//! cargo run --release -p tenure-bench --example heap_profile -- etcd 1000
//! ```
//!
//! Writes `dhat-heap.json` in the current directory (open it with dhat's
//! `dh_view.html`; the "t-gmax" view is the heap with every candidate
//! queued). Also prints the sizes of the futures an idle candidate keeps.

#![allow(clippy::unwrap_used)] // a measuring tool: fail loudly

use std::sync::Arc;
use std::time::Duration;

use tenure::DynBackend;
use tenure_bench::footprint::{self, FootprintConfig};
use tenure_testkit::counting::Counting;
use tenure_testkit::etcd_server::EtcdServer;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The footprint's own heap count is not used here (dhat counts).
fn no_count() -> usize {
    0
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "memory".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mut links: Vec<(Arc<Counting>, DynBackend)> = Vec::new();
    let mut _etcd: Option<EtcdServer> = None;
    if which == "memory" {
        for _ in 0..n.div_ceil(footprint::GROUP) {
            let m = tenure::memory::MemoryBackend::new();
            let a: DynBackend = Arc::new(m.client());
            let b: DynBackend = Arc::new(m.client());
            links.push((Arc::new(Counting::new(a)), b));
        }
    } else {
        let server = EtcdServer::start().await.unwrap();
        let url = format!("etcd://{}", server.endpoint().trim_start_matches("http://"));
        let a = tenure::connect(&url).await.unwrap();
        let b = tenure::connect(&url).await.unwrap();
        links.push((Arc::new(Counting::new(a)), b));
        _etcd = Some(server);
    }
    let ttl = Duration::from_secs(6);
    {
        let b = links[0].1.clone();
        let e = tenure::Election::builder(b.clone(), "sizes")
            .build()
            .unwrap();
        let e2 = e.clone();
        let task = async move {
            if let Ok(l) = e.campaign("x").await {
                let _ = l.lost().await;
            }
        };
        let campaign = e2.campaign("x");
        let failed = tenure_bench::error::Failures::default();
        let e3 = e2.clone();
        let i = 1usize;
        let bench_task = async move {
            match e3.campaign(format!("c{i}")).await {
                Ok(l) => {
                    let _ = l.lost().await;
                }
                Err(error) => failed.record(|| format!("candidate {i}: {error}")),
            }
        };
        eprintln!(
            "bytes: the footprint's task future {}",
            std::mem::size_of_val(&bench_task)
        );
        if which == "memory" {
            let l = e2.campaign("y").await.unwrap();
            eprintln!(
                "bytes: Leadership {}, lost() future {}",
                std::mem::size_of_val(&l),
                std::mem::size_of_val(&l.lost())
            );
        }
        eprintln!(
            "bytes: campaign future {}, campaign-and-wait future {}, ElectionMachine {}, LeaseKeeper {}",
            std::mem::size_of_val(&campaign),
            std::mem::size_of_val(&task),
            std::mem::size_of::<tenure::machine::ElectionMachine>(),
            std::mem::size_of::<tenure::machine::LeaseKeeper>(),
        );
    }
    let profiler = dhat::Profiler::new_heap();
    let cfg = FootprintConfig {
        ttl,
        slices: 1,
        live_bytes: no_count,
    };
    let f = footprint::measure(&links, "profile", n, None, cfg)
        .await
        .unwrap();
    eprintln!("{n} candidates queued in {:?}", f.fill);
    drop(profiler);
}
