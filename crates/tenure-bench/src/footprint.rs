//! Footprint of idle candidates: heap bytes and RSS per candidate, and CPU
//! while idle, against a reference measured in the same run (the same
//! process with no candidates).

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tenure::{DynBackend, Election, Session};

use crate::error::{fail, Context, Failures, Result};
use crate::handover::wait_queue_within;
use tenure_testkit::counting::{Counting as Traffic, Counts};

/// What one footprint run produced.
#[derive(Clone, Debug, Default)]
pub struct Footprint {
    /// Idle candidates.
    pub n: usize,
    /// Live heap bytes per candidate (allocator count: bytes live with N
    /// idle candidates minus bytes live before, ÷ N).
    pub heap_per_candidate: f64,
    /// Resident memory per candidate (RSS delta ÷ N).
    pub rss_per_candidate: f64,
    /// CPU of this process while the candidates idle, % of one core, per
    /// one-second slice.
    pub cpu: Vec<f64>,
    /// CPU of this process with no candidates (reference), per slice.
    pub cpu_reference: Vec<f64>,
    /// CPU of the server process while the candidates idle, per slice.
    pub server_cpu: Vec<f64>,
    /// Keep-alives per second while idle.
    pub keep_alives_per_s: f64,
    /// From the first campaign started to all N queued.
    pub fill: Duration,
}

/// Settings of a footprint run.
#[derive(Clone, Copy, Debug)]
pub struct FootprintConfig {
    /// TTL of every lease.
    pub ttl: Duration,
    /// One-second CPU slices to take.
    pub slices: usize,
    /// Live heap bytes now (the bench's counting allocator).
    pub live_bytes: fn() -> usize,
}

/// `n` idle candidates (one lease each), in elections of [`GROUP`]
/// candidates; candidates of group `g` use connection `links[g %
/// links.len()]` (a counted connection and an observer connection).
/// `server_pid` is the backend server's
/// process, if it has one.
///
/// # Errors
/// Backend failures.
pub async fn measure(
    links: &[(Arc<Traffic>, DynBackend)],
    name: &str,
    n: usize,
    server_pid: Option<u32>,
    cfg: FootprintConfig,
) -> Result<Footprint> {
    let mut out = Footprint {
        n,
        ..Footprint::default()
    };
    out.cpu_reference = cpu_slices(std::process::id(), cfg.slices).await?;
    let heap0 = (cfg.live_bytes)();
    let rss0 = rss_bytes()?;
    if links.is_empty() {
        return Err(fail("footprint: no connection"));
    }
    let link = |i: usize| &links[(i / GROUP) % links.len()];
    let mut sessions = Vec::with_capacity(n);
    while sessions.len() < n {
        let batch = (n - sessions.len()).min(500);
        let first = sessions.len();
        let starts = (first..first + batch).map(|i| {
            let conn: DynBackend = link(i).0.clone();
            Session::new(conn, cfg.ttl)
        });
        for s in join_all(starts).await {
            sessions.push(s.context(|| "footprint: session".into())?);
        }
    }
    let t_fill = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(n);
    let failed = Failures::default();
    for (i, s) in sessions.iter().enumerate() {
        let conn: DynBackend = link(i).0.clone();
        let e = Election::builder(conn, group_name(name, i))
            .session(s.clone())
            .build()
            .context(|| "footprint: election".into())?;
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            match e.campaign(format!("c{i}")).await {
                Ok(l) => {
                    let _ = l.lost().await;
                }
                Err(error) => failed.record(|| format!("candidate {i}: {error}")),
            }
        }));
    }
    let mut watchers = Vec::new();
    for g in 0..n.div_ceil(GROUP) {
        let e = Election::builder(link(g * GROUP).1.clone(), group_name(name, g * GROUP))
            .ttl(cfg.ttl)
            .build()
            .context(|| "footprint: observer".into())?;
        watchers.push((e, GROUP.min(n - g * GROUP)));
    }
    for (e, size) in &watchers {
        failed.explain(wait_queue_within(e, *size, Duration::from_secs(60)).await)?;
    }
    out.fill = t_fill.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let heap1 = (cfg.live_bytes)();
    let rss1 = rss_bytes()?;
    out.heap_per_candidate = heap1.saturating_sub(heap0) as f64 / n as f64;
    out.rss_per_candidate = rss1.saturating_sub(rss0) as f64 / n as f64;
    let counts = || {
        links.iter().fold(Counts::default(), |a, (t, _)| {
            let c = t.counts();
            Counts {
                keep_alives: a.keep_alives + c.keep_alives,
                ..Counts::default()
            }
        })
    };
    let before = counts();
    let (mine, server) = tokio::join!(cpu_slices(std::process::id(), cfg.slices), async {
        match server_pid {
            Some(pid) => cpu_slices(pid, cfg.slices).await,
            None => Ok(Vec::new()),
        }
    });
    out.cpu = mine?;
    out.server_cpu = server?;
    let d = counts().since(&before);
    out.keep_alives_per_s = d.keep_alives as f64 / cfg.slices.max(1) as f64;
    for t in &tasks {
        t.abort();
    }
    crate::scale::close_all(&sessions).await;
    Ok(out)
}

/// Candidates per election: every candidate reads its election's whole
/// queue when it joins, so one election of 10,000 joining at once costs
/// time quadratic in N (on this 2-core machine the in-process backend then
/// falls behind on keep-alives and leases expire); the idle footprint is
/// measured on elections of at most this many candidates.
pub const GROUP: usize = 1000;

/// The election of candidate `i`.
fn group_name(name: &str, i: usize) -> String {
    format!("{name}-{}", i / GROUP)
}

/// CPU of process `pid` over `slices` one-second slices, in % of a core.
async fn cpu_slices(pid: u32, slices: usize) -> Result<Vec<f64>> {
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let mut out = Vec::with_capacity(slices);
    let mut last = cpu_ticks(pid)?;
    let mut t = tokio::time::Instant::now();
    for _ in 0..slices {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_ticks(pid)?;
        let t2 = tokio::time::Instant::now();
        let secs = (t2 - t).as_secs_f64();
        out.push((now.saturating_sub(last)) as f64 / ticks / secs * 100.0);
        last = now;
        t = t2;
    }
    Ok(out)
}

/// utime + stime of `pid` in clock ticks (`/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .context(|| format!("read /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| fail("malformed /proc/<pid>/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14, 15.
    let get = |i: usize| -> Result<u64> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| fail("malformed /proc/<pid>/stat"))
    };
    Ok(get(14)? + get(15)?)
}

/// Resident set size of this process in bytes (`/proc/self/statm`).
pub fn rss_bytes() -> Result<usize> {
    let statm =
        std::fs::read_to_string("/proc/self/statm").context(|| "read /proc/self/statm".into())?;
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| fail("malformed /proc/self/statm"))?;
    Ok(pages * rustix::param::page_size())
}

/// Reference for the memory backend, measured in the same run: heap bytes
/// per candidate of the raw backend state alone — one lease, one queue
/// entry and one watch on the predecessor's key per candidate, made
/// through the trait with no tenure driver (no session task, no campaign
/// task) — on one in-process server per [`GROUP`] candidates, as above.
///
/// # Errors
/// Backend failures.
pub async fn raw_memory_state(n: usize, ttl: Duration, live_bytes: fn() -> usize) -> Result<f64> {
    use tenure::backend::{Slot, WatchScope};
    use tenure::memory::MemoryBackend;
    use tenure::ElectionName;
    let heap0 = live_bytes();
    let mut servers = Vec::new();
    let mut streams = Vec::with_capacity(n);
    for g in 0..n.div_ceil(GROUP) {
        let m = MemoryBackend::new();
        let c: DynBackend = Arc::new(m.client());
        let election =
            ElectionName::new(format!("raw-{g}")).context(|| "raw footprint: name".into())?;
        let mut prev: Option<String> = None;
        for i in 0..GROUP.min(n - g * GROUP) {
            let lease = c
                .grant_lease(ttl)
                .await
                .context(|| "raw footprint: grant".into())?
                .id;
            let created = c
                .create(&election, Slot::Queue, lease, format!("c{i}").into())
                .await
                .context(|| "raw footprint: create".into())?;
            let key = created.entry().key.clone();
            if let Some(p) = prev.replace(key) {
                streams.push(
                    c.watch(WatchScope::Key(p), 0)
                        .await
                        .context(|| "raw footprint: watch".into())?,
                );
            }
        }
        servers.push((m, c));
    }
    let per = live_bytes().saturating_sub(heap0) as f64 / n as f64;
    drop(streams);
    drop(servers);
    Ok(per)
}
