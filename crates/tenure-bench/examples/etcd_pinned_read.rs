//! What a successor's read of its own key costs on etcd right after its
//! predecessor's delete event at revision R: a linearizable get (a
//! ReadIndex round first), or a serializable get pinned at R (served from
//! the member's store, which has applied R since it sent the event).
//!
//! ```text
//! cargo run --release -p tenure-bench --example etcd_pinned_read
//! ```

#![allow(clippy::unwrap_used)] // a measuring tool: fail loudly

use std::time::Instant;

use etcd_client::{EventType, GetOptions};
use tenure_bench::example::{next_event, watch_from};
use tenure_bench::stats::Distribution;

#[tokio::main]
async fn main() {
    let (_server, mut a, mut b) = tenure_bench::example::etcd_with_two_clients()
        .await
        .unwrap();
    b.put("own", "v", None).await.unwrap();
    for round in 0..3 {
        for pinned in [false, true] {
            let mut reads = Vec::new();
            for i in 0..100 {
                let key = format!("k{round}-{pinned}-{i}");
                let rev = a
                    .put(key.as_str(), "v", None)
                    .await
                    .unwrap()
                    .header()
                    .unwrap()
                    .revision();
                let mut events = watch_from(&mut b, &key, rev + 1).await.unwrap();
                a.delete(key.as_str(), None).await.unwrap();
                let at = next_event(&mut events, EventType::Delete).await.unwrap();
                let t0 = Instant::now();
                let options =
                    pinned.then(|| GetOptions::new().with_serializable().with_revision(at));
                let got = b.get("own", options).await.unwrap();
                reads.push(t0.elapsed());
                assert_eq!(got.kvs().len(), 1);
            }
            let reads = Distribution::of_millis(&reads).unwrap();
            println!(
                "{:12}: read median {:.3} ms (p90 {:.3})",
                if pinned {
                    "pinned at R"
                } else {
                    "linearizable"
                },
                reads.median,
                reads.p90,
            );
        }
    }
}
