//! Herd and scale: N candidates of one election in one process, sharing
//! one connection.
//!
//! The queue layouts key a candidate's entry by its lease (etcd
//! `<election>/<lease hex>`, one ZooKeeper session per lease), so the N
//! candidates of one election hold one lease each; they share the
//! connection (on ZooKeeper every lease is a session, hence a connection,
//! of its own). A second measurement shares one session among N
//! *elections* (one candidate each): the keep-alive cost of a process that
//! leads many elections.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tenure::{DynBackend, Election, Leadership, Session};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clock::{between, mono_ns};
use crate::error::{fail, within, Context, Failures, Result};
use crate::handover::wait_queue;
use tenure_testkit::counting::Counting as Traffic;

/// Settings of one scale run.
#[derive(Clone, Copy, Debug)]
pub struct ScaleConfig {
    /// TTL of every lease.
    pub ttl: Duration,
    /// Rounds of "all N start at once → first leader".
    pub first_rounds: usize,
    /// Handovers measured with all N candidates queued.
    pub handovers: usize,
    /// After a handover, how long to keep counting the traffic it causes.
    pub count_window: Duration,
    /// The idle window over which keep-alives are counted.
    pub idle_window: Duration,
}

/// What one N produced.
#[derive(Clone, Debug, Default)]
pub struct ScaleResult {
    /// Candidates.
    pub n: usize,
    /// All N start campaigning → the first is elected.
    pub first_leader: Vec<Duration>,
    /// Resign → successor elected, with N candidates queued.
    pub handover: Vec<Duration>,
    /// Backend requests (keep-alives excluded) per leader change.
    pub requests: Vec<f64>,
    /// Watch events delivered per leader change.
    pub watch_events: Vec<f64>,
    /// Keep-alives per second while idle.
    pub keep_alives_per_s: f64,
    /// Other requests per second while idle.
    pub other_per_s: f64,
    /// Keep-alives per second expected: one per lease per TTL/3.
    pub expected_keep_alives_per_s: f64,
}

/// An elected candidate, reported by its campaign task.
struct Won {
    index: usize,
    at: u64,
    leadership: Leadership,
}

/// N candidates, their elections and campaign tasks.
struct Herd {
    elections: Vec<Election>,
    tasks: Vec<Option<JoinHandle<()>>>,
    tx: mpsc::UnboundedSender<Won>,
    rx: mpsc::UnboundedReceiver<Won>,
    /// Campaigns that ended in an error.
    failed: Failures,
}

impl Herd {
    fn campaign(&mut self, i: usize) {
        let e = self.elections[i].clone();
        let tx = self.tx.clone();
        let failed = self.failed.clone();
        self.tasks[i] = Some(tokio::spawn(async move {
            match e.campaign(format!("c{i}")).await {
                Ok(leadership) => {
                    let _ = tx.send(Won {
                        index: i,
                        at: mono_ns(),
                        leadership,
                    });
                }
                Err(error) => failed.record(|| format!("candidate {i}: {error}")),
            }
        }));
    }

    async fn next_leader(&mut self, what: &str) -> Result<Won> {
        within(Duration::from_secs(30), || what.to_owned(), self.rx.recv())
            .await?
            .ok_or_else(|| fail(format!("{what}: campaign channel closed")))
    }

    /// Withdraws every waiting candidate (their entries are deleted).
    fn withdraw_all(&mut self) {
        for t in self.tasks.iter_mut() {
            if let Some(t) = t.take() {
                t.abort();
            }
        }
    }
}

/// Starts `n` sessions on `conn`, 200 at a time.
async fn sessions(conn: &DynBackend, n: usize, ttl: Duration) -> Result<Vec<Session>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = (n - out.len()).min(200);
        for s in join_all((0..batch).map(|_| Session::new(conn.clone(), ttl))).await {
            out.push(s.context(|| "scale: session".into())?);
        }
    }
    Ok(out)
}

/// Closes sessions, 200 at a time.
pub async fn close_all(sessions: &[Session]) {
    for chunk in sessions.chunks(200) {
        join_all(chunk.iter().map(Session::close)).await;
    }
}

/// One election of `n` candidates on `conn` (counted), observed through
/// `observer` (another connection, not counted).
///
/// # Errors
/// Backend failures or leaders that never come.
pub async fn herd(
    conn: Arc<Traffic>,
    observer: DynBackend,
    name: &str,
    n: usize,
    cfg: ScaleConfig,
) -> Result<ScaleResult> {
    let dyn_conn: DynBackend = conn.clone();
    let sessions = sessions(&dyn_conn, n, cfg.ttl).await?;
    let mut elections = Vec::with_capacity(n);
    for s in &sessions {
        elections.push(
            Election::builder(dyn_conn.clone(), name)
                .session(s.clone())
                .build()
                .context(|| "scale: election".into())?,
        );
    }
    let watcher = Election::builder(observer, name)
        .ttl(cfg.ttl)
        .build()
        .context(|| "scale: observer".into())?;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut herd = Herd {
        elections,
        tasks: (0..n).map(|_| None).collect(),
        tx,
        rx,
        failed: Failures::default(),
    };
    let mut out = ScaleResult {
        n,
        expected_keep_alives_per_s: n as f64 * 3.0 / cfg.ttl.as_secs_f64(),
        ..ScaleResult::default()
    };

    // Time to first leader, all N starting at once.
    let mut leader = None;
    for round in 0..cfg.first_rounds.max(1) {
        let t0 = mono_ns();
        for i in 0..n {
            herd.campaign(i);
        }
        let won = herd.next_leader("scale: first leader").await;
        let won = herd.failed.explain(won)?;
        out.first_leader.push(between(t0, won.at));
        herd.failed.explain(wait_queue(&watcher, n).await)?;
        if round + 1 < cfg.first_rounds.max(1) {
            herd.withdraw_all();
            let _ = won.leadership.resign().await;
            wait_queue(&watcher, 0).await?;
            while let Ok(extra) = herd.rx.try_recv() {
                let _ = extra.leadership.resign().await;
            }
            wait_queue(&watcher, 0).await?;
        } else {
            leader = Some(won);
        }
    }
    let mut leader = leader.ok_or_else(|| fail("scale: no leader"))?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Handovers with N queued; the resigned candidate queues again at the back.
    for h in 0..cfg.handovers {
        let before = conn.counts();
        let t0 = mono_ns();
        let resigned = leader.index;
        tokio::spawn(leader.leadership.resign());
        let won = herd.next_leader(&format!("scale: handover {h}")).await?;
        out.handover.push(between(t0, won.at));
        tokio::time::sleep(cfg.count_window).await;
        let d = conn.counts().since(&before);
        out.requests.push(d.requests_but_keep_alives() as f64);
        out.watch_events.push(d.watch_events as f64);
        herd.campaign(resigned);
        herd.failed.explain(wait_queue(&watcher, n).await)?;
        tokio::time::sleep(Duration::from_millis(30)).await;
        leader = won;
    }

    // Idle.
    let before = conn.counts();
    tokio::time::sleep(cfg.idle_window).await;
    let d = conn.counts().since(&before);
    let secs = cfg.idle_window.as_secs_f64();
    out.keep_alives_per_s = d.keep_alives as f64 / secs;
    out.other_per_s = d.requests_but_keep_alives() as f64 / secs;

    herd.withdraw_all();
    let _ = leader.leadership.resign().await;
    close_all(&sessions).await;
    Ok(out)
}

/// What one session shared by N elections produced.
#[derive(Clone, Debug, Default)]
pub struct SharedResult {
    /// Elections.
    pub n: usize,
    /// Per election: all N start at once → this one elected.
    pub elected: Vec<Duration>,
    /// Keep-alives per second while idle (expected: 3 / TTL).
    pub keep_alives_per_s: f64,
    /// Other requests per second while idle.
    pub other_per_s: f64,
}

/// N elections (one candidate each) sharing one session on `conn`.
///
/// # Errors
/// Backend failures.
pub async fn shared_session(
    conn: Arc<Traffic>,
    tag: &str,
    n: usize,
    cfg: ScaleConfig,
) -> Result<SharedResult> {
    let dyn_conn: DynBackend = conn.clone();
    let session = Session::new(dyn_conn.clone(), cfg.ttl)
        .await
        .context(|| "shared session".into())?;
    let mut elections = Vec::with_capacity(n);
    for i in 0..n {
        elections.push(
            Election::builder(dyn_conn.clone(), format!("{tag}-{i}"))
                .session(session.clone())
                .build()
                .context(|| "shared session: election".into())?,
        );
    }
    let t0 = mono_ns();
    let won = join_all(elections.iter().map(|e| async move {
        let r = e.campaign("c").await;
        (mono_ns(), r)
    }))
    .await;
    let mut out = SharedResult {
        n,
        ..SharedResult::default()
    };
    let mut leaderships = Vec::with_capacity(n);
    for (at, r) in won {
        leaderships.push(r.context(|| "shared session: campaign".into())?);
        out.elected.push(between(t0, at));
    }
    // Each new leader sets a watch on its own entry after it is elected.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = conn.counts();
    tokio::time::sleep(cfg.idle_window).await;
    let d = conn.counts().since(&before);
    let secs = cfg.idle_window.as_secs_f64();
    out.keep_alives_per_s = d.keep_alives as f64 / secs;
    out.other_per_s = d.requests_but_keep_alives() as f64 / secs;
    drop(leaderships);
    session.close().await;
    Ok(out)
}
