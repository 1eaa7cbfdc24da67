//! `tenure` as a process on the in-memory backend (no servers): the
//! gated command, JSON output, exit codes and error messages.

#![allow(clippy::unwrap_used)]

mod common;

use common::{run, Running};
use nix::sys::signal::Signal;
use serde_json::Value;

#[tokio::test]
async fn once_runs_the_command_with_the_token_and_exits_with_its_status() {
    let r = run(&[
        "--backend",
        "memory://",
        "campaign",
        "jobs",
        "node-a",
        "--once",
        "--",
        "sh",
        "-c",
        "echo child-token=$TENURE_TOKEN",
    ])
    .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    let elected = r
        .stdout
        .lines()
        .find(|l| l.starts_with("elected jobs token="))
        .unwrap_or_else(|| panic!("no elected line: {r:?}"));
    let token = elected
        .split_whitespace()
        .find_map(|w| w.strip_prefix("token="))
        .unwrap();
    assert!(token.parse::<u64>().is_ok(), "{elected}");
    // Text mode: the child's stdout is tenure's stdout.
    assert!(
        r.stdout.contains(&format!("child-token={token}\n")),
        "{r:?}"
    );
    assert!(r.stdout.contains("proposal=node-a"), "{r:?}");
}

#[tokio::test]
async fn once_exits_with_the_child_code_or_128_plus_signal() {
    let code = |script: &'static str| async move {
        run(&[
            "--backend",
            "memory://",
            "campaign",
            "jobs",
            "--once",
            "--",
            "sh",
            "-c",
            script,
        ])
        .await
        .code
    };
    assert_eq!(code("exit 7").await, Some(7));
    assert_eq!(code("kill -TERM $$").await, Some(128 + 15));
}

#[tokio::test]
async fn json_events_parse_and_carry_the_contract_fields() {
    let (_dir, path) = common::temp();
    let env_file = path.join("env");
    let script = format!(
        "echo on-stdout; env | grep ^TENURE_ | sort > {}",
        env_file.display()
    );
    let r = run(&[
        "--backend",
        "memory://",
        "--output",
        "json",
        "campaign",
        "svc/shard-1",
        "p-1",
        "--once",
        "--ttl",
        "2s",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    let events = r.events();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "campaigning",
            "elected",
            "child_started",
            "child_exited",
            "resigned"
        ],
        "{r:?}"
    );
    let mut last = 0;
    for e in &events {
        assert_eq!(e["election"], "svc/shard-1");
        let mono = e["mono_ns"].as_u64().unwrap();
        assert!(mono >= last, "mono_ns goes backwards: {events:?}");
        last = mono;
    }
    let (campaigning, elected) = (&events[0], &events[1]);
    assert_eq!(campaigning["proposal"], "p-1");
    let lease = campaigning["lease"].as_str().unwrap();
    assert!(u64::from_str_radix(lease, 16).is_ok(), "{lease}");
    assert_eq!(elected["lease"], lease);
    assert_eq!(elected["proposal"], "p-1");
    let token = elected["token"].as_u64().unwrap();
    assert!(
        elected["valid_until_mono_ns"].as_u64().unwrap() > elected["mono_ns"].as_u64().unwrap()
    );
    assert_eq!(events[2]["token"], token);
    assert!(events[2]["pid"].as_u64().is_some());
    assert_eq!(events[3]["code"], 0);
    assert_eq!(events[3]["signal"], Value::Null);
    assert_eq!(events[4]["token"], token);
    // JSON mode: the child's stdout goes to stderr, stdout stays JSON.
    assert!(r.stderr.contains("on-stdout"), "{r:?}");
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert_eq!(
        env,
        format!(
            "TENURE_ELECTION=svc/shard-1\nTENURE_LEASE={lease}\nTENURE_PROPOSAL=p-1\nTENURE_TOKEN={token}\n"
        )
    );
}

#[tokio::test]
async fn default_proposal_is_host_and_pid() {
    let r = run(&[
        "--backend",
        "memory://",
        "--output",
        "json",
        "campaign",
        "jobs",
        "--once",
        "--",
        "true",
    ])
    .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    let proposal = r.events()[0]["proposal"].as_str().unwrap().to_owned();
    let (host, pid) = proposal.rsplit_once(':').unwrap();
    assert!(!host.is_empty() && pid.parse::<u32>().is_ok(), "{proposal}");
}

#[tokio::test]
async fn leader_of_an_empty_election_exits_1() {
    let r = run(&["--backend", "memory://", "leader", "nobody-here"]).await;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert_eq!(r.stdout, "leader nobody-here none\n");
    let r = run(&[
        "leader",
        "nobody-here",
        "--backend",
        "memory://",
        "--output",
        "json",
    ])
    .await;
    assert_eq!(r.code, Some(1), "{r:?}");
    let e = &r.events()[0];
    assert_eq!(e["event"], "leader");
    assert_eq!(e["proposal"], Value::Null);
    assert_eq!(e["token"], Value::Null);
    let r = run(&["--backend", "memory://", "list", "nobody-here"]).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "");
}

async fn usage_error(args: &[&str], needle: &str) {
    let r = run(args).await;
    assert_eq!(r.code, Some(2), "{args:?}: {r:?}");
    assert!(
        r.stderr.contains(needle),
        "{args:?}: stderr lacks {needle:?}: {r:?}"
    );
    assert_eq!(r.stdout, "", "{args:?}");
}

#[tokio::test]
async fn bad_input_exits_2_naming_the_problem() {
    usage_error(
        &["--backend", "redis://h:1", "leader", "x"],
        "unknown scheme",
    )
    .await;
    usage_error(&["--backend", "localhost:2379", "list", "x"], "<scheme>://").await;
    usage_error(
        &["--backend", "memory://", "leader", ""],
        "must not be empty",
    )
    .await;
    usage_error(
        &["--backend", "memory://", "campaign", "a//b"],
        "invalid election name",
    )
    .await;
    usage_error(
        &["--backend", "memory://", "observe", "/abs"],
        "invalid election name",
    )
    .await;
    usage_error(
        &["--backend", "memory://", "campaign", "x", "--ttl", "2h"],
        "TTL 7200s is out of range",
    )
    .await;
    usage_error(
        &["leader", "x"],
        "no backend: pass --backend URL or set TENURE_BACKEND",
    )
    .await;
    usage_error(
        &["--backend", "memory://", "campaign", "x", "--ttl", "soon"],
        "soon",
    )
    .await;
    usage_error(
        &["--backend", "memory://", "--log-level", "[", "leader", "x"],
        "--log-level",
    )
    .await;
    usage_error(
        &["--backend", "memory://", "campaign", "x", "--", ""],
        "command",
    )
    .await;
    usage_error(&["elect", "x"], "unrecognized subcommand").await;
}

#[tokio::test]
async fn backend_from_the_environment() {
    let mut cmd = common::command(&["leader", "env-election"]);
    cmd.env("TENURE_BACKEND", "memory://");
    let r = common::run_cmd(cmd).await;
    assert_eq!(r.code, Some(1), "{r:?}");
}

#[tokio::test]
async fn unreachable_etcd_exits_3() {
    // A loopback port held without listening: connections are refused.
    let refused = tenure_testkit::harness::RefusedPort::new().unwrap();
    let port = refused.port();
    let url = format!("etcd://127.0.0.1:{port}");
    for cmd in ["leader", "list", "observe", "campaign"] {
        let r = run(&["--backend", &url, "--request-timeout", "2s", cmd, "x"]).await;
        assert_eq!(r.code, Some(3), "{cmd}: {r:?}");
        assert!(r.stderr.contains("unreachable"), "{cmd}: {r:?}");
        assert!(r.stderr.contains(&port.to_string()), "{cmd}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "one line: {r:?}");
    }
}

#[tokio::test]
async fn a_command_that_cannot_run_fails_before_campaigning() {
    let (_dir, path) = common::temp();
    let plain = path.join("not-executable");
    std::fs::write(&plain, "echo hi\n").unwrap();
    for (cmd, code, needle) in [
        ("/nonexistent/tenure-test-cmd", 127, "does not exist"),
        ("no-such-tenure-test-cmd", 127, "not found on PATH"),
        (plain.to_str().unwrap(), 126, "not an executable file"),
    ] {
        let r = run(&["--backend", "memory://", "campaign", "x", "--", cmd]).await;
        assert_eq!(r.code, Some(code), "{cmd}: {r:?}");
        assert!(r.stderr.contains(cmd) && r.stderr.contains(needle), "{r:?}");
        assert_eq!(r.stdout, "", "never campaigned: {r:?}");
    }
}

/// `kill -9` of tenure: nobody is left to stop the command, so the kernel
/// does (parent-death signal), and it does not go on leading.
#[tokio::test]
async fn the_command_dies_with_tenure() {
    let (_dir, path) = common::temp();
    let pid_file = path.join("pid");
    let script = format!(
        "echo $$ > {}; while :; do sleep 0.05; done",
        pid_file.display()
    );
    let mut t = campaign_json("orphan", &["--", "sh", "-c", &script]);
    let started = t.expect("child_started").await;
    let pid: i32 = common::wait_for_file(&pid_file)
        .await
        .trim()
        .parse()
        .unwrap();
    assert_eq!(started["pid"], pid, "the helper became the command");
    t.signal(Signal::SIGKILL);
    t.wait().await;
    assert!(common::wait_gone(pid).await, "the command outlived tenure");
}

fn campaign_json(election: &str, extra: &[&str]) -> Running {
    let mut args = vec![
        "--backend",
        "memory://",
        "--output",
        "json",
        "campaign",
        election,
    ];
    args.extend_from_slice(extra);
    Running::start(election, &args)
}

#[tokio::test]
async fn sigterm_without_command_resigns_and_exits_0() {
    let mut t = campaign_json("hold", &["--ttl", "2s"]);
    let elected = t.expect("elected").await;
    t.signal(Signal::SIGTERM);
    let resigned = t.expect("resigned").await;
    assert_eq!(resigned["token"], elected["token"]);
    assert_eq!(t.wait().await.code(), Some(0));
}

#[tokio::test]
async fn sigint_stops_the_child_group_before_resigning() {
    let (_dir, path) = common::temp();
    let (marker, grandchild) = (path.join("marker"), path.join("grandchild"));
    let script = format!(
        "trap 'echo term > {m}; exit 0' TERM; sleep 1000 & echo $! > {g}; while :; do sleep 0.05; done",
        g = grandchild.display(),
        m = marker.display()
    );
    let mut t = campaign_json(
        "gated",
        &["--ttl", "60s", "--grace", "5s", "--", "sh", "-c", &script],
    );
    t.expect("child_started").await;
    let grandchild_pid: i32 = common::wait_for_file(&grandchild)
        .await
        .trim()
        .parse()
        .unwrap();
    t.signal(Signal::SIGINT);
    let signalled = t.expect("child_signalled").await;
    assert_eq!(signalled["signal"], "SIGTERM");
    let exited = t.expect("child_exited").await;
    assert_eq!(exited["code"], 0, "the trap ran: {exited}");
    t.expect("resigned").await;
    assert_eq!(t.wait().await.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "term\n");
    assert!(
        common::wait_gone(grandchild_pid).await,
        "grandchild survived"
    );
    let names = t.names();
    let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
    assert!(pos("child_exited") < pos("resigned"), "{names:?}");
}

/// The grace applies to the whole group: a grandchild that takes its time
/// over SIGTERM gets it even though its parent (`sh`) died at once, and
/// tenure resigns only after it is done.
#[tokio::test]
async fn grandchildren_get_the_grace_too() {
    let (_dir, path) = common::temp();
    let (ready, done) = (path.join("ready"), path.join("done"));
    let inner = format!(
        "trap 'sleep 0.3; echo done > {}; exit 0' TERM; echo up > {}; while :; do sleep 0.05; done",
        done.display(),
        ready.display()
    );
    let script = format!("sh -c \"{inner}\" & wait");
    let mut t = campaign_json(
        "graceful",
        &["--ttl", "60s", "--grace", "5s", "--", "sh", "-c", &script],
    );
    t.expect("child_started").await;
    common::wait_for_file(&ready).await;
    t.signal(Signal::SIGTERM);
    t.expect("child_exited").await;
    t.expect("resigned").await;
    assert_eq!(t.wait().await.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "done\n");
    let kills: Vec<_> = t.seen.iter().filter(|e| e["signal"] == "SIGKILL").collect();
    assert!(kills.is_empty(), "{:?}", t.seen);
}

/// A command that exits by itself and leaves a process behind: that
/// process is stopped (SIGTERM) before tenure resigns.
#[tokio::test]
async fn leftovers_of_a_finished_command_are_stopped_before_resigning() {
    let (_dir, path) = common::temp();
    let (ready, done) = (path.join("ready"), path.join("done"));
    let inner = format!(
        "trap 'echo stopped > {}; exit 0' TERM; echo up > {}; while :; do sleep 0.05; done",
        done.display(),
        ready.display()
    );
    let script = format!(
        "sh -c \"{inner}\" & while [ ! -s {} ]; do sleep 0.02; done; exit 5",
        ready.display()
    );
    let mut t = campaign_json("leftover", &["--once", "--", "sh", "-c", &script]);
    let exited = t.expect("child_exited").await;
    assert_eq!(exited["code"], 5);
    let signalled = t.expect("child_signalled").await;
    assert_eq!(signalled["signal"], "SIGTERM");
    t.expect("resigned").await;
    assert_eq!(t.wait().await.code(), Some(5));
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "stopped\n");
}

#[tokio::test]
async fn a_child_ignoring_sigterm_is_killed_after_grace() {
    let (_dir, path) = common::temp();
    let ready = path.join("ready");
    let script = format!(
        "trap '' TERM; echo up > {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut t = campaign_json("stubborn", &["--grace", "300ms", "--", "sh", "-c", &script]);
    t.expect("child_started").await;
    common::wait_for_file(&ready).await;
    t.signal(Signal::SIGTERM);
    t.expect_where("child_signalled", |e| e["signal"] == "SIGTERM")
        .await;
    t.expect_where("child_signalled", |e| e["signal"] == "SIGKILL")
        .await;
    let exited = t.expect("child_exited").await;
    assert_eq!(exited["signal"], "SIGKILL", "{exited}");
    assert_eq!(exited["code"], Value::Null);
    t.expect("resigned").await;
    assert_eq!(t.wait().await.code(), Some(0));
}

#[tokio::test]
async fn a_crashing_child_is_restarted_after_the_recampaign_delay() {
    let mut t = campaign_json(
        "crashy",
        &["--recampaign-delay", "200ms", "--", "sh", "-c", "exit 3"],
    );
    let first = t.expect("elected").await;
    t.expect_where("child_exited", |e| e["code"] == 3).await;
    t.expect("resigned").await;
    let second = t.expect("elected").await;
    assert!(second["token"].as_u64() > first["token"].as_u64());
    let gap = second["mono_ns"].as_u64().unwrap() - first["mono_ns"].as_u64().unwrap();
    assert!(gap >= 200_000_000, "re-campaigned after {gap} ns");
    t.signal(Signal::SIGTERM);
    assert_eq!(t.wait().await.code(), Some(0));
}

#[tokio::test]
async fn help_lists_exit_codes() {
    let r = run(&["--help"]).await;
    assert_eq!(r.code, Some(0));
    for needle in [
        "Exit codes",
        "TENURE_BACKEND",
        "campaign",
        "observe",
        "leader",
        "list",
    ] {
        assert!(r.stdout.contains(needle), "{needle}: {}", r.stdout);
    }
    let r = run(&["campaign", "--help"]).await;
    assert!(r.stdout.contains("TENURE_TOKEN"), "{}", r.stdout);
}
