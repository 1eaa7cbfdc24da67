//! The command run while leader: started in its own process group,
//! stopped by signalling the whole group (`SIGTERM`, then `SIGKILL` after
//! a grace period), so that `sh -c` grandchildren stop with it.
//!
//! The command is started through [`exec`]'s helper, so that it dies
//! with `tenure`.

pub mod exec;
pub mod group;

pub use exec::{exec_helper, resolve_program, spawn_failure_exit, EXEC_HELPER};

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::exit::Exit;
use crate::output::Event;
use crate::signals::Shutdown;
use group::ProcessGroup;

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

/// A running child in its own process group.
#[derive(Debug)]
pub struct Supervised {
    child: Child,
    pid: u32,
    group: ProcessGroup,
}

impl Supervised {
    /// Starts `spec` as the leader of a new process group.
    ///
    /// # Errors
    /// When the program cannot be found or executed.
    pub fn spawn(spec: &ChildSpec) -> io::Result<Supervised> {
        let (program, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        // Through the exec helper (see the module docs). /proc/self/exe
        // still works if the binary was replaced since we started.
        let me = Path::new("/proc/self/exe");
        let me = if me.exists() {
            me.to_path_buf()
        } else {
            std::env::current_exe()?
        };
        let mut cmd = Command::new(me);
        cmd.arg(EXEC_HELPER)
            .arg(std::process::id().to_string())
            .arg("--")
            .arg(program)
            .args(args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .process_group(0)
            // If tenure itself unwinds, do not leave the child leading.
            .kill_on_drop(true);
        if spec.stdout_to_stderr {
            let stderr = std::os::fd::AsFd::as_fd(&io::stderr()).try_clone_to_owned()?;
            cmd.stdout(Stdio::from(stderr));
        }
        let child = cmd.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("child exited before its pid was read"))?;
        let group = ProcessGroup::of(pid)
            .ok_or_else(|| io::Error::other(format!("unexpected child pid {pid}")))?;
        Ok(Supervised { child, pid, group })
    }

    /// Its process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until it exits.
    ///
    /// # Errors
    /// When waiting fails (should not happen).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Stops it: `SIGTERM` to its group, then up to `grace` for every
    /// process of the group to end (cut short by a second `SIGINT`/`SIGTERM`
    /// to tenure), then `SIGKILL` to whatever is left. Returns once the
    /// child is reaped and nothing of its group runs any more. `report`
    /// receives the `child_signalled` and `child_exited` events.
    pub async fn stop(
        &mut self,
        grace: Duration,
        shutdown: &mut Shutdown,
        report: &dyn Fn(Event),
    ) -> ChildEnd {
        let deadline = Instant::now() + grace;
        self.signal(Signal::SIGTERM, report);
        let waited = tokio::select! {
            r = self.child.wait() => Some(r),
            () = tokio::time::sleep_until(deadline) => None,
            _ = shutdown.recv() => None,
        };
        let end = match waited {
            Some(r) => {
                let end = self.reaped(r, report);
                if !self.group_gone_by(deadline, shutdown).await {
                    self.signal(Signal::SIGKILL, report);
                }
                end
            }
            None => {
                self.signal(Signal::SIGKILL, report);
                let r = self.child.wait().await;
                self.reaped(r, report)
            }
        };
        self.await_killed().await;
        end
    }

    /// After the child exited by itself (`result` is what
    /// [`wait`](Self::wait) returned): reports it, then gives any process
    /// it left in its group `SIGTERM` and up to `grace` before `SIGKILL`.
    /// Nothing it started may outlive the term.
    pub async fn exited(
        &mut self,
        result: io::Result<ExitStatus>,
        grace: Duration,
        shutdown: &mut Shutdown,
        report: &dyn Fn(Event),
    ) -> ChildEnd {
        let end = self.reaped(result, report);
        if self.group.alive() {
            let deadline = Instant::now() + grace;
            self.signal(Signal::SIGTERM, report);
            if !self.group_gone_by(deadline, shutdown).await {
                self.signal(Signal::SIGKILL, report);
            }
        }
        self.await_killed().await;
        end
    }

    fn signal(&self, signal: Signal, report: &dyn Fn(Event)) {
        if self.group.signal(signal) {
            report(Event::ChildSignalled {
                pid: self.pid,
                signal: signal.as_str(),
            });
        }
    }

    /// Waits until no process of the group runs; false if `deadline` or a
    /// shutdown signal comes first.
    async fn group_gone_by(&self, deadline: Instant, shutdown: &mut Shutdown) -> bool {
        loop {
            if !self.group.alive() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::select! {
                () = tokio::time::sleep(GROUP_POLL) => {}
                _ = shutdown.recv() => return false,
            }
        }
    }

    /// `SIGKILL` takes a moment to land: wait (briefly) until nothing of
    /// the group runs, so that the caller resigns only after.
    async fn await_killed(&self) {
        let deadline = Instant::now() + KILL_LANDS;
        while self.group.alive() {
            if Instant::now() >= deadline {
                tracing::warn!(
                    pid = self.pid,
                    "processes of the child's group survive SIGKILL"
                );
                return;
            }
            tokio::time::sleep(GROUP_POLL).await;
        }
    }

    fn reaped(&self, result: io::Result<ExitStatus>, report: &dyn Fn(Event)) -> ChildEnd {
        let end = match result {
            Ok(status) => ChildEnd::from_status(status),
            Err(e) => {
                tracing::warn!(pid = self.pid, error = %e, "cannot wait for the child");
                ChildEnd {
                    code: None,
                    signal: None,
                }
            }
        };
        report(end.event(self.pid));
        end
    }
}

/// How often a stopping group is checked for survivors.
const GROUP_POLL: Duration = Duration::from_millis(10);

/// How long `SIGKILL` may take to end every process of the group.
const KILL_LANDS: Duration = Duration::from_secs(1);

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
}
