//! The fault campaign runner: starts a backend and K candidate processes,
//! injects seeded random faults, then checks the recorded history and
//! exits non-zero on any violation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tenure_chaos::check::{self, CheckParams};
use tenure_chaos::cluster::BackendKind;
use tenure_chaos::faults::FaultKind;
use tenure_chaos::record;
use tenure_chaos::runner::{self, CampaignConfig};
use tenure_chaos::summary::{self, CampaignSummary};

/// Which backends to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Which {
    /// One etcd server.
    Etcd,
    /// A three-member etcd cluster.
    Etcd3,
    /// One ZooKeeper server.
    Zk,
    /// A three-server ZooKeeper ensemble.
    Zk3,
    /// One PostgreSQL server.
    Pg,
    /// All five.
    All,
}

/// tenure's fault campaign.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Backends (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    backend: Vec<Which>,
    /// Seed of the fault plan (random by default; always printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Faults per backend (0: run for --duration).
    #[arg(long, default_value_t = 40)]
    faults: usize,
    /// Longest run per backend, in seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// Candidate processes (3–10).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10))]
    candidates: u64,
    /// Lease TTL in milliseconds.
    #[arg(long, default_value_t = 1000)]
    ttl_ms: u64,
    /// (d): a leader is due within TTL + this many milliseconds of a heal.
    #[arg(long, default_value_t = 3000)]
    liveness_bound_ms: u64,
    /// (e): a loss may be reported this many milliseconds after the
    /// deadline (plus time spent frozen).
    #[arg(long, default_value_t = 1000)]
    stale_grace_ms: u64,
    /// How often a leader sends a guarded write, in milliseconds.
    #[arg(long, default_value_t = 100)]
    write_ms: u64,
    /// Run the backends' campaigns at the same time.
    #[arg(long)]
    parallel: bool,
    /// Output directory (logs, summary.json, summary.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only check the logs of an earlier run in --out.
    #[arg(long)]
    check_only: bool,
    /// Only these fault kinds (comma-separated: sigkill, sigstop,
    /// proxy-drop, proxy-blackhole, proxy-delay, proxy-slow, delete-key,
    /// expire-lease, backend-restart, backend-pause, member-kill,
    /// member-pause, signal-gated); all but signal-gated by default
    /// (asking for signal-gated makes the candidates run a gated command).
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    kinds: Vec<FaultKind>,
    /// Candidates to run deliberately broken (the checker's own test).
    #[arg(long, hide = true, value_delimiter = ',')]
    broken: Vec<usize>,
}

fn parse_kind(s: &str) -> Result<FaultKind, String> {
    FaultKind::from_name(s).ok_or_else(|| format!("unknown fault kind {s}"))
}

fn kinds(w: &[Which]) -> Vec<BackendKind> {
    let mut out = Vec::new();
    for k in w {
        let add: &[BackendKind] = match k {
            Which::Etcd => &[BackendKind::Etcd],
            Which::Etcd3 => &[BackendKind::Etcd3],
            Which::Zk => &[BackendKind::Zk],
            Which::Zk3 => &[BackendKind::Zk3],
            Which::Pg => &[BackendKind::Pg],
            Which::All => &BackendKind::ALL,
        };
        for b in add {
            if !out.contains(b) {
                out.push(*b);
            }
        }
    }
    out
}

fn replay(a: &Args, seed: u64, backends: &[BackendKind]) -> String {
    let names: Vec<&str> = backends.iter().map(|b| b.name()).collect();
    let mut cmd = format!(
        "cargo run -p tenure-chaos --bin tenure-chaos -- --backend {} --seed {seed} --faults {} --candidates {} --ttl-ms {} --liveness-bound-ms {} --stale-grace-ms {} --write-ms {}",
        names.join(","),
        a.faults,
        a.candidates,
        a.ttl_ms,
        a.liveness_bound_ms,
        a.stale_grace_ms,
        a.write_ms
    );
    if let Some(d) = a.duration {
        cmd.push_str(&format!(" --duration {d}"));
    }
    if a.parallel {
        cmd.push_str(" --parallel");
    }
    if !a.kinds.is_empty() {
        let k: Vec<&str> = a.kinds.iter().map(|k| k.name()).collect();
        cmd.push_str(&format!(" --kinds {}", k.join(",")));
    }
    cmd
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    let seed = a.seed.unwrap_or_else(|| fastrand::u64(..));
    let backends = kinds(&a.backend);
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/chaos/{seed}")));
    let command = replay(&a, seed, &backends);
    println!("tenure-chaos: seed {seed}; logs in {}", out.display());
    println!("replay: {command}");
    let ttl = Duration::from_millis(a.ttl_ms);
    let params = CheckParams {
        ttl,
        liveness_bound: Duration::from_millis(a.liveness_bound_ms),
        stale_grace: Duration::from_millis(a.stale_grace_ms),
    };
    let config = |b: BackendKind| CampaignConfig {
        backend: b,
        seed,
        faults: a.faults,
        duration: a.duration.map(Duration::from_secs),
        candidates: a.candidates as usize,
        ttl,
        dir: out.join(b.name()),
        candidate_bin: runner::candidate_bin_next_to_me(),
        broken: a.broken.clone(),
        write_every: Duration::from_millis(a.write_ms),
        liveness_bound: params.liveness_bound,
        only: a.kinds.clone(),
    };
    let mut seconds = vec![0.0; backends.len()];
    let mut failed = false;
    if !a.check_only {
        let runs: Vec<_> = if a.parallel {
            futures::future::join_all(backends.iter().map(|b| runner::run(config(*b)))).await
        } else {
            let mut v = Vec::new();
            for b in &backends {
                v.push(runner::run(config(*b)).await);
            }
            v
        };
        for (i, r) in runs.into_iter().enumerate() {
            match r {
                Ok(run) => seconds[i] = run.elapsed.as_secs_f64(),
                Err(e) => {
                    eprintln!("[{}] campaign failed: {e}", backends[i]);
                    failed = true;
                }
            }
        }
    }
    let mut all = Vec::new();
    for (i, b) in backends.iter().enumerate() {
        let dir = out.join(b.name());
        let rec = match record::load(&dir) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("[{b}] cannot read the logs in {}: {e}", dir.display());
                failed = true;
                continue;
            }
        };
        let report = check::check(&rec, params);
        let s = CampaignSummary {
            backend: *b,
            seed,
            candidates: a.candidates as usize,
            ttl_ms: a.ttl_ms,
            liveness_bound_ms: a.liveness_bound_ms,
            seconds: seconds[i],
            report,
        };
        print!("{}", summary::console(&s));
        all.push(s);
    }
    if let Err(e) =
        std::fs::create_dir_all(&out).and_then(|()| summary::write(&out, &all, &command))
    {
        eprintln!("cannot write the summary in {}: {e}", out.display());
    }
    let violations: usize = all.iter().map(|s| s.report.violations.len()).sum();
    if violations > 0 {
        println!("\n{violations} violation(s). Replay with:\n  {command}");
        ExitCode::from(1)
    } else if failed {
        println!("\nthe campaign did not run to its end. Replay with:\n  {command}");
        ExitCode::from(2)
    } else {
        println!(
            "\nno violation (seed {seed}); summary in {}",
            out.join("summary.md").display()
        );
        ExitCode::SUCCESS
    }
}
