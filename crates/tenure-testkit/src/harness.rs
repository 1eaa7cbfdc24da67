//! What the etcd and ZooKeeper test servers share: the one error type,
//! free loopback ports, log tails and signals.

use std::fmt;
use std::net::TcpListener;
use std::path::Path;

/// Why a test server could not be started or controlled.
#[derive(Debug)]
#[non_exhaustive]
pub enum HarnessError {
    /// A binary or jar the harness needs is not installed.
    MissingBinary {
        /// What is missing (`etcd`, `java`, the ZooKeeper jars, ...).
        what: String,
    },
    /// An I/O operation of the harness failed.
    Io {
        /// What the harness was doing.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The server did not become healthy in time, or exited.
    NotHealthy {
        /// Which member (`etcd0`, `zk1`, ...).
        member: String,
        /// What went wrong.
        reason: String,
        /// The end of the server's log.
        log_tail: String,
    },
    /// A command the harness ran failed (`etcdctl`, `kill`).
    Command {
        /// The command line.
        command: String,
        /// Its stderr.
        stderr: String,
    },
    /// A member index outside the cluster.
    NoSuchMember {
        /// The index given.
        index: usize,
        /// Members in the cluster.
        size: usize,
    },
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::MissingBinary { what } => write!(
                f,
                "{what} not found: run scripts/install-deps.sh (it installs etcd, etcdctl, \
                 protoc, ZooKeeper and Java), or point TENURE_ETCD_BIN, TENURE_JAVA or \
                 TENURE_ZK_CLASSPATH at your own"
            ),
            HarnessError::Io { what, source } => write!(f, "{what}: {source}"),
            HarnessError::NotHealthy {
                member,
                reason,
                log_tail,
            } => write!(
                f,
                "member {member} is not healthy: {reason}\n--- log tail ---\n{log_tail}"
            ),
            HarnessError::Command { command, stderr } => {
                write!(f, "`{command}` failed: {stderr}")
            }
            HarnessError::NoSuchMember { index, size } => {
                write!(f, "no member {index} in a cluster of {size}")
            }
        }
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HarnessError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Turns an I/O error into [`HarnessError::Io`] saying what was being done.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// Picks `n` distinct free loopback ports (bound, then released: another
/// process may take one before the server binds it, which the servers'
/// start-up detects and retries with fresh ports).
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>, HarnessError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(io("bind a free loopback port")))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(io("read a bound port"))
        })
        .collect()
}

/// A loopback port that refuses connections for as long as this lives:
/// a socket bound to it that never listens. A port bound and released
/// instead may be taken meanwhile by a server another test starts (it
/// was: a test then reached that server instead of a refusal); this one
/// cannot be bound by anyone else while held.
#[derive(Debug)]
pub struct RefusedPort {
    _socket: tokio::net::TcpSocket,
    port: u16,
}

impl RefusedPort {
    /// Binds a fresh loopback port without listening on it.
    ///
    /// # Errors
    /// [`HarnessError::Io`] when no socket can be bound.
    pub fn new() -> Result<RefusedPort, HarnessError> {
        let socket = tokio::net::TcpSocket::new_v4().map_err(io("open a socket"))?;
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(io("bind a loopback port"))?;
        let port = socket.local_addr().map_err(io("read a bound port"))?.port();
        Ok(RefusedPort {
            _socket: socket,
            port,
        })
    }

    /// The port: connecting to `127.0.0.1:<port>` is refused.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// The last 30 lines of a server's log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        }
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}

/// Sends `sig` (a name such as `STOP`) to `pid` with the `kill` command
/// (the workspace forbids `unsafe`, so no `libc::kill`).
pub(crate) fn signal(pid: u32, sig: &str) -> Result<(), HarnessError> {
    let out = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .output()
        .map_err(io("run kill"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Command {
            command: format!("kill -{sig} {pid}"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_port_refuses_connections_and_cannot_be_taken() {
        let held = RefusedPort::new().unwrap();
        let addr = ("127.0.0.1", held.port());
        let refused = std::net::TcpStream::connect(addr).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        // A server binding it (std sets SO_REUSEADDR, as servers do) fails.
        assert!(TcpListener::bind(addr).is_err());
    }
}
