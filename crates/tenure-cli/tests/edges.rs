//! Edges where `tenure` must answer at once and truthfully: a permission
//! the backend will never grant (exit 3, no retry loop), a frozen backend
//! (`observe` says `unknown` rather than show a stale leader), a reader
//! that went away (`observe | head -1` exits).

#![allow(clippy::unwrap_used)]

mod common;

use common::{scenarios, Running};
use tenure_testkit::etcd_server::EtcdServer;
use tenure_testkit::zk_server::ZkServer;

fn etcd_url(server: &EtcdServer) -> String {
    format!("etcd://{}", server.endpoint().trim_start_matches("http://"))
}

/// A role without permission on the election's prefix: exit 3 with the
/// backend's words, at the first refusal (the `run` helper's bound is a
/// hang guard; a retry loop would never exit at all).
#[tokio::test(flavor = "multi_thread")]
async fn campaign_without_permission_exits_3_at_once() {
    let server = EtcdServer::start().await.unwrap();
    server
        .enable_auth_with_prefix_user("app", "apppw", "allowed/")
        .await
        .unwrap();
    let host = server.endpoint().trim_start_matches("http://").to_owned();
    let forbidden = format!("etcd://{host}/forbidden/?user=app&password=apppw");
    let r = common::run(&[
        "--backend",
        &forbidden,
        "--output",
        "json",
        "campaign",
        "jobs",
        "a",
        "--ttl",
        "2s",
    ])
    .await;
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stderr.contains("permission denied"), "{r:?}");
    assert!(!r.stderr.contains("retrying"), "{r:?}");
    // It did reach the backend: a lease was granted and the campaign began.
    let names: Vec<_> = r.events().iter().map(|e| e["event"].clone()).collect();
    assert_eq!(names, ["campaigning"], "{r:?}");

    // The same credentials on their own prefix lead (the refusal was the
    // prefix's, not a broken login).
    let allowed = format!("etcd://{host}/allowed/?user=app&password=apppw");
    let r = common::run(&[
        "--backend",
        &allowed,
        "campaign",
        "jobs",
        "a",
        "--ttl",
        "2s",
        "--once",
        "--",
        "true",
    ])
    .await;
    assert_eq!(r.code, Some(0), "{r:?}");
}

/// `observe` against a backend that freezes: `leader`, then `unknown`
/// once the staleness bound passes unconfirmed, then `leader` again when
/// the backend answers.
async fn unknown_while_frozen(url: &str, freeze: impl FnOnce(), thaw: impl FnOnce()) {
    let election = common::unique("frozen");
    let mut candidate = scenarios::start(url, "candidate", "campaign", &election, &["--ttl", "2s"]);
    let elected = candidate.expect("elected").await;
    let mut observer = scenarios::start(
        url,
        "observer",
        "observe",
        &election,
        &["--max-staleness", "2s"],
    );
    let seen = observer.expect("leader").await;
    assert_eq!(seen["token"], elected["token"], "{seen}");

    freeze();
    let unknown = observer.expect("unknown").await;
    let unconfirmed = unknown["unconfirmed_for_ms"].as_u64().unwrap();
    assert!(unconfirmed >= 2000, "{unknown}");
    assert!(
        observer.names().iter().filter(|n| *n == "leader").count() == 1,
        "no leader line between the freeze and `unknown`: {:?}",
        observer.seen
    );
    thaw();
    // Whoever leads now (the old leader lost its lease meanwhile, or kept
    // it), the observer says so again.
    observer.expect("leader").await;
    stop(&mut candidate).await;
    stop(&mut observer).await;
}

async fn stop(r: &mut Running) {
    r.signal(nix::sys::signal::Signal::SIGTERM);
    r.wait().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn observe_reports_unknown_while_etcd_is_frozen() {
    let server = EtcdServer::start().await.unwrap();
    let url = etcd_url(&server);
    let pause = tokio::runtime::Handle::current();
    unknown_while_frozen(
        &url,
        || {
            tokio::task::block_in_place(|| pause.block_on(server.pause())).unwrap();
        },
        || {
            tokio::task::block_in_place(|| pause.block_on(server.resume())).unwrap();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn observe_reports_unknown_while_zookeeper_is_frozen() {
    let server = ZkServer::start().await.unwrap();
    let url = format!("zk://{}/tenure-edges", server.connect_string());
    unknown_while_frozen(
        &url,
        || server.pause().unwrap(),
        || server.resume().unwrap(),
    )
    .await;
}

/// `observe | head -1` ends as soon as `head` has its line, although no
/// leader change ever comes (the shell waits for both sides of the pipe).
#[tokio::test(flavor = "multi_thread")]
async fn observe_exits_when_its_reader_goes() {
    let script = format!(
        "{} --backend memory:// observe quiet | head -1",
        common::bin()
    );
    let mut cmd = tokio::process::Command::new("sh");
    cmd.args(["-c", &script])
        .env_remove("TENURE_BACKEND")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let r = common::run_cmd(cmd).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "leader quiet none\n", "{r:?}");
}
