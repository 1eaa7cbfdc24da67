//! Every election under a name prefix: one range read lists them (or
//! reads all their entries), one prefix watch reports the candidates
//! created in any of them (or every change of every entry).
//!
//! Keys are `<election key>/<lease hex>` (queue entries) and `<election
//! key>` (single-key leaders), where an election key is the name with `%`
//! and `/` escaped: the elections under the name prefix `p` are exactly
//! those whose keys start with `p` escaped the same way.

use std::collections::BTreeSet;

use futures::StreamExt;
use tenure_core::{
    ElectionName, ElectionStream, Entry, PrefixWatchStream, Result, Revision, WatchEvent,
};

use crate::backend::{header_rev, EtcdBackend};
use crate::watch;

/// `prefix` escaped as election keys are.
fn key_prefix(prefix: &str) -> String {
    prefix.replace('%', "%25").replace('/', "%2F")
}

/// The election a key of a live entry (bound to a lease) belongs to, if
/// its name starts with `prefix`.
fn election(prefix: &str, key: &str, lease: i64) -> Option<ElectionName> {
    if lease == 0 {
        return None; // application data, never a candidate
    }
    election_of_key(prefix, key)
}

/// The election whose key space holds `key` (its leader key, or a direct
/// child: a queue entry), if its name starts with `prefix`.
fn election_of_key(prefix: &str, key: &str) -> Option<ElectionName> {
    if key.matches('/').count() > 1 {
        return None; // no election's key: election keys hold no `/`
    }
    let name = EtcdBackend::election_of(key);
    if !name.starts_with(prefix) {
        return None;
    }
    ElectionName::new(name).ok()
}

/// The elections under `prefix` with a live entry, in name order: one
/// range read of the keys alone.
pub(crate) async fn list(backend: &EtcdBackend, prefix: &str) -> Result<Vec<ElectionName>> {
    let options = etcd_client::GetOptions::new()
        .with_prefix()
        .with_keys_only();
    let mut kv = backend.client().kv_client();
    let resp = backend
        .request(
            "list elections",
            kv.get(backend.full_key(&key_prefix(prefix)), Some(options)),
        )
        .await?;
    let names: BTreeSet<ElectionName> = resp
        .kvs()
        .iter()
        .filter_map(|kv| election(prefix, &backend.relative_key(kv.key()), kv.lease()))
        .collect();
    Ok(names.into_iter().collect())
}

/// One prefix watch from now on: the election of every entry created
/// under `prefix`. Confirmed by etcd before this returns; a broken or
/// cancelled watch ends the stream with an error.
pub(crate) async fn watch(backend: &EtcdBackend, prefix: &str) -> Result<ElectionStream> {
    let options = etcd_client::WatchOptions::new().with_prefix();
    let mut client = backend.client().watch_client();
    let mut stream = backend
        .request(
            "watch elections",
            client.watch(backend.full_key(&key_prefix(prefix)), Some(options)),
        )
        .await?;
    // The first reply confirms the watch.
    if backend
        .request("watch elections", stream.message())
        .await?
        .is_none()
    {
        return Err(watch::ended(backend));
    }
    let (backend, prefix) = (backend.clone(), prefix.to_owned());
    let names = futures::stream::unfold(
        (stream, backend, prefix, false),
        |(mut stream, backend, prefix, done)| async move {
            if done {
                return None;
            }
            let item = match stream.message().await {
                Ok(Some(resp)) if resp.canceled() => {
                    Err(watch::cancelled("watch elections", resp.cancel_reason()))
                }
                Ok(Some(resp)) => Ok(resp
                    .events()
                    .iter()
                    .filter_map(|e| e.kv())
                    // Created (version 1), not updated or deleted (0).
                    .filter(|kv| kv.version() == 1)
                    .filter_map(|kv| election(&prefix, &backend.relative_key(kv.key()), kv.lease()))
                    .collect::<Vec<_>>()),
                Ok(None) => Err(watch::ended(&backend)),
                Err(e) => Err(backend.wrap_error("watch elections", e)),
            };
            let done = item.is_err();
            Some((item, (stream, backend, prefix, done)))
        },
    )
    .flat_map(|item| {
        let items: Vec<Result<ElectionName>> = match item {
            Ok(names) => names.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(items)
    });
    Ok(names.boxed())
}

/// Every live entry under `prefix` with its election: one range read.
pub(crate) async fn read(
    backend: &EtcdBackend,
    prefix: &str,
) -> Result<(Vec<(ElectionName, Entry)>, Revision)> {
    let options = etcd_client::GetOptions::new().with_prefix();
    let mut kv = backend.client().kv_client();
    let resp = backend
        .request(
            "read prefix",
            kv.get(backend.full_key(&key_prefix(prefix)), Some(options)),
        )
        .await?;
    let revision = header_rev("read prefix", resp.header())?;
    let entries = resp
        .kvs()
        .iter()
        .map(|kv| backend.entry(kv))
        .filter_map(|e| election(prefix, &e.key, e.lease.0).map(|name| (name, e)))
        .collect();
    Ok((entries, revision))
}

/// One prefix watch from `from`: every change of every entry under
/// `prefix`, with its election; a compacted start yields `HistoryLost`
/// and ends the stream, a broken one an error.
pub(crate) async fn watch_entries(
    backend: &EtcdBackend,
    prefix: &str,
    from: Revision,
) -> Result<PrefixWatchStream> {
    let mut options = etcd_client::WatchOptions::new().with_prefix();
    if from > 0 {
        options = options.with_start_revision(i64::try_from(from).unwrap_or(i64::MAX));
    }
    let mut client = backend.client().watch_client();
    let mut stream = backend
        .request(
            "watch prefix",
            client.watch(backend.full_key(&key_prefix(prefix)), Some(options)),
        )
        .await?;
    let first = backend
        .request("watch prefix", stream.message())
        .await?
        .ok_or_else(|| watch::ended(backend))?;
    let owned = prefix.to_owned();
    let reading = watch::Reading {
        operation: "watch prefix",
        history_lost: || (None, WatchEvent::HistoryLost),
        pick: Box::new(move |backend: &EtcdBackend, event: &etcd_client::Event| {
            let kv = event.kv()?;
            let name = election_of_key(&owned, &backend.relative_key(kv.key()))?;
            Some((Some(name), watch::change(backend, kv)))
        }),
    };
    Ok(watch::items(backend, stream, first, reading))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_their_elections_under_the_prefix() {
        assert_eq!(key_prefix("jobs/"), "jobs%2F");
        let e = |p: &str, k: &str, l| election(p, k, l).map(|n| n.as_str().to_owned());
        assert_eq!(e("", "jobs/694d", 0x694d).as_deref(), Some("jobs"));
        assert_eq!(e("", "jobs", 7).as_deref(), Some("jobs"));
        assert_eq!(
            e("jobs/", "jobs%2Fa/694d", 0x694d).as_deref(),
            Some("jobs/a")
        );
        assert_eq!(e("jobs/", "jobsx/694d", 0x694d), None);
        assert_eq!(e("", "data", 0), None);
        assert_eq!(e("", "a/b/c", 7), None);
    }
}
