-- tenure's tables and functions, version 1. `@S@` is the schema (a quoted
-- identifier), `@CHANNEL@` the LISTEN/NOTIFY channel and `@GUC@` the
-- transaction-local setting that caches a transaction's revision (both
-- string literals). Run once per schema, inside a transaction that holds
-- the schema's advisory lock.

CREATE SCHEMA IF NOT EXISTS @S@;

-- One row: the schema's version, the newest revision (what a read
-- reflects), and the newest revision dropped from the change log.
-- Every tenure write locks this row first, so writes commit one at a time
-- and in revision order: a reader that saw revision R has seen every
-- change up to R, and a change log read past R misses nothing.
CREATE TABLE @S@.meta (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version integer NOT NULL,
    revision bigint NOT NULL DEFAULT 0,
    compacted bigint NOT NULL DEFAULT 0,
    retention interval NOT NULL DEFAULT interval '10 minutes'
);
INSERT INTO @S@.meta (version) VALUES (1);

-- Revisions come from a sequence, taken under the lock on `meta`: a
-- revision is never handed out twice, even by a transaction that rolls
-- back, so a fencing token is never reused.
CREATE SEQUENCE @S@.revisions AS bigint;
CREATE SEQUENCE @S@.lease_ids AS bigint;

-- Leases, on the server's clock: `expires_at` is computed by PostgreSQL
-- (`clock_timestamp()`), never by a client.
CREATE TABLE @S@.leases (
    id bigint PRIMARY KEY,
    ttl interval NOT NULL CHECK (ttl > interval '0'),
    expires_at timestamptz NOT NULL
);
CREATE INDEX leases_expires_at ON @S@.leases (expires_at);

-- Entries: candidates (`election` set, `queue` true), single leader keys
-- (`election` set, `queue` false) and application keys written by guarded
-- writes (no election, no lease). An entry goes with its lease.
CREATE TABLE @S@.entries (
    key text PRIMARY KEY CHECK (octet_length(key) BETWEEN 1 AND 4096),
    election text,
    queue boolean NOT NULL DEFAULT false,
    value bytea NOT NULL,
    lease bigint REFERENCES @S@.leases (id) ON DELETE CASCADE,
    created bigint NOT NULL DEFAULT 0,
    modified bigint NOT NULL DEFAULT 0
);
CREATE INDEX entries_queue ON @S@.entries (election, created) WHERE queue;
CREATE INDEX entries_lease ON @S@.entries (lease);

-- The change log watches read from (and replay); kept for `retention`.
CREATE TABLE @S@.events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    revision bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    key text NOT NULL,
    election text,
    queue boolean NOT NULL,
    deleted boolean NOT NULL,
    value bytea,
    lease bigint,
    created bigint NOT NULL,
    modified bigint NOT NULL
);
CREATE INDEX events_key ON @S@.events (key, revision);
CREATE INDEX events_election ON @S@.events (election, revision) WHERE queue;
CREATE INDEX events_at ON @S@.events (at);

-- The revision of the current transaction, taken on its first change:
-- bumps `meta.revision` (which also locks it) and caches the value in a
-- transaction-local setting.
CREATE FUNCTION @S@.txn_revision() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cached text := current_setting(@GUC@, true);
    rev bigint;
BEGIN
    IF cached IS NOT NULL AND cached <> '' THEN
        RETURN cached::bigint;
    END IF;
    UPDATE @S@.meta SET revision = nextval('@S@.revisions') RETURNING revision INTO rev;
    PERFORM set_config(@GUC@, rev::text, true);
    RETURN rev;
END $$;

-- Every change to an entry, by tenure or by hand (an operator's DELETE),
-- gets the transaction's revision, goes into the log and is announced.
CREATE FUNCTION @S@.entries_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.modified := @S@.txn_revision();
    IF TG_OP = 'INSERT' OR NEW.key IS DISTINCT FROM OLD.key THEN
        NEW.created := NEW.modified;
    ELSE
        NEW.created := OLD.created;
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION @S@.entries_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rev bigint := @S@.txn_revision();
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.key IS DISTINCT FROM OLD.key) THEN
        INSERT INTO @S@.events (revision, key, election, queue, deleted, lease, created, modified)
        VALUES (rev, OLD.key, OLD.election, OLD.queue, true, OLD.lease, OLD.created, OLD.modified);
        PERFORM pg_notify(@CHANNEL@, rev::text || ' ' || OLD.key);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO @S@.events (revision, key, election, queue, deleted, value, lease, created, modified)
        VALUES (rev, NEW.key, NEW.election, NEW.queue, false, NEW.value, NEW.lease, NEW.created, NEW.modified);
        PERFORM pg_notify(@CHANNEL@, rev::text || ' ' || NEW.key);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER entries_stamp BEFORE INSERT OR UPDATE ON @S@.entries
    FOR EACH ROW EXECUTE FUNCTION @S@.entries_stamp();
CREATE TRIGGER entries_log AFTER INSERT OR UPDATE OR DELETE ON @S@.entries
    FOR EACH ROW EXECUTE FUNCTION @S@.entries_log();

-- Takes the write lock (always first, so that writers never deadlock),
-- deletes expired leases with their entries (logged and announced like
-- any delete) and drops log rows older than the retention.
CREATE FUNCTION @S@.begin_write() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    dropped bigint;
BEGIN
    PERFORM 1 FROM @S@.meta FOR UPDATE;
    DELETE FROM @S@.leases WHERE expires_at <= clock_timestamp();
    WITH gone AS (
        DELETE FROM @S@.events
        WHERE at < clock_timestamp() - (SELECT retention FROM @S@.meta)
        RETURNING revision
    )
    SELECT max(revision) INTO dropped FROM gone;
    IF dropped IS NOT NULL THEN
        UPDATE @S@.meta SET compacted = greatest(compacted, dropped);
    END IF;
END $$;

-- Removes expired leases (and their entries) if there are any: what a
-- reader or a watcher calls when it sees a lease past its expiry.
CREATE FUNCTION @S@.reap() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM @S@.leases WHERE expires_at <= clock_timestamp()) THEN
        PERFORM @S@.begin_write();
    END IF;
END $$;

CREATE FUNCTION @S@.grant_lease(ttl_us bigint) RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO @S@.leases (id, ttl, expires_at)
    VALUES (nextval('@S@.lease_ids'), ttl_us * interval '1 microsecond',
            clock_timestamp() + ttl_us * interval '1 microsecond')
    RETURNING id
$$;

-- One statement: renews a live lease; no row means it is gone.
CREATE FUNCTION @S@.keep_alive(lease_id bigint) RETURNS bigint LANGUAGE sql AS $$
    UPDATE @S@.leases SET expires_at = clock_timestamp() + ttl
    WHERE id = lease_id AND expires_at > clock_timestamp()
    RETURNING (extract(epoch FROM ttl) * 1000000)::bigint
$$;

CREATE FUNCTION @S@.revoke_lease(lease_id bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM @S@.begin_write();
    DELETE FROM @S@.leases WHERE id = lease_id;
END $$;

-- Compare-and-create. `outcome` is `created`, `exists` (the entry found
-- at the key), `lease_expired`, or `conflict` (`existing` says what holds
-- the election).
CREATE FUNCTION @S@.create_entry(
    p_key text, p_election text, p_queue boolean, p_lease bigint, p_value bytea,
    OUT outcome text, OUT existing text, OUT key text, OUT value bytea,
    OUT lease bigint, OUT created bigint, OUT modified bigint
) LANGUAGE plpgsql AS $$
DECLARE
    found_entry @S@.entries;
BEGIN
    PERFORM @S@.begin_write();
    -- KEY SHARE: keeps the lease from being deleted until we commit,
    -- without waiting for (or blocking) a keep-alive's update.
    PERFORM 1 FROM @S@.leases l
    WHERE l.id = p_lease AND l.expires_at > clock_timestamp() FOR KEY SHARE;
    IF NOT FOUND THEN
        outcome := 'lease_expired';
        RETURN;
    END IF;
    SELECT * INTO found_entry FROM @S@.entries e WHERE e.key = p_key;
    IF FOUND THEN
        IF NOT p_queue AND found_entry.lease IS NULL THEN
            outcome := 'conflict';
            existing := 'a key bound to no lease at its leader key';
            RETURN;
        END IF;
        outcome := 'exists';
        key := found_entry.key; value := found_entry.value; lease := found_entry.lease;
        created := found_entry.created; modified := found_entry.modified;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM @S@.entries e
               WHERE e.election = p_election AND e.queue <> p_queue AND e.lease IS NOT NULL) THEN
        outcome := 'conflict';
        existing := CASE WHEN p_queue THEN 'single-key candidates' ELSE 'queue candidates' END;
        RETURN;
    END IF;
    INSERT INTO @S@.entries AS e (key, election, queue, value, lease)
    VALUES (p_key, p_election, p_queue, p_value, p_lease)
    RETURNING 'created', NULL, e.key, e.value, e.lease, e.created, e.modified
    INTO outcome, existing, key, value, lease, created, modified;
END $$;

-- Guarded update: only while `p_key` holds the entry created at
-- `p_created`. No row: not the owner.
CREATE FUNCTION @S@.update_entry(p_key text, p_created bigint, p_value bytea)
RETURNS TABLE (key text, value bytea, lease bigint, created bigint, modified bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM @S@.begin_write();
    RETURN QUERY
    UPDATE @S@.entries e SET value = p_value
    WHERE e.key = p_key AND e.created = p_created
    RETURNING e.key, e.value, e.lease, e.created, e.modified;
END $$;

CREATE FUNCTION @S@.delete_entry(p_key text, p_created bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM @S@.begin_write();
    DELETE FROM @S@.entries e WHERE e.key = p_key AND e.created = p_created;
    RETURN FOUND;
END $$;

-- The leader-guarded write: in one transaction, lock the guard's entry
-- (it must still be the one created at `p_guard_created`, with a live
-- lease), then write the application key. NULL: the guard is gone.
CREATE FUNCTION @S@.guarded_put(p_guard text, p_guard_created bigint, p_key text, p_value bytea)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    rev bigint;
BEGIN
    PERFORM @S@.begin_write();
    PERFORM 1 FROM @S@.entries e JOIN @S@.leases l ON l.id = e.lease
    WHERE e.key = p_guard AND e.created = p_guard_created
      AND l.expires_at > clock_timestamp()
    FOR UPDATE OF e;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO @S@.entries AS e (key, election, queue, value, lease)
    VALUES (p_key, NULL, false, p_value, NULL)
    ON CONFLICT ON CONSTRAINT entries_pkey DO UPDATE
        SET value = excluded.value, election = NULL, queue = false, lease = NULL
    RETURNING e.modified INTO rev;
    RETURN rev;
END $$;

-- For application transactions: holds the leader's entry (FOR SHARE)
-- until the caller's transaction ends, after checking that it is still
-- the one created at `p_token` with a live lease; raises SQLSTATE TN001
-- otherwise. While the share lock is held, neither a revoke nor the
-- removal of an expired lease can delete the entry, so no successor can
-- lead before the caller's transaction is over.
CREATE FUNCTION @S@.check_fence(p_key text, p_token bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM @S@.entries e JOIN @S@.leases l ON l.id = e.lease
    WHERE e.key = p_key AND e.created = p_token AND l.expires_at > clock_timestamp()
    FOR SHARE OF e;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenure: % is not held with fencing token % any more', p_key, p_token
            USING ERRCODE = 'TN001';
    END IF;
    RETURN p_token;
END $$;
