//! `tenure` as processes against a real PostgreSQL server (started by the
//! testkit harness on a free loopback port, one per test).

#![allow(clippy::unwrap_used)]

mod common;

use common::scenarios;
use futures::future::BoxFuture;
use tenure_testkit::pg_server::PgServer;

async fn server() -> (PgServer, String) {
    let server = PgServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start postgres: {e}"));
    let url = format!("{}?schema=cli", server.url());
    (server, url)
}

/// Deletes every queue entry of an election with plain SQL, as an
/// operator with `psql` would.
fn psql_delete(server: &PgServer) -> impl Fn(String) -> BoxFuture<'static, ()> {
    let psql = server.psql_client();
    move |election: String| {
        let psql = psql.clone();
        Box::pin(async move {
            let sql = format!(
                "WITH d AS (DELETE FROM cli.entries WHERE election = '{election}' AND queue \
                 RETURNING 1) SELECT count(*) FROM d"
            );
            let deleted = psql.run(&sql).await.unwrap();
            assert_ne!(deleted, "0", "nothing deleted in {election}");
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn handover_on_sigterm() {
    let (_server, url) = server().await;
    scenarios::handover(&url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gated_command_stops_when_the_row_is_deleted() {
    let (server, url) = server().await;
    scenarios::gated_command_stops_on_loss(&url, psql_delete(&server)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn child_gets_sigkill_at_once_when_the_entry_goes() {
    let (server, url) = server().await;
    scenarios::child_killed_at_once_when_the_entry_goes(&url, psql_delete(&server)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn once_without_command_exits_4_on_loss() {
    let (server, url) = server().await;
    scenarios::once_without_command_exits_4_on_loss(&url, psql_delete(&server)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn never_elected_never_runs_the_command() {
    let (_server, url) = server().await;
    scenarios::never_elected_never_runs(&url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_strategies_elect_one_leader() {
    let (_server, url) = server().await;
    scenarios::mixed_strategies_one_leader(&url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn names_no_backend_can_hold_exit_2() {
    let (_server, url) = server().await;
    scenarios::names_no_backend_can_hold_exit_2(&url).await;
}

/// A hundred candidate processes started at once against one server: all
/// queue, one leads.
#[tokio::test(flavor = "multi_thread")]
async fn hundred_candidates_at_once() {
    let (_server, url) = server().await;
    scenarios::burst(&url, 100).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_processes_leave_no_entry() {
    let (_server, url) = server().await;
    scenarios::stopped_processes_leave_no_entry(&url).await;
}

/// Bad input exits 2 at once, naming what is wrong.
#[tokio::test(flavor = "multi_thread")]
async fn bad_schema_option_exits_2() {
    let (server, _) = server().await;
    let url = format!("{}?schema=Bad-Name", server.url());
    let done = common::run(&["--backend", &url, "leader", "jobs"]).await;
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(done.stderr.contains("schema"), "{}", done.stderr);
}
