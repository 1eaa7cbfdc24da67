//! The command run while leader, and everything it starts.
//!
//! `tenure` never runs the command itself: it starts a [`supervisor`]
//! process (`tenure` again, under a hidden argument), which is a child
//! subreaper, starts the command in a process group of its own, and kills
//! the command's whole tree when `tenure` dies (however it dies), when
//! `tenure` tells it to, or when the deadline `tenure` gave it passes.
//! [`Supervised`] is `tenure`'s side of it: orders go over a socket
//! ([`protocol`]), reports come back.
//!
//! Stopping follows one rule: SIGTERM to the whole tree first, SIGKILL at a
//! kill instant that always comes before the backend could elect a
//! successor (the local deadline plus the grace, which fits in the safety
//! margin; at once when the backend already took leadership away).

pub mod exec;
pub mod protocol;
pub mod supervisor;
pub mod tree;

pub use exec::{exec_helper, resolve_program, spawn_failure_exit, EXEC_HELPER};
pub use supervisor::{supervisor_main, SUPERVISOR};

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use tenure::{Leadership, LossReason};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::clock;
use crate::exit::Exit;
use crate::output::{reason_name, Event};
use crate::signals::Shutdown;
use protocol::{Order, Report};

/// What to run and how.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    /// Program and arguments (non-empty).
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Send the child's standard output to our standard error (when our
    /// standard output carries JSON events).
    pub stdout_to_stderr: bool,
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildEnd {
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// The number of the signal that killed it, if one did.
    pub signal: Option<i32>,
}

impl ChildEnd {
    /// From the status `wait` returned.
    pub fn from_status(status: ExitStatus) -> Self {
        ChildEnd {
            code: status.code(),
            signal: status.signal(),
        }
    }

    /// The name of the killing signal (`SIGTERM`), if any.
    pub fn signal_name(&self) -> Option<String> {
        self.signal.map(|n| match Signal::try_from(n) {
            Ok(s) => s.as_str().to_owned(),
            Err(_) => format!("signal {n}"),
        })
    }

    /// The exit code `tenure campaign --once` ends with.
    pub fn exit(&self) -> Exit {
        Exit::from_child(self.code, self.signal)
    }

    /// The `child_exited` event.
    pub fn event(&self, pid: u32) -> Event {
        Event::ChildExited {
            pid,
            code: self.code,
            signal: self.signal_name(),
        }
    }
}

/// The instant at which a command must be dead after leadership was lost
/// for `reason`, given the term's last local deadline `valid_until`.
///
/// At the local deadline the backend still holds our lease for at least
/// the safety margin, and `grace` fits in half of it: `valid_until +
/// grace`. Any other loss (the backend expired the lease, our entry was
/// deleted, the driver stopped) means a successor may already be elected:
/// now.
pub fn loss_kill_at(reason: LossReason, valid_until: Instant, grace: Duration) -> Instant {
    match reason {
        LossReason::DeadlineExceeded => valid_until + grace,
        _ => Instant::now(),
    }
}

/// The command under its supervisor.
#[derive(Debug)]
pub struct Supervised {
    /// The supervisor process.
    process: Child,
    /// The command's pid (and process group id).
    pid: u32,
    orders: OwnedWriteHalf,
    reports: Lines<BufReader<OwnedReadHalf>>,
    /// How the command's own process ended, once reported.
    end: Option<ChildEnd>,
    /// Processes of its tree still running when it ended.
    left: usize,
    /// The supervisor closed the socket: it exited, nothing is left.
    closed: bool,
    /// The tree was stopped (`SIGSTOP`) by us and not resumed.
    frozen: bool,
    /// `SIGKILL` was sent (by us or by the supervisor on its own), and
    /// reported.
    killed: bool,
}

impl Supervised {
    /// Starts the supervisor, which starts `spec` in a process group of
    /// its own and kills its whole tree by itself at `deadline` unless
    /// told a later one ([`set_deadline`](Self::set_deadline)). Returns
    /// once the command runs.
    ///
    /// # Errors
    /// When the supervisor cannot be started or cannot start the command.
    pub async fn spawn(spec: &ChildSpec, deadline: Instant) -> io::Result<Supervised> {
        if spec.argv.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
        }
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let mut cmd = Command::new(exec::self_exe()?);
        cmd.arg(SUPERVISOR)
            .arg(std::process::id().to_string())
            .arg(clock::instant_to_mono_ns(deadline.into_std()).to_string())
            .arg("--")
            .args(&spec.argv)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            // Out of our process group: a terminal's ^C / ^Z reach tenure,
            // which decides what the command gets.
            .process_group(0);
        // A password inside the backend URL stays with tenure: the
        // command (and everything it starts) never sees it.
        if std::env::var("TENURE_BACKEND").is_ok_and(|url| carries_password(&url)) {
            cmd.env_remove("TENURE_BACKEND");
        }
        if spec.stdout_to_stderr {
            let stderr = std::os::fd::AsFd::as_fd(&io::stderr()).try_clone_to_owned()?;
            cmd.stdout(Stdio::from(stderr));
        }
        let process = cmd.spawn()?;
        // Our copy of the supervisor's end goes now: its exit closes the socket.
        drop(cmd);
        ours.set_nonblocking(true)?;
        let (reader, orders) = tokio::net::UnixStream::from_std(ours)?.into_split();
        let mut reports = BufReader::new(reader).lines();
        let pid = match reports.next_line().await?.as_deref().map(Report::parse) {
            Some(Some(Report::Started(pid))) => pid,
            other => {
                return Err(io::Error::other(format!(
                    "the supervisor did not start the command ({other:?})"
                )))
            }
        };
        Ok(Supervised {
            process,
            pid,
            orders,
            reports,
            end: None,
            left: 0,
            closed: false,
            frozen: false,
            killed: false,
        })
    }

    /// The command's process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until the command's own process ends (its tree may live on:
    /// see [`stop`](Self::stop)). Cancel-safe.
    pub async fn wait(&mut self, report: &(dyn Fn(Event) + Sync)) -> ChildEnd {
        while self.end.is_none() && self.next(report).await {}
        self.end.unwrap_or(ChildEnd {
            code: None,
            signal: None,
        })
    }

    /// Whether processes of the tree outlived the command's own process
    /// (known once [`wait`](Self::wait) returned).
    pub fn left_behind(&self) -> bool {
        !self.closed && self.left > 0
    }

    /// Moves the instant at which the supervisor kills the tree by itself.
    pub async fn set_deadline(&mut self, deadline: Instant) {
        let ns = clock::instant_to_mono_ns(deadline.into_std());
        self.order(Order::Deadline(ns)).await;
    }

    /// `SIGSTOP` to the whole tree (tenure is about to stop itself).
    pub async fn freeze(&mut self) {
        self.order(Order::Stop).await;
        self.frozen = true;
    }

    /// `SIGCONT` to the whole tree: only while still leader (the
    /// supervisor kills the tree instead if its deadline has passed).
    pub async fn thaw(&mut self) {
        self.order(Order::Cont).await;
        self.frozen = false;
    }

    /// Stops the whole tree: `SIGTERM` now (or `SIGKILL` at once if the
    /// tree is frozen or `kill_at` has passed), `SIGKILL` at `kill_at`, or
    /// at once on a second shutdown signal. While `term` is given, a loss
    /// of leadership is reported the moment it happens and brings
    /// `kill_at` forward to [`loss_kill_at`]. Returns once nothing of the
    /// tree is left, with the command's end and the loss seen, if any.
    pub async fn stop(
        &mut self,
        mut kill_at: Instant,
        shutdown: &mut Shutdown,
        term: Option<(&Leadership, Duration)>,
        report: &(dyn Fn(Event) + Sync),
    ) -> (ChildEnd, Option<LossReason>) {
        let mut lost = None;
        let mut give_up = None;
        // The command ended and left nothing running: the supervisor is
        // exiting, there is nothing to signal.
        let nothing_left = self.end.is_some() && self.left == 0;
        if !self.closed && !nothing_left {
            if self.frozen || kill_at <= Instant::now() {
                give_up = Some(self.kill(report).await);
            } else {
                self.order(Order::Term).await;
                self.signalled(Signal::SIGTERM, report);
            }
        }
        while !self.closed {
            tokio::select! {
                biased;
                reason = lost_or_never(term), if lost.is_none() => {
                    lost = Some(reason);
                    if let Some((leadership, grace)) = term {
                        report(Event::Lost { reason: reason_name(reason), token: leadership.token() });
                        kill_at = kill_at.min(loss_kill_at(reason, leadership.valid_until().into(), grace));
                    }
                }
                () = tokio::time::sleep_until(kill_at), if give_up.is_none() => {
                    give_up = Some(self.kill(report).await);
                }
                _ = shutdown.recv(), if give_up.is_none() => {
                    give_up = Some(self.kill(report).await);
                }
                () = sleep_until_some(give_up) => {
                    tracing::warn!(pid = self.pid, "the command's supervisor does not end; killing it");
                    self.abandon().await;
                }
                _ = self.next(report) => {}
            }
        }
        let end = self.end.unwrap_or(ChildEnd {
            code: None,
            signal: None,
        });
        (end, lost)
    }

    /// Reads and handles one report; false once the supervisor is gone.
    async fn next(&mut self, report: &(dyn Fn(Event) + Sync)) -> bool {
        if self.closed {
            return false;
        }
        let line = match self.reports.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => {
                self.closed = true;
                // It exits as it closes the socket: reap it (bounded, in
                // case it is stopped; tokio reaps it later otherwise).
                let _ = tokio::time::timeout(REAP_BOUND, self.process.wait()).await;
                if self.end.is_none() {
                    let end = ChildEnd {
                        code: None,
                        signal: None,
                    };
                    self.end = Some(end);
                    report(end.event(self.pid));
                }
                return false;
            }
        };
        match Report::parse(&line) {
            Some(Report::Exited { code, signal, left }) => {
                let end = ChildEnd { code, signal };
                self.end = Some(end);
                self.left = left;
                report(end.event(self.pid));
            }
            Some(Report::Expired) => {
                tracing::warn!(
                    pid = self.pid,
                    "the command outlived the term's deadline; its supervisor killed it"
                );
                self.killed(report);
            }
            Some(Report::Started(_)) | None => {
                tracing::warn!(line, "unexpected report from the command's supervisor");
            }
        }
        true
    }

    /// `SIGKILL` to the whole tree; returns the instant to give up waiting.
    async fn kill(&mut self, report: &(dyn Fn(Event) + Sync)) -> Instant {
        self.order(Order::Kill).await;
        self.killed(report);
        Instant::now() + KILL_LANDS
    }

    /// Reports the `SIGKILL`, once.
    fn killed(&mut self, report: &(dyn Fn(Event) + Sync)) {
        if !self.killed {
            self.killed = true;
            self.signalled(Signal::SIGKILL, report);
        }
    }

    /// The supervisor did not finish in time (stopped by someone, stuck):
    /// kill it and the command's group directly, and stop waiting.
    async fn abandon(&mut self) {
        let _ = self.process.start_kill();
        if let Some(group) = i32::try_from(self.pid).ok().filter(|&p| p > 1) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), Signal::SIGKILL);
        }
        self.closed = true;
    }

    fn signalled(&self, signal: Signal, report: &(dyn Fn(Event) + Sync)) {
        report(Event::ChildSignalled {
            pid: self.pid,
            signal: signal.as_str(),
        });
    }

    async fn order(&mut self, order: Order) {
        if self.closed {
            return;
        }
        let line = format!("{order}\n");
        // A supervisor that is gone has nothing left to act on.
        if let Err(e) = self.orders.write_all(line.as_bytes()).await {
            tracing::debug!(error = %e, %order, "the command's supervisor is gone");
        }
    }
}

/// How long the supervisor may take to kill the tree and exit before we
/// kill it too (its own bound on the tree is longer only for processes
/// stuck in the kernel).
const KILL_LANDS: Duration = Duration::from_secs(15);

/// How long a supervisor that closed its socket may take to exit.
const REAP_BOUND: Duration = Duration::from_secs(1);

async fn lost_or_never(term: Option<(&Leadership, Duration)>) -> LossReason {
    match term {
        Some((leadership, _)) => leadership.lost().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether a backend URL holds a password (`password=`).
fn carries_password(url: &str) -> bool {
    tenure::backend::url_query::redact(url) != url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_map_to_codes_and_names() {
        let exited = ChildEnd {
            code: Some(3),
            signal: None,
        };
        assert_eq!(exited.exit().code(), 3);
        assert_eq!(exited.signal_name(), None);
        let killed = ChildEnd {
            code: None,
            signal: Some(9),
        };
        assert_eq!(killed.exit().code(), 137);
        assert_eq!(killed.signal_name().as_deref(), Some("SIGKILL"));
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_deadline_loss_leaves_the_grace() {
        let until = Instant::now() + Duration::from_secs(1);
        let grace = Duration::from_millis(200);
        assert_eq!(
            loss_kill_at(LossReason::DeadlineExceeded, until, grace),
            until + grace
        );
        for reason in [
            LossReason::LeaseExpired,
            LossReason::EntryDeleted,
            LossReason::Shutdown,
        ] {
            assert_eq!(loss_kill_at(reason, until, grace), Instant::now());
        }
    }
}
