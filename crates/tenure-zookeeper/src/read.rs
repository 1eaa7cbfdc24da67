//! Reads: candidates, one key, and the revisions they are taken at, each
//! from atomic multi-reads (one round trip, one point in the server's
//! history); and how a node read becomes a tenure [`Entry`].

use bytes::Bytes;
use tenure_core::{Entry, LeaseId, Result, Revision, Snapshot};
use zookeeper_client as zk;

use crate::error::{self, Ctx};
use crate::paths::{parent_of, Names};
use crate::retry::{lost, Retries};

/// A zxid as a revision (zxids are never negative).
pub(crate) fn zxid(z: i64) -> Revision {
    z.max(0) as Revision
}

/// The entry `key` of a node read with `data` and `stat`.
pub(crate) fn entry(key: String, data: Vec<u8>, stat: &zk::Stat) -> Entry {
    Entry {
        key,
        value: Bytes::from(data),
        lease: LeaseId(stat.ephemeral_owner),
        created: zxid(stat.czxid),
        modified: zxid(stat.mzxid),
    }
}

/// One operation of a [`multi_read`].
pub(crate) enum Read<'a> {
    /// A node's data and stat.
    Data(&'a str),
    /// A node's children's names.
    Children(&'a str),
}

/// Reads `ops` in one atomic multi-read (one round trip, one point in the
/// server's history), retried across connection losses for as long as
/// [`Retries`] allows (about 8 s).
pub(crate) async fn multi_read(
    client: &zk::Client,
    ops: &[Read<'_>],
    ctx: Ctx<'_>,
) -> Result<Vec<zk::MultiReadResult>> {
    let mut retries = Retries::new();
    loop {
        let mut reader = client.new_multi_reader();
        for op in ops {
            match op {
                Read::Data(path) => reader.add_get_data(path),
                Read::Children(path) => reader.add_get_children(path),
            }
            .map_err(|e| ctx.error(e))?;
        }
        match reader.commit().await {
            Ok(results) => return Ok(results),
            Err(e) if lost(&e) => retries.after_pause(ctx).await?,
            Err(e) => return Err(ctx.error(e)),
        }
    }
}

/// The `pzxid` of the deepest existing ancestor of `path` (the zxid of
/// the last creation or deletion among its children): any creation or
/// deletion at or below `path` since then would have changed it. Read in
/// one multi-read.
pub(crate) async fn ancestor_revision(
    client: &zk::Client,
    path: &str,
    ctx: Ctx<'_>,
) -> Result<Revision> {
    let mut ancestors = Vec::new();
    let mut p = path;
    loop {
        p = parent_of(p);
        ancestors.push(p.to_owned());
        if p == "/" {
            break;
        }
    }
    let ops: Vec<Read<'_>> = ancestors.iter().map(|a| Read::Data(a)).collect();
    Ok(multi_read(client, &ops, ctx)
        .await?
        .into_iter()
        .find_map(|r| match r {
            zk::MultiReadResult::Data { stat, .. } => Some(zxid(stat.pzxid)),
            _ => None,
        })
        .unwrap_or(0))
}

/// Reads the election's candidates with `client`: the children list,
/// then one multi-read of every candidate and (last) the election node
/// itself, repeated if a child was created or deleted in between.
pub(crate) async fn candidates(
    client: &zk::Client,
    names: &Names,
    dir: &str,
    ctx: Ctx<'_>,
) -> Result<Snapshot> {
    let layout = names.layout();
    let mut last: Option<Snapshot> = None;
    let mut retries = Retries::new();
    loop {
        let (children, stat) = match client.get_children(dir).await {
            Ok(r) => r,
            Err(zk::Error::NoNode) => {
                let revision = ancestor_revision(client, dir, ctx).await?;
                return Ok(Snapshot {
                    entries: Vec::new(),
                    revision,
                    starts_at_head: true,
                });
            }
            Err(e) if lost(&e) => {
                if retries.pause().await {
                    continue;
                }
                break;
            }
            Err(e) => return Err(ctx.error(e)),
        };
        let mut seqs: Vec<(String, String)> = children
            .into_iter()
            .filter_map(|c| layout.sequence(&c).map(|s| (s.to_owned(), c.clone())))
            .collect();
        seqs.sort();
        let mut reader = client.new_multi_reader();
        for (_, name) in &seqs {
            reader
                .add_get_data(&format!("{dir}/{name}"))
                .map_err(|e| ctx.error(e))?;
        }
        reader.add_get_data(dir).map_err(|e| ctx.error(e))?;
        let results = match reader.commit().await {
            Ok(r) => r,
            Err(e) if lost(&e) => {
                if retries.pause().await {
                    continue;
                }
                break;
            }
            Err(e) => return Err(ctx.error(e)),
        };
        let mut entries = Vec::with_capacity(seqs.len());
        let mut parent = None;
        for (i, r) in results.into_iter().enumerate() {
            match (seqs.get(i), r) {
                // A persistent node (no session owns it) is never a
                // candidate, whatever its name.
                (Some(_), zk::MultiReadResult::Data { stat, .. }) if stat.ephemeral_owner == 0 => {}
                (Some((_, name)), zk::MultiReadResult::Data { data, stat }) => {
                    entries.push(entry(names.relative(&format!("{dir}/{name}")), data, &stat));
                }
                (None, zk::MultiReadResult::Data { stat, .. }) => parent = Some(stat),
                _ => {}
            }
        }
        let Some(parent) = parent else {
            // The election node went away in between: read again.
            if retries.count() {
                continue;
            }
            break;
        };
        let revision = entries
            .iter()
            .map(|e| e.modified)
            .chain([zxid(parent.pzxid), zxid(parent.mzxid)])
            .max()
            .unwrap_or(0);
        // Entries created after the listing stand behind every entry in
        // it, so the first one listed and still there is the first.
        let snapshot = Snapshot {
            entries,
            revision,
            starts_at_head: true,
        };
        if parent.pzxid == stat.pzxid {
            return Ok(snapshot);
        }
        last = Some(Snapshot {
            revision: zxid(stat.pzxid),
            ..snapshot
        });
        if !retries.count() {
            break;
        }
    }
    // Children keep changing under us. The list may then lack a
    // candidate created after it: report the list's own pzxid, which
    // is older than any such creation, so a watch from it misses
    // nothing (it may repeat a few changes).
    last.ok_or_else(|| ctx.error(zk::Error::ConnectionLoss))
}

/// [`queue_around`](tenure_core::CoordinationBackend::queue_around) in one
/// atomic multi-read: the election's children (names only), the election
/// node and `own`'s node. When no candidate name sorts before ours, we
/// lead and that one round trip is the whole read. Otherwise the names
/// say which two nodes come just before ours, and one more multi-read of
/// those two alone completes the answer: what a candidate reads does not
/// grow with the queue, beyond the names. Only when one of them is gone
/// by then, or is no candidate (a node no session owns), does the full
/// read find the nearest live ones.
pub(crate) async fn around(
    client: &zk::Client,
    names: &Names,
    dir: &str,
    own: &Entry,
    ctx: Ctx<'_>,
) -> Result<Snapshot> {
    let layout = names.layout();
    let own_path = names.resolve(&own.key)?;
    let own_name = own_path.rsplit('/').next().unwrap_or_default();
    let Some(own_seq) = layout.sequence(own_name) else {
        return Ok(candidates(client, names, dir, ctx).await?.around(own));
    };
    let ops = [Read::Children(dir), Read::Data(dir), Read::Data(&own_path)];
    let mut it = multi_read(client, &ops, ctx).await?.into_iter();
    // No election node (or an unexpected answer): the full read says
    // what there is.
    if let (
        Some(zk::MultiReadResult::Children { children }),
        Some(zk::MultiReadResult::Data { stat: parent, .. }),
    ) = (it.next(), it.next())
    {
        let revision = zxid(parent.pzxid).max(zxid(parent.mzxid));
        let mine = match it.next() {
            Some(zk::MultiReadResult::Data { data, stat }) if stat.ephemeral_owner != 0 => {
                entry(own.key.clone(), data, &stat)
            }
            Some(zk::MultiReadResult::Error {
                err: zk::Error::NoNode,
            }) => {
                return Ok(Snapshot {
                    entries: Vec::new(),
                    revision,
                    starts_at_head: false,
                })
            }
            _ => return Ok(candidates(client, names, dir, ctx).await?.around(own)),
        };
        let revision = revision.max(mine.modified);
        // The names before ours that `Snapshot::around` keeps (the
        // nearest two, the nearest last), and how many there are in all.
        let keep = Snapshot::AROUND - 1;
        let mut nearest: Vec<(&str, &str)> = Vec::with_capacity(keep + 1);
        let mut count_ahead = 0usize;
        for named in children
            .iter()
            .filter_map(|c| layout.sequence(c).map(|seq| (seq, c.as_str())))
            .filter(|&named| named < (own_seq, own_name))
        {
            count_ahead += 1;
            let at = nearest.partition_point(|&kept| kept < named);
            nearest.insert(at, named);
            if nearest.len() > keep {
                nearest.remove(0);
            }
        }
        // No name before ours beyond those kept: the first of them is the
        // first (each is checked to be a candidate below).
        let starts_at_head = count_ahead <= keep;
        if nearest.is_empty() {
            return Ok(Snapshot {
                entries: vec![mine],
                revision,
                starts_at_head: true,
            });
        }
        // A name is never given twice under one election node: the nodes
        // read now are the ones listed above, unless they are gone.
        let paths: Vec<String> = nearest
            .iter()
            .map(|(_, name)| format!("{dir}/{name}"))
            .collect();
        let ops: Vec<Read<'_>> = paths.iter().map(|p| Read::Data(p)).collect();
        let mut entries = Vec::with_capacity(Snapshot::AROUND);
        let mut revision = revision;
        for (path, read) in paths.iter().zip(multi_read(client, &ops, ctx).await?) {
            match read {
                zk::MultiReadResult::Data { data, stat } if stat.ephemeral_owner != 0 => {
                    let e = entry(names.relative(path), data, &stat);
                    revision = revision.max(e.modified);
                    entries.push(e);
                }
                // Gone since, or no candidate: the full read finds the
                // nearest live ones.
                _ => return Ok(candidates(client, names, dir, ctx).await?.around(own)),
            }
        }
        entries.push(mine);
        return Ok(Snapshot {
            entries,
            revision,
            starts_at_head,
        });
    }
    Ok(candidates(client, names, dir, ctx).await?.around(own))
}

/// One node (`key`, at `path`) and the revision of the read.
pub(crate) async fn key(
    client: &zk::Client,
    key: &str,
    path: &str,
    ctx: Ctx<'_>,
) -> Result<(Option<Entry>, Revision)> {
    let results = multi_read(
        client,
        &[Read::Data(path), Read::Data(parent_of(path))],
        ctx,
    )
    .await?;
    let mut it = results.into_iter();
    let node = it.next();
    let parent = it.next();
    let parent_rev = match parent {
        Some(zk::MultiReadResult::Data { stat, .. }) => Some(zxid(stat.pzxid)),
        _ => None,
    };
    match node {
        Some(zk::MultiReadResult::Data { data, stat }) => {
            let e = entry(key.to_owned(), data, &stat);
            let rev = e.modified.max(parent_rev.unwrap_or(0));
            Ok((Some(e), rev))
        }
        Some(zk::MultiReadResult::Error {
            err: zk::Error::NoNode,
        }) => {
            let rev = match parent_rev {
                Some(r) => r,
                None => ancestor_revision(client, path, ctx).await?,
            };
            Ok((None, rev))
        }
        Some(zk::MultiReadResult::Error { err }) => Err(ctx.error(err)),
        _ => Err(error::protocol("get", "unexpected multi-read answer")),
    }
}
