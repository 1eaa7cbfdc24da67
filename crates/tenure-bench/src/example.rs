//! What the diagnostic examples (`examples/`) share: their size argument,
//! an etcd server of their own with raw clients, and how they print a
//! distribution.

use std::time::Duration;

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
    let connect = || async {
        Client::connect([server.endpoint()], None)
            .await
            .map_err(|e| fail(format!("cannot connect to etcd: {e}")))
    };
    let a = connect().await?;
    let b = connect().await?;
    Ok((server, a, b))
}

/// The median and the 90th percentile of `samples`, in milliseconds
/// (sorts them; zeros when there are none).
pub fn median_p90_ms(samples: &mut [Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let n = samples.len();
    (ms(samples[n / 2]), ms(samples[n * 9 / 10]))
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

/// Waits on a raw etcd watch for the first deletion it reports: its
/// revision.
///
/// # Errors
/// When the watch breaks, or ends before a deletion.
pub async fn next_delete(events: &mut etcd_client::WatchStream) -> Result<i64> {
    let broken = |e: etcd_client::Error| fail(format!("watch: {e}"));
    while let Some(resp) = events.message().await.map_err(broken)? {
        for e in resp.events() {
            if e.event_type() == etcd_client::EventType::Delete {
                return Ok(e.kv().map_or(0, |kv| kv.mod_revision()));
            }
        }
    }
    Err(fail("the watch ended before a deletion"))
}
