//! `tenure` as processes against a real etcd server (started by the
//! testkit harness on free loopback ports).

#![allow(clippy::unwrap_used)]

mod common;

use common::scenarios;
use std::process::Stdio;

use futures::future::BoxFuture;
use nix::sys::signal::Signal;
use tenure_testkit::etcd_server::{etcdctl_command, EtcdServer};
use tokio::io::{AsyncBufReadExt, BufReader};

async fn server() -> (EtcdServer, String) {
    let server = EtcdServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
    let url = format!("etcd://{}", server.endpoint().trim_start_matches("http://"));
    (server, url)
}

/// Deletes every entry of an election with `etcdctl del` (the leader's key
/// is `<election>/<lease hex>`, etcd's own election layout).
fn etcdctl_delete(server: &EtcdServer) -> impl Fn(String) -> BoxFuture<'static, ()> {
    let endpoint = server.endpoint();
    move |election: String| {
        let mut cmd = etcdctl_command(&endpoint);
        cmd.args(["del", "--prefix", &format!("{election}/")]);
        Box::pin(async move {
            let out = cmd.output().await.unwrap();
            let deleted = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            assert!(out.status.success(), "etcdctl del: {out:?}");
            assert_ne!(deleted, "0", "nothing deleted under {election}/");
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn handover_on_sigterm() {
    let (_server, url) = server().await;
    scenarios::handover(&url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gated_command_stops_when_the_key_is_deleted() {
    let (server, url) = server().await;
    scenarios::gated_command_stops_on_loss(&url, etcdctl_delete(&server)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn child_gets_sigkill_at_once_when_the_entry_goes() {
    let (server, url) = server().await;
    scenarios::child_killed_at_once_when_the_entry_goes(&url, etcdctl_delete(&server)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn once_without_command_exits_4_on_loss() {
    let (server, url) = server().await;
    scenarios::once_without_command_exits_4_on_loss(&url, etcdctl_delete(&server)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn never_elected_never_runs_the_command() {
    let (_server, url) = server().await;
    scenarios::never_elected_never_runs(&url).await;
}

/// A frozen etcd: keep-alives go unanswered, the leader steps down at its
/// local deadline (`deadline_exceeded`), stops the command, and leads
/// again once etcd is back.
#[tokio::test(flavor = "multi_thread")]
async fn frozen_backend_deadline_stops_the_command() {
    let (server, url) = server().await;
    let (_dir, path) = common::temp();
    let (marker, ready) = (path.join("marker"), path.join("ready"));
    let script = format!(
        "trap 'echo term >> {}; exit 0' TERM; echo up > {}; while :; do sleep 0.05; done",
        marker.display(),
        ready.display()
    );
    let election = common::unique("frozen");
    let mut t = scenarios::start(
        &url,
        "frozen",
        "campaign",
        &election,
        &[
            "--ttl",
            "2s",
            "--recampaign-delay",
            "100ms",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let elected = t.expect("elected").await;
    t.expect("child_started").await;
    common::wait_for_file(&ready).await;
    server.pause().await.unwrap();
    let lost = t.expect("lost").await;
    let signalled = t.expect("child_signalled").await;
    t.expect("child_exited").await;
    server.resume().await.unwrap();
    assert_eq!(lost["reason"], "deadline_exceeded", "{lost}");
    assert_eq!(signalled["signal"], "SIGTERM");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "term\n");
    // `deadline_exceeded` means the loss was decided locally, while etcd
    // (frozen) still held the lease; the child was signalled after it.
    assert!(signalled["mono_ns"].as_u64() >= lost["mono_ns"].as_u64());
    let again = t.expect("elected").await;
    assert!(again["token"].as_u64() > elected["token"].as_u64());
    t.expect("child_started").await;
    t.signal(Signal::SIGTERM);
    assert_eq!(t.wait().await.code(), Some(0), "{}", t.stderr());
}

/// tenure and `etcdctl elect` share an election (same key layout): each
/// sees the other's leader.
#[tokio::test(flavor = "multi_thread")]
async fn shares_elections_with_etcdctl_elect() {
    let (server, url) = server().await;
    let election = common::unique("interop");

    // etcdctl campaigns and leads; tenure reads it.
    let mut etcdctl = server.etcdctl_command();
    etcdctl
        .args(["elect", &election, "from-etcdctl"])
        .stdout(Stdio::piped());
    let mut etcdctl = etcdctl.spawn().unwrap();
    let mut lines = BufReader::new(etcdctl.stdout.take().unwrap()).lines();
    // `etcdctl elect` prints its key once elected.
    let key = tokio::time::timeout(common::PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(key.starts_with(&format!("{election}/")), "{key}");
    let r = common::run(&["--backend", &url, "leader", &election]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.ends_with(" proposal=from-etcdctl\n"), "{r:?}");

    // tenure queues behind it and is elected when etcdctl goes.
    let mut t = scenarios::start(
        &url,
        "tenure",
        "campaign",
        &election,
        &["from-tenure", "--ttl", "2s"],
    );
    t.expect("campaigning").await;
    scenarios::wait_candidates(&url, &election, 2).await;
    let pid = i32::try_from(etcdctl.id().unwrap()).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGINT).unwrap();
    t.expect("elected").await;

    // `etcdctl elect -l` sees tenure's proposal.
    let mut observe = server.etcdctl_command();
    observe
        .args(["elect", "-l", &election])
        .stdout(Stdio::piped());
    let mut observe = observe.spawn().unwrap();
    let mut lines = BufReader::new(observe.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(common::PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = line == "from-tenure";
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "etcdctl elect -l printed {seen:?}");
    t.signal(Signal::SIGTERM);
    assert_eq!(t.wait().await.code(), Some(0));
}

/// etcd grants no lease under 1 s: tenure says so before campaigning.
#[tokio::test(flavor = "multi_thread")]
async fn ttl_below_the_etcd_minimum_exits_2() {
    let (_server, url) = server().await;
    let r = common::run(&["--backend", &url, "campaign", "x", "--ttl", "500ms"]).await;
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("TTL 500ms is out of range"), "{r:?}");
    assert_eq!(r.stdout, "");
}

async fn next(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(common::PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

/// Text output of `observe`: one readable line per change.
#[tokio::test(flavor = "multi_thread")]
async fn observe_prints_text_lines() {
    let (_server, url) = server().await;
    let election = common::unique("text");
    let mut cmd = common::command(&["--backend", &url, "observe", &election]);
    cmd.stdout(Stdio::piped());
    let mut observe = cmd.spawn().unwrap();
    let mut lines = BufReader::new(observe.stdout.take().unwrap()).lines();
    assert_eq!(next(&mut lines).await, format!("leader {election} none"));
    let mut t = scenarios::start(
        &url,
        "node",
        "campaign",
        &election,
        &["node a", "--ttl", "2s"],
    );
    let elected = t.expect("elected").await;
    assert_eq!(
        next(&mut lines).await,
        format!(
            r#"leader {election} token={} proposal="node a""#,
            elected["token"]
        )
    );
    t.signal(Signal::SIGTERM);
    assert_eq!(t.wait().await.code(), Some(0));
    assert_eq!(next(&mut lines).await, format!("leader {election} none"));
}

/// The single-key strategy: the leader sits under the election's one key,
/// which `leader --strategy single-key` reads (and the queue does not hold).
#[tokio::test(flavor = "multi_thread")]
async fn single_key_strategy() {
    let (_server, url) = server().await;
    let election = common::unique("single");
    let e = election.as_str();
    let mut t = scenarios::start(
        &url,
        "single",
        "campaign",
        e,
        &["only", "--ttl", "2s", "--strategy", "single-key"],
    );
    let elected = t.expect("elected").await;
    let r = common::run(&[
        "--backend",
        &url,
        "--output",
        "json",
        "leader",
        e,
        "--strategy",
        "single-key",
    ])
    .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.events()[0]["proposal"], "only");
    assert_eq!(r.events()[0]["token"], elected["token"]);
    // Readers of either strategy agree on the one leader.
    let r = common::run(&["--backend", &url, "--output", "json", "leader", e]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.events()[0]["proposal"], "only");
    t.signal(Signal::SIGTERM);
    assert_eq!(t.wait().await.code(), Some(0));
    let r = common::run(&["--backend", &url, "leader", e, "--strategy", "single-key"]).await;
    assert_eq!(r.code, Some(1), "resigned: {r:?}");
}

/// Both strategies in one election never elect two leaders.
#[tokio::test(flavor = "multi_thread")]
async fn mixed_strategies_elect_one_leader() {
    let (_server, url) = server().await;
    scenarios::mixed_strategies_one_leader(&url).await;
}

/// Names ZooKeeper cannot hold are invalid on etcd too (exit 2).
#[tokio::test(flavor = "multi_thread")]
async fn names_zookeeper_cannot_hold_exit_2() {
    let (_server, url) = server().await;
    scenarios::names_no_backend_can_hold_exit_2(&url).await;
}

/// Two hundred candidates started at once against one server: all queue,
/// one leads.
#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_candidates_at_once() {
    let (_server, url) = server().await;
    scenarios::burst(&url, 200).await;
}

/// Stopped followers and leaders leave no entry behind (rolling restart).
#[tokio::test(flavor = "multi_thread")]
async fn stopped_processes_leave_no_entry() {
    let (_server, url) = server().await;
    scenarios::stopped_processes_leave_no_entry(&url).await;
}
