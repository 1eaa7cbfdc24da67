//! The real servers of a run (started by the testkit harness on free
//! loopback ports, in temporary directories) and connections to them.

use std::sync::Arc;
use std::time::Duration;

use tenure::zookeeper::{Layout, ZkBackend, ZkOptions};
use tenure::DynBackend;
use tenure_testkit::etcd_server::EtcdServer;
use tenure_testkit::zk_server::{ZkServer, ZkServerConfig};

use crate::error::{fail, Context, Result};

/// A backend under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// The in-process memory backend.
    Memory,
    /// etcd v3.
    Etcd,
    /// ZooKeeper.
    ZooKeeper,
}

impl Backend {
    /// Display name.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Etcd => "etcd",
            Backend::ZooKeeper => "ZooKeeper",
        }
    }
}

/// The etcd and ZooKeeper servers of this run.
#[derive(Debug)]
pub struct Servers {
    /// The etcd server.
    pub etcd: EtcdServer,
    /// The ZooKeeper server.
    pub zk: ZkServer,
}

/// ZooKeeper `tickTime` of the bench server (the unit of its session
/// expiry checks).
pub const ZK_TICK: Duration = Duration::from_millis(100);

impl Servers {
    /// Starts one etcd and one ZooKeeper server.
    ///
    /// # Errors
    /// When either does not come up (the message carries its log tail).
    pub async fn start() -> Result<Servers> {
        let etcd = EtcdServer::start().await.context(|| "start etcd".into())?;
        let zk = ZkServer::start_with(ZkServerConfig {
            tick_time: ZK_TICK,
            ..ZkServerConfig::default()
        })
        .await
        .context(|| "start ZooKeeper".into())?;
        Ok(Servers { etcd, zk })
    }

    /// `127.0.0.1:PORT` of etcd.
    pub fn etcd_addr(&self) -> String {
        self.etcd
            .endpoint()
            .trim_start_matches("http://")
            .to_owned()
    }

    /// The `etcd://` URL of `tenure::connect` and the CLI.
    pub fn etcd_url(&self) -> String {
        format!("etcd://{}", self.etcd_addr())
    }

    /// The `zk://` URL of `tenure::connect` and the CLI (root `/tenure`).
    pub fn zk_url(&self) -> String {
        format!("zk://{}", self.zk.connect_string())
    }

    /// A fresh connection (its own client) to `backend` as a tenure
    /// backend. ZooKeeper uses the Curator layout under `/tenure`, as the
    /// CLI does.
    ///
    /// # Errors
    /// Connection failures.
    pub async fn connect(&self, backend: Backend) -> Result<DynBackend> {
        match backend {
            Backend::Memory => Err(fail("memory backends are made in process")),
            Backend::Etcd => tenure::connect(&self.etcd_url())
                .await
                .context(|| "connect to etcd".into()),
            Backend::ZooKeeper => self.connect_zk(Layout::Curator, "/tenure").await,
        }
    }

    /// A ZooKeeper backend with `layout` under `root`.
    ///
    /// # Errors
    /// Connection failures.
    pub async fn connect_zk(&self, layout: Layout, root: &str) -> Result<DynBackend> {
        let options = ZkOptions::new(self.zk.connect_string())
            .root(root)
            .layout(layout)
            .connect_timeout(Duration::from_secs(5))
            .request_timeout(Duration::from_secs(5));
        let backend = ZkBackend::connect(options)
            .await
            .context(|| "connect to ZooKeeper".into())?;
        Ok(Arc::new(backend))
    }

    /// A raw etcd client.
    ///
    /// # Errors
    /// Connection failures.
    pub async fn raw_etcd(&self) -> Result<etcd_client::Client> {
        etcd_client::Client::connect([self.etcd.endpoint()], None)
            .await
            .context(|| "raw etcd client".into())
    }

    /// A raw ZooKeeper client.
    ///
    /// # Errors
    /// Connection failures.
    pub async fn raw_zk(&self) -> Result<zookeeper_client::Client> {
        zookeeper_client::Client::connect(&self.zk.connect_string())
            .await
            .context(|| "raw ZooKeeper client".into())
    }

    /// The etcd server's version line (`etcd --version`).
    pub fn etcd_version() -> String {
        std::process::Command::new(
            std::env::var("TENURE_ETCD_BIN").unwrap_or_else(|_| "etcd".to_owned()),
        )
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("etcd Version: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".to_owned())
    }

    /// The ZooKeeper server's version (from `srvr`).
    pub async fn zk_version(&self) -> String {
        match self.zk.four_letter_word("srvr").await {
            Ok(s) => s
                .lines()
                .find_map(|l| l.strip_prefix("Zookeeper version: "))
                .and_then(|v| v.split([',', '-']).next())
                .unwrap_or("unknown")
                .trim()
                .to_owned(),
            Err(_) => "unknown".to_owned(),
        }
    }
}

/// Number of keys under `prefix` on etcd.
///
/// # Errors
/// Request failures.
pub async fn etcd_count(client: &mut etcd_client::Client, prefix: &str) -> Result<usize> {
    let resp = client
        .get(
            prefix,
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await
        .context(|| format!("count keys under {prefix}"))?;
    Ok(usize::try_from(resp.count()).unwrap_or(0))
}

/// Number of children of `path` on ZooKeeper (0 when it does not exist).
///
/// # Errors
/// Request failures.
pub async fn zk_count(client: &zookeeper_client::Client, path: &str) -> Result<usize> {
    match client.list_children(path).await {
        Ok(c) => Ok(c.len()),
        Err(zookeeper_client::Error::NoNode) => Ok(0),
        Err(e) => Err(fail(format!("list children of {path}: {e}"))),
    }
}
