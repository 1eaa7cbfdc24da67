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
    /// Run a gated command while leader, through `tenure campaign`'s
    /// supervisor (for the `signal-gated` fault).
    #[arg(long)]
    gated: bool,
}

fn main() -> ExitCode {
    // The gated command's helpers are this binary again, under hidden
    // first arguments, and run before any async runtime exists.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let helper: Option<fn(&[std::ffi::OsString]) -> i32> = match raw.get(1).and_then(|a| a.to_str())
    {
        Some(tenure_cli::child::SUPERVISOR) => Some(tenure_cli::child::supervisor_main),
        Some(tenure_cli::child::EXEC_HELPER) => Some(tenure_cli::child::exec_helper),
        Some(candidate::COMMAND_WRITER) => Some(candidate::command_writer),
        _ => None,
    };
    if let Some(helper) = helper {
        let code = helper(&raw[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let a = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos-candidate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(candidate_main(a))
}

async fn candidate_main(a: Args) -> ExitCode {
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
        gated: a.gated,
    };
    match candidate::run(opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos-candidate: {e}");
            ExitCode::FAILURE
        }
    }
}
