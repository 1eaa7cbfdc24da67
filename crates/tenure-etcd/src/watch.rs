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

struct State {
    backend: EtcdBackend,
    /// Kept whole: dropping its request half would make etcd end the
    /// stream.
    stream: etcd_client::WatchStream,
    /// For an election scope: the directory (`<election>/`) whose direct
    /// children count.
    dir: Option<String>,
    pending: VecDeque<Result<WatchEvent>>,
    done: bool,
}

impl State {
    fn absorb(&mut self, resp: etcd_client::WatchResponse) {
        if resp.compact_revision() != 0 {
            // The history we asked for is compacted away: say so, and end.
            self.pending.push_back(Ok(WatchEvent::HistoryLost));
            self.done = true;
            return;
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let key = self.backend.entry(kv).key;
            if let Some(dir) = &self.dir {
                // A deletion carries no lease: judge it by the value it
                // deleted (asked for with `prev_kv`).
                let judged = if kv.version() == 0 {
                    event.prev_kv()
                } else {
                    Some(kv)
                };
                let queued = match judged {
                    Some(kv) => is_queue_entry(dir, &self.backend.entry(kv)),
                    // No previous value (compacted): a direct child at least.
                    None => key
                        .strip_prefix(dir.as_str())
                        .is_some_and(|r| !r.contains('/')),
                };
                if !queued {
                    continue;
                }
            }
            // A deleted key carries only its key and the deletion revision
            // (version 0); a put always has version >= 1. Deciding on that
            // avoids etcd-client's panic on unknown event types.
            self.pending.push_back(Ok(if kv.version() == 0 {
                WatchEvent::Delete {
                    key,
                    revision: kv.mod_revision().max(0).unsigned_abs(),
                }
            } else {
                WatchEvent::Put(self.backend.entry(kv))
            }));
        }
        if resp.canceled() {
            self.pending.push_back(Err(error::protocol(
                "watch",
                format!("watch cancelled by the server: {}", resp.cancel_reason()),
            )));
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
    let mut state = State {
        backend: backend.clone(),
        stream,
        dir,
        pending: VecDeque::new(),
        done: false,
    };
    match first {
        Some(resp) => state.absorb(resp),
        None => {
            return Err(Error::Unreachable {
                backend: KIND,
                endpoint: backend.endpoint().to_owned(),
                source: "the watch stream closed before the watch was created".into(),
            })
        }
    }
    Ok(futures::stream::unfold(state, |mut st| async move {
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
                    st.pending.push_back(Err(Error::Unreachable {
                        backend: KIND,
                        endpoint: st.backend.endpoint().to_owned(),
                        source: "the watch stream ended".into(),
                    }));
                }
                Err(e) => {
                    st.done = true;
                    st.pending.push_back(Err(st.backend.wrap_error("watch", e)));
                }
            }
        }
    })
    .boxed())
}
