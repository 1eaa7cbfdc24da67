//! The command run while leader: started in its own process group,
//! stopped by signalling the whole group (`SIGTERM`, then `SIGKILL` after
//! a grace period), so that `sh -c` grandchildren stop with it.
//!
//! The command is started through [`exec`]'s helper, so that it dies
//! with `tenure`.

pub mod exec;

pub use exec::{exec_helper, resolve_program, spawn_failure_exit, EXEC_HELPER};

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::exit::Exit;
use crate::output::Event;
use crate::signals::Shutdown;

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
        Ok(Supervised { child, pid })
    }

    /// Its process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until it exits.
    ///
    /// # Errors
    /// When waiting fails (should not happen).
    pub async fn wait(&mut self) -> io::Result<ChildEnd> {
        self.child.wait().await.map(ChildEnd::from_status)
    }

    /// Sends `signal` to its whole process group. Returns whether any
    /// process received it.
    pub fn signal_group(&self, signal: Signal) -> bool {
        let Ok(pgid) = i32::try_from(self.pid) else {
            return false;
        };
        match killpg(Pid::from_raw(pgid), signal) {
            Ok(()) => true,
            Err(Errno::ESRCH) => false,
            Err(e) => {
                tracing::warn!(pid = self.pid, %signal, error = %e, "cannot signal the child's group");
                false
            }
        }
    }

    /// Stops it: `SIGTERM` to the group, `SIGKILL` after `grace` (or at
    /// once on a second `SIGINT`/`SIGTERM` to tenure), then waits for it
    /// and kills what is left of its group. `report` receives the
    /// `child_signalled` and `child_exited` events.
    pub async fn stop(
        &mut self,
        grace: Duration,
        shutdown: &mut Shutdown,
        report: &dyn Fn(Event),
    ) -> ChildEnd {
        if self.signal_group(Signal::SIGTERM) {
            report(Event::ChildSignalled {
                pid: self.pid,
                signal: "SIGTERM",
            });
        }
        let waited = tokio::select! {
            r = self.child.wait() => Some(r.map(ChildEnd::from_status)),
            () = tokio::time::sleep(grace) => None,
            _ = shutdown.recv() => None,
        };
        let result = match waited {
            Some(r) => r,
            None => {
                if self.signal_group(Signal::SIGKILL) {
                    report(Event::ChildSignalled {
                        pid: self.pid,
                        signal: "SIGKILL",
                    });
                }
                self.child.wait().await.map(ChildEnd::from_status)
            }
        };
        let end = self.finish(result);
        report(end.event(self.pid));
        end
    }

    /// Reaps what [`wait`](Self::wait) returned: kills any process the
    /// child left in its group (nothing it started may outlive the term).
    pub fn finish(&mut self, result: io::Result<ChildEnd>) -> ChildEnd {
        if self.signal_group(Signal::SIGKILL) {
            tracing::info!(pid = self.pid, "killed processes left in the child's group");
        }
        match result {
            Ok(end) => end,
            Err(e) => {
                tracing::warn!(pid = self.pid, error = %e, "cannot wait for the child");
                ChildEnd {
                    code: None,
                    signal: None,
                }
            }
        }
    }
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
}
