//! Keep-alives: one `LeaseKeepAlive` stream per connection, shared by
//! every lease kept alive through it.
//!
//! etcd's keep-alive RPC is a bidirectional stream that carries requests
//! for any lease ids and answers each in order, naming the lease. A stream
//! per lease would cost an HTTP/2 stream, a request channel and a reader
//! per candidate (tens of kilobytes each at a thousand candidates); here
//! one stream serves them all:
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

/// The keep-alive streams of one connection: the current one, if any.
pub(crate) struct KeepAlives {
    client: Client,
    endpoint: String,
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
            current: StdMutex::new(None),
            opening: AsyncMutex::new(()),
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
        for attempt in 0..2 {
            let (stream, fresh) = tokio::time::timeout_at(deadline, self.stream(lease))
                .await
                .map_err(|_| timed_out())??;
            let reply = match tokio::time::timeout_at(deadline, self.request(&stream, lease)).await
            {
                Ok(reply) => reply,
                Err(_) => {
                    debug!(%lease, "no keep-alive reply in time: retiring the stream");
                    self.retire(&stream);
                    return Err(timed_out());
                }
            };
            match reply {
                Ok(ttl) if ttl <= 0 => return Err(Error::LeaseExpired { lease }),
                Ok(ttl) => return Ok(Duration::from_secs(ttl.unsigned_abs())),
                Err(ended) => {
                    self.retire(&stream);
                    if !fresh && attempt == 0 {
                        continue;
                    }
                    return Err(self.error(ended));
                }
            }
        }
        Err(error::protocol("keep-alive", "no attempt left"))
    }

    /// The current stream if it is still usable (`false`: not opened by
    /// this call), or a new one opened with `lease` (`true`).
    async fn stream(&self, lease: LeaseId) -> Result<(Arc<Stream>, bool)> {
        if let Some(s) = self.usable() {
            return Ok((s, false));
        }
        let _opening = self.opening.lock().await;
        if let Some(s) = self.usable() {
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
        *lock(&self.current) = Some(Arc::clone(&stream));
        debug!(endpoint = %self.endpoint, "keep-alive stream opened");
        Ok((stream, true))
    }

    /// The current stream, unless it has ended.
    fn usable(&self) -> Option<Arc<Stream>> {
        let current = lock(&self.current);
        current
            .as_ref()
            .filter(|s| lock(&s.waiting).ended.is_none())
            .cloned()
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

    /// Stops handing `stream` to new requests (if it is still the current
    /// one). Requests already on it keep waiting for their replies.
    fn retire(&self, stream: &Arc<Stream>) {
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, stream)) {
            *current = None;
        }
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
