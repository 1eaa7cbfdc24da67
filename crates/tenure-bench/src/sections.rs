//! The sections of the report: each runs its measurements, then adds its
//! tables, targets and plot series to the report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tenure::memory::MemoryBackend;
use tenure::DynBackend;

use crate::error::{fail, Result};
use crate::peers::{self, QueueProbe, Tool};
use crate::plan::Plan;
use crate::report::{num, ratio_cell, Report, Section, Table};
use crate::servers::{Backend, Servers, ZK_TICK};
use crate::stats::{millis, ratio, signed_millis, Distribution};
use crate::{failover, floor, footprint, handover, scale, transitions};
use tenure_testkit::counting::Counting as Traffic;

mod all_elections;
mod postgres;
pub use all_elections::all_elections;
pub use postgres::postgres;

/// What every section may use.
pub struct Ctx {
    /// Run sizes.
    pub plan: Plan,
    /// The servers (absent when only the machine section runs).
    pub servers: Option<Servers>,
    /// The `tenure` CLI, when built.
    pub tenure_cli: Option<PathBuf>,
    /// A Python with kazoo, when installed.
    pub python: Option<String>,
    /// Live heap bytes (the bench's counting allocator).
    pub live_bytes: fn() -> usize,
}

impl Ctx {
    pub(crate) fn servers(&self) -> Result<&Servers> {
        self.servers
            .as_ref()
            .ok_or_else(|| fail("the servers are not running"))
    }

    /// The tenure candidate process: the CLI if built, else this binary's
    /// `child` command (the library in a process of its own).
    pub(crate) fn tenure_tool(&self, url: String, ttl: Duration) -> Result<Tool> {
        Ok(match &self.tenure_cli {
            Some(bin) => Tool::TenureCli {
                bin: bin.clone(),
                url,
                ttl,
            },
            None => Tool::BenchChild {
                exe: std::env::current_exe().map_err(|e| fail(format!("own binary: {e}")))?,
                url,
                ttl,
            },
        })
    }
}

/// Keeps a measurement's samples, or notes its failure in the section.
fn keep<T>(sec: &mut Section, what: &str, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("bench: {what} failed: {e}");
            sec.text(format!(
                "**{what} failed:** {}",
                e.to_string().replace('\n', " ")
            ));
            None
        }
    }
}

fn memory_pair() -> (DynBackend, DynBackend) {
    let m = MemoryBackend::new();
    (Arc::new(m.client()), Arc::new(m.client()))
}

/// The median of a distribution that may be missing.
pub(crate) fn median(d: &Option<Distribution>) -> Option<f64> {
    d.as_ref().map(|d| d.median)
}

/// The p99 of a distribution that may be missing.
pub(crate) fn p99(d: &Option<Distribution>) -> Option<f64> {
    d.as_ref().map(|d| d.p99)
}

/// Section 1: handover latency, in process and at the process level,
/// against the raw floors and the peers.
///
/// # Errors
/// When the servers are not running.
pub async fn handover(ctx: &Ctx, report: &mut Report) -> Result<Section> {
    let s = ctx.servers()?;
    let plan = &ctx.plan;
    let mut sec = Section::new("1. Handover latency (leader resigns → successor knows it leads)");
    sec.text(format!(
        "Raw floors and in-process figures: {} runs each; process-level chains: {} \
         handovers each. Process level: the bench reads its clock, signals the leader \
         process to resign (SIGTERM; SIGINT for etcdctl), and stops the clock when it \
         reads the successor's \"elected\" line from its stdout pipe. Every successor \
         is started and queued ({} ms settle after its entry appears) before the \
         signal. In process: `Leadership::resign` called → the successor's `campaign` \
         resolves (its own connection). Floors: raw client deletes a key/node → \
         another raw client's watch is notified. Lease TTL {} s.",
        plan.inproc_runs,
        plan.process_runs,
        plan.settle.as_millis(),
        plan.handover_ttl.as_secs()
    ));
    let runs = plan.inproc_runs;
    let ttl = plan.handover_ttl;
    let dist = |v: Option<Vec<Duration>>| v.and_then(|v| Distribution::of_millis(&v));

    let etcd_floor = dist(keep(&mut sec, "etcd floor", floor::etcd(s, runs).await));
    let zk_floor = dist(keep(
        &mut sec,
        "ZooKeeper floor",
        floor::zookeeper(s, runs).await,
    ));
    let (ma, mb) = memory_pair();
    let mem_lib = dist(keep(
        &mut sec,
        "memory in process",
        handover::in_process(ma, mb, "handover-lib", ttl, runs, plan.settle).await,
    ));
    let etcd_lib = dist(keep(
        &mut sec,
        "etcd in process",
        async {
            let a = s.connect(Backend::Etcd).await?;
            let b = s.connect(Backend::Etcd).await?;
            handover::in_process(a, b, "handover-lib", ttl, runs, plan.settle).await
        }
        .await,
    ));
    let zk_lib = dist(keep(
        &mut sec,
        "ZooKeeper in process",
        async {
            let a = s.connect(Backend::ZooKeeper).await?;
            let b = s.connect(Backend::ZooKeeper).await?;
            handover::in_process(a, b, "handover-lib", ttl, runs, plan.settle).await
        }
        .await,
    ));

    let prun = plan.process_runs;
    let etcd_tool = ctx.tenure_tool(s.etcd_url(), ttl)?;
    let zk_tool = ctx.tenure_tool(s.zk_url(), ttl)?;
    let tenure_label = etcd_tool.label();
    let etcd_cli = keep(
        &mut sec,
        "etcd tenure process",
        async {
            let mut probe = QueueProbe::Etcd(Box::new(s.raw_etcd().await?), "handover-cli/".into());
            peers::chain(&etcd_tool, &mut probe, "handover-cli", prun, plan.settle).await
        }
        .await,
    );
    let etcdctl = keep(
        &mut sec,
        "etcdctl elect",
        async {
            let tool = Tool::Etcdctl {
                endpoint: s.etcd.endpoint(),
            };
            let mut probe =
                QueueProbe::Etcd(Box::new(s.raw_etcd().await?), "handover-etcdctl/".into());
            peers::chain(&tool, &mut probe, "handover-etcdctl", prun, plan.settle).await
        }
        .await,
    );
    let zk_cli = keep(
        &mut sec,
        "ZooKeeper tenure process",
        async {
            let mut probe = QueueProbe::Zk(s.raw_zk().await?, "/tenure/handover-cli".into());
            peers::chain(&zk_tool, &mut probe, "handover-cli", prun, plan.settle).await
        }
        .await,
    );
    let kazoo = match &ctx.python {
        Some(python) => keep(
            &mut sec,
            "kazoo Election",
            async {
                let tool = Tool::Kazoo {
                    python: python.clone(),
                    hosts: s.zk.connect_string(),
                    root: "/bench-kazoo".into(),
                };
                let mut probe =
                    QueueProbe::Zk(s.raw_zk().await?, "/bench-kazoo/handover-kazoo".into());
                peers::chain(&tool, &mut probe, "handover-kazoo", prun, plan.settle).await
            }
            .await,
        ),
        None => {
            sec.text("**kazoo not installed**: run scripts/install-deps.sh.");
            None
        }
    };
    let measured = |c: &Option<peers::Chain>| {
        c.as_ref()
            .and_then(|c| Distribution::of_millis(&c.measured))
    };
    let own = |c: &Option<peers::Chain>| {
        c.as_ref()
            .and_then(|c| Distribution::of_millis(&c.self_reported))
    };
    let etcd_cli_d = measured(&etcd_cli);
    let etcdctl_d = measured(&etcdctl);
    let zk_cli_d = measured(&zk_cli);
    let kazoo_d = measured(&kazoo);

    let mut t = Table::distributions(&["backend", "what"], "ms");
    let rows: Vec<(&str, String, &Option<Distribution>)> = vec![
        (
            "etcd",
            "raw floor: delete → watcher notified".into(),
            &etcd_floor,
        ),
        ("etcd", "tenure library, in process".into(), &etcd_lib),
        (
            "etcd",
            format!("{tenure_label}, process level"),
            &etcd_cli_d,
        ),
        ("etcd", "`etcdctl elect`, process level".into(), &etcdctl_d),
        (
            "ZooKeeper",
            "raw floor: delete → exists-watcher notified".into(),
            &zk_floor,
        ),
        ("ZooKeeper", "tenure library, in process".into(), &zk_lib),
        (
            "ZooKeeper",
            format!("{tenure_label}, process level"),
            &zk_cli_d,
        ),
        (
            "ZooKeeper",
            "kazoo `Election` script, process level".into(),
            &kazoo_d,
        ),
        ("memory", "tenure library, in process".into(), &mem_lib),
    ];
    for (b, what, d) in &rows {
        t.dist_row(&[(*b).to_owned(), what.clone()], d.as_ref());
    }
    let etcd_own = own(&etcd_cli);
    let zk_own = own(&zk_cli);
    if etcd_own.is_some() || zk_own.is_some() {
        t.dist_row(
            &[
                "etcd".into(),
                format!("{tenure_label}: its own `mono_ns` − signal"),
            ],
            etcd_own.as_ref(),
        );
        t.dist_row(
            &[
                "ZooKeeper".into(),
                format!("{tenure_label}: its own `mono_ns` − signal"),
            ],
            zk_own.as_ref(),
        );
    }
    sec.table(&t);

    let mut r = Table::new(&["backend", "ratio (same run)", "of medians", "of p99s"]);
    let mut ratio_row =
        |b: &str, what: String, a: &Option<Distribution>, c: &Option<Distribution>| {
            r.row(vec![
                b.to_owned(),
                what,
                ratio_cell(ratio(median(a), median(c))),
                ratio_cell(ratio(p99(a), p99(c))),
            ]);
        };
    ratio_row(
        "etcd",
        format!("{tenure_label} / `etcdctl elect`"),
        &etcd_cli_d,
        &etcdctl_d,
    );
    ratio_row(
        "etcd",
        "tenure library / raw floor".into(),
        &etcd_lib,
        &etcd_floor,
    );
    ratio_row(
        "etcd",
        format!("{tenure_label} / raw floor"),
        &etcd_cli_d,
        &etcd_floor,
    );
    ratio_row(
        "ZooKeeper",
        format!("{tenure_label} / kazoo"),
        &zk_cli_d,
        &kazoo_d,
    );
    ratio_row(
        "ZooKeeper",
        "tenure library / raw floor".into(),
        &zk_lib,
        &zk_floor,
    );
    ratio_row(
        "ZooKeeper",
        format!("{tenure_label} / raw floor"),
        &zk_cli_d,
        &zk_floor,
    );
    sec.table(&r);

    let target = |report: &mut Report, what: &str, goal: &str, limit: f64, v: Option<f64>| {
        report.target(
            what,
            goal,
            v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.2}×")),
            v.map(|v| v <= limit),
        );
    };
    target(
        report,
        &format!("handover median, {tenure_label} / `etcdctl elect`"),
        "≤ 0.5×",
        0.5,
        ratio(median(&etcd_cli_d), median(&etcdctl_d)),
    );
    target(
        report,
        &format!("handover median, {tenure_label} / kazoo"),
        "≤ 0.5×",
        0.5,
        ratio(median(&zk_cli_d), median(&kazoo_d)),
    );
    target(
        report,
        "handover median, tenure library / raw floor (etcd)",
        "≤ 1.5×",
        1.5,
        ratio(median(&etcd_lib), median(&etcd_floor)),
    );
    target(
        report,
        "handover median, tenure library / raw floor (ZooKeeper)",
        "≤ 1.5×",
        1.5,
        ratio(median(&zk_lib), median(&zk_floor)),
    );
    report.series("handover on etcd", "raw floor", etcd_floor.as_ref());
    report.series("handover on etcd", "tenure library", etcd_lib.as_ref());
    report.series("handover on etcd", tenure_label, etcd_cli_d.as_ref());
    report.series("handover on etcd", "etcdctl elect", etcdctl_d.as_ref());
    report.series("handover on ZooKeeper", "raw floor", zk_floor.as_ref());
    report.series("handover on ZooKeeper", "tenure library", zk_lib.as_ref());
    report.series("handover on ZooKeeper", tenure_label, zk_cli_d.as_ref());
    report.series("handover on ZooKeeper", "kazoo Election", kazoo_d.as_ref());
    Ok(sec)
}

/// Section 2: crash failover as a function of the TTL.
///
/// # Errors
/// When the servers are not running.
pub async fn failover(ctx: &Ctx, report: &mut Report) -> Result<Section> {
    let s = ctx.servers()?;
    let plan = &ctx.plan;
    let mut sec = Section::new("2. Crash failover (leader killed with SIGKILL → successor leads)");
    let probe_tool = ctx.tenure_tool(s.etcd_url(), Duration::from_secs(1))?;
    sec.text(format!(
        "The leader is a {} process, killed with SIGKILL; its successor campaigns \
         in the bench on a connection of its own. {} samples per TTL, {} elections \
         failing over at once. Figures are failover − granted TTL (ms): negative \
         when the leader's last keep-alive was sent before the kill (the backend \
         counts the TTL from then). ZooKeeper tickTime {} ms.",
        probe_tool.label(),
        plan.failover_samples,
        plan.failover_width,
        ZK_TICK.as_millis()
    ));
    let mut t = Table::distributions(
        &["backend", "TTL asked", "TTL granted"],
        "ms, failover − TTL",
    );
    for backend in [Backend::Etcd, Backend::ZooKeeper] {
        let mut conns = Vec::with_capacity(plan.failover_width);
        for _ in 0..plan.failover_width {
            match s.connect(backend).await {
                Ok(c) => conns.push(c),
                Err(e) => {
                    keep::<()>(&mut sec, backend.label(), Err(e));
                    break;
                }
            }
        }
        if conns.len() < plan.failover_width {
            continue;
        }
        let url = match backend {
            Backend::Etcd => s.etcd_url(),
            _ => s.zk_url(),
        };
        let mut worst_p99: Option<f64> = None;
        for ttl in &plan.failover_ttls {
            let tool = ctx.tenure_tool(url.clone(), *ttl)?;
            let tag = match backend {
                Backend::Etcd => "etcd",
                _ => "zk",
            };
            let what = format!("{} failover at TTL {ttl:?}", backend.label());
            let Some(f) = keep(
                &mut sec,
                &what,
                failover::run(&tool, &conns, tag, *ttl, plan.failover_samples).await,
            ) else {
                continue;
            };
            let over: Vec<f64> = f
                .samples
                .iter()
                .map(|d| signed_millis(*d, f.granted))
                .collect();
            let d = Distribution::of(&over);
            t.dist_row(
                &[
                    backend.label().to_owned(),
                    format!("{} s", ttl.as_secs_f64()),
                    format!("{} s", f.granted.as_secs_f64()),
                ],
                d.as_ref(),
            );
            if let Some(d) = &d {
                worst_p99 = Some(worst_p99.map_or(d.p99, |w: f64| w.max(d.p99)));
            }
            report.series(
                "crash failover − TTL",
                &format!("{} TTL {} s", backend.label(), ttl.as_secs_f64()),
                d.as_ref(),
            );
        }
        let (goal, limit) = match backend {
            Backend::Etcd => ("p99 ≤ TTL + 600 ms".to_owned(), 600.0),
            _ => (
                format!(
                    "p99 ≤ session timeout + 2 ticks ({} ms)",
                    2 * ZK_TICK.as_millis()
                ),
                2.0 * millis(ZK_TICK),
            ),
        };
        report.target(
            &format!(
                "crash failover on {}, worst p99 over the TTLs",
                backend.label()
            ),
            &goal,
            worst_p99.map_or_else(
                || "not measured".to_owned(),
                |w| format!("TTL + {} ms", num(w)),
            ),
            worst_p99.map(|w| w <= limit),
        );
    }
    sec.table(&t);
    Ok(sec)
}

/// Section 3: herd and scale.
///
/// # Errors
/// When the servers are not running.
pub async fn scale(ctx: &Ctx, report: &mut Report) -> Result<Section> {
    let s = ctx.servers()?;
    let plan = &ctx.plan;
    let mut sec = Section::new("3. Herd and scale (N candidates of one election in one process)");
    let cfg = |n: usize| scale::ScaleConfig {
        ttl: plan.scale_ttl,
        first_rounds: if n >= 1000 {
            plan.first_rounds.1
        } else {
            plan.first_rounds.0
        },
        handovers: plan.scale_handovers,
        count_window: Duration::from_millis(50),
        idle_window: plan.idle_window,
    };
    sec.text(format!(
        "N candidates of one election share one connection (memory: one client; \
         etcd: one gRPC channel; ZooKeeper: one session per lease, since a \
         ZooKeeper lease is a session). The queue layouts key an entry by its \
         lease, so each candidate holds its own lease (TTL {} s): the idle \
         keep-alive rate is one per lease per TTL/3. Handover: the leader resigns, \
         the successor is elected; the resigned candidate then queues again at the \
         back, so N stays constant. Requests and watch events are counted from the \
         resign to 50 ms after the successor's election (keep-alives excluded). \
         Idle: counted over {} s with nothing happening.",
        plan.scale_ttl.as_secs(),
        plan.idle_window.as_secs()
    ));
    let mut lat = Table::distributions(&["backend", "N", "measured"], "ms");
    let mut per = Table::new(&[
        "backend",
        "N",
        "requests / leader change (median, max)",
        "watch events / leader change (median, max)",
        "keep-alives/s idle",
        "expected (N × 3 / TTL)",
        "other requests/s idle",
        "handover median / N=2",
    ]);
    for backend in [Backend::Memory, Backend::Etcd, Backend::ZooKeeper] {
        let sizes = match backend {
            Backend::ZooKeeper => &plan.zk_scale_sizes,
            _ => &plan.scale_sizes,
        };
        let mut base: Option<f64> = None;
        for &n in sizes {
            let what = format!("{} N={n}", backend.label());
            let r = async {
                let (conn, observer): (DynBackend, DynBackend) = match backend {
                    Backend::Memory => memory_pair(),
                    _ => (s.connect(backend).await?, s.connect(backend).await?),
                };
                let traffic = Arc::new(Traffic::new(conn));
                let name = format!("herd-{n}");
                scale::herd(traffic, observer, &name, n, cfg(n)).await
            }
            .await;
            let Some(r) = keep(&mut sec, &what, r) else {
                continue;
            };
            let first = Distribution::of_millis(&r.first_leader);
            let hand = Distribution::of_millis(&r.handover);
            let reqs = Distribution::of(&r.requests);
            let events = Distribution::of(&r.watch_events);
            let row = [backend.label().to_owned(), n.to_string()];
            let mut l1 = row.to_vec();
            l1.push("time to first leader (all N start at once)".into());
            lat.dist_row(&l1, first.as_ref());
            let mut l2 = row.to_vec();
            l2.push("handover (resign → successor elected)".into());
            lat.dist_row(&l2, hand.as_ref());
            if n == 2 {
                base = hand.as_ref().map(|d| d.median);
            }
            let vs2 = ratio(hand.as_ref().map(|d| d.median), base);
            let pair = |d: &Option<Distribution>| {
                d.as_ref().map_or_else(
                    || "–".to_owned(),
                    |d| format!("{}, {}", num(d.median), num(d.max)),
                )
            };
            per.row(vec![
                backend.label().to_owned(),
                n.to_string(),
                pair(&reqs),
                pair(&events),
                num(r.keep_alives_per_s),
                num(r.expected_keep_alives_per_s),
                num(r.other_per_s),
                ratio_cell(vs2),
            ]);
            if n == 1000 {
                let first_p99 = first.as_ref().map(|d| d.p99);
                report.target(
                    &format!(
                        "time to first leader, 1,000 candidates starting at once ({})",
                        backend.label()
                    ),
                    match backend {
                        Backend::Etcd => "p99 ≤ 250 ms",
                        _ => "measured",
                    },
                    first.as_ref().map_or_else(
                        || "–".into(),
                        |d| {
                            format!(
                                "median {} ms, p99 {} ms (n = {})",
                                num(d.median),
                                num(d.p99),
                                d.n
                            )
                        },
                    ),
                    match backend {
                        Backend::Etcd => first_p99.map(|p| p <= 250.0),
                        _ => None,
                    },
                );
                report.target(
                    &format!(
                        "watch events per leader change at N = 1,000 ({})",
                        backend.label()
                    ),
                    "≤ 2",
                    events.as_ref().map_or_else(
                        || "–".into(),
                        |d| format!("median {}, max {}", num(d.median), num(d.max)),
                    ),
                    events.as_ref().map(|d| d.max <= 2.0),
                );
                report.target(
                    &format!("handover median at N = 1,000 / N = 2 ({})", backend.label()),
                    "≤ 1.5×",
                    ratio_cell(vs2),
                    vs2.map(|v| v <= 1.5),
                );
                report.target(
                    &format!(
                        "idle at N = 1,000 ({}): requests other than keep-alives",
                        backend.label()
                    ),
                    "0 / s; keep-alives = one per lease per TTL/3",
                    format!(
                        "{} / s other; {} keep-alives/s (expected {})",
                        num(r.other_per_s),
                        num(r.keep_alives_per_s),
                        num(r.expected_keep_alives_per_s)
                    ),
                    Some(
                        r.other_per_s == 0.0
                            && r.keep_alives_per_s <= r.expected_keep_alives_per_s * 1.2,
                    ),
                );
            }
            if let Some(h) = &hand {
                report.series(
                    "handover vs N (in process)",
                    &format!("{} N={n}", backend.label()),
                    Some(h),
                );
            }
        }
    }
    sec.table(&lat);
    sec.table(&per);

    let mut shared = Table::new(&[
        "backend",
        "elections on one session",
        "all start → elected (median, max ms)",
        "keep-alives/s idle",
        "expected (3 / TTL)",
        "other requests/s idle",
    ]);
    for backend in [Backend::Memory, Backend::Etcd] {
        for &n in &plan.scale_sizes {
            let what = format!("{} shared session, {n} elections", backend.label());
            let r = async {
                let conn: DynBackend = match backend {
                    Backend::Memory => memory_pair().0,
                    _ => s.connect(backend).await?,
                };
                scale::shared_session(
                    Arc::new(Traffic::new(conn)),
                    &format!("shared-{n}"),
                    n,
                    cfg(n),
                )
                .await
            }
            .await;
            let Some(r) = keep(&mut sec, &what, r) else {
                continue;
            };
            let d = Distribution::of_millis(&r.elected);
            shared.row(vec![
                backend.label().to_owned(),
                n.to_string(),
                d.as_ref().map_or_else(
                    || "–".into(),
                    |d| format!("{}, {}", num(d.median), num(d.max)),
                ),
                num(r.keep_alives_per_s),
                num(3.0 / plan.scale_ttl.as_secs_f64()),
                num(r.other_per_s),
            ]);
        }
    }
    sec.text("One session shared by N elections (one candidate each), on one connection:");
    sec.table(&shared);
    Ok(sec)
}

/// Section 4: footprint of idle candidates.
///
/// # Errors
/// When the servers are not running.
pub async fn footprint(ctx: &Ctx, report: &mut Report) -> Result<Section> {
    let s = ctx.servers()?;
    let plan = &ctx.plan;
    let mut sec = Section::new("4. Footprint (idle candidates)");
    sec.text(format!(
        "N idle candidates (one lease each, TTL {} s; elections of at most {} \
         candidates) in this process; on etcd all on one connection. Heap: bytes live (counting global allocator) \
         with the N candidates queued minus before, ÷ N; on the memory backend this \
         includes the in-process server's share (entries, leases, watches). RSS: \
         resident-set delta ÷ N. CPU: utime + stime over one-second slices ({} \
         slices), % of one core; the reference is the same process with no \
         candidates, measured just before. On the memory backend each election of {} \
         candidates has an in-process server of its own, as in earlier reports, so \
         the figures compare from one report to the next. \
         The raw reference (memory only) is the backend state alone: per candidate \
         one lease, one entry and one watch on its predecessor, made through the \
         trait without the driver; the difference is tenure's own share (session \
         and campaign tasks, channels, the machine).",
        plan.scale_ttl.as_secs(),
        footprint::GROUP,
        plan.cpu_slices,
        footprint::GROUP
    ));
    let mut t = Table::new(&[
        "backend",
        "N",
        "heap / candidate",
        "of which raw backend state (reference)",
        "RSS / candidate",
        "CPU idle (median, max %)",
        "reference CPU, no candidates (median, max %)",
        "server CPU (median, max %)",
        "keep-alives/s",
        "time to queue all N",
    ]);
    let cfg = footprint::FootprintConfig {
        ttl: plan.scale_ttl,
        slices: plan.cpu_slices,
        live_bytes: ctx.live_bytes,
    };
    let runs: Vec<(Backend, usize)> = plan
        .footprint_memory
        .iter()
        .map(|n| (Backend::Memory, *n))
        .chain(plan.footprint_etcd.iter().map(|n| (Backend::Etcd, *n)))
        .collect();
    for (backend, n) in runs {
        let what = format!("{} footprint N={n}", backend.label());
        let r = async {
            let mut links: Vec<(Arc<Traffic>, DynBackend)> = Vec::new();
            let pid = match backend {
                Backend::Memory => {
                    // One in-process server per election of GROUP candidates.
                    for _ in 0..n.div_ceil(footprint::GROUP) {
                        let (a, b) = memory_pair();
                        links.push((Arc::new(Traffic::new(a)), b));
                    }
                    None
                }
                _ => {
                    let a = s.connect(backend).await?;
                    links.push((Arc::new(Traffic::new(a)), s.connect(backend).await?));
                    s.etcd.pid()
                }
            };
            footprint::measure(&links, &format!("idle-{n}"), n, pid, cfg).await
        }
        .await;
        let Some(f) = keep(&mut sec, &what, r) else {
            continue;
        };
        let raw = match backend {
            Backend::Memory => keep(
                &mut sec,
                &format!("raw memory state N={n}"),
                footprint::raw_memory_state(n, plan.scale_ttl, ctx.live_bytes).await,
            ),
            _ => None,
        };
        let pct = |v: &[f64]| {
            Distribution::of(v).map_or_else(
                || "–".to_owned(),
                |d| format!("{}, {}", num(d.median), num(d.max)),
            )
        };
        t.row(vec![
            backend.label().to_owned(),
            n.to_string(),
            format!("{:.2} KiB", f.heap_per_candidate / 1024.0),
            raw.map_or_else(|| "–".to_owned(), |r| format!("{:.2} KiB", r / 1024.0)),
            format!("{:.2} KiB", f.rss_per_candidate / 1024.0),
            pct(&f.cpu),
            pct(&f.cpu_reference),
            pct(&f.server_cpu),
            num(f.keep_alives_per_s),
            format!("{:.1} s", f.fill.as_secs_f64()),
        ]);
        if backend == Backend::Etcd && n == 10_000 {
            report.target(
                "10,000 idle candidates on etcd (one connection)",
                "measured",
                format!(
                    "heap {:.2} KiB / candidate; CPU median {} % (server {} %); {} keep-alives/s",
                    f.heap_per_candidate / 1024.0,
                    Distribution::of(&f.cpu).map_or_else(|| "–".to_owned(), |d| num(d.median)),
                    Distribution::of(&f.server_cpu)
                        .map_or_else(|| "–".to_owned(), |d| num(d.median)),
                    num(f.keep_alives_per_s)
                ),
                None,
            );
        }
        if backend == Backend::Memory && n == 10_000 {
            report.target(
                "heap per idle candidate at 10,000 candidates (memory backend)",
                "≤ 4 KiB",
                format!("{:.2} KiB", f.heap_per_candidate / 1024.0),
                Some(f.heap_per_candidate <= 4096.0),
            );
        }
    }
    sec.table(&t);
    Ok(sec)
}

/// Section 5: cost per transition of the sans-IO machines.
pub fn machine(ctx: &Ctx) -> Section {
    let plan = &ctx.plan;
    let mut sec = Section::new("5. State machine (sans-IO): cost per transition");
    sec.text(format!(
        "Whole candidacies driven by hand with answers made up in memory; one sample \
         per batch of {} cycles, {} batches; ns per transition = batch time ÷ (cycles \
         × inputs per cycle). The criterion version: `cargo bench -p tenure-bench \
         --bench machine`.",
        plan.machine_cycles, plan.machine_batches
    ));
    let f = transitions::Fixture::new();
    let mut t = Table::distributions(&["cycle", "inputs per cycle"], "ns per transition");
    let cases: [(&str, u64, &dyn Fn() -> usize); 3] = [
        (
            "leader: create → read → elected → renewed → resign → deleted",
            transitions::LEADER_CYCLE_TRANSITIONS,
            &|| transitions::leader_cycle(&f),
        ),
        (
            "follower: create → read → follow → predecessor gone → read → elected → resign → deleted",
            transitions::FOLLOWER_CYCLE_TRANSITIONS,
            &|| transitions::follower_cycle(&f),
        ),
        (
            "lease keeper: timeout → keep-alive → renewed",
            transitions::KEEPALIVE_CYCLE_TRANSITIONS,
            &|| transitions::keepalive_cycle(&f, 1),
        ),
    ];
    for (what, inputs, cycle) in cases {
        let v = transitions::per_transition_ns(
            plan.machine_batches,
            plan.machine_cycles,
            inputs,
            cycle,
        );
        t.dist_row(
            &[what.to_owned(), inputs.to_string()],
            Distribution::of(&v).as_ref(),
        );
    }
    sec.table(&t);
    sec
}
