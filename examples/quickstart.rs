//! Three candidates: one wins, resigns, the next takes over in one round
//! trip; then the new leader's process dies (no resign, no goodbye) and
//! the last candidate takes over once the dead leader's lease expires.
//! An observer prints every leader change.
//!
//! Runs on the in-memory backend by default, on any other with
//! `--backend URL`:
//!
//! ```text
//! cargo run --example quickstart
//! cargo run --features etcd --example quickstart -- --backend etcd://127.0.0.1:2379
//! ```

mod common;

use std::time::{Duration, Instant};

use tenure::{DynBackend, Election, Leadership, Observation, StreamExt};

use common::Process;

const TTL: Duration = Duration::from_secs(2);

fn stamp(start: Instant) -> String {
    format!("[{:>6.3}s]", start.elapsed().as_secs_f64())
}

async fn candidate(backend: DynBackend, name: &str) -> tenure::Result<Leadership> {
    let election = Election::builder(backend, "scheduler").ttl(TTL).build()?;
    election.campaign(name).await
}

#[tokio::main]
async fn main() -> tenure::Result<()> {
    // A named in-memory backend: every `connect` in this process reaches it.
    let url = common::backend_url("memory://quickstart");
    let start = Instant::now();
    // Each candidate gets its own connection, as separate processes would.
    let conn = || tenure::connect(&url);

    // An observer: one line per leader change.
    let mut leaders = Election::builder(conn().await?, "scheduler")
        .build()?
        .observe();
    tokio::spawn(async move {
        while let Some(leader) = leaders.next().await {
            match leader {
                Observation::Leader(l) => println!(
                    "{} observer: leader is {} (token {})",
                    stamp(start),
                    String::from_utf8_lossy(&l.value),
                    l.token
                ),
                Observation::NoLeader => println!("{} observer: no leader", stamp(start)),
                other => println!("{} observer: {other:?}", stamp(start)),
            }
        }
    });

    let alpha = candidate(conn().await?, "alpha").await?;
    println!(
        "{} alpha: elected with fencing token {}",
        stamp(start),
        alpha.token()
    );

    // Two more candidates queue up behind alpha; bravo runs as a process
    // of its own, so that it can die.
    let (elected_tx, elected_rx) = tokio::sync::oneshot::channel();
    let bravo_url = url.clone();
    let mut bravo = Process::spawn("bravo", move || async move {
        let leadership = candidate(tenure::connect(&bravo_url).await?, "bravo").await?;
        let _ = elected_tx.send(leadership.token());
        leadership.lost().await;
        Ok(())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let charlie = tokio::spawn(candidate(conn().await?, "charlie"));
    tokio::time::sleep(Duration::from_millis(200)).await;

    println!("{} alpha: resigning", stamp(start));
    alpha.resign().await?;
    let token = elected_rx
        .await
        .map_err(|_| tenure::Error::Cancelled("bravo's process ended"))?;
    println!("{} bravo: elected with fencing token {token}", stamp(start));

    println!("{} bravo: the process dies (kill -9)", stamp(start));
    bravo.crash();

    let charlie = charlie
        .await
        .map_err(|_| tenure::Error::Cancelled("charlie task"))??;
    println!(
        "{} charlie: elected with fencing token {} (after bravo's lease expired)",
        stamp(start),
        charlie.token()
    );
    charlie.resign().await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("{} done", stamp(start));
    Ok(())
}
