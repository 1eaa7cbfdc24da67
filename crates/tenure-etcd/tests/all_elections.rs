//! `observe_all` on a real etcd server: one range read lists the
//! elections, one prefix watch finds new ones.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn observe_all_follows_every_election_under_the_prefix() {
    let server = common::server().await;
    let backend = common::dyn_backend(&server.endpoint()).await;
    tenure_testkit::all_elections::every_election(
        backend,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await;
}

/// The observer cut off from etcd (a proxy black-holing its connection):
/// every election turns `Unknown` once the bound has passed, then shows
/// its leader again when etcd answers. The candidates keep their own
/// connection and stay leaders throughout.
#[tokio::test(flavor = "multi_thread")]
async fn observe_all_says_unknown_while_cut_off_and_recovers() {
    use std::collections::{HashMap, HashSet};
    use tenure_core::{Election, Observation, ObserveAll};
    use tenure_testkit::proxy::{Mode, Proxy};

    let server = common::server().await;
    let candidates = common::dyn_backend(&server.endpoint()).await;
    let target = server.client_addr();
    let proxy = Proxy::start(target).await.unwrap();
    let observer = common::dyn_backend(&format!("http://{}", proxy.local_addr())).await;
    let mut leaders = Vec::new();
    for name in ["cut/x", "cut/y"] {
        let e = Election::builder(candidates.clone(), name)
            .ttl(Duration::from_secs(2))
            .build()
            .unwrap();
        leaders.push(e.campaign(name).await.unwrap());
    }
    let mut all = ObserveAll::new(observer, "cut/")
        .max_staleness(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let mut seen = HashMap::new();
    while seen.len() < 2 {
        let o = next(&mut all).await;
        assert!(o.observation.leader().is_some(), "{o:?}");
        seen.insert(o.election.to_string(), o.observation);
    }
    proxy.set_mode(Mode::Blackhole);
    let mut unknown = HashSet::new();
    while unknown.len() < 2 {
        let o = next(&mut all).await;
        assert!(
            matches!(o.observation, Observation::Unknown { unconfirmed_for } if unconfirmed_for >= Duration::from_secs(2)),
            "{o:?}"
        );
        unknown.insert(o.election.to_string());
    }
    proxy.set_mode(Mode::Pass);
    let mut back = HashSet::new();
    while back.len() < 2 {
        let o = next(&mut all).await;
        assert_eq!(o.observation, seen[o.election.as_str()], "{o:?}");
        back.insert(o.election.to_string());
    }
    for l in leaders {
        l.resign().await.expect("resign");
    }
}

async fn next(all: &mut tenure_core::AllLeaders) -> tenure_core::ElectionObservation {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(30), all.next())
        .await
        .expect("nothing within the bound")
        .expect("the stream ended")
}
