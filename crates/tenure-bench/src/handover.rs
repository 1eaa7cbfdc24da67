//! Handover in process, through the library: the leader resigns, the
//! queued successor (on its own connection) learns it leads.
//!
//! Each sample runs from the bench's clock reading just before
//! `Leadership::resign` is called to the moment the successor's
//! `campaign` future resolves. Candidates alternate between two
//! connections, each with one session kept for the whole series.

use std::time::Duration;

use tenure::{DynBackend, Election, Leadership, Session};
use tokio::sync::oneshot;

use crate::clock::{between, mono_ns};
use crate::error::{fail, within, Context, Result};

/// How long to wait for the next leader before giving up.
const LIMIT: Duration = Duration::from_secs(15);

/// `runs` handovers between candidates on connections `a` and `b`.
/// `settle` is the pause after the successor is queued (its watch is set
/// up) and before the leader resigns.
///
/// # Errors
/// Backend failures, or a successor that is never elected.
pub async fn in_process(
    a: DynBackend,
    b: DynBackend,
    election: &str,
    ttl: Duration,
    runs: usize,
    settle: Duration,
) -> Result<Vec<Duration>> {
    let sa = Session::new(a.clone(), ttl)
        .await
        .context(|| "handover: session a".into())?;
    let sb = Session::new(b.clone(), ttl)
        .await
        .context(|| "handover: session b".into())?;
    let ea = Election::builder(a, election)
        .session(sa.clone())
        .build()
        .context(|| "handover: election a".into())?;
    let eb = Election::builder(b, election)
        .session(sb.clone())
        .build()
        .context(|| "handover: election b".into())?;
    let mut leader = within(LIMIT, || "handover: first leader".into(), ea.campaign("c0"))
        .await?
        .context(|| "handover: first campaign".into())?;
    let mut samples = Vec::with_capacity(runs);
    for i in 1..=runs {
        let next = if i % 2 == 1 { eb.clone() } else { ea.clone() };
        let (tx, rx) = oneshot::channel::<(u64, tenure::Result<Leadership>)>();
        tokio::spawn(async move {
            let r = next.campaign(format!("c{i}")).await;
            let _ = tx.send((mono_ns(), r));
        });
        wait_queue(&ea, 2).await?;
        tokio::time::sleep(settle).await;
        let t0 = mono_ns();
        tokio::spawn(leader.resign());
        let (at, r) = within(LIMIT, || format!("handover {i}: successor"), rx)
            .await?
            .context(|| format!("handover {i}: campaign task"))?;
        leader = r.context(|| format!("handover {i}: successor campaign"))?;
        samples.push(between(t0, at));
    }
    let _ = leader.resign().await;
    sa.close().await;
    sb.close().await;
    Ok(samples)
}

/// Polls until `election` lists exactly `n` candidates (up to 30 s).
///
/// # Errors
/// When it does not happen in time.
pub async fn wait_queue(election: &Election, n: usize) -> Result<()> {
    wait_queue_within(election, n, Duration::from_secs(30)).await
}

/// Polls until `election` lists exactly `n` candidates, for up to `limit`.
///
/// # Errors
/// When it does not happen in time.
pub async fn wait_queue_within(election: &Election, n: usize, limit: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Ok(c) = election.candidates().await {
            if c.len() == n {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(fail(format!(
                "{}: never saw {n} candidates",
                election.name()
            )));
        }
        // Reading a long queue is itself work: poll less often then.
        let pause = if n > 1000 { 200 } else { 3 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}
