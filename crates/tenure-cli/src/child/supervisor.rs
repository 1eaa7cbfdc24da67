//! The supervisor: a small process between `tenure` and the command that
//! makes sure the command's whole tree ends with the term.
//!
//! `tenure` starts it as `tenure __tenure-supervise <tenure pid>
//! <deadline ns> -- CMD ARGS...`, with one end of a socket as its standard
//! input. It
//!
//! - becomes a *child subreaper* (`PR_SET_CHILD_SUBREAPER`): whatever the
//!   command starts, however it detaches (`setsid`, double fork, another
//!   process group), is re-parented to the supervisor when its parent
//!   dies, never to PID 1, so it stays findable as a descendant
//!   ([`super::tree`]);
//! - starts the command through the exec helper ([`super::exec`]) in a
//!   process group of its own;
//! - obeys `tenure`'s [`Order`]s (`SIGTERM`, `SIGSTOP`, `SIGCONT`, `SIGKILL`
//!   to the whole tree, new deadlines) and reports the command's
//!   end;
//! - kills the whole tree, by itself, when `tenure` goes away however it
//!   goes (its end of the socket closes; `SIGKILL` included), when a
//!   termination signal reaches the supervisor, and when the deadline
//!   `tenure` last gave it passes: the leader's local deadline plus the
//!   grace, which comes before the backend can elect a successor. That
//!   last rule holds even while `tenure` is frozen (`SIGSTOP`, a debugger,
//!   a stalled machine);
//! - exits once nothing of the tree is left.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

use super::exec::{self_exe, EXEC_HELPER};
use super::protocol::{Order, Report};
use super::tree;
use crate::clock;
use crate::exit::{Exit, CANNOT_EXECUTE};

/// The hidden first argument that makes `tenure` run as the supervisor.
pub const SUPERVISOR: &str = "__tenure-supervise";

/// How long killing the tree may take before the supervisor gives up
/// (a process stuck in the kernel, in uninterruptible sleep, cannot be
/// reaped; it runs no code of its own meanwhile).
const KILL_BOUND: Duration = Duration::from_secs(10);

/// The supervisor's `main`: returns the exit code (0 once the tree is
/// gone; 2 for malformed arguments; 126 if it cannot supervise).
pub fn supervisor_main(args: &[OsString]) -> i32 {
    let parsed = match args {
        [parent, deadline, dashdash, _, ..] if dashdash == "--" => parent
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
            .zip(deadline.to_str().and_then(|d| d.parse::<u64>().ok()))
            .map(|(p, d)| (p, d, &args[3..])),
        _ => None,
    };
    let Some((parent, deadline, argv)) = parsed else {
        eprintln!("tenure: {SUPERVISOR} is internal to tenure campaign");
        return Exit::Usage.code();
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenure: supervisor: cannot start its runtime: {e}");
            return CANNOT_EXECUTE;
        }
    };
    runtime.block_on(supervise(parent, deadline, argv))
}

async fn supervise(parent: i32, deadline: u64, argv: &[OsString]) -> i32 {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("tenure: supervisor: cannot become a child subreaper: {e}");
        return CANNOT_EXECUTE;
    }
    // The socket's end of `tenure` closing is the main sign that it died;
    // the parent-death signal is a second one, handled like SIGTERM.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM) {
        eprintln!("tenure: supervisor: cannot arm the parent-death signal: {e}");
        return CANNOT_EXECUTE;
    }
    if nix::unistd::getppid().as_raw() != parent {
        return Exit::Lost.code(); // tenure died before the signal was armed
    }
    // Every handler before the command starts: no exit goes unseen.
    let kinds = [
        SignalKind::child(),
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::hangup(),
        SignalKind::quit(),
        SignalKind::user_defined1(),
    ];
    let mut handlers = Vec::new();
    for kind in kinds {
        match signal(kind) {
            Ok(h) => handlers.push(h),
            Err(e) => {
                eprintln!("tenure: supervisor: cannot install signal handlers: {e}");
                return CANNOT_EXECUTE;
            }
        }
    }
    let mut child_exits = handlers.remove(0);
    let socket = match control_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tenure: supervisor: no control socket on standard input: {e}");
            return CANNOT_EXECUTE;
        }
    };
    let (reader, mut writer) = socket.into_split();
    let mut orders = BufReader::new(reader).lines();

    let me = nix::unistd::getpid();
    let spawned = self_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .arg(EXEC_HELPER)
            .arg(me.to_string())
            .arg("--")
            .args(argv)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
    });
    let command = match spawned {
        // Never waited through `std`: `reap` collects every child.
        Ok(child) => match i32::try_from(child.id()) {
            Ok(pid) if pid > 1 => Pid::from_raw(pid),
            _ => {
                eprintln!("tenure: supervisor: unexpected pid {}", child.id());
                return CANNOT_EXECUTE;
            }
        },
        Err(e) => {
            eprintln!("tenure: supervisor: cannot start the command: {e}");
            return CANNOT_EXECUTE;
        }
    };
    let mut tree = Tree {
        me,
        command,
        command_running: true,
    };
    send(
        &mut writer,
        Report::Started(command.as_raw().unsigned_abs()),
    )
    .await;

    let mut deadline = deadline;
    loop {
        let expiry = instant_of(deadline);
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(expiry) => {
                send(&mut writer, Report::Expired).await;
                break;
            }
            () = any(&mut handlers) => break,
            _ = child_exits.recv() => {
                if let Some(report) = tree.reap() {
                    send(&mut writer, report).await;
                }
                if tree.empty() {
                    return 0;
                }
            }
            line = orders.next_line() => match line.ok().flatten().as_deref().map(Order::parse) {
                Some(Some(Order::Deadline(ns))) => deadline = ns,
                Some(Some(Order::Term)) => tree.signal(Signal::SIGTERM),
                Some(Some(Order::Stop)) => tree.signal(Signal::SIGSTOP),
                // The deadline is checked first (biased): a frozen
                // command past it is killed, never resumed.
                Some(Some(Order::Cont)) if clock::mono_ns() < deadline => tree.signal(Signal::SIGCONT),
                Some(Some(Order::Cont)) => break,
                Some(Some(Order::Kill)) => break,
                Some(None) => {} // not ours to understand; tenure never sends it
                // tenure is gone (or its socket broke): nothing may outlive it.
                None => break,
            }
        }
    }
    let report = tree.kill_all();
    if let Some(report) = report {
        send(&mut writer, report).await;
    }
    0
}

/// The command's tree, seen from the supervisor (its subreaper).
struct Tree {
    me: Pid,
    command: Pid,
    /// Until the command's own process is reaped, its pid (and so its
    /// process group id) cannot be reused: `killpg` is safe.
    command_running: bool,
}

impl Tree {
    /// Signals the command's process group and every descendant outside
    /// it, each process once.
    fn signal(&self, signal: Signal) {
        let mut group = None;
        if self.command_running {
            match killpg(self.command, signal) {
                Ok(()) => group = Some(self.command),
                Err(Errno::ESRCH) => {}
                Err(e) => eprintln!(
                    "tenure: supervisor: cannot send {signal} to the command's group: {e}"
                ),
            }
        }
        tree::signal_descendants(self.me, signal, group);
    }

    /// Reaps every child that has ended (the command, and orphans
    /// re-parented to us); returns the command's end once it is reaped.
    fn reap(&mut self) -> Option<Report> {
        let mut report = None;
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.command => {
                    self.command_running = false;
                    report = Some((Some(code), None));
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == self.command => {
                    self.command_running = false;
                    report = Some((None, Some(signal as i32)));
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    eprintln!("tenure: supervisor: cannot wait for its children: {e}");
                    break;
                }
            }
        }
        report.map(|(code, signal)| Report::Exited {
            code,
            signal,
            left: tree::descendants(self.me).len(),
        })
    }

    /// Whether the command and everything it started are gone.
    fn empty(&self) -> bool {
        !self.command_running && tree::descendants(self.me).is_empty()
    }

    /// `SIGKILL` to the whole tree, again and again (a process may fork
    /// between two rounds, and orphans re-parent to us as their parents
    /// die), until nothing is left or [`KILL_BOUND`] passes. Returns the
    /// command's end if it was reaped here.
    fn kill_all(&mut self) -> Option<Report> {
        let give_up = std::time::Instant::now() + KILL_BOUND;
        let mut report = None;
        loop {
            self.signal(Signal::SIGKILL);
            if let Some(r) = self.reap() {
                report = Some(r);
            }
            if self.empty() {
                return report;
            }
            if std::time::Instant::now() >= give_up {
                eprintln!("tenure: supervisor: processes of the command survive SIGKILL");
                return report;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The control socket, from standard input (a duplicate, close-on-exec,
/// so that the command never inherits it).
fn control_socket() -> std::io::Result<tokio::net::UnixStream> {
    let fd = std::io::stdin().as_fd().try_clone_to_owned()?;
    let socket = std::os::unix::net::UnixStream::from(fd);
    socket.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(socket)
}

async fn send(writer: &mut tokio::net::unix::OwnedWriteHalf, report: Report) {
    use tokio::io::AsyncWriteExt;
    let mut line = report.to_string().into_bytes();
    line.push(b'\n');
    // tenure may be gone: nobody to tell, and nothing else to do about it.
    let _ = writer.write_all(&line).await;
}

/// Resolves when any of `handlers` receives its signal.
async fn any(handlers: &mut [tokio::signal::unix::Signal]) {
    let waits = handlers.iter_mut().map(|h| Box::pin(h.recv()));
    futures::future::select_all(waits).await;
}

/// The [`Instant`] of a `CLOCK_MONOTONIC` reading in nanoseconds.
fn instant_of(mono_ns: u64) -> Instant {
    let now = clock::mono_ns();
    Instant::now() + Duration::from_nanos(mono_ns.saturating_sub(now))
}
