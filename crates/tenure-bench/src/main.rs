//! `tenure-bench`: runs the benchmark sections and writes the report and
//! the latency plot. `tenure-bench --help` for the options.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use tenure_bench::error::{Context, Result};
use tenure_bench::host::Host;
use tenure_bench::plan::Plan;
use tenure_bench::report::{Report, Section};
use tenure_bench::sections::{self, Ctx};
use tenure_bench::servers::Servers;
use tenure_bench::{child, peers, plot};

/// Counts live heap bytes, for memory per idle candidate.
#[global_allocator]
static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

fn live_bytes() -> usize {
    ALLOC.allocated()
}

/// tenure's benchmark suite: writes <out>/report.md and <out>/latency.svg.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Few runs and small sizes (a smoke test of the benchmark code, < 2 min).
    #[arg(long)]
    quick: bool,
    /// Output directory.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Run only these sections (repeatable).
    #[arg(long, value_enum)]
    only: Vec<Which>,
    /// Herd sizes of the scale section, on every backend (default: the
    /// plan's), e.g. `--scale-sizes 1000` to look at one row.
    #[arg(long, value_delimiter = ',')]
    scale_sizes: Vec<usize>,
    /// An earlier report whose Targets are shown beside this run's.
    #[arg(long, default_value = "crates/tenure-bench/results/report.md")]
    baseline: PathBuf,
    #[command(subcommand)]
    command: Option<Cmd>,
}

/// A section of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    Handover,
    Startup,
    Failover,
    Scale,
    Footprint,
    Machine,
    Postgres,
    AllElections,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// One candidate in a process of its own (used by the bench itself).
    Child {
        /// Backend URL.
        #[arg(long)]
        backend: String,
        /// Election name.
        #[arg(long)]
        election: String,
        /// Proposal.
        #[arg(long)]
        proposal: String,
        /// Lease TTL in milliseconds.
        #[arg(long)]
        ttl_ms: u64,
    },
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenure-bench: tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match args.command {
            Some(Cmd::Child {
                backend,
                election,
                proposal,
                ttl_ms,
            }) => {
                child::run(
                    &backend,
                    &election,
                    &proposal,
                    Duration::from_millis(ttl_ms),
                )
                .await
            }
            None => bench(args).await,
        }
    });
    // Background tasks (keep-alive loops, watches) must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenure-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bench(args: Args) -> Result<()> {
    let started = Instant::now();
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if !args.scale_sizes.is_empty() {
        plan.scale_sizes.clone_from(&args.scale_sizes);
        plan.zk_scale_sizes.clone_from(&args.scale_sizes);
    }
    let wants = |w: Which| args.only.is_empty() || args.only.contains(&w);
    let needs_servers = [
        Which::Handover,
        Which::Startup,
        Which::Failover,
        Which::Scale,
        Which::Footprint,
        Which::AllElections,
    ]
    .into_iter()
    .any(wants);
    std::fs::create_dir_all(&args.out).context(|| format!("create {}", args.out.display()))?;

    let mut host = Host::probe();
    host.etcd = Servers::etcd_version();
    let servers = if needs_servers {
        eprintln!("bench: starting etcd and ZooKeeper");
        let s = Servers::start().await?;
        host.zookeeper = s.zk_version().await;
        Some(s)
    } else {
        host.zookeeper = "not started".into();
        None
    };
    let tenure_cli = peers::tenure_cli();
    let python = peers::python_with_kazoo();
    let mut report = Report {
        host,
        mode: format!(
            "{} run (`tenure-bench{}`); process-level tenure candidate: {}.",
            if plan.quick { "Quick" } else { "Full" },
            if plan.quick { " --quick" } else { "" },
            match &tenure_cli {
                Some(p) => format!("the `tenure` CLI ({})", p.display()),
                None =>
                    "`tenure-bench child` (the library in its own process; the CLI was not built)"
                        .into(),
            }
        ),
        committed: std::fs::read_to_string(&args.baseline)
            .map(|md| tenure_bench::report::committed_targets(&md))
            .unwrap_or_default(),
        ..Report::default()
    };
    let ctx = Ctx {
        plan,
        servers,
        tenure_cli,
        python,
        live_bytes,
    };

    for which in [
        Which::Machine,
        Which::Handover,
        Which::Startup,
        Which::Failover,
        Which::Scale,
        Which::Footprint,
        Which::AllElections,
        Which::Postgres,
    ] {
        if !wants(which) {
            continue;
        }
        let t0 = Instant::now();
        eprintln!("bench: section {which:?}");
        let section: Result<Section> = match which {
            Which::Handover => sections::handover(&ctx, &mut report).await,
            Which::Startup => tenure_bench::startup::startup(&ctx, &mut report).await,
            Which::Failover => sections::failover(&ctx, &mut report).await,
            Which::Scale => sections::scale(&ctx, &mut report).await,
            Which::Footprint => sections::footprint(&ctx, &mut report).await,
            Which::Machine => Ok(sections::machine(&ctx)),
            Which::Postgres => sections::postgres(&ctx, &mut report).await,
            Which::AllElections => sections::all_elections(&ctx, &mut report).await,
        };
        match section {
            Ok(mut s) => {
                s.seconds = t0.elapsed().as_secs_f64();
                println!("{}", s.markdown());
                report.sections.push(s);
            }
            Err(e) => {
                eprintln!("bench: section {which:?} failed: {e}");
                report.failures.push((format!("{which:?}"), e.to_string()));
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.host.load_at_end = tenure_bench::host::load_average();

    let svg = args.out.join("latency.svg");
    let plot_name = match plot::write_svg(&svg, &report.series) {
        Ok(()) => Some("latency.svg"),
        Err(e) => {
            eprintln!("bench: no plot: {e}");
            None
        }
    };
    let md = args.out.join("report.md");
    std::fs::write(&md, report.markdown(plot_name))
        .context(|| format!("write {}", md.display()))?;
    eprintln!("bench: wrote {} in {:.0} s", md.display(), report.seconds);
    Ok(())
}
