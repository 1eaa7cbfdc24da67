//! The command run while leader: started in its own process group,
//! stopped by signalling the whole group (`SIGTERM`, then `SIGKILL` after
//! a grace period), so that `sh -c` grandchildren stop with it.
//!
//! If `tenure` itself dies without a chance to stop the command (`kill
//! -9`, the OOM killer), the command must not go on acting as leader
//! while the backend elects someone else. So the command is started
//! through `tenure` itself ([`EXEC_HELPER`]): that first process asks the
//! kernel for `SIGKILL` on its parent's death (`PR_SET_PDEATHSIG`, kept
//! across `exec`), checks that its parent is still alive, then executes
//! the command in place. All of it with safe APIs: the workspace forbids
//! `unsafe`, and a `pre_exec` hook would need it.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::exit::{Exit, CANNOT_EXECUTE, NOT_FOUND};
use crate::output::Event;
use crate::signals::Shutdown;

/// The hidden first argument that makes `tenure` run as the exec helper:
/// `tenure __tenure-exec-child <parent pid> -- CMD ARGS...`.
pub const EXEC_HELPER: &str = "__tenure-exec-child";

/// The exec helper: arm `SIGKILL` on the parent's death, make sure the
/// parent (`tenure`, whose pid is `args[0]`) is still there, then replace
/// this process with the command. Returns only on failure, with the exit
/// code to end with (126/127, as a shell would).
pub fn exec_helper(args: &[OsString]) -> i32 {
    let (parent, argv) = match args {
        [parent, dashdash, _, ..] if dashdash == "--" => (parent, &args[2..]),
        _ => {
            eprintln!("tenure: {EXEC_HELPER} is internal to tenure campaign");
            return Exit::Usage.code();
        }
    };
    let Some(program) = argv.first() else {
        return Exit::Usage.code();
    };
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        eprintln!("tenure: cannot arm the parent-death signal: {e}");
        return CANNOT_EXECUTE;
    }
    // The parent may have died before the signal was armed.
    let alive = parent
        .to_str()
        .and_then(|p| p.parse::<i32>().ok())
        .is_some_and(|p| nix::unistd::getppid().as_raw() == p);
    if !alive {
        return Exit::Lost.code();
    }
    let e = std::process::Command::new(program).args(&argv[1..]).exec();
    eprintln!("tenure: cannot run {}: {e}", Path::new(program).display());
    spawn_failure_exit(&e).code()
}

/// Checks before campaigning that `program` can be executed: a path that
/// exists and is executable, or a name found on `PATH`.
///
/// # Errors
/// [`io::ErrorKind::NotFound`] or [`io::ErrorKind::PermissionDenied`],
/// naming the program.
pub fn resolve_program(program: &str) -> io::Result<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if executable(&path) {
            Ok(path)
        } else if path.exists() {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("command {program:?} is not an executable file"),
            ))
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("command {program:?} does not exist"),
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("command {program:?} not found on PATH"),
            )
        })
}

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

/// The exit code for a command that could not be started, as a shell
/// would report it: 127 not found, 126 otherwise.
pub fn spawn_failure_exit(e: &io::Error) -> Exit {
    match e.kind() {
        io::ErrorKind::NotFound => Exit::Child(NOT_FOUND),
        _ => Exit::Child(CANNOT_EXECUTE),
    }
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

    #[test]
    fn programs_resolve_on_path_or_by_path() {
        assert!(resolve_program("sh").unwrap().ends_with("sh"));
        assert!(resolve_program("/bin/sh").is_ok());
        let nf = resolve_program("no-such-tenure-test-program").unwrap_err();
        assert_eq!(nf.kind(), io::ErrorKind::NotFound);
        assert!(nf.to_string().contains("no-such-tenure-test-program"));
        assert_eq!(
            resolve_program("/nonexistent/x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let plain = tempfile::NamedTempFile::new().unwrap();
        let path = plain.path().to_str().unwrap();
        assert_eq!(
            resolve_program(path).unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn exec_helper_rejects_malformed_arguments() {
        assert_eq!(exec_helper(&[]), 2);
        assert_eq!(exec_helper(&["1".into(), "x".into(), "sh".into()]), 2);
    }

    #[test]
    fn spawn_failures_map_like_a_shell() {
        let nf = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(spawn_failure_exit(&nf).code(), 127);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(spawn_failure_exit(&denied).code(), 126);
    }
}
