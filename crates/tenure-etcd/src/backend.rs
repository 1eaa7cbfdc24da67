//! [`EtcdBackend`]: the [`CoordinationBackend`] over etcd v3.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, PutOptions, ResponseHeader,
    SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
};
use tenure_core::queue_reads::{QueueReads, QueueSource};
use tenure_core::retry::AttemptError;
use tenure_core::{
    ConnectRetry, CoordinationBackend, CreateOutcome, ElectionName, ElectionStream, Entry, Error,
    LeaseGrant, LeaseId, PrefixWatchStream, Queued, Result, Revision, Slot, Snapshot, WatchScope,
    WatchStream,
};
use tokio::sync::Semaphore;
use tracing::debug;

use crate::error::{self, EtcdError, KIND};
use crate::keepalive::KeepAlives;
use crate::options::EtcdOptions;
use crate::{elections, watch};

mod queue;

/// How long a diagnostic TLS handshake after a failed connection attempt
/// waits for the server to refuse the client certificate.
#[cfg(feature = "tls")]
const TLS_DIAGNOSIS_WAIT: Duration = Duration::from_secs(1);

/// The largest TTL etcd grants (`MaxLeaseTTL` in etcd's lessor).
const MAX_TTL: Duration = Duration::from_secs(9_000_000_000);

/// An etcd v3 cluster as a [`CoordinationBackend`].
///
/// Keys follow etcd's own `concurrency.Election` exactly, so tenure,
/// `etcdctl elect` and Go services using `clientv3/concurrency` can share
/// an election:
///
/// - queue entry ([`Slot::Queue`]): `<prefix><election>/<lease id in
///   lower-case hex>`, value = the proposal, bound to the lease; the
///   lowest creation revision leads;
/// - single leader key ([`Slot::Leader`]): `<prefix><election>`.
///
/// `<election>` is the name with `%` written `%25` and `/` written `%2F`
/// ([`election_key`](Self::election_key)): a nested election `jobs/shard-7`
/// lives at `jobs%2Fshard-7/…`, outside the `jobs/` range that etcd's
/// recipe (and `etcdctl elect jobs`) lists as the queue of `jobs`. Names
/// without `%` or `/` are used as they are.
///
/// An election holds one strategy at a time: a queue create fails with
/// [`Error::ShapeConflict`] while the leader key is held by a lease, and a
/// leader create while any queue entry is; each check is a compare in the
/// create's own transaction, so two candidates of different strategies
/// racing cannot both get in. Keys bound to no lease (application data)
/// are never candidates.
///
/// Every operation goes over one connection ([`Client`] clones share it);
/// the keep-alives of every lease share a few bidirectional streams on it
/// (at most 64, one per lane of leases), so a thousand candidates (or a
/// [`Session`](tenure_core::Session) shared by a thousand elections) cost
/// no more. Cloning the backend is cheap and shares all of it.
#[derive(Clone)]
pub struct EtcdBackend {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    prefix: String,
    endpoint: String,
    request_timeout: Duration,
    /// Permits for writes in flight ([`EtcdOptions::writes_in_flight`]).
    writes: Semaphore,
    /// The keep-alive stream every lease shares, opened on first use.
    keep_alives: KeepAlives,
    /// Concurrent queue reads of one election, answered by one read.
    queue_reads: QueueReads,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("endpoint", &self.inner.endpoint)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// Formats a lease id as Go's `fmt.Sprintf("%x", int64)` does (a negative
/// id gets a minus sign; etcd only hands out positive ones).
pub(crate) fn lease_hex(id: i64) -> String {
    if id < 0 {
        format!("-{:x}", id.unsigned_abs())
    } else {
        format!("{id:x}")
    }
}

/// Whether `entry` is a queue entry of the election whose directory is
/// `dir` (`<election key>/`): a direct child bound to a lease and named by
/// that lease's id in hex, exactly as etcd's election recipe names
/// candidates. This leaves out keys bound to no lease (application data,
/// even one named `0`) and anything deeper.
pub(crate) fn is_queue_entry(dir: &str, entry: &Entry) -> bool {
    entry.lease.0 != 0 && entry.key.strip_prefix(dir) == Some(lease_hex(entry.lease.0).as_str())
}

/// The end of the key range holding every key that starts with `dir`
/// (etcd's `GetPrefixRangeEnd`: the last byte incremented; `dir` always
/// ends with `/`, so no carry is needed).
fn prefix_end(dir: &str) -> Vec<u8> {
    let mut end = dir.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

impl EtcdBackend {
    /// Connects to the cluster and checks that it answers (one status
    /// request), so that a wrong endpoint or password fails here.
    ///
    /// A failed attempt (refused, dropped, no answer) is retried with
    /// jittered back-off until the
    /// [connect timeout](EtcdOptions::connect_timeout) runs out.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bad options;
    /// [`Error::Unreachable`] naming the endpoints, the number of attempts
    /// and the last cause when no attempt succeeded within the connect
    /// timeout; [`Error::Unauthenticated`] when the credentials are
    /// refused, at once.
    pub async fn connect(options: EtcdOptions) -> Result<EtcdBackend> {
        options.validate()?;
        let endpoints = options.normalized_endpoints();
        let endpoint = endpoints.join(",");
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            // Fail fast, instead of hanging, on a member cut off from the
            // cluster's leader (what etcd's Go election recipe does too).
            .with_require_leader(true)
            .with_auto_token_refresh(true);
        if let Some((user, password)) = &options.user {
            connect = connect.with_user(user.clone(), password.clone());
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &options.tls {
            connect = connect.with_tls(tls.to_client());
        }
        let wrap = |operation, source| -> Error {
            EtcdError {
                operation,
                endpoint: endpoint.clone(),
                lease: None,
                source,
            }
            .into()
        };
        // Each attempt builds a fresh client (its channel connects lazily)
        // and asks for the status; a refused or dropped connection and a
        // busy server are retried until the connect timeout runs out.
        let attempt = |_| async {
            let ready = async {
                let mut client = Client::connect(&endpoints, Some(connect.clone()))
                    .await
                    .map_err(|e| wrap("connect", e))?;
                client.status().await.map_err(|e| wrap("connect", e))?;
                Ok::<Client, Error>(client)
            };
            let failed = match ready.await {
                Ok(client) => return Ok(client),
                Err(e) => e,
            };
            // A server refusing our certificate only closes the
            // connection: find out whether TLS is why, which is permanent.
            #[cfg(feature = "tls")]
            if let (true, Some(tls)) = (failed.is_transient(), &options.tls) {
                if let Some(reason) = tls.diagnose(&endpoints, TLS_DIAGNOSIS_WAIT).await {
                    return Err(AttemptError::Permanent(Error::Tls {
                        backend: KIND,
                        endpoint: endpoint.clone(),
                        reason,
                    }));
                }
            }
            Err(match failed {
                // Whatever else went wrong while connecting, the cluster
                // is not usable from here yet.
                Error::Unreachable { source, .. } | Error::Backend { source, .. } => {
                    AttemptError::Transient(source)
                }
                e @ Error::Timeout { .. } => AttemptError::Transient(Box::new(e)),
                e => AttemptError::Permanent(e),
            })
        };
        let client = ConnectRetry::new(KIND, endpoint.clone(), options.connect_timeout)
            .run(attempt)
            .await?;
        debug!(%endpoint, prefix = %options.prefix, "connected to etcd");
        Ok(EtcdBackend {
            inner: Arc::new(Inner {
                keep_alives: KeepAlives::new(client.clone(), endpoint.clone()),
                queue_reads: QueueReads::new(),
                client,
                prefix: options.prefix,
                endpoint,
                request_timeout: options.request_timeout,
                writes: Semaphore::new(options.writes_in_flight),
            }),
        })
    }

    /// The underlying etcd client (shares this backend's connection).
    pub fn client(&self) -> Client {
        self.inner.client.clone()
    }

    /// The key prefix (namespace) in use.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The endpoints, comma-separated, as they appear in errors.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The key of `lease`'s queue entry in `election` (relative to the
    /// prefix): `<election key>/<lease hex>`, as etcd's Go election names
    /// it.
    pub fn queue_key(election: &ElectionName, lease: LeaseId) -> String {
        format!("{}/{}", Self::election_key(election), lease_hex(lease.0))
    }

    /// The election's name as etcd's recipe uses it (relative to the
    /// prefix): its leader key, and with `/` appended the prefix of its
    /// queue. `%` becomes `%25` and `/` becomes `%2F`, so a nested
    /// election's keys never fall under its parent's `<name>/` and two
    /// names never share a key; other names are unchanged, which keeps
    /// `etcdctl elect <name>` working on them.
    pub fn election_key(election: &ElectionName) -> String {
        let name = election.as_str();
        if !name.contains(['%', '/']) {
            return name.to_owned();
        }
        name.replace('%', "%25").replace('/', "%2F")
    }

    /// The queue directory of `election` (`<election key>/`).
    pub(crate) fn queue_dir(election: &ElectionName) -> String {
        format!("{}/", Self::election_key(election))
    }

    /// The election whose key space holds `key`: the part of the key
    /// before its first `/` (an election key never holds one), decoded.
    pub(crate) fn election_of(key: &str) -> String {
        let head = key.split('/').next().unwrap_or(key);
        head.replace("%2F", "/").replace("%25", "%")
    }

    /// The condition of every write guarded by `entry`: its key still
    /// holds that entry (same create revision), so the write fails once
    /// the entry was deleted or replaced.
    fn still_ours(&self, entry: &Entry) -> Compare {
        let created = i64::try_from(entry.created).unwrap_or(i64::MAX);
        Compare::create_revision(self.full(&entry.key), CompareOp::Equal, created)
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    fn strip(&self, key: &[u8]) -> String {
        let key = String::from_utf8_lossy(key);
        match key.strip_prefix(self.inner.prefix.as_str()) {
            Some(k) => k.to_owned(),
            None => key.into_owned(),
        }
    }

    pub(crate) fn entry(&self, kv: &KeyValue) -> Entry {
        Entry {
            key: self.strip(kv.key()),
            value: Bytes::copy_from_slice(kv.value()),
            lease: LeaseId(kv.lease()),
            created: rev(kv.create_revision()),
            modified: rev(kv.mod_revision()),
        }
    }

    /// Runs one write with the request timeout, mapping its errors: as
    /// [`call`](Self::call), once one of the connection's write permits
    /// is free (the wait counts against the same timeout).
    pub(crate) async fn write<T>(
        &self,
        operation: &'static str,
        lease: Option<LeaseId>,
        fut: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        let timeout = self.inner.request_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let _permit = match tokio::time::timeout_at(deadline, self.inner.writes.acquire()).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed.
            Ok(Err(_)) => return Err(error::protocol(operation, "write permits closed")),
            Err(_) => return Err(error::timeout(operation, timeout)),
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.call_within(operation, lease, left, fut).await
    }

    /// Runs one request with the request timeout, mapping its errors.
    async fn call<T>(
        &self,
        operation: &'static str,
        lease: Option<LeaseId>,
        fut: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        self.call_within(operation, lease, self.inner.request_timeout, fut)
            .await
    }

    /// Runs one request within `limit`, mapping its errors (a timeout
    /// names the connection's request timeout).
    async fn call_within<T>(
        &self,
        operation: &'static str,
        lease: Option<LeaseId>,
        limit: Duration,
        fut: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(EtcdError {
                operation,
                endpoint: self.inner.endpoint.clone(),
                lease,
                source,
            }
            .into()),
            Err(_) => Err(error::timeout(operation, self.inner.request_timeout)),
        }
    }
}

/// A revision from etcd (never negative) as tenure's.
fn rev(r: i64) -> Revision {
    r.max(0).unsigned_abs()
}

pub(crate) fn header_rev(
    operation: &'static str,
    header: Option<&ResponseHeader>,
) -> Result<Revision> {
    header
        .map(|h| rev(h.revision()))
        .ok_or_else(|| error::protocol(operation, "response without header"))
}

#[async_trait]
impl CoordinationBackend for EtcdBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// From 1 s (etcd counts whole seconds; the server raises a TTL below
    /// its own minimum, derived from its election timeout, and
    /// [`LeaseGrant::ttl`] reports what it granted) to etcd's maximum.
    fn ttl_bounds(&self) -> (Duration, Duration) {
        (Duration::from_secs(1), MAX_TTL)
    }

    fn leader_key(&self, election: &ElectionName) -> String {
        Self::election_key(election)
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant> {
        tenure_core::check_ttl(ttl, self.ttl_bounds())?;
        // Whole seconds, rounded up: never grant less than asked for.
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        let mut lc = self.inner.client.lease_client();
        let resp = self
            .write("grant lease", None, lc.grant(secs, None))
            .await?;
        if !resp.error().is_empty() {
            return Err(error::protocol("grant lease", resp.error().to_owned()));
        }
        if resp.ttl() <= 0 {
            return Err(error::protocol(
                "grant lease",
                format!("granted a TTL of {} s", resp.ttl()),
            ));
        }
        Ok(LeaseGrant {
            id: LeaseId(resp.id()),
            ttl: Duration::from_secs(resp.ttl().unsigned_abs()),
        })
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        self.inner
            .keep_alives
            .keep_alive(lease, self.inner.request_timeout)
            .await
    }

    /// An etcd lease is a server object named by its id: any client may
    /// renew it, so a restarted candidate takes its lease back with one
    /// keep-alive (what etcd's `ResumeElection` relies on).
    async fn resume_lease(&self, lease: LeaseId) -> Result<LeaseGrant> {
        let ttl = self.keep_alive(lease).await?;
        Ok(LeaseGrant { id: lease, ttl })
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        let mut lc = self.inner.client.lease_client();
        match self
            .write("revoke lease", Some(lease), lc.revoke(lease.0))
            .await
        {
            Ok(_) | Err(Error::LeaseExpired { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create(
        &self,
        election: &ElectionName,
        slot: Slot,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        Ok(self.create_in(election, slot, lease, value, false).await?.0)
    }

    /// The create's transaction also counts the election's keys before
    /// the put (from etcd's key index alone: no value is read): none
    /// means the new entry is the first and nobody is ahead of it.
    async fn create_queued(
        &self,
        election: &ElectionName,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<Queued> {
        let (outcome, around) = self
            .create_in(election, Slot::Queue, lease, value, true)
            .await?;
        Ok(Queued { outcome, around })
    }

    async fn candidates(&self, election: &ElectionName) -> Result<Snapshot> {
        self.read_queue(election).await
    }

    async fn elections(&self, prefix: &str) -> Result<Vec<ElectionName>> {
        elections::list(self, prefix).await
    }

    async fn watch_elections(&self, prefix: &str) -> Result<ElectionStream> {
        elections::watch(self, prefix).await
    }

    async fn read_prefix(&self, prefix: &str) -> Result<(Vec<(ElectionName, Entry)>, Revision)> {
        elections::read(self, prefix).await
    }

    async fn watch_prefix(&self, prefix: &str, from: Revision) -> Result<PrefixWatchStream> {
        elections::watch_entries(self, prefix, from).await
    }

    /// The first-created key under the election, as etcd's own election
    /// reads its leader (sorted by creation revision, limit 1). Falls back
    /// to the full read when that key is not a queue entry (a key under the
    /// election bound to no lease, written by another client).
    async fn queue_head(&self, election: &ElectionName) -> Result<Snapshot> {
        let dir = Self::queue_dir(election);
        let options = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Ascend)
            .with_limit(1);
        let mut kv = self.inner.client.kv_client();
        let resp = self
            .call("read leader", None, kv.get(self.full(&dir), Some(options)))
            .await?;
        let revision = header_rev("read leader", resp.header())?;
        let first = resp.kvs().first().map(|kv| self.entry(kv));
        match first {
            None => Ok(Snapshot {
                entries: Vec::new(),
                revision,
                starts_at_head: true,
            }),
            Some(e) if is_queue_entry(&dir, &e) => Ok(Snapshot {
                entries: vec![e],
                revision,
                starts_at_head: true,
            }),
            Some(_) => {
                let mut all = self.candidates(election).await?;
                all.entries.truncate(1);
                Ok(all)
            }
        }
    }

    /// One read for the whole queue while several candidates of the
    /// election ask at once on this connection ([`QueueReads`]); alone, the
    /// one-entry read of [`QueueSource::read_around`].
    async fn queue_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot> {
        self.inner.queue_reads.around(self, election, own).await
    }

    async fn get(&self, key: &str) -> Result<(Option<Entry>, Revision)> {
        let mut kv = self.inner.client.kv_client();
        let resp = self.call("get", None, kv.get(self.full(key), None)).await?;
        let revision = header_rev("get", resp.header())?;
        Ok((resp.kvs().first().map(|kv| self.entry(kv)), revision))
    }

    async fn update(&self, entry: &Entry, value: Bytes) -> Result<Entry> {
        let full = self.full(&entry.key);
        let txn = Txn::new().when([self.still_ours(entry)]).and_then([
            // Keep the entry's lease (a plain put would detach it).
            TxnOp::put(
                full.clone(),
                value.to_vec(),
                Some(PutOptions::new().with_ignore_lease()),
            ),
            TxnOp::get(full, None),
        ]);
        let mut kv = self.inner.client.kv_client();
        let resp = self.write("update", Some(entry.lease), kv.txn(txn)).await?;
        if !resp.succeeded() {
            return Err(Error::NotOwner {
                key: entry.key.clone(),
            });
        }
        for op in resp.op_responses() {
            if let TxnOpResponse::Get(get) = op {
                if let Some(kv) = get.kvs().first() {
                    return Ok(self.entry(kv));
                }
            }
        }
        Err(error::protocol("update", "updated entry not read back"))
    }

    async fn delete(&self, entry: &Entry) -> Result<bool> {
        let txn = Txn::new()
            .when([self.still_ours(entry)])
            .and_then([TxnOp::delete(self.full(&entry.key), None)]);
        let mut kv = self.inner.client.kv_client();
        let resp = self.write("delete", None, kv.txn(txn)).await?;
        Ok(resp.succeeded())
    }

    /// Refuses keys in the key space of the guard's election (its leader
    /// key, anything under `<election key>/`) with
    /// [`Error::KeyInElection`]: such a key would sit among the
    /// election's candidates.
    async fn guarded_put(&self, guard: &Entry, key: &str, value: Bytes) -> Result<Revision> {
        let election = guard.key.split('/').next().unwrap_or(&guard.key);
        if key == election || key.starts_with(&format!("{election}/")) {
            return Err(Error::KeyInElection {
                key: key.to_owned(),
                election: Self::election_of(&guard.key),
            });
        }
        let txn = Txn::new()
            .when([self.still_ours(guard)])
            .and_then([TxnOp::put(self.full(key), value.to_vec(), None)]);
        let mut kv = self.inner.client.kv_client();
        let resp = self.write("guarded put", None, kv.txn(txn)).await?;
        if !resp.succeeded() {
            return Err(Error::NotOwner {
                key: guard.key.clone(),
            });
        }
        header_rev("guarded put", resp.header())
    }

    async fn watch(&self, scope: WatchScope, from: Revision) -> Result<WatchStream> {
        watch::open(self, scope, from).await
    }
}

impl EtcdBackend {
    pub(crate) fn full_key(&self, key: &str) -> String {
        self.full(key)
    }

    pub(crate) fn relative_key(&self, key: &[u8]) -> String {
        self.strip(key)
    }

    pub(crate) fn wrap_error(&self, operation: &'static str, source: etcd_client::Error) -> Error {
        EtcdError {
            operation,
            endpoint: self.inner.endpoint.clone(),
            lease: None,
            source,
        }
        .into()
    }

    pub(crate) async fn request<T>(
        &self,
        operation: &'static str,
        fut: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        self.call(operation, None, fut).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_hex_matches_go() {
        assert_eq!(lease_hex(0x694d_7d5f_8a2b_1c0e), "694d7d5f8a2b1c0e");
        assert_eq!(lease_hex(255), "ff");
        assert_eq!(lease_hex(-255), "-ff");
    }

    #[test]
    fn queue_key_is_etcd_layout() {
        let e = ElectionName::new("jobs").unwrap();
        assert_eq!(EtcdBackend::queue_key(&e, LeaseId(0xabc)), "jobs/abc");
        // Nested names keep out of their parent's range.
        let e = ElectionName::new("svc/jobs").unwrap();
        assert_eq!(EtcdBackend::queue_key(&e, LeaseId(0xabc)), "svc%2Fjobs/abc");
        assert_eq!(EtcdBackend::election_of("svc%2Fjobs/abc"), "svc/jobs");
        // Injective: a literal "%2F" in a name is escaped too.
        let e = ElectionName::new("svc%2Fjobs").unwrap();
        assert_eq!(EtcdBackend::election_key(&e), "svc%252Fjobs");
        assert_eq!(EtcdBackend::election_of("svc%252Fjobs"), "svc%2Fjobs");
    }

    #[test]
    fn lease_zero_is_never_a_queue_entry() {
        let entry = |key: &str, lease| Entry {
            key: key.into(),
            value: Bytes::new(),
            lease: LeaseId(lease),
            created: 1,
            modified: 1,
        };
        assert!(is_queue_entry("e/", &entry("e/ab", 0xab)));
        assert!(!is_queue_entry("e/", &entry("e/0", 0)));
        assert!(!is_queue_entry("e/", &entry("e/x/ab", 0xab)));
        assert_eq!(prefix_end("e/"), b"e0".to_vec());
    }
}
