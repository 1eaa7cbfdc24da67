//! Which request ends a term faster on ZooKeeper, seen from a watcher of
//! the candidate's node: deleting the ephemeral node, or closing the
//! session that owns it.
//!
//! ```text
//! cargo run --release -p tenure-bench --example zk_close_vs_delete
//! ```

#![allow(clippy::unwrap_used)] // a measuring tool: fail loudly

use std::time::Instant;

use tenure_bench::stats::Distribution;
use zookeeper_client as zk;

#[tokio::main]
async fn main() {
    let server = tenure_testkit::zk_server::ZkServer::start().await.unwrap();
    let connect = server.connect_string();
    let watcher = zk::Client::connect(&connect).await.unwrap();
    for round in 0..3 {
        for close in [false, true] {
            let mut notified = Vec::new();
            let mut replies = Vec::new();
            for i in 0..40 {
                let owner = zk::Client::connect(&connect).await.unwrap();
                let path = format!("/n{round}-{close}-{i}");
                owner
                    .create(
                        &path,
                        b"v",
                        &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all()),
                    )
                    .await
                    .unwrap();
                let (_, watch) = watcher.check_and_watch_stat(&path).await.unwrap();
                let t0 = Instant::now();
                if close {
                    let mut state = owner.state_watcher();
                    drop(owner);
                    while !state.changed().await.is_terminated() {}
                } else {
                    owner.delete(&path, None).await.unwrap();
                }
                replies.push(t0.elapsed());
                watch.changed().await;
                notified.push(t0.elapsed());
            }
            let (notified, reply) = (
                Distribution::of_millis(&notified).unwrap(),
                Distribution::of_millis(&replies).unwrap(),
            );
            println!(
                "{:6}: watcher notified median {:.2} ms (p90 {:.2}); owner's reply median {:.2} ms",
                if close { "close" } else { "delete" },
                notified.median,
                notified.p90,
                reply.median,
            );
        }
    }
}
