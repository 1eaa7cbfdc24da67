//! Three candidates on the in-memory backend: one wins, resigns, the next
//! takes over in one round trip; then the new leader's connection is cut
//! and the last candidate takes over once the lost leader's lease expires.
//! An observer prints every leader change.
//!
//! Run with `cargo run --example quickstart`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tenure::memory::MemoryBackend;
use tenure::{DynBackend, Election, Leadership, Observation};

const TTL: Duration = Duration::from_secs(2);

fn stamp(start: Instant) -> String {
    format!("[{:>6.3}s]", start.elapsed().as_secs_f64())
}

async fn candidate(backend: DynBackend, name: &str) -> tenure::Result<Leadership> {
    let election = Election::builder(backend, "scheduler").ttl(TTL).build()?;
    election.campaign(name.to_string()).await
}

#[tokio::main]
async fn main() -> tenure::Result<()> {
    let start = Instant::now();
    // One in-process "server"; each candidate gets its own connection so
    // that we can cut one of them.
    let server = MemoryBackend::new();
    let conn = |_: &str| server.client();

    // An observer: one line per leader change.
    let watcher: DynBackend = Arc::new(conn("observer"));
    let mut leaders = Election::builder(watcher, "scheduler").build()?.observe();
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

    let alpha = candidate(Arc::new(conn("alpha")), "alpha").await?;
    println!(
        "{} alpha: elected with fencing token {}",
        stamp(start),
        alpha.token()
    );

    // Two more candidates queue up behind alpha.
    let bravo_conn = conn("bravo");
    let bravo = tokio::spawn(candidate(Arc::new(bravo_conn.clone()), "bravo"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let charlie = tokio::spawn(candidate(Arc::new(conn("charlie")), "charlie"));
    tokio::time::sleep(Duration::from_millis(200)).await;

    println!("{} alpha: resigning", stamp(start));
    let _ = alpha.resign().await;
    let bravo = bravo
        .await
        .map_err(|_| tenure::Error::Cancelled("bravo task"))??;
    println!(
        "{} bravo: elected with fencing token {}",
        stamp(start),
        bravo.token()
    );

    println!("{} bravo: network cut (simulated partition)", stamp(start));
    bravo_conn.set_unreachable(true);
    let reason = bravo.lost().await;
    println!("{} bravo: stopped leading: {reason}", stamp(start));

    let charlie = charlie
        .await
        .map_err(|_| tenure::Error::Cancelled("charlie task"))??;
    println!(
        "{} charlie: elected with fencing token {} (after bravo's lease expired)",
        stamp(start),
        charlie.token()
    );
    let _ = charlie.resign().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("{} done", stamp(start));
    Ok(())
}
