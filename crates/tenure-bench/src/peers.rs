//! Handover at the process level: the `tenure campaign` CLI and its peers
//! (`etcdctl elect`, a kazoo `Election` script), measured the same way.
//!
//! A chain of candidate processes: the leader runs, the next candidate is
//! started and queued (its entry is visible, and a settle pause lets it
//! set its watch), then the bench reads its clock and signals the leader
//! to resign; the sample ends when the bench reads the successor's
//! "elected" line from its stdout pipe. The successor then leads for the
//! next sample.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::Signal;
use tokio::process::Command;

use crate::clock::{between, mono_ns};
use crate::error::{fail, Result};
use crate::procs::Proc;

/// How long a candidate may take to start, queue or be elected.
const LIMIT: Duration = Duration::from_secs(30);

/// A program that can campaign in an election.
#[derive(Clone, Debug)]
pub enum Tool {
    /// `tenure campaign <election> <proposal> --backend <url> --ttl .. --output json`.
    TenureCli {
        /// The `tenure` binary.
        bin: PathBuf,
        /// `etcd://…` or `zk://…`.
        url: String,
        /// The TTL argument.
        ttl: Duration,
    },
    /// `tenure-bench child …`: the library in a process of its own (stands
    /// in for the CLI when it is not built).
    BenchChild {
        /// This benchmark's own binary.
        exe: PathBuf,
        /// `etcd://…` or `zk://…`.
        url: String,
        /// The TTL.
        ttl: Duration,
    },
    /// `etcdctl elect <election> <proposal>`.
    Etcdctl {
        /// `http://127.0.0.1:PORT`.
        endpoint: String,
    },
    /// `peers/kazoo_election.py <hosts> <path> <proposal>`.
    Kazoo {
        /// A Python that imports kazoo.
        python: String,
        /// `127.0.0.1:PORT`.
        hosts: String,
        /// The parent node of the election (`<path>/<election>`).
        root: String,
    },
}

impl Tool {
    /// Short name for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Tool::TenureCli { .. } => "tenure CLI",
            Tool::BenchChild { .. } => "tenure (bench child process)",
            Tool::Etcdctl { .. } => "etcdctl elect",
            Tool::Kazoo { .. } => "kazoo Election",
        }
    }

    /// The command that campaigns with `proposal`.
    fn command(&self, election: &str, proposal: &str) -> Command {
        match self {
            Tool::TenureCli { bin, url, ttl } => {
                let mut c = Command::new(bin);
                c.args(["campaign", election, proposal, "--backend", url])
                    .args(["--ttl", &ttl_arg(*ttl), "--output", "json"]);
                c
            }
            Tool::BenchChild { exe, url, ttl } => {
                let mut c = Command::new(exe);
                c.args(["child", "--backend", url, "--election", election])
                    .args(["--proposal", proposal])
                    .args(["--ttl-ms", &ttl.as_millis().to_string()]);
                c
            }
            Tool::Etcdctl { endpoint } => {
                let mut c = tenure_testkit::etcd_server::etcdctl_command(endpoint);
                c.args(["elect", election, proposal]);
                c
            }
            Tool::Kazoo {
                python,
                hosts,
                root,
            } => {
                let mut c = Command::new(python);
                c.arg(kazoo_script())
                    .arg(hosts)
                    .arg(format!("{root}/{election}"))
                    .arg(proposal);
                c
            }
        }
    }

    /// Whether `line` says the candidate was elected.
    fn is_elected(&self, line: &str) -> bool {
        match self {
            Tool::TenureCli { .. } | Tool::BenchChild { .. } => json_event(line) == Some("elected"),
            // `etcdctl elect` prints the leader key, then the proposal,
            // the moment it is elected, and nothing before.
            Tool::Etcdctl { .. } => !line.trim().is_empty(),
            Tool::Kazoo { .. } => line.starts_with("elected "),
        }
    }

    /// The signal that makes the tool resign.
    fn resign_signal(&self) -> Signal {
        match self {
            // etcdctl resigns and closes its session on an interrupt.
            Tool::Etcdctl { .. } => Signal::INT,
            _ => Signal::TERM,
        }
    }

    /// Asks the candidate `p` to resign and exit (its resign signal).
    ///
    /// # Errors
    /// When the process is gone.
    pub fn resign(&self, p: &Proc) -> Result<()> {
        p.signal(self.resign_signal())
    }

    /// Starts a candidate.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn(&self, election: &str, proposal: &str) -> Result<Proc> {
        Proc::spawn(
            format!("{} {proposal}", self.label()),
            self.command(election, proposal),
        )
    }

    /// Waits until `candidate` prints its "elected" line; returns the line.
    ///
    /// # Errors
    /// When it exits first or takes longer than `limit`.
    pub async fn wait_elected(
        &self,
        candidate: &mut Proc,
        limit: Duration,
    ) -> Result<crate::procs::Line> {
        candidate.wait_line(limit, |l| self.is_elected(l)).await
    }
}

/// The TTL as the CLI takes it: whole seconds as `2s`, else milliseconds.
pub fn ttl_arg(ttl: Duration) -> String {
    if ttl.subsec_millis() == 0 {
        format!("{}s", ttl.as_secs())
    } else {
        format!("{}ms", ttl.as_millis())
    }
}

/// The `event` field of a JSON line.
pub fn json_event(line: &str) -> Option<&'static str> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    match v.get("event")?.as_str()? {
        "elected" => Some("elected"),
        "resigned" => Some("resigned"),
        "leader" => Some("leader"),
        _ => None,
    }
}

/// The `mono_ns` field of a JSON line.
pub fn json_mono_ns(line: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("mono_ns")?.as_u64()
}

/// The kazoo script committed with this crate.
pub fn kazoo_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/kazoo_election.py")
}

/// A Python 3 that can `import kazoo.recipe.election`: `$TENURE_PYTHON`,
/// `python3` on the PATH, or Debian's `/usr/bin/python3`.
pub fn python_with_kazoo() -> Option<String> {
    let mut candidates: Vec<String> = std::env::var("TENURE_PYTHON").into_iter().collect();
    candidates.extend(["python3".to_owned(), "/usr/bin/python3".to_owned()]);
    candidates.into_iter().find(|py| {
        std::process::Command::new(py)
            .args(["-c", "import kazoo.recipe.election"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

/// The `tenure` CLI binary: `$TENURE_BIN`, else `tenure` next to this
/// benchmark's binary (the same cargo target directory), if it exists and
/// has a `campaign` command.
pub fn tenure_cli() -> Option<PathBuf> {
    let path = match std::env::var_os("TENURE_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe().ok()?.parent()?.join("tenure"),
    };
    let ok = std::process::Command::new(&path)
        .args(["campaign", "--help"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(path)
}

/// How the bench sees the queue of an election, to know a candidate is in
/// place before the leader is told to resign.
pub enum QueueProbe {
    /// Keys under `<prefix>` on etcd.
    Etcd(Box<etcd_client::Client>, String),
    /// Children of a ZooKeeper node.
    Zk(zookeeper_client::Client, String),
}

impl QueueProbe {
    /// The number of entries now.
    ///
    /// # Errors
    /// Request failures.
    pub async fn count(&mut self) -> Result<usize> {
        match self {
            QueueProbe::Etcd(c, prefix) => crate::servers::etcd_count(c, prefix).await,
            QueueProbe::Zk(c, path) => crate::servers::zk_count(c, path).await,
        }
    }

    /// Polls until the queue holds `n` entries.
    ///
    /// # Errors
    /// When it does not within `limit`.
    pub async fn wait(&mut self, n: usize, limit: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.count().await? == n {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(fail(format!("queue never held {n} entries")));
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
}

/// Samples of one tool's handover chain.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    /// Bench-measured: resign signal sent → successor's line read.
    pub measured: Vec<Duration>,
    /// As reported by the successor itself (`mono_ns` of its JSON line),
    /// from the same signal instant; empty for tools that print none.
    pub self_reported: Vec<Duration>,
}

/// Runs `runs` process-level handovers of `tool` in `election`.
///
/// # Errors
/// Candidates that fail to start, queue or be elected.
pub async fn chain(
    tool: &Tool,
    probe: &mut QueueProbe,
    election: &str,
    runs: usize,
    settle: Duration,
) -> Result<Chain> {
    let mut leader = tool.spawn(election, "p0")?;
    tool.wait_elected(&mut leader, LIMIT).await?;
    probe.wait(1, LIMIT).await?;
    let mut out = Chain::default();
    for i in 1..=runs {
        let mut next = tool.spawn(election, &format!("p{i}"))?;
        probe.wait(2, LIMIT).await?;
        tokio::time::sleep(settle).await;
        let t0 = mono_ns();
        leader.signal(tool.resign_signal())?;
        let line = tool.wait_elected(&mut next, LIMIT).await?;
        out.measured.push(between(t0, line.at_ns));
        if let Some(ns) = json_mono_ns(&line.text) {
            out.self_reported.push(between(t0, ns));
        }
        let old = std::mem::replace(&mut leader, next);
        old.reap(Duration::from_secs(5)).await;
        probe.wait(1, LIMIT).await?;
    }
    leader.signal(tool.resign_signal())?;
    leader.reap(Duration::from_secs(5)).await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_lines_and_ttl() {
        let elected = r#"{"event":"elected","election":"e","proposal":"p","token":7,"lease":"1a","valid_until_mono_ns":9,"mono_ns":1234}"#;
        assert_eq!(json_event(elected), Some("elected"));
        assert_eq!(json_mono_ns(elected), Some(1234));
        assert_eq!(json_event("elected e token=7"), None);
        assert_eq!(ttl_arg(Duration::from_secs(2)), "2s");
        assert_eq!(ttl_arg(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn peer_elected_lines() {
        let etcdctl = Tool::Etcdctl {
            endpoint: "http://127.0.0.1:1".into(),
        };
        assert!(etcdctl.is_elected("e/694d7c8d6e3c2a04"));
        assert!(!etcdctl.is_elected(""));
        let kazoo = Tool::Kazoo {
            python: "python3".into(),
            hosts: "127.0.0.1:1".into(),
            root: "/r".into(),
        };
        assert!(kazoo.is_elected("elected p3"));
        assert!(!kazoo.is_elected("resigned p3"));
    }
}
