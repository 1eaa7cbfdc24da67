//! `observe_all` on the in-memory backend, under paused tokio time: the
//! shared scenario (found by listing again, the memory backend having no
//! watch for new elections), the "unknown" rule, and bad input.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tenure::memory::MemoryBackend;
use tenure::{DynBackend, Election, Error, Observation, ObserveAll};

#[tokio::test(start_paused = true)]
async fn observe_all_follows_every_election_under_the_prefix() {
    let server = MemoryBackend::new();
    tenure_testkit::all_elections::every_election(
        Arc::new(server.client()),
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await;
}

/// Cut off from the backend, every election's leader turns `Unknown` once
/// the bound has passed without a confirmation, then comes back.
#[tokio::test(start_paused = true)]
async fn every_election_turns_unknown_past_the_bound_and_recovers() {
    let server = MemoryBackend::new();
    let (a, watcher) = (server.client(), server.client());
    let da: DynBackend = Arc::new(a.clone());
    let mut leaders = Vec::new();
    for name in ["p/x", "p/y"] {
        let e = Election::builder(da.clone(), name)
            .ttl(Duration::from_secs(2))
            .build()
            .unwrap();
        leaders.push(e.campaign(name).await.unwrap());
    }
    let mut all = ObserveAll::new(Arc::new(watcher.clone()), "p/")
        .max_staleness(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 2 {
        let o = all.next().await.unwrap();
        assert!(o.observation.leader().is_some(), "{o:?}");
        seen.insert(o.election.to_string(), o.observation);
    }
    watcher.set_unreachable(true);
    let mut unknown = std::collections::HashSet::new();
    while unknown.len() < 2 {
        let o = all.next().await.unwrap();
        match o.observation {
            Observation::Unknown { unconfirmed_for } => {
                assert!(unconfirmed_for >= Duration::from_secs(3));
                unknown.insert(o.election.to_string());
            }
            other => panic!("expected Unknown, got {other:?}"),
        }
    }
    watcher.set_unreachable(false);
    let mut back = std::collections::HashSet::new();
    while back.len() < 2 {
        let o = all.next().await.unwrap();
        assert_eq!(o.observation, seen[o.election.as_str()], "{o:?}");
        back.insert(o.election.to_string());
    }
    for l in leaders {
        l.resign().await.expect("resign");
    }
}

#[tokio::test(start_paused = true)]
async fn bad_prefixes_and_bounds_are_refused() {
    let server = MemoryBackend::new();
    let b: DynBackend = Arc::new(server.client());
    let e = ObserveAll::new(b.clone(), "bad\nname")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidElectionName { .. }), "{e}");
    let e = ObserveAll::new(b, "")
        .max_staleness(Duration::ZERO)
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidConfig {
                field: "max_staleness",
                ..
            }
        ),
        "{e}"
    );
}
