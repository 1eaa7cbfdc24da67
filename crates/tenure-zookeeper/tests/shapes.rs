//! One election, one shape, on a real ZooKeeper server: the single-key
//! node and the Curator and kazoo queues never share an election, and
//! nodes without a session never pass for candidates.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::sync::Arc;
use std::time::Duration;

use tenure_core::{DynBackend, Election, ElectionName, Error, Leadership, Strategy};
use tenure_zookeeper::zookeeper_client as zk;
use tenure_zookeeper::{Layout, ZkBackend};

const TTL: Duration = Duration::from_secs(4);

fn election(b: &DynBackend, name: &str, strategy: Strategy) -> Election {
    Election::builder(b.clone(), name)
        .ttl(TTL)
        .strategy(strategy)
        .build()
        .unwrap()
}

async fn backend(connect: &str, root: &str, layout: Layout) -> DynBackend {
    let b = ZkBackend::connect(common::options(connect, root).layout(layout))
        .await
        .unwrap();
    Arc::new(b)
}

/// Whether a campaign error is the refusal of a candidate of another
/// shape (typed at the backend; the campaign reports it as its cause).
fn refused(e: &Error) -> bool {
    matches!(e, Error::ShapeConflict { .. })
}

/// Single-key, Curator-layout and kazoo-layout candidates start at once on
/// one election, round after round: exactly one leads, every other one
/// follows or is refused, and readers of the winner's shape name it.
#[tokio::test(flavor = "multi_thread")]
async fn shapes_racing_for_one_election_elect_one_leader() {
    let zk = common::shared().await;
    let root = common::unique_root("shape-race");
    let shapes = [
        (Layout::Curator, Strategy::SingleKey),
        (Layout::Curator, Strategy::Queue),
        (Layout::Kazoo, Strategy::Queue),
    ];
    let mut refusals = 0;
    for round in 0..5 {
        let name = format!("race-{round}");
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (layout, strategy) = shapes[i % 3];
            let b = backend(&zk.connect_string(), &root, layout).await;
            let e = election(&b, &name, strategy);
            tasks.push(tokio::spawn(async move {
                (i % 3, e.try_campaign(format!("{i}")).await)
            }));
        }
        let mut leaders: Vec<(usize, Leadership)> = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                (shape, Ok(Some(l))) => leaders.push((shape, l)),
                (_, Ok(None)) => {}
                (_, Err(e)) if refused(&e) => refusals += 1,
                (_, Err(e)) => panic!("round {round}: unexpected error {e}"),
            }
        }
        assert_eq!(leaders.len(), 1, "round {round}: leaders {leaders:?}");
        let (shape, leader) = &leaders[0];
        let (layout, _) = shapes[*shape];
        let reader = backend(&zk.connect_string(), &root, layout).await;
        for strategy in [Strategy::Queue, Strategy::SingleKey] {
            let seen = election(&reader, &name, strategy).leader().await.unwrap();
            assert_eq!(
                seen.map(|l| l.token),
                Some(leader.token()),
                "round {round}: {strategy:?} reader in the {layout:?} layout"
            );
        }
    }
    assert!(refusals > 0, "no candidate was ever refused");
}

/// `nest/leader` would be (or sit under) the single-key node of `nest`:
/// the name is refused. A session-less node left there (by an older
/// release, or any other client) is no leader: readers see none, a
/// single-key candidate is refused at once instead of waiting for good,
/// and a queue candidate is elected.
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_node_without_session_is_no_leader() {
    let zk = common::shared().await;
    let root = common::unique_root("phantom");
    assert!(matches!(
        ElectionName::new("nest/leader"),
        Err(Error::InvalidElectionName { .. })
    ));
    let b = backend(&zk.connect_string(), &root, Layout::Curator).await;
    let raw = zk::Client::connect(&zk.connect_string()).await.unwrap();
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    raw.create(&format!("{root}/nest"), b"", &persistent)
        .await
        .unwrap();
    raw.create(&format!("{root}/nest/leader"), b"", &persistent)
        .await
        .unwrap();
    let single = election(&b, "nest", Strategy::SingleKey);
    assert_eq!(single.leader().await.unwrap(), None, "a phantom leader");
    let err = tokio::time::timeout(Duration::from_secs(20), single.campaign("s"))
        .await
        .expect("the single-key campaign waited on a node without session")
        .unwrap_err();
    assert!(refused(&err), "{err}");
    let queue = election(&b, "nest", Strategy::Queue);
    let l = tokio::time::timeout(Duration::from_secs(20), queue.campaign("q"))
        .await
        .expect("the queue campaign did not win")
        .unwrap();
    assert_eq!(single.leader().await.unwrap().unwrap().token, l.token());
}

/// Keys inside an election cannot be written by its leader
/// (`KeyInElection`), nor nodes named like a candidate anywhere; a
/// session-less node named like a candidate (written by another client)
/// is no candidate: it neither leads nor blocks the next campaign.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_session_in_the_queue_never_wedges_the_election() {
    let zk = common::shared().await;
    let root = common::unique_root("wedge");
    let b = backend(&zk.connect_string(), &root, Layout::Curator).await;
    let e = election(&b, "wedge", Strategy::Queue);
    let a = e.campaign("a").await.unwrap();
    for key in ["wedge/0", "wedge/leader", "other/_c_x-latch-0000000001"] {
        match a.guarded_put(key, "app").await {
            Err(Error::KeyInElection { key: k, .. }) => assert_eq!(k, key),
            other => panic!("guarded_put at {key:?}: {other:?}"),
        }
    }
    let raw = zk::Client::connect(&zk.connect_string()).await.unwrap();
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    raw.create(
        &format!("{root}/wedge/_c_00000000-0000-4000-8000-000000000000-latch-0000000000"),
        b"app",
        &persistent,
    )
    .await
    .unwrap();
    assert_eq!(e.leader().await.unwrap().unwrap().token, a.token());
    a.resign().await.expect("resign");
    assert_eq!(
        e.leader().await.unwrap(),
        None,
        "a node without session leads"
    );
    let b_lead = tokio::time::timeout(Duration::from_secs(20), e.campaign("b"))
        .await
        .expect("the campaign waited on a node without session")
        .unwrap();
    assert_eq!(e.leader().await.unwrap().unwrap().token, b_lead.token());
}
