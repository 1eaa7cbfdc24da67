//! `observe_all` on a real ZooKeeper server: a walk of the tree lists the
//! elections, a persistent recursive watch on the root finds new ones.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn observe_all_follows_every_election_under_the_prefix() {
    let server = common::shared().await;
    let root = common::unique_root("all");
    let backend = common::dyn_backend(&server.connect_string(), &root).await;
    tenure_testkit::all_elections::every_election(
        backend,
        Duration::from_millis(1500),
        Duration::from_secs(30),
    )
    .await;
}
