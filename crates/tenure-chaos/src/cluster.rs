//! The backend under test: a single etcd, ZooKeeper or PostgreSQL server,
//! or a three-member cluster, started by the testkit's harness on free
//! loopback ports, with the faults a campaign injects into it.

use std::fmt;
use std::net::SocketAddr;

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tenure_testkit::etcd_server::{EtcdCluster, EtcdServer};
use tenure_testkit::pg_server::PgServer;
use tenure_testkit::zk_server::{ZkEnsemble, ZkServer};

use crate::procs;

/// Which backend a campaign runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// One etcd server.
    Etcd,
    /// A three-member etcd cluster.
    Etcd3,
    /// One ZooKeeper server.
    Zk,
    /// A three-server ZooKeeper ensemble.
    Zk3,
    /// One PostgreSQL server.
    Pg,
}

impl BackendKind {
    /// Every kind.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Etcd,
        BackendKind::Etcd3,
        BackendKind::Zk,
        BackendKind::Zk3,
        BackendKind::Pg,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Etcd => "etcd",
            BackendKind::Etcd3 => "etcd3",
            BackendKind::Zk => "zk",
            BackendKind::Zk3 => "zk3",
            BackendKind::Pg => "pg",
        }
    }

    /// Whether this is ZooKeeper.
    pub fn is_zk(self) -> bool {
        matches!(self, BackendKind::Zk | BackendKind::Zk3)
    }

    /// Whether this is a cluster of several members.
    pub fn is_cluster(self) -> bool {
        matches!(self, BackendKind::Etcd3 | BackendKind::Zk3)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the backend could not be started or controlled.
#[derive(Debug)]
pub struct ClusterError(pub String);

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClusterError {}

fn err(e: impl fmt::Display) -> ClusterError {
    ClusterError(e.to_string())
}

enum Servers {
    Etcd(EtcdServer),
    Etcd3(EtcdCluster),
    Zk(ZkServer),
    Zk3(ZkEnsemble),
    Pg(PgServer),
}

/// A running backend.
pub struct Cluster {
    kind: BackendKind,
    servers: Servers,
    /// Client ports, fixed for the cluster's life (restarts reuse them).
    ports: Vec<u16>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("kind", &self.kind)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

fn port_of(url: &str) -> Result<u16, ClusterError> {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .ok_or_else(|| ClusterError(format!("no port in {url}")))
}

impl Cluster {
    /// Starts the backend.
    ///
    /// # Errors
    /// The harness's errors (missing binaries, a server that does not come
    /// up), as text.
    pub async fn start(kind: BackendKind) -> Result<Cluster, ClusterError> {
        let (servers, ports) = match kind {
            BackendKind::Etcd => {
                let s = EtcdServer::start().await.map_err(err)?;
                let p = port_of(&s.endpoint())?;
                (Servers::Etcd(s), vec![p])
            }
            BackendKind::Etcd3 => {
                let c = EtcdCluster::start(3).await.map_err(err)?;
                let p = c
                    .endpoints()
                    .iter()
                    .map(|e| port_of(e))
                    .collect::<Result<_, _>>()?;
                (Servers::Etcd3(c), p)
            }
            BackendKind::Zk => {
                let s = ZkServer::start().await.map_err(err)?;
                let p = s.port();
                (Servers::Zk(s), vec![p])
            }
            BackendKind::Zk3 => {
                let e = ZkEnsemble::start(3).await.map_err(err)?;
                let p = (0..3)
                    .map(|i| e.port(i))
                    .collect::<Result<_, _>>()
                    .map_err(err)?;
                (Servers::Zk3(e), p)
            }
            BackendKind::Pg => {
                let s = PgServer::start().await.map_err(err)?;
                let p = s.port();
                (Servers::Pg(s), vec![p])
            }
        };
        Ok(Cluster {
            kind,
            servers,
            ports,
        })
    }

    /// The kind.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// Number of members.
    pub fn members(&self) -> usize {
        self.ports.len()
    }

    /// Client address of every member.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.ports
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect()
    }

    /// A tenure URL reaching the backend through `addrs` (e.g. a
    /// candidate's proxies, one per member).
    pub fn url(&self, addrs: &[SocketAddr]) -> String {
        let hosts = addrs
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if self.kind.is_zk() {
            format!("zk://{hosts}/chaos")
        } else if self.kind == BackendKind::Pg {
            format!(
                "postgres://{}@{hosts}/{}?schema=chaos",
                tenure_testkit::pg_server::PG_USER,
                tenure_testkit::pg_server::PG_DATABASE
            )
        } else {
            format!("etcd://{hosts}")
        }
    }

    /// Kills the whole backend (`SIGKILL`) and starts it again on the same
    /// data and ports; returns once it serves.
    ///
    /// # Errors
    /// The restart failed.
    pub async fn restart_all(&mut self) -> Result<(), ClusterError> {
        match &mut self.servers {
            Servers::Etcd(s) => s.restart().await.map_err(err),
            Servers::Zk(s) => {
                s.kill().await;
                s.restart().await.map_err(err)
            }
            Servers::Pg(s) => s.restart().await.map_err(err),
            // A cluster loses members one at a time (`kill_member`): a
            // whole-cluster restart is the single server's fault.
            Servers::Etcd3(_) | Servers::Zk3(_) => Err(ClusterError(
                "a whole-cluster restart is not a fault of this campaign".into(),
            )),
        }
    }

    /// Kills member `i` (`SIGKILL`).
    ///
    /// # Errors
    /// The kill failed.
    pub async fn kill_member(&mut self, i: usize) -> Result<(), ClusterError> {
        match &mut self.servers {
            Servers::Etcd(s) => s.kill().await.map_err(err),
            Servers::Zk(s) => {
                s.kill().await;
                Ok(())
            }
            Servers::Pg(s) => {
                s.kill();
                Ok(())
            }
            Servers::Etcd3(c) => c.kill(i).await.map_err(err),
            Servers::Zk3(e) => e.kill(i).await.map_err(err),
        }
    }

    /// Starts member `i` again after [`kill_member`](Self::kill_member)
    /// and waits until it serves.
    ///
    /// # Errors
    /// The restart failed.
    pub async fn restart_member(&mut self, i: usize) -> Result<(), ClusterError> {
        match &mut self.servers {
            Servers::Etcd(s) => s.restart().await.map_err(err),
            Servers::Zk(s) => s.restart().await.map_err(err),
            Servers::Pg(s) => s.restart().await.map_err(err),
            Servers::Etcd3(c) => c.restart(i).await.map_err(err),
            Servers::Zk3(e) => e.restart(i).await.map_err(err),
        }
    }

    /// Freezes member `i` (`SIGSTOP`), or thaws it (`SIGCONT`).
    ///
    /// # Errors
    /// The member's process was not found or could not be signalled.
    pub fn signal_member(&self, i: usize, sig: Signal) -> Result<(), ClusterError> {
        // PostgreSQL serves each connection from a process of its own:
        // the postmaster alone (the process on the port) is not the server.
        if let Servers::Pg(s) = &self.servers {
            return match sig {
                Signal::SIGSTOP => s.pause().map_err(err),
                Signal::SIGCONT => s.resume().map_err(err),
                other => Err(ClusterError(format!("no {other} for a PostgreSQL server"))),
            };
        }
        let port = *self
            .ports
            .get(i)
            .ok_or_else(|| ClusterError(format!("no member {i}")))?;
        let pid = procs::listener_pid(port)
            .ok_or_else(|| ClusterError(format!("no process listens on port {port}")))?;
        procs::send(pid, sig).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_urls() {
        assert_eq!(port_of("http://127.0.0.1:4321").unwrap(), 4321);
        assert!(port_of("http://127.0.0.1").is_err());
    }
}
