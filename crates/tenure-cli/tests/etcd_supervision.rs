//! The gated command never overlaps a successor, however `tenure` ends or
//! stops: `tenure campaign -- CMD` against a real etcd (started by the
//! testkit harness), with a command whose grandchildren append
//! `<proposal> token=<token>` lines to one file. Whatever happens to
//! candidate A's `tenure` process, no line of A's term may follow the
//! first line of its successor B.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::scenarios;
use nix::sys::signal::Signal;
use serde_json::Value;
use tenure_testkit::etcd_server::EtcdServer;
use tenure_testkit::proxy::{Mode, Proxy};

async fn server() -> (EtcdServer, String) {
    let server = EtcdServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
    let url = format!("etcd://{}", server.endpoint().trim_start_matches("http://"));
    (server, url)
}

/// `sh -c` script: a background grandchild (a subshell, with `sleep`
/// great-grandchildren) appends `<proposal> token=<token>` to `log` every
/// 50 ms; the shell itself just waits. With `ignore_term`, every process of
/// the tree ignores `SIGTERM`.
fn writer(log: &Path, ignore_term: bool) -> String {
    format!(
        "{trap}(while :; do echo \"$TENURE_PROPOSAL token=$TENURE_TOKEN\" >> {log}; sleep 0.05; done) & wait",
        trap = if ignore_term { "trap '' TERM; " } else { "" },
        log = log.display()
    )
}

/// The `token=` of each line of `log`, in order.
fn tokens_in(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.rsplit_once(" token=")?.1.parse().ok())
        .collect()
}

/// Waits until `log` holds at least `n` lines of term `token`.
async fn wait_lines(log: &Path, token: u64, n: usize) {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while tokens_in(log).iter().filter(|&&t| t == token).count() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {n} lines of term {token} in {}: {:?}",
            log.display(),
            std::fs::read_to_string(log)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn token(v: &Value) -> u64 {
    v["token"]
        .as_u64()
        .unwrap_or_else(|| panic!("no token: {v}"))
}

/// Asserts that no line of term `old` follows the first line of term
/// `new` in `log` (and that both terms wrote: the check ran).
fn assert_no_overlap(log: &Path, old: u64, new: u64) {
    let tokens = tokens_in(log);
    let first_new = tokens.iter().position(|&t| t == new).unwrap();
    assert!(
        tokens[..first_new].contains(&old),
        "the old term never wrote: {tokens:?}"
    );
    let late: Vec<usize> = tokens[first_new..]
        .iter()
        .enumerate()
        .filter(|(_, &t)| t == old)
        .map(|(i, _)| first_new + i)
        .collect();
    assert!(
        late.is_empty(),
        "term {old} wrote after term {new} began (lines {late:?}): {tokens:?}"
    );
}

/// Candidate A (through `a_url`) leads with `a_script` writing to `log`;
/// B (through `url`) queues behind it with the plain writer. Returns both
/// once A's command has written and B is in the queue, with A's
/// `elected`.
async fn a_leads_b_queues(
    url: &str,
    a_url: &str,
    log: &Path,
    a_script: &str,
    name: &str,
) -> (common::Running, common::Running, Value) {
    let election = common::unique(name);
    let e = election.as_str();
    let mut a = scenarios::start(
        a_url,
        "a",
        "campaign",
        e,
        &["A", "--ttl", "2s", "--", "sh", "-c", a_script],
    );
    let elected_a = a.expect("elected").await;
    a.expect("child_started").await;
    wait_lines(log, token(&elected_a), 3).await;
    let mut b = scenarios::start(
        url,
        "b",
        "campaign",
        e,
        &["B", "--ttl", "2s", "--", "sh", "-c", &writer(log, false)],
    );
    b.expect("campaigning").await;
    scenarios::wait_candidates(url, e, 2).await;
    (a, b, elected_a)
}

/// Candidate A leads with the writer running; B queues behind it; `signal`
/// goes to A's `tenure`. Returns A, B, the log, A's and B's `elected`
/// events, once B's writer has written a few lines.
struct TwoCandidates {
    a: common::Running,
    b: common::Running,
    _dir: tempfile::TempDir,
    log: PathBuf,
    elected_a: Value,
    elected_b: Value,
}

async fn signal_leader(url: &str, a_url: &str, signal: Signal) -> TwoCandidates {
    let (dir, path) = common::temp();
    let log = path.join("log");
    let (a, mut b, elected_a) =
        a_leads_b_queues(url, a_url, &log, &writer(&log, false), "signal").await;
    a.signal(signal);
    let elected_b = b.expect("elected").await;
    assert!(token(&elected_b) > token(&elected_a));
    // B's writer runs: the file is being written after B's `elected`.
    wait_lines(&log, token(&elected_b), 6).await;
    assert_no_overlap(&log, token(&elected_a), token(&elected_b));
    TwoCandidates {
        a,
        b,
        _dir: dir,
        log,
        elected_a,
        elected_b,
    }
}

/// `signal` asks A's `tenure` to shut down cleanly: it stops the command
/// (its whole tree), resigns, exits 0; B takes over.
async fn clean_shutdown_on(signal: Signal) {
    let (_server, url) = server().await;
    let mut t = signal_leader(&url, &url, signal).await;
    assert_eq!(t.a.wait().await.code(), Some(0), "{}", t.a.stderr());
    t.a.drain().await;
    let names = t.a.names();
    let resigned = t.a.seen.iter().find(|v| v["event"] == "resigned");
    let resigned = resigned.unwrap_or_else(|| panic!("A did not resign: {names:?}"));
    assert!(t.elected_b["mono_ns"].as_u64() >= resigned["mono_ns"].as_u64());
    assert_eq!(resigned["token"], t.elected_a["token"]);
    t.b.signal(Signal::SIGTERM);
    assert_eq!(t.b.wait().await.code(), Some(0), "{}", t.b.stderr());
    assert_no_overlap(&t.log, token(&t.elected_a), token(&t.elected_b));
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_stops_the_whole_command_tree_before_the_successor() {
    clean_shutdown_on(Signal::SIGHUP).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigquit_stops_the_whole_command_tree_before_the_successor() {
    clean_shutdown_on(Signal::SIGQUIT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigusr1_stops_the_whole_command_tree_before_the_successor() {
    clean_shutdown_on(Signal::SIGUSR1).await;
}

/// `kill -9` on A's `tenure`: nothing can be stopped cleanly, yet the
/// command's whole tree dies with it (B is elected when A's lease expires).
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_takes_the_whole_command_tree_along() {
    let (_server, url) = server().await;
    let mut t = signal_leader(&url, &url, Signal::SIGKILL).await;
    assert_eq!(t.a.wait().await.code(), None);
    t.b.signal(Signal::SIGTERM);
    assert_eq!(t.b.wait().await.code(), Some(0), "{}", t.b.stderr());
    assert_no_overlap(&t.log, token(&t.elected_a), token(&t.elected_b));
}

/// A grandchild that leaves the command's process group and session
/// (`setsid`) still dies with `tenure`.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_takes_a_setsid_grandchild_along() {
    let (_server, url) = server().await;
    let (_dir, path) = common::temp();
    let log = path.join("log");
    let loop_script = format!(
        "while :; do echo \"$TENURE_PROPOSAL token=$TENURE_TOKEN\" >> {}; sleep 0.05; done",
        log.display()
    );
    // Not a group leader, so `setsid` needs no fork: `wait` waits for it.
    let script = format!("setsid sh -c '{loop_script}' & wait");
    let (a, mut b, elected_a) = a_leads_b_queues(&url, &url, &log, &script, "setsid").await;
    a.signal(Signal::SIGKILL);
    let elected_b = b.expect("elected").await;
    wait_lines(&log, token(&elected_b), 6).await;
    assert_no_overlap(&log, token(&elected_a), token(&elected_b));
    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait().await.code(), Some(0), "{}", b.stderr());
}

/// Ctrl-Z (`SIGTSTP`) on A's `tenure`: the command's tree stops with it;
/// while A is stopped its lease expires and B is elected; A's command never
/// runs again. When A is resumed it reports the loss, never resumes the
/// command, and campaigns again.
#[tokio::test(flavor = "multi_thread")]
async fn sigtstp_stops_the_command_and_a_resumed_leader_kills_it() {
    let (_server, url) = server().await;
    let mut t = signal_leader(&url, &url, Signal::SIGTSTP).await;
    let a_lines = tokens_in(&t.log)
        .iter()
        .filter(|&&x| x == token(&t.elected_a))
        .count();
    t.a.signal(Signal::SIGCONT);
    let lost = t.a.expect("lost").await;
    assert_eq!(lost["token"], t.elected_a["token"]);
    // The supervisor may have killed the stopped tree at the deadline (then
    // its end is reported as soon as A runs, before the loss) or A kills it
    // on resuming.
    if !t.a.names().contains(&"child_exited".to_owned()) {
        t.a.expect("child_exited").await;
    }
    // Resumed, A queues behind B again.
    t.a.expect_where("campaigning", |_| true).await;
    // B's writer keeps writing; A's never wrote again.
    let now = tokens_in(&t.log)
        .iter()
        .filter(|&&x| x == token(&t.elected_b))
        .count();
    wait_lines(&t.log, token(&t.elected_b), now + 4).await;
    let after = tokens_in(&t.log)
        .iter()
        .filter(|&&x| x == token(&t.elected_a))
        .count();
    assert_eq!(after, a_lines, "A's command ran again after SIGCONT");
    t.a.signal(Signal::SIGTERM);
    assert_eq!(t.a.wait().await.code(), Some(0), "{}", t.a.stderr());
    t.b.signal(Signal::SIGTERM);
    assert_eq!(t.b.wait().await.code(), Some(0), "{}", t.b.stderr());
    assert_no_overlap(&t.log, token(&t.elected_a), token(&t.elected_b));
}

/// A `--grace` longer than the safety margin allows is refused at start,
/// with the numbers.
#[tokio::test(flavor = "multi_thread")]
async fn grace_beyond_the_safety_margin_is_refused() {
    let r = common::run(&[
        "--backend",
        "memory://",
        "campaign",
        "x",
        "--ttl",
        "2s",
        "--grace",
        "30s",
        "--",
        "true",
    ])
    .await;
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--grace 30s"), "{r:?}");
    assert!(r.stderr.contains("200ms"), "{r:?}");
    assert_eq!(r.stdout, "");
}

/// A leader cut off from etcd (through a proxy) steps down at its local
/// deadline; its command ignores `SIGTERM` and gets `SIGKILL` within the
/// safety margin (default `--grace`), before the backend can elect B.
#[tokio::test(flavor = "multi_thread")]
async fn stubborn_command_is_killed_before_the_successor_is_elected() {
    let (server, url) = server().await;
    let target = server.client_addr();
    let proxy = Proxy::start(target).await.unwrap();
    let a_url = format!("etcd://{}", proxy.local_addr());
    let (_dir, path) = common::temp();
    let log = path.join("log");
    let (mut a, mut b, elected_a) =
        a_leads_b_queues(&url, &a_url, &log, &writer(&log, true), "stubborn").await;

    proxy.set_mode(Mode::Blackhole);
    let lost = a.expect("lost").await;
    assert_eq!(lost["reason"], "deadline_exceeded", "{lost}");
    let term = a.expect("child_signalled").await;
    assert_eq!(term["signal"], "SIGTERM");
    let kill = a.expect("child_signalled").await;
    assert_eq!(kill["signal"], "SIGKILL");
    let exited = a.expect("child_exited").await;
    let elected_b = b.expect("elected").await;
    assert!(
        kill["mono_ns"].as_u64() < elected_b["mono_ns"].as_u64(),
        "SIGKILL {kill} after the successor's {elected_b}"
    );
    assert!(exited["mono_ns"].as_u64() < elected_b["mono_ns"].as_u64());
    wait_lines(&log, token(&elected_b), 6).await;
    assert_no_overlap(&log, token(&elected_a), token(&elected_b));
    proxy.set_mode(Mode::Pass);
    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait().await.code(), Some(0), "{}", a.stderr());
    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait().await.code(), Some(0), "{}", b.stderr());
}
