//! The PostgreSQL section: hand-over against its raw floor, and crash
//! failover per TTL, on a server of the section's own (the testkit's
//! `PgServer`).
//!
//! The raw floor is the cheapest a hand-over can be on PostgreSQL: one raw
//! connection deletes a row and sends `NOTIFY` in the same statement;
//! another raw connection that `LISTEN`s receives it. tenure's hand-over
//! adds the successor's read of its own entry and its predecessor.

use std::time::Duration;

use futures::StreamExt;
use tenure::DynBackend;
use tenure_testkit::pg_server::PgServer;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{keep, Ctx};
use crate::clock::{between, mono_ns};
use crate::error::{fail, within, Context, Result};
use crate::report::{num, ratio_cell, Report, Section, Table};
use crate::stats::{ratio, signed_millis, Distribution};
use crate::{failover, handover};

/// Pause between floor samples, so each starts from a quiet connection.
const SETTLE: Duration = Duration::from_millis(20);

/// Runs the PostgreSQL section.
///
/// # Errors
/// When the server does not start.
pub async fn postgres(ctx: &Ctx, report: &mut Report) -> Result<Section> {
    let plan = &ctx.plan;
    let server = PgServer::start()
        .await
        .context(|| "start PostgreSQL".into())?;
    let url = format!("{}?schema=bench", server.url());
    let mut sec = Section::new("PostgreSQL: handover against its floor, crash failover");
    sec.text(format!(
        "A PostgreSQL server of this section's own ({}). Floor: a raw connection \
         deletes a row and sends NOTIFY in the same statement → another raw connection \
         that LISTENs receives it. In process: `Leadership::resign` called → the \
         successor's `campaign` resolves (its own backend: two connections). {} runs \
         each, lease TTL {} s. Crash failover: the leader process ({}) is killed with \
         SIGKILL; the successor's watch wakes when the lease is due by the server's \
         clock; {} samples per TTL, {} elections at a time.",
        server_version(&server).await,
        plan.inproc_runs,
        plan.handover_ttl.as_secs(),
        ctx.tenure_tool(url.clone(), plan.handover_ttl)?.label(),
        plan.failover_samples,
        plan.failover_width,
    ));
    let dist = |v: Option<Vec<Duration>>| v.and_then(|v| Distribution::of_millis(&v));
    let floor = dist(keep(
        &mut sec,
        "PostgreSQL floor",
        notify_floor(&server, plan.inproc_runs).await,
    ));
    let lib = dist(keep(
        &mut sec,
        "PostgreSQL in process",
        async {
            let a = connect(&url).await?;
            let b = connect(&url).await?;
            handover::in_process(
                a,
                b,
                "handover-lib",
                plan.handover_ttl,
                plan.inproc_runs,
                plan.settle,
            )
            .await
        }
        .await,
    ));
    let mut t = Table::distributions(&["backend", "what"], "ms");
    t.dist_row(
        &[
            "PostgreSQL".into(),
            "raw floor: DELETE + NOTIFY → listener notified".into(),
        ],
        floor.as_ref(),
    );
    t.dist_row(
        &["PostgreSQL".into(), "tenure library, in process".into()],
        lib.as_ref(),
    );
    sec.table(&t);
    let median = |d: &Option<Distribution>| d.as_ref().map(|d| d.median);
    let p99 = |d: &Option<Distribution>| d.as_ref().map(|d| d.p99);
    let mut r = Table::new(&["backend", "ratio (same run)", "of medians", "of p99s"]);
    r.row(vec![
        "PostgreSQL".into(),
        "tenure library / raw floor".into(),
        ratio_cell(ratio(median(&lib), median(&floor))),
        ratio_cell(ratio(p99(&lib), p99(&floor))),
    ]);
    sec.table(&r);
    report.series("handover on PostgreSQL", "raw floor", floor.as_ref());
    report.series("handover on PostgreSQL", "tenure library", lib.as_ref());

    let mut conns = Vec::with_capacity(plan.failover_width);
    for _ in 0..plan.failover_width {
        if let Some(c) = keep(&mut sec, "PostgreSQL connect", connect(&url).await) {
            conns.push(c);
        }
    }
    let mut f = Table::distributions(
        &["backend", "TTL asked", "TTL granted"],
        "ms, failover − TTL",
    );
    let mut worst_p99: Option<f64> = None;
    if conns.len() == plan.failover_width {
        for ttl in &plan.failover_ttls {
            let tool = ctx.tenure_tool(url.clone(), *ttl)?;
            let what = format!("PostgreSQL failover at TTL {ttl:?}");
            let Some(run) = keep(
                &mut sec,
                &what,
                failover::run(&tool, &conns, "pg", *ttl, plan.failover_samples).await,
            ) else {
                continue;
            };
            let over: Vec<f64> = run
                .samples
                .iter()
                .map(|d| signed_millis(*d, run.granted))
                .collect();
            let d = Distribution::of(&over);
            f.dist_row(
                &[
                    "PostgreSQL".into(),
                    format!("{} s", ttl.as_secs_f64()),
                    format!("{} s", run.granted.as_secs_f64()),
                ],
                d.as_ref(),
            );
            if let Some(d) = &d {
                worst_p99 = Some(worst_p99.map_or(d.p99, |w: f64| w.max(d.p99)));
            }
            report.series(
                "crash failover − TTL",
                &format!("PostgreSQL TTL {} s", ttl.as_secs_f64()),
                d.as_ref(),
            );
        }
    }
    sec.table(&f);
    report.target(
        "crash failover on PostgreSQL, worst p99 over the TTLs",
        "p99 ≤ TTL + 600 ms",
        worst_p99.map_or_else(
            || "not measured".to_owned(),
            |w| format!("TTL + {} ms", num(w)),
        ),
        worst_p99.map(|w| w <= 600.0),
    );
    Ok(sec)
}

async fn connect(url: &str) -> Result<DynBackend> {
    tenure::connect(url)
        .await
        .context(|| "connect to PostgreSQL".into())
}

async fn server_version(server: &PgServer) -> String {
    server
        .psql("SHOW server_version")
        .await
        .map(|v| format!("PostgreSQL {v}"))
        .unwrap_or_else(|_| "PostgreSQL".into())
}

/// `runs` samples of DELETE + NOTIFY → listener notified, on raw
/// connections.
///
/// # Errors
/// Request failures, or a notification that never comes.
async fn notify_floor(server: &PgServer, runs: usize) -> Result<Vec<Duration>> {
    let config: tokio_postgres::Config = server
        .url()
        .parse()
        .map_err(|e| fail(format!("PostgreSQL floor: URL: {e}")))?;
    let (deleter, conn) = config
        .connect(NoTls)
        .await
        .context(|| "PostgreSQL floor: connect".into())?;
    tokio::spawn(conn);
    let (listener, mut conn) = config
        .connect(NoTls)
        .await
        .context(|| "PostgreSQL floor: connect".into())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let AsyncMessage::Notification(_) = m {
                let _ = tx.send(mono_ns());
            }
        }
    });
    deleter
        .batch_execute("CREATE TABLE IF NOT EXISTS bench_floor (k text PRIMARY KEY)")
        .await
        .context(|| "PostgreSQL floor: create table".into())?;
    listener
        .batch_execute("LISTEN bench_floor")
        .await
        .context(|| "PostgreSQL floor: listen".into())?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        deleter
            .batch_execute("INSERT INTO bench_floor VALUES ('k') ON CONFLICT DO NOTHING")
            .await
            .context(|| "PostgreSQL floor: insert".into())?;
        tokio::time::sleep(SETTLE).await;
        let t0 = mono_ns();
        deleter
            .batch_execute(
                "WITH d AS (DELETE FROM bench_floor WHERE k = 'k' RETURNING k) \
                 SELECT pg_notify('bench_floor', k) FROM d",
            )
            .await
            .context(|| "PostgreSQL floor: delete".into())?;
        let seen = within(
            Duration::from_secs(10),
            || "PostgreSQL floor: notification".into(),
            rx.recv(),
        )
        .await?
        .ok_or_else(|| fail("PostgreSQL floor: the listening connection ended"))?;
        samples.push(between(t0, seen));
    }
    Ok(samples)
}
