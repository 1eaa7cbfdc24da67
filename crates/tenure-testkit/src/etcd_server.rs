//! Real etcd servers for tests: a single node ([`EtcdServer`]) or a
//! cluster ([`EtcdCluster`]), each member a child process on free loopback
//! ports with its own temporary data directory.
//!
//! Servers are torn down when their handle drops, even when the test
//! panics: the child is killed (`SIGKILL`) and the directory removed.
//!
//! The `etcd` binary comes from `scripts/install-deps.sh` (Debian's
//! `etcd-server`); set `TENURE_ETCD_BIN` to use another one. Health is
//! checked with a real request (`GET /health` on the client port, which
//! etcd answers only once it has a leader and can serve reads).
//!
//! The servers run with a 25 ms heartbeat and a 250 ms election timeout,
//! which brings etcd's minimum lease TTL down to one second (with the
//! defaults it is two) and makes cluster leader elections fast.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

pub use crate::harness::HarnessError;
use crate::harness::{free_ports, io, log_tail, signal};
use crate::pki::{CertFiles, TestPki};

/// How long a member may take to become healthy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a port race (another process took our port) is retried.
const START_ATTEMPTS: usize = 5;

/// The `etcd` binary to run.
fn etcd_binary() -> String {
    std::env::var("TENURE_ETCD_BIN").unwrap_or_else(|_| "etcd".to_owned())
}

/// The `etcdctl` binary to run.
fn etcdctl_binary() -> String {
    std::env::var("TENURE_ETCDCTL_BIN").unwrap_or_else(|_| "etcdctl".to_owned())
}

/// Everything needed to (re)start one member.
#[derive(Debug, Clone)]
struct MemberConfig {
    name: String,
    data_dir: PathBuf,
    log_path: PathBuf,
    client_port: u16,
    peer_port: u16,
    initial_cluster: String,
    cluster_token: String,
    /// Extra flags, after the harness's own (so they override them).
    extra_args: Vec<String>,
    /// TLS on the client port, with client certificates required.
    tls: Option<MemberTls>,
}

/// The files of a member serving TLS.
#[derive(Debug, Clone)]
struct MemberTls {
    /// The CA that client certificates must chain to.
    ca: PathBuf,
    /// The server's certificate and key.
    server: CertFiles,
    /// A client certificate with common name `root`, for `etcdctl`.
    admin: CertFiles,
    /// The plain-HTTP port serving `/health` (the client port speaks
    /// only TLS).
    health_port: u16,
}

impl MemberConfig {
    fn client_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The port answering `GET /health` over plain HTTP.
    fn health_port(&self) -> u16 {
        self.tls
            .as_ref()
            .map_or(self.client_port, |t| t.health_port)
    }

    /// The flags that make the member serve TLS with client certificates
    /// required (none for a plain member).
    fn tls_args(&self) -> Vec<String> {
        let Some(tls) = &self.tls else {
            return Vec::new();
        };
        let path = |p: &Path| p.display().to_string();
        vec![
            "--cert-file".into(),
            path(&tls.server.cert),
            "--key-file".into(),
            path(&tls.server.key),
            "--client-cert-auth".into(),
            "--trusted-ca-file".into(),
            path(&tls.ca),
            "--listen-metrics-urls".into(),
            format!("http://127.0.0.1:{}", tls.health_port),
        ]
    }

    /// What `etcdctl` needs to talk to this member.
    fn etcdctl_args(&self) -> Vec<String> {
        let Some(tls) = &self.tls else {
            return Vec::new();
        };
        vec![
            format!("--cacert={}", tls.ca.display()),
            format!("--cert={}", tls.admin.cert.display()),
            format!("--key={}", tls.admin.key.display()),
        ]
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// One running (or stopped) etcd process.
#[derive(Debug)]
struct Member {
    config: MemberConfig,
    child: Option<Child>,
}

impl Member {
    fn spawn(config: MemberConfig) -> Result<Member, HarnessError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.log_path)
            .map_err(io(format!("open {}", config.log_path.display())))?;
        let log2 = log.try_clone().map_err(io("clone the log file handle"))?;
        let binary = etcd_binary();
        let child = Command::new(&binary)
            .arg("--name")
            .arg(&config.name)
            .arg("--data-dir")
            .arg(&config.data_dir)
            .arg("--listen-client-urls")
            .arg(config.client_url())
            .arg("--advertise-client-urls")
            .arg(config.client_url())
            .arg("--listen-peer-urls")
            .arg(config.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(config.peer_url())
            .arg("--initial-cluster")
            .arg(&config.initial_cluster)
            .arg("--initial-cluster-token")
            .arg(&config.cluster_token)
            .arg("--initial-cluster-state")
            .arg("new")
            .args(["--heartbeat-interval", "25"])
            .args(["--election-timeout", "250"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .args(config.tls_args())
            .args(&config.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    HarnessError::MissingBinary { what: binary }
                } else {
                    HarnessError::Io {
                        what: format!("spawn {binary}"),
                        source: e,
                    }
                }
            })?;
        Ok(Member {
            config,
            child: Some(child),
        })
    }

    fn log_tail(&self) -> String {
        log_tail(&self.config.log_path)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Waits until `/health` answers `true`, failing early if the process
    /// exits.
    async fn wait_healthy(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(self.unhealthy(format!("etcd exited with {status}")));
                }
            } else {
                return Err(self.unhealthy("etcd is not running".to_owned()));
            }
            let last = match health(self.config.health_port()).await {
                Ok(true) => return Ok(()),
                Ok(false) => "/health answered false".to_owned(),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(self.unhealthy(format!(
                    "not healthy after {timeout:?} (last check: {last})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn unhealthy(&self, reason: String) -> HarnessError {
        HarnessError::NotHealthy {
            member: self.config.name.clone(),
            reason,
            log_tail: self.log_tail(),
        }
    }

    /// Whether the log says a port was taken (a port race: retry).
    fn lost_port_race(&self) -> bool {
        std::fs::read_to_string(&self.config.log_path)
            .map(|s| s.contains("address already in use"))
            .unwrap_or(false)
    }

    async fn kill(&mut self) -> Result<(), HarnessError> {
        if let Some(mut child) = self.child.take() {
            // A stopped (SIGSTOP) process dies of SIGKILL too.
            child
                .kill()
                .await
                .map_err(io(format!("kill {}", self.config.name)))?;
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), HarnessError> {
        let Some(pid) = self.pid() else {
            self.child = None;
            return Ok(());
        };
        signal(pid, "TERM")?;
        signal(pid, "CONT")?;
        if let Some(child) = self.child.as_mut() {
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                return self.kill().await;
            }
        }
        self.child = None;
        Ok(())
    }

    async fn signal(&self, sig: &str) -> Result<(), HarnessError> {
        match self.pid() {
            Some(pid) => signal(pid, sig),
            None => Err(self.unhealthy("etcd is not running".to_owned())),
        }
    }
}

/// One `GET /health` over HTTP/1.1; `Ok(true)` when etcd says healthy.
async fn health(port: u16) -> Result<bool, String> {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&buf);
        Ok::<bool, String>(text.starts_with("HTTP/1.1 200") && text.contains("\"health\":\"true\""))
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(r) => r,
        Err(_) => Err("/health timed out".to_owned()),
    }
}

/// Runs `etcdctl` (API v3) against `endpoints` with `args`; returns stdout.
async fn run_etcdctl(endpoints: &str, args: &[&str]) -> Result<String, HarnessError> {
    run_etcdctl_with(endpoints, &[], args).await
}

/// As [`run_etcdctl`], with connection flags (TLS files) before `args`.
async fn run_etcdctl_with(
    endpoints: &str,
    connection: &[String],
    args: &[&str],
) -> Result<String, HarnessError> {
    let binary = etcdctl_binary();
    let out = Command::new(&binary)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .args(connection)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                HarnessError::MissingBinary {
                    what: binary.clone(),
                }
            } else {
                HarnessError::Io {
                    what: format!("run {binary}"),
                    source: e,
                }
            }
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HarnessError::Command {
            command: format!("etcdctl --endpoints={endpoints} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A `tokio` command for `etcdctl` (API v3) aimed at `endpoints`, for
/// tests that need a long-running `etcdctl` (e.g. `etcdctl elect`).
pub fn etcdctl_command(endpoints: &str) -> Command {
    let mut cmd = Command::new(etcdctl_binary());
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .kill_on_drop(true);
    cmd
}

/// Starts the members of one cluster, retrying with fresh ports when a
/// port was taken between picking and binding it.
async fn start_members(
    dir: &Path,
    n: usize,
    tag: &str,
    extra_args: &[&str],
    tls: Option<(&TestPki, &CertFiles)>,
) -> Result<Vec<Member>, HarnessError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ports = free_ports(3 * n)?;
        let names: Vec<String> = (0..n).map(|i| format!("{tag}{attempt}-{i}")).collect();
        let initial_cluster = names
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{name}=http://127.0.0.1:{}", ports[2 * i + 1]))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("tenure-{}-{}", std::process::id(), ports[0]);
        let mut members = Vec::with_capacity(n);
        for (i, name) in names.iter().enumerate() {
            members.push(Member::spawn(MemberConfig {
                name: name.clone(),
                data_dir: dir.join(format!("{name}.data")),
                log_path: dir.join(format!("{name}.log")),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                initial_cluster: initial_cluster.clone(),
                cluster_token: token.clone(),
                extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
                tls: tls.map(|(pki, admin)| MemberTls {
                    ca: pki.ca(),
                    server: pki.server().clone(),
                    admin: admin.clone(),
                    health_port: ports[2 * n + i],
                }),
            })?);
        }
        let mut failure = None;
        for m in members.iter_mut() {
            if let Err(e) = m.wait_healthy(HEALTH_TIMEOUT).await {
                failure = Some(e);
                break;
            }
        }
        match failure {
            None => return Ok(members),
            Some(e) => {
                let raced = members.iter().any(Member::lost_port_race);
                for m in members.iter_mut() {
                    let _ = m.kill().await;
                }
                if !raced || attempt >= START_ATTEMPTS {
                    return Err(e);
                }
            }
        }
    }
}

fn temp_dir() -> Result<tempfile::TempDir, HarnessError> {
    tempfile::Builder::new()
        .prefix("tenure-etcd-")
        .tempdir()
        .map_err(io("create a temporary directory"))
}

/// A single-node etcd server for one test.
///
/// ```no_run
/// # async fn demo() -> Result<(), tenure_testkit::etcd_server::HarnessError> {
/// let server = tenure_testkit::etcd_server::EtcdServer::start().await?;
/// println!("etcd at {}", server.endpoint());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EtcdServer {
    member: Member,
    // Dropped after `member` (fields drop in order): the process dies
    // first, then its directory goes.
    dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts a server on free loopback ports and waits until it is
    /// healthy.
    ///
    /// # Errors
    /// [`HarnessError::MissingBinary`] when `etcd` is not installed;
    /// [`HarnessError::NotHealthy`] (with the server's log tail) when it
    /// does not come up.
    pub async fn start() -> Result<EtcdServer, HarnessError> {
        Self::start_with_args(&[]).await
    }

    /// Starts a server with extra `etcd` flags, which override the
    /// harness's own (e.g. `["--heartbeat-interval", "100",
    /// "--election-timeout", "1000"]` for etcd's default timing, whose
    /// minimum lease TTL is 2 s).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_with_args(args: &[&str]) -> Result<EtcdServer, HarnessError> {
        let dir = temp_dir()?;
        let mut members = start_members(dir.path(), 1, "tenure", args, None).await?;
        let member = members.pop().ok_or_else(|| HarnessError::NotHealthy {
            member: "tenure".into(),
            reason: "no member started".into(),
            log_tail: String::new(),
        })?;
        Ok(EtcdServer { member, dir })
    }

    /// Starts a server whose client port speaks only TLS, with the server
    /// certificate of `pki` and client certificates required
    /// (`--client-cert-auth`, trusting `pki`'s CA). etcd then takes a
    /// client certificate's common name as the user name once auth is
    /// enabled; [`etcdctl`](Self::etcdctl) uses a certificate named
    /// `root`.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_tls(pki: &TestPki) -> Result<EtcdServer, HarnessError> {
        let dir = temp_dir()?;
        let admin = pki.client("root")?;
        let mut members = start_members(dir.path(), 1, "tenure", &[], Some((pki, &admin))).await?;
        let member = members.pop().ok_or_else(|| HarnessError::NotHealthy {
            member: "tenure".into(),
            reason: "no member started".into(),
            log_tail: String::new(),
        })?;
        Ok(EtcdServer { member, dir })
    }

    /// The client URL, e.g. `http://127.0.0.1:43121` (`https://` for a
    /// server started with [`start_tls`](Self::start_tls)).
    pub fn endpoint(&self) -> String {
        self.member.config.client_url()
    }

    /// The client address, `127.0.0.1:<port>`: what a
    /// [`Proxy`](crate::proxy::Proxy) in front of the server forwards to.
    pub fn client_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.member.config.client_port))
    }

    /// The data directory (kept across [`restart`](Self::restart)).
    pub fn data_dir(&self) -> &Path {
        &self.member.config.data_dir
    }

    /// The temporary directory holding data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.member.pid()
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.member.log_tail()
    }

    /// Kills the server at once (`SIGKILL`), as a crash would.
    ///
    /// # Errors
    /// When the kill fails.
    pub async fn kill(&mut self) -> Result<(), HarnessError> {
        self.member.kill().await
    }

    /// Stops the server gracefully (`SIGTERM`, then `SIGKILL` after 10 s).
    ///
    /// # Errors
    /// When signalling fails.
    pub async fn stop(&mut self) -> Result<(), HarnessError> {
        self.member.stop().await
    }

    /// Freezes the server (`SIGSTOP`): it holds its sockets but answers
    /// nothing, like a long GC pause.
    ///
    /// # Errors
    /// When the server is not running.
    pub async fn pause(&self) -> Result<(), HarnessError> {
        self.member.signal("STOP").await
    }

    /// Thaws a server frozen by [`pause`](Self::pause).
    ///
    /// # Errors
    /// When the server is not running.
    pub async fn resume(&self) -> Result<(), HarnessError> {
        self.member.signal("CONT").await
    }

    /// Restarts the server (killing it first if it runs) on the same data
    /// directory and ports, and waits until it is healthy again.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.member.kill().await?;
        let config = self.member.config.clone();
        self.member = Member::spawn(config)?;
        self.member.wait_healthy(HEALTH_TIMEOUT).await
    }

    /// Runs `etcdctl` (API v3) against this server; returns its stdout.
    ///
    /// # Errors
    /// [`HarnessError::Command`] with etcdctl's stderr when it fails.
    pub async fn etcdctl(&self, args: &[&str]) -> Result<String, HarnessError> {
        run_etcdctl_with(&self.endpoint(), &self.member.config.etcdctl_args(), args).await
    }

    /// A command for a long-running `etcdctl` against this server.
    pub fn etcdctl_command(&self) -> Command {
        let mut cmd = etcdctl_command(&self.endpoint());
        cmd.args(self.member.config.etcdctl_args());
        cmd
    }

    /// Turns authentication on with a `root` user (password `rootpw`) and
    /// a user `user` (password `password`) whose only role may read and
    /// write keys under `prefix`: the least-privilege setup that
    /// permission tests run against.
    ///
    /// # Errors
    /// [`HarnessError::Command`] when an `etcdctl` step fails.
    pub async fn enable_auth_with_prefix_user(
        &self,
        user: &str,
        password: &str,
        prefix: &str,
    ) -> Result<(), HarnessError> {
        let user_pw = format!("{user}:{password}");
        let role = format!("{user}-role");
        for args in [
            &["user", "add", "root:rootpw", "--interactive=false"][..],
            &["role", "add", "root"],
            &["user", "grant-role", "root", "root"],
            &["user", "add", &user_pw, "--interactive=false"],
            &["role", "add", &role],
            &[
                "role",
                "grant-permission",
                &role,
                "readwrite",
                prefix,
                "--prefix=true",
            ],
            &["user", "grant-role", user, &role],
            &["auth", "enable"],
        ] {
            self.etcdctl(args).await?;
        }
        Ok(())
    }
}

/// An etcd cluster of several members on loopback, for member-loss tests.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
    dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `size` members (3 for a cluster that survives losing one)
    /// and waits until every one is healthy.
    ///
    /// # Errors
    /// As [`EtcdServer::start`].
    pub async fn start(size: usize) -> Result<EtcdCluster, HarnessError> {
        let dir = temp_dir()?;
        let members = start_members(dir.path(), size.max(1), "member", &[], None).await?;
        Ok(EtcdCluster { members, dir })
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Client URLs of all members.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.config.client_url()).collect()
    }

    /// Client URL of member `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn endpoint(&self, i: usize) -> String {
        self.members[i].config.client_url()
    }

    /// The temporary directory holding data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last log lines of member `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn log_tail(&self, i: usize) -> String {
        self.members[i].log_tail()
    }

    /// Kills member `i` (`SIGKILL`).
    ///
    /// # Errors
    /// When the kill fails.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub async fn kill(&mut self, i: usize) -> Result<(), HarnessError> {
        self.members[i].kill().await
    }

    /// Stops member `i` gracefully.
    ///
    /// # Errors
    /// When signalling fails.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub async fn stop(&mut self, i: usize) -> Result<(), HarnessError> {
        self.members[i].stop().await
    }

    /// Restarts member `i` on its data directory and ports and waits
    /// until it is healthy (which needs a quorum).
    ///
    /// # Errors
    /// As [`EtcdServer::start`].
    ///
    /// # Panics
    /// If `i` is out of range.
    pub async fn restart(&mut self, i: usize) -> Result<(), HarnessError> {
        self.members[i].kill().await?;
        let config = self.members[i].config.clone();
        self.members[i] = Member::spawn(config)?;
        self.members[i].wait_healthy(HEALTH_TIMEOUT).await
    }

    /// Runs `etcdctl` (API v3) against every member; returns its stdout.
    ///
    /// # Errors
    /// [`HarnessError::Command`] with etcdctl's stderr when it fails.
    pub async fn etcdctl(&self, args: &[&str]) -> Result<String, HarnessError> {
        run_etcdctl(&self.endpoints().join(","), args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn single_server_starts_restarts_and_serves_etcdctl() {
        let mut server = EtcdServer::start().await.unwrap_or_else(|e| panic!("{e}"));
        server.etcdctl(&["put", "k", "v"]).await.unwrap();
        server.restart().await.unwrap();
        let out = server
            .etcdctl(&["get", "k", "--print-value-only"])
            .await
            .unwrap();
        assert_eq!(out.trim(), "v");
        let dir = server.dir().to_owned();
        drop(server);
        assert!(!dir.exists());
    }

    #[tokio::test]
    async fn cluster_survives_one_member_down() {
        let mut cluster = EtcdCluster::start(3)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        cluster.kill(0).await.unwrap();
        // Talk to a live member; if the killed one led the raft group the
        // others need a moment (one election timeout) to elect a new leader.
        let mut put = Err(None);
        for _ in 0..40 {
            match run_etcdctl(&cluster.endpoint(1), &["put", "k", "v"]).await {
                Ok(_) => {
                    put = Ok(());
                    break;
                }
                Err(e) => put = Err(Some(e)),
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        put.unwrap_or_else(|e| panic!("no write accepted with one member down: {e:?}"));
        cluster.restart(0).await.unwrap();
        let out = run_etcdctl(&cluster.endpoint(0), &["get", "k", "--print-value-only"])
            .await
            .unwrap();
        assert_eq!(out.trim(), "v");
    }
}
