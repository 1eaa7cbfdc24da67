//! `tenure campaign <election> [<proposal>] [-- CMD ARGS...]`.
//!
//! The loop of terms is the library's, [`Election::run_with`]: each term
//! starts a session (a fresh lease; `campaigning` is printed), campaigns,
//! leads until the term ends, and resigns by revoking the lease (one
//! write deletes the entry). Then it campaigns again after
//! `--recampaign-delay`, or exits (`--once`, a signal). This module is
//! the term's work: print `elected`, then hold, or run the command.
//!
//! Order matters where the command is concerned: it starts only after
//! the campaign resolves, it is stopped the instant `Leadership::lost()`
//! resolves (the local deadline comes before the backend can elect anyone
//! else), and on shutdown it is stopped *before* we resign, so that the
//! successor never overlaps it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenure::{
    Callbacks, CancellationToken, Election, ElectionName, LeaderContext, Leadership, RunEnd,
    RunOptions,
};

use crate::args::{CampaignArgs, GlobalArgs, OutputFormat};
use crate::child::{self, ChildSpec, Supervised};
use crate::clock;
use crate::output::{reason_name, Event, Output};
use crate::signals::{JobControl, Shutdown};
use crate::{backend, grace, CliError, Exit};

/// Runs the command.
///
/// # Errors
/// Bad input (2); backend errors (3) at start-up, or at any time under
/// `--once`; a command that cannot be started (126/127).
pub async fn run(global: &GlobalArgs, args: CampaignArgs, out: &Output) -> Result<Exit, CliError> {
    // Every check that needs no network comes first.
    let name = ElectionName::new(args.election.clone())?;
    let (url, _) = backend::resolve(global)?;
    if let Some(program) = args.command.first() {
        if program.is_empty() {
            return Err(CliError::usage("the command after `--` is empty"));
        }
        // A missing program does not appear by campaigning: fail first.
        child::resolve_program(program)
            .map_err(|e| CliError::new(child::spawn_failure_exit(&e), e.to_string()))?;
    }
    grace::check(args.grace, args.ttl)?;
    // `--listen`: health, readiness and metrics, from before connecting.
    let (status, _server) =
        crate::http::start(args.listen.listen, name.as_str(), true, out).await?;
    let mut shutdown = Shutdown::install()?;
    let jobs = JobControl::install()?;
    // Every term's work sees every signal from here on.
    let signals = shutdown.clone();
    let backend = tokio::select! {
        b = backend::connect(&url, Some(args.ttl), global.request_timeout) => b?,
        _ = shutdown.recv() => return Ok(Exit::Success),
    };
    tenure::backend::check_ttl(args.ttl, backend.ttl_bounds())?;
    let mut builder = Election::builder(backend, name.as_str())
        .strategy(args.strategy.into())
        .ttl(args.ttl)
        .recampaign_delay(args.recampaign_delay);
    if let Some(t) = global.request_timeout {
        builder = builder.request_timeout(t);
    }
    let election = builder.build()?;
    let proposal = args.proposal.clone().unwrap_or_else(default_proposal);
    let command = (!args.command.is_empty()).then(|| ChildSpec {
        argv: args.command.clone(),
        env: Vec::new(),
        stdout_to_stderr: out.format() == OutputFormat::Json,
    });
    // Cancelled by the first signal, or by a term whose command cannot
    // start (then `outcome` holds the error).
    let stop = shutdown.token().child_token();
    let outcome = Arc::new(Mutex::new(TermOutcome::default()));
    let term = Term {
        name: name.clone(),
        proposal: proposal.clone(),
        grace: args.grace,
        command,
        out: out.clone(),
        shutdown: signals,
        jobs,
        stop: stop.clone(),
        outcome: outcome.clone(),
        status: status.clone(),
    };
    let (out_c, name_c, proposal_c) = (out.clone(), name.clone(), proposal.clone());
    let callbacks = Callbacks::new()
        .on_campaigning(move |session| {
            let event = Event::Campaigning {
                proposal: proposal_c.clone(),
                lease: session.lease().to_string(),
                ttl_ms: u64::try_from(session.ttl().as_millis()).unwrap_or(u64::MAX),
            };
            status.saw(&event);
            status.follow_session(session);
            out_c.emit_or_log(name_c.as_str(), &event);
        })
        .on_retry(|error, delay| {
            tracing::warn!(%error, retry_in = ?delay, "campaign failed; retrying");
        })
        .on_started_leading(move |ctx| {
            let term = term.clone();
            async move { term.lead(ctx).await }
        });
    // Start-up errors (unreachable backend, bad credentials) end the
    // program; a first grant that timed out (a burst of candidates on one
    // server) is retried; once a session has worked, outages are waited
    // out.
    let options = RunOptions::new()
        .once(args.once)
        .recampaign_after_work(true)
        .retry_before_first_session(false);
    let end = election.run_with(proposal, callbacks, options, stop).await;
    let outcome = std::mem::take(&mut *outcome.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(fatal) = outcome.fatal {
        return Err(fatal);
    }
    Ok(match end? {
        RunEnd::Lost(_) if !shutdown.requested() => Exit::Lost,
        RunEnd::WorkReturned => outcome.child_exit.unwrap_or(Exit::Success),
        _ => Exit::Success,
    })
}

/// `<hostname>:<pid>`: tells an operator where the leader runs.
pub fn default_proposal() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// What a term leaves for the end of the run.
#[derive(Debug, Default)]
struct TermOutcome {
    /// How the last command ended by itself (`--once` exits with it).
    child_exit: Option<Exit>,
    /// An error that ends the program (the command cannot start).
    fatal: Option<CliError>,
}

/// How the work of one term ended.
#[derive(Debug)]
enum TermEnd {
    /// `SIGINT`/`SIGTERM`: the command stopped; the run resigns and ends.
    Shutdown,
    /// Leadership was lost (the command, if any, has been stopped).
    Lost,
    /// The command ended by itself; the run resigns.
    ChildExited(Exit),
}

/// The work of each term: what a leader does until the term ends.
#[derive(Clone)]
struct Term {
    name: ElectionName,
    proposal: String,
    grace: Option<Duration>,
    command: Option<ChildSpec>,
    out: Output,
    shutdown: Shutdown,
    jobs: JobControl,
    /// Ends the run (a command that cannot start).
    stop: CancellationToken,
    outcome: Arc<Mutex<TermOutcome>>,
    /// What `--listen` answers (`/healthz`, `/readyz`).
    status: crate::http::Status,
}

impl Term {
    /// Leads one term: `elected`, then hold or supervise the command. The
    /// run resigns (revoking the lease) once this returns.
    async fn lead(mut self, ctx: LeaderContext) {
        let leadership = ctx.leadership();
        let grace = grace::for_granted_ttl(self.grace, ctx.lease_ttl());
        self.emit(&Event::Elected {
            proposal: self.proposal.clone(),
            token: leadership.token(),
            lease: leadership.entry().lease.to_string(),
            valid_until_mono_ns: clock::instant_to_mono_ns(leadership.valid_until()),
        });
        let end = match self.command.clone() {
            None => Ok(self.hold(&ctx).await),
            Some(spec) => self.supervise(&ctx, spec, grace).await,
        };
        let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        match end {
            Ok(TermEnd::ChildExited(exit)) => outcome.child_exit = Some(exit),
            Ok(TermEnd::Lost | TermEnd::Shutdown) => {}
            Err(fatal) => {
                outcome.fatal = Some(fatal);
                self.stop.cancel();
            }
        }
    }

    /// Leads without a command until the term ends.
    async fn hold(&mut self, ctx: &LeaderContext) -> TermEnd {
        let leadership = ctx.leadership();
        let token = leadership.token();
        tokio::select! {
            biased;
            reason = leadership.lost() => {
                self.emit(&Event::Lost { reason: reason_name(reason), token });
                TermEnd::Lost
            }
            _ = self.shutdown.recv() => {
                self.resign(leadership).await;
                TermEnd::Shutdown
            }
        }
    }

    /// Leads with the command running, until the term ends.
    async fn supervise(
        &mut self,
        ctx: &LeaderContext,
        mut spec: ChildSpec,
        grace: Duration,
    ) -> Result<TermEnd, CliError> {
        let leadership = ctx.leadership();
        let token = leadership.token();
        if !leadership.is_leader() {
            // Lost (or past the deadline) before the command could start:
            // never start it.
            let reason = leadership.lost().await;
            self.emit(&Event::Lost {
                reason: reason_name(reason),
                token,
            });
            return Ok(TermEnd::Lost);
        }
        spec.env = vec![
            ("TENURE_ELECTION".into(), self.name.to_string()),
            ("TENURE_PROPOSAL".into(), self.proposal.clone()),
            ("TENURE_TOKEN".into(), token.to_string()),
            ("TENURE_LEASE".into(), leadership.entry().lease.to_string()),
        ];
        // From here on, SIGTSTP is ours to handle: the command stops first.
        let mut suspensions = self.jobs.delegate();
        // The supervisor kills the tree by itself at the deadline (plus
        // the grace), which it learns again at every renewal: even a
        // frozen tenure cannot leave the command running past it.
        let mut sent_until = leadership.valid_until();
        let mut child = match Supervised::spawn(&spec, (sent_until + grace).into()).await {
            Ok(c) => c,
            Err(e) => {
                // A missing program does not appear by campaigning again.
                self.resign(leadership).await;
                return Err(CliError::new(
                    child::spawn_failure_exit(&e),
                    format!("cannot run {:?}: {e}", spec.argv[0]),
                ));
            }
        };
        let pid = child.pid();
        self.emit(&Event::ChildStarted { pid, token });

        enum Wake {
            Lost(tenure::LossReason),
            Signal,
            Exited,
            Suspend,
            Renewal,
        }
        enum End {
            Lost(tenure::LossReason),
            Signal,
            Exited,
        }
        let (out, name) = (self.out.clone(), self.name.clone());
        let report = move |e: Event| out.emit_or_log(name.as_str(), &e);
        let mut renewals = tokio::time::interval(DEADLINE_POLL);
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            let wake = tokio::select! {
                biased;
                reason = leadership.lost() => Wake::Lost(reason),
                _ = self.shutdown.recv() => Wake::Signal,
                () = suspensions.recv() => Wake::Suspend,
                _ = child.wait(&report) => Wake::Exited,
                _ = renewals.tick() => Wake::Renewal,
            };
            match wake {
                Wake::Renewal => {
                    let until = leadership.valid_until();
                    if until > sent_until {
                        child.set_deadline((until + grace).into()).await;
                        sent_until = until;
                    }
                }
                Wake::Suspend => {
                    // Ctrl-Z: the command's tree stops, then we do.
                    child.freeze().await;
                    crate::signals::stop_self();
                    // Continued. The command runs again only if we still
                    // lead; otherwise the loss (certain: the deadline has
                    // passed) kills it while it is still stopped.
                    if leadership.is_leader() {
                        child.thaw().await;
                    }
                }
                Wake::Lost(reason) => break End::Lost(reason),
                Wake::Signal => break End::Signal,
                Wake::Exited => break End::Exited,
            }
        };
        drop(suspensions);
        match end {
            End::Lost(reason) => {
                self.emit(&Event::Lost {
                    reason: reason_name(reason),
                    token,
                });
                let kill_at = child::loss_kill_at(reason, leadership.valid_until().into(), grace);
                child.stop(kill_at, &mut self.shutdown, None, &report).await;
                Ok(if self.shutdown.requested() {
                    TermEnd::Shutdown
                } else {
                    TermEnd::Lost
                })
            }
            End::Signal => {
                // The command first, then the entry: no overlap with the
                // successor. We still lead while it stops, unless the term
                // ends meanwhile (reported the moment it does, and the
                // command is then killed in time).
                self.stop_then_resign(&mut child, leadership, grace, &report)
                    .await;
                Ok(TermEnd::Shutdown)
            }
            End::Exited => {
                // Whatever it left behind stops before we resign.
                let (end, lost) = self
                    .stop_then_resign(&mut child, leadership, grace, &report)
                    .await;
                Ok(if self.shutdown.requested() {
                    TermEnd::Shutdown
                } else if lost.is_some() {
                    // It ended because the term did (its supervisor's
                    // deadline): a loss, as `--once` reports it.
                    TermEnd::Lost
                } else {
                    TermEnd::ChildExited(end.exit())
                })
            }
        }
    }

    /// Stops the command's tree (SIGTERM, SIGKILL after `grace`), then
    /// resigns unless the term ended meanwhile (the loss is reported the
    /// moment it comes, and the tree is then killed in time). Returns how
    /// the command ended and the loss, if any.
    async fn stop_then_resign(
        &mut self,
        child: &mut Supervised,
        leadership: &Leadership,
        grace: Duration,
        report: &(dyn Fn(Event) + Sync),
    ) -> (child::ChildEnd, Option<tenure::LossReason>) {
        let kill_at = tokio::time::Instant::now() + grace;
        let (end, lost) = child
            .stop(
                kill_at,
                &mut self.shutdown,
                Some((leadership, grace)),
                report,
            )
            .await;
        if lost.is_none() {
            self.resign(leadership).await;
        }
        (end, lost)
    }

    /// Ends the term by our choice. The event comes first: we stop acting
    /// as leader now, and the successor can only be elected once the
    /// revoke that follows lands (the run revokes the term's lease as soon
    /// as the work returns), so `resigned` always precedes its `elected`
    /// (terms printed by different processes never overlap).
    ///
    /// If the term has already ended (the deadline passed a moment ago),
    /// that is reported instead: `lost`, never a late `resigned`.
    async fn resign(&self, leadership: &Leadership) {
        let token = leadership.token();
        if leadership.is_leader() {
            self.emit(&Event::Resigned { token });
        } else {
            let reason = leadership.lost().await;
            self.emit(&Event::Lost {
                reason: reason_name(reason),
                token,
            });
        }
    }

    fn emit(&self, event: &Event) {
        self.status.saw(event);
        self.out.emit_or_log(self.name.as_str(), event);
    }
}

/// How often the supervisor learns the term's new deadline (each
/// keep-alive moves it by TTL / 3; a deadline learnt late only makes the
/// supervisor's own kill come earlier, never later).
const DEADLINE_POLL: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_proposal_names_host_and_pid() {
        let p = default_proposal();
        let (host, pid) = p.rsplit_once(':').unwrap();
        assert!(!host.is_empty());
        assert_eq!(pid, std::process::id().to_string());
    }
}
