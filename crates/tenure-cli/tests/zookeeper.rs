//! `tenure` as processes against a real ZooKeeper server (started by the
//! testkit harness on a free loopback port, shared by this binary's tests;
//! every test uses its own election).

#![allow(clippy::unwrap_used)]

mod common;

use common::scenarios;
use futures::future::BoxFuture;
use nix::sys::signal::Signal;
use tenure::ElectionName;
use tenure_testkit::zk_server::{ZkServer, ZkServerConfig};

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
async fn child_gets_sigkill_at_once_when_the_entry_goes() {
    let url = url().await;
    scenarios::child_killed_at_once_when_the_entry_goes(&url, delete_leader(url.clone())).await;
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

/// Both strategies in one election never elect two leaders.
#[tokio::test(flavor = "multi_thread")]
async fn mixed_strategies_elect_one_leader() {
    scenarios::mixed_strategies_one_leader(&url().await).await;
}

/// Names ZooKeeper cannot hold (and `nest/leader`, which would be the
/// single-key node of `nest`) exit 2 at once: `campaign --once` used to
/// retry (exit 3) and `observe` to hang.
#[tokio::test(flavor = "multi_thread")]
async fn names_zookeeper_cannot_hold_exit_2() {
    scenarios::names_no_backend_can_hold_exit_2(&url().await).await;
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

/// On a server with `tickTime=200` (sessions of 400 ms .. 4 s), `--ttl 3s`
/// reaches the backend's own session: the candidate is elected; readers,
/// which give no TTL, work too; a `session_timeout=` in the URL outside
/// the bounds is a usage error that says what to change.
#[tokio::test(flavor = "multi_thread")]
async fn ttl_fits_a_server_with_tick_time_200() {
    let server = ZkServer::start_with(ZkServerConfig {
        tick_time: std::time::Duration::from_millis(200),
        min_session_timeout: std::time::Duration::from_millis(400),
        max_session_timeout: std::time::Duration::from_secs(4),
        ..ZkServerConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"));
    let url = format!("zk://{}/root", server.connect_string());
    let mut a = scenarios::start(&url, "a", "campaign", "e", &["x", "--ttl", "3s"]);
    a.expect("elected").await;
    // Readers give no TTL: the default (10 s, beyond this server's
    // sessions) is fitted, not refused.
    for cmd in ["leader", "list"] {
        let r = common::run(&["--backend", &url, cmd, "e"]).await;
        assert_eq!(r.code, Some(0), "{cmd}: {r:?}");
        assert!(r.stdout.contains("x"), "{cmd} names the leader: {r:?}");
    }
    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait().await.code(), Some(0), "{}", a.stderr());

    let r = common::run(&[
        "--backend",
        &format!("{url}?session_timeout=10s"),
        "campaign",
        "e",
        "x",
        "--ttl",
        "3s",
    ])
    .await;
    assert_eq!(r.code, Some(2), "{r:?}");
    for hint in [
        "session_timeout=",
        "minSessionTimeout",
        "maxSessionTimeout",
        "tickTime",
    ] {
        assert!(r.stderr.contains(hint), "{hint:?} missing: {}", r.stderr);
    }
}

/// A server that allows two connections from this host, both taken: the
/// candidate's connection attempts are closed during the handshake, and
/// once its connect timeout has run out it exits 3 naming the likely
/// cause.
#[tokio::test(flavor = "multi_thread")]
async fn max_client_cnxns_reached_is_named_as_the_likely_cause() {
    use tenure::zookeeper::zookeeper_client as zk;

    let server = ZkServer::start_with(ZkServerConfig {
        max_client_cnxns: 2,
        ..ZkServerConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"));
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(zk::Client::connect(&server.connect_string()).await.unwrap());
    }
    let url = format!("zk://{}/root?connect_timeout=1s", server.connect_string());
    let r = common::run(&["--backend", &url, "campaign", "e", "x"]).await;
    assert_eq!(r.code, Some(3), "{r:?}");
    for part in [
        server.connect_string().as_str(),
        "attempts",
        "maxClientCnxns",
    ] {
        assert!(r.stderr.contains(part), "{part:?} missing: {}", r.stderr);
    }
    drop(held);
}

/// Stopped followers and leaders leave no entry behind (rolling restart).
#[tokio::test(flavor = "multi_thread")]
async fn stopped_processes_leave_no_entry() {
    scenarios::stopped_processes_leave_no_entry(&url().await).await;
}
