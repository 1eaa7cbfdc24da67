//! Start-up: a fresh candidate process, from its start to its "elected"
//! line, in an election nobody else holds — what a restarted sidecar or a
//! cron job waits before it may act. `tenure campaign` against `etcdctl
//! elect` on etcd and against the kazoo script on ZooKeeper, run in turn
//! (A, B, A, B ...) so that both see the same machine.

use std::time::Duration;

use crate::clock::{between, mono_ns};
use crate::error::Result;
use crate::peers::Tool;
use crate::report::{ratio_cell, Report, Section, Table};
use crate::sections::{median, p99, Ctx};
use crate::stats::{ratio, Distribution};

/// The longest one start may take before the run counts as failed.
const LIMIT: Duration = Duration::from_secs(30);

/// Starts `tool` in the fresh election `election` and returns the time
/// from the spawn to its "elected" line; then lets it resign and exit.
async fn once(tool: &Tool, election: &str) -> Result<Duration> {
    let t0 = mono_ns();
    let mut p = tool.spawn(election, "p")?;
    let line = tool.wait_elected(&mut p, LIMIT).await?;
    let took = between(t0, line.at_ns);
    tool.resign(&p)?;
    p.reap(Duration::from_secs(5)).await;
    Ok(took)
}

/// `runs` starts of `a` and of `b`, alternating.
async fn pair(
    a: &Tool,
    b: &Tool,
    label: &str,
    runs: usize,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut xs, mut ys) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for i in 0..runs {
        xs.push(once(a, &format!("startup-{label}-a{i}")).await?);
        ys.push(once(b, &format!("startup-{label}-b{i}")).await?);
    }
    Ok((xs, ys))
}

/// Section: process start → elected.
///
/// # Errors
/// When the servers are not running.
pub async fn startup(ctx: &Ctx, report: &mut Report) -> Result<Section> {
    let s = ctx.servers()?;
    let runs = ctx.plan.process_runs;
    let ttl = ctx.plan.handover_ttl;
    let mut sec = Section::new("1b. Start-up (process started → it prints that it leads)");
    sec.text(format!(
        "A fresh process campaigns in an empty election: the bench reads its clock, spawns \
         it, and stops the clock when it reads the process's \"elected\" line. Connection, \
         session and lease set-up are all inside. {runs} starts of each, alternating with \
         its peer's. Lease TTL {} s.",
        ttl.as_secs()
    ));
    let tenure_etcd = ctx.tenure_tool(s.etcd_url(), ttl)?;
    let tenure_zk = ctx.tenure_tool(s.zk_url(), ttl)?;
    let label = tenure_etcd.label();
    let etcdctl = Tool::Etcdctl {
        endpoint: s.etcd.endpoint(),
    };
    let mut t = Table::distributions(&["backend", "what"], "ms");
    let mut r = Table::new(&["backend", "ratio (same run)", "of medians", "of p99s"]);
    let mut rows =
        |backend: &str, peer: &str, got: Result<(Vec<Duration>, Vec<Duration>)>| match got {
            Ok((ours, theirs)) => {
                let (a, b) = (
                    Distribution::of_millis(&ours),
                    Distribution::of_millis(&theirs),
                );
                t.dist_row(&[backend.into(), label.into()], a.as_ref());
                t.dist_row(&[backend.into(), peer.to_string()], b.as_ref());
                r.row(vec![
                    backend.into(),
                    format!("{label} / {peer}"),
                    ratio_cell(ratio(median(&a), median(&b))),
                    ratio_cell(ratio(p99(&a), p99(&b))),
                ]);
                ratio(median(&a), median(&b))
            }
            Err(e) => {
                t.row(vec![backend.into(), format!("failed: {e}")]);
                None
            }
        };
    let etcd = rows(
        "etcd",
        "`etcdctl elect`",
        pair(&tenure_etcd, &etcdctl, "etcd", runs).await,
    );
    let zk = match &ctx.python {
        Some(python) => {
            let kazoo = Tool::Kazoo {
                python: python.clone(),
                hosts: s.zk.connect_string(),
                root: "/bench-kazoo".into(),
            };
            rows(
                "ZooKeeper",
                "kazoo `Election` script",
                pair(&tenure_zk, &kazoo, "zk", runs).await,
            )
        }
        None => None,
    };
    sec.table(&t);
    sec.table(&r);
    for (what, v) in [
        ("start-up median, tenure CLI / `etcdctl elect`", etcd),
        ("start-up median, tenure CLI / kazoo", zk),
    ] {
        report.target(
            what,
            "measured (≤ 1×: no slower than the peer)",
            v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.2}×")),
            v.map(|v| v <= 1.0),
        );
    }
    Ok(sec)
}
