//! Keep-alives: a few `LeaseKeepAlive` streams per connection (lanes),
//! each shared by the leases hashed to it.
//!
//! etcd's keep-alive RPC is a bidirectional stream that carries requests
//! for any lease ids and answers each in order, naming the lease. A stream
//! per lease would cost an HTTP/2 stream, a request channel and a reader
//! per candidate (tens of kilobytes each at a thousand candidates); here
//! each of [`LANES`] streams serves every lease hashed to it:
//!
//! - a request registers its waiter under the lease id, then is sent; both
//!   happen under one lock, so the waiters of a lease are queued in the
//!   order their requests went out, and each reply goes to the oldest
//!   waiter of its lease (a waiter that gave up still takes its reply: a
//!   reply never answers a later request than the one it was sent for);
//! - a reader task routes the replies; when the stream fails or ends, every
//!   waiter on it gets the failure at once (none waits for a reply that
//!   cannot come), and the next keep-alive opens a fresh stream;
//! - a reply that does not come within the request timeout retires the
//!   stream for new requests (a stream that stopped answering is not
//!   reused), while requests already on it may still be answered.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard};
use std::time::Duration;

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper};
use tenure_core::{Error, LeaseId, Result};
use tokio::sync::{oneshot, Mutex as AsyncMutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

use crate::error::{self, EtcdError, KIND};

/// How many keep-alive streams a connection spreads its leases over.
///
/// etcd answers the requests of one stream one after the other, and (3.4)
/// each only once every write committed before it is applied. One stream
/// for 10,000 leases with a 6 s TTL (5,000 renewals a second) fell behind
/// while their campaigns wrote: replies came later and later until every
/// lease expired (with 8 streams, over a quarter of them). Each lane is a
/// stream of its own, which etcd serves beside the others; a lease always
/// uses the same lane, so its requests stay in order. A lane's stream is
/// opened by its first keep-alive: a process with a few leases opens a
/// few streams.
const LANES: usize = 64;
const _: () = assert!(LANES.is_power_of_two(), "lane_of takes high bits");

/// The keep-alive streams of one connection, one per lane.
pub(crate) struct KeepAlives {
    client: Client,
    endpoint: String,
    lanes: [Lane; LANES],
}

/// One lane: the stream its leases use, if any.
#[derive(Default)]
struct Lane {
    /// The stream new requests use; `None` until the first keep-alive and
    /// after the current one was retired.
    current: StdMutex<Option<Arc<Stream>>>,
    /// Held while a stream is being opened, so that a thousand leases
    /// renewing at once open one stream, not a thousand.
    opening: AsyncMutex<()>,
}

/// One open keep-alive stream.
struct Stream {
    /// The request half. Its lease id is set before each send; holding
    /// the lock from registering a waiter to sending keeps the waiters of
    /// a lease in the order of their requests.
    sender: AsyncMutex<LeaseKeeper>,
    /// Who waits for which lease's reply, or why the stream ended.
    waiting: Arc<StdMutex<Waiting>>,
    /// The reader routing replies; stopped when the stream is dropped.
    reader: JoinHandle<()>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The waiters of one stream.
#[derive(Default)]
struct Waiting {
    /// Set once the stream has failed or ended: nobody may wait any more.
    ended: Option<Ended>,
    /// Per lease id, the waiters in the order their requests were sent.
    by_lease: HashMap<i64, VecDeque<oneshot::Sender<Reply>>>,
}

/// A keep-alive reply: the TTL etcd reports (`<= 0`: the lease is gone),
/// or how the stream ended before answering.
type Reply = std::result::Result<i64, Ended>;

/// How a stream ended.
#[derive(Clone, Debug)]
enum Ended {
    /// etcd or the connection reported this failure.
    Failed(Arc<etcd_client::Error>),
    /// The stream closed without an error (or was dropped).
    Closed,
}

fn lock<T>(m: &StdMutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl KeepAlives {
    /// No stream yet: the first keep-alive opens one.
    pub(crate) fn new(client: Client, endpoint: String) -> KeepAlives {
        KeepAlives {
            client,
            endpoint,
            lanes: std::array::from_fn(|_| Lane::default()),
        }
    }

    /// Renews `lease` once and returns the TTL etcd granted, all within
    /// `timeout`.
    ///
    /// # Errors
    /// [`Error::LeaseExpired`] when etcd reports the lease gone;
    /// [`Error::Timeout`] when no reply came in time (the stream is then
    /// retired); the stream's failure (typed as for any request, but never
    /// as an expired lease) when it broke before answering: a stream that
    /// was already open is retried once on a fresh one first, since a
    /// reconnect leaves the old stream dead.
    pub(crate) async fn keep_alive(&self, lease: LeaseId, timeout: Duration) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        let timed_out = || error::timeout("keep-alive", timeout);
        let lane = &self.lanes[lane_of(lease)];
        for attempt in 0..2 {
            let (stream, fresh) = tokio::time::timeout_at(deadline, self.stream(lane, lease))
                .await
                .map_err(|_| timed_out())??;
            // Retires the stream if no reply comes: in time here, or before
            // the caller gives up (a session bounds each keep-alive by a
            // third of its TTL, often less than this timeout).
            let waiting = RetireUnlessAnswered {
                lane,
                stream: &stream,
                lease,
            };
            let reply = match tokio::time::timeout_at(deadline, self.request(&stream, lease)).await
            {
                Ok(reply) => {
                    std::mem::forget(waiting);
                    reply
                }
                Err(_) => {
                    drop(waiting);
                    return Err(timed_out());
                }
            };
            match reply {
                Ok(ttl) if ttl <= 0 => return Err(Error::LeaseExpired { lease }),
                Ok(ttl) => return Ok(Duration::from_secs(ttl.unsigned_abs())),
                Err(ended) => {
                    retire(lane, &stream);
                    if !fresh && attempt == 0 {
                        continue;
                    }
                    return Err(self.error(ended));
                }
            }
        }
        Err(error::protocol("keep-alive", "no attempt left"))
    }

    /// `lane`'s stream if it is still usable (`false`: not opened by this
    /// call), or a new one opened with `lease` (`true`).
    async fn stream(&self, lane: &Lane, lease: LeaseId) -> Result<(Arc<Stream>, bool)> {
        if let Some(s) = usable(lane) {
            return Ok((s, false));
        }
        let _opening = lane.opening.lock().await;
        if let Some(s) = usable(lane) {
            return Ok((s, false));
        }
        // Opening is itself one keep-alive round trip for `lease`:
        // etcd-client reads the first reply, and fails with "lease not
        // found" when the lease is gone (`LeaseExpired` for it alone).
        let mut lc = self.client.lease_client();
        let (keeper, replies) = lc.keep_alive(lease.0).await.map_err(|source| {
            Error::from(EtcdError {
                operation: "keep-alive",
                endpoint: self.endpoint.clone(),
                lease: Some(lease),
                source,
            })
        })?;
        let waiting = Arc::new(StdMutex::new(Waiting::default()));
        let reader = tokio::spawn(route_replies(Arc::clone(&waiting), replies));
        let stream = Arc::new(Stream {
            sender: AsyncMutex::new(keeper),
            waiting,
            reader,
        });
        *lock(&lane.current) = Some(Arc::clone(&stream));
        debug!(endpoint = %self.endpoint, "keep-alive stream opened");
        Ok((stream, true))
    }

    /// Sends one keep-alive for `lease` on `stream` and waits for its
    /// reply (or the stream's end).
    async fn request(&self, stream: &Stream, lease: LeaseId) -> Reply {
        let rx = {
            let mut sender = stream.sender.lock().await;
            let rx = {
                let mut waiting = lock(&stream.waiting);
                if let Some(ended) = &waiting.ended {
                    return Err(ended.clone());
                }
                let (tx, rx) = oneshot::channel();
                waiting.by_lease.entry(lease.0).or_default().push_back(tx);
                rx
            };
            sender.id = lease.0;
            if sender.keep_alive().await.is_err() {
                // The request half is closed: the stream is over (the
                // reader fails the waiter registered above, if it has not
                // already).
                return Err(Ended::Closed);
            }
            rx
        };
        rx.await.unwrap_or(Err(Ended::Closed))
    }

    fn error(&self, ended: Ended) -> Error {
        match ended {
            Ended::Failed(source) => error::shared_stream("keep-alive", &self.endpoint, &source),
            Ended::Closed => Error::Unreachable {
                backend: KIND,
                endpoint: self.endpoint.clone(),
                source: "the keep-alive stream ended".into(),
            },
        }
    }
}

/// The lane of `lease`. etcd's lease ids come from a counter shared with
/// its other requests, so their low bits are far from uniform (mostly
/// even, in steps): the id is mixed first (Fibonacci hashing) and the lane
/// taken from the high bits.
fn lane_of(lease: LeaseId) -> usize {
    let mixed = u64::from_ne_bytes(lease.0.to_ne_bytes()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let lane = mixed >> (u64::BITS - LANES.trailing_zeros());
    usize::try_from(lane).unwrap_or(0) % LANES
}

/// A keep-alive sent and not answered yet. Dropped before its reply (it
/// timed out here, or its caller gave up), it retires the stream: a
/// stream that stopped answering is not handed to the next requests,
/// which would wait on it in turn until their leases expired (10,000
/// leases on one etcd under load lost a lane's worth of leases that way).
struct RetireUnlessAnswered<'a> {
    lane: &'a Lane,
    stream: &'a Arc<Stream>,
    lease: LeaseId,
}

impl Drop for RetireUnlessAnswered<'_> {
    fn drop(&mut self) {
        debug!(lease = %self.lease, "no keep-alive reply in time: retiring the stream");
        retire(self.lane, self.stream);
    }
}

/// `lane`'s current stream, unless it has ended.
fn usable(lane: &Lane) -> Option<Arc<Stream>> {
    let current = lock(&lane.current);
    current
        .as_ref()
        .filter(|s| lock(&s.waiting).ended.is_none())
        .cloned()
}

/// Stops handing `stream` to `lane`'s new requests (if it is still the
/// current one). Requests already on it keep waiting for their replies.
fn retire(lane: &Lane, stream: &Arc<Stream>) {
    let mut current = lock(&lane.current);
    if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, stream)) {
        *current = None;
    }
}

/// Hands each reply to the oldest waiter of its lease until the stream
/// fails or ends, then fails every waiter left and every later request.
async fn route_replies(waiting: Arc<StdMutex<Waiting>>, mut replies: LeaseKeepAliveStream) {
    let ended = loop {
        match replies.message().await {
            Ok(Some(reply)) => {
                let waiter = {
                    let mut w = lock(&waiting);
                    let queue = w.by_lease.get_mut(&reply.id());
                    let waiter = queue.and_then(VecDeque::pop_front);
                    if w.by_lease.get(&reply.id()).is_some_and(VecDeque::is_empty) {
                        w.by_lease.remove(&reply.id());
                    }
                    waiter
                };
                match waiter {
                    // A waiter that gave up is gone; its reply goes with it.
                    Some(tx) => {
                        let _ = tx.send(Ok(reply.ttl()));
                    }
                    None => debug!(lease = reply.id(), "keep-alive reply nobody waits for"),
                }
            }
            Ok(None) => break Ended::Closed,
            Err(e) => break Ended::Failed(Arc::new(e)),
        }
    };
    debug!(?ended, "keep-alive stream ended");
    let waiters = {
        let mut w = lock(&waiting);
        w.ended = Some(ended.clone());
        std::mem::take(&mut w.by_lease)
    };
    for tx in waiters.into_values().flatten() {
        let _ = tx.send(Err(ended.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_testkit::etcd_server::EtcdServer;

    /// A keep-alive whose caller gives up before the reply (a session
    /// bounds it by a third of its TTL, under the backend's own timeout)
    /// retires the stream, as one that timed out here does: the next
    /// keep-alive of that lane opens a fresh stream instead of queueing
    /// behind requests that etcd (frozen here) never answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_keep_alive_given_up_by_its_caller_retires_the_stream() {
        let server = EtcdServer::start().await.unwrap();
        let client = Client::connect([server.endpoint()], None).await.unwrap();
        let lease = LeaseId(client.lease_client().grant(10, None).await.unwrap().id());
        let keep_alives = KeepAlives::new(client, server.endpoint());
        let long = Duration::from_secs(5);
        keep_alives.keep_alive(lease, long).await.unwrap();
        let lane = &keep_alives.lanes[lane_of(lease)];
        let first = usable(lane).expect("the first keep-alive opened a stream");

        server.pause().await.unwrap();
        let given_up = tokio::time::timeout(
            Duration::from_millis(300),
            keep_alives.keep_alive(lease, long),
        )
        .await;
        assert!(given_up.is_err(), "etcd is frozen: no reply");
        assert!(usable(lane).is_none(), "the unanswered stream was retired");
        server.resume().await.unwrap();

        keep_alives.keep_alive(lease, long).await.unwrap();
        let second = usable(lane).expect("a fresh stream");
        assert!(!Arc::ptr_eq(&first, &second));
    }

    /// Ids as etcd hands them out (one counter for every request, so
    /// leases granted in a burst are a few steps apart and mostly even)
    /// fill every lane, none with more than twice its share.
    #[test]
    fn leases_granted_in_a_burst_spread_over_every_lane() {
        let mut per_lane = [0usize; LANES];
        let first = 0x62af_a233_2bc0_17ec_i64;
        for i in 0..10_000 {
            per_lane[lane_of(LeaseId(first + 8 * i))] += 1;
        }
        let share = 10_000 / LANES;
        assert!(
            per_lane.iter().all(|&n| n > 0 && n < 2 * share),
            "{per_lane:?}"
        );
    }
}
