//! `tenure` as a sidecar: logs that machines read (`--log-format`), and
//! the `--listen` server (`/healthz`, `/readyz`, `/metrics`) queried with
//! a real HTTP client, against real etcd and ZooKeeper servers started by
//! the testkit.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::{scenarios, Running};
use nix::sys::signal::Signal;
use serde_json::Value;
use tenure_testkit::etcd_server::EtcdServer;
use tenure_testkit::proxy::{Mode, Proxy};
use tenure_testkit::zk_server::ZkServer;

/// The backend under test: its URL, and the address of the server behind
/// it (for a proxy), keeping the server alive.
struct Backend {
    _etcd: Option<EtcdServer>,
    target: SocketAddr,
    /// `scheme://`, then the address, then this suffix.
    scheme: &'static str,
    suffix: &'static str,
}

impl Backend {
    async fn etcd() -> Backend {
        let server = EtcdServer::start()
            .await
            .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
        let target = server.client_addr();
        Backend {
            _etcd: Some(server),
            target,
            scheme: "etcd",
            suffix: "",
        }
    }

    async fn zookeeper() -> Backend {
        let server = ZkServer::shared()
            .await
            .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"));
        Backend {
            _etcd: None,
            target: SocketAddr::from(([127, 0, 0, 1], server.port())),
            scheme: "zk",
            suffix: "/tenure-cli-sidecar",
        }
    }

    /// The URL of the server itself.
    fn url(&self) -> String {
        self.url_at(self.target)
    }

    /// The URL of the same server reached through `addr` (a proxy).
    fn url_at(&self, addr: SocketAddr) -> String {
        format!("{}://{addr}{}", self.scheme, self.suffix)
    }
}

/// A `GET` of `path` on `addr`: the status code and the body.
async fn get(addr: &str, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = tokio::time::timeout(
        common::PATIENCE,
        client.get(format!("http://{addr}{path}")).send(),
    )
    .await
    .unwrap_or_else(|_| panic!("GET {path} on {addr}: no answer"))
    .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Starts `tenure --backend url --output json <cmd> <election> --listen
/// 127.0.0.1:0 [extra..]` and reads the address it bound.
async fn start_listening(
    url: &str,
    label: &str,
    cmd: &str,
    election: &str,
    extra: &[&str],
) -> (Running, String) {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut t = scenarios::start(url, label, cmd, election, &args);
    let listening = t.expect("listening").await;
    let addr = listening["addr"].as_str().unwrap().to_owned();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{listening}"
    );
    (t, addr)
}

/// Polls `addr`'s `/metrics` until it holds a line starting with
/// `prefix`; returns the whole text.
async fn wait_metric(addr: &str, prefix: &str) -> String {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    loop {
        let (code, body) = get(addr, "/metrics").await;
        assert_eq!(code, 200, "{body}");
        if body.lines().any(|l| l.starts_with(prefix)) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {prefix:?} in /metrics:\n{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Two candidates and an observer, each with `--listen`: `/readyz` is 200
/// on the leader alone and moves with a hand-over; the observer's is 200
/// while a leader is confirmed and 503 once nobody leads; `/healthz` is
/// 200 throughout; `/metrics` shows the library's series labelled by
/// election.
async fn readiness_follows_the_handover(url: &str) {
    let election = common::unique("sidecar");
    let (mut a, a_addr) =
        start_listening(url, "a", "campaign", &election, &["node-a", "--ttl", "2s"]).await;
    a.expect("elected").await;
    let (mut b, b_addr) =
        start_listening(url, "b", "campaign", &election, &["node-b", "--ttl", "2s"]).await;
    b.expect("campaigning").await;
    let (mut o, o_addr) = start_listening(url, "o", "observe", &election, &[]).await;
    o.expect_where("leader", |v| v["proposal"] == "node-a")
        .await;

    assert_eq!(get(&a_addr, "/readyz").await.0, 200);
    assert_eq!(get(&b_addr, "/readyz").await.0, 503);
    assert_eq!(get(&o_addr, "/readyz").await.0, 200);
    for addr in [&a_addr, &b_addr, &o_addr] {
        assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));
    }
    let series = format!("tenure_is_leader{{election=\"{election}\"}} 1");
    wait_metric(&a_addr, &series).await;
    // Series the library labels by backend only get the election too.
    let keepalive = wait_metric(&a_addr, "tenure_keepalive_latency_seconds_count{").await;
    let line = keepalive
        .lines()
        .find(|l| l.starts_with("tenure_keepalive_latency_seconds_count{"))
        .unwrap();
    assert!(line.contains(&format!("election=\"{election}\"")), "{line}");

    a.signal(Signal::SIGTERM);
    a.expect("resigned").await;
    assert_eq!(a.wait().await.code(), Some(0), "{}", a.stderr());
    b.expect("elected").await;
    assert_eq!(get(&b_addr, "/readyz").await, (200, "ready\n".to_owned()));
    o.expect_where("leader", |v| v["proposal"] == "node-b")
        .await;
    assert_eq!(get(&o_addr, "/readyz").await.0, 200);

    b.signal(Signal::SIGTERM);
    b.expect("resigned").await;
    assert_eq!(b.wait().await.code(), Some(0), "{}", b.stderr());
    o.expect_where("leader", |v| v["proposal"].is_null()).await;
    assert_eq!(get(&o_addr, "/readyz").await.0, 503);
    assert_eq!(get(&o_addr, "/healthz").await.0, 200);
    o.signal(Signal::SIGTERM);
    assert_eq!(o.wait().await.code(), Some(0), "{}", o.stderr());
}

/// A candidate and an observer cut off from the backend (a proxy that
/// black-holes their traffic, as a frozen server would): the leader's
/// `/healthz` turns 503 when its lease could not be renewed (and
/// `/readyz` with it), the observer's once it says `unknown`; both are
/// 200 again once the backend answers, and the candidate leads again.
async fn health_fails_while_the_backend_is_cut_off(backend: &Backend) {
    let proxy = Proxy::start(backend.target).await.unwrap();
    let url = backend.url_at(proxy.local_addr());
    let election = common::unique("frozen-sidecar");
    let (mut a, a_addr) = start_listening(
        &url,
        "a",
        "campaign",
        &election,
        &["node-a", "--ttl", "2s", "--recampaign-delay", "100ms"],
    )
    .await;
    a.expect("elected").await;
    let (mut o, o_addr) =
        start_listening(&url, "o", "observe", &election, &["--max-staleness", "2s"]).await;
    o.expect_where("leader", |v| v["proposal"] == "node-a")
        .await;
    assert_eq!(get(&a_addr, "/healthz").await.0, 200);
    assert_eq!(get(&o_addr, "/healthz").await.0, 200);

    proxy.set_mode(Mode::Blackhole);
    let lost = a.expect("lost").await;
    assert_eq!(lost["reason"], "deadline_exceeded", "{lost}");
    assert_eq!(get(&a_addr, "/healthz").await.0, 503);
    assert_eq!(get(&a_addr, "/readyz").await.0, 503);
    o.expect("unknown").await;
    assert_eq!(get(&o_addr, "/healthz").await.0, 503);
    assert_eq!(get(&o_addr, "/readyz").await.0, 503);

    proxy.set_mode(Mode::Pass);
    a.expect("elected").await;
    assert_eq!(get(&a_addr, "/healthz").await.0, 200);
    assert_eq!(get(&a_addr, "/readyz").await.0, 200);
    o.expect_where("leader", |v| v["proposal"] == "node-a")
        .await;
    assert_eq!(get(&o_addr, "/healthz").await.0, 200);
    for t in [&mut a, &mut o] {
        t.signal(Signal::SIGTERM);
        assert_eq!(t.wait().await.code(), Some(0), "{}", t.stderr());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_readiness_follows_the_handover() {
    let backend = Backend::etcd().await;
    readiness_follows_the_handover(&backend.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_readiness_follows_the_handover() {
    let backend = Backend::zookeeper().await;
    readiness_follows_the_handover(&backend.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_health_fails_while_the_backend_is_cut_off() {
    health_fails_while_the_backend_is_cut_off(&Backend::etcd().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_health_fails_while_the_backend_is_cut_off() {
    health_fails_while_the_backend_is_cut_off(&Backend::zookeeper().await).await;
}

/// An address that cannot be bound is bad input: exit 2, naming it,
/// before campaigning.
#[tokio::test(flavor = "multi_thread")]
async fn an_address_in_use_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = common::run(&["--backend", "memory://", "campaign", "x", "--listen", &addr]).await;
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.stderr.contains(&format!("cannot listen on {addr}")),
        "{r:?}"
    );
    assert_eq!(r.stdout, "");
}

/// Runs a campaign on the in-process backend with debug logs in `format`
/// until it is elected, then stops it; returns its standard error.
async fn campaign_logs(election: &str, format: &str) -> String {
    let mut t = Running::start(
        format,
        &[
            "--backend",
            "memory://",
            "--output",
            "json",
            "--log-level",
            "debug",
            "--log-format",
            format,
            "campaign",
            election,
            "--ttl",
            "2s",
        ],
    );
    t.expect("elected").await;
    t.signal(Signal::SIGTERM);
    assert_eq!(t.wait().await.code(), Some(0), "{}", t.stderr());
    t.stderr()
}

/// Whether a JSON log line names `key` = `value` in its fields or spans.
fn names(line: &Value, key: &str, value: &str) -> bool {
    line["fields"][key] == value
        || line["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s[key] == value))
}

/// `--log-format json`: one JSON object per line, no colour codes; every
/// line names the election, and every line from the lease's grant on
/// names the lease.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_name_the_election_and_the_lease() {
    let election = common::unique("logs");
    let stderr = campaign_logs(&election, "json").await;
    assert!(!stderr.contains('\x1b'), "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    let granted = lines
        .iter()
        .position(|l| l["fields"]["message"] == "session started")
        .unwrap_or_else(|| panic!("no session started: {stderr}"));
    let lease = lines[granted]["fields"]["lease"]
        .as_str()
        .unwrap()
        .to_owned();
    // The path ran: the term logged inside it (election, then leader).
    assert!(
        lines[granted..]
            .iter()
            .any(|l| l["fields"]["message"] == "elected"),
        "{stderr}"
    );
    for line in &lines {
        assert!(names(line, "election", &election), "no election: {line}");
    }
    for line in &lines[granted..] {
        assert!(names(line, "lease", &lease), "no lease {lease}: {line}");
    }
}

/// Text logs written to a pipe carry no colour codes, and name the
/// election and the lease in their span prefix.
#[tokio::test(flavor = "multi_thread")]
async fn text_logs_to_a_pipe_have_no_colour() {
    let election = common::unique("logs");
    let stderr = campaign_logs(&election, "text").await;
    assert!(!stderr.contains('\x1b'), "{stderr}");
    let elected = stderr
        .lines()
        .find(|l| l.contains(" elected"))
        .unwrap_or_else(|| panic!("no elected line: {stderr}"));
    assert!(
        elected.contains(&format!("campaign{{election={election}}}:term{{lease=")),
        "{elected}"
    );
}
