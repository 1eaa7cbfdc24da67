//! `Election::run` with client-go style callbacks, on the in-memory
//! backend under paused tokio time.

#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenure::memory::{MemoryBackend, MemoryClient};
use tenure::{Callbacks, DynBackend, Election, LossReason, RunEnd, RunOptions};
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

/// `once`: the first lost term ends the run with its reason; no second
/// campaign starts.
#[tokio::test(start_paused = true)]
async fn once_ends_the_run_with_the_first_loss() {
    let server = MemoryBackend::new();
    let campaigns = Arc::new(Mutex::new(Vec::new()));
    let c = campaigns.clone();
    let expire = server.clone();
    let cb = Callbacks::new()
        .on_campaigning(move |session| c.lock().unwrap().push(session.lease()))
        .on_started_leading(move |ctx| {
            let server = expire.clone();
            async move {
                // The backend ends the lease: the term is lost.
                server.expire_lease(ctx.leadership().entry().lease);
                ctx.stopped().await;
            }
        });
    let end = election(&server.client())
        .run_with(
            "a",
            cb,
            RunOptions::new().once(true),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    // The watch on the entry or the keep-alive tells first.
    assert!(
        matches!(
            end,
            RunEnd::Lost(LossReason::EntryDeleted | LossReason::LeaseExpired)
        ),
        "{end:?}"
    );
    assert_eq!(campaigns.lock().unwrap().len(), 1, "one campaign only");
}

/// `recampaign_after_work`: work that returns by itself (a command that
/// exited) is followed by a new campaign on a fresh lease, each announced
/// by `on_campaigning` with the lease the term then holds.
#[tokio::test(start_paused = true)]
async fn recampaign_after_work_starts_the_next_term() {
    let server = MemoryBackend::new();
    let stop = CancellationToken::new();
    let campaigns = Arc::new(Mutex::new(Vec::new()));
    let terms = Arc::new(Mutex::new(Vec::new()));
    let (c, t, s) = (campaigns.clone(), terms.clone(), stop.clone());
    let cb = Callbacks::new()
        .on_campaigning(move |session| c.lock().unwrap().push(session.lease()))
        .on_started_leading(move |ctx| {
            let (terms, stop) = (t.clone(), s.clone());
            async move {
                let mut terms = terms.lock().unwrap();
                terms.push(ctx.leadership().entry().lease);
                assert_eq!(ctx.lease_ttl(), TTL);
                assert_eq!(&ctx.proposal()[..], b"a");
                if terms.len() == 2 {
                    stop.cancel();
                }
            }
        });
    let options = RunOptions::new().recampaign_after_work(true);
    let end = election(&server.client())
        .run_with("a", cb, options, stop)
        .await
        .unwrap();
    assert_eq!(end, RunEnd::Shutdown);
    let (campaigns, terms) = (campaigns.lock().unwrap(), terms.lock().unwrap());
    assert_eq!(terms.len(), 2, "{terms:?}");
    assert_ne!(terms[0], terms[1], "each term on a fresh lease");
    assert_eq!(
        campaigns[..2],
        terms[..],
        "on_campaigning names the term's lease"
    );
}

/// An unreachable backend at start-up: retried (and told through
/// `on_retry`) by default, the error at once when
/// `retry_before_first_session` is off.
#[tokio::test(start_paused = true)]
async fn start_up_errors_are_retried_or_returned() {
    let server = MemoryBackend::new();
    let client = server.client();
    client.set_unreachable(true);
    let e = election(&client);
    let err = e
        .run_with(
            "a",
            Callbacks::new(),
            RunOptions::new().retry_before_first_session(false),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, tenure::Error::Unreachable { .. }), "{err}");

    let stop = CancellationToken::new();
    let retries = Arc::new(Mutex::new(Vec::new()));
    let (r, s) = (retries.clone(), stop.clone());
    let cb = Callbacks::new().on_retry(move |error, delay| {
        let mut retries = r.lock().unwrap();
        retries.push((error.is_transient(), delay));
        if retries.len() == 3 {
            s.cancel();
        }
    });
    let end = e.run_with("a", cb, RunOptions::new(), stop).await.unwrap();
    assert_eq!(end, RunEnd::Shutdown);
    let retries = retries.lock().unwrap();
    assert_eq!(retries.len(), 3);
    for (i, (transient, delay)) in retries.iter().enumerate() {
        assert!(transient);
        assert!(
            *delay <= tenure::Backoff::RETRY.window(i as u32),
            "{delay:?}"
        );
    }
}

/// With `retry_before_first_session` off, a first grant that timed out
/// (a backend slow under a burst) is still retried: the run goes on to
/// lead once the backend answers in time. `once` keeps returning it.
#[tokio::test(start_paused = true)]
async fn a_first_grant_that_timed_out_is_retried() {
    let server = MemoryBackend::new();
    let client = server.client();
    // Slower than the grant's deadline (TTL / 3).
    client.set_latency(TTL);
    let e = election(&client);
    let err = e
        .run_with(
            "a",
            Callbacks::new(),
            RunOptions::new()
                .retry_before_first_session(false)
                .once(true),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, tenure::Error::Timeout { .. }), "{err}");

    let stop = CancellationToken::new();
    let log = Log::default();
    let (l1, l2, slow) = (log.clone(), log.clone(), client.clone());
    let cb = Callbacks::new()
        .on_retry(move |error, _| {
            let timeout = matches!(error, tenure::Error::Timeout { .. });
            l1.push(format!("retry timeout={timeout}"));
            // The burst is over: the next grant is answered in time.
            slow.set_latency(Duration::ZERO);
        })
        // The work returns at once: the run resigns and ends.
        .on_started_leading(move |ctx| {
            let log = l2.clone();
            async move { log.push(format!("started token={}", ctx.token())) }
        });
    let options = RunOptions::new().retry_before_first_session(false);
    let end = e.run_with("a", cb, options, stop).await.unwrap();
    assert_eq!(end, RunEnd::WorkReturned);
    let lines = log.lines();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("retry timeout=true"),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("started")), "{lines:?}");
}

/// A campaign on a session of its own resigns with one write: revoking
/// the lease deletes the entry and ends the session.
#[tokio::test(start_paused = true)]
async fn resign_on_a_session_of_its_own_is_one_revoke() {
    let server = MemoryBackend::new();
    let client = server.client();
    let e = election(&client);
    let leader = e.campaign("a").await.unwrap();
    let lease = leader.entry().lease;
    let before = client.stats().requests;
    leader.resign().await.unwrap();
    assert_eq!(
        client.stats().requests - before,
        1,
        "one request: the revoke"
    );
    let other = server.client();
    let err = tenure::backend::CoordinationBackend::keep_alive(&other, lease)
        .await
        .unwrap_err();
    assert!(matches!(err, tenure::Error::LeaseExpired { .. }), "{err}");
    assert_eq!(
        e.leader().await.unwrap(),
        None,
        "the entry went with the lease"
    );
}
