//! The queue of an election on etcd: the create transaction (etcd's
//! Campaign, with the count that places a first entry), and the two reads
//! [`QueueReads`](tenure_core::queue_reads::QueueReads) coalesces: where
//! one entry stands, and the whole queue.

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Compare, CompareOp, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
};
use tenure_core::queue_reads::QueueSource;
use tenure_core::{
    CoordinationBackend, CreateOutcome, ElectionName, Entry, Error, LeaseId, Result, Slot, Snapshot,
};

use super::{header_rev, is_queue_entry, prefix_end, EtcdBackend};
use crate::error;

impl EtcdBackend {
    /// etcd's Campaign transaction; with `count_first` (queue entries
    /// only), also where the new entry stands when nobody is ahead of it.
    pub(super) async fn create_in(
        &self,
        election: &ElectionName,
        slot: Slot,
        lease: LeaseId,
        value: Bytes,
        count_first: bool,
    ) -> Result<(CreateOutcome, Option<Snapshot>)> {
        let leader = self.full(&self.leader_key(election));
        let dir = self.full(&Self::queue_dir(election));
        let key = match slot {
            Slot::Queue => Self::queue_key(election, lease),
            Slot::Leader => self.leader_key(election),
        };
        let full = self.full(&key);
        // etcd's Campaign (if create_revision(key) == 0 then put with the
        // lease, else get), plus one compare that keeps the other strategy
        // out in the same transaction: a queue entry only while no lease
        // holds the leader key, the leader key only while no lease holds
        // a key of the queue. A compare on a range holds when every key in
        // it matches (an empty range compares as one absent key, lease 0),
        // so keys bound to no lease never block anyone.
        let shape = match slot {
            Slot::Queue => Compare::lease(leader.clone(), CompareOp::Equal, 0),
            Slot::Leader => {
                Compare::lease(dir.clone(), CompareOp::Equal, 0).with_range(prefix_end(&dir))
            }
        };
        let put = TxnOp::put(
            full.clone(),
            value.to_vec(),
            Some(PutOptions::new().with_lease(lease.0)),
        );
        // Ops of a transaction run in order: the count comes before our
        // put, and a count reads only the key index. Any key under the
        // election's directory counts (a nested election's, one bound to
        // no lease): zero proves nobody is ahead; more only sends the
        // candidate to the usual read.
        let count_first = count_first && slot == Slot::Queue;
        let then = if count_first {
            let count = GetOptions::new().with_prefix().with_count_only();
            vec![TxnOp::get(dir.clone(), Some(count)), put]
        } else {
            vec![put]
        };
        let txn = Txn::new()
            .when([
                Compare::create_revision(full.clone(), CompareOp::Equal, 0),
                shape,
            ])
            .and_then(then)
            .or_else([TxnOp::get(full, None), TxnOp::get(leader, None)]);
        let mut kv = self.inner.client.kv_client();
        let resp = self.write("create", Some(lease), kv.txn(txn)).await?;
        let revision = header_rev("create", resp.header())?;
        if resp.succeeded() {
            let entry = Entry {
                key,
                value,
                lease,
                created: revision,
                modified: revision,
            };
            let alone = count_first
                && matches!(
                    resp.op_responses().first(),
                    Some(TxnOpResponse::Get(before)) if before.count() == 0
                );
            let around = alone.then(|| Snapshot {
                entries: vec![entry.clone()],
                revision,
                starts_at_head: true,
            });
            return Ok((CreateOutcome::Created(entry), around));
        }
        let mut found = Vec::with_capacity(2);
        for op in resp.op_responses() {
            if let TxnOpResponse::Get(get) = op {
                found.push(get.kvs().first().map(|kv| self.entry(kv)));
            }
        }
        let conflict = |existing| Error::ShapeConflict {
            election: election.to_string(),
            existing,
            requested: slot.strategy_name(),
        };
        match (slot, found.as_slice()) {
            // Our key is taken: the entry there, as etcd's Campaign finds
            // it (ours when a campaign resumes).
            (Slot::Queue, [Some(own), _]) => Ok((CreateOutcome::Exists(own.clone()), None)),
            (Slot::Queue, [None, Some(l)]) if l.lease.0 != 0 => {
                Err(conflict("single-key candidates"))
            }
            (Slot::Leader, [Some(l), _]) if l.lease.0 != 0 => {
                Ok((CreateOutcome::Exists(l.clone()), None))
            }
            (Slot::Leader, [Some(_), _]) => {
                Err(conflict("a key bound to no lease at its leader key"))
            }
            (Slot::Leader, [None, _]) => Err(conflict("queue candidates")),
            _ => Err(error::protocol(
                "create",
                format!("key {key:?} neither created nor found"),
            )),
        }
    }
}

#[async_trait]
impl QueueSource for EtcdBackend {
    /// One read-only transaction, as etcd's own election waits on its
    /// predecessor: our key, and the three newest entries under the
    /// election created before ours (none: we lead; fewer than three: the
    /// oldest of them is first). What comes back does not grow with the
    /// number of candidates. Falls back to the full read when an entry
    /// kept is not a queue entry (a nested election's key).
    async fn read_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot> {
        let dir = Self::queue_dir(election);
        let mut ops = vec![TxnOp::get(self.full(&own.key), None)];
        // `max_create_revision(0)` would mean "no bound": an entry created
        // at revision 1 has no predecessor to look for.
        let before = i64::try_from(own.created.saturating_sub(1)).unwrap_or(i64::MAX);
        // One more than `around` keeps ahead: whether anything stands
        // before them.
        let ahead = Snapshot::AROUND;
        if before > 0 {
            let previous = GetOptions::new()
                .with_prefix()
                .with_sort(SortTarget::Create, SortOrder::Descend)
                .with_max_create_revision(before)
                .with_limit(ahead as i64);
            ops.push(TxnOp::get(self.full(&dir), Some(previous)));
        }
        let mut kv = self.inner.client.kv_client();
        let resp = self
            .call("read candidates", None, kv.txn(Txn::new().and_then(ops)))
            .await?;
        let revision = header_rev("read candidates", resp.header())?;
        let mut ops = resp.op_responses().into_iter();
        let mut range = || match ops.next() {
            Some(TxnOpResponse::Get(get)) => Ok(Some(get)),
            None => Ok(None),
            Some(_) => Err(error::protocol(
                "read candidates",
                "a range answered by a non-range",
            )),
        };
        let mine = range()?.and_then(|get| get.kvs().first().map(|kv| self.entry(kv)));
        // Newest first.
        let mut before: Vec<Entry> = range()?
            .map(|get| get.kvs().iter().map(|kv| self.entry(kv)).collect())
            .unwrap_or_default();
        let Some(mine) = mine.filter(|e| is_queue_entry(&dir, e)) else {
            return Ok(Snapshot {
                entries: Vec::new(),
                revision,
                starts_at_head: false,
            });
        };
        // Anything else among the kept (even a key that is not a
        // candidate) needs the full read to find the nearest candidates.
        let starts_at_head = before.len() < ahead;
        before.truncate(ahead - 1);
        if !before.iter().all(|e| is_queue_entry(&dir, e)) {
            return Ok(self.read_queue(election).await?.around(own));
        }
        before.reverse();
        before.push(mine);
        Ok(Snapshot {
            entries: before,
            revision,
            starts_at_head,
        })
    }

    async fn read_queue(&self, election: &ElectionName) -> Result<Snapshot> {
        let dir = Self::queue_dir(election);
        let options = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Ascend);
        let mut kv = self.inner.client.kv_client();
        let resp = self
            .call(
                "read candidates",
                None,
                kv.get(self.full(&dir), Some(options)),
            )
            .await?;
        let revision = header_rev("read candidates", resp.header())?;
        let entries = resp
            .kvs()
            .iter()
            .map(|kv| self.entry(kv))
            .filter(|e| is_queue_entry(&dir, e))
            .collect();
        Ok(Snapshot {
            entries,
            revision,
            starts_at_head: true,
        })
    }
}
