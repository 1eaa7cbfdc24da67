//! Raw backend floors, measured with the raw clients: the cheapest a
//! handover could be on each backend.
//!
//! - etcd: one client deletes a key; another client's watch of that key is
//!   notified.
//! - ZooKeeper: one client deletes a node; another client's `exists`
//!   watch on that node fires.
//!
//! Each sample runs from the bench's clock reading just before the delete
//! is sent to the moment the watcher's notification is received.
//!
//! The "then one read" variants add what a successor cannot skip: once
//! notified, the watcher reads one other key (its own entry: etcd, a
//! linearizable get; ZooKeeper, a `getData` on the same session), and the
//! sample ends with that answer. A handover needs at least this much: the
//! successor must see its own entry still there before it may lead.

use std::time::Duration;

use etcd_client::EventType;
use zookeeper_client as zk;

use crate::clock::{between, mono_ns};
use crate::error::{fail, within, Context, Result};
use crate::servers::Servers;

/// Pause between samples, so each starts from a quiet connection.
const SETTLE: Duration = Duration::from_millis(20);

/// `runs` samples of etcd delete → watcher notified.
///
/// # Errors
/// Request failures or a notification that never comes.
pub async fn etcd(servers: &Servers, runs: usize) -> Result<Vec<Duration>> {
    etcd_samples(servers, runs, false).await
}

/// `runs` samples of etcd delete → watcher notified → its get answered.
///
/// # Errors
/// Request failures or a notification that never comes.
pub async fn etcd_then_read(servers: &Servers, runs: usize) -> Result<Vec<Duration>> {
    etcd_samples(servers, runs, true).await
}

async fn etcd_samples(servers: &Servers, runs: usize, then_read: bool) -> Result<Vec<Duration>> {
    let mut deleter = servers.raw_etcd().await?;
    let mut watcher = servers.raw_etcd().await?;
    let key = "bench-floor/key";
    let own = "bench-floor/own";
    deleter
        .put(own, "v", None)
        .await
        .context(|| "etcd floor: put".into())?;
    let mut stream = watcher
        .watch(key, None)
        .await
        .context(|| "etcd floor: watch".into())?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        deleter
            .put(key, "v", None)
            .await
            .context(|| "etcd floor: put".into())?;
        // The put seen by the watcher: the watch is live and quiet.
        wait_etcd_event(&mut stream, EventType::Put).await?;
        tokio::time::sleep(SETTLE).await;
        let t0 = mono_ns();
        let (deleted, seen) = tokio::join!(deleter.delete(key, None), async {
            let seen = wait_etcd_event(&mut stream, EventType::Delete).await?;
            if !then_read {
                return Ok(seen);
            }
            watcher
                .get(own, None)
                .await
                .context(|| "etcd floor: get".into())?;
            Result::Ok(mono_ns())
        });
        deleted.context(|| "etcd floor: delete".into())?;
        samples.push(between(t0, seen?));
    }
    Ok(samples)
}

/// Reads watch responses until one carries an event of type `kind`;
/// returns when it was received.
async fn wait_etcd_event(stream: &mut etcd_client::WatchStream, kind: EventType) -> Result<u64> {
    within(
        Duration::from_secs(10),
        || "etcd floor: watch event".into(),
        async {
            loop {
                let msg = stream
                    .message()
                    .await
                    .context(|| "etcd floor: watch stream".into())?
                    .ok_or_else(|| fail("etcd floor: watch stream ended"))?;
                let at = mono_ns();
                if msg.events().iter().any(|e| e.event_type() == kind) {
                    return Ok(at);
                }
            }
        },
    )
    .await?
}

/// `runs` samples of ZooKeeper delete → exists-watcher notified.
///
/// # Errors
/// Request failures or a notification that never comes.
pub async fn zookeeper(servers: &Servers, runs: usize) -> Result<Vec<Duration>> {
    zookeeper_samples(servers, runs, false).await
}

/// `runs` samples of ZooKeeper delete → exists-watcher notified → its
/// `getData` answered.
///
/// # Errors
/// Request failures or a notification that never comes.
pub async fn zookeeper_then_read(servers: &Servers, runs: usize) -> Result<Vec<Duration>> {
    zookeeper_samples(servers, runs, true).await
}

async fn zookeeper_samples(
    servers: &Servers,
    runs: usize,
    then_read: bool,
) -> Result<Vec<Duration>> {
    let deleter = servers.raw_zk().await?;
    let watcher = servers.raw_zk().await?;
    let path = "/bench-floor";
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    match deleter.create(path, b"", &options).await {
        Ok(_) | Err(zk::Error::NodeExists) => {}
        Err(e) => return Err(fail(format!("ZooKeeper floor: create {path}: {e}"))),
    }
    let node = "/bench-floor/node";
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        match deleter.create(node, b"v", &options).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(fail(format!("ZooKeeper floor: create {node}: {e}"))),
        }
        let (stat, watch) = watcher
            .check_and_watch_stat(node)
            .await
            .context(|| "ZooKeeper floor: exists watch".into())?;
        if stat.is_none() {
            return Err(fail(
                "ZooKeeper floor: the node is not visible to the watcher",
            ));
        }
        tokio::time::sleep(SETTLE).await;
        let t0 = mono_ns();
        let (deleted, seen) = tokio::join!(deleter.delete(node, None), async {
            let _event = watch.changed().await;
            if then_read {
                // The election node stands for the successor's own.
                watcher
                    .get_data(path)
                    .await
                    .context(|| "ZooKeeper floor: get".into())?;
            }
            Result::Ok(mono_ns())
        });
        deleted.context(|| "ZooKeeper floor: delete".into())?;
        samples.push(between(t0, seen?));
    }
    Ok(samples)
}
