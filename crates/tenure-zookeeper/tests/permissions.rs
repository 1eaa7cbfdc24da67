//! A candidate whose digest identity the election's ACL does not admit
//! gets a typed, permanent error at once: from `campaign`, from `run`,
//! never a retry loop.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

mod common;

use std::sync::Arc;
use std::time::Duration;

use tenure_core::{Callbacks, DynBackend, Election, Error};
use tenure_testkit::counting::Counting;
use tenure_zookeeper::{ZkAcl, ZkBackend};
use tokio_util::sync::CancellationToken;

/// Only a hang guard: every call below answers in milliseconds.
const GUARD: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_the_acl_refuses_fail_once_typed() {
    let zk = common::shared().await;
    let root = common::unique_root("acl-campaign");
    // The owner's candidate creates the election's node, readable and
    // writable by the owner's identity only.
    let owner = ZkBackend::connect(
        common::options(&zk.connect_string(), &root)
            .digest("owner", "pw")
            .acl(ZkAcl::CreatorAll),
    )
    .await
    .unwrap();
    let owner: DynBackend = Arc::new(owner);
    let leader = Election::builder(owner, "jobs")
        .ttl(Duration::from_secs(4))
        .build()
        .unwrap()
        .campaign("owner")
        .await
        .unwrap();

    for (label, options) in [
        (
            "campaign",
            common::options(&zk.connect_string(), &root).digest("intruder", "pw"),
        ),
        ("run", common::options(&zk.connect_string(), &root)),
    ] {
        let intruder = Counting::new(Arc::new(ZkBackend::connect(options).await.unwrap()));
        let election = Election::builder(Arc::new(intruder.clone()), "jobs")
            .ttl(Duration::from_secs(4))
            .build()
            .unwrap();
        let result = if label == "campaign" {
            tokio::time::timeout(GUARD, election.campaign("intruder"))
                .await
                .map(|r| r.map(|_| ()))
        } else {
            let shutdown = CancellationToken::new();
            tokio::time::timeout(GUARD, election.run("intruder", Callbacks::new(), shutdown)).await
        };
        let err = result
            .unwrap_or_else(|_| panic!("{label}: retried a permanent error"))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unauthenticated {
                    backend: "zookeeper",
                    ..
                }
            ),
            "{label}: expected Unauthenticated, got {err:?}"
        );
        assert!(!err.is_transient(), "{label}: {err}");
        assert!(err.to_string().contains(&zk.connect_string()), "{err}");
        // Refused once, not tried again.
        assert_eq!(
            intruder.counts().writes,
            1,
            "{label}: {:?}",
            intruder.counts()
        );
    }
    assert!(leader.is_leader(), "the owner's term is untouched");
    let _ = leader.resign().await;
}

/// Entries are created with the backend's ACL: under
/// [`ZkAcl::CreatorAllWorldRead`] another digest identity, or a client
/// without credentials, can read the candidate but not delete it (in
/// ZooKeeper the right to delete a node is the parent's `DELETE`
/// permission); the owner's own identity can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_identity_cannot_delete_an_entry() {
    use zookeeper_client as zk;
    let zk_server = common::shared().await;
    let root = common::unique_root("acl-delete");
    let owner = ZkBackend::connect(
        common::options(&zk_server.connect_string(), &root)
            .digest("owner", "pw")
            .acl(ZkAcl::CreatorAllWorldRead),
    )
    .await
    .unwrap();
    let leader = Election::builder(Arc::new(owner), "jobs")
        .ttl(Duration::from_secs(4))
        .build()
        .unwrap()
        .campaign("owner")
        .await
        .unwrap();
    let path = format!("{root}/{}", leader.entry().key);

    let client = |auth: Option<&str>| {
        let mut connector = zk::Client::connector();
        if let Some(auth) = auth {
            connector = connector.with_auth("digest", auth.as_bytes());
        }
        let connect = zk_server.connect_string();
        async move { connector.connect(&connect).await.unwrap() }
    };
    for (who, auth) in [
        ("another identity", Some("intruder:pw")),
        ("anonymous", None),
    ] {
        let c = client(auth).await;
        // It can see the entry (world read) ...
        let (data, _) = tokio::time::timeout(GUARD, c.get_data(&path))
            .await
            .expect("read hung")
            .unwrap();
        assert_eq!(&data[..], b"owner", "{who}");
        // ... but not delete it.
        let refused = tokio::time::timeout(GUARD, c.delete(&path, None))
            .await
            .expect("delete hung");
        assert!(
            matches!(refused, Err(zk::Error::NoAuth)),
            "{who}: {refused:?}"
        );
        assert!(
            c.check_stat(&path).await.unwrap().is_some(),
            "{who}: the entry is still there"
        );
    }
    assert!(leader.is_leader(), "the owner's term is untouched");
    // The same delete with the owner's identity goes through: the refusal
    // above was the ACL's.
    let own = client(Some("owner:pw")).await;
    own.delete(&path, None).await.unwrap();
    assert!(own.check_stat(&path).await.unwrap().is_none());
    drop(leader);
}
