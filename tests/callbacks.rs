//! `Election::run` with client-go style callbacks, on the in-memory
//! backend under paused tokio time.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenure::memory::{MemoryBackend, MemoryClient};
use tenure::{Callbacks, DynBackend, Election, LossReason};
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_secs(2);

/// What the callbacks saw, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn election(c: &MemoryClient) -> Election {
    let b: DynBackend = Arc::new(c.clone());
    Election::builder(b, "jobs").ttl(TTL).build().unwrap()
}

/// Callbacks that log every call; the work runs until told to stop.
fn logging(log: &Log, who: &'static str) -> Callbacks {
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    Callbacks::new()
        .on_started_leading(move |ctx| {
            let log = l1.clone();
            async move {
                log.push(format!("{who} started token={}", ctx.token()));
                ctx.stopped().await;
                log.push(format!("{who} work stopped leader={}", ctx.is_leader()));
            }
        })
        .on_stopped_leading(move |reason| l2.push(format!("{who} stopped {}", reason.as_str())))
        .on_new_leader(move |leader| {
            let v = leader
                .into_leader()
                .map(|l| String::from_utf8_lossy(&l.value).into_owned());
            l3.push(format!("{who} sees {}", v.as_deref().unwrap_or("none")));
        })
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_the_work_then_resigns_and_the_other_candidate_takes_over() {
    let server = MemoryBackend::new();
    let log = Log::default();
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = tokio::spawn({
        let (e, cb, s) = (
            election(&server.client()),
            logging(&log, "a"),
            stop_a.clone(),
        );
        async move { e.run("a", cb, s).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = tokio::spawn({
        let (e, cb, s) = (
            election(&server.client()),
            logging(&log, "b"),
            stop_b.clone(),
        );
        async move { e.run("b", cb, s).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(log.lines().contains(&"a started token=2".to_string()));
    assert!(!log.lines().iter().any(|l| l.starts_with("b started")));

    stop_a.cancel();
    a.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lines = log.lines();
    let pos = |s: &str| {
        lines
            .iter()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("{s:?} missing from {lines:#?}"))
    };
    // a's work ends before a resigns, so before b can start.
    assert!(pos("a work stopped leader=false") < pos("a stopped resigned"));
    assert!(pos("a work stopped leader=false") < pos("b started token=3"));
    assert!(lines.contains(&"b sees b".to_string()), "{lines:#?}");

    stop_b.cancel();
    b.await.unwrap().unwrap();
    assert_eq!(log.lines().last().unwrap(), "b stopped resigned");
}

#[tokio::test(start_paused = true)]
async fn a_lost_term_stops_the_work_reports_the_reason_and_campaigns_again() {
    let server = MemoryBackend::new();
    let client = server.client();
    let log = Log::default();
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let (e, cb, s) = (election(&client), logging(&log, "a"), stop.clone());
        async move { e.run("a", cb, s).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(log.lines().contains(&"a started token=2".to_string()));

    // Cut the candidate off: it steps down at its deadline, then campaigns
    // again on a fresh session once it can reach the backend.
    client.set_unreachable(true);
    tokio::time::sleep(TTL * 2).await;
    client.set_unreachable(false);
    tokio::time::sleep(TTL * 3).await;
    let lines = log.lines();
    let stopped = format!("a stopped {}", LossReason::DeadlineExceeded.as_str());
    let i = lines.iter().position(|l| *l == stopped);
    assert!(i.is_some(), "{lines:#?}");
    let again = lines
        .iter()
        .skip(i.unwrap())
        .any(|l| l.starts_with("a started token=") && l != "a started token=2");
    assert!(again, "no second term after the loss: {lines:#?}");

    stop.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn work_that_returns_by_itself_resigns_and_ends_the_run() {
    let server = MemoryBackend::new();
    let e = election(&server.client());
    let stopped = Arc::new(Mutex::new(None));
    let s = stopped.clone();
    let cb = Callbacks::new()
        .on_started_leading(|ctx| async move {
            assert!(ctx.is_leader());
            ctx.leadership()
                .guarded_put("jobs-result", "done")
                .await
                .unwrap();
        })
        .on_stopped_leading(move |r| *s.lock().unwrap() = Some(r));
    e.run("a", cb, CancellationToken::new()).await.unwrap();
    assert_eq!(*stopped.lock().unwrap(), Some(LossReason::Resigned));
    assert_eq!(e.leader().await.unwrap(), None, "the entry must be gone");
}

#[tokio::test(start_paused = true)]
async fn a_lost_shared_session_ends_the_run_with_a_lease_error() {
    let server = MemoryBackend::new();
    let session = tenure::Session::new(Arc::new(server.client()), TTL)
        .await
        .unwrap();
    session.close().await;
    let e = Election::builder(Arc::new(server.client()), "jobs")
        .session(session)
        .build()
        .unwrap();
    let r = e.run("a", Callbacks::new(), CancellationToken::new()).await;
    assert!(
        matches!(r, Err(tenure::Error::LeaseExpired { .. })),
        "a closed shared session can never win again: {r:?}"
    );
}
