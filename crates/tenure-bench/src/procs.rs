//! Child processes whose stdout lines are timestamped the moment the bench
//! reads them, and signals sent to them directly (no `kill` process in
//! between, so the signal leaves the bench right after its clock reading).

use std::process::Stdio;
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::clock::mono_ns;
use crate::error::{fail, within, Context, Result};

/// One stdout line and when the bench read it (`CLOCK_MONOTONIC` ns).
#[derive(Clone, Debug)]
pub struct Line {
    /// When the bench's reader task got the line.
    pub at_ns: u64,
    /// The line, without its newline.
    pub text: String,
}

/// A running child process.
#[derive(Debug)]
pub struct Proc {
    name: String,
    pid: u32,
    child: Child,
    lines: mpsc::UnboundedReceiver<Line>,
    /// Kept open: some peers (the kazoo script) stop at end of input.
    _stdin: Option<ChildStdin>,
}

impl Proc {
    /// Spawns `cmd` (stdout piped and read line by line; stderr dropped
    /// unless `TENURE_BENCH_CHILD_STDERR` is set). The child dies with the
    /// handle.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn(name: impl Into<String>, mut cmd: Command) -> Result<Proc> {
        let name = name.into();
        let stderr = if std::env::var_os("TENURE_BENCH_CHILD_STDERR").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .context(|| format!("start {name}"))?;
        let pid = child
            .id()
            .ok_or_else(|| fail(format!("{name} exited at once")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail(format!("{name}: no stdout pipe")))?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(text)) = reader.next_line().await {
                let line = Line {
                    at_ns: mono_ns(),
                    text,
                };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Proc {
            name,
            pid,
            child,
            lines: rx,
            _stdin: stdin,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next line for which `pred` holds (earlier lines are skipped).
    ///
    /// # Errors
    /// When the process closes stdout first, or `limit` passes.
    pub async fn wait_line(
        &mut self,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<Line> {
        let name = self.name.clone();
        within(limit, || format!("{name}: waiting for its line"), async {
            while let Some(line) = self.lines.recv().await {
                if pred(&line.text) {
                    return Ok(line);
                }
            }
            Err(fail(format!("{}: stdout closed (exited?)", self.name)))
        })
        .await?
    }

    /// Sends `sig` to the process.
    ///
    /// # Errors
    /// When the process is gone.
    pub fn signal(&self, sig: Signal) -> Result<()> {
        let raw = i32::try_from(self.pid).context(|| format!("pid of {}", self.name))?;
        let pid = Pid::from_raw(raw).ok_or_else(|| fail(format!("{}: pid 0", self.name)))?;
        kill_process(pid, sig).context(|| format!("signal {}", self.name))
    }

    /// Waits up to `limit` for the process to exit, then kills it.
    pub async fn reap(mut self, limit: Duration) {
        if tokio::time::timeout(limit, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Kills the process (`SIGKILL`) and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}
