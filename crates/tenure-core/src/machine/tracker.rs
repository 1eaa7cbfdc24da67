//! Who leads an election, from a read plus a stream of watch events.

use std::collections::HashMap;

use crate::{Entry, LeaderInfo, LeaseId, Revision, Snapshot, WatchEvent};

/// Whether `entry` can lead: an entry bound to no lease is application
/// data (a leader-guarded write), never a candidate.
fn is_candidate(entry: &Entry) -> bool {
    entry.lease != LeaseId(0)
}

/// Tracks the entries of one election and reports its leader: the entry
/// with the lowest creation revision (sans-IO).
///
/// Feed it a fresh read with [`reset`](Self::reset), then every watch event
/// from `revision() + 1` on with [`apply`](Self::apply). Both return the new
/// leader when it changed. After [`WatchEvent::HistoryLost`] `apply` returns
/// `Err(())`: the caller must read again and `reset`.
#[derive(Debug, Default)]
pub struct LeaderTracker {
    entries: HashMap<String, Entry>,
    leader: Option<LeaderInfo>,
    revision: Revision,
}

impl LeaderTracker {
    /// An empty tracker (no leader known).
    pub fn new() -> Self {
        Self::default()
    }

    /// The leader as currently known.
    pub fn leader(&self) -> Option<&LeaderInfo> {
        self.leader.as_ref()
    }

    /// The last revision applied.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// Replaces everything with a fresh read. Returns `Some(new leader)` if
    /// the leader changed.
    pub fn reset(&mut self, snapshot: &Snapshot) -> Option<Option<LeaderInfo>> {
        self.entries = snapshot
            .entries
            .iter()
            .filter(|e| is_candidate(e))
            .map(|e| (e.key.clone(), e.clone()))
            .collect();
        self.revision = snapshot.revision;
        self.recompute()
    }

    /// Applies one watch event. `Ok(Some(new leader))` when the leader
    /// changed, `Ok(None)` when not, `Err(())` when history was lost and a
    /// fresh read is needed.
    #[allow(clippy::result_unit_err)]
    pub fn apply(&mut self, event: &WatchEvent) -> Result<Option<Option<LeaderInfo>>, ()> {
        match event {
            WatchEvent::Put(e) => {
                self.revision = self.revision.max(e.modified);
                if is_candidate(e) {
                    self.entries.insert(e.key.clone(), e.clone());
                } else {
                    // A key overwritten by a plain put leaves its lease:
                    // it stops being a candidate.
                    self.entries.remove(&e.key);
                }
            }
            WatchEvent::Delete { key, revision } => {
                self.revision = self.revision.max(*revision);
                self.entries.remove(key);
            }
            WatchEvent::HistoryLost => return Err(()),
        }
        Ok(self.recompute())
    }

    fn recompute(&mut self) -> Option<Option<LeaderInfo>> {
        let now = self
            .entries
            .values()
            .min_by_key(|e| e.created)
            .map(LeaderInfo::from);
        if now != self.leader {
            self.leader = now.clone();
            Some(now)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeaseId;

    fn entry(key: &str, created: u64) -> Entry {
        Entry {
            key: key.into(),
            value: key.as_bytes().to_vec().into(),
            lease: LeaseId(created as i64),
            created,
            modified: created,
        }
    }

    #[test]
    fn leader_is_lowest_creation_revision_and_changes_are_reported_once() {
        let mut t = LeaderTracker::new();
        let snap = Snapshot {
            entries: vec![entry("e/b", 3), entry("e/a", 5)],
            revision: 5,
            starts_at_head: true,
        };
        assert_eq!(
            t.reset(&snap),
            Some(Some(LeaderInfo::from(&entry("e/b", 3))))
        );
        assert_eq!(t.apply(&WatchEvent::Put(entry("e/c", 6))), Ok(None));
        let deleted = WatchEvent::Delete {
            key: "e/b".into(),
            revision: 7,
        };
        assert_eq!(
            t.apply(&deleted),
            Ok(Some(Some(LeaderInfo::from(&entry("e/a", 5)))))
        );
        // A proclaim (new value, same entry) is a leader change for readers.
        let mut updated = entry("e/a", 5);
        updated.value = "new".into();
        updated.modified = 8;
        assert_eq!(
            t.apply(&WatchEvent::Put(updated.clone())),
            Ok(Some(Some(LeaderInfo::from(&updated))))
        );
        assert_eq!(t.revision(), 8);
        // Application data (no lease) never leads, even when oldest.
        let mut data = entry("e/0", 1);
        data.lease = LeaseId(0);
        data.modified = 9;
        assert_eq!(t.apply(&WatchEvent::Put(data)), Ok(None));
        assert_eq!(t.apply(&WatchEvent::HistoryLost), Err(()));
    }
}
