//! The same election scenario on every backend, side by side: first
//! election, five resign hand-overs, and a crash failover, with the
//! requests and watch events each hand-over cost and the leader changes an
//! observer saw.
//!
//! ```sh
//! # starts its own etcd, ZooKeeper and PostgreSQL on free loopback ports
//! # (install them with scripts/install-deps.sh):
//! cargo run --features full --example compare_backends
//! # or use running servers:
//! cargo run --features full --example compare_backends -- \
//!     --etcd 127.0.0.1:2379 --zk 127.0.0.1:2181 --postgres postgres://app@127.0.0.1/app
//! # or only some backends:
//! cargo run --features full --example compare_backends -- --only memory,etcd,postgres
//! # or one backend by its URL, as every example takes it:
//! cargo run --features full --example compare_backends -- --backend etcd://127.0.0.1:2379
//! ```
//!
//! On etcd, ZooKeeper and PostgreSQL the crashed leader is a child process
//! killed with SIGKILL: its lease or session is never revoked, so the
//! successor waits for the backend to expire it. The in-memory backend lives inside one
//! process, so there the leader's connection is cut instead.

#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tenure::memory::MemoryBackend;
use tenure::{DynBackend, Election, Error, Leadership, Observation};
use tenure_testkit::counting::Counting;
use tenure_testkit::etcd_server::EtcdServer;
use tenure_testkit::pg_server::PgServer;
use tenure_testkit::zk_server::ZkServer;

const TTL: Duration = Duration::from_secs(2);
const HANDOVERS: usize = 5;
const ELECTION: &str = "compare";

/// What one backend measured.
struct Row {
    backend: &'static str,
    connect: Duration,
    first_leader: Duration,
    handovers: Vec<Duration>,
    reads_per_handover: f64,
    watch_events_per_handover: f64,
    failover: Duration,
    crash: &'static str,
    observed: Vec<String>,
}

/// How to reach a backend and how to crash a leader on it.
enum Target {
    Memory(MemoryBackend),
    Url(&'static str, String),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Memory(_) => "memory",
            Target::Url(name, _) => name,
        }
    }

    async fn connect(&self) -> tenure::Result<DynBackend> {
        match self {
            Target::Memory(server) => Ok(Arc::new(server.client())),
            Target::Url(_, url) => tenure::connect(url).await,
        }
    }
}

/// A leader that can be crashed: a child process, or a memory client.
enum Crasher {
    Process(Child),
    Memory(tenure::memory::MemoryClient, Leadership),
}

fn election(backend: DynBackend) -> tenure::Result<Election> {
    Election::builder(backend, ELECTION).ttl(TTL).build()
}

fn name_of(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

async fn start_crasher(target: &Target) -> tenure::Result<Crasher> {
    match target {
        Target::Memory(server) => {
            let client = server.client();
            let l = election(Arc::new(client.clone()))?
                .campaign("crasher")
                .await?;
            Ok(Crasher::Memory(client, l))
        }
        Target::Url(_, url) => {
            let exe = std::env::current_exe().map_err(|e| failed("find own executable", e))?;
            let mut child = Command::new(exe)
                .args(["--child", url])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| failed("start the crasher process", e))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| failed("read", "no stdout"))?;
            // Blocking read on a helper thread: the child says when it leads.
            let line = tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            })
            .await
            .map_err(|e| failed("wait for the crasher", e))?
            .map_err(|e| failed("read the crasher", e))?;
            if !line.starts_with("elected") {
                return Err(failed("crasher", format!("said {line:?}")));
            }
            Ok(Crasher::Process(child))
        }
    }
}

fn crash(crasher: Crasher) -> tenure::Result<()> {
    match crasher {
        Crasher::Process(mut child) => {
            child.kill().map_err(|e| failed("kill the crasher", e))?; // SIGKILL
            let _ = child.wait();
        }
        Crasher::Memory(client, leadership) => {
            client.set_unreachable(true);
            std::mem::forget(leadership); // no resign: it is dead
        }
    }
    Ok(())
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidConfig {
        field: "compare_backends",
        reason: format!("{what}: {e}"),
    }
}

async fn scenario(target: &Target) -> tenure::Result<Row> {
    // An observer records every leader change.
    let observed = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut leaders = election(target.connect().await?)?.observe();
    let log = observed.clone();
    let observer = tokio::spawn(async move {
        while let Some(leader) = leaders.next().await {
            let name = match &leader {
                Observation::Unknown { .. } => "unknown".to_string(),
                other => other
                    .leader()
                    .map_or("none".to_string(), |l| name_of(&l.value)),
            };
            log.lock().unwrap_or_else(|e| e.into_inner()).push(name);
        }
    });

    let t = Instant::now();
    let conn_a = Counting::new(target.connect().await?);
    let connect = t.elapsed();
    let conn_b = Counting::new(target.connect().await?);
    let (ea, eb) = (
        election(Arc::new(conn_a.clone()))?,
        election(Arc::new(conn_b.clone()))?,
    );

    let t = Instant::now();
    let mut leader = ea.campaign("alpha").await?;
    let first_leader = t.elapsed();

    // Hand-overs: the other candidate waits; the leader resigns.
    let mut waiting = tokio::spawn({
        let eb = eb.clone();
        async move { eb.campaign("bravo").await }
    });
    let mut handovers = Vec::new();
    let (mut reads, mut events) = (0, 0);
    for round in 0..HANDOVERS {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = (
            conn_a.candidate_reads() + conn_b.candidate_reads(),
            conn_a.watch_events() + conn_b.watch_events(),
        );
        let t = Instant::now();
        let _ = leader.resign().await;
        leader = waiting.await.map_err(|e| failed("join", e))??;
        handovers.push(t.elapsed());
        reads += conn_a.candidate_reads() + conn_b.candidate_reads() - before.0;
        events += conn_a.watch_events() + conn_b.watch_events() - before.1;
        // The one that resigned queues up again.
        let (next, name) = if round % 2 == 0 {
            (ea.clone(), "alpha")
        } else {
            (eb.clone(), "bravo")
        };
        waiting = tokio::spawn(async move { next.campaign(name).await });
    }
    let _ = leader.resign().await;
    if let Ok(Ok(l)) = waiting.await {
        let _ = l.resign().await;
    }

    // Crash failover: the crasher leads, the survivor waits.
    let crasher = start_crasher(target).await?;
    let survivor = tokio::spawn({
        let e = election(target.connect().await?)?;
        async move { e.campaign("survivor").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    crash(crasher)?;
    let survivor = survivor.await.map_err(|e| failed("join", e))??;
    let failover = t.elapsed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = survivor.resign().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    observer.abort();

    let observed = observed.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Row {
        backend: target.name(),
        connect,
        first_leader,
        handovers,
        reads_per_handover: reads as f64 / HANDOVERS as f64,
        watch_events_per_handover: events as f64 / HANDOVERS as f64,
        failover,
        crash: match target {
            Target::Memory(_) => "connection cut",
            Target::Url(..) => "SIGKILL",
        },
        observed,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn print_table(rows: &[Row]) {
    let mut lines: Vec<(String, Vec<String>)> = vec![
        (
            "backend".into(),
            rows.iter().map(|r| r.backend.into()).collect(),
        ),
        (
            "connect".into(),
            rows.iter().map(|r| ms(r.connect)).collect(),
        ),
        (
            "first election".into(),
            rows.iter().map(|r| ms(r.first_leader)).collect(),
        ),
    ];
    let stat = |f: fn(&mut Vec<Duration>) -> Duration| -> Vec<String> {
        rows.iter()
            .map(|r| {
                let mut v = r.handovers.clone();
                v.sort();
                ms(f(&mut v))
            })
            .collect()
    };
    lines.push((
        format!("handover median ({HANDOVERS})"),
        stat(|v| v[v.len() / 2]),
    ));
    lines.push((
        format!("handover max ({HANDOVERS})"),
        stat(|v| v[v.len() - 1]),
    ));
    lines.push((
        "reads per handover".into(),
        rows.iter()
            .map(|r| format!("{:.1}", r.reads_per_handover))
            .collect(),
    ));
    lines.push((
        "watch events per handover".into(),
        rows.iter()
            .map(|r| format!("{:.1}", r.watch_events_per_handover))
            .collect(),
    ));
    lines.push((
        format!("crash failover (TTL {}s)", TTL.as_secs()),
        rows.iter()
            .map(|r| format!("{:.3} s", r.failover.as_secs_f64()))
            .collect(),
    ));
    lines.push((
        "failover - TTL".into(),
        rows.iter()
            .map(|r| format!("{:+.3} s", r.failover.as_secs_f64() - TTL.as_secs_f64()))
            .collect(),
    ));
    lines.push((
        "crash".into(),
        rows.iter().map(|r| r.crash.into()).collect(),
    ));
    let w0 = lines.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
    let w = lines
        .iter()
        .flat_map(|(_, v)| v.iter().map(String::len))
        .max()
        .unwrap_or(0);
    println!();
    for (i, (head, cells)) in lines.iter().enumerate() {
        print!("| {head:<w0$} |");
        for c in cells {
            print!(" {c:>w$} |");
        }
        println!();
        if i == 0 {
            print!("|{}|", "-".repeat(w0 + 2));
            for _ in cells {
                print!("{}:|", "-".repeat(w + 1));
            }
            println!();
        }
    }
    println!();
    println!("Leader changes each observer saw:");
    for r in rows {
        println!("  {:<9} {}", r.backend, r.observed.join(" > "));
    }
}

/// `--child <url>`: campaign, say so, and wait to be killed.
async fn child(url: &str) -> tenure::Result<()> {
    let leadership = election(tenure::connect(url).await?)?
        .campaign("crasher")
        .await?;
    println!("elected {}", leadership.token());
    std::io::stdout().flush().map_err(|e| failed("flush", e))?;
    leadership.lost().await;
    Ok(())
}

#[tokio::main]
async fn main() -> tenure::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(url) = flag("--child") {
        return child(&url).await;
    }
    // `--backend URL`: the scenario on that backend alone, no servers
    // started.
    let backend = flag("--backend");
    let only = match &backend {
        Some(_) => String::new(),
        None => flag("--only").unwrap_or_else(|| "memory,etcd,zookeeper,postgres".into()),
    };
    let wanted = |b: &str| only.split(',').any(|x| x.trim() == b);

    // Servers this run starts (kept alive until the end) and the targets.
    let mut _etcd = None;
    let mut _zk = None;
    let mut _pg = None;
    let mut targets = Vec::new();
    if let Some(url) = backend {
        let name = match tenure::Scheme::of(&url)? {
            tenure::Scheme::Memory => "memory",
            tenure::Scheme::Etcd => "etcd",
            tenure::Scheme::ZooKeeper => "zookeeper",
            tenure::Scheme::Postgres => "postgres",
            _ => "backend",
        };
        targets.push(Target::Url(name, url));
    }
    if wanted("memory") {
        targets.push(Target::Memory(MemoryBackend::new()));
    }
    if wanted("etcd") {
        let endpoint = match flag("--etcd") {
            Some(e) => e,
            None => {
                println!("starting etcd on a free loopback port...");
                let server = EtcdServer::start().await.map_err(|e| {
                    failed(
                        "start etcd (run scripts/install-deps.sh, or pass --etcd HOST:PORT)",
                        e,
                    )
                })?;
                let e = server.endpoint().trim_start_matches("http://").to_string();
                _etcd = Some(server);
                e
            }
        };
        targets.push(Target::Url("etcd", format!("etcd://{endpoint}")));
    }
    if wanted("zookeeper") {
        let connect = match flag("--zk") {
            Some(z) => z,
            None => {
                println!("starting ZooKeeper on a free loopback port...");
                let server = ZkServer::start().await.map_err(|e| {
                    failed(
                        "start ZooKeeper (run scripts/install-deps.sh, or pass --zk HOST:PORT)",
                        e,
                    )
                })?;
                let c = server.connect_string();
                _zk = Some(server);
                c
            }
        };
        targets.push(Target::Url("zookeeper", format!("zk://{connect}")));
    }
    if wanted("postgres") {
        let url = match flag("--postgres") {
            Some(u) => u,
            None => {
                println!("starting PostgreSQL on a free loopback port...");
                let server = PgServer::start().await.map_err(|e| {
                    failed(
                        "start PostgreSQL (run scripts/install-deps.sh, or pass --postgres URL)",
                        e,
                    )
                })?;
                let u = format!("{}?schema=compare", server.url());
                _pg = Some(server);
                u
            }
        };
        targets.push(Target::Url("postgres", url));
    }
    let mut rows = Vec::new();
    for target in &targets {
        println!("running the scenario on {}...", target.name());
        rows.push(scenario(target).await?);
    }
    print_table(&rows);
    Ok(())
}
