//! [`ZkBackend`]: the [`CoordinationBackend`] implementation, over the
//! parts in the sibling modules (`session`, `lease`, `paths`, `read`,
//! `create`, `write`, `watch`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tenure_core::queue_reads::{QueueReads, QueueSource};
use tenure_core::retry::AttemptError;
use tenure_core::{
    CoordinationBackend, CreateOutcome, ElectionName, ElectionStream, Entry, Error, LeaseGrant,
    LeaseId, Result, Revision, Slot, Snapshot, WatchScope, WatchStream,
};
use tracing::debug;
use zookeeper_client as zk;

use crate::error::{self, Ctx, KIND};
use crate::lease::{expire_unrenewed, locked, LeaseSession, Leases};
use crate::options::{ZkAcl, ZkOptions};
use crate::paths::{Names, Shape, LEADER_NODE};
use crate::retry::answer;
use crate::session::{checked, connect_retry, diagnosed, open_session, probe_tls, session_attempt};
use crate::watch::{self, Origin};
use crate::{elections, probe, read};

static CREATOR_ALL_WORLD_READ: [zk::Acl; 2] = [
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
];

/// A [`CoordinationBackend`] over a ZooKeeper ensemble.
///
/// # Mapping
///
/// - **Lease = session.** A ZooKeeper client has exactly one session, so
///   every [`grant_lease`](CoordinationBackend::grant_lease) opens a new
///   session whose timeout is the TTL (checked against the server's
///   `minSessionTimeout`/`maxSessionTimeout`, which
///   [`ttl_bounds`](CoordinationBackend::ttl_bounds) reports; the granted
///   TTL is the negotiated timeout). The lease id is the session id, and
///   an entry's [`lease`](Entry::lease) its node's `ephemeralOwner`.
///   Keep-alive is one round trip on that session; once the session is
///   expired or closed the lease is [`Error::LeaseExpired`]. Revoking
///   closes the session, so its ephemeral nodes vanish at once.
/// - **Queue entries** are ephemeral-sequential children of the
///   election's node `<root>/<election>`, named by the [`Layout`](crate::Layout)
///   (Curator `_c_<uuid>-latch-<seq>` by default, or kazoo
///   `<uuid>__lock__<seq>`) and ordered by sequence, as those libraries
///   order them. The uuid is per lease: it makes the name "protected", so
///   a create whose reply was lost is found again instead of repeated,
///   and a second create with the same lease returns the first entry.
/// - **The leader key** (single-key strategy) is the ephemeral node
///   `<root>/<election>/leader` (key `<election>/leader`).
/// - **Revisions are zxids**: [`Entry::created`] is the node's `czxid`
///   (the fencing token), [`Entry::modified`] its `mzxid`. A read's
///   revision is the largest of the election node's `pzxid` (the zxid of
///   its last child creation or deletion) and the `mzxid`s read, taken
///   from one atomic multi-read; watches from `revision + 1` compare
///   against exactly those numbers.
/// - **Guarded writes** check the node's `czxid`, then write with the
///   version just read (`setData`/`delete` with a version, or a `multi`
///   with a `check` for [`guarded_put`](CoordinationBackend::guarded_put)),
///   so the server rejects a write once our node is gone.
/// - **Watches** are one-shot in ZooKeeper and cannot start from a
///   revision: see the `watch` module. A key watch keeps one
///   `exists`/`getData` watch on that node only (no herd); an election
///   watch is one persistent recursive watch. Session expiry, and for
///   election watches any disconnection, becomes
///   [`WatchEvent::HistoryLost`](tenure_core::WatchEvent::HistoryLost).
///
/// **Keys** crossing the trait are relative to the root (the backend's
/// namespace, as the contract asks): the election `jobs` has entries
/// `jobs/_c_<uuid>-latch-0000000003` and the leader key `jobs/leader`,
/// stored at `<root>/jobs/...`. Keys that start with `/` are taken as
/// absolute ZooKeeper paths (below the connect string's chroot, if any).
///
/// Cloning is cheap and shares the sessions.
#[derive(Clone)]
pub struct ZkBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ZkBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkBackend")
            .field("options", &self.inner.options)
            .field("ttl_bounds", &self.inner.bounds)
            .field("leases", &self.inner.leases.len())
            .finish()
    }
}

struct Inner {
    options: ZkOptions,
    /// Where elections and keys live below the root.
    names: Names,
    /// The server's session-timeout bounds (or the configured ones).
    bounds: (Duration, Duration),
    /// The shared session's timeout (explicit, or the default clamped
    /// into `bounds`).
    session_timeout: Duration,
    /// Shared session for reads, watches and guarded writes; replaced
    /// when it expires.
    reader: tokio::sync::Mutex<zk::Client>,
    leases: Leases,
    /// Concurrent queue reads of one election, answered by one read.
    queue_reads: QueueReads,
}

impl ZkBackend {
    /// Connects to the ensemble: validates the options, learns the
    /// server's session-timeout bounds (unless
    /// [`ZkOptions::ttl_bounds`] gives them), opens the shared session and
    /// creates the root node if missing.
    ///
    /// Learning the bounds and opening the session are retried with
    /// jittered back-off (a refused connection, one the server closed
    /// during the handshake, a handshake left unanswered) until the
    /// [connect timeout](ZkOptions::connect_timeout) runs out.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bad options (empty connect string,
    /// invalid root path, a [`session_timeout`](ZkOptions::session_timeout)
    /// set outside the server's bounds: the message says which URL option
    /// and which server settings to change);
    /// [`Error::Unreachable`] naming the connect string, the number of
    /// attempts and the last cause when no session is established within
    /// the connect timeout (a server refusing connections beyond its
    /// `maxClientCnxns` is named as the likely cause when it closes them
    /// during the handshake); [`Error::Unauthenticated`] when the root
    /// exists but our credentials may not use it.
    pub async fn connect(options: ZkOptions) -> Result<ZkBackend> {
        options.validate()?;
        // Bounds learnt by an attempt stay learnt for the next ones.
        let learnt = Mutex::new(options.ttl_bounds);
        // A probe is two handshakes on raw connections: a slow answer is
        // worth waiting for (a retry would only add to a busy server's
        // work), but one silent host must leave time for the others.
        let hosts = u32::try_from(probe::hosts(&options.connect).len().max(1)).unwrap_or(1);
        let probe_timeout = options.connect_timeout / hosts;
        let probe_tls = probe_tls(&options)?;
        let opened = connect_retry(&options)
            .run(|attempt| {
                let (options, learnt, probe_tls) = (&options, &learnt, &probe_tls);
                async move {
                    let known = *locked(learnt);
                    let bounds = match known {
                        Some(b) => b,
                        None => {
                            let b = checked(options, || async {
                                probe::session_bounds(
                                    &options.connect,
                                    probe_timeout,
                                    probe_tls.as_ref(),
                                )
                                .await
                                .map_err(|cause| AttemptError::Transient(cause.into()))
                            })
                            .await?;
                            *locked(learnt) = Some(b);
                            b
                        }
                    };
                    let timeout = options
                        .shared_session_timeout(bounds)
                        .map_err(AttemptError::Permanent)?;
                    let client = session_attempt(options, timeout, attempt).await?;
                    Ok((client, bounds, timeout))
                }
            })
            .await;
        let (reader, bounds, session_timeout) = match opened {
            Ok(o) => o,
            Err(e) => return Err(diagnosed(e, &options).await),
        };
        debug!(?bounds, ?session_timeout, "shared ZooKeeper session opened");
        let backend = ZkBackend {
            inner: Arc::new(Inner {
                names: Names::new(options.root.clone(), options.layout),
                options,
                bounds,
                session_timeout,
                reader: tokio::sync::Mutex::new(reader.clone()),
                leases: Leases::default(),
                queue_reads: QueueReads::new(),
            }),
        };
        let root = backend.inner.options.root.clone();
        if root != "/" {
            let ctx = backend.ctx("create root", None);
            // Retried across connection losses like every request: the
            // session just opened may lose its connection at once (a
            // server stalled under a burst of new sessions), and the
            // client reconnects within the session timeout.
            match answer(|| reader.check_stat(&root)).await {
                Ok(Some(_)) => {}
                Ok(None) => backend.mkdir(&reader, &root, ctx).await?,
                Err(e) => return Err(ctx.error(e)),
            }
        }
        Ok(backend)
    }

    /// The timeout of the shared session (reads and watches): the one set
    /// with [`ZkOptions::session_timeout`], or the
    /// [default](ZkOptions::default_session_timeout) clamped into the
    /// server's bounds.
    pub fn session_timeout(&self) -> Duration {
        self.inner.session_timeout
    }

    /// The options the backend runs with.
    pub fn options(&self) -> &ZkOptions {
        &self.inner.options
    }

    /// The node of an election: `<root>/<election>`.
    ///
    /// # Errors
    /// [`Error::InvalidElectionName`] if the name holds characters that
    /// ZooKeeper paths cannot.
    pub fn election_path(&self, election: &ElectionName) -> Result<String> {
        self.inner.names.election_path(election)
    }

    /// The session of `lease` (id and password), for tools and tests that
    /// need to act on it directly — e.g. expire it from outside the way
    /// Curator's `KillSession` does, by connecting with the same session
    /// and closing it. `None` for unknown leases.
    pub fn lease_session(&self, lease: LeaseId) -> Option<zk::SessionInfo> {
        self.inner
            .leases
            .get(lease)
            .map(|l| l.client.session().clone())
    }

    /// A watcher of the connection state of `lease`'s session
    /// (connected, disconnected while the client reconnects, expired,
    /// closed), for tools and tests that follow it. `None` for unknown
    /// leases.
    pub fn lease_state(&self, lease: LeaseId) -> Option<zk::StateWatcher> {
        self.inner
            .leases
            .get(lease)
            .map(|l| l.client.state_watcher())
    }

    /// Closes every lease session (their ephemeral nodes vanish) and
    /// forgets them. The backend stays usable.
    pub async fn close(&self) {
        for id in self.inner.leases.ids() {
            let _ = self.revoke_lease(id).await;
        }
    }

    /// The context of errors from `operation` (on `lease`'s session, if
    /// any).
    pub(crate) fn ctx(&self, operation: &'static str, lease: Option<LeaseId>) -> Ctx<'_> {
        Ctx {
            operation,
            endpoint: &self.inner.options.connect,
            lease,
        }
    }

    /// Where elections and keys live.
    pub(crate) fn names(&self) -> &Names {
        &self.inner.names
    }

    /// The ACL of every node the backend creates.
    pub(crate) fn acls(&self) -> zk::Acls<'static> {
        match self.inner.options.acl {
            ZkAcl::Open => zk::Acls::anyone_all(),
            ZkAcl::CreatorAll => zk::Acls::creator_all(),
            ZkAcl::CreatorAllWorldRead => zk::Acls::new(&CREATOR_ALL_WORLD_READ),
        }
    }

    /// The shared session, reconnected if it has expired.
    pub(crate) async fn reader(&self) -> Result<zk::Client> {
        let mut guard = self.inner.reader.lock().await;
        if guard.state().is_terminated() {
            debug!("shared ZooKeeper session ended; opening a new one");
            let fresh = open_session(&self.inner.options, self.inner.session_timeout).await?;
            *guard = fresh;
        }
        Ok(guard.clone())
    }

    /// Runs `op` on the shared session; if that session turns out to
    /// have expired (a long partition), runs it once more on a new one.
    async fn on_reader<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(zk::Client) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let client = self.reader().await?;
        match op(client.clone()).await {
            Err(Error::Backend { source, .. })
                if matches!(
                    source.downcast_ref::<zk::Error>(),
                    Some(zk::Error::SessionExpired | zk::Error::ClientClosed)
                ) =>
            {
                {
                    let mut guard = self.inner.reader.lock().await;
                    if guard.session_id() == client.session_id() {
                        *guard =
                            open_session(&self.inner.options, self.inner.session_timeout).await?;
                    }
                }
                op(self.reader().await?).await
            }
            other => other,
        }
    }
}

impl ZkBackend {
    /// Runs one trait operation within the request timeout: its retries
    /// after connection loss stop with it, so a request timeout means the
    /// same on ZooKeeper as on etcd (one operation, retries included).
    async fn bounded<T>(
        &self,
        operation: &'static str,
        op: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let timeout = self.inner.options.request_timeout;
        match tokio::time::timeout(timeout, op).await {
            Ok(result) => result,
            Err(_) => Err(error::timeout(operation, timeout)),
        }
    }
}

#[async_trait]
impl CoordinationBackend for ZkBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn ttl_bounds(&self) -> (Duration, Duration) {
        self.inner.bounds
    }

    fn leader_key(&self, election: &ElectionName) -> String {
        // Relative to the root, like every key crossing the trait.
        format!("{election}/{LEADER_NODE}")
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant> {
        let (min, _) = self.inner.bounds;
        tenure_core::check_ttl(ttl, self.inner.bounds)?;
        let started = tokio::time::Instant::now();
        let client = open_session(&self.inner.options, ttl).await?;
        let granted = client.session_timeout();
        if granted < ttl {
            // The server's maximum is below what it told us: do not
            // pretend to hold a shorter lease than asked for.
            drop(client);
            return Err(Error::InvalidTtl {
                ttl,
                min,
                max: granted,
            });
        }
        let lease = Arc::new(LeaseSession::new(client, granted, started));
        let id = lease.id;
        let backend = Arc::downgrade(&self.inner);
        tokio::spawn(expire_unrenewed(
            Arc::downgrade(&lease),
            move |id| async move {
                if let Some(inner) = backend.upgrade() {
                    let _ = ZkBackend { inner }.revoke_lease(id).await;
                }
            },
        ));
        self.inner.leases.insert(lease);
        debug!(%id, ?granted, "lease session opened");
        Ok(LeaseGrant { id, ttl: granted })
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let l = self.inner.leases.live(lease)?;
        let ctx = self.ctx("keep-alive", Some(lease));
        let sent = tokio::time::Instant::now();
        match l.client.check_stat("/").await {
            Ok(_) => {
                l.renew(sent);
                Ok(l.ttl)
            }
            Err(e) => {
                let err = ctx.error(e);
                if matches!(err, Error::LeaseExpired { .. }) {
                    self.inner.leases.remove(lease);
                }
                Err(err)
            }
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        let Some(l) = self.inner.leases.remove(lease) else {
            return Ok(());
        };
        let mut state = l.client.state_watcher();
        if state.peek_state().is_terminated() {
            return Ok(());
        }
        // Dropping the last handle of a client closes its session; wait
        // until the server confirmed (its ephemeral nodes are gone then).
        // Requests still in flight hold handles a moment longer.
        drop(l);
        let wait = async {
            loop {
                if state.changed().await.is_terminated() {
                    return;
                }
            }
        };
        let timeout = self.inner.options.request_timeout;
        if tokio::time::timeout(timeout, wait).await.is_err() {
            return Err(error::timeout("revoke", timeout));
        }
        Ok(())
    }

    async fn create(
        &self,
        election: &ElectionName,
        slot: Slot,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        self.bounded("create", async move {
            // One create at a time per lease, then the one-shape rule.
            let l = self.inner.leases.live(lease)?;
            let _one_at_a_time = l.creating.lock().await;
            let outcome = match slot {
                Slot::Queue => self.create_queue(election, &l, value).await?,
                Slot::Leader => self.create_leader(election, &l, value).await?,
            };
            let mine = match slot {
                Slot::Queue => Shape::Queue(self.names().layout()),
                Slot::Leader => Shape::Leader,
            };
            let own = outcome.entry();
            if own.lease == lease {
                // Checked whenever the entry is ours, not only when this call
                // created it: a create whose check failed half-way is retried
                // and finds its entry.
                self.one_shape(election, own, mine).await?;
            }
            Ok(outcome)
        })
        .await
    }

    async fn candidates(&self, election: &ElectionName) -> Result<Snapshot> {
        self.bounded("read candidates", self.read_queue(election))
            .await
    }

    /// One read for the whole queue while several candidates of the
    /// election ask at once through this backend ([`QueueReads`]); alone,
    /// the one-round-trip read of `read::around`.
    async fn queue_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot> {
        let read = self.inner.queue_reads.around(self, election, own);
        self.bounded("read candidates", read).await
    }

    async fn get(&self, key: &str) -> Result<(Option<Entry>, Revision)> {
        let path = self.names().resolve(key)?;
        let ctx = self.ctx("get", None);
        let read = self.on_reader(|client| {
            let path = path.clone();
            async move { read::key(&client, key, &path, ctx).await }
        });
        self.bounded("get", read).await
    }

    async fn update(&self, entry: &Entry, value: Bytes) -> Result<Entry> {
        self.bounded("update", self.update_owned(entry, value))
            .await
    }

    async fn delete(&self, entry: &Entry) -> Result<bool> {
        self.bounded("delete", self.delete_owned(entry)).await
    }

    /// Refuses, with [`Error::KeyInElection`], keys inside the guard's
    /// election (its node and everything below it) and nodes named like a
    /// candidate or a leader node (`leader`, `…latch-<n>`, `…__lock__<n>`),
    /// which would sit among the candidates of the election above them.
    async fn guarded_put(&self, guard: &Entry, key: &str, value: Bytes) -> Result<Revision> {
        self.bounded("guarded put", self.put_guarded(guard, key, value))
            .await
    }

    async fn elections(&self, prefix: &str) -> Result<Vec<ElectionName>> {
        elections::list(self, prefix).await
    }

    async fn watch_elections(&self, prefix: &str) -> Result<ElectionStream> {
        elections::watch(self, prefix).await
    }

    async fn watch(&self, scope: WatchScope, from: Revision) -> Result<WatchStream> {
        let client = self.reader().await?;
        let origin = Origin {
            names: self.names().clone(),
            endpoint: self.inner.options.connect.clone(),
        };
        match scope {
            WatchScope::Key(key) => {
                let path = self.names().resolve(&key)?;
                watch::key(origin, client, key, path, from).await
            }
            WatchScope::Election(election) => {
                let dir = self.election_path(&election)?;
                watch::election(origin, client, dir, from).await
            }
        }
    }
}

#[async_trait]
impl QueueSource for ZkBackend {
    async fn read_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot> {
        let dir = self.election_path(election)?;
        let ctx = self.ctx("read candidates", None);
        self.on_reader(|client| {
            let dir = dir.clone();
            async move { read::around(&client, self.names(), &dir, own, ctx).await }
        })
        .await
    }

    async fn read_queue(&self, election: &ElectionName) -> Result<Snapshot> {
        let dir = self.election_path(election)?;
        let ctx = self.ctx("read candidates", None);
        self.on_reader(|client| {
            let dir = dir.clone();
            async move { read::candidates(&client, self.names(), &dir, ctx).await }
        })
        .await
    }
}
