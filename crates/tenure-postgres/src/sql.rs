//! The statements the backend sends, written once per schema.

use crate::schema::Names;

/// Every statement, with the schema spliced in.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) grant_lease: String,
    pub(crate) keep_alive: String,
    pub(crate) revoke_lease: String,
    pub(crate) create: String,
    pub(crate) update: String,
    pub(crate) delete: String,
    pub(crate) guarded_put: String,
    pub(crate) reap: String,
    /// `(revision, key, value, lease, created, modified, expired)` rows.
    pub(crate) candidates: String,
    /// As `candidates`: the entry at a key and the three entries before it.
    pub(crate) queue_around: String,
    /// As `candidates`: one key (any entry, with or without lease).
    pub(crate) get: String,
    /// Change-log reads of a watch on one key / one election's queue:
    /// `(compacted, revision, ev.revision, key, value, lease, created,
    /// modified, deleted, due_us)`.
    pub(crate) changes_key: String,
    pub(crate) changes_election: String,
    /// The names of the elections with a live entry whose names start
    /// with `$1`, in name order.
    pub(crate) elections: String,
}

/// How many log rows one change-log read returns at most.
pub(crate) const CHANGES_PAGE: i64 = 512;

impl Sql {
    pub(crate) fn new(names: &Names) -> Sql {
        let s = &names.schema;
        let live_entry = "e.key, e.value, e.lease, e.created, e.modified, \
                          l.expires_at <= clock_timestamp() AS expired";
        let changes = |scope_ev: &str, scope_e: &str| {
            format!(
                "SELECT m.compacted, m.revision, ev.revision, ev.key, ev.value, ev.lease, \
                        ev.created, ev.modified, ev.deleted, d.due_us \
                 FROM {s}.meta m \
                 LEFT JOIN LATERAL ( \
                     SELECT * FROM {s}.events ev \
                     WHERE ev.revision > $1 AND {scope_ev} \
                     ORDER BY ev.revision, ev.seq LIMIT $3) ev ON true \
                 LEFT JOIN LATERAL ( \
                     SELECT (extract(epoch FROM min(l.expires_at) - clock_timestamp()) \
                             * 1000000)::bigint AS due_us \
                     FROM {s}.entries e JOIN {s}.leases l ON l.id = e.lease \
                     WHERE {scope_e}) d ON true \
                 ORDER BY ev.revision, ev.seq"
            )
        };
        Sql {
            grant_lease: format!("SELECT {s}.grant_lease($1)"),
            keep_alive: format!("SELECT {s}.keep_alive($1)"),
            revoke_lease: format!("SELECT {s}.revoke_lease($1)"),
            create: format!(
                "SELECT outcome, existing, key, value, lease, created, modified \
                 FROM {s}.create_entry($1, $2, $3, $4, $5)"
            ),
            update: format!(
                "SELECT key, value, lease, created, modified FROM {s}.update_entry($1, $2, $3)"
            ),
            delete: format!("SELECT {s}.delete_entry($1, $2)"),
            guarded_put: format!("SELECT {s}.guarded_put($1, $2, $3, $4)"),
            reap: format!("SELECT {s}.reap()"),
            elections: format!(
                "SELECT DISTINCT e.election \
                 FROM {s}.entries e JOIN {s}.leases l ON l.id = e.lease \
                 WHERE e.election IS NOT NULL AND starts_with(e.election, $1) \
                   AND l.expires_at > clock_timestamp() \
                 ORDER BY e.election"
            ),
            candidates: format!(
                "SELECT m.revision, q.key, q.value, q.lease, q.created, q.modified, q.expired \
                 FROM {s}.meta m LEFT JOIN LATERAL ( \
                     SELECT {live_entry} \
                     FROM {s}.entries e JOIN {s}.leases l ON l.id = e.lease \
                     WHERE e.election = $1 AND e.queue) q ON true \
                 ORDER BY q.created"
            ),
            queue_around: format!(
                "WITH mine AS ( \
                     SELECT {live_entry} \
                     FROM {s}.entries e JOIN {s}.leases l ON l.id = e.lease \
                     WHERE e.key = $2 AND e.election = $1 AND e.queue), \
                 pred AS ( \
                     SELECT {live_entry} \
                     FROM {s}.entries e JOIN {s}.leases l ON l.id = e.lease \
                     WHERE e.election = $1 AND e.queue \
                       AND e.created < (SELECT created FROM mine) \
                     ORDER BY e.created DESC LIMIT 3) \
                 SELECT m.revision, q.key, q.value, q.lease, q.created, q.modified, q.expired \
                 FROM {s}.meta m LEFT JOIN LATERAL ( \
                     SELECT * FROM pred UNION ALL SELECT * FROM mine) q ON true \
                 ORDER BY q.created"
            ),
            get: format!(
                "SELECT m.revision, q.key, q.value, q.lease, q.created, q.modified, q.expired \
                 FROM {s}.meta m LEFT JOIN LATERAL ( \
                     SELECT e.key, e.value, e.lease, e.created, e.modified, \
                            coalesce(l.expires_at <= clock_timestamp(), false) AS expired \
                     FROM {s}.entries e LEFT JOIN {s}.leases l ON l.id = e.lease \
                     WHERE e.key = $2) q ON true"
            )
            .replace("$2", "$1"),
            changes_key: changes("ev.key = $2", "e.key = $2"),
            changes_election: changes(
                "ev.election = $2 AND ev.queue",
                "e.election = $2 AND e.queue",
            ),
        }
    }
}
