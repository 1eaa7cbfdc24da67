//! What the diagnostic examples (`examples/`) share: their size argument,
//! and an etcd server of their own with raw clients and watches. Their
//! figures are summarised as the report's are
//! ([`Distribution`](crate::stats::Distribution)).

use etcd_client::Client;
use tenure_testkit::etcd_server::EtcdServer;

use crate::error::{fail, Result};

/// The first command-line argument as a size, or `default` when it is
/// missing or not a number.
pub fn size_arg(default: usize) -> usize {
    std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A fresh single-node etcd server (free loopback ports, a temporary
/// directory) and the `etcd://` URL that reaches it.
///
/// # Errors
/// When the server cannot be started (the harness says why, e.g. etcd
/// not installed).
pub async fn etcd() -> Result<(EtcdServer, String)> {
    let server = EtcdServer::start()
        .await
        .map_err(|e| fail(format!("cannot start etcd: {e}")))?;
    let url = format!("etcd://{}", server.endpoint().trim_start_matches("http://"));
    Ok((server, url))
}

/// A fresh single-node etcd server and two raw clients of it (a writer
/// and a watcher, each on a connection of its own).
///
/// # Errors
/// When the server cannot be started or a client cannot connect.
pub async fn etcd_with_two_clients() -> Result<(EtcdServer, Client, Client)> {
    let (server, _) = etcd().await?;
    let a = raw_client(&server).await?;
    let b = raw_client(&server).await?;
    Ok((server, a, b))
}

/// A raw etcd client of `server`, on a connection of its own.
///
/// # Errors
/// When it cannot connect.
pub async fn raw_client(server: &EtcdServer) -> Result<Client> {
    Client::connect([server.endpoint()], None)
        .await
        .map_err(|e| fail(format!("cannot connect to etcd: {e}")))
}

/// A raw etcd watch of `key` from revision `from`.
///
/// # Errors
/// When the watch cannot be opened.
pub async fn watch_from(
    client: &mut Client,
    key: &str,
    from: i64,
) -> Result<etcd_client::WatchStream> {
    let options = etcd_client::WatchOptions::new().with_start_revision(from);
    client
        .watch(key, Some(options))
        .await
        .map_err(|e| fail(format!("watch {key}: {e}")))
}

/// Waits on a raw etcd watch for the first event of `kind` it reports
/// (a put, a deletion): its revision.
///
/// # Errors
/// When the watch breaks, or ends before such an event.
pub async fn next_event(
    events: &mut etcd_client::WatchStream,
    kind: etcd_client::EventType,
) -> Result<i64> {
    let broken = |e: etcd_client::Error| fail(format!("watch: {e}"));
    while let Some(resp) = events.message().await.map_err(broken)? {
        for e in resp.events() {
            if e.event_type() == kind {
                return Ok(e.kv().map_or(0, |kv| kv.mod_revision()));
            }
        }
    }
    Err(fail(format!("the watch ended before a {kind:?} event")))
}
