//! Starting the command so that its own process dies with its supervisor.
//!
//! The [`supervisor`](super::supervisor) starts the command through
//! `tenure` itself ([`EXEC_HELPER`]): that first process asks the kernel
//! for `SIGKILL` on its parent's death (`PR_SET_PDEATHSIG`, kept across
//! `exec`), checks that its parent is still alive, then executes the
//! command in place. So even a supervisor killed with `SIGKILL` takes the
//! command's own process along. All of it with safe APIs: the workspace
//! forbids `unsafe`, and a `pre_exec` hook would need it.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use crate::exit::{Exit, CANNOT_EXECUTE, NOT_FOUND};

/// The hidden first argument that makes `tenure` run as the exec helper:
/// `tenure __tenure-exec-child <parent pid> -- CMD ARGS...`.
pub const EXEC_HELPER: &str = "__tenure-exec-child";

/// The exec helper: arm `SIGKILL` on the parent's death, make sure the
/// parent (the supervisor, whose pid is `args[0]`) is still there, then replace
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

/// This very binary, to start again as the supervisor or the exec helper.
/// `/proc/self/exe` still works if the file was replaced since we started.
///
/// # Errors
/// When neither `/proc/self/exe` nor the recorded path is available.
pub fn self_exe() -> io::Result<PathBuf> {
    let me = Path::new("/proc/self/exe");
    if me.exists() {
        Ok(me.to_path_buf())
    } else {
        std::env::current_exe()
    }
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

/// The exit code for a command that could not be started, as a shell
/// would report it: 127 not found, 126 otherwise.
pub fn spawn_failure_exit(e: &io::Error) -> Exit {
    match e.kind() {
        io::ErrorKind::NotFound => Exit::Child(NOT_FOUND),
        _ => Exit::Child(CANNOT_EXECUTE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
