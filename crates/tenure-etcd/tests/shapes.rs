//! One election, one shape, on a real etcd server: the strategies never
//! share an election, and application keys never pass for candidates.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use tenure_core::{DynBackend, Election, Error, Leadership, Strategy};

const TTL: Duration = Duration::from_secs(2);

fn election(b: &DynBackend, name: &str, strategy: Strategy) -> Election {
    Election::builder(b.clone(), name)
        .ttl(TTL)
        .strategy(strategy)
        .build()
        .unwrap()
}

/// Whether a campaign error is the refusal of a candidate of the other
/// strategy (typed at the backend; the campaign reports it as its cause).
fn refused(e: &Error) -> bool {
    matches!(e, Error::ShapeConflict { .. })
}

/// Candidates of both strategies start at once on one election, round
/// after round: exactly one of them leads, every other one follows or is
/// refused, and readers of both strategies name that one leader.
#[tokio::test(flavor = "multi_thread")]
async fn strategies_racing_for_one_election_elect_one_leader() {
    let server = common::server().await;
    let mut refusals = 0;
    for round in 0..5 {
        let name = format!("race-{round}");
        let mut tasks = Vec::new();
        for i in 0..6 {
            let b = common::dyn_backend(&server.endpoint()).await;
            let strategy = if i % 2 == 0 {
                Strategy::SingleKey
            } else {
                Strategy::Queue
            };
            let e = election(&b, &name, strategy);
            tasks.push(tokio::spawn(async move {
                e.try_campaign(format!("{strategy:?}-{i}")).await
            }));
        }
        let mut leaders: Vec<Leadership> = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(Some(l)) => leaders.push(l),
                Ok(None) => {}
                Err(e) if refused(&e) => refusals += 1,
                Err(e) => panic!("round {round}: unexpected error {e}"),
            }
        }
        assert_eq!(leaders.len(), 1, "round {round}: leaders {leaders:?}");
        let reader = common::dyn_backend(&server.endpoint()).await;
        for strategy in [Strategy::Queue, Strategy::SingleKey] {
            let seen = election(&reader, &name, strategy).leader().await.unwrap();
            assert_eq!(
                seen.map(|l| l.token),
                Some(leaders[0].token()),
                "round {round}: {strategy:?} reader"
            );
        }
    }
    // The refusal path ran: with three of each strategy per round, the
    // strategy that lost the race was refused at least once.
    assert!(refusals > 0, "no candidate was ever refused");
}

/// A key without lease under the election (`<election>/0`, the name etcd's
/// layout gives lease 0) used to lead for `leader()` and block every
/// campaign for good. The leader cannot write it (`KeyInElection`); one
/// written by anybody else is not a candidate: once the leader resigns
/// nobody leads, and the next campaign wins.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_without_lease_in_the_queue_never_wedges_the_election() {
    let server = common::server().await;
    let b = common::dyn_backend(&server.endpoint()).await;
    let e = election(&b, "wedge", Strategy::Queue);
    let a = e.campaign("a").await.unwrap();
    match a.guarded_put("wedge/0", "app").await {
        Err(Error::KeyInElection { key, election }) => {
            assert_eq!((key.as_str(), election.as_str()), ("wedge/0", "wedge"))
        }
        other => panic!("guarded_put into the election's queue: {other:?}"),
    }
    // Written all the same, by a plain client.
    let mut raw = common::connect(&server.endpoint()).await.client();
    raw.put("wedge/0", "app", None).await.unwrap();
    assert_eq!(e.leader().await.unwrap().unwrap().token, a.token());
    a.resign().await.expect("resign");
    assert_eq!(e.leader().await.unwrap(), None, "a key without lease leads");
    let b_lead = tokio::time::timeout(Duration::from_secs(20), e.campaign("b"))
        .await
        .expect("the campaign waited on a key without lease")
        .unwrap();
    assert_eq!(&e.leader().await.unwrap().unwrap().value[..], b"b");
    // The same key at the single leader key: refused, not waited on.
    b_lead.resign().await.expect("resign");
    raw.put("plain", "app", None).await.unwrap();
    let single = election(&b, "plain", Strategy::SingleKey);
    let err = tokio::time::timeout(Duration::from_secs(20), single.campaign("s"))
        .await
        .expect("the single-key campaign waited on a key without lease")
        .unwrap_err();
    assert!(refused(&err), "{err}");
    assert_eq!(single.leader().await.unwrap(), None);
}
