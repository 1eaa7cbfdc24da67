//! Interop with real foreign participants sharing one election with
//! tenure on a real ZooKeeper server that the test starts:
//!
//! - **kazoo** `Election` (`tests/interop/kazoo_election.py`, Python 3 with
//!   the `kazoo` package) against tenure in [`Layout::Kazoo`];
//! - **Curator** `LeaderLatch` (`tests/interop/LatchMain.java`, run as a
//!   single-file source with the system Java and Debian's Curator jars)
//!   against tenure in the default [`Layout::Curator`].
//!
//! For each: whoever campaigns first leads, the other follows, and the
//! follower takes over when the first leaves. The foreign programs print
//! one line per event (`CAMPAIGNING`/`STARTED`, `LEADER <id>`,
//! `EXITED <id>`) and leave cleanly when their stdin closes.
//!
//! A participant that is not installed fails its tests with a message
//! naming `scripts/install-deps.sh`; they never pass silently.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tenure_core::{Election, ElectionName, Leadership};
use tenure_zookeeper::{Layout, ZkBackend};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// Lease TTL of the tenure candidates (within the test server's bounds).
const TTL: Duration = Duration::from_millis(1500);
/// How long a foreign program may take to start and campaign (a JVM
/// compiling a source file takes a few seconds on a busy machine).
const START: Duration = Duration::from_secs(30);
/// How long a handover may take once the leader has left.
const HANDOVER: Duration = Duration::from_secs(10);
/// How long a follower is watched to make sure it does not lead.
const GRACE: Duration = Duration::from_millis(1500);

/// The foreign library on the other side.
#[derive(Clone, Copy, Debug)]
enum Foreign {
    Kazoo,
    Curator,
}

impl Foreign {
    fn layout(self) -> Layout {
        match self {
            Foreign::Kazoo => Layout::Kazoo,
            Foreign::Curator => Layout::Curator,
        }
    }

    /// The line the program prints once it has joined the election.
    fn joined(self, id: &str) -> String {
        match self {
            Foreign::Kazoo => format!("CAMPAIGNING {id}"),
            Foreign::Curator => format!("STARTED {id}"),
        }
    }

    /// The command that runs the participant, or why it cannot run here.
    fn command(self, connect: &str, path: &str, id: &str) -> Result<Command, String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
        let mut cmd = match self {
            Foreign::Kazoo => {
                let mut c = Command::new(python_with_kazoo()?);
                c.arg(dir.join("kazoo_election.py"));
                c
            }
            Foreign::Curator => {
                let mut c = Command::new("java");
                c.arg("-cp")
                    .arg(curator_classpath()?)
                    .arg(dir.join("LatchMain.java"));
                c
            }
        };
        cmd.args([connect, path, id]);
        Ok(cmd)
    }
}

/// A Python 3 interpreter that can `import kazoo`: `$TENURE_PYTHON`, else
/// `python3` on the `PATH`, else Debian's `/usr/bin/python3` (where
/// `python3-kazoo` installs, which may differ from a pyenv `python3`).
fn python_with_kazoo() -> Result<String, String> {
    let mut candidates: Vec<String> = std::env::var("TENURE_PYTHON").into_iter().collect();
    candidates.extend(["python3".to_owned(), "/usr/bin/python3".to_owned()]);
    for python in &candidates {
        let ok = std::process::Command::new(python)
            .args(["-c", "import kazoo.recipe.election"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(python.clone());
        }
    }
    Err(format!(
        "kazoo is not installed: none of {candidates:?} can `import kazoo`. \
         Run scripts/install-deps.sh (Debian python3-kazoo, or `pip install kazoo`), \
         or point TENURE_PYTHON at a Python that has it"
    ))
}

/// The jars a `LeaderLatch` needs, from Debian's packages
/// (`libcurator-recipes-java`, `libcurator-framework-java` and their
/// dependencies) in `$TENURE_JAVA_LIB` or `/usr/share/java`.
fn curator_classpath() -> Result<String, String> {
    let lib = PathBuf::from(
        std::env::var("TENURE_JAVA_LIB").unwrap_or_else(|_| "/usr/share/java".to_owned()),
    );
    let required = [
        "curator-recipes.jar",
        "curator-framework.jar",
        "curator-client.jar",
        "zookeeper.jar",
        "zookeeper-jute.jar",
        "guava.jar",
        "slf4j-api.jar",
    ];
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|j| !lib.join(j).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "Curator is not installed: {missing:?} missing from {}. Run \
             scripts/install-deps.sh (Debian libcurator-recipes-java, \
             libcurator-framework-java)",
            lib.display()
        ));
    }
    let mut jars: Vec<PathBuf> = required.iter().map(|j| lib.join(j)).collect();
    // Optional: silences SLF4J's "no binding" warning.
    if lib.join("slf4j-nop.jar").is_file() {
        jars.push(lib.join("slf4j-nop.jar"));
    }
    std::env::join_paths(jars)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| e.to_string())
}

/// A running foreign participant: its stdout lines as they come, its
/// stderr kept for failure messages. Killed if dropped while running.
struct Participant {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Participant {
    /// Starts `foreign` as candidate `id` in the election at `path`.
    fn spawn(foreign: Foreign, connect: &str, path: &str, id: &str) -> Participant {
        let mut cmd = foreign
            .command(connect, path, id)
            .unwrap_or_else(|why| panic!("{foreign:?} interop cannot run: {why}"));
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {foreign:?} participant {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                // Keep the first 64 KiB: enough to explain a failure.
                if s.len() < 64 * 1024 {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Participant {
            what: format!("{foreign:?} participant {id}"),
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    fn report(&self) -> String {
        format!(
            "{}: stdout so far {:?}; stderr:\n{}",
            self.what,
            self.seen,
            self.stderr.lock().unwrap_or_else(|p| p.into_inner())
        )
    }

    /// Waits (at most `within`) for the line `want`.
    async fn expect_line(&mut self, want: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if line == want {
                        return;
                    }
                }
                Ok(None) => {
                    // Let the stderr reader catch up before reporting.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    panic!("exited before printing {want:?}: {}", self.report())
                }
                Err(_) => panic!("no {want:?} within {within:?}: {}", self.report()),
            }
        }
    }

    /// Checks that `unwanted` is not printed during `during`.
    async fn refrain(&mut self, unwanted: &str, during: Duration) {
        let deadline = tokio::time::Instant::now() + during;
        while let Ok(Some(line)) = tokio::time::timeout_at(deadline, self.lines.recv()).await {
            self.seen.push(line.clone());
            assert_ne!(line, unwanted, "printed too early: {}", self.report());
        }
    }

    /// Closes stdin (the program releases and exits) and waits for a
    /// clean exit.
    async fn leave(mut self, id: &str) {
        drop(self.stdin.take());
        self.expect_line(&format!("EXITED {id}"), HANDOVER).await;
        let status = tokio::time::timeout(HANDOVER, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("did not exit: {}", self.report()))
            .unwrap_or_else(|e| panic!("wait for {}: {e}", self.what));
        assert!(status.success(), "exit status {status}: {}", self.report());
    }
}

/// A tenure backend in `foreign`'s layout under a root of its own, and
/// the ZooKeeper path of its election `svc` (where the foreign program is
/// pointed).
async fn tenure_side(connect: &str, foreign: Foreign, test: &str) -> (Election, String) {
    let root = common::unique_root(test);
    let backend = ZkBackend::connect(common::options(connect, &root).layout(foreign.layout()))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {connect}: {e}"));
    let path = backend
        .election_path(&ElectionName::new("svc").expect("valid name"))
        .expect("election path");
    assert_eq!(path, format!("{root}/svc"));
    let election = Election::builder(Arc::new(backend), "svc")
        .ttl(TTL)
        .build()
        .expect("election");
    (election, path)
}

/// Waits until the election lists `n` candidates.
async fn wait_candidates(e: &Election, n: usize) {
    assert!(
        common::eventually(Duration::from_secs(20), || async {
            e.candidates().await.map(|c| c.len() == n).unwrap_or(false)
        })
        .await,
        "never saw {n} candidates (saw {:?})",
        e.candidates().await
    );
}

/// The foreign participant campaigns first and leads; tenure queues
/// behind it, sees it as the leader (with its identifier as the value),
/// and takes over when it leaves.
async fn foreign_first_then_tenure(foreign: Foreign, test: &str) {
    let zk = common::shared().await;
    let connect = zk.connect_string();
    let (election, path) = tenure_side(&connect, foreign, test).await;
    let id = format!("{test}-foreign");

    let mut other = Participant::spawn(foreign, &connect, &path, &id);
    other.expect_line(&format!("LEADER {id}"), START).await;

    let e2 = election.clone();
    let pending = tokio::spawn(async move { e2.campaign("tenure").await });
    wait_candidates(&election, 2).await;
    let candidates = election.candidates().await.expect("read candidates");
    let infix = match foreign {
        Foreign::Kazoo => "__lock__",
        Foreign::Curator => "-latch-",
    };
    assert!(
        candidates.iter().all(|c| c.key.contains(infix)),
        "{candidates:?}"
    );
    assert_eq!(candidates[0].value, Bytes::from(id.clone()));
    assert_eq!(candidates[1].value, Bytes::from("tenure"));
    let leader = election
        .leader()
        .await
        .expect("read leader")
        .expect("a leader");
    assert_eq!(leader.value, Bytes::from(id.clone()), "{leader:?}");
    tokio::time::sleep(GRACE).await;
    assert!(!pending.is_finished(), "tenure led while {id} did");

    let left = tokio::time::Instant::now();
    other.leave(&id).await;
    let leadership: Leadership = tokio::time::timeout(HANDOVER, pending)
        .await
        .expect("tenure took over in time")
        .expect("campaign task")
        .expect("campaign");
    println!("{foreign:?} -> tenure handover: {:?}", left.elapsed());
    assert!(leadership.is_leader());
    assert!(leadership.token() > leader.token, "fencing token must grow");
    let now = election
        .leader()
        .await
        .expect("read leader")
        .expect("a leader");
    assert_eq!(now.value, Bytes::from("tenure"));
    leadership.resign().await.expect("resign");
}

/// tenure campaigns first and leads; the foreign participant queues
/// behind it without claiming leadership, and leads once tenure resigns.
async fn tenure_first_then_foreign(foreign: Foreign, test: &str) {
    let zk = common::shared().await;
    let connect = zk.connect_string();
    let (election, path) = tenure_side(&connect, foreign, test).await;
    let id = format!("{test}-foreign");

    let leadership = tokio::time::timeout(HANDOVER, election.campaign("tenure"))
        .await
        .expect("tenure elected in time")
        .expect("campaign");

    let mut other = Participant::spawn(foreign, &connect, &path, &id);
    other.expect_line(&foreign.joined(&id), START).await;
    wait_candidates(&election, 2).await;
    let candidates = election.candidates().await.expect("read candidates");
    assert_eq!(candidates[0].value, Bytes::from("tenure"));
    assert_eq!(candidates[1].value, Bytes::from(id.clone()));
    other.refrain(&format!("LEADER {id}"), GRACE).await;
    assert!(leadership.is_leader());

    let resigned = tokio::time::Instant::now();
    leadership.resign().await.expect("resign");
    other.expect_line(&format!("LEADER {id}"), HANDOVER).await;
    println!("tenure -> {foreign:?} handover: {:?}", resigned.elapsed());
    let leader = election
        .leader()
        .await
        .expect("read leader")
        .expect("a leader");
    assert_eq!(leader.value, Bytes::from(id.clone()));
    other.leave(&id).await;
    wait_candidates(&election, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_first_then_tenure() {
    foreign_first_then_tenure(Foreign::Kazoo, "kazoo-first").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenure_first_then_kazoo() {
    tenure_first_then_foreign(Foreign::Kazoo, "tenure-first-kazoo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_first_then_tenure() {
    foreign_first_then_tenure(Foreign::Curator, "curator-first").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenure_first_then_curator() {
    tenure_first_then_foreign(Foreign::Curator, "tenure-first-curator").await;
}
