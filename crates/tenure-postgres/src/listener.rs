//! The backend's listening connection: LISTEN on the schema's channel,
//! fan the notifications out to every watch of the backend, and tell them
//! when the connection is lost.
//!
//! One connection serves all watches of a backend, opened by the first
//! watch and replaced by the first watch after it broke. It is checked by
//! a ping every [`PING_EVERY`]: a connection that stops answering (server
//! paused, network cut) counts as lost, so watches never wait on a
//! silent one.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use futures::future::OptionFuture;
use futures::StreamExt;
use tenure_core::{Error, Result, Revision};
use tokio::sync::{broadcast, Mutex};
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{AsyncMessage, Client};
use tracing::debug;

use crate::connection::{self, Connections};
use crate::error::{self, KIND};
use crate::schema::Names;

/// How often the listening connection is pinged.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(1);

/// Notifications buffered per watch before it falls behind (it then
/// re-reads the change log, which loses nothing).
const CAPACITY: usize = 4096;

/// What the listening connection reports to watches.
#[derive(Clone, Debug)]
pub(crate) enum Notice {
    /// A change to `key` committed at `revision`.
    Change {
        /// The change's revision.
        revision: Revision,
        /// The changed key.
        key: Arc<str>,
    },
    /// The answer to a probe sent when the connection was opened.
    Probe(u64),
    /// The connection is gone: notifications may have been missed.
    Lost,
}

impl Notice {
    fn parse(payload: &str) -> Option<Notice> {
        if let Some(nonce) = payload.strip_prefix("probe ") {
            return nonce.parse().ok().map(Notice::Probe);
        }
        let (revision, key) = payload.split_once(' ')?;
        Some(Notice::Change {
            revision: revision.parse().ok()?,
            key: Arc::from(key),
        })
    }
}

/// One listening connection and its fan-out.
struct Hub {
    sender: broadcast::Sender<Notice>,
    alive: Arc<AtomicBool>,
    task: JoinHandle<()>,
    pid: i32,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The listening connection of a backend, opened on demand.
pub(crate) struct Listener {
    channel: String,
    hub: Mutex<Option<Hub>>,
    pid: AtomicI32,
    probes: StdMutex<u64>,
}

impl Listener {
    pub(crate) fn new(names: &Names) -> Listener {
        Listener {
            channel: names.channel.clone(),
            hub: Mutex::new(None),
            pid: AtomicI32::new(0),
            probes: StdMutex::new(0),
        }
    }

    /// The server pid of the current listening connection.
    pub(crate) fn pid(&self) -> Option<i32> {
        match self.pid.load(Ordering::Relaxed) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// A receiver of every notification from now on, on a connection
    /// that is listening (opened and probed first when needed).
    ///
    /// # Errors
    /// Connection errors; [`Error::InvalidConfig`] when a notification
    /// sent on the new connection does not come back to it (a pooler in
    /// transaction mode between tenure and PostgreSQL).
    pub(crate) async fn subscribe(
        &self,
        conns: &Connections,
    ) -> Result<broadcast::Receiver<Notice>> {
        let mut hub = self.hub.lock().await;
        if let Some(h) = hub.as_ref().filter(|h| h.alive.load(Ordering::Acquire)) {
            return Ok(h.sender.subscribe());
        }
        *hub = None;
        self.pid.store(0, Ordering::Relaxed);
        let (fresh, receiver) = self.open(conns).await?;
        self.pid.store(fresh.pid, Ordering::Relaxed);
        *hub = Some(fresh);
        Ok(receiver)
    }

    async fn open(&self, conns: &Connections) -> Result<(Hub, broadcast::Receiver<Notice>)> {
        let timeout = conns.request_timeout();
        let endpoint = conns.endpoint();
        let map = |e| error::map("listen", endpoint, e);
        let (client, connection) = connection::open(conns.config(), endpoint, timeout).await?;
        let (sender, mut receiver) = broadcast::channel(CAPACITY);
        let alive = Arc::new(AtomicBool::new(true));
        let client = Arc::new(client);
        let task = tokio::spawn(run(
            connection,
            client.clone(),
            sender.clone(),
            alive.clone(),
            timeout,
        ));
        let nonce = {
            let mut n = self.probes.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            u64::from(std::process::id()) << 32 | *n
        };
        let setup = async {
            client
                .batch_execute(&format!("LISTEN \"{}\"", self.channel))
                .await
                .map_err(map)?;
            let row = client
                .query_typed_one(
                    "SELECT pg_backend_pid(), pg_notify($1, $2)",
                    &[
                        (&self.channel, Type::TEXT),
                        (&format!("probe {nonce}"), Type::TEXT),
                    ],
                )
                .await
                .map_err(map)?;
            row.try_get::<_, i32>(0).map_err(map)
        };
        let pid = match tokio::time::timeout(timeout, setup).await {
            Ok(r) => r?,
            Err(_) => {
                task.abort();
                return Err(error::timeout("listen", timeout));
            }
        };
        // The server answered the NOTIFY: a session that listens gets its
        // own notification right after. Behind a pooler in transaction
        // mode, LISTEN and NOTIFY ran on server connections that are not
        // ours, and it never comes.
        let echoed = tokio::time::timeout(timeout, async {
            loop {
                match receiver.recv().await {
                    Ok(Notice::Probe(n)) if n == nonce => return true,
                    Ok(Notice::Lost) | Err(broadcast::error::RecvError::Closed) => return false,
                    _ => {}
                }
            }
        })
        .await;
        match echoed {
            Ok(true) => {}
            Ok(false) => {
                task.abort();
                return Err(Error::Unreachable {
                    backend: KIND,
                    endpoint: endpoint.to_owned(),
                    source: "the listening connection closed while it was set up".into(),
                });
            }
            Err(_) => {
                task.abort();
                return Err(Error::InvalidConfig {
                    field: "host",
                    reason: format!(
                        "a notification sent on the listening connection to {endpoint} never \
                         came back within {timeout:?}: LISTEN/NOTIFY does not work through \
                         this connection. Is a pooler in transaction mode (PgBouncer) in \
                         between? tenure needs a direct connection or session pooling"
                    ),
                });
            }
        }
        debug!(%endpoint, pid, channel = %self.channel, "listening");
        Ok((
            Hub {
                sender,
                alive,
                task,
                pid,
            },
            receiver,
        ))
    }
}

type Ping = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Drives the listening connection: forwards notifications, pings, and
/// reports [`Notice::Lost`] when the connection ends or a ping fails.
async fn run(
    mut connection: tokio_postgres::Connection<
        tokio_postgres::Socket,
        tokio_postgres::tls::NoTlsStream,
    >,
    client: Arc<Client>,
    sender: broadcast::Sender<Notice>,
    alive: Arc<AtomicBool>,
    ping_timeout: Duration,
) {
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let mut ticker = tokio::time::interval(PING_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping: Option<Ping> = None;
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Some(notice) = Notice::parse(n.payload()) {
                        // No receiver is fine: nobody watches right now.
                        let _ = sender.send(notice);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    debug!(error = %e, "listening connection failed");
                    break;
                }
                None => {
                    debug!("listening connection closed");
                    break;
                }
            },
            _ = ticker.tick(), if ping.is_none() => {
                let client = client.clone();
                ping = Some(Box::pin(async move {
                    matches!(
                        tokio::time::timeout(ping_timeout, client.simple_query("")).await,
                        Ok(Ok(_))
                    )
                }));
            }
            Some(ok) = OptionFuture::from(ping.as_mut()), if ping.is_some() => {
                ping = None;
                if !ok {
                    debug!("listening connection did not answer a ping");
                    break;
                }
            }
        }
    }
    alive.store(false, Ordering::Release);
    let _ = sender.send(Notice::Lost);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert!(matches!(
            Notice::parse("42 jobs/a b"),
            Some(Notice::Change { revision: 42, ref key }) if &**key == "jobs/a b"
        ));
        assert!(matches!(Notice::parse("probe 7"), Some(Notice::Probe(7))));
        assert!(Notice::parse("x y").is_none());
        assert!(Notice::parse("12").is_none());
    }
}
