//! Which write ends a term faster on etcd, seen from a watcher of the
//! entry: deleting the key, or revoking the lease it is bound to.
//!
//! ```text
//! cargo run --release -p tenure-bench --example revoke_vs_delete
//! ```

#![allow(clippy::unwrap_used)] // a measuring tool: fail loudly

use std::time::Instant;

use etcd_client::{EventType, PutOptions};
use tenure_bench::example::{next_event, watch_from};
use tenure_bench::stats::Distribution;

#[tokio::main]
async fn main() {
    let (_server, mut a, mut b) = tenure_bench::example::etcd_with_two_clients()
        .await
        .unwrap();
    for round in 0..3 {
        for revoke in [false, true] {
            let mut times = Vec::new();
            let mut acks = Vec::new();
            for i in 0..40 {
                let key = format!("k{round}-{revoke}-{i}");
                let lease = a.lease_grant(5, None).await.unwrap().id();
                a.put(key.as_str(), "v", Some(PutOptions::new().with_lease(lease)))
                    .await
                    .unwrap();
                let rev = a
                    .get(key.as_str(), None)
                    .await
                    .unwrap()
                    .header()
                    .unwrap()
                    .revision();
                let mut events = watch_from(&mut b, &key, rev + 1).await.unwrap();
                let t0 = Instant::now();
                let ack = if revoke {
                    a.lease_revoke(lease).await.map(|_| ()).unwrap();
                    t0.elapsed()
                } else {
                    a.delete(key.as_str(), None).await.map(|_| ()).unwrap();
                    t0.elapsed()
                };
                next_event(&mut events, EventType::Delete).await.unwrap();
                times.push(t0.elapsed());
                acks.push(ack);
                if !revoke {
                    a.lease_revoke(lease).await.unwrap();
                }
            }
            let (notified, ack) = (
                Distribution::of_millis(&times).unwrap(),
                Distribution::of_millis(&acks).unwrap(),
            );
            println!(
                "{:7}: watcher notified median {:.2} ms (p90 {:.2}); writer's reply median {:.2} ms",
                if revoke { "revoke" } else { "delete" },
                notified.median,
                notified.p90,
                ack.median,
            );
        }
    }
}
