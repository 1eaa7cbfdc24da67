//! Section 3: herd and scale.

use std::sync::Arc;
use std::time::Duration;

use tenure::DynBackend;
use tenure_testkit::counting::Counting as Traffic;

use super::{keep, memory_pair, Ctx};
use crate::error::Result;
use crate::report::{num, ratio_cell, Report, Section, Table};
use crate::scale;
use crate::servers::Backend;
use crate::stats::{ratio, Distribution};

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
