//! Section 1: hand-over latency, in process and at the process level,
//! against the raw floors and the peers.

use std::time::Duration;

use super::{keep, median, memory_pair, p99, Ctx};
use crate::error::Result;
use crate::peers::{self, QueueProbe, Tool};
use crate::report::{ratio_cell, Report, Section, Table};
use crate::servers::Backend;
use crate::stats::{ratio, Distribution};
use crate::{floor, handover};

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
         another raw client's watch is notified; \"then one read\": the watcher \
         then reads one other key (etcd: a linearizable get; ZooKeeper: getData), \
         the least a successor must do before it may lead (see its own entry still \
         there). No safe hand-over takes less than the floor then one read, so no \
         candidate can beat a peer by more than that / peer, nor come closer to the \
         floor than that / floor (the \"bound\" rows). Lease TTL {} s.",
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
    let etcd_floor_read = dist(keep(
        &mut sec,
        "etcd floor then one read",
        floor::etcd_then_read(s, runs).await,
    ));
    let zk_floor_read = dist(keep(
        &mut sec,
        "ZooKeeper floor then one read",
        floor::zookeeper_then_read(s, runs).await,
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
        ("etcd", "raw floor, then one read".into(), &etcd_floor_read),
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
        (
            "ZooKeeper",
            "raw floor, then one read".into(),
            &zk_floor_read,
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
        "bound: raw floor then one read / `etcdctl elect`".into(),
        &etcd_floor_read,
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
        "bound: raw floor then one read / raw floor".into(),
        &etcd_floor_read,
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
        "bound: raw floor then one read / kazoo".into(),
        &zk_floor_read,
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
        "bound: raw floor then one read / raw floor".into(),
        &zk_floor_read,
        &zk_floor,
    );
    ratio_row(
        "ZooKeeper",
        format!("{tenure_label} / raw floor"),
        &zk_cli_d,
        &zk_floor,
    );
    sec.table(&r);

    // Each target with the least any candidate could reach by the same
    // definition, measured in this run: a target below it is out of
    // reach, and the cell says so.
    let target = |report: &mut Report,
                  what: &str,
                  goal: &str,
                  limit: f64,
                  v: Option<f64>,
                  bound: (&str, Option<f64>)| {
        let cell = match (v, bound.1) {
            (None, _) => "not measured".to_owned(),
            (Some(v), None) => format!("{v:.2}×"),
            (Some(v), Some(b)) if b > limit => {
                format!("{v:.2}× (out of reach: {} alone is {b:.2}×)", bound.0)
            }
            (Some(v), Some(b)) => format!("{v:.2}× ({} alone: {b:.2}×)", bound.0),
        };
        report.target(what, goal, cell, v.map(|v| v <= limit));
    };
    target(
        report,
        &format!("handover median, {tenure_label} / `etcdctl elect`"),
        "≤ 0.5×",
        0.5,
        ratio(median(&etcd_cli_d), median(&etcdctl_d)),
        (
            "the floor then one read",
            ratio(median(&etcd_floor_read), median(&etcdctl_d)),
        ),
    );
    target(
        report,
        &format!("handover median, {tenure_label} / kazoo"),
        "≤ 0.5×",
        0.5,
        ratio(median(&zk_cli_d), median(&kazoo_d)),
        (
            "the floor then one read",
            ratio(median(&zk_floor_read), median(&kazoo_d)),
        ),
    );
    target(
        report,
        "handover median, tenure library / raw floor (etcd)",
        "≤ 1.5×",
        1.5,
        ratio(median(&etcd_lib), median(&etcd_floor)),
        (
            "the floor then one read",
            ratio(median(&etcd_floor_read), median(&etcd_floor)),
        ),
    );
    target(
        report,
        "handover median, tenure library / raw floor (ZooKeeper)",
        "≤ 1.5×",
        1.5,
        ratio(median(&zk_lib), median(&zk_floor)),
        (
            "the floor then one read",
            ratio(median(&zk_floor_read), median(&zk_floor)),
        ),
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
