//! The scenario every backend runs for
//! [`observe_all`](tenure_core::observe_all): one stream follows every
//! election under a prefix — queue and single-key, nested names, an
//! election created after the stream started — through a hand-over and
//! an election left empty, and never reports an election outside the
//! prefix.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tenure_core::{
    AllLeaders, DynBackend, Election, Leadership, Observation, ObserveAll, Strategy,
};

/// What the stream said last about each election, by name.
type Latest = HashMap<String, Observation>;

/// The leader's proposal in `latest` for `election`: `Some(None)` for "no
/// leader", `None` when nothing (or `Unknown`) was said.
fn shown(latest: &Latest, election: &str) -> Option<Option<String>> {
    match latest.get(election)? {
        Observation::Unknown { .. } => None,
        o => Some(
            o.leader()
                .map(|l| String::from_utf8_lossy(&l.value).into_owned()),
        ),
    }
}

/// Reads `all` until `done(latest)` holds, within `within`; panics on an
/// election outside `prefix` or when time runs out.
async fn until(
    all: &mut AllLeaders,
    latest: &mut Latest,
    prefix: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&Latest) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !done(latest) {
        let next = tokio::time::timeout_at(deadline, all.next()).await;
        let Ok(Some(item)) = next else {
            panic!("{what}: not seen within {within:?}; latest {latest:?}");
        };
        let name = item.election.as_str().to_owned();
        assert!(name.starts_with(prefix), "{name} is outside {prefix}");
        latest.insert(name, item.observation);
    }
}

fn build(backend: &DynBackend, name: &str, ttl: Duration, strategy: Strategy) -> Election {
    Election::builder(backend.clone(), name)
        .ttl(ttl)
        .strategy(strategy)
        .build()
        .unwrap_or_else(|e| panic!("election {name}: {e}"))
}

async fn lead(backend: &DynBackend, name: &str, who: &str, ttl: Duration) -> Leadership {
    lead_with(backend, name, who, ttl, Strategy::Queue).await
}

async fn lead_with(
    backend: &DynBackend,
    name: &str,
    who: &str,
    ttl: Duration,
    strategy: Strategy,
) -> Leadership {
    build(backend, name, ttl, strategy)
        .campaign(who.to_owned())
        .await
        .unwrap_or_else(|e| panic!("campaign {who} in {name}: {e}"))
}

/// Runs the scenario on `backend` with candidates of `ttl`; `within`
/// bounds each wait (only against a hang).
///
/// # Panics
/// When the stream misses or misreports a change.
pub async fn every_election(backend: DynBackend, ttl: Duration, within: Duration) {
    let prefix = format!("all-{:x}/", fastrand::u64(..));
    let name = |s: &str| format!("{prefix}{s}");
    let (a, bc, s, late) = (name("a"), name("b/c"), name("s"), name("late"));
    let outside = format!("outside-{:x}", fastrand::u64(..));

    let a1 = lead(&backend, &a, "a1", ttl).await;
    let a2 = tokio::spawn({
        let e = build(&backend, &a, ttl, Strategy::Queue);
        async move { e.campaign("a2").await }
    });
    let bc1 = lead(&backend, &bc, "bc1", ttl).await;
    let s1 = lead_with(&backend, &s, "s1", ttl, Strategy::SingleKey).await;
    let o1 = lead(&backend, &outside, "o1", ttl).await;

    let mut all = ObserveAll::new(backend.clone(), prefix.clone())
        .max_staleness(ttl)
        .start()
        .await
        .unwrap_or_else(|e| panic!("observe_all: {e}"));
    let mut latest = Latest::new();
    let is = |l: &Latest, e: &str, who: Option<&str>| shown(l, e) == Some(who.map(str::to_owned));
    until(
        &mut all,
        &mut latest,
        &prefix,
        within,
        "the first leaders",
        |l| is(l, &a, Some("a1")) && is(l, &bc, Some("bc1")) && is(l, &s, Some("s1")),
    )
    .await;

    // An election that appears after the stream started.
    let late1 = lead(&backend, &late, "late1", ttl).await;
    until(
        &mut all,
        &mut latest,
        &prefix,
        within,
        "the late election",
        |l| is(l, &late, Some("late1")),
    )
    .await;

    // A hand-over, then an election left without candidates.
    a1.resign().await.expect("resign");
    let a2 = a2
        .await
        .unwrap_or_else(|e| panic!("a2: {e}"))
        .unwrap_or_else(|e| panic!("a2: {e}"));
    until(
        &mut all,
        &mut latest,
        &prefix,
        within,
        "the hand-over",
        |l| is(l, &a, Some("a2")),
    )
    .await;
    bc1.resign().await.expect("resign");
    until(&mut all, &mut latest, &prefix, within, "no leader", |l| {
        is(l, &bc, None)
    })
    .await;
    assert!(!latest.contains_key(&outside));
    for l in [a2, s1, o1, late1] {
        l.resign().await.expect("resign");
    }
}
