//! A real PostgreSQL server for tests: `initdb` in a temporary directory,
//! `postgres` on a free loopback port, stopped and removed on drop.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (as on
//! CI), the harness hands the directory to an unprivileged user (the
//! `postgres` user of Debian's package, else `nobody`, or the one named
//! by `TENURE_PG_USER`) and runs `initdb` and `postgres` as that user
//! with `setpriv`, which executes them in place: the process id is the
//! server's own. A pause or a kill reaches the postmaster and every
//! process it started (found by parent in `/proc`).
//!
//! Binaries are looked up in `TENURE_PG_BIN`, then in the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian), then on the `PATH`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use crate::harness::{free_ports, io, log_tail, HarnessError};

/// How long a server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Attempts at starting on a fresh port after losing a port race.
const START_ATTEMPTS: usize = 3;

/// The superuser the harness creates (authentication: trust, loopback
/// only).
pub const PG_USER: &str = "tenure";

/// The database tests connect to.
pub const PG_DATABASE: &str = "postgres";

/// Where the PostgreSQL binaries are.
fn bin_dir() -> Result<PathBuf, HarnessError> {
    if let Some(dir) = std::env::var_os("TENURE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v postgres"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            p.parent().map(Path::to_path_buf)
        });
    on_path.ok_or_else(|| HarnessError::MissingBinary {
        what: "PostgreSQL (postgres, initdb)".into(),
    })
}

/// The output of a short command, trimmed, or `None` when it failed.
fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The unprivileged user to run as, when running as root: `(name, uid,
/// gid)`. `None` when not root (the server runs as we do).
fn run_as() -> Result<Option<(String, String, String)>, HarnessError> {
    let me = output(Command::new("id").arg("-u")).unwrap_or_default();
    if me != "0" {
        return Ok(None);
    }
    let mut names = Vec::new();
    if let Ok(name) = std::env::var("TENURE_PG_USER") {
        names.push(name);
    }
    names.extend(["postgres".to_owned(), "nobody".to_owned()]);
    for name in names {
        let uid = output(Command::new("id").args(["-u", &name]));
        let gid = output(Command::new("id").args(["-g", &name]));
        if let (Some(uid), Some(gid)) = (uid, gid) {
            return Ok(Some((name, uid, gid)));
        }
    }
    Err(HarnessError::MissingBinary {
        what: "an unprivileged user to run PostgreSQL as (postgres or nobody; or set \
               TENURE_PG_USER)"
            .into(),
    })
}

/// A command that runs `program` as `user` (when given), in a process
/// group of its own.
fn command(user: &Option<(String, String, String)>, program: &Path) -> Command {
    let mut cmd = match user {
        Some((_, uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
                "--",
            ])
            .arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.process_group(0);
    cmd
}

/// A PostgreSQL server for one test.
///
/// ```no_run
/// # async fn demo() -> Result<(), tenure_testkit::harness::HarnessError> {
/// let server = tenure_testkit::pg_server::PgServer::start().await?;
/// println!("connect to {}", server.url());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    user: Option<(String, String, String)>,
    port: u16,
    child: Option<Child>,
    // Dropped last: the server dies first, then its directory goes.
    dir: tempfile::TempDir,
}

impl PgServer {
    /// Creates a cluster in a temporary directory (`initdb`, trust
    /// authentication for [`PG_USER`] on loopback) and starts it on a free
    /// loopback port.
    ///
    /// # Errors
    /// [`HarnessError::MissingBinary`] when PostgreSQL is not installed
    /// (run `scripts/install-deps.sh`); [`HarnessError::NotHealthy`] with
    /// the log tail when it does not start.
    pub async fn start() -> Result<PgServer, HarnessError> {
        let bin = bin_dir()?;
        if !bin.join("initdb").exists() {
            return Err(HarnessError::MissingBinary {
                what: format!("initdb in {}", bin.display()),
            });
        }
        let user = run_as()?;
        let dir = tempfile::Builder::new()
            .prefix("tenure-pg-")
            .tempdir()
            .map_err(io("create a temporary directory"))?;
        if let Some((name, uid, gid)) = &user {
            let out = Command::new("chown")
                .arg(format!("{uid}:{gid}"))
                .arg(dir.path())
                .output()
                .map_err(io("run chown"))?;
            if !out.status.success() {
                return Err(HarnessError::Command {
                    command: format!("chown {name} {}", dir.path().display()),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                });
            }
        }
        let data = dir.path().join("data");
        let out = command(&user, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                PG_USER,
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--no-locale",
            ])
            .output()
            .map_err(io("run initdb"))?;
        if !out.status.success() {
            return Err(HarnessError::Command {
                command: format!("initdb -D {}", data.display()),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let mut server = PgServer {
            bin,
            user,
            port: 0,
            child: None,
            dir,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            server.port = free_ports(1)?[0];
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(e) => {
                    let raced = server.log().contains("Address already in use");
                    server.kill_now();
                    if !raced || attempt >= START_ATTEMPTS {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    async fn spawn_and_wait(&mut self) -> Result<(), HarnessError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(io("open the server log"))?;
        let log2 = log.try_clone().map_err(io("open the server log"))?;
        let child = command(&self.user, &self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-h", "127.0.0.1"])
            // A killed server keeps what reached the kernel: tests crash
            // processes, not machines. Commits stay synchronous, so an
            // acknowledged commit survives a kill (restart tests rely on
            // it).
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"])
            .args(["-c", "max_connections=400"])
            // Few shared buffers: many test servers run at once.
            .args(["-c", "shared_buffers=16MB"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io("start postgres"))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(self.not_healthy(format!("postgres exited: {status}")));
                }
            }
            let ready = tokio::process::Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", PG_USER, "-d", PG_DATABASE, "-t", "2"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .map_err(io("run pg_isready"))?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.not_healthy(format!("not ready within {READY_TIMEOUT:?}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn not_healthy(&self, reason: String) -> HarnessError {
        HarnessError::NotHealthy {
            member: format!("postgres:{}", self.port),
            reason,
            log_tail: log_tail(&self.log_path()),
        }
    }

    /// `postgres://tenure@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{PG_DATABASE}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory (data, socket, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The postmaster's process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }

    /// Sends `sig` to the postmaster and every process it started.
    /// PostgreSQL puts each child in a process group of its own, so a
    /// signal to the postmaster's group would not reach them: they are
    /// found by their parent in `/proc`. The postmaster is signalled
    /// first, so that it starts no child the loop would miss while
    /// stopping; and last when resuming.
    fn signal_all(&self, sig: &str) -> Result<(), HarnessError> {
        let Some(pid) = self.pid() else {
            return Err(HarnessError::Command {
                command: format!("kill -{sig}"),
                stderr: "the server is not running".into(),
            });
        };
        let children = children_of(pid);
        if sig == "CONT" {
            for child in children {
                let _ = signal_pid(child, sig);
            }
            signal_pid(pid, sig)
        } else {
            signal_pid(pid, sig)?;
            for child in children_of(pid) {
                // A child may have exited meanwhile.
                let _ = signal_pid(child, sig);
            }
            Ok(())
        }
    }

    fn kill_now(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        let children = children_of(pid);
        // Thawed first, so that a paused server dies like a running one.
        for p in std::iter::once(pid).chain(children.iter().copied()) {
            let _ = signal_pid(p, "CONT");
            let _ = signal_pid(p, "KILL");
        }
        let _ = child.wait();
        // Backends that outlive the postmaster for a moment still hold
        // its shared memory (a restart would refuse to start): wait, with
        // a bound, until none is left.
        for _ in 0..500 {
            if children.iter().all(|&c| signal_pid(c, "0").is_err()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Freezes every server process (`SIGSTOP`): connections stay open
    /// and nothing answers, like a long pause of the machine.
    ///
    /// # Errors
    /// When the server is not running.
    pub fn pause(&self) -> Result<(), HarnessError> {
        self.signal_all("STOP")
    }

    /// Thaws a server frozen by [`pause`](Self::pause).
    ///
    /// # Errors
    /// When the server is not running.
    pub fn resume(&self) -> Result<(), HarnessError> {
        self.signal_all("CONT")
    }

    /// Kills every server process at once (`SIGKILL`), as a crash would.
    pub fn kill(&mut self) {
        self.kill_now();
    }

    /// Restarts after a crash: kills the server (if running) and starts
    /// it again on the same data and port (PostgreSQL recovers from its
    /// WAL); waits until it accepts connections.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill_now();
        self.spawn_and_wait().await
    }

    /// Runs `sql` with `psql` as the superuser and returns its output
    /// (unaligned, tuples only): what an operator would type.
    ///
    /// # Errors
    /// [`HarnessError::Command`] with psql's stderr when it fails.
    pub async fn psql(&self, sql: &str) -> Result<String, HarnessError> {
        self.psql_client().run(sql).await
    }

    /// A `psql` runner for this server that owns what it needs (for
    /// closures that must be `'static`).
    pub fn psql_client(&self) -> Psql {
        Psql {
            bin: self.bin.clone(),
            port: self.port,
        }
    }
}

/// Runs `psql` against a [`PgServer`] as its superuser.
#[derive(Clone, Debug)]
pub struct Psql {
    bin: PathBuf,
    port: u16,
}

impl Psql {
    /// Runs `sql` and returns its output (unaligned, tuples only).
    ///
    /// # Errors
    /// [`HarnessError::Command`] with psql's stderr when it fails.
    pub async fn run(&self, sql: &str) -> Result<String, HarnessError> {
        let out = tokio::process::Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", PG_USER, "-d", PG_DATABASE])
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-c", sql])
            .output()
            .await
            .map_err(io("run psql"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(HarnessError::Command {
                command: format!("psql -c {sql:?}"),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }
}

/// The processes whose parent is `pid`, from `/proc`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            // `pid (comm) state ppid ...`: the command may hold spaces,
            // so read after its closing parenthesis.
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Sends `sig` to `pid` with the `kill` command (the workspace forbids
/// `unsafe`, so no `libc::kill`).
fn signal_pid(pid: u32, sig: &str) -> Result<(), HarnessError> {
    let out = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
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

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill_now();
    }
}
