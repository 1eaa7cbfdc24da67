//! Every election under a name prefix: a walk of the tree lists them, one
//! persistent recursive watch on the root (ZooKeeper ≥ 3.6) reports the
//! candidates created in any of them. Each election's leader is then
//! followed by its own watch, as for a single observer.
//!
//! An election is a node with a candidate child: the single-key
//! `leader` node, or a queue entry of either layout. Candidates are
//! ephemeral, so they have no children of their own and the walk does
//! not descend into them.

use std::collections::BTreeSet;

use futures::StreamExt;
use tenure_core::{ElectionName, ElectionStream, Error, Result};
use tokio::sync::mpsc;
use zookeeper_client as zk;

use crate::backend::ZkBackend;
use crate::layout::Layout;
use crate::paths::{parent_of, LEADER_NODE};

/// Whether a child of a node names a candidate (of any shape).
fn is_candidate(child: &str) -> bool {
    child == LEADER_NODE
        || Layout::Curator.sequence(child).is_some()
        || Layout::Kazoo.sequence(child).is_some()
}

/// Whether the walk must look below the node of name `name`: it may hold
/// elections whose names start with `prefix`.
fn worth_visiting(prefix: &str, name: &str) -> bool {
    name.starts_with(prefix) || prefix.starts_with(name)
}

/// `rel` below `dir` (a path; `/` for the root of the server).
fn child_path(dir: &str, child: &str) -> String {
    if dir == "/" {
        format!("/{child}")
    } else {
        format!("{dir}/{child}")
    }
}

/// The elections under `prefix` with a candidate, in name order: one
/// children read per node visited.
pub(crate) async fn list(backend: &ZkBackend, prefix: &str) -> Result<Vec<ElectionName>> {
    let client = backend.reader().await?;
    let ctx = backend.ctx("list elections", None);
    let root = backend.options().root.clone();
    let mut found = BTreeSet::new();
    // (node path, its name relative to the root; "" for the root)
    let mut pending = vec![(root, String::new())];
    while let Some((path, name)) = pending.pop() {
        let children = match client.list_children(&path).await {
            Ok(c) => c,
            // Gone meanwhile (or no election was ever made): nothing below.
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(ctx.error(e)),
        };
        if !name.is_empty() && name.starts_with(prefix) && children.iter().any(|c| is_candidate(c))
        {
            if let Ok(election) = ElectionName::new(name.clone()) {
                found.insert(election);
            }
        }
        for child in children.into_iter().filter(|c| !is_candidate(c)) {
            let child_name = if name.is_empty() {
                child.clone()
            } else {
                format!("{name}/{child}")
            };
            if worth_visiting(prefix, &child_name) {
                pending.push((child_path(&path, &child), child_name));
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// One persistent recursive watch on the root: the election of every
/// candidate created under `prefix`. A disconnection ends the stream with
/// an error (persistent watches miss what happens meanwhile); the caller
/// lists again and reopens it.
pub(crate) async fn watch(backend: &ZkBackend, prefix: &str) -> Result<ElectionStream> {
    let client = backend.reader().await?;
    let ctx = backend.ctx("watch elections", None);
    let root = backend.options().root.clone();
    let mut watcher = client
        .watch(&root, zk::AddWatchMode::PersistentRecursive)
        .await
        .map_err(|e| ctx.error(e))?;
    let (tx, mut rx) = mpsc::channel::<Result<ElectionName>>(64);
    let (backend, prefix) = (backend.clone(), prefix.to_owned());
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                ev = watcher.changed() => ev,
                () = tx.closed() => return,
            };
            if ev.event_type == zk::EventType::Session {
                if matches!(
                    ev.session_state,
                    zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly
                ) {
                    continue;
                }
                let _ = tx
                    .send(Err(Error::Cancelled(
                        "the ZooKeeper session was interrupted",
                    )))
                    .await;
                return;
            }
            if ev.event_type != zk::EventType::NodeCreated {
                continue;
            }
            let child = ev.path.rsplit('/').next().unwrap_or_default();
            if !is_candidate(child) {
                continue;
            }
            let name = backend.names().relative(parent_of(&ev.path));
            if !name.starts_with(&prefix) || name.starts_with('/') {
                continue;
            }
            if let Ok(election) = ElectionName::new(name) {
                if tx.send(Ok(election)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_and_prefixes() {
        assert!(is_candidate("leader"));
        assert!(!is_candidate("jobs"));
        assert!(worth_visiting("jobs/", "jobs"));
        assert!(worth_visiting("jobs/", "jobs/a"));
        assert!(!worth_visiting("jobs/", "web"));
        assert!(worth_visiting("", "anything"));
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/t", "a"), "/t/a");
    }
}
