//! Crash failover: a leader process is killed with `SIGKILL`; its queued
//! successor (in the bench, on a connection of its own) is elected once
//! the backend expires the dead leader's lease (etcd) or session
//! (ZooKeeper).
//!
//! Each sample runs from the bench's clock reading just before the kill
//! to the moment the successor's `campaign` resolves; the report gives
//! failover − TTL. Several elections run at once (different names) so that
//! enough samples fit in the time budget.

use std::time::Duration;

use futures::future::join_all;
use rustix::process::Signal;
use tenure::{DynBackend, Election, Session};

use crate::clock::{between, mono_ns};
use crate::error::{within, Context, Result};
use crate::handover::wait_queue;
use crate::peers::Tool;

/// Results of one TTL.
#[derive(Clone, Debug)]
pub struct Failovers {
    /// Kill → successor elected.
    pub samples: Vec<Duration>,
    /// The TTL the backend granted the successor (may exceed the one asked).
    pub granted: Duration,
}

/// `samples` crash failovers at `ttl`, `connections.len()` at a time.
/// `leader` makes the leader process for an election (`Tool::TenureCli`
/// or `Tool::BenchChild` with this TTL).
///
/// # Errors
/// Candidates that fail to start or be elected.
pub async fn run(
    leader: &Tool,
    connections: &[DynBackend],
    tag: &str,
    ttl: Duration,
    samples: usize,
) -> Result<Failovers> {
    let mut out = Vec::with_capacity(samples);
    let mut granted = ttl;
    let mut round = 0;
    while out.len() < samples {
        let width = connections.len().min(samples - out.len());
        let results = join_all(connections[..width].iter().enumerate().map(|(j, conn)| {
            let name = format!("failover-{tag}-{}ms-{round}-{j}", ttl.as_millis());
            one(leader, conn.clone(), name, ttl)
        }))
        .await;
        for r in results {
            let (sample, g) = r?;
            out.push(sample);
            granted = g;
        }
        round += 1;
    }
    Ok(Failovers {
        samples: out,
        granted,
    })
}

/// One election: leader process up, successor queued, leader killed.
async fn one(
    leader: &Tool,
    conn: DynBackend,
    name: String,
    ttl: Duration,
) -> Result<(Duration, Duration)> {
    let limit = ttl * 3 + Duration::from_secs(15);
    let mut proc = leader.spawn(&name, "leader")?;
    leader.wait_elected(&mut proc, limit).await?;
    let session = Session::new(conn.clone(), ttl)
        .await
        .context(|| format!("{name}: successor session"))?;
    let granted = session.ttl();
    let election = Election::builder(conn, name.as_str())
        .session(session.clone())
        .build()
        .context(|| format!("{name}: election"))?;
    let successor = {
        let e = election.clone();
        tokio::spawn(async move {
            let r = e.campaign("successor").await;
            (mono_ns(), r)
        })
    };
    wait_queue(&election, 2).await?;
    // Let the successor set its watch on the leader's entry.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = mono_ns();
    proc.signal(Signal::KILL)?;
    let (at, r) = within(limit, || format!("{name}: successor elected"), successor)
        .await?
        .context(|| format!("{name}: successor task"))?;
    let leadership = r.context(|| format!("{name}: successor campaign"))?;
    proc.kill().await;
    let _ = leadership.resign().await;
    session.close().await;
    Ok((between(t0, at), granted))
}
