//! Coalesced queue reads: many candidates of one election sharing one
//! backend connection ask where they stand with one read, not one each.
//!
//! When N candidates of an election start at once on one connection, each
//! asks [`queue_around`](crate::CoordinationBackend::queue_around) right
//! after its create. A backend that answers each of them on its own pays
//! O(N) per answer on the server (etcd has to fetch every key of the
//! election to find the newest one created before ours; ZooKeeper lists
//! every child), O(N²) in all, and the first leader waits behind that.
//! [`QueueReads`] answers the requests that queue up while a read is in
//! flight with **one** read of the whole queue, cut for each of them with
//! [`Snapshot::around`]: about log N reads instead of N. Two requests at
//! a time (what a leader change sends) still get a read each: cheaper
//! than one read of a long queue.
//!
//! # Why every answer stays current
//!
//! A batch's read is sent only after every request in it was made (the
//! requests that arrive while a read is in flight wait for the next one,
//! never join it), so each caller receives a read that began after it
//! asked: the same guarantee as a read of its own. A caller that sent its
//! create before asking therefore always finds its own entry.
//!
//! Reads run in a task of their own: a caller that gives up (its future is
//! dropped) never leaves the others waiting on a read nobody drives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::{ElectionName, Entry, Error, Result, Snapshot};

/// The two reads a backend offers [`QueueReads`].
#[async_trait]
pub trait QueueSource: Clone + Send + Sync + 'static {
    /// What one candidate needs: [`Snapshot::around`] of the queue for
    /// `own`, read the cheapest way the backend has for one entry.
    async fn read_around(&self, election: &ElectionName, own: &Entry) -> Result<Snapshot>;

    /// The election's whole queue, lowest creation revision first, in one
    /// consistent read.
    async fn read_queue(&self, election: &ElectionName) -> Result<Snapshot>;
}

/// A caller waiting for the next read of its election.
struct Waiter {
    own: Entry,
    reply: oneshot::Sender<Result<Snapshot>>,
}

/// Requests of each election that wait for the next read. An election has
/// an entry here exactly while a task reads for it.
type Pending = HashMap<ElectionName, Vec<Waiter>>;

/// Coalesces concurrent queue reads per election (see the module docs).
/// Cloning shares the pending requests.
#[derive(Clone, Default)]
pub struct QueueReads {
    pending: Arc<Mutex<Pending>>,
}

impl std::fmt::Debug for QueueReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let elections = self.lock().len();
        f.debug_struct("QueueReads")
            .field("elections_reading", &elections)
            .finish()
    }
}

impl QueueReads {
    /// No request pending.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // The map holds no invariant a panicking holder could break
        // half-way (pushes and removals only): recover it.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where `own` stands in `election`'s queue, read through `source`
    /// together with whatever other requests of that election are waiting.
    ///
    /// # Errors
    /// The read's error (every caller of a failed batch receives it);
    /// [`Error::Protocol`] if the reading task ended without answering.
    pub async fn around<S: QueueSource>(
        &self,
        source: &S,
        election: &ElectionName,
        own: &Entry,
    ) -> Result<Snapshot> {
        let (reply, answer) = oneshot::channel();
        let waiter = Waiter {
            own: own.clone(),
            reply,
        };
        let start = {
            let mut pending = self.lock();
            match pending.get_mut(election) {
                Some(waiting) => {
                    waiting.push(waiter);
                    false
                }
                None => {
                    pending.insert(election.clone(), vec![waiter]);
                    true
                }
            }
        };
        if start {
            tokio::spawn(self.clone().drain(source.clone(), election.clone()));
        }
        answer.await.map_err(|_| Error::Protocol {
            operation: "read candidates",
            reason: "the task reading the queue ended without an answer".into(),
        })?
    }

    /// Reads for `election` until nobody waits: each round takes every
    /// request that arrived before it starts.
    async fn drain<S: QueueSource>(self, source: S, election: ElectionName) {
        // Ends the election's reading state however this task ends (a
        // panicking source included): the waiters left are dropped, so
        // their callers get an error instead of waiting for ever.
        let mut reading = Reading {
            reads: self.clone(),
            election: election.clone(),
            armed: true,
        };
        loop {
            let batch = {
                let mut pending = self.lock();
                let waiting = pending
                    .get_mut(&election)
                    .map(std::mem::take)
                    .unwrap_or_default();
                if waiting.is_empty() {
                    // Under the same lock as the check: a request arriving
                    // from now on starts a task of its own.
                    pending.remove(&election);
                    reading.armed = false;
                    return;
                }
                waiting
            };
            if batch.len() <= ALONE {
                answer_each(&source, &election, batch).await;
                continue;
            }
            match source.read_queue(&election).await {
                Ok(queue) => {
                    let at: HashMap<&str, usize> = queue
                        .entries
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (e.key.as_str(), i))
                        .collect();
                    for w in batch {
                        let pos = at.get(w.own.key.as_str()).copied();
                        let _ = w.reply.send(Ok(queue.around_position(pos)));
                    }
                }
                // Each caller gets its own read, and so its own typed error
                // (errors are not shared values); failures are rare.
                Err(_) => answer_each(&source, &election, batch).await,
            }
        }
    }
}

/// Batches of at most this many requests are answered each with a read of
/// its own ([`QueueSource::read_around`], at once): two or three such reads
/// cost less than one read of a long queue. A leader change sends two at a
/// time (the candidate after the successor, and the old leader queueing
/// again); only a burst of candidates fills a batch.
const ALONE: usize = 2;

/// Answers every request of `batch` with a read of its own, all at once.
async fn answer_each<S: QueueSource>(source: &S, election: &ElectionName, batch: Vec<Waiter>) {
    let reads = batch.into_iter().map(|w| async move {
        let read = source.read_around(election, &w.own).await;
        // A caller that gave up dropped its receiver: nothing to do.
        let _ = w.reply.send(read);
    });
    futures::future::join_all(reads).await;
}

/// Removes an election's reading state if its task ends abnormally (a
/// panic in the source); a task that ends normally removes it itself.
struct Reading {
    reads: QueueReads,
    election: ElectionName,
    armed: bool,
}

impl Drop for Reading {
    fn drop(&mut self) {
        if self.armed {
            self.reads.lock().remove(&self.election);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::LeaseId;

    /// A queue of `n` entries whose reads are numbered: a read's revision
    /// is the number of reads started when it started. Reads wait for a
    /// permit, so a test decides when each one completes.
    #[derive(Clone)]
    struct Numbered {
        queue: Arc<Vec<Entry>>,
        started: Arc<AtomicU64>,
        singles: Arc<AtomicU64>,
        wholes: Arc<AtomicU64>,
        gate: Arc<Semaphore>,
    }

    impl Numbered {
        fn new(n: usize) -> Self {
            let queue = (0..n)
                .map(|i| Entry {
                    key: format!("e/{i}"),
                    value: Bytes::new(),
                    lease: LeaseId(i as i64 + 1),
                    created: i as u64 + 1,
                    modified: i as u64 + 1,
                })
                .collect();
            Numbered {
                queue: Arc::new(queue),
                started: Arc::default(),
                singles: Arc::default(),
                wholes: Arc::default(),
                gate: Arc::new(Semaphore::new(0)),
            }
        }

        async fn snapshot(&self) -> Snapshot {
            let revision = self.started.fetch_add(1, Ordering::SeqCst) + 1;
            let permit = self.gate.acquire().await;
            drop(permit);
            Snapshot {
                entries: self.queue.to_vec(),
                revision,
                starts_at_head: true,
            }
        }
    }

    #[async_trait]
    impl QueueSource for Numbered {
        async fn read_around(&self, _: &ElectionName, own: &Entry) -> Result<Snapshot> {
            self.singles.fetch_add(1, Ordering::SeqCst);
            Ok(self.snapshot().await.around(own))
        }

        async fn read_queue(&self, _: &ElectionName) -> Result<Snapshot> {
            self.wholes.fetch_add(1, Ordering::SeqCst);
            Ok(self.snapshot().await)
        }
    }

    /// Waits (in paused time, so at no cost) until `cond` holds.
    async fn until(cond: impl Fn() -> bool) {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_requests_share_one_read_that_began_after_they_asked() {
        let source = Numbered::new(100);
        let reads = QueueReads::new();
        let election = ElectionName::new("e").unwrap();
        let ask = |i: usize| {
            let (reads, source, election) = (reads.clone(), source.clone(), election.clone());
            let own = source.queue[i].clone();
            // The number of reads started before this request was made.
            let before = source.started.load(Ordering::SeqCst);
            tokio::spawn(async move { (before, reads.around(&source, &election, &own).await) })
        };
        // One request: the one-entry read, held at the gate.
        let first = ask(0);
        until(|| source.started.load(Ordering::SeqCst) == 1).await;
        // 99 more arrive while it is in flight: they must not join it.
        let rest: Vec<_> = (1..100).map(ask).collect();
        source.gate.add_permits(1);
        let (before, read) = first.await.unwrap();
        assert_eq!(before, 0);
        let read = read.unwrap();
        assert_eq!(read.revision, 1);
        assert_eq!(read.entries, vec![source.queue[0].clone()]);
        // The 99 share one whole-queue read, started after all of them.
        source.gate.add_permits(1);
        for (i, task) in rest.into_iter().enumerate() {
            let i = i + 1;
            let (before, read) = task.await.unwrap();
            let read = read.unwrap();
            assert!(
                read.revision > before,
                "request {i} got a read that began before it asked"
            );
            assert_eq!(
                read.entries,
                source.queue[i.saturating_sub(2)..=i].to_vec(),
                "request {i}: the entry and the two before it"
            );
        }
        assert_eq!(source.singles.load(Ordering::SeqCst), 1);
        assert_eq!(source.wholes.load(Ordering::SeqCst), 1);
        // Nothing is left reading: the next request starts a task again.
        source.gate.add_permits(1);
        let (_, again) = ask(5).await.unwrap();
        assert_eq!(again.unwrap().revision, 3);
    }

    /// A queue of `n` whose reads are not held, and no request pending.
    fn open(n: usize) -> (Numbered, QueueReads, ElectionName) {
        let source = Numbered::new(n);
        source.gate.add_permits(10);
        (source, QueueReads::new(), ElectionName::new("e").unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_missing_from_the_queue_gets_an_empty_snapshot() {
        let (source, reads, election) = open(3);
        let mut gone = source.queue[1].clone();
        gone.key = "e/gone".into();
        // All ask before the reading task runs: one batch, larger than
        // `ALONE`, so one whole read.
        let (a, b, c) = tokio::join!(
            reads.around(&source, &election, &source.queue[2]),
            reads.around(&source, &election, &gone),
            reads.around(&source, &election, &source.queue[1]),
        );
        assert_eq!(a.unwrap().entries.len(), 3);
        assert!(b.unwrap().entries.is_empty());
        assert_eq!(c.unwrap().entries.len(), 2);
        assert_eq!(source.wholes.load(Ordering::SeqCst), 1);
        assert_eq!(source.singles.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_of_two_gets_a_read_each_not_the_whole_queue() {
        let (source, reads, election) = open(1000);
        let (a, b) = tokio::join!(
            reads.around(&source, &election, &source.queue[500]),
            reads.around(&source, &election, &source.queue[999]),
        );
        assert_eq!(a.unwrap().entries, source.queue[498..=500].to_vec());
        assert_eq!(b.unwrap().entries, source.queue[997..=999].to_vec());
        assert_eq!(source.wholes.load(Ordering::SeqCst), 0);
        assert_eq!(source.singles.load(Ordering::SeqCst), 2);
    }
}
