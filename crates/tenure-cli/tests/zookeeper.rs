//! `tenure` as processes against a real ZooKeeper server (started by the
//! testkit harness on a free loopback port, shared by this binary's tests;
//! every test uses its own election).

#![allow(clippy::unwrap_used)]

mod common;

use common::scenarios;
use futures::future::BoxFuture;
use tenure::ElectionName;
use tenure_testkit::zk_server::ZkServer;

async fn url() -> String {
    let server = ZkServer::shared()
        .await
        .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"));
    format!("zk://{}/tenure-cli-test", server.connect_string())
}

/// Deletes the leader's node through the backend API, as an operator
/// deleting it with `zkCli.sh delete` would.
fn delete_leader(url: String) -> impl Fn(String) -> BoxFuture<'static, ()> {
    move |election: String| {
        let url = url.clone();
        Box::pin(async move {
            let backend = tenure::connect(&url).await.unwrap();
            let name = ElectionName::new(election).unwrap();
            let snapshot = backend.candidates(&name).await.unwrap();
            let leader = snapshot.entries.first().expect("a leader to delete");
            assert!(backend.delete(leader).await.unwrap(), "not deleted");
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn handover_on_sigterm() {
    scenarios::handover(&url().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gated_command_stops_when_the_node_is_deleted() {
    let url = url().await;
    scenarios::gated_command_stops_on_loss(&url, delete_leader(url.clone())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stubborn_child_gets_sigkill_after_grace() {
    let url = url().await;
    scenarios::stubborn_child_killed_after_grace(&url, delete_leader(url.clone())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn once_without_command_exits_4_on_loss() {
    let url = url().await;
    scenarios::once_without_command_exits_4_on_loss(&url, delete_leader(url.clone())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn never_elected_never_runs_the_command() {
    scenarios::never_elected_never_runs(&url().await).await;
}

/// Two hundred candidates started at once against one server (of this
/// test's own, without a per-host connection limit): all queue, one leads.
#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_candidates_at_once() {
    let server = ZkServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"));
    scenarios::burst(&format!("zk://{}/burst", server.connect_string()), 200).await;
}
