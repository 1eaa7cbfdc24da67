//! Section 2: crash failover as a function of the TTL.

use std::time::Duration;

use super::{keep, Ctx};
use crate::error::Result;
use crate::failover;
use crate::report::{num, Report, Section, Table};
use crate::servers::{Backend, ZK_TICK};
use crate::stats::{millis, signed_millis, Distribution};

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
