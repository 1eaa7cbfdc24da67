//! Section 4: footprint of idle candidates.

use std::sync::Arc;

use tenure::DynBackend;
use tenure_testkit::counting::Counting as Traffic;

use super::{keep, memory_pair, Ctx};
use crate::error::Result;
use crate::footprint;
use crate::report::{num, Report, Section, Table};
use crate::servers::Backend;
use crate::stats::Distribution;

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
