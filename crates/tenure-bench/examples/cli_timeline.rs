//! Where a process-level hand-over spends its time: two `tenure campaign`
//! processes on one election, the leader told to resign with SIGTERM, both
//! logging at trace level with microsecond timestamps. Prints each log
//! line of the hand-over as time since the signal.
//!
//! ```text
//! cargo build --release -p tenure-cli
//! cargo run --release -p tenure-bench --example cli_timeline -- zk
//! cargo run --release -p tenure-bench --example cli_timeline -- etcd
//! ```

#![allow(clippy::unwrap_used)] // a measuring tool: fail loudly

use std::time::Duration;

use rustix::process::Signal;
use tenure_bench::procs::Proc;
use tenure_bench::stats::Distribution;
use tokio::process::Command;

/// Hand-overs run: the first ones warm the server up (a fresh JVM is
/// slow), only the last [`SHOWN`] are printed.
const ROUNDS: usize = 40;
const SHOWN: usize = 3;
/// Hand-overs left out of the median.
const WARM_UP: usize = 10;

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "zk".into());
    let bin = tenure_bench::peers::tenure_cli().expect("build the tenure CLI first");
    let (url, _zk, _etcd) = if which == "etcd" {
        let (s, url) = tenure_bench::example::etcd().await.unwrap();
        (url, None, Some(s))
    } else {
        let s = tenure_testkit::zk_server::ZkServer::start().await.unwrap();
        (
            format!("zk://{}/timeline", s.connect_string()),
            Some(s),
            None,
        )
    };
    let dir = std::env::temp_dir().join(format!("tenure-timeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let level =
        std::env::var("LEVEL").unwrap_or_else(|_| "tenure=trace,zookeeper_client=trace".into());
    let campaign = |proposal: &str| {
        // Through a shell: the bench's process handle sets stderr itself.
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"log="$1"; shift; exec "$@" 2>"$log""#)
            .arg("sh")
            .arg(dir.join(proposal))
            .arg(&bin)
            .args(["campaign", "e", proposal, "--backend", &url])
            .args(["--ttl", "5s", "--output", "json", "--log-format", "json"])
            .args(["--log-level", &level]);
        c
    };
    let elected = |l: &str| l.contains("\"elected\"");
    let mut leader = Proc::spawn("p0", campaign("p0")).unwrap();
    leader
        .wait_line(Duration::from_secs(10), elected)
        .await
        .unwrap();
    let mut took = Vec::new();
    for round in 1..=ROUNDS {
        let name = format!("p{round}");
        let mut next = Proc::spawn(name.clone(), campaign(&name)).unwrap();
        next.wait_line(Duration::from_secs(10), |l| l.contains("campaigning"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t0 = wall_us();
        let t0_mono = tenure_bench::clock::mono_ns();
        leader.signal(Signal::TERM).unwrap();
        let line = next
            .wait_line(Duration::from_secs(10), elected)
            .await
            .unwrap();
        let done = wall_us();
        leader.reap(Duration::from_secs(5)).await;
        let emitted = serde_json::from_str::<serde_json::Value>(&line.text)
            .ok()
            .and_then(|v| v["mono_ns"].as_u64())
            .map_or(f64::NAN, |ns| ns.saturating_sub(t0_mono) as f64 / 1e6);
        if round > WARM_UP {
            took.push((done - t0) as f64 / 1e3);
        }
        if round + SHOWN <= ROUNDS {
            leader = next;
            continue;
        }
        println!(
            "round {round}: signal → successor's line written {emitted:.2} ms, read {:.2} ms",
            (done - t0) as f64 / 1e3
        );
        for who in [format!("p{}", round - 1), name.clone()] {
            let text = std::fs::read_to_string(dir.join(&who)).unwrap();
            for l in text.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
                    continue;
                };
                let Some(ts) = v["timestamp"].as_str() else {
                    continue;
                };
                let Some(us) = wall_us_of(ts) else { continue };
                if us + 2_000 < t0 || us > done + 1_000 {
                    continue;
                }
                println!(
                    "  {who:>3} {:+8.3} ms {:5} {}",
                    (us - t0) as f64 / 1e3,
                    v["level"].as_str().unwrap_or(""),
                    v["fields"]["message"].as_str().unwrap_or("")
                );
            }
        }
        leader = next;
    }
    leader.signal(Signal::TERM).unwrap();
    leader.reap(Duration::from_secs(5)).await;
    println!(
        "median over hand-overs {}..={ROUNDS}: {:.2} ms",
        WARM_UP + 1,
        Distribution::of(&took).map_or(f64::NAN, |d| d.median)
    );
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn wall_us() -> i64 {
    since_epoch_us(std::time::SystemTime::now()).unwrap()
}

/// A log line's RFC 3339 timestamp as µs since the epoch.
fn wall_us_of(timestamp: &str) -> Option<i64> {
    since_epoch_us(humantime::parse_rfc3339(timestamp).ok()?)
}

fn since_epoch_us(t: std::time::SystemTime) -> Option<i64> {
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_micros()).ok()
}
