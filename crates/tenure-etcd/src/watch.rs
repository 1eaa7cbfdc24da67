//! etcd watches as tenure [`WatchStream`]s.
//!
//! A watch never skips a change silently: events come in revision order
//! from the start revision; a compacted start revision (or a watcher that
//! fell behind compaction) yields [`WatchEvent::HistoryLost`] and ends the
//! stream; a cancelled watch or a broken gRPC stream yields an `Err` and
//! ends it. The driver then re-reads and watches again.

use std::collections::VecDeque;

use futures::StreamExt;
use tenure_core::{Error, Result, Revision, WatchEvent, WatchScope, WatchStream};

use crate::backend::{is_queue_entry, EtcdBackend};
use crate::error::{self, KIND};

/// Whether a change under an election's directory (`<election>/`) is one
/// of its queue entries. A deletion carries no lease: it is judged by the
/// value it deleted (asked for with `prev_kv`), or, that value compacted
/// away, by being a direct child at least.
fn in_queue(backend: &EtcdBackend, dir: &str, event: &etcd_client::Event) -> bool {
    let Some(kv) = event.kv() else { return false };
    let judged = if kv.version() == 0 {
        event.prev_kv()
    } else {
        Some(kv)
    };
    match judged {
        Some(kv) => is_queue_entry(dir, &backend.entry(kv)),
        None => backend
            .entry(kv)
            .key
            .strip_prefix(dir)
            .is_some_and(|r| !r.contains('/')),
    }
}

/// The change `kv` reports. A deleted key carries only its key and the
/// deletion revision (version 0); a put always has version >= 1. Deciding
/// on that avoids etcd-client's panic on unknown event types.
pub(crate) fn change(backend: &EtcdBackend, kv: &etcd_client::KeyValue) -> WatchEvent {
    let entry = backend.entry(kv);
    if kv.version() == 0 {
        WatchEvent::Delete {
            key: entry.key,
            revision: kv.mod_revision().max(0).unsigned_abs(),
        }
    } else {
        WatchEvent::Put(entry)
    }
}

/// The error of a watch stream that ended without a reason.
pub(crate) fn ended(backend: &EtcdBackend) -> Error {
    Error::Unreachable {
        backend: KIND,
        endpoint: backend.endpoint().to_owned(),
        source: "the watch stream ended".into(),
    }
}

/// Picks the item for one event of a watch, or `None` to leave it out.
pub(crate) type Pick<T> = Box<dyn FnMut(&EtcdBackend, &etcd_client::Event) -> Option<T> + Send>;

/// The error of a watch the server cancelled (`reason` is etcd's): a
/// backend failure, transient like any; the reader opens the watch again.
pub(crate) fn cancelled(operation: &'static str, reason: &str) -> Error {
    error::protocol(
        operation,
        format!("watch cancelled by the server: {reason}"),
    )
}

/// How one kind of watch reads etcd's responses.
pub(crate) struct Reading<T> {
    /// The operation named in errors.
    pub(crate) operation: &'static str,
    /// The item that says the history asked for is compacted away.
    pub(crate) history_lost: fn() -> T,
    /// The item for one event, or `None` to leave it out.
    pub(crate) pick: Pick<T>,
}

/// A confirmed etcd watch (`first` is its confirming response) as a
/// stream of items, in revision order: a compacted start yields
/// `history_lost` and ends it; a cancelled watch, a broken or ended gRPC
/// stream yields an `Err` and ends it.
pub(crate) fn items<T: Send + 'static>(
    backend: &EtcdBackend,
    stream: etcd_client::WatchStream,
    first: etcd_client::WatchResponse,
    reading: Reading<T>,
) -> futures::stream::BoxStream<'static, Result<T>> {
    let mut state = State {
        backend: backend.clone(),
        stream,
        pending: VecDeque::new(),
        done: false,
        reading,
    };
    state.absorb(first);
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            match st.stream.message().await {
                Ok(Some(resp)) => st.absorb(resp),
                Ok(None) => {
                    st.done = true;
                    st.pending.push_back(Err(ended(&st.backend)));
                }
                Err(e) => {
                    st.done = true;
                    let error = st.backend.wrap_error(st.reading.operation, e);
                    st.pending.push_back(Err(error));
                }
            }
        }
    })
    .boxed()
}

struct State<T> {
    backend: EtcdBackend,
    /// Kept whole: dropping its request half would make etcd end the
    /// stream.
    stream: etcd_client::WatchStream,
    pending: VecDeque<Result<T>>,
    done: bool,
    reading: Reading<T>,
}

impl<T> State<T> {
    fn absorb(&mut self, resp: etcd_client::WatchResponse) {
        if resp.compact_revision() != 0 {
            // The history asked for is compacted away: say so, and end.
            self.pending.push_back(Ok((self.reading.history_lost)()));
            self.done = true;
            return;
        }
        for event in resp.events() {
            if let Some(item) = (self.reading.pick)(&self.backend, event) {
                self.pending.push_back(Ok(item));
            }
        }
        if resp.canceled() {
            self.pending
                .push_back(Err(cancelled(self.reading.operation, resp.cancel_reason())));
            self.done = true;
        }
    }
}

/// Opens a watch on `scope` from revision `from` (0: from now) and waits
/// until etcd confirms it.
pub(crate) async fn open(
    backend: &EtcdBackend,
    scope: WatchScope,
    from: Revision,
) -> Result<WatchStream> {
    let (key, mut options, dir) = match &scope {
        WatchScope::Key(k) => (backend.full_key(k), etcd_client::WatchOptions::new(), None),
        WatchScope::Election(e) => {
            let dir = EtcdBackend::queue_dir(e);
            (
                backend.full_key(&dir),
                etcd_client::WatchOptions::new()
                    .with_prefix()
                    .with_prev_key(),
                Some(dir),
            )
        }
    };
    if from > 0 {
        options = options.with_start_revision(i64::try_from(from).unwrap_or(i64::MAX));
    }
    let mut client = backend.client().watch_client();
    let mut stream = backend
        .request("watch", client.watch(key, Some(options)))
        .await?;
    // The first reply confirms the watch (or reports why not).
    let first = backend.request("watch", stream.message()).await?;
    let Some(first) = first else {
        return Err(Error::Unreachable {
            backend: KIND,
            endpoint: backend.endpoint().to_owned(),
            source: "the watch stream closed before the watch was created".into(),
        });
    };
    let reading = Reading {
        operation: "watch",
        history_lost: || WatchEvent::HistoryLost,
        pick: Box::new(move |backend: &EtcdBackend, event: &etcd_client::Event| {
            let kv = event.kv()?;
            match &dir {
                Some(dir) if !in_queue(backend, dir, event) => None,
                _ => Some(change(backend, kv)),
            }
        }),
    };
    Ok(items(backend, stream, first, reading))
}
