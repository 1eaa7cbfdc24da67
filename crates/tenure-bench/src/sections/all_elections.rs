//! Every election at a glance: what `observe_all` costs per election when
//! one observer connection follows N elections, against the same observer
//! following one election, measured in the same run.
//!
//! Per backend and N: the candidates (one leader per election, all on one
//! shared session of their own connection) are elected first; then a
//! fresh connection, wrapped to count its requests, starts `observe_all`
//! on their prefix. Measured: the time until every leader was reported,
//! the requests of that start, the requests per second while idle
//! afterwards, and the heap the observer added (bytes live, counting
//! allocator; on the memory backend this includes the in-process server's
//! share of its watches). Each per-election figure is also shown as a
//! ratio to the N = 1 row of the same backend.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tenure::memory::MemoryBackend;
use tenure::{DynBackend, Election, Leadership, ObserveAll, Session};
use tenure_testkit::counting::Counting as Traffic;

use super::{keep, Ctx};
use crate::error::{within, Context, Result};
use crate::report::{num, ratio_cell, Report, Section, Table};
use crate::servers::Backend;
use crate::stats::ratio;

/// Bound on each wait, only against a hang.
const PATIENCE: Duration = Duration::from_secs(120);

/// Campaigns started at once while setting up.
const SETUP_WIDTH: usize = 50;

/// What one observer of N elections cost.
#[derive(Clone, Copy, Debug)]
struct Cost {
    /// Start to every leader reported.
    full_view: Duration,
    /// Requests (reads, watch starts) of the start.
    start_requests: u64,
    /// Requests per second while idle, over the idle window.
    idle_per_s: f64,
    /// Heap the observer added, bytes.
    heap: usize,
}

/// Runs the section.
///
/// # Errors
/// When the servers are not running.
pub async fn all_elections(ctx: &Ctx, _report: &mut Report) -> Result<Section> {
    let s = ctx.servers()?;
    let plan = &ctx.plan;
    let mut sec = Section::new("Every election at a glance: observe_all");
    sec.text(format!(
        "One `observe_all` observer on one connection follows N elections (one leader \
         each, all on one session of another connection; TTL and staleness bound {} s). \
         Start: from `ObserveAll::start` to every leader reported; requests: reads and \
         watch starts on the observer's connection, at the start and per second over an \
         idle window of {} s; heap: bytes live the observer added (on the memory backend \
         including the in-process server's share). etcd follows the whole prefix \
         with one read, one watch and one probe; ZooKeeper and memory with one observer \
         per election (ZooKeeper: plus one recursive watch for new elections). \
         Per-election figures ÷ N; ratio: to the N = 1 row of the same backend, \
         measured in this run.",
        plan.scale_ttl.as_secs(),
        plan.idle_window.as_secs(),
    ));
    let mut t = Table::new(&[
        "backend",
        "N",
        "start → all leaders",
        "start requests / election",
        "ratio to N=1",
        "idle requests / election / s",
        "heap / election",
        "ratio to N=1",
    ]);
    for backend in [Backend::Memory, Backend::Etcd, Backend::ZooKeeper] {
        let mut reference: Option<Cost> = None;
        for &n in &plan.all_elections {
            let what = format!("{} observe_all N={n}", backend.label());
            let r = async {
                let (candidates, observer): (DynBackend, DynBackend) = match backend {
                    Backend::Memory => {
                        let m = MemoryBackend::new();
                        (Arc::new(m.client()), Arc::new(m.client()))
                    }
                    _ => (s.connect(backend).await?, s.connect(backend).await?),
                };
                cost(candidates, observer, n, ctx).await
            }
            .await;
            let Some(c) = keep(&mut sec, &what, r) else {
                continue;
            };
            let per = |v: f64| v / n as f64;
            let start_per = per(c.start_requests as f64);
            let heap_per = per(c.heap as f64);
            let reference = *reference.get_or_insert(c);
            t.row(vec![
                backend.label().into(),
                n.to_string(),
                format!("{} ms", num(c.full_view.as_secs_f64() * 1e3)),
                num(start_per),
                ratio_cell(ratio(
                    Some(start_per),
                    Some(reference.start_requests as f64),
                )),
                num(per(c.idle_per_s)),
                format!("{} KiB", num(heap_per / 1024.0)),
                ratio_cell(ratio(Some(heap_per), Some(reference.heap as f64))),
            ]);
        }
    }
    sec.table(&t);
    Ok(sec)
}

/// Elects a leader in each of `n` elections on `candidates`, then
/// measures one `observe_all` of them all on `observer`.
async fn cost(candidates: DynBackend, observer: DynBackend, n: usize, ctx: &Ctx) -> Result<Cost> {
    let plan = &ctx.plan;
    let prefix = format!("glance-{}-{n}/", std::process::id());
    let session = Session::builder(candidates.clone())
        .ttl(plan.scale_ttl)
        .start()
        .await
        .context(|| "start the candidates' session".into())?;
    let leaders: Vec<Leadership> = within(
        PATIENCE,
        || format!("elect {n} leaders"),
        futures::stream::iter(0..n)
            .map(|i| {
                let (b, session, prefix) = (candidates.clone(), session.clone(), prefix.clone());
                async move {
                    Election::builder(b, format!("{prefix}e{i:05}"))
                        .session(session)
                        .build()?
                        .campaign(format!("p{i}"))
                        .await
                }
            })
            .buffer_unordered(SETUP_WIDTH)
            .collect::<Vec<_>>(),
    )
    .await?
    .into_iter()
    .collect::<std::result::Result<_, tenure::Error>>()
    .context(|| "campaign".into())?;

    let traffic = Arc::new(Traffic::new(observer));
    let heap0 = (ctx.live_bytes)();
    let c0 = traffic.counts();
    let t0 = Instant::now();
    let mut all = ObserveAll::new(traffic.clone(), prefix)
        .max_staleness(plan.scale_ttl)
        .start()
        .await
        .context(|| "observe_all".into())?;
    let mut led = HashSet::new();
    within(PATIENCE, || format!("{n} leaders reported"), async {
        while led.len() < n {
            match all.next().await {
                Some(o) if o.observation.leader().is_some() => {
                    led.insert(o.election);
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await?;
    let full_view = t0.elapsed();
    let start_requests = traffic.counts().since(&c0).requests_but_keep_alives();
    let heap = (ctx.live_bytes)().saturating_sub(heap0);
    let c1 = traffic.counts();
    // Idle: nothing changes; whatever the observer asks now is its
    // steady cost (probes, re-listings).
    let _ = tokio::time::timeout(plan.idle_window, async {
        while all.next().await.is_some() {}
    })
    .await;
    let idle = traffic.counts().since(&c1).requests_but_keep_alives();
    drop(all);
    for l in leaders {
        let _ = l.resign().await;
    }
    session.close().await;
    Ok(Cost {
        full_view,
        start_requests,
        idle_per_s: idle as f64 / plan.idle_window.as_secs_f64(),
        heap,
    })
}
