//! `observe_all` on a real PostgreSQL server: one statement lists the
//! elections, listed again every third of the bound (no watch for new
//! ones); each election is followed by its own observer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn observe_all_follows_every_election_under_the_prefix() {
    let server = common::server().await;
    let backend = common::dyn_backend(&server.url()).await;
    tenure_testkit::all_elections::every_election(
        backend,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await;
}
