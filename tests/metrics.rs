//! The metrics the driver records, read back through a recorder installed
//! for the test, after a handover and after a partition. Paused tokio
//! time makes every duration exact.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tenure::memory::{MemoryBackend, MemoryClient};
use tenure::metrics as m;
use tenure::{DynBackend, Election};

const TTL: Duration = Duration::from_secs(2);

/// One snapshot, keyed by `name{label=value,...}` (labels sorted).
/// Counters and histograms are what happened since the previous snapshot.
struct Values(HashMap<String, DebugValue>);

impl Values {
    fn take(s: &Snapshotter) -> Values {
        let mut map = HashMap::new();
        for (key, _, _, value) in s.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            map.insert(format!("{}{{{}}}", key.name(), labels.join(",")), value);
        }
        Values(map)
    }

    fn counter(&self, key: &str) -> u64 {
        match self.0.get(key) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            other => panic!("{key} is not a counter: {other:?}"),
        }
    }

    fn gauge(&self, key: &str) -> f64 {
        match self.0.get(key) {
            Some(DebugValue::Gauge(v)) => v.into_inner(),
            other => panic!("{key} is not a recorded gauge: {other:?} in {:?}", self.0),
        }
    }

    fn histogram(&self, key: &str) -> Vec<f64> {
        match self.0.get(key) {
            Some(DebugValue::Histogram(v)) => v.iter().map(|x| x.into_inner()).collect(),
            None => Vec::new(),
            other => panic!("{key} is not a histogram: {other:?}"),
        }
    }
}

fn election(c: &MemoryClient) -> Election {
    let b: DynBackend = Arc::new(c.clone());
    Election::builder(b, "sched").ttl(TTL).build().unwrap()
}

/// Runs `f` on a paused current-thread runtime with `recorder` installed
/// for this thread (every task of that runtime runs on it).
fn with_recorder<F: std::future::Future<Output = ()>>(recorder: &DebuggingRecorder, f: F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(recorder, || rt.block_on(f));
}

#[test]
fn handover_and_partition_are_counted_timed_and_labelled() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    with_recorder(&recorder, async move {
        let server = MemoryBackend::new();
        let (a, b) = (server.client(), server.client());
        let leader = election(&a).campaign("a").await.unwrap();
        let follower = tokio::spawn({
            let e = election(&b);
            async move { e.campaign("b").await.unwrap() }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        leader.resign().await.expect("resign");
        let b_lead = follower.await.unwrap();

        let v = Values::take(&snap);
        assert_eq!(
            v.counter(&format!("{}{{election=sched}}", m::ELECTIONS_WON)),
            2
        );
        assert_eq!(
            v.counter(&format!(
                "{}{{election=sched,reason=resigned}}",
                m::LEADERSHIP_LOST
            )),
            1
        );
        // b's election was the last transition.
        assert_eq!(v.gauge(&format!("{}{{election=sched}}", m::IS_LEADER)), 1.0);
        let term = v.histogram(&format!("{}{{election=sched}}", m::LEADERSHIP_DURATION));
        assert_eq!(term.len(), 1, "{term:?}");
        assert!((term[0] - 5.0).abs() < 0.01, "a led for {term:?} s");
        let mut campaigns = v.histogram(&format!("{}{{election=sched}}", m::CAMPAIGN_DURATION));
        campaigns.sort_by(f64::total_cmp);
        assert_eq!(campaigns.len(), 2, "{campaigns:?}");
        assert!(campaigns[0] < 0.01, "a won at once: {campaigns:?}");
        assert!(
            (campaigns[1] - 5.0).abs() < 0.01,
            "b waited 5 s: {campaigns:?}"
        );
        // Two leases renewed every TTL/3 for 5 s; memory answers at once.
        let rtts = v.histogram(&format!("{}{{backend=memory}}", m::KEEPALIVE_LATENCY));
        assert!(rtts.len() >= 10, "{rtts:?}");
        assert!(rtts.iter().all(|&x| x < 0.01), "{rtts:?}");
        assert_eq!(
            v.counter(&format!("{}{{backend=memory}}", m::KEEPALIVE_FAILURES)),
            0
        );

        // Cut b off: keep-alives fail, b steps down at its deadline.
        b.set_unreachable(true);
        let reason = b_lead.lost().await;
        assert_eq!(reason.as_str(), "deadline_exceeded");
        // The session reports its lease lost once its revoke has failed.
        tokio::time::sleep(TTL).await;
        let v = Values::take(&snap);
        assert_eq!(v.gauge(&format!("{}{{election=sched}}", m::IS_LEADER)), 0.0);
        assert_eq!(
            v.counter(&format!(
                "{}{{election=sched,reason=deadline_exceeded}}",
                m::LEADERSHIP_LOST
            )),
            1
        );
        assert!(v.counter(&format!("{}{{backend=memory}}", m::KEEPALIVE_FAILURES)) >= 1);
        assert_eq!(
            v.counter(&format!(
                "{}{{backend=memory,reason=deadline_exceeded}}",
                m::LEASES_LOST
            )),
            1
        );
    });
}

#[test]
fn an_observer_counts_the_watches_it_had_to_reopen() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    with_recorder(&recorder, async move {
        let server = MemoryBackend::new();
        let c = server.client();
        let mut leaders = election(&c).observe();
        assert_eq!(leaders.next().await.unwrap(), tenure::Observation::NoLeader);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let key = format!("{}{{election=sched,role=observer}}", m::WATCH_RECONNECTS);
        assert_eq!(Values::take(&snap).counter(&key), 0);

        server.drop_watches();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(Values::take(&snap).counter(&key), 1);
    });
}
