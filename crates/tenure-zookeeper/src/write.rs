//! Writes guarded by ownership: updating and deleting an entry only while
//! its node is still that entry (same `czxid`, written at the version just
//! read), and a put guarded by such an entry in one `multi`.

use bytes::Bytes;
use tenure_core::{Entry, Error, LeaseId, Result, Revision};
use zookeeper_client as zk;

use crate::backend::ZkBackend;
use crate::error::{self, Ctx};
use crate::paths::{parent_of, Shape};
use crate::read::zxid;
use crate::retry::{answer, lost, Retries};

impl ZkBackend {
    /// [`update`](tenure_core::CoordinationBackend::update).
    pub(crate) async fn update_owned(&self, entry: &Entry, value: Bytes) -> Result<Entry> {
        let ctx = self.ctx("update", None);
        let client = self.reader().await?;
        let not_owner = || Error::NotOwner {
            key: entry.key.clone(),
        };
        let path = self.names().resolve(&entry.key)?;
        let mut retries = Retries::new();
        loop {
            let Some(stat) = self.owned_stat(&client, entry, ctx).await? else {
                return Err(not_owner());
            };
            match client.set_data(&path, &value, Some(stat.version)).await {
                Ok(stat) => {
                    return Ok(Entry {
                        value,
                        modified: zxid(stat.mzxid),
                        created: zxid(stat.czxid),
                        lease: LeaseId(stat.ephemeral_owner),
                        key: entry.key.clone(),
                    })
                }
                Err(zk::Error::NoNode) => return Err(not_owner()),
                Err(zk::Error::BadVersion) => retries.after_pause(ctx).await?,
                Err(e) if lost(&e) => retries.after_pause(ctx).await?,
                Err(e) => return Err(ctx.error(e)),
            }
        }
    }

    /// [`delete`](tenure_core::CoordinationBackend::delete).
    pub(crate) async fn delete_owned(&self, entry: &Entry) -> Result<bool> {
        let ctx = self.ctx("delete", None);
        let client = self.reader().await?;
        let path = self.names().resolve(&entry.key)?;
        if self.names().is_sequential(&path) {
            return delete_sequential(&client, &path, ctx).await;
        }
        let mut retries = Retries::new();
        loop {
            let Some(stat) = self.owned_stat(&client, entry, ctx).await? else {
                return Ok(false);
            };
            match client.delete(&path, Some(stat.version)).await {
                Ok(()) => return Ok(true),
                Err(zk::Error::NoNode) => return Ok(false),
                // A lost reply: the next round finds out whether it went.
                Err(zk::Error::BadVersion) => retries.after_pause(ctx).await?,
                Err(e) if lost(&e) => retries.after_pause(ctx).await?,
                Err(e) => return Err(ctx.error(e)),
            }
        }
    }

    /// The stat of `entry`'s node if it is still that entry (same czxid).
    async fn owned_stat(
        &self,
        client: &zk::Client,
        entry: &Entry,
        ctx: Ctx<'_>,
    ) -> Result<Option<zk::Stat>> {
        let path = self.names().resolve(&entry.key)?;
        match answer(|| client.check_stat(&path)).await {
            Ok(Some(stat)) if zxid(stat.czxid) == entry.created => Ok(Some(stat)),
            Ok(_) => Ok(None),
            Err(zk::Error::BadArguments(_)) => Ok(None),
            Err(e) => Err(ctx.error(e)),
        }
    }

    /// [`guarded_put`](tenure_core::CoordinationBackend::guarded_put):
    /// refuses, with [`Error::KeyInElection`], keys inside the guard's
    /// election (its node and everything below it) and nodes named like a
    /// candidate or a leader node (`leader`, `…latch-<n>`, `…__lock__<n>`),
    /// which would sit among the candidates of the election above them.
    pub(crate) async fn put_guarded(
        &self,
        guard: &Entry,
        key: &str,
        value: Bytes,
    ) -> Result<Revision> {
        let ctx = self.ctx("guarded put", None);
        let names = self.names();
        let path = names.resolve(key)?;
        let guard_path = names.resolve(&guard.key)?;
        let election = parent_of(&guard_path);
        let guard_is_candidate =
            Shape::of(guard_path[election.len()..].trim_start_matches('/')).is_some();
        let inside = if guard_is_candidate
            && (path == election || path.starts_with(&format!("{election}/")))
        {
            Some(election)
        } else {
            let name = &path[parent_of(&path).len()..];
            Shape::of(name.trim_start_matches('/'))
                .is_some()
                .then(|| parent_of(&path))
        };
        if let Some(election) = inside {
            return Err(Error::KeyInElection {
                key: key.to_owned(),
                election: names.relative(election),
            });
        }
        let client = self.reader().await?;
        let not_owner = || Error::NotOwner {
            key: guard.key.clone(),
        };
        let persistent = zk::CreateMode::Persistent.with_acls(self.acls());
        let mut create = false;
        let mut retries = Retries::new();
        loop {
            let Some(stat) = self.owned_stat(&client, guard, ctx).await? else {
                return Err(not_owner());
            };
            let mut writer = client.new_multi_writer();
            writer
                .add_check_version(&guard_path, stat.version)
                .map_err(|e| ctx.error(e))?;
            if create {
                writer
                    .add_create(&path, &value, &persistent)
                    .map_err(|e| ctx.error(e))?;
            } else {
                writer
                    .add_set_data(&path, &value, None)
                    .map_err(|e| ctx.error(e))?;
            }
            match writer.commit().await {
                Ok(results) => return written(&client, &path, results, ctx).await,
                Err(zk::MultiWriteError::OperationFailed { index: 0, source }) => match source {
                    // The guard changed version (a proclaim) or went away:
                    // the next round re-checks its czxid.
                    zk::Error::BadVersion | zk::Error::NoNode => retries.at_once(ctx)?,
                    e => return Err(ctx.error(e)),
                },
                Err(zk::MultiWriteError::OperationFailed { source, .. }) => {
                    match source {
                        zk::Error::NoNode if !create => create = true,
                        zk::Error::NodeExists if create => create = false,
                        zk::Error::NoNode => self.mkdir(&client, parent_of(&path), ctx).await?,
                        e => return Err(ctx.error(e)),
                    }
                    retries.at_once(ctx)?;
                }
                Err(zk::MultiWriteError::RequestFailed { source }) => match source {
                    e if lost(&e) => retries.after_pause(ctx).await?,
                    e => return Err(ctx.error(e)),
                },
            }
        }
    }
}

/// The revision of a guarded put's write, from the results of its
/// `multi` (read back from `path` when an old server omits the stat).
async fn written(
    client: &zk::Client,
    path: &str,
    results: Vec<zk::MultiWriteResult>,
    ctx: Ctx<'_>,
) -> Result<Revision> {
    for r in results {
        match r {
            zk::MultiWriteResult::SetData { stat } => return Ok(zxid(stat.mzxid)),
            zk::MultiWriteResult::Create { stat, .. } if !stat.is_invalid() => {
                return Ok(zxid(stat.mzxid))
            }
            zk::MultiWriteResult::Create { .. } => {
                // Old servers omit the stat: read it back.
                return match client.check_stat(path).await {
                    Ok(Some(s)) => Ok(zxid(s.mzxid)),
                    Ok(None) => Err(error::protocol("guarded put", "created node vanished")),
                    Err(e) => Err(ctx.error(e)),
                };
            }
            _ => {}
        }
    }
    Err(error::protocol(
        "guarded put",
        "multi without a write result",
    ))
}

/// Deletes a queue entry by its path, in one round trip.
///
/// A sequential node's name is never given twice under one election
/// node (ZooKeeper's counter only grows), and ours carries the lease's
/// UUID: while a node of that name exists it is the entry we created,
/// so no check of its czxid is needed first. (An election node is
/// deleted only once empty; a node of the same name could then only
/// come back under a new election node from the same lease, which
/// creates again only after this delete has returned.)
async fn delete_sequential(client: &zk::Client, path: &str, ctx: Ctx<'_>) -> Result<bool> {
    // A lost reply: the next attempt finds out whether it went.
    match answer(|| client.delete(path, None)).await {
        Ok(()) => Ok(true),
        Err(zk::Error::NoNode) => Ok(false),
        Err(e) => Err(ctx.error(e)),
    }
}
