//! One candidate of a fault campaign: campaigns on `--url`, logs every
//! event to `--log` (JSON lines, `CLOCK_MONOTONIC` stamps), writes under
//! its fencing token while it leads, and re-campaigns after each loss,
//! until `SIGTERM` (then it resigns).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tenure_chaos::candidate::{self, CandidateOptions};

/// A tenure candidate that logs what it is told.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Backend URL (`etcd://h:p[,h:p]`, `zk://h:p[,h:p][/root]`, `memory://`).
    #[arg(long)]
    url: String,
    /// Election name.
    #[arg(long, default_value = "chaos")]
    election: String,
    /// Candidate number (the proposal is `cand-<id>`).
    #[arg(long)]
    id: usize,
    /// Lease TTL in milliseconds.
    #[arg(long, default_value_t = 1000)]
    ttl_ms: u64,
    /// How often a leader polls its deadline, in milliseconds.
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
    /// How often a leader sends a guarded write, in milliseconds.
    #[arg(long, default_value_t = 100)]
    write_ms: u64,
    /// The log file (appended to).
    #[arg(long)]
    log: PathBuf,
    /// Deliberately unsafe: ignore losses and deadlines (the checker's own
    /// test).
    #[arg(long, hide = true)]
    broken: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let a = Args::parse();
    if let Ok(filter) = std::env::var("TENURE_CHAOS_TRACE") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let opts = CandidateOptions {
        url: a.url,
        election: a.election,
        id: a.id,
        ttl: Duration::from_millis(a.ttl_ms),
        poll: Duration::from_millis(a.poll_ms.max(1)),
        write_every: Duration::from_millis(a.write_ms.max(1)),
        log: a.log,
        broken: a.broken,
    };
    match candidate::run(opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos-candidate: {e}");
            ExitCode::FAILURE
        }
    }
}
