//! Real ZooKeeper servers for tests: a single server ([`ZkServer`]) or a
//! quorum ensemble ([`ZkEnsemble`]), each member a JVM child process on
//! free loopback ports with its own temporary config, data and log
//! directory.
//!
//! The JVM runs `org.apache.zookeeper.server.quorum.QuorumPeerMain`
//! directly (what `zkServer.sh start-foreground` execs), so a kill reaches
//! the JVM itself, not a wrapper shell. Servers are torn down when their
//! handle drops, even when the test panics; and because a `static` server
//! shared by a whole test binary ([`ZkServer::shared`]) is never dropped,
//! every JVM also gets a tiny watchdog process that kills it (and removes
//! its directory) as soon as the test process exits, however it exits.
//!
//! The jars come from `scripts/install-deps.sh` (Debian's `zookeeper`
//! package, `/usr/share/java/zookeeper.jar`); set `TENURE_ZK_CLASSPATH` to
//! use other jars and `TENURE_JAVA` for another `java`.
//!
//! Timing: `tickTime` is 100 ms by default and sessions may last from
//! 200 ms to 20 s, so session-expiry tests take about a second.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::harness::{free_ports, io, log_tail, HarnessError};
use crate::pki::TestPki;

/// How long a server may take to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a lost port race is retried with fresh ports.
const START_ATTEMPTS: usize = 5;
/// Default classpath: Debian's ZooKeeper jar (its manifest names its
/// dependencies) plus a logger that writes to stderr.
const DEFAULT_CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";
/// What the Netty connection factory of a TLS server needs beyond the
/// jars Debian's ZooKeeper manifest names (its TLS handler's decoder and
/// Netty's resolver), from Debian's `libnetty-java`.
const TLS_CLASSPATH: &str = "/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar";

/// The errors of the ZooKeeper servers: the harness's one error type.
pub type ZkHarnessError = HarnessError;

/// Settings of the servers the harness starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkServerConfig {
    /// ZooKeeper's `tickTime` (default 100 ms). Session expiry is checked
    /// once per tick.
    pub tick_time: Duration,
    /// `minSessionTimeout` (default 200 ms).
    pub min_session_timeout: Duration,
    /// `maxSessionTimeout` (default 20 s).
    pub max_session_timeout: Duration,
    /// `maxClientCnxns`: connections one client host (all of loopback, so
    /// every test process together) may hold; the server closes further
    /// ones right after accepting them. Default 0, no limit: ZooKeeper's
    /// own default of 60 is less than what a burst test opens.
    pub max_client_cnxns: u32,
    /// Extra `zoo.cfg` lines (`key=value`).
    pub extra: Vec<(String, String)>,
}

impl Default for ZkServerConfig {
    fn default() -> Self {
        ZkServerConfig {
            tick_time: Duration::from_millis(100),
            min_session_timeout: Duration::from_millis(200),
            max_session_timeout: Duration::from_secs(20),
            max_client_cnxns: 0,
            extra: Vec::new(),
        }
    }
}

/// A fresh, unique directory under the system temp dir.
fn temp_dir(tag: &str) -> Result<PathBuf, ZkHarnessError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "tenure-zk-{tag}-{}-{n}-{:x}",
        std::process::id(),
        fastrand_u64()
    ));
    std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    Ok(dir)
}

/// A random number without an extra dependency: the std hasher is seeded
/// randomly per process.
fn fastrand_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

fn java_binary() -> String {
    std::env::var("TENURE_JAVA").unwrap_or_else(|_| "java".to_owned())
}

fn classpath(tls: bool) -> Result<String, ZkHarnessError> {
    if let Ok(cp) = std::env::var("TENURE_ZK_CLASSPATH") {
        return Ok(cp);
    }
    let mut cp = DEFAULT_CLASSPATH.to_owned();
    if tls {
        cp = format!("{cp}:{TLS_CLASSPATH}");
    }
    for jar in cp.split(':') {
        if !Path::new(jar).exists() {
            return Err(HarnessError::MissingBinary {
                what: format!("ZooKeeper jar {jar}"),
            });
        }
    }
    Ok(cp)
}

/// Ports of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ports {
    client: u16,
    quorum: u16,
    election: u16,
    /// `secureClientPort`, served only by a TLS member.
    secure: u16,
}

/// The files of a member serving TLS on its `secureClientPort`.
#[derive(Clone, Debug)]
struct MemberTls {
    /// The server's key and certificate in one PEM file.
    keystore: PathBuf,
    /// The CA that client certificates must chain to.
    truststore: PathBuf,
}

/// Everything needed to (re)start one member.
#[derive(Clone, Debug)]
struct MemberConfig {
    /// `zk1`, `zk2`, ...
    name: String,
    /// 1-based server id (`myid`).
    id: usize,
    dir: PathBuf,
    ports: Ports,
    /// `server.N=` lines; empty for a standalone server.
    servers: Vec<String>,
    config: ZkServerConfig,
    tls: Option<MemberTls>,
}

impl MemberConfig {
    fn conf_dir(&self) -> PathBuf {
        self.dir.join("conf")
    }
    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }
    fn log_path(&self) -> PathBuf {
        self.log_dir().join("zookeeper.log")
    }
    fn cfg_path(&self) -> PathBuf {
        self.conf_dir().join("zoo.cfg")
    }

    fn write_files(&self) -> Result<(), ZkHarnessError> {
        for d in [self.conf_dir(), self.data_dir(), self.log_dir()] {
            std::fs::create_dir_all(&d).map_err(io(format!("create {}", d.display())))?;
        }
        let c = &self.config;
        let mut cfg = format!(
            "tickTime={}\ninitLimit=50\nsyncLimit=20\ndataDir={}\nclientPort={}\n\
             clientPortAddress=127.0.0.1\nminSessionTimeout={}\nmaxSessionTimeout={}\n\
             admin.enableServer=false\n4lw.commands.whitelist=*\nmaxClientCnxns={}\n\
             autopurge.purgeInterval=0\n",
            c.tick_time.as_millis(),
            self.data_dir().display(),
            self.ports.client,
            c.min_session_timeout.as_millis(),
            c.max_session_timeout.as_millis(),
            c.max_client_cnxns,
        );
        for s in &self.servers {
            cfg.push_str(s);
            cfg.push('\n');
        }
        if !self.servers.is_empty() {
            cfg.push_str("standaloneEnabled=false\nreconfigEnabled=false\n");
        }
        if let Some(tls) = &self.tls {
            // Keys ZooKeeper does not know in zoo.cfg become `zookeeper.*`
            // system properties, which is where the Netty connection
            // factory and its TLS settings are read from. The plain client
            // port stays open for the harness's four-letter words.
            cfg.push_str(&format!(
                "secureClientPort={}\n\
                 serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
                 ssl.keyStore.location={}\nssl.keyStore.type=PEM\n\
                 ssl.trustStore.location={}\nssl.trustStore.type=PEM\n\
                 ssl.clientAuth=need\n",
                self.ports.secure,
                tls.keystore.display(),
                tls.truststore.display(),
            ));
        }
        for (k, v) in &c.extra {
            cfg.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(self.cfg_path(), cfg).map_err(io("write zoo.cfg"))?;
        std::fs::write(self.data_dir().join("myid"), format!("{}\n", self.id))
            .map_err(io("write myid"))?;
        Ok(())
    }
}

/// One running (or stopped) ZooKeeper JVM.
#[derive(Debug)]
struct Member {
    config: MemberConfig,
    child: Option<Child>,
    /// Stdin of the watchdog: closing it (or our exit) makes the watchdog
    /// kill the JVM.
    watchdog: Option<(Child, ChildStdin)>,
}

impl Member {
    fn new(config: MemberConfig) -> Member {
        Member {
            config,
            child: None,
            watchdog: None,
        }
    }

    fn spawn(&mut self) -> Result<(), ZkHarnessError> {
        self.config.write_files()?;
        let cp = classpath(self.config.tls.is_some())?;
        let log_path = self.config.log_path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(format!("open {}", log_path.display())))?;
        let log2 = log.try_clone().map_err(io("clone the log file handle"))?;
        let java = java_binary();
        let child = Command::new(&java)
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-Dorg.slf4j.simpleLogger.showDateTime=true")
            .arg(format!(
                "-Dzookeeper.log.dir={}",
                self.config.log_dir().display()
            ))
            .arg("-cp")
            .arg(&cp)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(self.config.cfg_path())
            .env("ZOOCFGDIR", self.config.conf_dir())
            .env("ZOO_LOG_DIR", self.config.log_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    HarnessError::MissingBinary {
                        what: format!("`{java}`"),
                    }
                } else {
                    ZkHarnessError::Io {
                        what: format!("spawn {java}"),
                        source: e,
                    }
                }
            })?;
        let pid = child.id();
        self.child = Some(child);
        // The watchdog waits for EOF on its stdin, which comes when we close
        // it or when this process dies; then it kills the JVM.
        let mut dog = Command::new("sh")
            .arg("-c")
            .arg(format!("cat >/dev/null; kill -9 {pid} 2>/dev/null"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("spawn the watchdog shell"))?;
        if let Some(stdin) = dog.stdin.take() {
            self.watchdog = Some((dog, stdin));
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        log_tail(&self.config.log_path())
    }

    fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn not_serving(&self, reason: String) -> ZkHarnessError {
        HarnessError::NotHealthy {
            member: self.config.name.clone(),
            reason,
            log_tail: self.log_tail(),
        }
    }

    fn lost_port_race(&self) -> bool {
        std::fs::read_to_string(self.config.log_path())
            .map(|s| s.contains("Address already in use") || s.contains("BindException"))
            .unwrap_or(false)
    }

    /// Waits until `srvr` shows the member serving (standalone, leader or
    /// follower), failing early if the JVM exits.
    async fn wait_serving(&mut self, timeout: Duration) -> Result<(), ZkHarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(self.not_serving(format!("the JVM exited with {status}")));
                }
            } else {
                return Err(self.not_serving("not running".to_owned()));
            }
            let last = match four_letter_word(self.config.ports.client, "srvr").await {
                Ok(s) if s.contains("Mode: ") => return Ok(()),
                Ok(s) => s.lines().next().unwrap_or("").to_owned(),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(self.not_serving(format!(
                    "not serving after {timeout:?} (last `srvr`: {last})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.release_watchdog();
    }

    fn release_watchdog(&mut self) {
        if let Some((mut dog, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = dog.wait();
        }
    }

    /// SIGTERM (a clean shutdown), falling back to SIGKILL after 10 s.
    async fn stop(&mut self) -> Result<(), ZkHarnessError> {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .map_err(io("run kill"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.is_running() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        Ok(())
    }

    fn signal(&self, sig: &str) -> Result<(), ZkHarnessError> {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return Err(self.not_serving("not running".to_owned()));
        };
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .map_err(io("run kill"))?;
        Ok(())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends a four-letter-word command (`ruok`, `srvr`, `mntr`, `cons`, ...)
/// to the client port of a server on 127.0.0.1 and returns its answer.
///
/// # Errors
/// The connection failed or timed out (2 s).
pub async fn four_letter_word(port: u16, word: &str) -> std::io::Result<String> {
    let word = word.to_owned();
    let run = move || -> std::io::Result<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.set_write_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(word.as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    };
    match tokio::task::spawn_blocking(run).await {
        Ok(r) => r,
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// Starts members of one ensemble (or a standalone server), retrying with
/// fresh ports when a port was taken between picking and binding it.
async fn start_members(
    dir: &Path,
    n: usize,
    config: &ZkServerConfig,
    tls: Option<&MemberTls>,
) -> Result<Vec<Member>, ZkHarnessError> {
    let mut last_error = None;
    for _ in 0..START_ATTEMPTS {
        let ports = free_ports(4 * n)?;
        let ports: Vec<Ports> = ports
            .chunks(4)
            .map(|c| Ports {
                client: c[0],
                quorum: c[1],
                election: c[2],
                secure: c[3],
            })
            .collect();
        let servers: Vec<String> = if n == 1 {
            Vec::new()
        } else {
            ports
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    format!(
                        "server.{}=127.0.0.1:{}:{}:participant;127.0.0.1:{}",
                        i + 1,
                        p.quorum,
                        p.election,
                        p.client
                    )
                })
                .collect()
        };
        let mut members: Vec<Member> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Member::new(MemberConfig {
                    name: format!("zk{}", i + 1),
                    id: i + 1,
                    dir: dir.join(format!("zk{}", i + 1)),
                    ports: *p,
                    servers: servers.clone(),
                    config: config.clone(),
                    tls: tls.cloned(),
                })
            })
            .collect();
        for m in &members {
            // A retry starts from clean directories.
            let _ = std::fs::remove_dir_all(&m.config.dir);
        }
        let mut spawned = Ok(());
        for m in members.iter_mut() {
            if let Err(e) = m.spawn() {
                spawned = Err(e);
                break;
            }
        }
        spawned?;
        let mut failed = None;
        for m in members.iter_mut() {
            if let Err(e) = m.wait_serving(START_TIMEOUT).await {
                failed = Some(e);
                break;
            }
        }
        match failed {
            None => return Ok(members),
            Some(e) => {
                let race = members.iter().any(Member::lost_port_race);
                drop(members);
                if !race {
                    return Err(e);
                }
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| HarnessError::NotHealthy {
        member: "zk1".into(),
        reason: "could not find free ports".into(),
        log_tail: String::new(),
    }))
}

/// Removes a directory tree when dropped, or (through a watchdog process
/// that waits for EOF on its stdin) when this process exits without
/// dropping it, as the [`ZkServer::shared`] server does.
#[derive(Debug)]
struct DirGuard {
    dir: PathBuf,
    watchdog: Option<Child>,
}

impl DirGuard {
    fn new(dir: PathBuf) -> DirGuard {
        // The JVM's own watchdog kills it at the same moment: give it a
        // second to die before removing its files.
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg("cat >/dev/null; sleep 1; rm -rf \"$0\"")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        DirGuard { dir, watchdog }
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(mut dog) = self.watchdog.take() {
            let _ = dog.kill();
            let _ = dog.wait();
        }
    }
}

/// A standalone ZooKeeper server on a free loopback port.
///
/// ```no_run
/// # async fn demo() -> Result<(), tenure_testkit::zk_server::ZkHarnessError> {
/// use tenure_testkit::zk_server::ZkServer;
/// let mut zk = ZkServer::start().await?;
/// println!("connect to {}", zk.connect_string());
/// zk.restart().await?; // same port, same data
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ZkServer {
    // Field order matters: the member (JVM) goes before its directory.
    member: Member,
    _dir: DirGuard,
}

impl ZkServer {
    /// Starts a server with the default settings (tickTime 100 ms,
    /// sessions 200 ms – 20 s).
    ///
    /// # Errors
    /// Java or the jars are missing, or the server did not start serving
    /// (the error carries the end of its log).
    pub async fn start() -> Result<ZkServer, ZkHarnessError> {
        Self::start_with(ZkServerConfig::default()).await
    }

    /// Starts a server with `config`.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_with(config: ZkServerConfig) -> Result<ZkServer, ZkHarnessError> {
        Self::start_member(config, None).await
    }

    /// Starts a server that also serves TLS on its `secureClientPort`
    /// ([`secure_connect_string`](Self::secure_connect_string)), with the
    /// server certificate of `pki` and client certificates required
    /// (`ssl.clientAuth=need`, trusting `pki`'s CA). The plain client port
    /// stays open: the harness checks health through it.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_tls(
        pki: &TestPki,
        config: ZkServerConfig,
    ) -> Result<ZkServer, ZkHarnessError> {
        let tls = MemberTls {
            keystore: pki.server_keystore(),
            truststore: pki.ca(),
        };
        Self::start_member(config, Some(tls)).await
    }

    async fn start_member(
        config: ZkServerConfig,
        tls: Option<MemberTls>,
    ) -> Result<ZkServer, ZkHarnessError> {
        let dir = temp_dir("single")?;
        let guard = DirGuard::new(dir.clone());
        let mut members = start_members(&dir, 1, &config, tls.as_ref()).await?;
        let member = members.pop().ok_or_else(|| HarnessError::NotHealthy {
            member: "zk1".into(),
            reason: "no member started".into(),
            log_tail: String::new(),
        })?;
        Ok(ZkServer {
            member,
            _dir: guard,
        })
    }

    /// A server shared by every test of this test binary, started on first
    /// use with the default settings. It lives until the process exits (the
    /// watchdog then kills it). Tests sharing it must use unique names and
    /// must not stop it; tests that kill or restart servers start their own.
    ///
    /// # Errors
    /// As [`start`](Self::start); a failed start is retried by the next
    /// caller.
    pub async fn shared() -> Result<&'static ZkServer, ZkHarnessError> {
        static SHARED: OnceCell<ZkServer> = OnceCell::const_new();
        SHARED.get_or_try_init(ZkServer::start).await
    }

    /// `127.0.0.1:<port>`, for a ZooKeeper client.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.member.config.ports.client)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.member.config.ports.client
    }

    /// `127.0.0.1:<secureClientPort>`, the TLS port of a server started
    /// with [`start_tls`](Self::start_tls) (nothing listens there on
    /// other servers).
    pub fn secure_connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.member.config.ports.secure)
    }

    /// The settings the server runs with.
    pub fn config(&self) -> &ZkServerConfig {
        &self.member.config.config
    }

    /// Whether the JVM is running.
    pub fn is_running(&mut self) -> bool {
        self.member.is_running()
    }

    /// Sends a four-letter word (`srvr`, `cons`, `mntr`, ...).
    ///
    /// # Errors
    /// Connection failures.
    pub async fn four_letter_word(&self, word: &str) -> std::io::Result<String> {
        four_letter_word(self.port(), word).await
    }

    /// Kills the JVM with `SIGKILL` (a crash: no clean shutdown).
    pub async fn kill(&mut self) {
        self.member.kill();
    }

    /// Stops the JVM with `SIGTERM` and waits for it to exit.
    ///
    /// # Errors
    /// Running `kill` failed.
    pub async fn stop(&mut self) -> Result<(), ZkHarnessError> {
        self.member.stop().await
    }

    /// Freezes the JVM (`SIGSTOP`): it keeps its port but answers nothing.
    ///
    /// # Errors
    /// The server is not running.
    pub fn pause(&self) -> Result<(), ZkHarnessError> {
        self.member.signal("STOP")
    }

    /// Thaws a JVM frozen by [`pause`](Self::pause) (`SIGCONT`).
    ///
    /// # Errors
    /// The server is not running.
    pub fn resume(&self) -> Result<(), ZkHarnessError> {
        self.member.signal("CONT")
    }

    /// Stops the server if it runs, then starts it again on the same port
    /// with the same data (sessions survive if they have not expired), and
    /// waits until it serves.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn restart(&mut self) -> Result<(), ZkHarnessError> {
        self.member.stop().await?;
        self.member.spawn()?;
        self.member.wait_serving(START_TIMEOUT).await
    }

    /// The end of the server's log.
    pub fn log_tail(&self) -> String {
        self.member.log_tail()
    }
}

/// A quorum ensemble of ZooKeeper servers on loopback (client, quorum and
/// election ports all free loopback ports).
#[derive(Debug)]
pub struct ZkEnsemble {
    members: Vec<Member>,
    _dir: DirGuard,
}

impl ZkEnsemble {
    /// Starts an ensemble of `n` servers (use an odd `n`, e.g. 3) with the
    /// default settings and waits until every member serves.
    ///
    /// # Errors
    /// As [`ZkServer::start`].
    pub async fn start(n: usize) -> Result<ZkEnsemble, ZkHarnessError> {
        Self::start_with(n, ZkServerConfig::default()).await
    }

    /// Starts an ensemble of `n` servers with `config`.
    ///
    /// # Errors
    /// As [`ZkServer::start`].
    pub async fn start_with(
        n: usize,
        config: ZkServerConfig,
    ) -> Result<ZkEnsemble, ZkHarnessError> {
        let dir = temp_dir("ensemble")?;
        let guard = DirGuard::new(dir.clone());
        let members = start_members(&dir, n.max(1), &config, None).await?;
        Ok(ZkEnsemble {
            members,
            _dir: guard,
        })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the ensemble has no members (never, once started).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// `127.0.0.1:<p1>,127.0.0.1:<p2>,...`: every member.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.config.ports.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client port of member `i` (0-based).
    ///
    /// # Errors
    /// [`HarnessError::NoSuchMember`].
    pub fn port(&self, i: usize) -> Result<u16, ZkHarnessError> {
        Ok(self.member(i)?.config.ports.client)
    }

    /// The `Mode:` line of member `i`'s `srvr` answer (`leader`,
    /// `follower`), or `None` when it does not answer.
    pub async fn mode(&self, i: usize) -> Option<String> {
        let port = self.port(i).ok()?;
        let s = four_letter_word(port, "srvr").await.ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_owned)
    }

    /// Index of the current quorum leader, if one answers.
    pub async fn leader(&self) -> Option<usize> {
        for i in 0..self.members.len() {
            if self.mode(i).await.as_deref() == Some("leader") {
                return Some(i);
            }
        }
        None
    }

    fn member(&self, i: usize) -> Result<&Member, ZkHarnessError> {
        let size = self.members.len();
        self.members
            .get(i)
            .ok_or(HarnessError::NoSuchMember { index: i, size })
    }

    fn member_mut(&mut self, i: usize) -> Result<&mut Member, ZkHarnessError> {
        let size = self.members.len();
        self.members
            .get_mut(i)
            .ok_or(HarnessError::NoSuchMember { index: i, size })
    }

    /// Kills member `i` with `SIGKILL`.
    ///
    /// # Errors
    /// [`HarnessError::NoSuchMember`].
    pub async fn kill(&mut self, i: usize) -> Result<(), ZkHarnessError> {
        self.member_mut(i)?.kill();
        Ok(())
    }

    /// Stops member `i` with `SIGTERM`.
    ///
    /// # Errors
    /// [`HarnessError::NoSuchMember`], or running `kill` failed.
    pub async fn stop(&mut self, i: usize) -> Result<(), ZkHarnessError> {
        self.member_mut(i)?.stop().await
    }

    /// Restarts member `i` (same ports, same data) and waits until it
    /// serves again (which needs a quorum of the others).
    ///
    /// # Errors
    /// As [`ZkServer::restart`].
    pub async fn restart(&mut self, i: usize) -> Result<(), ZkHarnessError> {
        let m = self.member_mut(i)?;
        m.stop().await?;
        m.spawn()?;
        m.wait_serving(START_TIMEOUT).await
    }

    /// Waits until member `i` serves (e.g. after the quorum re-formed).
    ///
    /// # Errors
    /// [`HarnessError::NotHealthy`] after `timeout`.
    pub async fn wait_serving(
        &mut self,
        i: usize,
        timeout: Duration,
    ) -> Result<(), ZkHarnessError> {
        self.member_mut(i)?.wait_serving(timeout).await
    }

    /// The end of member `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        self.member(i)
            .map(Member::log_tail)
            .unwrap_or_else(|e| e.to_string())
    }
}
