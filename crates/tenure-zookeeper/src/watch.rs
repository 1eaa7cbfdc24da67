//! ZooKeeper watches as tenure watch streams.
//!
//! ZooKeeper watches fire once, carry no data and (before 3.9) no zxid,
//! and cannot start from a revision. So each stream is a small task that
//! compares what it reads against what it has already reported, and turns
//! every difference into an event:
//!
//! - **Key** (`exists`/`getData` watch on that one node, re-armed after
//!   each event, after a deletion only once the reader asks for more;
//!   only the watched node's change wakes the watcher, so a queue of
//!   candidates each watching its predecessor has no herd):
//!   - on arming, a node whose `mzxid >= from` (changed since the caller's
//!     read) is reported as [`WatchEvent::Put`]; a node that is absent is
//!     reported as [`WatchEvent::Delete`] if we had seen it, or if its
//!     deepest existing ancestor's `pzxid >= from` (something was created
//!     or deleted below it since `from`, possibly our node: reporting a
//!     delete that did not happen is safe, missing one is not);
//!   - a node replaced by another (new `czxid`) is reported as a delete
//!     and a put.
//!
//!   One-shot watches survive disconnections: the client re-registers
//!   them with the last zxid it saw and the server fires those whose node
//!   changed meanwhile. Only session expiry loses them:
//!   [`WatchEvent::HistoryLost`], then the stream ends.
//! - **Election** (one persistent recursive watch on the election node,
//!   ZooKeeper ≥ 3.6): the state is read after the watch is set, entries
//!   with `mzxid >= from` are reported as puts; if the election node's
//!   `pzxid >= from` a candidate may have been deleted since `from`, which
//!   no read can tell, so the stream starts with
//!   [`WatchEvent::HistoryLost`]. Afterwards every created, changed or
//!   deleted candidate is reported. Persistent watches are re-registered
//!   after a reconnection *without* the events missed meanwhile
//!   (ZOOKEEPER-4698), so any disconnection, like session expiry, ends
//!   the stream with [`WatchEvent::HistoryLost`].
//!
//! A key watch reports a notified deletion at once, before any read (a
//! successor waiting on its predecessor acts on the notification itself),
//! at the zxid the server sent with it (ZooKeeper ≥ 3.9) or else at the
//! first revision the stream has not reported yet: a lower bound of the
//! deletion's zxid. A node found absent when (re-)arming is reported at
//! the `pzxid` of its parent, read in the same atomic multi-read: at least
//! the deletion's zxid, and older than any later re-creation. Either way
//! the revision lies after every earlier event of the stream and no later
//! than the first read that shows the node absent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;

use futures::StreamExt;
use tenure_core::{Entry, Result, Revision, WatchEvent, WatchStream};
use tokio::sync::{mpsc, Notify};
use zookeeper_client as zk;

use crate::error::Ctx;
use crate::paths::{parent_of, Names};
use crate::read::{self, ancestor_revision, entry, multi_read, zxid, Read};
use crate::retry::answer;

/// What a watch task knows of the backend it serves: where keys live,
/// and the endpoint its errors name.
pub(crate) struct Origin {
    pub(crate) names: Names,
    pub(crate) endpoint: String,
}

impl Origin {
    /// The context of errors from `operation`.
    fn ctx(&self, operation: &'static str) -> Ctx<'_> {
        Ctx {
            operation,
            endpoint: &self.endpoint,
            lease: None,
        }
    }
}

type Tx = mpsc::Sender<Result<WatchEvent>>;

/// Buffer of a watch stream: a slow reader pauses the task (the events
/// wait in ZooKeeper's state, not in memory).
const BUFFER: usize = 64;

fn stream(rx: mpsc::Receiver<Result<WatchEvent>>) -> WatchStream {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// How far the reader of a key watch has read: the number of events it
/// had taken when it last asked for more and found none, and a wake-up
/// for the task when it asks.
///
/// After a deletion the task re-arms only once the reader asks for more:
/// a campaign drops its watch of a deleted predecessor and reads at once,
/// and an existence watch set in between would only queue ahead of that
/// read on the shared session (then be removed). Arming late misses
/// nothing: arming reads the node and reports what changed since.
#[derive(Default)]
struct Demand {
    asked_after: AtomicU64,
    asked: Notify,
}

impl Demand {
    /// Waits until the reader has taken `sent` events and asks for more
    /// (`true`), or has gone (`false`).
    async fn more_after(&self, sent: u64, tx: &Tx) -> bool {
        loop {
            let notified = self.asked.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.asked_after.load(Ordering::Acquire) >= sent {
                return true;
            }
            tokio::select! {
                () = tx.closed() => return false,
                () = notified => {}
            }
        }
    }
}

/// A key watch's stream: tells the task each time the reader finds no
/// event waiting ([`Demand`]).
fn demanding_stream(
    mut rx: mpsc::Receiver<Result<WatchEvent>>,
    demand: Arc<Demand>,
) -> WatchStream {
    let mut taken: u64 = 0;
    futures::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
        Poll::Ready(Some(item)) => {
            taken += 1;
            Poll::Ready(Some(item))
        }
        Poll::Ready(None) => Poll::Ready(None),
        Poll::Pending => {
            demand.asked_after.store(taken, Ordering::Release);
            demand.asked.notify_one();
            Poll::Pending
        }
    })
    .boxed()
}

/// Sends, or reports that the reader has gone.
async fn send(tx: &Tx, event: Result<WatchEvent>) -> bool {
    tx.send(event).await.is_ok()
}

/// How a wait for a one-shot watch ended.
enum Woken {
    /// The node changed: look again.
    Changed(zk::WatchedEvent),
    /// The session ended: the watch is gone for good.
    SessionLost,
    /// The reader dropped the stream.
    Closed,
}

async fn wait(tx: &Tx, watcher: zk::OneshotWatcher) -> Woken {
    tokio::select! {
        ev = watcher.changed() => {
            if ev.event_type == zk::EventType::Session && ev.session_state.is_terminated() {
                Woken::SessionLost
            } else {
                Woken::Changed(ev)
            }
        }
        () = tx.closed() => Woken::Closed,
    }
}

/// Watches one key: see the module documentation. The watch is armed
/// (and any change since `from` queued) before this returns, so changes
/// made after it returns are never compared against a later state.
pub(crate) async fn key(
    origin: Origin,
    client: zk::Client,
    key: String,
    path: String,
    from: Revision,
) -> Result<WatchStream> {
    let (tx, rx) = mpsc::channel(BUFFER);
    let demand = Arc::new(Demand::default());
    let mut state = KeyWatch {
        key,
        path,
        next: from,
        known: None,
        sent: 0,
        demand: demand.clone(),
    };
    let first = state.arm(&origin, &client, &tx).await?;
    tokio::spawn(async move {
        let mut armed = first;
        loop {
            let watcher = match armed {
                Armed::Watching(w) => w,
                Armed::Done => return,
            };
            let rearmed = match wait(&tx, watcher).await {
                Woken::Changed(ev) if ev.event_type == zk::EventType::NodeDeleted => {
                    state.on_deleted(&origin, &client, &tx, ev.zxid).await
                }
                Woken::Changed(_) => state.arm(&origin, &client, &tx).await,
                Woken::SessionLost => {
                    let _ = send(&tx, Ok(WatchEvent::HistoryLost)).await;
                    return;
                }
                Woken::Closed => return,
            };
            armed = match rearmed {
                Ok(a) => a,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
        }
    });
    Ok(demanding_stream(rx, demand))
}

/// What a key watch knows.
struct KeyWatch {
    key: String,
    path: String,
    /// First revision not yet reported.
    next: Revision,
    /// (czxid, mzxid) of the node as last reported or known to the reader.
    known: Option<(i64, i64)>,
    /// Events sent to the reader so far.
    sent: u64,
    /// What the reader has taken.
    demand: Arc<Demand>,
}

/// Outcome of arming a one-shot watch.
enum Armed {
    Watching(zk::OneshotWatcher),
    /// The stream is over (reader gone, or session lost and reported).
    Done,
}

impl KeyWatch {
    /// Sends `event`, counted; `false` when the reader has gone.
    async fn send(&mut self, tx: &Tx, event: WatchEvent) -> bool {
        let sent = send(tx, Ok(event)).await;
        self.sent += u64::from(sent);
        sent
    }

    /// Reads the node with a watch, reports what changed since the last
    /// report, and returns the armed watch.
    async fn arm(&mut self, origin: &Origin, client: &zk::Client, tx: &Tx) -> Result<Armed> {
        let ctx = origin.ctx("watch");
        loop {
            match client.get_and_watch_data(&self.path).await {
                Ok((data, stat, watcher)) => {
                    if let Some((czxid, _)) = self.known {
                        if czxid != stat.czxid {
                            // Replaced: the old node was deleted before the
                            // new one was created.
                            let revision = zxid(stat.czxid).saturating_sub(1).max(self.next);
                            let deleted = WatchEvent::Delete {
                                key: self.key.clone(),
                                revision,
                            };
                            if !self.send(tx, deleted).await {
                                return Ok(Armed::Done);
                            }
                            self.next = self.next.max(revision + 1);
                        }
                    }
                    let changed = self.known != Some((stat.czxid, stat.mzxid));
                    if changed && zxid(stat.mzxid) >= self.next {
                        let e: Entry = entry(self.key.clone(), data, &stat);
                        self.next = e.modified + 1;
                        if !self.send(tx, WatchEvent::Put(e)).await {
                            return Ok(Armed::Done);
                        }
                    }
                    self.known = Some((stat.czxid, stat.mzxid));
                    return Ok(Armed::Watching(watcher));
                }
                Err(zk::Error::NoNode) => match self.absent_since(origin, client).await? {
                    // Created in between: read it with a data watch.
                    None => continue,
                    Some(revision) => {
                        if !self.report_absent(tx, revision).await {
                            return Ok(Armed::Done);
                        }
                        match self.watch_absent(origin, client, tx).await? {
                            Some(armed) => return Ok(armed),
                            None => continue,
                        }
                    }
                },
                Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(zk::Error::SessionExpired | zk::Error::ClientClosed) => {
                    let _ = send(tx, Ok(WatchEvent::HistoryLost)).await;
                    return Ok(Armed::Done);
                }
                Err(e) => return Err(ctx.error(e)),
            }
        }
    }

    /// The watched node's deletion was notified (`event_zxid`: the
    /// deletion's zxid, or [`zk::WatchedEvent::NO_ZXID`] before ZooKeeper
    /// 3.9): reports it at once, before any read, then re-arms.
    ///
    /// Without the zxid, the deletion is reported at the first revision
    /// not yet reported: a lower bound of its zxid (it came after every
    /// state this watch has seen). A reader that resumes from there sees
    /// some changes twice, never misses one; a re-creation has a later
    /// zxid and is reported as a put.
    async fn on_deleted(
        &mut self,
        origin: &Origin,
        client: &zk::Client,
        tx: &Tx,
        event_zxid: i64,
    ) -> Result<Armed> {
        let revision = if event_zxid > 0 {
            zxid(event_zxid)
        } else {
            self.next
        };
        if !self.report_absent(tx, revision).await || !self.demand.more_after(self.sent, tx).await {
            return Ok(Armed::Done);
        }
        match self.watch_absent(origin, client, tx).await? {
            Some(armed) => Ok(armed),
            None => self.arm(origin, client, tx).await,
        }
    }

    /// Reads the node and its parent in one atomic multi-read: `None` if
    /// the node exists, otherwise a revision at which it was absent (the
    /// parent's `pzxid`: at least the zxid of its deletion, and older than
    /// any creation after the read).
    async fn absent_since(&self, origin: &Origin, client: &zk::Client) -> Result<Option<Revision>> {
        let ctx = origin.ctx("watch");
        let ops = [Read::Data(&self.path), Read::Data(parent_of(&self.path))];
        let mut it = multi_read(client, &ops, ctx).await?.into_iter();
        match (it.next(), it.next()) {
            (Some(zk::MultiReadResult::Data { .. }), _) => Ok(None),
            (_, Some(zk::MultiReadResult::Data { stat, .. })) => Ok(Some(zxid(stat.pzxid))),
            // No parent either: the deepest ancestor's pzxid (any
            // re-creation must first create the parent, after it).
            _ => Ok(Some(ancestor_revision(client, &self.path, ctx).await?)),
        }
    }

    /// Reports that the node is absent as of `revision`, if that is news.
    /// Returns `false` when the reader has gone.
    async fn report_absent(&mut self, tx: &Tx, revision: Revision) -> bool {
        if self.known.is_some() || revision >= self.next {
            let revision = revision.max(self.next);
            let deleted = WatchEvent::Delete {
                key: self.key.clone(),
                revision,
            };
            if !self.send(tx, deleted).await {
                return false;
            }
            self.next = revision + 1;
        }
        self.known = None;
        true
    }

    /// Arms an existence watch on the absent node. `None` when the node
    /// has been created since it was found absent (read it again).
    async fn watch_absent(
        &mut self,
        origin: &Origin,
        client: &zk::Client,
        tx: &Tx,
    ) -> Result<Option<Armed>> {
        let ctx = origin.ctx("watch");
        match answer(|| client.check_and_watch_stat(&self.path)).await {
            Ok((Some(_), _)) => Ok(None),
            Ok((None, watcher)) => Ok(Some(Armed::Watching(watcher))),
            Err(zk::Error::SessionExpired | zk::Error::ClientClosed) => {
                let _ = send(tx, Ok(WatchEvent::HistoryLost)).await;
                Ok(Some(Armed::Done))
            }
            Err(e) => Err(ctx.error(e)),
        }
    }
}

/// Watches an election's candidates: see the module documentation.
pub(crate) async fn election(
    origin: Origin,
    client: zk::Client,
    dir: String,
    from: Revision,
) -> Result<WatchStream> {
    let ctx = origin.ctx("watch");
    let watcher = client
        .watch(&dir, zk::AddWatchMode::PersistentRecursive)
        .await
        .map_err(|e| ctx.error(e))?;
    let (tx, rx) = mpsc::channel(BUFFER);
    // The state after the watch was set, read before returning.
    let snapshot =
        read::candidates(&client, &origin.names, &dir, origin.ctx("read candidates")).await?;
    // Did a candidate come or go since `from`? Comings are in the read;
    // goings are not, and no read can tell them.
    let child_change = match client.check_stat(&dir).await {
        Ok(Some(stat)) => zxid(stat.pzxid),
        Ok(None) => ancestor_revision(&client, &dir, ctx).await?,
        Err(e) => return Err(ctx.error(e)),
    };
    let mut known: HashMap<String, (Revision, Revision)> = HashMap::new();
    let mut last = from.saturating_sub(1);
    let mut initial = Vec::new();
    if child_change >= from {
        initial.push(WatchEvent::HistoryLost);
    } else {
        for e in snapshot.entries {
            known.insert(e.key.clone(), (e.created, e.modified));
            if e.modified >= from {
                last = last.max(e.modified);
                initial.push(WatchEvent::Put(e));
            }
        }
    }
    tokio::spawn(async move {
        for ev in initial {
            let lost = ev == WatchEvent::HistoryLost;
            if !send(&tx, Ok(ev)).await || lost {
                return;
            }
        }
        if let Err(e) = run_election(&origin, &client, &dir, watcher, known, last, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    Ok(stream(rx))
}

async fn run_election(
    origin: &Origin,
    client: &zk::Client,
    dir: &str,
    mut watcher: zk::PersistentWatcher,
    mut known: HashMap<String, (Revision, Revision)>,
    mut last: Revision,
    tx: &Tx,
) -> Result<()> {
    let ctx = origin.ctx("watch");
    let layout = origin.names.layout();
    loop {
        let ev = tokio::select! {
            ev = watcher.changed() => ev,
            () = tx.closed() => return Ok(()),
        };
        if ev.event_type == zk::EventType::Session {
            if ev.session_state == zk::SessionState::SyncConnected
                || ev.session_state == zk::SessionState::ConnectedReadOnly
            {
                continue;
            }
            // Disconnected (events may be missed until re-registration)
            // or a terminal state (the watcher must not be polled again).
            let _ = send(tx, Ok(WatchEvent::HistoryLost)).await;
            return Ok(());
        }
        // Only direct children that are candidates of our layout.
        if parent_of(&ev.path) != dir {
            continue;
        }
        let name = &ev.path[dir.len() + 1..];
        if layout.sequence(name).is_none() {
            continue;
        }
        let deleted = match ev.event_type {
            zk::EventType::NodeDeleted => true,
            zk::EventType::NodeCreated | zk::EventType::NodeDataChanged => {
                match client.get_data(&ev.path).await {
                    Ok((data, stat)) => {
                        let e = entry(origin.names.relative(&ev.path), data, &stat);
                        let state = (e.created, e.modified);
                        // A persistent node (no session) is never a
                        // candidate, whatever its name.
                        if e.lease.0 != 0 && known.get(&e.key) != Some(&state) {
                            known.insert(e.key.clone(), state);
                            last = last.max(e.modified);
                            if !send(tx, Ok(WatchEvent::Put(e))).await {
                                return Ok(());
                            }
                        }
                        false
                    }
                    // Gone already: its deletion event follows.
                    Err(zk::Error::NoNode) => false,
                    Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => {
                        let _ = send(tx, Ok(WatchEvent::HistoryLost)).await;
                        return Ok(());
                    }
                    Err(e) => return Err(ctx.error(e)),
                }
            }
            _ => false,
        };
        if deleted {
            let key = origin.names.relative(&ev.path);
            known.remove(&key);
            let revision = match client.check_stat(dir).await {
                Ok(Some(stat)) => zxid(stat.pzxid),
                Ok(None) => ancestor_revision(client, dir, ctx).await?,
                Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => {
                    let _ = send(tx, Ok(WatchEvent::HistoryLost)).await;
                    return Ok(());
                }
                Err(e) => return Err(ctx.error(e)),
            }
            .max(last + 1);
            last = revision;
            let deleted = WatchEvent::Delete { key, revision };
            if !send(tx, Ok(deleted)).await {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn deleted() -> Result<WatchEvent> {
        Ok(WatchEvent::Delete {
            key: "k".into(),
            revision: 7,
        })
    }

    /// A key watch's channel and stream, and the task's side of it.
    fn channel() -> (Tx, WatchStream, Arc<Demand>) {
        let (tx, rx) = mpsc::channel(BUFFER);
        let demand = Arc::new(Demand::default());
        (tx, demanding_stream(rx, demand.clone()), demand)
    }

    #[tokio::test]
    async fn a_reader_that_drops_the_stream_after_the_event_wants_no_more() {
        let (tx, mut stream, demand) = channel();
        // The reader was already waiting when the event came: that wait
        // is not a request for what follows the event.
        assert!(stream.next().now_or_never().is_none());
        assert!(send(&tx, deleted()).await);
        assert!(matches!(
            stream.next().await,
            Some(Ok(WatchEvent::Delete { .. }))
        ));
        let more = demand.more_after(1, &tx);
        tokio::pin!(more);
        assert!(
            more.as_mut().now_or_never().is_none(),
            "asked before it took the event"
        );
        drop(stream);
        assert!(!more.await);
    }

    #[tokio::test]
    async fn a_reader_that_asks_again_after_the_event_wants_more() {
        let (tx, mut stream, demand) = channel();
        assert!(stream.next().now_or_never().is_none());
        assert!(send(&tx, deleted()).await);
        let more = demand.more_after(1, &tx);
        tokio::pin!(more);
        assert!(
            more.as_mut().now_or_never().is_none(),
            "the event is not taken yet"
        );
        assert!(stream.next().await.is_some());
        assert!(
            more.as_mut().now_or_never().is_none(),
            "taken, not asked again"
        );
        assert!(stream.next().now_or_never().is_none());
        assert!(more.await);
    }
}
