//! Watches as tenure [`WatchStream`]s: notifications say that something
//! changed, the change log says what.
//!
//! A watch never skips a change silently:
//!
//! - it subscribes to the listening connection before it reads the log,
//!   so every change after that read is announced to it;
//! - it reads the log from the last revision it delivered, so a late,
//!   duplicated or dropped notification costs a read, never a change;
//! - when the log no longer reaches back to where it must start
//!   (retention), or the listening connection is lost, it says
//!   [`WatchEvent::HistoryLost`] and ends.
//!
//! A watch also knows when the earliest lease in its scope is due (by
//! the server's clock, as a duration from the server's now): it wakes up
//! then and removes expired leases, so a crashed holder's deletion comes
//! without anyone else writing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tenure_core::{ElectionName, Result, Revision, WatchEvent, WatchScope, WatchStream};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_postgres::types::Type;

use crate::backend::{db_rev, entry_at, get, rev, Inner};
use crate::keys;
use crate::listener::Notice;
use crate::sql::CHANGES_PAGE;

/// Added to a due time before waking: the server's clock must have
/// passed the expiry when the reap runs.
const DUE_SLACK: Duration = Duration::from_millis(2);

/// The shortest wait between two due wake-ups, so that a lease that
/// stays due (a reap that cannot delete it) does not spin.
const MIN_DUE_WAIT: Duration = Duration::from_millis(20);

/// What a watch looks at, as the log and the notifications name it.
enum Scope {
    Key(String),
    Election {
        name: ElectionName,
        /// `<election key>/`: the prefix of its queue keys.
        dir: String,
    },
}

impl Scope {
    /// Whether a change to `key` may concern this watch.
    fn matches(&self, key: &str) -> bool {
        match self {
            Scope::Key(k) => k == key,
            Scope::Election { dir, .. } => key
                .strip_prefix(dir.as_str())
                .is_some_and(|rest| !rest.contains('/')),
        }
    }
}

struct State {
    inner: Arc<Inner>,
    scope: Scope,
    notices: broadcast::Receiver<Notice>,
    /// The last revision delivered (or read past).
    last: Revision,
    pending: VecDeque<WatchEvent>,
    /// When the earliest lease in scope is due.
    due: Option<Instant>,
    /// The log must be read before waiting again.
    stale: bool,
    done: bool,
}

impl State {
    /// Reads the log after `last` (page by page) and the due time.
    /// `from_now`: start at the current revision instead.
    async fn catch_up(&mut self, from_now: bool) -> Result<()> {
        const OP: &str = "watch";
        loop {
            let (sql, param) = match &self.scope {
                Scope::Key(k) => (&self.inner.sql.changes_key, k.as_str()),
                Scope::Election { name, .. } => (&self.inner.sql.changes_election, name.as_str()),
            };
            let after = if from_now {
                i64::MAX
            } else {
                db_rev(self.last)
            };
            let rows = self
                .inner
                .conns
                .query(
                    OP,
                    sql,
                    &[
                        (&after, Type::INT8),
                        (&param, Type::TEXT),
                        (&CHANGES_PAGE, Type::INT8),
                    ],
                )
                .await?;
            let Some(first) = rows.first() else {
                return Err(crate::error::protocol(OP, "the revision row is missing"));
            };
            let compacted = rev(get(OP, first, 0)?);
            let current = rev(get(OP, first, 1)?);
            let due_us: Option<i64> = get(OP, first, 9)?;
            if from_now {
                self.last = current;
            } else if self.last < compacted {
                self.pending.push_back(WatchEvent::HistoryLost);
                self.done = true;
                return Ok(());
            }
            let mut read = 0;
            for row in &rows {
                let Some(revision) = get::<Option<i64>>(OP, row, 2)?.map(rev) else {
                    continue;
                };
                read += 1;
                let deleted: bool = get(OP, row, 8)?;
                let event = if deleted {
                    let key: String = get(OP, row, 3)?;
                    WatchEvent::Delete { key, revision }
                } else {
                    match entry_at(OP, row, 3)? {
                        Some(entry) => WatchEvent::Put(entry),
                        None => continue,
                    }
                };
                self.last = self.last.max(revision);
                self.pending.push_back(event);
            }
            self.due = due_us.map(|us| {
                let wait = Duration::from_micros(us.max(0).unsigned_abs()) + DUE_SLACK;
                Instant::now() + wait.max(MIN_DUE_WAIT)
            });
            if read < CHANGES_PAGE {
                self.stale = false;
                return Ok(());
            }
        }
    }

    /// Waits for the next thing to do: a notification that concerns the
    /// watch, or the due time.
    async fn wait(&mut self) {
        let due = self.due;
        let sleep = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            notice = self.notices.recv() => match notice {
                Ok(Notice::Change { revision, key }) => {
                    if revision > self.last && self.scope.matches(&key) {
                        self.stale = true;
                    }
                }
                Ok(Notice::Probe(_)) => {}
                // Fell behind the fan-out: the log has what was dropped.
                Err(broadcast::error::RecvError::Lagged(_)) => self.stale = true,
                Ok(Notice::Lost) | Err(broadcast::error::RecvError::Closed) => {
                    self.pending.push_back(WatchEvent::HistoryLost);
                    self.done = true;
                }
            },
            () = sleep => {
                self.due = None;
                self.stale = true;
                if let Err(e) = self.inner.reap().await {
                    tracing::debug!(error = %e, "reap of a due lease failed");
                    // Read the log anyway; the next due wake-up retries.
                }
            }
        }
    }
}

/// Opens a watch on `scope` from revision `from` (0: from now).
pub(crate) async fn open(
    inner: Arc<Inner>,
    scope: WatchScope,
    from: Revision,
) -> Result<WatchStream> {
    let scope = match scope {
        WatchScope::Key(k) => Scope::Key(k),
        WatchScope::Election(name) => Scope::Election {
            dir: format!("{}/", keys::election_key(&name)),
            name,
        },
    };
    let notices = inner.listener.subscribe(&inner.conns).await?;
    let mut state = State {
        inner,
        scope,
        notices,
        last: from.saturating_sub(1),
        pending: VecDeque::new(),
        due: None,
        stale: false,
        done: false,
    };
    state.catch_up(from == 0).await?;
    Ok(futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.pending.pop_front() {
                return Some((Ok(event), st));
            }
            if st.done {
                return None;
            }
            if st.stale {
                if let Err(e) = st.catch_up(false).await {
                    st.done = true;
                    return Some((Err(e), st));
                }
                continue;
            }
            st.wait().await;
        }
    })
    .boxed())
}
