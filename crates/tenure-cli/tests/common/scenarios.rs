//! Scenarios every real backend runs: the same `tenure` invocations
//! against an etcd or ZooKeeper URL.

use std::future::Future;
use std::path::Path;

use nix::sys::signal::Signal;
use serde_json::Value;

use super::{run, Running, PATIENCE};

/// `tenure --backend url --output json <cmd> <election> [extra..]`, running.
pub fn start(url: &str, label: &str, cmd: &str, election: &str, extra: &[&str]) -> Running {
    let mut args = vec!["--backend", url, "--output", "json", cmd, election];
    args.extend_from_slice(extra);
    Running::start(label, &args)
}

/// `tenure list` until it shows `n` candidates; returns them.
pub async fn wait_candidates(url: &str, election: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let r = run(&["--backend", url, "--output", "json", "list", election]).await;
        assert_eq!(r.code, Some(0), "{r:?}");
        let events = r.events();
        if events.len() == n {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {n} candidates: {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn token(v: &Value) -> u64 {
    v["token"]
        .as_u64()
        .unwrap_or_else(|| panic!("no token: {v}"))
}

/// Waits until `path` holds exactly `content`.
async fn wait_for_content(path: &Path, content: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while std::fs::read_to_string(path).ok().as_deref() != Some(content) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never held {content:?}",
            path.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Two candidates: the first is elected; `leader`, `list` and `observe`
/// show it; SIGTERM makes it resign and exit 0; the second is elected and
/// `observe` prints the change, then "no leader" when it goes too.
pub async fn handover(url: &str) {
    let election = super::unique("handover");
    let e = election.as_str();
    let mut a = start(url, "a", "campaign", e, &["node-a", "--ttl", "2s"]);
    let elected_a = a.expect("elected").await;
    assert_eq!(elected_a["proposal"], "node-a");
    let mut b = start(url, "b", "campaign", e, &["node-b", "--ttl", "2s"]);
    b.expect("campaigning").await;

    let list = wait_candidates(url, e, 2).await;
    assert_eq!(list[0]["position"], 0);
    assert_eq!(list[0]["proposal"], "node-a");
    assert_eq!(list[0]["created"], elected_a["token"]);
    assert_eq!(list[0]["lease"], elected_a["lease"]);
    assert_eq!(list[1]["position"], 1);
    assert_eq!(list[1]["proposal"], "node-b");
    assert!(list[1]["created"].as_u64() > list[0]["created"].as_u64());

    let r = run(&["--backend", url, "--output", "json", "leader", e]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    let leader = &r.events()[0];
    assert_eq!(leader["proposal"], "node-a");
    assert_eq!(leader["token"], elected_a["token"]);
    let r = run(&["--backend", url, "leader", e]).await;
    assert_eq!(
        r.stdout,
        format!("leader {e} token={} proposal=node-a\n", token(&elected_a))
    );

    let mut obs = start(url, "observe", "observe", e, &[]);
    let first = obs.expect("leader").await;
    assert_eq!(first["proposal"], "node-a");

    a.signal(Signal::SIGTERM);
    let resigned = a.expect("resigned").await;
    assert_eq!(resigned["token"], elected_a["token"]);
    assert_eq!(a.wait().await.code(), Some(0), "stderr: {}", a.stderr());

    let elected_b = b.expect("elected").await;
    assert!(token(&elected_b) > token(&elected_a));
    assert!(elected_b["mono_ns"].as_u64() >= resigned["mono_ns"].as_u64());
    let change = obs
        .expect_where("leader", |v| v["proposal"] == "node-b")
        .await;
    assert_eq!(change["token"], elected_b["token"]);

    b.signal(Signal::SIGTERM);
    b.expect("resigned").await;
    assert_eq!(b.wait().await.code(), Some(0), "stderr: {}", b.stderr());
    let none = obs
        .expect_where("leader", |v| v["proposal"].is_null())
        .await;
    assert!(none["token"].is_null());
    let r = run(&["--backend", url, "leader", e]).await;
    assert_eq!(r.code, Some(1), "{r:?}");

    obs.signal(Signal::SIGINT);
    assert_eq!(obs.wait().await.code(), Some(0));
    // Every leader the observer printed was a real one, in token order.
    let tokens: Vec<u64> = obs
        .seen
        .iter()
        .filter_map(|v| v["token"].as_u64())
        .collect();
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
}

/// A child that records SIGTERM in `marker` and, once its trap is set,
/// its token in `started`.
fn trapping_child(started: &Path, marker: &Path) -> String {
    format!(
        "trap 'echo term >> {m}; exit 0' TERM; echo $TENURE_TOKEN > {s}; while :; do sleep 0.05; done",
        s = started.display(),
        m = marker.display()
    )
}

/// The command runs only while leader: deleting the leader's entry
/// (`delete(election)`) makes tenure report the loss and SIGKILL the
/// child at once (the backend may already have elected a successor: no
/// time for its SIGTERM trap); then tenure campaigns again and restarts it
/// under a new token. With `--once` the loss exits 4.
pub async fn gated_command_stops_on_loss<F, Fut>(url: &str, delete: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let (_dir, path) = super::temp();
    let (started, marker) = (path.join("started"), path.join("marker"));
    let script = trapping_child(&started, &marker);
    let election = super::unique("gated");
    let e = election.as_str();
    let mut t = start(
        url,
        "gated",
        "campaign",
        e,
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
    let child = t.expect("child_started").await;
    assert_eq!(child["token"], elected["token"]);
    let seen_token = super::wait_for_file(&started).await;
    assert_eq!(seen_token.trim(), token(&elected).to_string());
    assert!(!marker.exists(), "SIGTERM before any loss");

    delete(election.clone()).await;
    let lost = t.expect("lost").await;
    assert_eq!(lost["reason"], "entry_deleted", "{lost}");
    assert_eq!(lost["token"], elected["token"]);
    let signalled = t.expect("child_signalled").await;
    assert_eq!(signalled["signal"], "SIGKILL");
    assert_eq!(signalled["pid"], child["pid"]);
    assert!(signalled["mono_ns"].as_u64() >= lost["mono_ns"].as_u64());
    let exited = t.expect("child_exited").await;
    assert_eq!(exited["signal"], "SIGKILL", "{exited}");
    assert!(!marker.exists(), "SIGTERM after the entry was deleted");

    // Default mode: campaign again, run the command again.
    let again = t.expect("elected").await;
    assert!(token(&again) > token(&elected));
    let child2 = t.expect("child_started").await;
    assert_eq!(child2["token"], again["token"]);
    wait_for_content(&started, &format!("{}\n", token(&again))).await;
    t.signal(Signal::SIGTERM);
    t.expect("resigned").await;
    assert_eq!(t.wait().await.code(), Some(0), "stderr: {}", t.stderr());
    // The shutdown left the command its grace: its trap ran.
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "term\n");

    // --once: the same loss ends tenure with exit code 4.
    std::fs::remove_file(&marker).unwrap();
    std::fs::remove_file(&started).unwrap();
    let mut once = start(
        url,
        "once",
        "campaign",
        e,
        &["--ttl", "2s", "--once", "--", "sh", "-c", &script],
    );
    once.expect("child_started").await;
    super::wait_for_file(&started).await;
    delete(election.clone()).await;
    once.expect_where("lost", |v| v["reason"] == "entry_deleted")
        .await;
    let exited = once.expect("child_exited").await;
    assert_eq!(exited["signal"], "SIGKILL", "{exited}");
    assert_eq!(
        once.wait().await.code(),
        Some(4),
        "stderr: {}",
        once.stderr()
    );
    assert!(!marker.exists(), "SIGTERM after the entry was deleted");
    assert!(!once.names().contains(&"resigned".to_owned()));
}

/// When the backend takes leadership away (the entry is deleted), a
/// successor may already be elected: the child gets SIGKILL at once,
/// without SIGTERM and whatever `--grace` says.
pub async fn child_killed_at_once_when_the_entry_goes<F, Fut>(url: &str, delete: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let (_dir, path) = super::temp();
    let started = path.join("started");
    let script = format!(
        "trap '' TERM; echo up > {}; while :; do sleep 0.05; done",
        started.display()
    );
    let election = super::unique("stubborn");
    let mut t = start(
        url,
        "stubborn",
        "campaign",
        &election,
        &[
            "--ttl", "10s", "--grace", "1s", "--once", "--", "sh", "-c", &script,
        ],
    );
    t.expect("child_started").await;
    super::wait_for_file(&started).await;
    delete(election.clone()).await;
    let lost = t.expect("lost").await;
    assert_eq!(lost["reason"], "entry_deleted", "{lost}");
    // The first signal after the loss is SIGKILL: no SIGTERM, no grace.
    let kill = t.expect("child_signalled").await;
    assert_eq!(kill["signal"], "SIGKILL");
    let exited = t.expect("child_exited").await;
    assert_eq!(exited["signal"], "SIGKILL");
    assert!(exited["code"].is_null());
    assert_eq!(t.wait().await.code(), Some(4));
}

/// A candidate that is never elected never starts its command, and
/// withdraws cleanly on SIGTERM.
pub async fn never_elected_never_runs(url: &str) {
    let (_dir, path) = super::temp();
    let marker = path.join("ran");
    let election = super::unique("never");
    let e = election.as_str();
    let mut leader = start(url, "leader", "campaign", e, &["holder", "--ttl", "2s"]);
    leader.expect("elected").await;
    let touch = format!("touch {}", marker.display());
    let mut waiting = start(
        url,
        "waiting",
        "campaign",
        e,
        &["waiter", "--ttl", "2s", "--", "sh", "-c", &touch],
    );
    waiting.expect("campaigning").await;
    wait_candidates(url, e, 2).await;
    // Keep it queued through a few keep-alive rounds.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    waiting.signal(Signal::SIGTERM);
    assert_eq!(waiting.wait().await.code(), Some(0), "{}", waiting.stderr());
    let events = waiting.drain().await.to_vec();
    assert_eq!(waiting.names(), ["campaigning"], "{events:?}");
    assert!(!marker.exists(), "the command ran without leadership");
    // Its entry is gone: only the leader is left.
    let list = wait_candidates(url, e, 1).await;
    assert_eq!(list[0]["proposal"], "holder");
    leader.signal(Signal::SIGTERM);
    assert_eq!(leader.wait().await.code(), Some(0));
}

/// `--once` without a command: the loss is reported and tenure exits 4.
pub async fn once_without_command_exits_4_on_loss<F, Fut>(url: &str, delete: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let election = super::unique("once");
    let mut t = start(
        url,
        "once",
        "campaign",
        &election,
        &["--ttl", "2s", "--once"],
    );
    let elected = t.expect("elected").await;
    delete(election.clone()).await;
    let lost = t.expect("lost").await;
    assert_eq!(lost["reason"], "entry_deleted");
    assert_eq!(lost["token"], elected["token"]);
    assert_eq!(t.wait().await.code(), Some(4), "stderr: {}", t.stderr());
}

/// `tenure leader` with both strategies, as JSON events.
async fn leader_both_ways(url: &str, e: &str) -> [super::Finished; 2] {
    let queue = run(&["--backend", url, "--output", "json", "leader", e]).await;
    let single = run(&[
        "--backend",
        url,
        "--output",
        "json",
        "leader",
        e,
        "--strategy",
        "single-key",
    ])
    .await;
    [queue, single]
}

/// One strategy per election: with a single-key leader in place, a
/// default (queue) candidate is refused and never elected, and the other
/// way round; `tenure leader` names the one leader whichever strategy it
/// reads with.
pub async fn mixed_strategies_one_leader(url: &str) {
    for (first, second) in [
        (&["--strategy", "single-key"][..], &[][..]),
        (&[][..], &["--strategy", "single-key"][..]),
    ] {
        let election = super::unique("mixed");
        let e = election.as_str();
        let mut a_args = vec!["A", "--ttl", "2s"];
        a_args.extend_from_slice(first);
        let mut a = start(url, "A", "campaign", e, &a_args);
        let elected = a.expect("elected").await;
        let mut b_args = vec!["B", "--ttl", "2s"];
        b_args.extend_from_slice(second);
        let mut b = start(url, "B", "campaign", e, &b_args);
        // B reaches the backend and is refused for good: it exits 3 at
        // once with the backend's words, never elected.
        let status = b.wait().await;
        assert_eq!(status.code(), Some(3), "stderr:\n{}", b.stderr());
        assert!(b.stderr().contains("cannot join it"), "{}", b.stderr());
        for r in leader_both_ways(url, e).await {
            assert_eq!(r.code, Some(0), "{r:?}");
            let leader = &r.events()[0];
            assert_eq!(leader["proposal"], "A", "{r:?}");
            assert_eq!(leader["token"], elected["token"], "{r:?}");
        }
        a.signal(Signal::SIGTERM);
        assert_eq!(a.wait().await.code(), Some(0), "{}", a.stderr());
        b.drain().await;
        assert!(
            !b.names().iter().any(|n| n == "elected"),
            "B was elected next to A: {:?}; stderr:\n{}",
            b.names(),
            b.stderr()
        );
    }
}

/// Names that some backend cannot hold are refused by every backend as
/// invalid input (exit 2), at once: `campaign --once`, `observe`,
/// `leader`, `list`.
pub async fn names_no_backend_can_hold_exit_2(url: &str) {
    for name in [
        "odd\u{e000}name",
        "odd\u{f8ff}",
        "odd\u{fffd}",
        "odd\u{fffe}",
        "nest/leader",
        "zookeeper",
        "jobs/_c_0f-latch-0000000001",
    ] {
        for args in [
            &["campaign", name, "--once", "--ttl", "2s"][..],
            &["observe", name][..],
            &["leader", name][..],
            &["list", name][..],
        ] {
            let mut all = vec!["--backend", url];
            all.extend_from_slice(args);
            let r = run(&all).await;
            assert_eq!(r.code, Some(2), "{args:?}: {r:?}");
            assert!(
                r.stderr.contains("invalid election name"),
                "{args:?}: {r:?}"
            );
        }
    }
}

/// `n` `tenure campaign` processes started at once: every one prints
/// `campaigning` (none fails to connect or to open its session), all `n`
/// are queued, exactly one prints `elected`; then the followers stop on
/// SIGTERM (exit 0, never elected, the leader still holds) and the leader
/// last. The queue is read by one backend connected in this process
/// before the burst (a `tenure list` per poll would add connections of
/// its own to the load under test).
pub async fn burst(url: &str, n: usize) {
    let election = super::unique("burst");
    let e = election.as_str();
    let name = tenure::ElectionName::new(e).unwrap();
    let observer = tenure::connect(url).await.unwrap();
    let queued = |want: usize| {
        let (observer, name) = (observer.clone(), name.clone());
        async move {
            let deadline = tokio::time::Instant::now() + PATIENCE;
            loop {
                let snapshot = observer.candidates(&name).await;
                if let Ok(s) = &snapshot {
                    if s.entries.len() == want {
                        return s.entries.clone();
                    }
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never {want} candidates: {snapshot:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    let started = tokio::time::Instant::now();
    let mut all: Vec<Running> = (0..n)
        .map(|i| {
            let proposal = format!("c{i}");
            start(url, &proposal, "campaign", e, &[&proposal, "--ttl", "10s"])
        })
        .collect();
    for r in all.iter_mut() {
        r.expect("campaigning").await;
    }
    let queue = queued(n).await;
    println!("{n} candidates queued in {:?}", started.elapsed());
    let head = String::from_utf8_lossy(&queue[0].value).into_owned();
    let leader = all
        .iter()
        .position(|r| r.label == head)
        .unwrap_or_else(|| panic!("the head {head} is none of ours"));
    let mut leader = all.swap_remove(leader);
    let head_token = leader.expect("elected").await["token"].as_u64().unwrap();
    for f in &all {
        f.signal(Signal::SIGTERM);
    }
    for f in all.iter_mut() {
        let status = f.wait().await;
        f.drain().await;
        assert_eq!(
            status.code(),
            Some(0),
            "{}: {:?}\n{}",
            f.label,
            f.names(),
            f.stderr()
        );
        earlier_terms_only(f, &head, head_token);
    }
    leader.signal(Signal::SIGTERM);
    assert_eq!(leader.wait().await.code(), Some(0), "{}", leader.stderr());
    queued(0).await;
}

/// Checks that `f`, which is not the head of the queue, was never
/// elected while the head led: a term of its own must have come before
/// the head's (a smaller fencing token) and ended (`lost`). A process
/// starved of CPU long enough for its lease to lapse during the burst
/// does step down, and campaigns again at the back of the queue; such a
/// term is printed, with why it ended.
fn earlier_terms_only(f: &Running, head: &str, head_token: u64) {
    let seen = &f.seen;
    for (i, event) in seen.iter().enumerate() {
        if event["event"] != "elected" {
            continue;
        }
        let token = event["token"].as_u64().unwrap();
        let ended = seen[i + 1..]
            .iter()
            .find(|e| e["event"] == "lost" && e["token"] == event["token"]);
        assert!(
            token < head_token && ended.is_some(),
            "{} was elected (token {token}) while {head} led (token {head_token}): {seen:?}",
            f.label
        );
        println!(
            "{} led an earlier term (token {token}), which ended: {}",
            f.label,
            ended.map(|e| e["reason"].to_string()).unwrap_or_default()
        );
    }
}

/// A rolling restart at process level: follower B, then leader A, get
/// SIGTERM; each has deleted its entry by the time it has exited (one
/// `tenure list` right after the exit shows it gone, no waiting), and C,
/// started last, leads at once.
pub async fn stopped_processes_leave_no_entry(url: &str) {
    let election = super::unique("rolling");
    let e = election.as_str();
    let proposals = |events: Vec<Value>| -> Vec<String> {
        events
            .iter()
            .map(|v| v["proposal"].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    let mut a = start(url, "A", "campaign", e, &["A", "--ttl", "2s"]);
    a.expect("elected").await;
    let mut b = start(url, "B", "campaign", e, &["B", "--ttl", "2s"]);
    b.expect("campaigning").await;
    wait_candidates(url, e, 2).await;

    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait().await.code(), Some(0), "{}", b.stderr());
    let list = run(&["--backend", url, "--output", "json", "list", e]).await;
    assert_eq!(proposals(list.events()), ["A"], "B's entry outlived B");

    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait().await.code(), Some(0), "{}", a.stderr());
    let list = run(&["--backend", url, "--output", "json", "list", e]).await;
    assert!(list.events().is_empty(), "A's entry outlived A: {list:?}");

    let mut c = start(url, "C", "campaign", e, &["C", "--ttl", "2s"]);
    c.expect("elected").await;
    c.signal(Signal::SIGTERM);
    assert_eq!(c.wait().await.code(), Some(0), "{}", c.stderr());
}
