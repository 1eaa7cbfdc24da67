//! Helpers for the process-level tests: run `tenure`, read its JSON
//! events line by line, signal it, wait for it.
#![allow(dead_code)] // not every test binary uses every helper
#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Generous bound on waiting for something expected, only so that a broken
/// build fails instead of hanging; never an assertion on speed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tenure")
}

/// `tenure` with `args`, piped stdout/stderr, and none of the test
/// runner's own `TENURE_*` variables (an inherited backend, or CI's
/// switches such as `TENURE_REQUIRE_CHROMIUM`): the CLI and the commands it
/// runs see only what a test sets.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TENURE_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// What a finished run printed.
#[derive(Debug)]
pub struct Finished {
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Finished {
    /// Stdout lines parsed as JSON (panics on a line that is not).
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
            .collect()
    }
}

/// Runs `tenure args` to completion.
pub async fn run(args: &[&str]) -> Finished {
    run_cmd(command(args)).await
}

/// Runs `cmd` to completion (within [`PATIENCE`]).
pub async fn run_cmd(mut cmd: Command) -> Finished {
    let out = tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("tenure did not finish")
        .unwrap();
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// How long [`Running::wait`] waits for the end of stderr after the exit
/// (a descendant that inherited the pipe may hold it open).
const STDERR_LINGER: Duration = Duration::from_secs(2);

/// A long-running `tenure` whose JSON events are read as they come.
pub struct Running {
    /// Label for messages.
    pub label: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every event read so far.
    pub seen: Vec<Value>,
    stderr: Arc<Mutex<String>>,
    /// The task reading stderr; it ends at end of file.
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Starts `tenure args` (add `--output json` yourself).
    pub fn start(label: &str, args: &[&str]) -> Running {
        Self::start_cmd(label, command(args))
    }

    /// Starts `cmd`.
    pub fn start_cmd(label: &str, mut cmd: Command) -> Running {
        let mut child = cmd.spawn().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Running {
            label: label.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id().unwrap()).unwrap()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Reads events until one named `event` (and matching `pred`) comes;
    /// panics with everything seen if stdout ends or [`PATIENCE`] passes.
    pub async fn expect_where(&mut self, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line()).await;
            match line {
                Ok(Ok(Some(line))) => {
                    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                        panic!("{}: stdout line is not JSON ({e}): {line:?}", self.label)
                    });
                    self.seen.push(v.clone());
                    if v["event"] == event && pred(&v) {
                        return v;
                    }
                }
                other => panic!(
                    "{}: no {event:?} event ({other:?}); seen {:#?}; stderr:\n{}",
                    self.label,
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// Reads events until one named `event` comes.
    pub async fn expect(&mut self, event: &str) -> Value {
        self.expect_where(event, |_| true).await
    }

    /// Sends `signal` to `tenure`.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Waits for it to exit; returns the status. What it wrote to stderr
    /// before exiting is in [`stderr`](Self::stderr) by then: the reader
    /// reaches the end of the pipe (unless a process it started keeps the
    /// pipe open, which [`STDERR_LINGER`] bounds).
    pub async fn wait(&mut self) -> ExitStatus {
        match tokio::time::timeout(PATIENCE, self.child.wait()).await {
            Ok(s) => {
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = tokio::time::timeout(STDERR_LINGER, reader).await;
                }
                s.unwrap()
            }
            Err(_) => panic!(
                "{}: did not exit; seen {:#?}; stderr:\n{}",
                self.label,
                self.seen,
                self.stderr()
            ),
        }
    }

    /// Reads the remaining events until stdout closes.
    pub async fn drain(&mut self) -> &[Value] {
        while let Ok(Ok(Some(line))) = tokio::time::timeout(PATIENCE, self.lines.next_line()).await
        {
            if let Ok(v) = serde_json::from_str(&line) {
                self.seen.push(v);
            }
        }
        &self.seen
    }

    /// Names of the events seen so far, in order.
    pub fn names(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|v| v["event"].as_str().unwrap_or("?").to_owned())
            .collect()
    }
}

/// Waits until `path` exists (within [`PATIENCE`]).
pub async fn wait_for_file(path: &Path) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} never appeared", path.display());
}

/// Waits until process `pid` is gone (within [`PATIENCE`]).
pub async fn wait_gone(pid: i32) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        // Gone, or a zombie waiting for its (new) parent to reap it.
        match stat {
            Err(_) => return true,
            Ok(s) if s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z')) => return true,
            Ok(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A fresh temporary directory and a path in it.
pub fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// A unique election name for one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:x}", fastrand::u64(..))
}

pub mod scenarios;
