//! `tenure-bench child`: one candidate in a process of its own, through
//! the library. It stands in for the `tenure` CLI where that binary is not
//! built, and prints the same JSON lines (`elected`, `resigned`).

use std::time::Duration;

use tenure::Election;

use crate::clock::mono_ns;
use crate::error::{Context, Result};

/// Campaigns for `election` with `proposal` on `url`; prints
/// `{"event":"elected",..}` when elected; on SIGTERM or SIGINT resigns,
/// prints `{"event":"resigned",..}` and returns.
///
/// # Errors
/// Connection or campaign failures.
pub async fn run(url: &str, election: &str, proposal: &str, ttl: Duration) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context(|| "SIGTERM handler".into())?;
    let mut int = signal(SignalKind::interrupt()).context(|| "SIGINT handler".into())?;
    let backend = tenure::connect(url)
        .await
        .context(|| format!("connect {url}"))?;
    let e = Election::builder(backend, election)
        .ttl(ttl)
        .build()
        .context(|| "election".into())?;
    let leadership = tokio::select! {
        l = e.campaign(proposal.to_owned()) => l.context(|| "campaign".into())?,
        _ = term.recv() => return Ok(()),
        _ = int.recv() => return Ok(()),
    };
    println!(
        "{{\"event\":\"elected\",\"election\":{},\"proposal\":{},\"token\":{},\"mono_ns\":{}}}",
        serde_json::Value::from(election),
        serde_json::Value::from(proposal),
        leadership.token(),
        mono_ns()
    );
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = leadership.lost() => {}
    }
    let _ = leadership.resign().await;
    println!("{{\"event\":\"resigned\",\"mono_ns\":{}}}", mono_ns());
    Ok(())
}
