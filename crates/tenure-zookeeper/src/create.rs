//! Creating candidates: queue entries with Curator's protection against
//! lost replies, the single-key leader node, and the rule that an
//! election holds one shape of candidate at a time.

use bytes::Bytes;
use tenure_core::{CreateOutcome, ElectionName, Entry, Error, Result, Revision};
use tracing::debug;
use zookeeper_client as zk;

use crate::backend::ZkBackend;
use crate::error::Ctx;
use crate::lease::LeaseSession;
use crate::paths::{parent_of, Shape};
use crate::read::{entry, zxid};
use crate::retry::{answer, lost, Retries};

impl ZkBackend {
    /// Creates `path` and its missing ancestors as persistent nodes.
    pub(crate) async fn mkdir(&self, client: &zk::Client, path: &str, ctx: Ctx<'_>) -> Result<()> {
        let options = zk::CreateMode::Persistent.with_acls(self.acls());
        match answer(|| client.mkdir(path, &options)).await {
            Ok(()) => Ok(()),
            Err(zk::Error::NoNode) => Err(Error::InvalidConfig {
                field: "connect",
                reason: "the chroot of the connect string does not exist".into(),
            }),
            Err(e) => Err(ctx.error(e)),
        }
    }

    /// Creates the node `path` (creating missing parents once).
    async fn create_node(
        &self,
        client: &zk::Client,
        path: &str,
        data: &[u8],
        mode: zk::CreateMode,
        ctx: Ctx<'_>,
    ) -> std::result::Result<(zk::Stat, zk::CreateSequence), zk::Error> {
        let options = mode.with_acls(self.acls());
        let mut made_parent = false;
        loop {
            match client.create(path, data, &options).await {
                Err(zk::Error::NoNode) if !made_parent => {
                    made_parent = true;
                    let parent = parent_of(path);
                    if let Err(e) = self.mkdir(client, parent, ctx).await {
                        debug!(%parent, error = %e, "cannot create parent");
                        return Err(zk::Error::NoNode);
                    }
                }
                other => return other,
            }
        }
    }

    /// Finds the queue entry of the lease whose unique name starts with
    /// `prefix` under `dir`, if any.
    async fn find_protected(
        &self,
        client: &zk::Client,
        dir: &str,
        prefix: &str,
        ctx: Ctx<'_>,
    ) -> Result<Option<Entry>> {
        let children = match answer(|| client.list_children(dir)).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => return Ok(None),
            Err(e) => return Err(ctx.error(e)),
        };
        let names = self.names();
        for child in children {
            if child.starts_with(prefix) && names.layout().sequence(&child).is_some() {
                let path = format!("{dir}/{child}");
                match client.get_data(&path).await {
                    Ok((data, stat)) => return Ok(Some(entry(names.relative(&path), data, &stat))),
                    Err(zk::Error::NoNode) => continue,
                    Err(e) => return Err(ctx.error(e)),
                }
            }
        }
        Ok(None)
    }

    pub(crate) async fn create_queue(
        &self,
        election: &ElectionName,
        lease: &LeaseSession,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        let ctx = self.ctx("create", Some(lease.id));
        let names = self.names();
        let dir = names.election_path(election)?;
        let prefix = names.layout().prefix(&lease.uuid);
        let client = &lease.client;
        // The name is unique to the lease: a second create finds the first.
        if let Some(e) = self.find_protected(client, &dir, &prefix, ctx).await? {
            return Ok(CreateOutcome::Exists(e));
        }
        let path = format!("{dir}/{prefix}");
        let mut retries = Retries::new();
        loop {
            let mode = zk::CreateMode::EphemeralSequential;
            match self.create_node(client, &path, &value, mode, ctx).await {
                Ok((stat, seq)) => {
                    let key = names.relative(&format!("{path}{seq}"));
                    return Ok(CreateOutcome::Created(entry(key, value.to_vec(), &stat)));
                }
                Err(e) if lost(&e) => {
                    // The reply was lost: the node may exist. Curator's
                    // protection mode: look for our unique prefix before
                    // creating again, so no ghost candidate is left behind.
                    let more = retries.pause().await;
                    if let Some(e) = self.find_protected(client, &dir, &prefix, ctx).await? {
                        return Ok(CreateOutcome::Created(e));
                    }
                    if !more {
                        return Err(ctx.error(zk::Error::ConnectionLoss));
                    }
                }
                Err(e) => return Err(ctx.error(e)),
            }
        }
    }

    pub(crate) async fn create_leader(
        &self,
        election: &ElectionName,
        lease: &LeaseSession,
        value: Bytes,
    ) -> Result<CreateOutcome> {
        let ctx = self.ctx("create", Some(lease.id));
        let names = self.names();
        let path = names.leader_path(election)?;
        let client = &lease.client;
        let mut retries = Retries::new();
        loop {
            let mode = zk::CreateMode::Ephemeral;
            let err = match self.create_node(client, &path, &value, mode, ctx).await {
                Ok((stat, _)) => {
                    let e = entry(names.relative(&path), value.to_vec(), &stat);
                    return Ok(CreateOutcome::Created(e));
                }
                Err(e) if e == zk::Error::NodeExists || lost(&e) => e,
                Err(e) => return Err(ctx.error(e)),
            };
            // Someone holds it; if our reply was lost, perhaps us.
            let lost_reply = err != zk::Error::NodeExists;
            match client.get_data(&path).await {
                Ok((_, stat)) if stat.ephemeral_owner == 0 => {
                    // A persistent node is no candidate and never goes
                    // away by itself: refuse, never wait on it.
                    return Err(Error::ShapeConflict {
                        election: election.to_string(),
                        existing: "a node without a session at its leader key",
                        requested: Shape::Leader.requested(),
                    });
                }
                Ok((data, stat)) => {
                    let e = entry(names.relative(&path), data, &stat);
                    return Ok(if lost_reply && e.lease == lease.id {
                        CreateOutcome::Created(e)
                    } else {
                        CreateOutcome::Exists(e)
                    });
                }
                Err(zk::Error::NoNode) => retries.after_pause(ctx).await?,
                Err(e) if lost(&e) => retries.after_pause(ctx).await?,
                Err(e) => return Err(ctx.error(e)),
            }
        }
    }

    /// Enforces one shape per election once our entry `own` exists: if a
    /// live candidate of another shape (the leader node, or a queue entry
    /// of the other layout) was created before it, our entry is deleted
    /// and the create fails with [`Error::ShapeConflict`]. A candidate of
    /// another shape created after ours sees ours here and backs off in
    /// the same way, so of two racing shapes only the older one stays: the
    /// shape of an election is that of its oldest live candidate.
    pub(crate) async fn one_shape(
        &self,
        election: &ElectionName,
        own: &Entry,
        mine: Shape,
    ) -> Result<()> {
        let ctx = self.ctx("create", Some(own.lease));
        let dir = self.names().election_path(election)?;
        let client = self.reader().await?;
        let older = answer(|| older_foreign(&client, &dir, own.created, mine))
            .await
            .map_err(|e| ctx.error(e))?;
        let Some(theirs) = older else {
            return Ok(());
        };
        debug!(%election, key = %own.key, "another shape holds the election: withdrawing");
        self.delete_owned(own).await?;
        Err(Error::ShapeConflict {
            election: election.to_string(),
            existing: theirs.held(),
            requested: mine.requested(),
        })
    }
}

/// The shape of a live candidate of another shape than `mine`, created
/// before `created`, among the children of `dir`, if any.
async fn older_foreign(
    client: &zk::Client,
    dir: &str,
    created: Revision,
    mine: Shape,
) -> std::result::Result<Option<Shape>, zk::Error> {
    let children = match client.list_children(dir).await {
        Ok(c) => c,
        Err(zk::Error::NoNode) => return Ok(None),
        Err(e) => return Err(e),
    };
    let foreign: Vec<(String, Shape)> = children
        .into_iter()
        .filter_map(|c| Shape::of(&c).filter(|s| *s != mine).map(|s| (c, s)))
        .collect();
    if foreign.is_empty() {
        return Ok(None);
    }
    let mut reader = client.new_multi_reader();
    for (name, _) in &foreign {
        reader.add_get_data(&format!("{dir}/{name}"))?;
    }
    let results = reader.commit().await?;
    Ok(results
        .into_iter()
        .zip(&foreign)
        .find_map(|(r, (_, shape))| match r {
            zk::MultiReadResult::Data { stat, .. }
                if stat.ephemeral_owner != 0 && zxid(stat.czxid) < created =>
            {
                Some(*shape)
            }
            _ => None,
        }))
}
