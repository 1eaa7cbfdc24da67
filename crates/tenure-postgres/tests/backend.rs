//! What the PostgreSQL backend adds to the conformance suite: watches on
//! a lost listening connection, expiry without any other writer, fencing
//! of application tables, schema versions and least privilege.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tenure_core::{
    CoordinationBackend, CreateOutcome, ElectionName, Error, Slot, WatchEvent, WatchScope,
    WatchStream,
};
use tenure_postgres::PostgresBackend;

const PATIENCE: Duration = Duration::from_secs(10);

async fn next(stream: &mut WatchStream) -> WatchEvent {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("no watch event in time")
        .expect("the watch ended")
        .expect("the watch failed")
}

fn name(s: &str) -> ElectionName {
    ElectionName::new(s).unwrap()
}

async fn lead(b: &PostgresBackend, election: &str, ttl: Duration) -> tenure_core::Entry {
    let lease = b.grant_lease(ttl).await.unwrap();
    match b
        .create(&name(election), Slot::Leader, lease.id, Bytes::from("v"))
        .await
        .unwrap()
    {
        CreateOutcome::Created(e) => e,
        other => panic!("{other:?}"),
    }
}

/// Killing the listening connection (as `pg_terminate_backend` or a
/// network cut would) makes every watch say `HistoryLost`; the next watch
/// opens a new listening connection and sees changes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_says_history_lost_when_its_listening_connection_dies() {
    let server = common::server().await;
    let b = common::connect(&server.url()).await;
    let mut on_key = b.watch(WatchScope::Key("k".into()), 0).await.unwrap();
    let mut on_queue = b
        .watch(WatchScope::Election(name("lost")), 0)
        .await
        .unwrap();
    let pid = b.listener_pid().expect("a watch opened the listener");
    let killed = server
        .psql(&format!("SELECT pg_terminate_backend({pid})"))
        .await
        .unwrap();
    assert_eq!(killed, "t");
    assert_eq!(next(&mut on_key).await, WatchEvent::HistoryLost);
    assert_eq!(next(&mut on_queue).await, WatchEvent::HistoryLost);
    assert!(
        tokio::time::timeout(PATIENCE, on_key.next())
            .await
            .unwrap()
            .is_none(),
        "a watch ends after HistoryLost"
    );

    let leader = lead(&b, "lost", Duration::from_secs(30)).await;
    let mut again = b
        .watch(WatchScope::Key(leader.key.clone()), leader.modified + 1)
        .await
        .unwrap();
    assert_ne!(b.listener_pid(), Some(pid), "a new listening connection");
    let updated = b.update(&leader, Bytes::from("w")).await.unwrap();
    assert_eq!(next(&mut again).await, WatchEvent::Put(updated));
}

/// A holder that stops renewing (crashed) is removed when its lease is
/// due by the server's clock, by the watcher of its key, with no other
/// write anywhere: the watcher sees the deletion within the TTL plus a
/// round trip of the last renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_lease_is_removed_by_its_watcher_without_other_writes() {
    let server = common::server().await;
    let holder = common::connect(&server.url()).await;
    let watcher = common::connect(&server.url()).await;
    let ttl = Duration::from_secs(1);
    let entry = lead(&holder, "due", ttl).await;
    let mut w = watcher
        .watch(WatchScope::Key(entry.key.clone()), entry.modified + 1)
        .await
        .unwrap();
    holder.keep_alive(entry.lease).await.unwrap();
    let renewed = Instant::now();
    drop(holder);
    match next(&mut w).await {
        WatchEvent::Delete { key, revision } => {
            assert_eq!(key, entry.key);
            assert!(revision > entry.created);
        }
        other => panic!("expected the deletion, got {other:?}"),
    }
    let after = renewed.elapsed();
    assert!(
        after >= ttl * 9 / 10 && after <= ttl + Duration::from_millis(600),
        "deleted {after:?} after the last renewal (TTL {ttl:?})"
    );
    let rows = server
        .psql("SELECT count(*) FROM tenure.entries")
        .await
        .unwrap();
    assert_eq!(rows, "0");
}

/// `check_fence` in an application's transaction: passes for the leader,
/// and after the leader's entry is gone it raises TN001 and the
/// transaction changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fence_refuses_a_deposed_leaders_transaction() {
    let server = common::server().await;
    let b = common::connect(&server.url()).await;
    let leader = lead(&b, "fenced", Duration::from_secs(30)).await;
    server
        .psql("CREATE TABLE invoices (id int PRIMARY KEY, state text, fence bigint)")
        .await
        .unwrap();
    server
        .psql("INSERT INTO invoices VALUES (7, 'new', 0)")
        .await
        .unwrap();
    let write = |state: &str| {
        format!(
            "BEGIN; SELECT tenure.check_fence('{}', {}); \
             UPDATE invoices SET state = '{state}', fence = {} WHERE id = 7 AND fence <= {}; \
             COMMIT;",
            leader.key, leader.created, leader.created, leader.created
        )
    };
    server.psql(&write("sent")).await.unwrap();
    b.revoke_lease(leader.lease).await.unwrap();
    let refused = server.psql(&write("late")).await.unwrap_err().to_string();
    assert!(refused.contains("not held with fencing token"), "{refused}");
    let state = server
        .psql("SELECT state FROM invoices WHERE id = 7")
        .await
        .unwrap();
    assert_eq!(state, "sent");
}

/// The schema is versioned: a schema of another version is refused, a
/// missing one with `create_schema=false` too, both naming the schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_versions_and_create_schema_off() {
    let server = common::server().await;
    let url = format!("{}?schema=absent&create_schema=false", server.url());
    let err = PostgresBackend::connect(common::options(&url))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "schema",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"absent\""), "{err}");

    // Twice: the second connect finds the schema and leaves it alone.
    for _ in 0..2 {
        common::connect(&server.url()).await;
    }
    server
        .psql("UPDATE tenure.meta SET version = 99")
        .await
        .unwrap();
    let err = PostgresBackend::connect(common::options(&server.url()))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("version 99"),
        "a newer layout must be refused: {err}"
    );
}

/// The documented least-privilege role runs elections on a schema an
/// administrator installed; a role without those grants fails at once
/// with `Unauthenticated`, not with a retried error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_privilege_role_and_a_role_without_grants() {
    let server = common::server().await;
    common::connect(&server.url()).await; // installs the schema
    server
        .psql(
            "CREATE ROLE app_elector LOGIN; \
             GRANT USAGE ON SCHEMA tenure TO app_elector; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tenure TO app_elector; \
             GRANT USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA tenure TO app_elector; \
             GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tenure TO app_elector; \
             CREATE ROLE nobody_much LOGIN;",
        )
        .await
        .unwrap();
    let as_role = |role: &str| {
        server
            .url()
            .replacen("tenure@", &format!("{role}@"), 1)
            .to_string()
            + "?create_schema=false"
    };
    let app = common::connect(&as_role("app_elector")).await;
    let leader = lead(&app, "least", Duration::from_secs(30)).await;
    let mut w = app
        .watch(WatchScope::Key(leader.key.clone()), leader.modified + 1)
        .await
        .unwrap();
    assert!(app.delete(&leader).await.unwrap());
    assert!(matches!(next(&mut w).await, WatchEvent::Delete { .. }));

    let err = PostgresBackend::connect(common::options(&as_role("nobody_much")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unauthenticated { .. }) && !err.is_transient(),
        "{err:?}"
    );
    assert!(err.to_string().contains("permission denied"), "{err}");
}
