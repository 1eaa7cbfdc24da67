//! One campaign: a backend, K candidate processes behind their own
//! proxies, and a seeded sequence of fault episodes, all recorded.
//!
//! Files in the campaign's directory: `cand-<i>.jsonl` (each candidate's
//! events, across its respawns), `cand-<i>.stderr`, and `faults.jsonl`
//! (the runner's faults, kills, freezes and operator actions).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tenure::{DynBackend, Election, Entry};
use tenure_testkit::proxy::{Mode, Proxy};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::clock::mono_ns;
use crate::cluster::{BackendKind, Cluster};
use crate::faults::{Fault, FaultKind, Target};
use crate::live::LiveView;
use crate::log::{Event, EventLog};
use crate::procs;
use crate::schedule::Planner;

/// The election every candidate campaigns in.
pub const ELECTION: &str = "chaos";

/// Settings of one campaign.
#[derive(Clone, Debug)]
pub struct CampaignConfig {
    /// The backend.
    pub backend: BackendKind,
    /// Seed of the fault plan.
    pub seed: u64,
    /// Stop after this many faults (0: no limit).
    pub faults: usize,
    /// Stop after this long (whichever comes first).
    pub duration: Option<Duration>,
    /// Number of candidate processes.
    pub candidates: usize,
    /// Lease TTL of the candidates.
    pub ttl: Duration,
    /// Directory for this campaign's logs.
    pub dir: PathBuf,
    /// The `chaos-candidate` binary.
    pub candidate_bin: PathBuf,
    /// Candidates started deliberately broken (the checker's own test).
    pub broken: Vec<usize>,
    /// How often a leader sends a guarded write.
    pub write_every: Duration,
    /// How long after a heal a leader may take, beyond the TTL.
    pub liveness_bound: Duration,
    /// Only these fault kinds (all the backend's when empty).
    pub only: Vec<FaultKind>,
}

/// What a campaign did (the checker reads the rest from the logs).
#[derive(Clone, Debug)]
pub struct CampaignRun {
    /// Faults injected.
    pub faults: usize,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Why a campaign could not run.
#[derive(Debug)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

fn run_err(what: &str) -> impl FnOnce(String) -> RunError + '_ {
    move |e| RunError(format!("{what}: {e}"))
}

/// One candidate process and how to start it again.
#[derive(Debug)]
struct CandProc {
    id: usize,
    url: String,
    log: PathBuf,
    stderr: PathBuf,
    broken: bool,
    child: Option<Child>,
}

impl CandProc {
    fn spawn(&mut self, cfg: &CampaignConfig) -> std::io::Result<u32> {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)?;
        let mut cmd = Command::new(&cfg.candidate_bin);
        cmd.arg("--url")
            .arg(&self.url)
            .arg("--election")
            .arg(ELECTION)
            .arg("--id")
            .arg(self.id.to_string())
            .arg("--ttl-ms")
            .arg(cfg.ttl.as_millis().to_string())
            .arg("--write-ms")
            .arg(cfg.write_every.as_millis().to_string())
            .arg("--log")
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(err.try_clone()?)
            .stderr(err)
            .kill_on_drop(true);
        if self.broken {
            cmd.arg("--broken");
        }
        if cfg.only.contains(&FaultKind::SignalGated) {
            cmd.arg("--gated");
        }
        let child = cmd.spawn()?;
        let pid = child.id().unwrap_or(0);
        self.child = Some(child);
        Ok(pid)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    fn signal(&self, sig: Signal) -> std::io::Result<()> {
        match self.pid() {
            Some(pid) => procs::send(pid, sig),
            None => Ok(()),
        }
    }

    /// Waits up to `bound` for the process to exit by itself (after a
    /// shutdown signal), then kills it; true if a process was running.
    async fn exit_within(&mut self, bound: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        if tokio::time::timeout(bound, child.wait()).await.is_ok() {
            self.child = None;
            return true;
        }
        self.kill().await
    }

    /// `SIGKILL` and reap; true if a process was running.
    async fn kill(&mut self) -> bool {
        match self.child.take() {
            Some(mut child) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                true
            }
            None => false,
        }
    }
}

struct Ctx {
    cfg: CampaignConfig,
    cluster: Mutex<Cluster>,
    cands: Vec<Mutex<CandProc>>,
    proxies: Vec<Vec<Proxy>>,
    log: EventLog,
    observer: Election,
    observer_backend: DynBackend,
    live: StdMutex<LiveView>,
    busy: StdMutex<HashSet<usize>>,
}

/// Runs one campaign to its end and stops everything it started.
///
/// # Errors
/// The backend, a proxy or a candidate could not be started.
pub async fn run(cfg: CampaignConfig) -> Result<CampaignRun, RunError> {
    std::fs::create_dir_all(&cfg.dir).map_err(|e| run_err("create the log dir")(e.to_string()))?;
    let tag = cfg.backend.name();
    eprintln!("[{tag}] starting the backend");
    let cluster = Cluster::start(cfg.backend)
        .await
        .map_err(|e| run_err("start the backend")(e.to_string()))?;
    let addrs = cluster.addrs();
    let observer_backend = tenure::connect(&cluster.url(&addrs))
        .await
        .map_err(|e| run_err("connect the observer")(e.to_string()))?;
    let observer = Election::builder(observer_backend.clone(), ELECTION)
        .ttl(cfg.ttl)
        .build()
        .map_err(|e| run_err("configure the observer")(e.to_string()))?;
    let mut proxies = Vec::new();
    let mut cands = Vec::new();
    let mut paths = Vec::new();
    for id in 0..cfg.candidates {
        let mut mine = Vec::new();
        for a in &addrs {
            mine.push(
                Proxy::start(*a)
                    .await
                    .map_err(|e| run_err("start a proxy")(e.to_string()))?,
            );
        }
        let via: Vec<_> = mine.iter().map(Proxy::local_addr).collect();
        let log = cfg.dir.join(format!("cand-{id}.jsonl"));
        paths.push(log.clone());
        cands.push(Mutex::new(CandProc {
            id,
            url: cluster.url(&via),
            log,
            stderr: cfg.dir.join(format!("cand-{id}.stderr")),
            broken: cfg.broken.contains(&id),
            child: None,
        }));
        proxies.push(mine);
    }
    let log = EventLog::open(&cfg.dir.join("faults.jsonl"), None)
        .map_err(|e| run_err("open faults.jsonl")(e.to_string()))?;
    let ctx = Ctx {
        cfg: cfg.clone(),
        cluster: Mutex::new(cluster),
        cands,
        proxies,
        log,
        observer,
        observer_backend,
        live: StdMutex::new(LiveView::new(paths)),
        busy: StdMutex::new(HashSet::new()),
    };
    let started = Instant::now();
    let result = ctx.campaign().await;
    ctx.stop().await;
    let faults = result?;
    Ok(CampaignRun {
        faults,
        elapsed: started.elapsed(),
    })
}

impl Ctx {
    fn tag(&self) -> &'static str {
        self.cfg.backend.name()
    }

    async fn campaign(&self) -> Result<usize, RunError> {
        for c in &self.cands {
            let mut p = c.lock().await;
            let id = p.id;
            let pid = p
                .spawn(&self.cfg)
                .map_err(|e| run_err("spawn a candidate")(e.to_string()))?;
            self.log.log_for(Some(id), Event::Spawned { pid });
        }
        // The first leader, before any fault.
        if !self.wait_leader(Duration::from_secs(60)).await {
            return Err(RunError(format!(
                "no leader within 60 s of starting the candidates; see {}",
                self.cfg.dir.display()
            )));
        }
        let mut planner = Planner::new(
            self.cfg.seed,
            self.cfg.backend,
            self.cfg.candidates,
            self.cfg.ttl,
        )
        .restrict(&self.cfg.only);
        let started = Instant::now();
        let mut injected = 0usize;
        let mut next_id = 0u64;
        let mut reported = 0usize;
        let bound = self.cfg.ttl + self.cfg.liveness_bound;
        loop {
            if self.cfg.faults > 0 && injected >= self.cfg.faults {
                break;
            }
            if self.cfg.duration.is_some_and(|d| started.elapsed() >= d) {
                break;
            }
            let first = planner.next(false);
            let second = planner
                .overlap(&first)
                .map(|after| (after, planner.next(first.kind.hits_backend())));
            let gap = planner.gap();
            let (id1, id2) = (next_id, next_id + 1);
            next_id += 2;
            let one = self.fault(id1, first);
            let two = async {
                if let Some((after, f)) = second {
                    tokio::time::sleep(after).await;
                    self.fault(id2, f).await;
                }
            };
            tokio::join!(one, two);
            injected += 1 + usize::from(second.is_some());
            self.log.log(Event::Quiet);
            self.wait_leader(bound + Duration::from_secs(2)).await;
            tokio::time::sleep(gap).await;
            if injected >= reported + 50 {
                reported = injected;
                eprintln!(
                    "[{}] {injected} faults in {:.0} s",
                    self.tag(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(injected)
    }

    /// Waits until some candidate believes it leads; false after `limit`.
    async fn wait_leader(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            if self.believed_leader().is_some() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn believed_leader(&self) -> Option<usize> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.refresh();
        live.leader(mono_ns())
    }

    /// The backend's current leader entry, with its candidate if it is one
    /// of ours.
    async fn leader_entry(&self) -> Option<(Entry, Option<usize>)> {
        let read = tokio::time::timeout(self.cfg.ttl, self.observer.candidates()).await;
        let entry = read.ok()?.ok()?.into_iter().next()?;
        let cand = std::str::from_utf8(&entry.value)
            .ok()
            .and_then(|v| v.strip_prefix("cand-"))
            .and_then(|n| n.parse().ok());
        Some((entry, cand))
    }

    /// Resolves a candidate target, preferring one no other fault holds.
    fn claim(&self, target: Target) -> usize {
        let k = self.cfg.candidates;
        let wanted = match target {
            Target::Leader { fallback } => self.believed_leader().unwrap_or(fallback),
            Target::Candidate(c) => c,
            Target::Member(_) | Target::Backend => 0,
        } % k;
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let pick = (0..k)
            .map(|d| (wanted + d) % k)
            .find(|c| !busy.contains(c))
            .unwrap_or(wanted);
        busy.insert(pick);
        pick
    }

    fn release(&self, cand: usize) {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&cand);
    }

    fn set_proxies(&self, cand: usize, mode: Mode) {
        for p in &self.proxies[cand] {
            p.set_mode(mode);
        }
    }

    fn error(&self, what: String, e: impl std::fmt::Display) {
        self.log.log(Event::Error {
            what,
            message: e.to_string(),
        });
    }

    /// Injects one fault, holds it, heals it.
    async fn fault(&self, id: u64, f: Fault) {
        let on_candidate = matches!(
            f.kind,
            FaultKind::Sigkill
                | FaultKind::Sigstop
                | FaultKind::ProxyDrop
                | FaultKind::ProxyBlackhole
                | FaultKind::ProxyDelay
                | FaultKind::ProxySlow
                | FaultKind::SignalGated
        ) || (f.kind == FaultKind::ExpireLease && self.cfg.backend.is_zk());
        if on_candidate {
            let c = self.claim(f.target);
            self.start(id, f, Some(c), format!("candidate {c}"));
            self.candidate_fault(c, f).await;
            self.release(c);
        } else if f.kind.hits_leader_entry() {
            self.entry_fault(id, f).await;
        } else {
            let member = match f.target {
                Target::Member(i) => i,
                _ => 0,
            };
            self.start(id, f, None, format!("member {member}"));
            self.backend_fault(member, f).await;
        }
        self.log.log(Event::FaultHeal { id });
    }

    fn start(&self, id: u64, f: Fault, cand: Option<usize>, target: String) {
        let target = match f.kind {
            FaultKind::ProxyDelay => format!("{target}, {} ms", f.param),
            FaultKind::ProxySlow => format!("{target}, {} B/s", f.param),
            FaultKind::SignalGated => {
                let sig = usize::try_from(f.param)
                    .ok()
                    .and_then(|i| FaultKind::GATED_SIGNALS.get(i));
                format!("{target}, {}", sig.map_or("?", |s| s.as_str()))
            }
            _ => target,
        };
        self.log.log_for(
            cand,
            Event::FaultStart {
                id,
                kind: f.kind.name().to_owned(),
                target: format!("{target}, hold {} ms", f.hold.as_millis()),
            },
        );
    }

    /// After candidate `c`'s process has ended: forgets what it believed,
    /// waits `hold`, and starts it again.
    async fn respawn_after(&self, c: usize, p: &mut CandProc, hold: Duration) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(c);
        tokio::time::sleep(hold).await;
        match p.spawn(&self.cfg) {
            Ok(pid) => self.log.log_for(Some(c), Event::Spawned { pid }),
            Err(e) => self.error(format!("respawn candidate {c}"), e),
        }
    }

    async fn candidate_fault(&self, c: usize, f: Fault) {
        match f.kind {
            FaultKind::Sigkill => {
                let mut p = self.cands[c].lock().await;
                if p.kill().await {
                    self.log.log_for(Some(c), Event::Killed);
                }
                self.respawn_after(c, &mut p, f.hold).await;
            }
            FaultKind::Sigstop => {
                let p = self.cands[c].lock().await;
                self.log.log_for(Some(c), Event::Paused);
                if let Err(e) = p.signal(Signal::SIGSTOP) {
                    self.error(format!("stop candidate {c}"), e);
                }
                tokio::time::sleep(f.hold).await;
                if let Err(e) = p.signal(Signal::SIGCONT) {
                    self.error(format!("continue candidate {c}"), e);
                }
                self.log.log_for(Some(c), Event::Resumed);
            }
            FaultKind::SignalGated => self.signal_gated(c, f).await,
            FaultKind::ProxyDrop | FaultKind::ProxyBlackhole => {
                let mode = if f.kind == FaultKind::ProxyDrop {
                    Mode::Drop
                } else {
                    Mode::Blackhole
                };
                self.set_proxies(c, mode);
                tokio::time::sleep(f.hold).await;
                self.set_proxies(c, Mode::Pass);
            }
            FaultKind::ProxyDelay => {
                self.set_proxies(c, Mode::Delay(Duration::from_millis(f.param)));
                tokio::time::sleep(f.hold).await;
                self.set_proxies(c, Mode::Pass);
            }
            FaultKind::ProxySlow => {
                self.set_proxies(
                    c,
                    Mode::Slow {
                        bytes_per_sec: f.param,
                    },
                );
                tokio::time::sleep(f.hold).await;
                self.set_proxies(c, Mode::Pass);
            }
            FaultKind::ExpireLease => {
                // ZooKeeper: cut off past the session timeout (the server
                // expires the session), then reset the connections so the
                // client reconnects at once and learns it expired.
                self.set_proxies(c, Mode::Blackhole);
                tokio::time::sleep(f.hold).await;
                self.set_proxies(c, Mode::Drop);
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.set_proxies(c, Mode::Pass);
            }
            _ => {}
        }
    }

    /// A signal to a candidate that runs a gated command: a shutdown
    /// signal or `SIGKILL` (the process ends; respawned after the hold),
    /// or `SIGTSTP` (`SIGCONT` after the hold).
    async fn signal_gated(&self, c: usize, f: Fault) {
        let sig = usize::try_from(f.param)
            .ok()
            .and_then(|i| FaultKind::GATED_SIGNALS.get(i).copied())
            .unwrap_or(Signal::SIGKILL);
        let mut p = self.cands[c].lock().await;
        if sig == Signal::SIGTSTP {
            self.log.log_for(Some(c), Event::Paused);
            if let Err(e) = p.signal(sig) {
                self.error(format!("send {sig} to candidate {c}"), e);
            }
            tokio::time::sleep(f.hold).await;
            if let Err(e) = p.signal(Signal::SIGCONT) {
                self.error(format!("continue candidate {c}"), e);
            }
            self.log.log_for(Some(c), Event::Resumed);
            return;
        }
        if let Err(e) = p.signal(sig) {
            self.error(format!("send {sig} to candidate {c}"), e);
        }
        // A shutdown signal: it stops its command, resigns and exits.
        if p.exit_within(self.cfg.ttl * 5).await {
            self.log.log_for(Some(c), Event::Killed);
        }
        self.respawn_after(c, &mut p, f.hold).await;
    }

    /// An operator acts on the leader's entry: deletes it, or revokes its
    /// lease (etcd).
    async fn entry_fault(&self, id: u64, f: Fault) {
        let Some((entry, cand)) = self.leader_entry().await else {
            self.start(id, f, None, "no leader entry".into());
            return;
        };
        let who = cand.map_or_else(
            || "an unknown entry".to_owned(),
            |c| format!("candidate {c}"),
        );
        self.start(id, f, cand, format!("{who} (token {})", entry.created));
        let token = entry.created;
        let by = match f.kind {
            FaultKind::DeleteKey => "delete",
            _ => "lease revoke",
        };
        self.log.log_for(
            cand,
            Event::Deposed {
                token,
                by: by.to_owned(),
            },
        );
        let done = match f.kind {
            FaultKind::DeleteKey => self.observer_backend.delete(&entry).await.map(|_| ()),
            _ => self.observer_backend.revoke_lease(entry.lease).await,
        };
        match done {
            Ok(()) => self.log.log_for(cand, Event::Fenced { token }),
            Err(e) => self.error(format!("{by} of token {token}"), e),
        }
    }

    async fn backend_fault(&self, member: usize, f: Fault) {
        match f.kind {
            FaultKind::BackendRestart => {
                let mut cl = self.cluster.lock().await;
                if let Err(e) = cl.restart_all().await {
                    self.error("restart the backend".into(), e);
                }
            }
            FaultKind::BackendPause | FaultKind::MemberPause => {
                let cl = self.cluster.lock().await;
                if let Err(e) = cl.signal_member(member, Signal::SIGSTOP) {
                    self.error(format!("stop member {member}"), e);
                }
                tokio::time::sleep(f.hold).await;
                if let Err(e) = cl.signal_member(member, Signal::SIGCONT) {
                    self.error(format!("continue member {member}"), e);
                }
            }
            FaultKind::MemberKill => {
                let mut cl = self.cluster.lock().await;
                if let Err(e) = cl.kill_member(member).await {
                    self.error(format!("kill member {member}"), e);
                }
                tokio::time::sleep(f.hold).await;
                if let Err(e) = cl.restart_member(member).await {
                    self.error(format!("restart member {member}"), e);
                }
            }
            _ => {}
        }
    }

    /// Ends the campaign: heals everything, asks every candidate to stop
    /// (they resign), kills those that do not.
    async fn stop(&self) {
        self.log.log(Event::Stop);
        let stored = tokio::time::timeout(
            Duration::from_secs(5),
            self.observer_backend.get(crate::candidate::FENCED_KEY),
        )
        .await;
        match stored {
            Ok(Ok((entry, _))) => self.log.log(Event::FinalValue {
                value: entry.map(|e| String::from_utf8_lossy(&e.value).into_owned()),
            }),
            Ok(Err(e)) => self.error("read the fenced key".into(), e),
            Err(_) => self.error("read the fenced key".into(), "timed out"),
        }
        for (c, _) in self.proxies.iter().enumerate() {
            self.set_proxies(c, Mode::Pass);
        }
        for c in &self.cands {
            let _ = c.lock().await.signal(Signal::SIGCONT);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        for c in &self.cands {
            let _ = c.lock().await.signal(Signal::SIGTERM);
        }
        for c in &self.cands {
            let mut p = c.lock().await;
            let id = p.id;
            let exited = match p.child.as_mut() {
                Some(child) => tokio::time::timeout(Duration::from_secs(5), child.wait())
                    .await
                    .is_ok(),
                None => true,
            };
            if exited {
                p.child = None;
            } else if p.kill().await {
                self.log.log_for(Some(id), Event::Killed);
            }
        }
    }
}

/// The `chaos-candidate` binary next to the running executable.
pub fn candidate_bin_next_to_me() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .join("chaos-candidate")
}
