//! `tenure campaign <election> [<proposal>] [-- CMD ARGS...]`.
//!
//! One loop of terms. Each term: start a session (a fresh lease), print
//! `campaigning`, campaign, print `elected`, then lead until the term ends
//! — leadership lost, the command ended, or `SIGINT`/`SIGTERM` — and close
//! the session. Then campaign again, or exit (`--once`, a signal).
//!
//! Order matters where the command is concerned: it starts only after
//! `campaign()` resolves, it is stopped the instant `Leadership::lost()`
//! resolves (the local deadline comes before the backend can elect anyone
//! else), and on shutdown it is stopped *before* we resign, so that the
//! successor never overlaps it.

use std::time::Duration;

use tenure::{DynBackend, Election, ElectionName, Error, Leadership, Session};

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
    let mut shutdown = Shutdown::install()?;
    let jobs = JobControl::install()?;
    let (status, _server) =
        crate::http::start(args.listen.listen, name.as_str(), true, out).await?;
    let backend = tokio::select! {
        b = backend::connect(&url, Some(args.ttl), global.request_timeout) => b?,
        _ = shutdown.recv() => return Ok(Exit::Success),
    };
    tenure::check_ttl(args.ttl, backend.ttl_bounds())?;
    let proposal = args.proposal.clone().unwrap_or_else(default_proposal);
    let command = (!args.command.is_empty()).then(|| ChildSpec {
        argv: args.command.clone(),
        env: Vec::new(),
        stdout_to_stderr: out.format() == OutputFormat::Json,
    });
    let mut campaigner = Campaigner {
        backend,
        name,
        proposal,
        args,
        request_timeout: global.request_timeout,
        command,
        out,
        shutdown,
        jobs,
        rng: fastrand::Rng::new(),
        session: None,
        status,
    };
    campaigner.run().await
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

/// How one term ended.
#[derive(Debug)]
enum TermEnd {
    /// `SIGINT`/`SIGTERM`: everything stopped and released; exit 0.
    Shutdown,
    /// Leadership was lost (the command, if any, has been stopped).
    Lost,
    /// The command ended by itself; we resigned.
    ChildExited(Exit),
}

struct Campaigner<'a> {
    backend: DynBackend,
    name: ElectionName,
    proposal: String,
    args: CampaignArgs,
    request_timeout: Option<Duration>,
    command: Option<ChildSpec>,
    out: &'a Output,
    shutdown: Shutdown,
    jobs: JobControl,
    rng: fastrand::Rng,
    /// The current term's session (a lease of its own), while it lasts.
    session: Option<Session>,
    /// What `--listen` answers (`/healthz`, `/readyz`).
    status: crate::http::Status,
}

impl Campaigner<'_> {
    async fn run(&mut self) -> Result<Exit, CliError> {
        // Start-up errors (unreachable backend, bad credentials) end the
        // program; once a session has worked, outages are waited out.
        let mut reached = false;
        let mut failures = 0u32;
        loop {
            let delay = match self.term().await {
                Ok(TermEnd::Shutdown) => return Ok(Exit::Success),
                Ok(TermEnd::Lost) if self.args.once => return Ok(Exit::Lost),
                Ok(TermEnd::ChildExited(exit)) if self.args.once => return Ok(exit),
                Ok(_) => {
                    reached = true;
                    failures = 0;
                    self.recampaign_delay()
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Backend {
                    error,
                    session_started,
                }) => {
                    reached |= session_started;
                    if self.args.once || !reached || !retryable(&error) {
                        return Err(error.into());
                    }
                    failures = failures.saturating_add(1);
                    let delay = self.retry_delay(failures);
                    tracing::warn!(error = %error, retry_in = ?delay, "campaign failed; retrying");
                    delay
                }
            };
            if self.pause(delay).await {
                return Ok(Exit::Success);
            }
        }
    }

    /// One term, from a fresh session to its close.
    async fn term(&mut self) -> Result<TermEnd, Failure> {
        let session = {
            let mut b = Session::builder(self.backend.clone()).ttl(self.args.ttl);
            if let Some(t) = self.request_timeout {
                b = b.request_timeout(t);
            }
            tokio::select! {
                s = b.start() => s.map_err(|error| Failure::Backend { error, session_started: false })?,
                _ = self.shutdown.recv() => return Ok(TermEnd::Shutdown),
            }
        };
        let grace = grace::for_granted_ttl(self.args.grace, session.ttl());
        self.session = Some(session.clone());
        self.status.follow_session(&session);
        let span = tracing::info_span!("term", lease = %session.lease());
        let end =
            tracing::Instrument::instrument(self.campaign_and_lead(&session, grace), span).await;
        self.session = None;
        // Revoke the lease: whatever is left of our entry goes with it.
        session.close().await;
        end.map_err(|error| match error {
            Failure::Backend { error, .. } => Failure::Backend {
                error,
                session_started: true,
            },
            fatal => fatal,
        })
    }

    async fn campaign_and_lead(
        &mut self,
        session: &Session,
        grace: Duration,
    ) -> Result<TermEnd, Failure> {
        let mut builder = Election::builder(self.backend.clone(), self.name.as_str())
            .strategy(self.args.strategy.into())
            .session(session.clone());
        if let Some(t) = self.request_timeout {
            builder = builder.request_timeout(t);
        }
        let election = builder.build().map_err(Failure::from_error)?;
        self.emit(&Event::Campaigning {
            proposal: self.proposal.clone(),
            lease: session.lease().to_string(),
            ttl_ms: u64::try_from(session.ttl().as_millis()).unwrap_or(u64::MAX),
        });
        let leadership = tokio::select! {
            l = election.campaign(self.proposal.clone()) => l.map_err(Failure::from_error)?,
            // Dropping the campaign withdraws our entry.
            _ = self.shutdown.recv() => return Ok(TermEnd::Shutdown),
        };
        let token = leadership.token();
        self.emit(&Event::Elected {
            proposal: self.proposal.clone(),
            token,
            lease: leadership.entry().lease.to_string(),
            valid_until_mono_ns: clock::instant_to_mono_ns(leadership.valid_until()),
        });
        match self.command.clone() {
            None => Ok(self.hold(leadership).await),
            Some(spec) => self.supervise(leadership, spec, grace).await,
        }
    }

    /// Leads without a command until the term ends.
    async fn hold(&mut self, leadership: Leadership) -> TermEnd {
        let token = leadership.token();
        tokio::select! {
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
        leadership: Leadership,
        mut spec: ChildSpec,
        grace: Duration,
    ) -> Result<TermEnd, Failure> {
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
                return Err(Failure::Fatal(CliError::new(
                    child::spawn_failure_exit(&e),
                    format!("cannot run {:?}: {e}", spec.argv[0]),
                )));
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
        let (out, name) = (self.out, self.name.clone());
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
                drop(leadership);
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
        leadership: Leadership,
        grace: Duration,
        report: &dyn Fn(Event),
    ) -> (child::ChildEnd, Option<tenure::LossReason>) {
        let kill_at = tokio::time::Instant::now() + grace;
        let (end, lost) = child
            .stop(
                kill_at,
                &mut self.shutdown,
                Some((&leadership, grace)),
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
    /// delete that follows lands, so `resigned` always precedes its
    /// `elected` (terms printed by different processes never overlap).
    ///
    /// If the term has already ended (the deadline passed a moment ago),
    /// that is reported instead: `lost`, never a late `resigned`.
    async fn resign(&self, leadership: Leadership) {
        let token = leadership.token();
        if leadership.is_leader() {
            self.emit(&Event::Resigned { token });
            match &self.session {
                // The term's lease is ours alone and bound to nothing but
                // our entry: revoking it deletes the entry and ends the
                // session in one write, where a delete and then a revoke
                // took two (and the second one slowed the successor's
                // first read).
                Some(session) => session.close().await,
                None => leadership.resign().await,
            }
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

    /// The anti-flap pause, plus up to a quarter more of jitter.
    fn recampaign_delay(&mut self) -> Duration {
        let d = self.args.recampaign_delay;
        d + jitter(&mut self.rng, d / 4)
    }

    /// Back-off after a failed session or campaign: 0.5 s doubling to 10 s,
    /// each drawn from the upper half of its window.
    fn retry_delay(&mut self, failures: u32) -> Duration {
        let window = tenure::Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
        }
        .window(failures.saturating_sub(1));
        window / 2 + jitter(&mut self.rng, window / 2)
    }

    /// Sleeps `delay`; true if a shutdown signal came first.
    async fn pause(&mut self, delay: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => false,
            _ = self.shutdown.recv() => true,
        }
    }
}

/// How often the supervisor learns the term's new deadline (each
/// keep-alive moves it by TTL / 3; a deadline learnt late only makes the
/// supervisor's own kill come earlier, never later).
const DEADLINE_POLL: Duration = Duration::from_millis(50);

fn jitter(rng: &mut fastrand::Rng, max: Duration) -> Duration {
    let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(if max == 0 { 0 } else { rng.u64(0..=max) })
}

/// Why a term could not run.
#[derive(Debug)]
enum Failure {
    /// A backend error; whether it ends the program depends on the mode.
    Backend {
        /// The error.
        error: Error,
        /// Whether a session had been started (the backend was reachable).
        session_started: bool,
    },
    /// An error that ends the program whatever the mode.
    Fatal(CliError),
}

impl Failure {
    fn from_error(error: Error) -> Self {
        Failure::Backend {
            error,
            session_started: false,
        }
    }
}

/// Errors worth campaigning again for: the network, the backend, a lease
/// lost while waiting.
fn retryable(e: &Error) -> bool {
    e.is_transient() || matches!(e, Error::LeaseExpired { .. } | Error::Cancelled(_))
}

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

    #[test]
    fn outages_are_retryable_and_bad_input_is_not() {
        let unreachable = Error::Unreachable {
            backend: "etcd",
            endpoint: "x".into(),
            source: "refused".into(),
        };
        assert!(retryable(&unreachable));
        assert!(retryable(&Error::LeaseExpired {
            lease: tenure::LeaseId(1)
        }));
        assert!(!retryable(&Error::InvalidConfig {
            field: "ttl",
            reason: "no".into()
        }));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..100 {
            assert!(jitter(&mut rng, Duration::from_millis(10)) <= Duration::from_millis(10));
        }
        assert_eq!(jitter(&mut rng, Duration::ZERO), Duration::ZERO);
    }
}
