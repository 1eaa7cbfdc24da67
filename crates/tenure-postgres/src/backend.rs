//! [`PostgresBackend`]: the [`CoordinationBackend`] over PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tenure_core::{
    CoordinationBackend, CreateOutcome, ElectionName, Entry, Error, LeaseGrant, LeaseId, Result,
    Revision, Slot, Snapshot, WatchScope, WatchStream,
};
use tokio_postgres::types::Type;
use tokio_postgres::Row;
use tracing::debug;

use crate::connection::{self, Connections};
use crate::error::{self, KIND};
use crate::keys;
use crate::listener::Listener;
use crate::options::PostgresOptions;
use crate::schema::Names;
use crate::sql::Sql;
use crate::watch;

/// The TTLs this backend grants: from 1 s (a keep-alive every third of
/// it must fit in a round trip on a loaded server) to one day.
const TTL_BOUNDS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(86_400));

/// How often a read that finds an expired lease removes it and reads
/// again before it gives up and just leaves the expired entries out.
const READ_ATTEMPTS: usize = 3;

/// A PostgreSQL database as a [`CoordinationBackend`].
///
/// Everything lives in one schema (default `tenure`): a `leases` table
/// whose expiry PostgreSQL computes with `clock_timestamp()`, an
/// `entries` table (candidates, single leader keys, application keys
/// written by guarded writes) whose rows go with their lease, a change
/// log that watches read and replay, and one row holding the newest
/// revision. Every write is one call of a function of that schema, so
/// that it is one transaction and one round trip.
///
/// Keys follow the etcd layout: a queue entry is
/// `<election>/<lease id in hex>`, the single leader key is
/// `<election>`, where `<election>` is the name with `%` written `%25`
/// and `/` written `%2F` (so a nested election never falls under its
/// parent's keys).
///
/// **Revisions** come from a sequence, taken while holding a lock on the
/// schema's revision row that every writer takes first: writes commit one
/// at a time in revision order, revisions never repeat (not even after a
/// rollback), and the creation revision of the leading entry is its
/// fencing token.
///
/// **Watches** use LISTEN/NOTIFY on one channel per schema
/// (`tenure_<schema>`), over one listening connection per backend, and
/// read what changed from the change log. When the listening connection
/// is lost, every watch says
/// [`HistoryLost`](tenure_core::WatchEvent::HistoryLost). A watch also
/// wakes up when a lease in its scope is due (server time) and removes it
/// if it has expired, so a crashed leader's successor takes over within
/// the TTL without anyone deleting anything.
///
/// Cloning is cheap and shares both connections.
#[derive(Clone)]
pub struct PostgresBackend {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) conns: Connections,
    pub(crate) sql: Sql,
    pub(crate) names: Names,
    pub(crate) listener: Listener,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("endpoint", &self.inner.conns.endpoint())
            .field("schema", &self.inner.names.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresBackend {
    /// Connects, checks that the server is a writable primary, and makes
    /// sure the schema holds tenure's tables (creating them on first use
    /// unless [`create_schema`](PostgresOptions::create_schema) is off).
    ///
    /// A failed attempt (refused, dropped, too many connections) is
    /// retried with jittered back-off until the
    /// [connect timeout](PostgresOptions::connect_timeout) runs out.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bad options, a standby, a missing
    /// database, or a schema of another layout version;
    /// [`Error::Unauthenticated`] for refused credentials or missing
    /// privileges, at once; [`Error::Unreachable`] when no attempt
    /// succeeded within the connect timeout.
    pub async fn connect(options: PostgresOptions) -> Result<PostgresBackend> {
        options.validate()?;
        let client = connection::open_with_retry(&options).await?;
        let names = Names::new(&options.schema);
        debug!(endpoint = %options.endpoint, schema = %options.schema, "connected to postgres");
        Ok(PostgresBackend {
            inner: Arc::new(Inner {
                conns: Connections::new(&options, client),
                sql: Sql::new(&names),
                listener: Listener::new(&names),
                names,
            }),
        })
    }

    /// Parses `url` ([`PostgresOptions::from_url`]) and connects.
    ///
    /// # Errors
    /// As [`PostgresOptions::from_url`] and [`connect`](Self::connect).
    pub async fn connect_url(url: &str) -> Result<PostgresBackend> {
        Self::connect(PostgresOptions::from_url(url)?).await
    }

    /// The schema as a quoted identifier (`"tenure"`).
    pub fn schema(&self) -> &str {
        &self.inner.names.schema
    }

    /// The LISTEN/NOTIFY channel the backend's watches listen on.
    pub fn channel(&self) -> &str {
        &self.inner.names.channel
    }

    /// The server and database, as they appear in errors.
    pub fn endpoint(&self) -> &str {
        self.inner.conns.endpoint()
    }

    /// Removes expired leases and their entries now (what every write and
    /// a watch whose lease in scope is due do anyway).
    ///
    /// # Errors
    /// Connection errors.
    pub async fn reap_expired(&self) -> Result<()> {
        self.inner.reap().await
    }

    /// The server process id of the listening connection, once a watch
    /// opened it: what `pg_terminate_backend` takes to cut it.
    pub fn listener_pid(&self) -> Option<i32> {
        self.inner.listener.pid()
    }
}

impl Inner {
    pub(crate) async fn reap(&self) -> Result<()> {
        self.conns.query("reap", &self.sql.reap, &[]).await?;
        Ok(())
    }

    /// Runs a read whose rows are `(revision, entry columns..., expired)`
    /// and whose entry columns are NULL when nothing matched. A read that
    /// sees an expired lease removes it and reads again.
    async fn read_entries(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[(&(dyn tokio_postgres::types::ToSql + Sync), Type)],
    ) -> Result<(Vec<Entry>, Revision)> {
        let (entries, revision, _) = self.read_entries_told(operation, sql, params).await?;
        Ok((entries, revision))
    }

    /// As [`read_entries`](Self::read_entries), and whether it left out
    /// an entry whose lease had expired (its last attempt found one).
    async fn read_entries_told(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[(&(dyn tokio_postgres::types::ToSql + Sync), Type)],
    ) -> Result<(Vec<Entry>, Revision, bool)> {
        for attempt in 1..=READ_ATTEMPTS {
            let rows = self.conns.query(operation, sql, params).await?;
            let mut revision = 0;
            let mut entries = Vec::with_capacity(rows.len());
            let mut expired = false;
            for row in &rows {
                revision = rev(get(operation, row, 0)?);
                if let Some(entry) = entry_at(operation, row, 1)? {
                    let gone: Option<bool> = get(operation, row, 6)?;
                    if gone == Some(true) {
                        expired = true;
                    } else {
                        entries.push(entry);
                    }
                }
            }
            if rows.is_empty() {
                return Err(error::protocol(operation, "the revision row is missing"));
            }
            if !expired || attempt == READ_ATTEMPTS {
                return Ok((entries, revision, expired));
            }
            self.reap().await?;
        }
        Err(error::protocol(operation, "no attempt left"))
    }
}

/// A column of `row`, with decoding errors as protocol errors.
pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    operation: &'static str,
    row: &'a Row,
    i: usize,
) -> Result<T> {
    row.try_get(i)
        .map_err(|e| error::protocol(operation, format!("column {i}: {e}")))
}

/// The entry in columns `at..at + 5` (key, value, lease, created,
/// modified), if the key is not NULL.
pub(crate) fn entry_at(operation: &'static str, row: &Row, at: usize) -> Result<Option<Entry>> {
    let Some(key) = get::<Option<String>>(operation, row, at)? else {
        return Ok(None);
    };
    let value: Option<Vec<u8>> = get(operation, row, at + 1)?;
    let lease: Option<i64> = get(operation, row, at + 2)?;
    Ok(Some(Entry {
        key,
        value: Bytes::from(value.unwrap_or_default()),
        lease: LeaseId(lease.unwrap_or(0)),
        created: rev(get(operation, row, at + 3)?),
        modified: rev(get(operation, row, at + 4)?),
    }))
}

/// A revision from the database (never negative) as tenure's.
pub(crate) fn rev(r: i64) -> Revision {
    r.max(0).unsigned_abs()
}

/// A revision as the database's `bigint`.
pub(crate) fn db_rev(r: Revision) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

#[async_trait]
impl CoordinationBackend for PostgresBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn ttl_bounds(&self) -> (Duration, Duration) {
        TTL_BOUNDS
    }

    fn leader_key(&self, election: &ElectionName) -> String {
        keys::election_key(election)
    }

    /// The TTL is kept to the microsecond and counted by the server's
    /// clock from the moment it grants the lease.
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant> {
        tenure_core::check_ttl(ttl, TTL_BOUNDS)?;
        // Whole microseconds, rounded up: never less than asked for.
        let micros = ttl.as_nanos().div_ceil(1000);
        let micros = i64::try_from(micros).unwrap_or(i64::MAX);
        let row = self
            .inner
            .conns
            .query_one(
                "grant lease",
                &self.inner.sql.grant_lease,
                &[(&micros, Type::INT8)],
            )
            .await?;
        let id: i64 = get("grant lease", &row, 0)?;
        Ok(LeaseGrant {
            id: LeaseId(id),
            ttl: Duration::from_micros(micros.unsigned_abs()),
        })
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let row = self
            .inner
            .conns
            .query_one(
                "keep-alive",
                &self.inner.sql.keep_alive,
                &[(&lease.0, Type::INT8)],
            )
            .await?;
        match get::<Option<i64>>("keep-alive", &row, 0)? {
            Some(micros) if micros > 0 => Ok(Duration::from_micros(micros.unsigned_abs())),
            _ => Err(Error::LeaseExpired { lease }),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.inner
            .conns
            .query(
                "revoke lease",
                &self.inner.sql.revoke_lease,
                &[(&lease.0, Type::INT8)],
            )
            .await?;
        Ok(())
    }

    async fn create(
        &self,
        election: &ElectionName,
        slot: Slot,
        lease: LeaseId,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        let key = match slot {
            Slot::Queue => keys::queue_key(election, lease),
            Slot::Leader => keys::election_key(election),
        };
        let name = election.as_str();
        let queue = slot == Slot::Queue;
        let bytes: &[u8] = &value;
        let row = self
            .inner
            .conns
            .query_one(
                "create",
                &self.inner.sql.create,
                &[
                    (&key, Type::TEXT),
                    (&name, Type::TEXT),
                    (&queue, Type::BOOL),
                    (&lease.0, Type::INT8),
                    (&bytes, Type::BYTEA),
                ],
            )
            .await?;
        let outcome: String = get("create", &row, 0)?;
        let found = entry_at("create", &row, 2)?;
        match (outcome.as_str(), found) {
            ("created", Some(entry)) => Ok(CreateOutcome::Created(entry)),
            ("exists", Some(entry)) => Ok(CreateOutcome::Exists(entry)),
            ("lease_expired", _) => Err(Error::LeaseExpired { lease }),
            ("conflict", _) => {
                let existing: Option<String> = get("create", &row, 1)?;
                Err(Error::ShapeConflict {
                    election: election.to_string(),
                    existing: match existing.as_deref() {
                        Some("single-key candidates") => "single-key candidates",
                        Some("queue candidates") => "queue candidates",
                        _ => "a key bound to no lease at its leader key",
                    },
                    requested: slot.strategy_name(),
                })
            }
            (other, _) => Err(error::protocol(
                "create",
                format!("create_entry answered {other:?} for {key:?}"),
            )),
        }
    }

    /// One statement: the distinct elections of the live entries under
    /// the prefix. No watch for new ones: `observe_all` lists again.
    async fn elections(&self, prefix: &str) -> Result<Vec<ElectionName>> {
        let rows = self
            .inner
            .conns
            .query(
                "list elections",
                &self.inner.sql.elections,
                &[(&prefix, Type::TEXT)],
            )
            .await?;
        let mut names = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = get("list elections", row, 0)?;
            // A name stored by tenure is valid; anything else is not ours.
            if let Ok(n) = ElectionName::new(name) {
                names.push(n);
            }
        }
        Ok(names)
    }

    async fn candidates(&self, election: &ElectionName) -> Result<Snapshot> {
        let name = election.as_str();
        let (entries, revision) = self
            .inner
            .read_entries(
                "read candidates",
                &self.inner.sql.candidates,
                &[(&name, Type::TEXT)],
            )
            .await?;
        Ok(Snapshot {
            entries,
            revision,
            starts_at_head: true,
        })
    }

    /// One statement: the entry at `own`'s key and the three newest queue
    /// entries created before it, by index; what comes back does not grow
    /// with the number of candidates. Fewer than three before ours, none
    /// of them left out as expired: the oldest there is was first.
    async fn queue_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot> {
        let name = election.as_str();
        let (entries, revision, left_out) = self
            .inner
            .read_entries_told(
                "read candidates",
                &self.inner.sql.queue_around,
                &[(&name, Type::TEXT), (&own.key, Type::TEXT)],
            )
            .await?;
        // The read orders by creation: at most three entries before ours,
        // then ours. `Snapshot::around` keeps the entry at our key and
        // the two before it, and says the first of them was first when
        // the read holds nothing before it.
        let ours_found = entries.iter().any(|e| e.key == own.key);
        Ok(Snapshot {
            entries,
            revision,
            starts_at_head: ours_found && !left_out,
        }
        .around(own))
    }

    async fn get(&self, key: &str) -> Result<(Option<Entry>, Revision)> {
        let (mut entries, revision) = self
            .inner
            .read_entries("get", &self.inner.sql.get, &[(&key, Type::TEXT)])
            .await?;
        Ok((entries.pop(), revision))
    }

    async fn update(&self, entry: &Entry, value: Bytes) -> Result<Entry> {
        let bytes: &[u8] = &value;
        let created = db_rev(entry.created);
        let rows = self
            .inner
            .conns
            .query(
                "update",
                &self.inner.sql.update,
                &[
                    (&entry.key, Type::TEXT),
                    (&created, Type::INT8),
                    (&bytes, Type::BYTEA),
                ],
            )
            .await?;
        match rows.first() {
            Some(row) => entry_at("update", row, 0)?
                .ok_or_else(|| error::protocol("update", "updated entry without a key")),
            None => Err(Error::NotOwner {
                key: entry.key.clone(),
            }),
        }
    }

    async fn delete(&self, entry: &Entry) -> Result<bool> {
        let created = db_rev(entry.created);
        let row = self
            .inner
            .conns
            .query_one(
                "delete",
                &self.inner.sql.delete,
                &[(&entry.key, Type::TEXT), (&created, Type::INT8)],
            )
            .await?;
        get("delete", &row, 0)
    }

    /// One transaction: locks the guard's entry, checks it is the one
    /// created at `guard.created` and that its lease is alive by the
    /// server's clock, then writes. Refuses keys in the key space of the
    /// guard's election with [`Error::KeyInElection`].
    async fn guarded_put(&self, guard: &Entry, key: &str, value: Bytes) -> Result<Revision> {
        let election = guard.key.split('/').next().unwrap_or(&guard.key);
        if key == election || key.starts_with(&format!("{election}/")) {
            return Err(Error::KeyInElection {
                key: key.to_owned(),
                election: keys::election_of(&guard.key),
            });
        }
        keys::check_app_key(key)?;
        let bytes: &[u8] = &value;
        let created = db_rev(guard.created);
        let row = self
            .inner
            .conns
            .query_one(
                "guarded put",
                &self.inner.sql.guarded_put,
                &[
                    (&guard.key, Type::TEXT),
                    (&created, Type::INT8),
                    (&key, Type::TEXT),
                    (&bytes, Type::BYTEA),
                ],
            )
            .await?;
        match get::<Option<i64>>("guarded put", &row, 0)? {
            Some(r) => Ok(rev(r)),
            None => Err(Error::NotOwner {
                key: guard.key.clone(),
            }),
        }
    }

    async fn watch(&self, scope: WatchScope, from: Revision) -> Result<WatchStream> {
        watch::open(self.inner.clone(), scope, from).await
    }
}
