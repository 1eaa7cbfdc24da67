//! tenure and `etcdctl elect` (etcd's own Go election) in one election.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use tenure_core::Election;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const TTL: Duration = Duration::from_secs(2);

struct Etcdctl {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Etcdctl {
    fn spawn(server: &tenure_testkit::etcd_server::EtcdServer, args: &[&str]) -> Etcdctl {
        let mut child = server
            .etcdctl_command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("run etcdctl (scripts/install-deps.sh installs it)");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Etcdctl { child, lines }
    }

    async fn line(&mut self, within: Duration) -> String {
        tokio::time::timeout(within, self.lines.next_line())
            .await
            .expect("etcdctl printed nothing in time")
            .unwrap()
            .expect("etcdctl exited")
    }

    /// SIGINT: `etcdctl elect` resigns and exits.
    async fn interrupt(&mut self) {
        let pid = self.child.id().unwrap();
        let st = tokio::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(st.success());
        tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .expect("etcdctl did not exit on SIGINT")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tenure_waits_behind_etcdctl_and_takes_over_when_it_resigns() {
    let server = common::server().await;
    let mut ctl = Etcdctl::spawn(&server, &["elect", "interop", "from-etcdctl"]);
    let key = ctl.line(Duration::from_secs(10)).await;
    assert!(key.starts_with("interop/"), "{key}");
    assert_eq!(ctl.line(Duration::from_secs(2)).await, "from-etcdctl");

    let e = Election::builder(common::dyn_backend(&server.endpoint()).await, "interop")
        .ttl(TTL)
        .build()
        .unwrap();
    let campaign = {
        let e = e.clone();
        tokio::spawn(async move { e.campaign("from-tenure").await })
    };
    let queued = common::eventually(Duration::from_secs(5), || async {
        e.candidates().await.map(|c| c.len() == 2).unwrap_or(false)
    })
    .await;
    assert!(queued);
    // etcdctl's entry leads; tenure agrees.
    let leader = e.leader().await.unwrap().unwrap();
    assert_eq!(leader.key, key);
    assert_eq!(&leader.value[..], b"from-etcdctl");
    assert!(!campaign.is_finished());

    let t0 = Instant::now();
    ctl.interrupt().await;
    let l = tokio::time::timeout(Duration::from_secs(5), campaign)
        .await
        .expect("tenure did not take over after etcdctl resigned")
        .unwrap()
        .unwrap();
    println!("etcdctl resign -> tenure elected: {:?}", t0.elapsed());
    assert!(l.is_leader());
    assert!(l.token() > leader.token);
}

#[tokio::test(flavor = "multi_thread")]
async fn etcdctl_waits_behind_tenure_and_observes_its_proposal() {
    let server = common::server().await;
    let e = Election::builder(common::dyn_backend(&server.endpoint()).await, "interop2")
        .ttl(TTL)
        .build()
        .unwrap();
    let l = e.campaign("tenure-proposal").await.unwrap();

    // `etcdctl elect -l` shows tenure's leader.
    let mut obs = Etcdctl::spawn(&server, &["elect", "-l", "interop2"]);
    assert_eq!(obs.line(Duration::from_secs(10)).await, l.entry().key);
    assert_eq!(obs.line(Duration::from_secs(2)).await, "tenure-proposal");

    // A proclaimed proposal shows too (same key, new value).
    l.proclaim("tenure-proclaimed").await.unwrap();
    assert_eq!(obs.line(Duration::from_secs(5)).await, l.entry().key);
    assert_eq!(obs.line(Duration::from_secs(2)).await, "tenure-proclaimed");

    // etcdctl campaigns and waits behind tenure...
    let mut ctl = Etcdctl::spawn(&server, &["elect", "interop2", "from-etcdctl"]);
    let queued = common::eventually(Duration::from_secs(5), || async {
        e.candidates().await.map(|c| c.len() == 2).unwrap_or(false)
    })
    .await;
    assert!(queued, "etcdctl's entry did not appear");
    let cands = e.candidates().await.unwrap();
    assert_eq!(cands[0].key, l.entry().key);
    assert_eq!(&cands[1].value[..], b"from-etcdctl");

    // ...and wins once tenure resigns.
    let t0 = Instant::now();
    l.resign().await.expect("resign");
    let key = ctl.line(Duration::from_secs(5)).await;
    println!("tenure resign -> etcdctl elected: {:?}", t0.elapsed());
    assert_eq!(key, cands[1].key);
    assert_eq!(ctl.line(Duration::from_secs(2)).await, "from-etcdctl");
    let leader = e.leader().await.unwrap().unwrap();
    assert_eq!(&leader.value[..], b"from-etcdctl");
    ctl.interrupt().await;
}

/// A nested election (`jobs/shard-7`) keeps out of `jobs/`, the range
/// etcd's recipe lists as the queue of `jobs`: with tenure leading the
/// nested election, `etcdctl elect jobs` is elected at once, and tenure's
/// reader of `jobs` agrees. The nested election is reachable from etcdctl
/// under its escaped name.
#[tokio::test(flavor = "multi_thread")]
async fn nested_elections_never_block_etcdctl_elect_of_the_parent() {
    let server = common::server().await;
    let backend = common::dyn_backend(&server.endpoint()).await;
    let nested = Election::builder(backend.clone(), "jobs/shard-7")
        .ttl(TTL)
        .build()
        .unwrap();
    let leadership = nested.campaign("N").await.unwrap();

    let mut ctl = Etcdctl::spawn(&server, &["elect", "jobs", "G"]);
    let key = ctl.line(Duration::from_secs(10)).await;
    assert!(key.starts_with("jobs/"), "{key}");
    assert_eq!(ctl.line(Duration::from_secs(2)).await, "G");
    let parent = Election::builder(backend, "jobs").ttl(TTL).build().unwrap();
    let leader = parent.leader().await.unwrap().unwrap();
    assert_eq!(
        (leader.key.as_str(), &leader.value[..]),
        (key.as_str(), &b"G"[..])
    );
    assert_eq!(parent.candidates().await.unwrap().len(), 1);

    // `etcdctl elect -l` lists the nested election by its escaped name.
    let mut listen = Etcdctl::spawn(&server, &["elect", "-l", "jobs%2Fshard-7"]);
    let nested_key = listen.line(Duration::from_secs(10)).await;
    assert_eq!(nested_key, nested.leader().await.unwrap().unwrap().key);
    assert_eq!(listen.line(Duration::from_secs(2)).await, "N");
    listen.interrupt().await;
    ctl.interrupt().await;
    drop(leadership);
}
