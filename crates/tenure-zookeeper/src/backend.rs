//! [`ZkBackend`]: the [`CoordinationBackend`] implementation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tenure_core::retry::{AttemptError, ConnectFailed};
use tenure_core::{
    ConnectRetry, CoordinationBackend, CreateOutcome, ElectionName, ElectionStream, Entry, Error,
    LeaseGrant, LeaseId, Result, Revision, Slot, Snapshot, WatchScope, WatchStream,
};
use tracing::debug;
use zookeeper_client as zk;

use crate::error::{self, Ctx, KIND};
use crate::options::{validate_path, Layout, Uuid, ZkAcl, ZkOptions};
use crate::{elections, probe, watch};

/// Name of the single-key strategy's leader node inside an election's
/// node. Not a candidate in either layout.
pub(crate) const LEADER_NODE: &str = "leader";

/// What a candidate is, for the rule that an election holds one shape at
/// a time: the single-key leader node, or a queue entry of one layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Leader,
    Queue(Layout),
}

impl Shape {
    /// The shape of a child of an election node, if it names a candidate.
    fn of(child: &str) -> Option<Shape> {
        if child == LEADER_NODE {
            Some(Shape::Leader)
        } else if Layout::Curator.sequence(child).is_some() {
            Some(Shape::Queue(Layout::Curator))
        } else if Layout::Kazoo.sequence(child).is_some() {
            Some(Shape::Queue(Layout::Kazoo))
        } else {
            None
        }
    }

    /// As the requested shape of [`Error::ShapeConflict`].
    fn requested(self) -> &'static str {
        match self {
            Shape::Leader => "single-key",
            Shape::Queue(Layout::Kazoo) => "queue (kazoo layout)",
            Shape::Queue(_) => "queue (Curator layout)",
        }
    }

    /// As the existing shape of [`Error::ShapeConflict`].
    fn held(self) -> &'static str {
        match self {
            Shape::Leader => "single-key candidates",
            Shape::Queue(Layout::Kazoo) => "queue candidates in the kazoo layout",
            Shape::Queue(_) => "queue candidates in the Curator layout",
        }
    }
}

/// How often an operation is retried when ZooKeeper says it raced with
/// another change (bad version, node created or deleted under us) or the
/// connection dropped.
pub(crate) const RETRIES: usize = 20;

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
///   election's node `<root>/<election>`, named by the [`Layout`]
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
        let leases = self.inner.leases.lock().map(|l| l.len()).unwrap_or(0);
        f.debug_struct("ZkBackend")
            .field("options", &self.inner.options)
            .field("ttl_bounds", &self.inner.bounds)
            .field("leases", &leases)
            .finish()
    }
}

struct Inner {
    options: ZkOptions,
    /// The server's session-timeout bounds (or the configured ones).
    bounds: (Duration, Duration),
    /// The shared session's timeout (explicit, or the default clamped
    /// into `bounds`).
    session_timeout: Duration,
    /// Shared session for reads, watches and guarded writes; replaced
    /// when it expires.
    reader: tokio::sync::Mutex<zk::Client>,
    leases: Mutex<HashMap<i64, Arc<LeaseSession>>>,
}

/// One granted lease: its own session.
pub(crate) struct LeaseSession {
    id: LeaseId,
    client: zk::Client,
    uuid: Uuid,
    ttl: Duration,
    /// When the lease was last renewed (granted or kept alive).
    renewed: Mutex<tokio::time::Instant>,
    /// Serialises this lease's creates, so that two concurrent creates
    /// cannot both miss the other's protected node.
    creating: tokio::sync::Mutex<()>,
}

impl LeaseSession {
    fn renewed(&self) -> tokio::time::Instant {
        self.renewed
            .lock()
            .map(|r| *r)
            .unwrap_or_else(|e| *e.into_inner())
    }

    fn renew(&self, at: tokio::time::Instant) {
        if let Ok(mut r) = self.renewed.lock() {
            *r = (*r).max(at);
        }
    }
}

/// Gives a lease etcd's semantics on top of a session: the ZooKeeper
/// client pings on its own, so a session lives as long as its process,
/// whether or not anybody renews the lease. This task closes the session
/// once `keep_alive` has not been called for a whole TTL (a process that
/// is frozen or cut off loses it on the server's clock anyway).
async fn expire_unrenewed(backend: std::sync::Weak<Inner>, lease: std::sync::Weak<LeaseSession>) {
    loop {
        let Some(l) = lease.upgrade() else { return };
        let deadline = l.renewed() + l.ttl;
        let id = l.id;
        drop(l);
        tokio::time::sleep_until(deadline).await;
        let Some(l) = lease.upgrade() else { return };
        if tokio::time::Instant::now() >= l.renewed() + l.ttl {
            drop(l);
            if let Some(inner) = backend.upgrade() {
                debug!(lease = %id, "lease not renewed within its TTL: closing its session");
                let b = ZkBackend { inner };
                let _ = b.revoke_lease(id).await;
            }
            return;
        }
    }
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
            .run(|_| async {
                let known = learnt.lock().map(|b| *b).unwrap_or(None);
                let bounds = match known {
                    Some(b) => b,
                    None => {
                        let probed = probe::session_bounds(
                            &options.connect,
                            probe_timeout,
                            probe_tls.as_ref(),
                        )
                        .await;
                        let b = match probed {
                            Ok(b) => b,
                            Err(cause) => return Err(attempt_failed(&options, cause.into()).await),
                        };
                        if let Ok(mut l) = learnt.lock() {
                            *l = Some(b);
                        }
                        b
                    }
                };
                let timeout = options
                    .shared_session_timeout(bounds)
                    .map_err(AttemptError::Permanent)?;
                let client = session_attempt(&options, timeout).await?;
                Ok((client, bounds, timeout))
            })
            .await;
        let (reader, bounds, session_timeout) = match opened {
            Ok(o) => o,
            Err(e) => return Err(diagnosed(e, &options).await),
        };
        debug!(?bounds, ?session_timeout, "shared ZooKeeper session opened");
        let backend = ZkBackend {
            inner: Arc::new(Inner {
                options,
                bounds,
                session_timeout,
                reader: tokio::sync::Mutex::new(reader.clone()),
                leases: Mutex::new(HashMap::new()),
            }),
        };
        let root = backend.inner.options.root.clone();
        if root != "/" {
            let ctx = backend.ctx("create root", None);
            match reader.check_stat(&root).await {
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
        let path = self.join(election.as_str());
        validate_path(&path).map_err(|reason| Error::InvalidElectionName {
            name: election.to_string(),
            reason,
        })?;
        Ok(path)
    }

    /// The session of `lease` (id and password), for tools and tests that
    /// need to act on it directly — e.g. expire it from outside the way
    /// Curator's `KillSession` does, by connecting with the same session
    /// and closing it. `None` for unknown leases.
    pub fn lease_session(&self, lease: LeaseId) -> Option<zk::SessionInfo> {
        self.lease(lease).map(|l| l.client.session().clone())
    }

    /// A watcher of the connection state of `lease`'s session
    /// (connected, disconnected while the client reconnects, expired,
    /// closed), for tools and tests that follow it. `None` for unknown
    /// leases.
    pub fn lease_state(&self, lease: LeaseId) -> Option<zk::StateWatcher> {
        self.lease(lease).map(|l| l.client.state_watcher())
    }

    /// Closes every lease session (their ephemeral nodes vanish) and
    /// forgets them. The backend stays usable.
    pub async fn close(&self) {
        let ids: Vec<i64> = match self.inner.leases.lock() {
            Ok(l) => l.keys().copied().collect(),
            Err(_) => Vec::new(),
        };
        for id in ids {
            let _ = self.revoke_lease(LeaseId(id)).await;
        }
    }

    pub(crate) fn ctx(&self, operation: &'static str, lease: Option<LeaseId>) -> Ctx<'_> {
        Ctx {
            operation,
            endpoint: &self.inner.options.connect,
            lease,
        }
    }

    /// `<root>/<rel>`.
    fn join(&self, rel: &str) -> String {
        let root = self.inner.options.root.as_str();
        if root == "/" {
            format!("/{rel}")
        } else {
            format!("{root}/{rel}")
        }
    }

    /// A path below the root as a key relative to it (the form keys take
    /// across the trait); paths elsewhere stay absolute.
    pub(crate) fn relative(&self, path: &str) -> String {
        let root = self.inner.options.root.as_str();
        let rest = if root == "/" {
            path.strip_prefix('/')
        } else {
            path.strip_prefix(root).and_then(|r| r.strip_prefix('/'))
        };
        match rest {
            Some(r) if !r.is_empty() => r.to_owned(),
            _ => path.to_owned(),
        }
    }

    /// A key as a path: relative keys (the normal form) under the root,
    /// absolute ones as they are.
    pub(crate) fn resolve(&self, key: &str) -> Result<String> {
        let path = if key.starts_with('/') {
            key.to_owned()
        } else {
            self.join(key)
        };
        validate_path(&path).map_err(|reason| Error::InvalidConfig {
            field: "key",
            reason: format!("{key:?} is not a valid ZooKeeper path: {reason}"),
        })?;
        if path == "/" {
            return Err(Error::InvalidConfig {
                field: "key",
                reason: "the root node / cannot be an entry".into(),
            });
        }
        Ok(path)
    }

    fn layout(&self) -> Layout {
        self.inner.options.layout
    }

    fn acls(&self) -> zk::Acls<'static> {
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

    fn lease(&self, lease: LeaseId) -> Option<Arc<LeaseSession>> {
        self.inner
            .leases
            .lock()
            .ok()
            .and_then(|l| l.get(&lease.0).cloned())
    }

    /// The live session of `lease`, or [`Error::LeaseExpired`].
    fn live_lease(&self, lease: LeaseId) -> Result<Arc<LeaseSession>> {
        match self.lease(lease) {
            Some(l) if !l.client.state().is_terminated() => Ok(l),
            Some(_) => {
                self.forget(lease);
                Err(Error::LeaseExpired { lease })
            }
            None => Err(Error::LeaseExpired { lease }),
        }
    }

    fn forget(&self, lease: LeaseId) -> Option<Arc<LeaseSession>> {
        self.inner
            .leases
            .lock()
            .ok()
            .and_then(|mut l| l.remove(&lease.0))
    }

    /// Creates `path` and its missing ancestors as persistent nodes.
    async fn mkdir(&self, client: &zk::Client, path: &str, ctx: Ctx<'_>) -> Result<()> {
        let acls = self.acls();
        let options = zk::CreateMode::Persistent.with_acls(acls);
        for attempt in 0..RETRIES {
            match client.mkdir(path, &options).await {
                Ok(()) => return Ok(()),
                Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => pause(attempt).await,
                Err(zk::Error::NoNode) => {
                    return Err(Error::InvalidConfig {
                        field: "connect",
                        reason: "the chroot of the connect string does not exist".into(),
                    })
                }
                Err(e) => return Err(ctx.error(e)),
            }
        }
        Err(ctx.error(zk::Error::ConnectionLoss))
    }

    /// Creates the node `path` (creating missing parents), retrying on
    /// connection loss only when `retry_lost` says the create did not
    /// happen.
    async fn create_node(
        &self,
        client: &zk::Client,
        path: &str,
        data: &[u8],
        mode: zk::CreateMode,
        ctx: Ctx<'_>,
    ) -> std::result::Result<(zk::Stat, zk::CreateSequence), zk::Error> {
        let acls = self.acls();
        let options = mode.with_acls(acls);
        let mut made_parent = false;
        loop {
            match client.create(path, data, &options).await {
                Err(zk::Error::NoNode) if !made_parent => {
                    made_parent = true;
                    let parent = parent_of(path);
                    if let Err(e) = self.mkdir(client, parent, ctx).await {
                        debug!(%parent, error = %e, "cannot create parent");
                        return Err(zk::Error::NoNode);
                    }
                }
                other => return other,
            }
        }
    }

    /// Finds the queue entry of the lease whose unique name starts with
    /// `prefix` under `dir`, if any.
    async fn find_protected(
        &self,
        client: &zk::Client,
        dir: &str,
        prefix: &str,
        ctx: Ctx<'_>,
    ) -> Result<Option<Entry>> {
        let mut attempt = 0;
        let children = loop {
            match client.list_children(dir).await {
                Ok(c) => break c,
                Err(zk::Error::NoNode) => return Ok(None),
                Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) if attempt < RETRIES => {
                    pause(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(ctx.error(e)),
            }
        };
        let layout = self.layout();
        for child in children {
            if child.starts_with(prefix) && layout.sequence(&child).is_some() {
                let path = format!("{dir}/{child}");
                match client.get_data(&path).await {
                    Ok((data, stat)) => return Ok(Some(entry(self.relative(&path), data, &stat))),
                    Err(zk::Error::NoNode) => continue,
                    Err(e) => return Err(ctx.error(e)),
                }
            }
        }
        Ok(None)
    }

    async fn create_queue(
        &self,
        election: &ElectionName,
        lease: &LeaseSession,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        let ctx = self.ctx("create", Some(lease.id));
        let dir = self.election_path(election)?;
        let prefix = self.layout().prefix(&lease.uuid);
        let client = &lease.client;
        // The name is unique to the lease: a second create finds the first.
        if let Some(e) = self.find_protected(client, &dir, &prefix, ctx).await? {
            return Ok(CreateOutcome::Exists(e));
        }
        let path = format!("{dir}/{prefix}");
        for attempt in 0..RETRIES {
            match self
                .create_node(
                    client,
                    &path,
                    &value,
                    zk::CreateMode::EphemeralSequential,
                    ctx,
                )
                .await
            {
                Ok((stat, seq)) => {
                    let key = self.relative(&format!("{path}{seq}"));
                    return Ok(CreateOutcome::Created(entry(key, value.to_vec(), &stat)));
                }
                Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => {
                    // The reply was lost: the node may exist. Curator's
                    // protection mode: look for our unique prefix before
                    // creating again, so no ghost candidate is left behind.
                    pause(attempt).await;
                    if let Some(e) = self.find_protected(client, &dir, &prefix, ctx).await? {
                        return Ok(CreateOutcome::Created(e));
                    }
                }
                Err(e) => return Err(ctx.error(e)),
            }
        }
        Err(ctx.error(zk::Error::ConnectionLoss))
    }

    async fn create_leader(
        &self,
        election: &ElectionName,
        lease: &LeaseSession,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        let ctx = self.ctx("create", Some(lease.id));
        let path = self.leader_path(election)?;
        let client = &lease.client;
        for attempt in 0..RETRIES {
            match self
                .create_node(client, &path, &value, zk::CreateMode::Ephemeral, ctx)
                .await
            {
                Ok((stat, _)) => {
                    let key = self.relative(&path);
                    return Ok(CreateOutcome::Created(entry(key, value.to_vec(), &stat)));
                }
                Err(
                    err
                    @ (zk::Error::NodeExists | zk::Error::ConnectionLoss | zk::Error::Custom(_)),
                ) => {
                    // Someone holds it; if our reply was lost, perhaps us.
                    let lost_reply = err != zk::Error::NodeExists;
                    match client.get_data(&path).await {
                        Ok((_, stat)) if stat.ephemeral_owner == 0 => {
                            // A persistent node is no candidate and never
                            // goes away by itself: refuse, never wait on it.
                            return Err(Error::ShapeConflict {
                                election: election.to_string(),
                                existing: "a node without a session at its leader key",
                                requested: Shape::Leader.requested(),
                            });
                        }
                        Ok((data, stat)) => {
                            let e = entry(self.relative(&path), data, &stat);
                            return Ok(if lost_reply && e.lease == lease.id {
                                CreateOutcome::Created(e)
                            } else {
                                CreateOutcome::Exists(e)
                            });
                        }
                        Err(zk::Error::NoNode)
                        | Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => {
                            pause(attempt).await
                        }
                        Err(e) => return Err(ctx.error(e)),
                    }
                }
                Err(e) => return Err(ctx.error(e)),
            }
        }
        Err(ctx.error(zk::Error::ConnectionLoss))
    }

    /// Enforces one shape per election once our entry `own` exists: if a
    /// live candidate of another shape (the leader node, or a queue entry
    /// of the other layout) was created before it, our entry is deleted
    /// and the create fails with [`Error::ShapeConflict`]. A candidate of
    /// another shape created after ours sees ours here and backs off in
    /// the same way, so of two racing shapes only the older one stays: the
    /// shape of an election is that of its oldest live candidate.
    async fn one_shape(&self, election: &ElectionName, own: &Entry, mine: Shape) -> Result<()> {
        let ctx = self.ctx("create", Some(own.lease));
        let dir = self.election_path(election)?;
        let client = self.reader().await?;
        let mut attempt = 0;
        let older = loop {
            match self.older_foreign(&client, &dir, own.created, mine).await {
                Ok(found) => break found,
                Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) if attempt < RETRIES => {
                    pause(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(ctx.error(e)),
            }
        };
        let Some(theirs) = older else {
            return Ok(());
        };
        debug!(%election, key = %own.key, "another shape holds the election: withdrawing");
        self.delete(own).await?;
        Err(Error::ShapeConflict {
            election: election.to_string(),
            existing: theirs.held(),
            requested: mine.requested(),
        })
    }

    /// The shape of a live candidate of another shape than `mine`, created
    /// before `created`, among the children of `dir`, if any.
    async fn older_foreign(
        &self,
        client: &zk::Client,
        dir: &str,
        created: Revision,
        mine: Shape,
    ) -> std::result::Result<Option<Shape>, zk::Error> {
        let children = match client.list_children(dir).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => return Ok(None),
            Err(e) => return Err(e),
        };
        let foreign: Vec<(String, Shape)> = children
            .into_iter()
            .filter_map(|c| Shape::of(&c).filter(|s| *s != mine).map(|s| (c, s)))
            .collect();
        if foreign.is_empty() {
            return Ok(None);
        }
        let mut reader = client.new_multi_reader();
        for (name, _) in &foreign {
            reader.add_get_data(&format!("{dir}/{name}"))?;
        }
        let results = reader.commit().await?;
        Ok(results
            .into_iter()
            .zip(&foreign)
            .find_map(|(r, (_, shape))| match r {
                zk::MultiReadResult::Data { stat, .. }
                    if stat.ephemeral_owner != 0 && zxid(stat.czxid) < created =>
                {
                    Some(*shape)
                }
                _ => None,
            }))
    }

    fn leader_path(&self, election: &ElectionName) -> Result<String> {
        Ok(format!("{}/{LEADER_NODE}", self.election_path(election)?))
    }

    /// Reads the election's candidates with `client`: the children list,
    /// then one multi-read of every candidate and (last) the election node
    /// itself, repeated if a child was created or deleted in between.
    pub(crate) async fn read_candidates(&self, client: &zk::Client, dir: &str) -> Result<Snapshot> {
        let ctx = self.ctx("read candidates", None);
        let layout = self.layout();
        let mut last: Option<Snapshot> = None;
        for attempt in 0..RETRIES {
            let (children, stat) = match client.get_children(dir).await {
                Ok(r) => r,
                Err(zk::Error::NoNode) => {
                    let revision = ancestor_revision(client, dir, ctx).await?;
                    return Ok(Snapshot {
                        entries: Vec::new(),
                        revision,
                    });
                }
                Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => {
                    pause(attempt).await;
                    continue;
                }
                Err(e) => return Err(ctx.error(e)),
            };
            let mut names: Vec<(String, String)> = children
                .into_iter()
                .filter_map(|c| layout.sequence(&c).map(|s| (s.to_owned(), c.clone())))
                .collect();
            names.sort();
            let mut reader = client.new_multi_reader();
            for (_, name) in &names {
                reader
                    .add_get_data(&format!("{dir}/{name}"))
                    .map_err(|e| ctx.error(e))?;
            }
            reader.add_get_data(dir).map_err(|e| ctx.error(e))?;
            let results = match reader.commit().await {
                Ok(r) => r,
                Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => {
                    pause(attempt).await;
                    continue;
                }
                Err(e) => return Err(ctx.error(e)),
            };
            let mut entries = Vec::with_capacity(names.len());
            let mut parent = None;
            for (i, r) in results.into_iter().enumerate() {
                match (names.get(i), r) {
                    // A persistent node (no session owns it) is never a
                    // candidate, whatever its name.
                    (Some(_), zk::MultiReadResult::Data { stat, .. })
                        if stat.ephemeral_owner == 0 => {}
                    (Some((_, name)), zk::MultiReadResult::Data { data, stat }) => {
                        entries.push(entry(self.relative(&format!("{dir}/{name}")), data, &stat));
                    }
                    (None, zk::MultiReadResult::Data { stat, .. }) => parent = Some(stat),
                    _ => {}
                }
            }
            let Some(parent) = parent else {
                // The election node went away in between: read again.
                continue;
            };
            let revision = entries
                .iter()
                .map(|e| e.modified)
                .chain([zxid(parent.pzxid), zxid(parent.mzxid)])
                .max()
                .unwrap_or(0);
            let snapshot = Snapshot { entries, revision };
            if parent.pzxid == stat.pzxid {
                return Ok(snapshot);
            }
            last = Some(Snapshot {
                revision: zxid(stat.pzxid),
                ..snapshot
            });
        }
        // Children keep changing under us. The list may then lack a
        // candidate created after it: report the list's own pzxid, which
        // is older than any such creation, so a watch from it misses
        // nothing (it may repeat a few changes).
        last.ok_or_else(|| ctx.error(zk::Error::ConnectionLoss))
    }

    /// [`queue_around`](CoordinationBackend::queue_around) in one atomic
    /// multi-read: the election's children (names only), the election
    /// node and `own`'s node. When no candidate name sorts before ours,
    /// we lead and that one round trip is the whole read (the hand-over's
    /// critical path); otherwise the full read finds the nearest live
    /// predecessor (skipping nodes no session owns).
    async fn read_around(&self, client: &zk::Client, dir: &str, own: &Entry) -> Result<Snapshot> {
        let ctx = self.ctx("read candidates", None);
        let layout = self.layout();
        let own_path = self.resolve(&own.key)?;
        let own_name = own_path.rsplit('/').next().unwrap_or_default();
        let Some(own_seq) = layout.sequence(own_name) else {
            return Ok(self.read_candidates(client, dir).await?.around(own));
        };
        let ops = [Read::Children(dir), Read::Data(dir), Read::Data(&own_path)];
        let mut it = multi_read(client, &ops, ctx).await?.into_iter();
        // No election node (or an unexpected answer): the full read says
        // what there is.
        if let (
            Some(zk::MultiReadResult::Children { children }),
            Some(zk::MultiReadResult::Data { stat: parent, .. }),
        ) = (it.next(), it.next())
        {
            let revision = zxid(parent.pzxid).max(zxid(parent.mzxid));
            let mine = match it.next() {
                Some(zk::MultiReadResult::Data { data, stat }) if stat.ephemeral_owner != 0 => {
                    Some(entry(own.key.clone(), data, &stat))
                }
                Some(zk::MultiReadResult::Error {
                    err: zk::Error::NoNode,
                }) => {
                    return Ok(Snapshot {
                        entries: Vec::new(),
                        revision,
                    })
                }
                _ => None,
            };
            let ahead = children.iter().any(|c| {
                layout
                    .sequence(c)
                    .is_some_and(|seq| (seq, c.as_str()) < (own_seq, own_name))
            });
            if let Some(mine) = mine.filter(|_| !ahead) {
                let revision = revision.max(mine.modified);
                return Ok(Snapshot {
                    entries: vec![mine],
                    revision,
                });
            }
        }
        Ok(self.read_candidates(client, dir).await?.around(own))
    }

    /// One node and the revision of the read.
    pub(crate) async fn read_key(
        &self,
        client: &zk::Client,
        key: &str,
        path: &str,
    ) -> Result<(Option<Entry>, Revision)> {
        let ctx = self.ctx("get", None);
        let results = multi_read(
            client,
            &[Read::Data(path), Read::Data(parent_of(path))],
            ctx,
        )
        .await?;
        let mut it = results.into_iter();
        let node = it.next();
        let parent = it.next();
        let parent_rev = match parent {
            Some(zk::MultiReadResult::Data { stat, .. }) => Some(zxid(stat.pzxid)),
            _ => None,
        };
        match node {
            Some(zk::MultiReadResult::Data { data, stat }) => {
                let e = entry(key.to_owned(), data, &stat);
                let rev = e.modified.max(parent_rev.unwrap_or(0));
                Ok((Some(e), rev))
            }
            Some(zk::MultiReadResult::Error {
                err: zk::Error::NoNode,
            }) => {
                let rev = match parent_rev {
                    Some(r) => r,
                    None => ancestor_revision(client, path, ctx).await?,
                };
                Ok((None, rev))
            }
            Some(zk::MultiReadResult::Error { err }) => Err(ctx.error(err)),
            _ => Err(error::protocol("get", "unexpected multi-read answer")),
        }
    }

    /// Whether `path` names a queue entry (an ephemeral-sequential node of
    /// our layout).
    fn is_sequential(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or_default();
        self.layout().sequence(name).is_some()
    }

    /// Deletes a queue entry by its path, in one round trip.
    ///
    /// A sequential node's name is never given twice under one election
    /// node (ZooKeeper's counter only grows), and ours carries the lease's
    /// UUID: while a node of that name exists it is the entry we created,
    /// so no check of its czxid is needed first. (An election node is
    /// deleted only once empty; a node of the same name could then only
    /// come back under a new election node from the same lease, which
    /// creates again only after this delete has returned.)
    async fn delete_sequential(
        &self,
        client: &zk::Client,
        path: &str,
        ctx: Ctx<'_>,
    ) -> Result<bool> {
        for attempt in 0..RETRIES {
            match client.delete(path, None).await {
                Ok(()) => return Ok(true),
                Err(zk::Error::NoNode) => return Ok(false),
                // A lost reply: the next round finds out whether it went.
                Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => pause(attempt).await,
                Err(e) => return Err(ctx.error(e)),
            }
        }
        Err(ctx.error(zk::Error::ConnectionLoss))
    }

    /// The stat of `entry`'s node if it is still that entry (same czxid).
    async fn owned_stat(
        &self,
        client: &zk::Client,
        entry: &Entry,
        ctx: Ctx<'_>,
    ) -> Result<Option<zk::Stat>> {
        let path = self.resolve(&entry.key)?;
        for attempt in 0..RETRIES {
            match client.check_stat(&path).await {
                Ok(Some(stat)) if zxid(stat.czxid) == entry.created => return Ok(Some(stat)),
                Ok(_) => return Ok(None),
                Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => pause(attempt).await,
                Err(zk::Error::BadArguments(_)) => return Ok(None),
                Err(e) => return Err(ctx.error(e)),
            }
        }
        Err(ctx.error(zk::Error::ConnectionLoss))
    }
}

/// The longest a session's connection may stay silent before the client
/// gives up on it and tries again. zookeeper-client's default is 2/5 of
/// the session timeout: 4 s for the 10 s shared session, so a
/// reconnection that reached a server still starting up (connection
/// accepted, never answered) stalled every read for 4 s after a server
/// restart (found by the fault campaign). The client pings every 3/8 of
/// this, so a live connection is never silent that long.
///
/// The same bound applies to each attempt at opening a session: a
/// handshake left unanswered that long is given up and tried again (after
/// a back-off) while the connect timeout lasts, so a server that is slow
/// under a burst of new sessions delays them instead of failing them.
const MAX_SILENCE: Duration = Duration::from_secs(1);

/// The retry loop of every session opened with `options`.
fn connect_retry(options: &ZkOptions) -> ConnectRetry {
    ConnectRetry::new(KIND, options.connect.clone(), options.connect_timeout)
}

/// Opens one session with `session_timeout`, retrying failed attempts
/// with back-off until the connect timeout runs out.
///
/// # Errors
/// [`Error::Unreachable`] (endpoint, attempts, last cause, and what a
/// test handshake found) after the connect timeout; [`Error::InvalidConfig`]
/// for a bad connect string, [`Error::Unauthenticated`] when the server
/// rejects the credentials, at once.
async fn open_session(options: &ZkOptions, session_timeout: Duration) -> Result<zk::Client> {
    match connect_retry(options)
        .run(|_| session_attempt(options, session_timeout))
        .await
    {
        Ok(client) => Ok(client),
        Err(e) => Err(diagnosed(e, options).await),
    }
}

/// The TLS settings of the backend's own handshakes with the servers.
///
/// # Errors
/// [`Error::InvalidConfig`] when the certificates cannot be used.
fn probe_tls(options: &ZkOptions) -> Result<Option<probe::ProbeTls>> {
    #[cfg(feature = "tls")]
    return crate::tls::rustls_config(options);
    #[cfg(not(feature = "tls"))]
    {
        let _ = options;
        Ok(None)
    }
}

/// A failed attempt with `cause`: permanent when TLS is why (a
/// certificate refused on either side), else worth retrying.
async fn attempt_failed(options: &ZkOptions, cause: tenure_core::BoxError) -> AttemptError {
    #[cfg(feature = "tls")]
    if let Some(e) = crate::tls::failure(options).await {
        return AttemptError::Permanent(e);
    }
    #[cfg(not(feature = "tls"))]
    let _ = options;
    AttemptError::Transient(cause)
}

/// zookeeper-client's one word for "every host failed" (the real cause
/// goes to its log only): the cause of an attempt that ended so.
#[derive(Debug)]
struct NoHostAvailable {
    handshake_timeout: Duration,
}

impl std::fmt::Display for NoHostAvailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no available hosts (each refused the connection, closed it, or left the \
             handshake unanswered for {:?})",
            self.handshake_timeout
        )
    }
}

impl std::error::Error for NoHostAvailable {}

/// One attempt at opening a session: every host of the connect string
/// tried once (`with_fail_eagerly`), each handshake given up after
/// [`MAX_SILENCE`] of silence.
async fn session_attempt(
    options: &ZkOptions,
    session_timeout: Duration,
) -> std::result::Result<zk::Client, AttemptError> {
    let handshake_timeout = (session_timeout * 2 / 5).min(MAX_SILENCE);
    let mut connector = zk::Client::connector()
        .with_session_timeout(session_timeout)
        .with_connection_timeout(handshake_timeout)
        .with_fail_eagerly();
    if let Some((user, password)) = &options.digest {
        connector = connector.with_auth("digest", format!("{user}:{password}").as_bytes());
    }
    let ctx = Ctx {
        operation: "connect",
        endpoint: &options.connect,
        lease: None,
    };
    #[cfg(feature = "tls")]
    let connected = match &options.tls {
        Some(pem) => {
            let tls = crate::tls::client_options(pem).map_err(AttemptError::Permanent)?;
            connector
                .with_tls(tls)
                .secure_connect(&options.connect)
                .await
        }
        None => connector.connect(&options.connect).await,
    };
    #[cfg(not(feature = "tls"))]
    let connected = connector.connect(&options.connect).await;
    match connected {
        Ok(client) => Ok(client),
        Err(zk::Error::BadArguments(reason)) => {
            Err(AttemptError::Permanent(Error::InvalidConfig {
                field: "connect",
                reason: format!("bad connect string {:?}: {reason}", options.connect),
            }))
        }
        Err(e @ zk::Error::AuthFailed) => Err(AttemptError::Permanent(ctx.error(e))),
        Err(zk::Error::NoHosts) => {
            Err(attempt_failed(options, Box::new(NoHostAvailable { handshake_timeout })).await)
        }
        // Connection loss, a handshake cut short, a session the server
        // closed at once: the next attempt may well succeed (unless TLS
        // is why).
        Err(e) => Err(attempt_failed(options, Box::new(e)).await),
    }
}

/// Adds to an [`Error::Unreachable`] whose retries ended on "no available
/// hosts" what one test handshake per host finds (a refused port, a
/// server closing connections beyond `maxClientCnxns`, a frozen server).
async fn diagnosed(e: Error, options: &ZkOptions) -> Error {
    let Error::Unreachable {
        backend,
        endpoint,
        source,
    } = e
    else {
        return e;
    };
    let source = match source.downcast::<ConnectFailed>() {
        Ok(mut failed) if failed.last.is::<NoHostAvailable>() => {
            let tls = probe_tls(options).ok().flatten();
            let found = probe::diagnose(&options.connect, MAX_SILENCE, tls.as_ref()).await;
            failed.last = format!("{}; a test handshake found {found}", failed.last).into();
            failed
        }
        Ok(failed) => failed,
        Err(other) => other,
    };
    Error::Unreachable {
        backend,
        endpoint,
        source,
    }
}

/// A pause before retry `attempt` after a connection loss or a race:
/// 20 ms doubling up to 500 ms, so that the retries of one operation span
/// a reconnection (about 8 s in all).
pub(crate) async fn pause(attempt: usize) {
    let ms = 20u64 << attempt.min(5);
    tokio::time::sleep(Duration::from_millis(ms.min(500))).await;
}

/// A zxid as a revision (zxids are never negative).
pub(crate) fn zxid(z: i64) -> Revision {
    z.max(0) as Revision
}

pub(crate) fn entry(key: String, data: Vec<u8>, stat: &zk::Stat) -> Entry {
    Entry {
        key,
        value: Bytes::from(data),
        lease: LeaseId(stat.ephemeral_owner),
        created: zxid(stat.czxid),
        modified: zxid(stat.mzxid),
    }
}

/// The parent path of an absolute path (`/` for top-level nodes).
pub(crate) fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// One operation of a [`multi_read`].
pub(crate) enum Read<'a> {
    /// A node's data and stat.
    Data(&'a str),
    /// A node's children's names.
    Children(&'a str),
}

/// Reads `ops` in one atomic multi-read (one round trip, one point in the
/// server's history), retried across connection losses for as long as
/// [`pause`] spans (about 8 s).
pub(crate) async fn multi_read(
    client: &zk::Client,
    ops: &[Read<'_>],
    ctx: Ctx<'_>,
) -> Result<Vec<zk::MultiReadResult>> {
    for attempt in 0..RETRIES {
        let mut reader = client.new_multi_reader();
        for op in ops {
            match op {
                Read::Data(path) => reader.add_get_data(path),
                Read::Children(path) => reader.add_get_children(path),
            }
            .map_err(|e| ctx.error(e))?;
        }
        match reader.commit().await {
            Ok(results) => return Ok(results),
            Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => pause(attempt).await,
            Err(e) => return Err(ctx.error(e)),
        }
    }
    Err(ctx.error(zk::Error::ConnectionLoss))
}

/// The `pzxid` of the deepest existing ancestor of `path` (the zxid of
/// the last creation or deletion among its children): any creation or
/// deletion at or below `path` since then would have changed it. Read in
/// one multi-read.
pub(crate) async fn ancestor_revision(
    client: &zk::Client,
    path: &str,
    ctx: Ctx<'_>,
) -> Result<Revision> {
    let mut ancestors = Vec::new();
    let mut p = path;
    loop {
        p = parent_of(p);
        ancestors.push(p.to_owned());
        if p == "/" {
            break;
        }
    }
    let ops: Vec<Read<'_>> = ancestors.iter().map(|a| Read::Data(a)).collect();
    Ok(multi_read(client, &ops, ctx)
        .await?
        .into_iter()
        .find_map(|r| match r {
            zk::MultiReadResult::Data { stat, .. } => Some(zxid(stat.pzxid)),
            _ => None,
        })
        .unwrap_or(0))
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
        let id = LeaseId(client.session_id().0);
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
        let lease = Arc::new(LeaseSession {
            id,
            client,
            uuid: Uuid::new_v4(),
            ttl: granted,
            renewed: Mutex::new(started),
            creating: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(expire_unrenewed(
            Arc::downgrade(&self.inner),
            Arc::downgrade(&lease),
        ));
        if let Ok(mut l) = self.inner.leases.lock() {
            l.insert(id.0, lease);
        }
        debug!(%id, ?granted, "lease session opened");
        Ok(LeaseGrant { id, ttl: granted })
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let l = self.live_lease(lease)?;
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
                    self.forget(lease);
                }
                Err(err)
            }
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        let Some(l) = self.forget(lease) else {
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
        let l = self.live_lease(lease)?;
        let _one_at_a_time = l.creating.lock().await;
        let outcome = match slot {
            Slot::Queue => self.create_queue(election, &l, value).await?,
            Slot::Leader => self.create_leader(election, &l, value).await?,
        };
        let mine = match slot {
            Slot::Queue => Shape::Queue(self.layout()),
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
    }

    async fn candidates(&self, election: &ElectionName) -> Result<Snapshot> {
        let dir = self.election_path(election)?;
        self.on_reader(|client| {
            let dir = dir.clone();
            async move { self.read_candidates(&client, &dir).await }
        })
        .await
    }

    async fn queue_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot> {
        let dir = self.election_path(election)?;
        self.on_reader(|client| {
            let dir = dir.clone();
            async move { self.read_around(&client, &dir, own).await }
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<(Option<Entry>, Revision)> {
        let path = self.resolve(key)?;
        self.on_reader(|client| {
            let path = path.clone();
            async move { self.read_key(&client, key, &path).await }
        })
        .await
    }

    async fn update(&self, entry: &Entry, value: Bytes) -> Result<Entry> {
        let ctx = self.ctx("update", None);
        let client = self.reader().await?;
        let not_owner = || Error::NotOwner {
            key: entry.key.clone(),
        };
        let path = self.resolve(&entry.key)?;
        for attempt in 0..RETRIES {
            let Some(stat) = self.owned_stat(&client, entry, ctx).await? else {
                return Err(not_owner());
            };
            match client.set_data(&path, &value, Some(stat.version)).await {
                Ok(stat) => {
                    return Ok(Entry {
                        value,
                        modified: zxid(stat.mzxid),
                        created: zxid(stat.czxid),
                        lease: LeaseId(stat.ephemeral_owner),
                        key: entry.key.clone(),
                    })
                }
                Err(zk::Error::NoNode) => return Err(not_owner()),
                Err(zk::Error::BadVersion)
                | Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => pause(attempt).await,
                Err(e) => return Err(ctx.error(e)),
            }
        }
        Err(ctx.error(zk::Error::ConnectionLoss))
    }

    async fn delete(&self, entry: &Entry) -> Result<bool> {
        let ctx = self.ctx("delete", None);
        let client = self.reader().await?;
        let path = self.resolve(&entry.key)?;
        if self.is_sequential(&path) {
            return self.delete_sequential(&client, &path, ctx).await;
        }
        for attempt in 0..RETRIES {
            let Some(stat) = self.owned_stat(&client, entry, ctx).await? else {
                return Ok(false);
            };
            match client.delete(&path, Some(stat.version)).await {
                Ok(()) => return Ok(true),
                Err(zk::Error::NoNode) => return Ok(false),
                // A lost reply: the next round finds out whether it went.
                Err(zk::Error::BadVersion)
                | Err(zk::Error::ConnectionLoss | zk::Error::Custom(_)) => pause(attempt).await,
                Err(e) => return Err(ctx.error(e)),
            }
        }
        Err(ctx.error(zk::Error::ConnectionLoss))
    }

    /// Refuses, with [`Error::KeyInElection`], keys inside the guard's
    /// election (its node and everything below it) and nodes named like a
    /// candidate or a leader node (`leader`, `…latch-<n>`, `…__lock__<n>`),
    /// which would sit among the candidates of the election above them.
    async fn guarded_put(&self, guard: &Entry, key: &str, value: Bytes) -> Result<Revision> {
        let ctx = self.ctx("guarded put", None);
        let path = self.resolve(key)?;
        let guard_path = self.resolve(&guard.key)?;
        let election = parent_of(&guard_path);
        let guard_is_candidate =
            Shape::of(guard_path[election.len()..].trim_start_matches('/')).is_some();
        let inside = if guard_is_candidate
            && (path == election || path.starts_with(&format!("{election}/")))
        {
            Some(election)
        } else {
            let name = &path[parent_of(&path).len()..];
            Shape::of(name.trim_start_matches('/'))
                .is_some()
                .then(|| parent_of(&path))
        };
        if let Some(election) = inside {
            return Err(Error::KeyInElection {
                key: key.to_owned(),
                election: self.relative(election),
            });
        }
        let client = self.reader().await?;
        let not_owner = || Error::NotOwner {
            key: guard.key.clone(),
        };
        let acls = self.acls();
        let persistent = zk::CreateMode::Persistent.with_acls(acls);
        let mut create = false;
        for attempt in 0..RETRIES {
            let Some(stat) = self.owned_stat(&client, guard, ctx).await? else {
                return Err(not_owner());
            };
            let mut writer = client.new_multi_writer();
            writer
                .add_check_version(&guard_path, stat.version)
                .map_err(|e| ctx.error(e))?;
            if create {
                writer
                    .add_create(&path, &value, &persistent)
                    .map_err(|e| ctx.error(e))?;
            } else {
                writer
                    .add_set_data(&path, &value, None)
                    .map_err(|e| ctx.error(e))?;
            }
            match writer.commit().await {
                Ok(results) => {
                    for r in results {
                        match r {
                            zk::MultiWriteResult::SetData { stat } => return Ok(zxid(stat.mzxid)),
                            zk::MultiWriteResult::Create { stat, .. } if !stat.is_invalid() => {
                                return Ok(zxid(stat.mzxid))
                            }
                            zk::MultiWriteResult::Create { .. } => {
                                // Old servers omit the stat: read it back.
                                return match client.check_stat(&path).await {
                                    Ok(Some(s)) => Ok(zxid(s.mzxid)),
                                    Ok(None) => {
                                        Err(error::protocol("guarded put", "created node vanished"))
                                    }
                                    Err(e) => Err(ctx.error(e)),
                                };
                            }
                            _ => {}
                        }
                    }
                    return Err(error::protocol(
                        "guarded put",
                        "multi without a write result",
                    ));
                }
                Err(zk::MultiWriteError::OperationFailed { index: 0, source }) => match source {
                    // The guard changed version (a proclaim) or went away:
                    // the next round re-checks its czxid.
                    zk::Error::BadVersion | zk::Error::NoNode => continue,
                    e => return Err(ctx.error(e)),
                },
                Err(zk::MultiWriteError::OperationFailed { source, .. }) => match source {
                    zk::Error::NoNode if !create => create = true,
                    zk::Error::NodeExists if create => create = false,
                    zk::Error::NoNode => {
                        self.mkdir(&client, parent_of(&path), ctx).await?;
                    }
                    e => return Err(ctx.error(e)),
                },
                Err(zk::MultiWriteError::RequestFailed { source }) => match source {
                    zk::Error::ConnectionLoss | zk::Error::Custom(_) => pause(attempt).await,
                    e => return Err(ctx.error(e)),
                },
            }
        }
        Err(ctx.error(zk::Error::ConnectionLoss))
    }

    async fn elections(&self, prefix: &str) -> Result<Vec<ElectionName>> {
        elections::list(self, prefix).await
    }

    async fn watch_elections(&self, prefix: &str) -> Result<ElectionStream> {
        elections::watch(self, prefix).await
    }

    async fn watch(&self, scope: WatchScope, from: Revision) -> Result<WatchStream> {
        let client = self.reader().await?;
        match scope {
            WatchScope::Key(key) => {
                let path = self.resolve(&key)?;
                watch::key(self.clone(), client, key, path, from).await
            }
            WatchScope::Election(election) => {
                let dir = self.election_path(&election)?;
                watch::election(self.clone(), client, dir, from).await
            }
        }
    }
}
