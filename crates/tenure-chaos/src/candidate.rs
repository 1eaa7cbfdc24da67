//! The candidate process: campaigns on a URL, logs everything it is told,
//! renews, writes under its fencing token while it leads, re-campaigns
//! after each loss.
//!
//! With `gated`, a leader also runs a command the way `tenure campaign --
//! CMD` does, through the same supervisor (`tenure_cli::child`): `sh`
//! starting a grandchild ([`command_writer`]) that logs a
//! `command_write` line with the term's token every 50 ms. The candidate
//! handles signals as `tenure` does: `SIGHUP`, `SIGQUIT`, `SIGUSR1` like
//! `SIGTERM`, `SIGTSTP` by stopping the command's tree, then itself.
//!
//! A hidden `--broken` mode makes it a deliberately unsafe leader for the
//! checker's own test: once elected it ignores `lost()` and `valid_until`,
//! keeps claiming a fresh deadline, and guards its writes with *an* entry
//! of its own (re-created when gone) rather than with the winning one: a
//! leader that checks that its entry exists, not that it is first.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use tenure::backend::Slot;
use tenure::{
    Callbacks, DynBackend, Election, ElectionName, Entry, Error, LeaderContext, Leadership,
    RunOptions,
};
use tenure_cli::child::{loss_kill_at, ChildSpec, Supervised};
use tenure_cli::signals::{stop_self, JobControl, Shutdown};

use crate::clock::{mono_ns, MonoAnchor};
use crate::log::{Event, EventLog};

/// The key every guarded write goes to: next to the election, outside its
/// key space (guarded writes refuse keys inside an election).
pub const FENCED_KEY: &str = "chaos-fenced";

/// How a candidate runs.
#[derive(Clone, Debug)]
pub struct CandidateOptions {
    /// Backend URL (through this candidate's proxies).
    pub url: String,
    /// Election name.
    pub election: String,
    /// Candidate number in the run (its proposal is `cand-<id>`).
    pub id: usize,
    /// Lease TTL.
    pub ttl: Duration,
    /// How often a leader polls its deadline.
    pub poll: Duration,
    /// How often a leader sends a guarded write.
    pub write_every: Duration,
    /// The log file.
    pub log: PathBuf,
    /// Deliberately unsafe (see the module docs).
    pub broken: bool,
    /// Run a gated command while leader (see the module docs).
    pub gated: bool,
}

/// Why a term's work returned.
enum After {
    /// Campaign again.
    Recampaign,
    /// `SIGTERM`: stop.
    Stop,
}

/// Runs a candidate until `SIGTERM` (or `SIGINT`, `SIGHUP`, `SIGQUIT`,
/// `SIGUSR1`).
///
/// # Errors
/// The log cannot be opened or the signal handlers installed.
pub async fn run(opts: CandidateOptions) -> std::io::Result<()> {
    let log = Arc::new(EventLog::open(&opts.log, Some(opts.id))?);
    let mut term = Shutdown::install().map_err(|e| std::io::Error::other(e.to_string()))?;
    let jobs = if opts.gated {
        Some(JobControl::install().map_err(|e| std::io::Error::other(e.to_string()))?)
    } else {
        None
    };
    log.log(Event::Start {
        pid: std::process::id(),
        broken: opts.broken,
    });
    let anchor = MonoAnchor::now();
    let backend = loop {
        tokio::select! {
            r = tenure::connect(&opts.url) => match r {
                Ok(b) => break b,
                Err(e) => {
                    log.log(error("connect", &e));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = term.recv() => return Ok(()),
        }
    };
    let election = match Election::builder(backend.clone(), opts.election.clone())
        .ttl(opts.ttl)
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            log.log(error("configure the election", &e));
            return Err(std::io::Error::other(e.to_string()));
        }
    };
    let proposal = format!("cand-{}", opts.id);
    // The term numbers of guarded writes run on across terms.
    let seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = term.token();
    let work = {
        let (opts, log, backend, seq) = (opts.clone(), log.clone(), backend.clone(), seq.clone());
        // Each term's work sees every shutdown signal from here on.
        let signals = term.clone();
        move |ctx: LeaderContext| {
            let (opts, log, backend, seq) =
                (opts.clone(), log.clone(), backend.clone(), seq.clone());
            let (mut term, jobs) = (signals.clone(), jobs.clone());
            async move {
                let l = ctx.leadership();
                let after = if opts.broken {
                    lead_broken(&opts, &log, &anchor, &backend, l, &seq, &mut term).await
                } else if let Some(jobs) = &jobs {
                    lead_gated(&opts, &log, &anchor, l, &mut term, jobs).await
                } else {
                    lead(&opts, &log, &anchor, l, &seq, &mut term).await
                };
                if let After::Stop = after {
                    if l.loss_reason().is_none() && !opts.broken {
                        log.log(Event::Lost {
                            reason: tenure::LossReason::Resigned.to_string(),
                        });
                    }
                }
                // The run resigns (or cleans up after the loss) and, unless
                // shutting down, campaigns again.
            }
        }
    };
    let (log_c, log_r) = (log.clone(), log.clone());
    let callbacks = Callbacks::new()
        .on_campaigning(move |_| log_c.log(Event::Campaign))
        .on_retry(move |e, _| log_r.log(error("campaign", e)))
        .on_started_leading(work);
    let options = RunOptions::new().recampaign_after_work(true);
    match election
        .run_with(proposal, callbacks, options, stop.clone())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            // Errors retrying cannot fix: logged, and the candidate waits
            // for its stop signal (the runner decides when it ends).
            log.log(error("campaign", &e));
            stop.cancelled().await;
            Ok(())
        }
    }
}

fn error(what: &str, e: &Error) -> Event {
    Event::Error {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

type WriteDone = (u64, u64, Result<tenure::Revision, Error>);

/// One term of a correct leader.
async fn lead(
    opts: &CandidateOptions,
    log: &EventLog,
    anchor: &MonoAnchor,
    l: &Leadership,
    seq: &std::sync::atomic::AtomicU64,
    term: &mut Shutdown,
) -> After {
    let token = l.token();
    let mut logged = l.valid_until();
    log.log(Event::Elected {
        token,
        valid_until_ns: anchor.to_ns(logged),
    });
    let renew = |logged: &mut Instant| {
        let now = l.valid_until();
        if now != *logged {
            *logged = now;
            log.log(Event::Renewed {
                valid_until_ns: anchor.to_ns(now),
            });
        }
    };
    let mut tick = tokio::time::interval(opts.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_write = Instant::now();
    let mut in_flight: Option<BoxFuture<'_, WriteDone>> = None;
    let timeout = opts.ttl;
    let outcome = loop {
        tokio::select! {
            reason = l.lost() => {
                log.log(Event::Lost { reason: reason.to_string() });
                break After::Recampaign;
            }
            _ = term.recv() => break After::Stop,
            Some((sent_ns, n, r)) = async {
                match in_flight.as_mut() {
                    Some(f) => Some(f.await),
                    None => std::future::pending().await,
                }
            } => {
                in_flight = None;
                log.log(write_event(token, n, sent_ns, r));
            }
            _ = tick.tick() => {
                renew(&mut logged);
                if in_flight.is_none() && Instant::now() >= next_write {
                    // Stamped before the check: the write is decided while
                    // the term is valid for us.
                    let sent_ns = mono_ns();
                    if l.is_leader() {
                        renew(&mut logged);
                        let n = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        let value = format!("cand={} token={token} seq={n}", opts.id);
                        next_write = Instant::now() + opts.write_every;
                        in_flight = Some(
                            async move {
                                let r = match tokio::time::timeout(
                                    timeout,
                                    l.guarded_put(FENCED_KEY, value),
                                )
                                .await
                                {
                                    Ok(r) => r,
                                    Err(_) => Err(Error::Timeout {
                                        backend: "chaos",
                                        operation: "guarded put",
                                        after: timeout,
                                    }),
                                };
                                (sent_ns, n, r)
                            }
                            .boxed(),
                        );
                    }
                }
            }
        }
    };
    // A write already sent still gets its answer logged.
    if let Some(f) = in_flight {
        let (sent_ns, n, r) = f.await;
        log.log(write_event(token, n, sent_ns, r));
    }
    outcome
}

/// One term of a correct leader that runs a gated command, as `tenure
/// campaign -- CMD` does: the supervisor learns every new deadline (plus
/// the grace) and kills the command's tree by itself when it passes.
async fn lead_gated(
    opts: &CandidateOptions,
    log: &EventLog,
    anchor: &MonoAnchor,
    l: &Leadership,
    term: &mut Shutdown,
    jobs: &JobControl,
) -> After {
    let token = l.token();
    let mut logged = l.valid_until();
    log.log(Event::Elected {
        token,
        valid_until_ns: anchor.to_ns(logged),
    });
    let grace = tenure_cli::grace::max_grace(opts.ttl);
    let mut suspensions = jobs.delegate();
    let spec = ChildSpec {
        argv: command_argv(opts),
        env: vec![("TENURE_TOKEN".into(), token.to_string())],
        stdout_to_stderr: false,
    };
    let mut child = match Supervised::spawn(&spec, (logged + grace).into()).await {
        Ok(c) => c,
        Err(e) => {
            log.log(Event::Error {
                what: "start the gated command".into(),
                message: e.to_string(),
            });
            log.log(Event::Lost {
                reason: tenure::LossReason::Resigned.to_string(),
            });
            return After::Recampaign;
        }
    };
    // The candidate logs the term itself; the CLI's events are not needed.
    let quiet = |_: tenure_cli::output::Event| {};
    let mut tick = tokio::time::interval(opts.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            reason = l.lost() => {
                log.log(Event::Lost { reason: reason.to_string() });
                let kill_at = loss_kill_at(reason, l.valid_until().into(), grace);
                child.stop(kill_at, term, None, &quiet).await;
                return After::Recampaign;
            }
            _ = term.recv() => {
                let now = tokio::time::Instant::now();
                let (_, lost) = child.stop(now + grace, term, Some((l, grace)), &quiet).await;
                if let Some(reason) = lost {
                    log.log(Event::Lost { reason: reason.to_string() });
                }
                return After::Stop;
            }
            () = suspensions.recv() => {
                child.freeze().await;
                stop_self();
                if l.is_leader() {
                    child.thaw().await;
                }
            }
            _ = child.wait(&quiet) => {
                // The writer never ends by itself: something killed it.
                let now = tokio::time::Instant::now();
                child.stop(now + grace, term, None, &quiet).await;
                log.log(Event::Lost { reason: tenure::LossReason::Resigned.to_string() });
                return After::Recampaign;
            }
            _ = tick.tick() => {
                let now = l.valid_until();
                if now != logged {
                    logged = now;
                    log.log(Event::Renewed { valid_until_ns: anchor.to_ns(now) });
                    child.set_deadline((now + grace).into()).await;
                }
            }
        }
    }
}

/// The gated command: `sh` starting the writer ([`command_writer`], this
/// very binary under a hidden argument) in the background.
fn command_argv(opts: &CandidateOptions) -> Vec<String> {
    let me = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/proc/self/exe".into());
    vec![
        "sh".into(),
        "-c".into(),
        format!("\"$0\" {COMMAND_WRITER} \"$1\" \"$2\" & wait"),
        me,
        opts.log.display().to_string(),
        opts.id.to_string(),
    ]
}

/// The hidden first argument that makes the candidate binary run as the
/// gated command's writer: `<bin> __command-writer <log> <id>`.
pub const COMMAND_WRITER: &str = "__command-writer";

/// The writer: logs a `command_write` line with `TENURE_TOKEN` every
/// 50 ms until killed. Returns only on bad arguments (exit code 2).
pub fn command_writer(args: &[std::ffi::OsString]) -> i32 {
    let token = std::env::var("TENURE_TOKEN")
        .ok()
        .and_then(|t| t.parse::<u64>().ok());
    let (Some(token), [log, id]) = (token, args) else {
        eprintln!("{COMMAND_WRITER}: needs TENURE_TOKEN, <log> and <id>");
        return 2;
    };
    let Some(id) = id.to_str().and_then(|i| i.parse::<usize>().ok()) else {
        eprintln!("{COMMAND_WRITER}: bad candidate id {id:?}");
        return 2;
    };
    let log = match EventLog::open(std::path::Path::new(log), Some(id)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{COMMAND_WRITER}: cannot open the log: {e}");
            return 2;
        }
    };
    loop {
        log.log(Event::CommandWrite { token });
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_event(token: u64, seq: u64, sent_ns: u64, r: Result<tenure::Revision, Error>) -> Event {
    let (accepted, answer) = match r {
        Ok(rev) => (true, format!("ok {rev}")),
        Err(Error::NotLeader { .. }) | Err(Error::NotOwner { .. }) => (false, "refused".to_owned()),
        Err(e) => (false, format!("error: {e}")),
    };
    Event::Write {
        token,
        seq,
        sent_ns,
        accepted,
        answer,
    }
}

/// A term of the deliberately broken leader: it never steps down.
async fn lead_broken(
    opts: &CandidateOptions,
    log: &EventLog,
    anchor: &MonoAnchor,
    backend: &DynBackend,
    l: &Leadership,
    seq: &std::sync::atomic::AtomicU64,
    term: &mut Shutdown,
) -> After {
    let token = l.token();
    log.log(Event::Elected {
        token,
        valid_until_ns: anchor.to_ns(l.valid_until()),
    });
    let Ok(election) = ElectionName::new(opts.election.clone()) else {
        return After::Stop;
    };
    let mut guard: Entry = l.entry().clone();
    let mut tick = tokio::time::interval(opts.write_every);
    loop {
        tokio::select! {
            _ = term.recv() => return After::Stop,
            _ = tick.tick() => {}
        }
        // Trusts itself: a fresh deadline at every tick, whatever the
        // lease says.
        log.log(Event::Renewed {
            valid_until_ns: anchor.to_ns(Instant::now() + opts.ttl * 4 / 5),
        });
        let sent_ns = mono_ns();
        let n = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let value = Bytes::from(format!("cand={} token={token} seq={n}", opts.id));
        let r = tokio::time::timeout(opts.ttl, backend.guarded_put(&guard, FENCED_KEY, value))
            .await
            .unwrap_or(Err(Error::Cancelled("guarded put timed out")));
        let refused = matches!(r, Err(Error::NotOwner { .. }));
        log.log(write_event(token, n, sent_ns, r));
        if refused {
            // "Our entry is gone? Make one": the bug. Any entry of ours
            // will do as a guard, first in the queue or not.
            if let Ok(lease) = backend.grant_lease(opts.ttl * 10).await {
                if let Ok(created) = backend
                    .create(&election, Slot::Queue, lease.id, Bytes::from("broken"))
                    .await
                {
                    guard = created.entry().clone();
                }
            }
        }
    }
}
