//! `observe_all` on a real etcd server: one range read lists the
//! elections, one prefix watch finds new ones.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn observe_all_follows_every_election_under_the_prefix() {
    let server = common::server().await;
    let backend = common::dyn_backend(&server.endpoint()).await;
    tenure_testkit::all_elections::every_election(
        backend,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await;
}
