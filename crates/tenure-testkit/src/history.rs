//! A recorded history of leadership events and the checker of its
//! invariants.
//!
//! Every harness that runs candidates — the in-process simulator, tests on
//! real servers, the multi-process fault campaign — records what each
//! candidate was told into a [`History`], then calls [`History::check`].
//!
//! The invariants:
//! 1. **No overlap**: the leadership intervals of different terms, each
//!    `[elected, min(lost, valid_until, crash)]`, never overlap.
//! 2. **Fencing**: tokens strictly increase from one term to the next.
//! 3. **Liveness**: after faults heal, a leader exists within a bound.
//! 4. **Loss is reported**: a term that ends while its candidate is alive
//!    ends with a `Lost` event, no later than its `valid_until`.
//!
//! Histories of real processes also record the leader-guarded writes each
//! candidate sent ([`RecordKind::Write`]) and when it was frozen, which two
//! more checks use:
//! 5. **Fencing holds** ([`History::check_writes`]): the backend never
//!    accepts a guarded write from a deposed leader, i.e. one sent after a
//!    term with a larger token had begun, or after the backend confirmed
//!    the writer's entry gone.
//! 6. **No stale leader** ([`History::check_stale`]): a candidate never
//!    acts as leader (sends a guarded write) at or after the end of its
//!    own term, and hears of its loss within a grace period of its
//!    deadline (not counting time it spent frozen).

use std::fmt;
use std::time::{Duration, Instant};

use tenure_core::{FencingToken, LossReason};

/// Index of a candidate in a run.
pub type CandidateId = usize;

/// What a candidate was told, or what happened to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// It was elected.
    Elected {
        /// Fencing token.
        token: FencingToken,
        /// Initial local deadline.
        valid_until: Instant,
    },
    /// Its deadline moved.
    Extended {
        /// New deadline.
        valid_until: Instant,
    },
    /// It was told it lost leadership.
    Lost {
        /// Why.
        reason: LossReason,
    },
    /// The process died (no further events; acts no more).
    Crashed,
    /// Its lease was revoked or expired from outside, before its TTL ran
    /// out (an operator's `lease revoke`, a session killed by hand). This
    /// breaks the backend promise the deadline relies on, so the term is
    /// deposed at this instant: the candidate may only find out later, and
    /// only fencing (guarded writes) protects what it does meanwhile.
    Deposed,
    /// It sent a leader-guarded write during the term with `token`, and
    /// the backend answered. The record's instant is when the write was
    /// *sent* (decided), not when the answer came.
    Write {
        /// Token of the term the write was sent in.
        token: FencingToken,
        /// Whether the backend accepted it.
        accepted: bool,
    },
    /// The backend confirmed that the candidate's entry or lease is gone
    /// (an operator's delete or revoke was answered at this instant): any
    /// guarded write it sends from now on in its current term must be
    /// refused. Pair it with a [`Deposed`](Self::Deposed) at the instant
    /// the operation was sent.
    Fenced,
    /// The process was frozen (`SIGSTOP`): it can neither act nor notice.
    Paused,
    /// The process was thawed (`SIGCONT`).
    Resumed,
    /// A fault or operation, for the report only.
    Note(String),
}

/// One entry of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// When (the candidate's view; all candidates share one clock).
    pub at: Instant,
    /// Who.
    pub candidate: CandidateId,
    /// What.
    pub kind: RecordKind,
}

/// One leadership term reconstructed from a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// Position of the `Elected` record in the history: orders terms that
    /// start at the same instant.
    pub seq: usize,
    /// Who led.
    pub candidate: CandidateId,
    /// Fencing token.
    pub token: FencingToken,
    /// Start.
    pub elected: Instant,
    /// End of validity: the earliest of the loss, the crash and the last
    /// deadline.
    pub end: Instant,
    /// The reported loss, if any.
    pub lost: Option<(Instant, LossReason)>,
    /// Whether the candidate crashed during the term.
    pub crashed: bool,
    /// Whether its lease was revoked from outside during the term.
    pub deposed: bool,
    /// The last deadline it was given.
    pub valid_until: Instant,
    /// When the backend confirmed its entry gone (see
    /// [`RecordKind::Fenced`]), if it did during the term.
    pub fenced: Option<Instant>,
}

impl Term {
    /// The end of the term as the candidate itself saw it: its reported
    /// loss or its last deadline, whichever came first. It must not act as
    /// leader from this instant on.
    pub fn own_end(&self) -> Instant {
        match self.lost {
            Some((at, _)) => at.min(self.valid_until),
            None => self.valid_until,
        }
    }
}

/// What [`History::check_writes`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Guarded writes the backend accepted.
    pub accepted: usize,
    /// Guarded writes the backend refused.
    pub refused: usize,
}

/// The invariants a recorded history is checked against (see the module
/// documentation), for callers that match on which one broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Invariant {
    /// 1. The leadership intervals of different terms never overlap.
    NoOverlap,
    /// 2. Fencing tokens strictly increase from one term to the next.
    TokensIncrease,
    /// 3. After faults heal, a leader exists within a bound.
    LeaderAfterHeal,
    /// 4. A term that ends while its candidate is alive ends with a loss
    ///    the candidate was told of.
    LossReported,
    /// 5. The backend never accepts a guarded write of a deposed leader.
    FencedWrites,
    /// 6. No candidate acts as leader after its term, and each hears of
    ///    its loss soon after its deadline.
    NoStaleLeader,
    /// A gated command (`tenure campaign -- CMD`) and everything it
    /// started are gone before a successor is elected: checked by the
    /// fault campaign over the lines such commands write.
    GatedCommandEnds,
}

impl Invariant {
    /// The invariant as a sentence, for reports.
    pub fn statement(self) -> &'static str {
        match self {
            Invariant::NoOverlap => "no overlapping leaders",
            Invariant::TokensIncrease => "fencing tokens strictly increase",
            Invariant::LeaderAfterHeal => "a leader is elected after faults heal",
            Invariant::LossReported => "every loss is reported",
            Invariant::FencedWrites => "a deposed leader's write is never accepted",
            Invariant::NoStaleLeader => "no stale leader acts",
            Invariant::GatedCommandEnds => "the gated command ends before the successor's election",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.statement())
    }
}

/// Reports carry the statement, as people read it.
impl serde::Serialize for Invariant {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.statement())
    }
}

/// A broken invariant, with enough context to understand it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// What happened.
    pub message: String,
    /// Records around the violation.
    pub context: Vec<Record>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invariant violated: {}: {}",
            self.invariant, self.message
        )?;
        if let Some(first) = self.context.first() {
            writeln!(f, "history around it:")?;
            for r in &self.context {
                let t = r.at.saturating_duration_since(first.at);
                writeln!(
                    f,
                    "  +{:>9.3}s  candidate {}  {:?}",
                    t.as_secs_f64(),
                    r.candidate,
                    r.kind
                )?;
            }
        }
        Ok(())
    }
}

/// A history of leadership events of one election.
#[derive(Clone, Debug, Default)]
pub struct History {
    records: Vec<Record>,
    late_extensions: bool,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a record. Records must be pushed in the order they happened
    /// (same-instant records keep their order).
    pub fn push(&mut self, at: Instant, candidate: CandidateId, kind: RecordKind) {
        self.records.push(Record {
            at,
            candidate,
            kind,
        });
    }

    /// All records.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Merges histories recorded separately (one per process), ordering by
    /// time (stable, so same-instant records keep their order).
    pub fn merge(parts: impl IntoIterator<Item = History>) -> History {
        let mut late_extensions = false;
        let mut records: Vec<Record> = parts
            .into_iter()
            .flat_map(|h| {
                late_extensions |= h.late_extensions;
                h.records
            })
            .collect();
        records.sort_by_key(|r| r.at);
        History {
            records,
            late_extensions,
        }
    }

    /// Counts deadline extensions recorded after the previous deadline had
    /// passed, for histories of processes that *poll* their deadline: the
    /// poll may see an extension some milliseconds after it was made, and
    /// a keep-alive acknowledged late still proves that the lease never
    /// lapsed on the backend. The term is then valid until its *last*
    /// deadline, as the invariant is stated for process histories. By
    /// default (the simulator, which records every extension at its exact
    /// instant) such an extension is ignored.
    pub fn count_late_extensions(mut self) -> Self {
        self.late_extensions = true;
        self
    }

    /// Reconstructs the terms. Terms still open at `end` are closed at
    /// their deadline.
    pub fn terms(&self) -> Vec<Term> {
        let mut open: std::collections::HashMap<CandidateId, Term> = Default::default();
        let mut done = Vec::new();
        for (seq, r) in self.records.iter().enumerate() {
            match &r.kind {
                RecordKind::Elected { token, valid_until } => {
                    if let Some(t) = open.remove(&r.candidate) {
                        done.push(t);
                    }
                    open.insert(
                        r.candidate,
                        Term {
                            seq,
                            candidate: r.candidate,
                            token: *token,
                            elected: r.at,
                            end: *valid_until,
                            lost: None,
                            crashed: false,
                            deposed: false,
                            valid_until: *valid_until,
                            fenced: None,
                        },
                    );
                }
                RecordKind::Extended { valid_until } => {
                    if let Some(t) = open.get_mut(&r.candidate) {
                        // An extension only counts if it came while valid
                        // (unless late extensions count: see
                        // `count_late_extensions`).
                        if r.at < t.valid_until || self.late_extensions {
                            t.valid_until = t.valid_until.max(*valid_until);
                            if !t.deposed {
                                t.end = t.valid_until;
                            }
                        }
                    }
                }
                RecordKind::Lost { reason } => {
                    if let Some(mut t) = open.remove(&r.candidate) {
                        t.lost = Some((r.at, *reason));
                        t.end = t.end.min(r.at);
                        done.push(t);
                    }
                }
                RecordKind::Crashed => {
                    if let Some(mut t) = open.remove(&r.candidate) {
                        t.crashed = true;
                        t.end = t.end.min(r.at);
                        done.push(t);
                    }
                }
                RecordKind::Deposed => {
                    // The term stays open: its loss must still be reported.
                    if let Some(t) = open.get_mut(&r.candidate) {
                        t.end = t.end.min(r.at);
                        t.deposed = true;
                    }
                }
                RecordKind::Fenced => {
                    if let Some(t) = open.get_mut(&r.candidate) {
                        t.fenced.get_or_insert(r.at);
                    }
                }
                RecordKind::Write { .. }
                | RecordKind::Paused
                | RecordKind::Resumed
                | RecordKind::Note(_) => {}
            }
        }
        done.extend(open.into_values());
        done.sort_by_key(|t| t.seq);
        done
    }

    /// Checks safety (no overlap, fencing) and loss reporting over the
    /// history that ended at `end`. Returns the first violation found.
    pub fn check(&self, end: Instant) -> Result<Vec<Term>, Box<Violation>> {
        let terms = self.terms();
        // 1 and 2: consecutive terms by start; track the latest end so far.
        let mut latest: Option<&Term> = None;
        for t in &terms {
            if let Some(prev) = latest {
                if t.elected < prev.end && t.elected < t.end {
                    return Err(self.violation(
                        Invariant::NoOverlap,
                        format!(
                            "candidate {} was elected (token {}) while candidate {} (token {}) was still valid for {:?}",
                            t.candidate,
                            t.token,
                            prev.candidate,
                            prev.token,
                            prev.end - t.elected
                        ),
                        prev.elected,
                        t.elected,
                    ));
                }
                // A candidate that finds its own entry still there (its
                // lease resumed after a restart, or a delete that failed
                // on resign) leads again from the same entry: the same
                // token, the same candidate, after the earlier term ended.
                // Only its own entry can give a candidate an equal token.
                let resumed =
                    t.token == prev.token && t.candidate == prev.candidate && t.elected >= prev.end;
                if t.token <= prev.token && !resumed {
                    return Err(self.violation(
                        Invariant::TokensIncrease,
                        format!(
                            "candidate {} got token {} after candidate {} had token {}",
                            t.candidate, t.token, prev.candidate, prev.token
                        ),
                        prev.elected,
                        t.elected,
                    ));
                }
            }
            if latest.is_none_or(|p| t.end >= p.end) {
                latest = Some(t);
            }
        }
        // 4: a term that ended before `end` on a live candidate must have
        // been reported lost, and not later than its deadline plus the
        // time the candidate was unable to run (recorded as notes by the
        // harness, so we only require that a report exists).
        for t in &terms {
            if t.lost.is_none() && !t.crashed && t.valid_until < end {
                return Err(self.violation(
                    Invariant::LossReported,
                    format!(
                        "candidate {} (token {}) passed its deadline without being told it lost leadership",
                        t.candidate, t.token
                    ),
                    t.elected,
                    t.valid_until,
                ));
            }
        }
        Ok(terms)
    }

    /// Checks liveness: some term is valid at a moment in
    /// `[healed, healed + bound]`.
    pub fn check_leader_within(
        &self,
        end: Instant,
        healed: Instant,
        bound: Duration,
    ) -> Result<(), Box<Violation>> {
        let deadline = (healed + bound).min(end);
        let ok = self
            .terms()
            .iter()
            .any(|t| t.elected <= deadline && t.end > healed.max(t.elected) && t.end > t.elected);
        if ok {
            Ok(())
        } else {
            Err(self.violation(
                Invariant::LeaderAfterHeal,
                format!("no leader between the heal and {bound:?} after it"),
                healed,
                deadline,
            ))
        }
    }

    /// Checks fencing of leader-guarded writes (invariant 5) against the
    /// `terms` of this history (as [`check`](Self::check) returns them):
    /// a write the backend accepted must have been sent by a term that
    /// exists, before the backend confirmed its entry gone, and before any
    /// term with a larger token was elected.
    pub fn check_writes(&self, terms: &[Term]) -> Result<WriteStats, Box<Violation>> {
        let index = TermIndex::new(terms);
        let mut stats = WriteStats::default();
        for r in &self.records {
            let RecordKind::Write { token, accepted } = r.kind else {
                continue;
            };
            if !accepted {
                stats.refused += 1;
                continue;
            }
            stats.accepted += 1;
            let Some(term) = index.term_of(terms, r.candidate, token, r.at) else {
                return Err(self.violation_about(
                    Invariant::FencedWrites,
                    format!(
                        "the backend accepted a guarded write of candidate {} with token {token}, \
                         a token it never held",
                        r.candidate
                    ),
                    r.at,
                    r.at,
                    Some(&[r.candidate]),
                ));
            };
            if let Some(fenced) = term.fenced.filter(|f| *f <= r.at) {
                return Err(self.violation_about(
                    Invariant::FencedWrites,
                    format!(
                        "the backend accepted a guarded write of candidate {} (token {token}) \
                         sent {:?} after the backend had confirmed its entry gone",
                        r.candidate,
                        r.at - fenced
                    ),
                    fenced,
                    r.at,
                    Some(&[r.candidate]),
                ));
            }
            if let Some(later) = index.later_term_elected_by(terms, token, r.at) {
                return Err(self.violation_about(
                    Invariant::FencedWrites,
                    format!(
                        "the backend accepted a guarded write of candidate {} (token {token}) \
                         sent {:?} after candidate {} had been elected with token {}",
                        r.candidate,
                        r.at - later.elected,
                        later.candidate,
                        later.token
                    ),
                    later.elected,
                    r.at,
                    Some(&[r.candidate, later.candidate]),
                ));
            }
        }
        Ok(stats)
    }

    /// Checks that no candidate stays a stale leader (invariant 6) over
    /// the `terms` of this history: no guarded write is sent at or after
    /// the term's own end ([`Term::own_end`]), and a reported loss comes
    /// no later than `grace` after the deadline, plus the time the
    /// candidate spent frozen ([`RecordKind::Paused`]) in between.
    pub fn check_stale(&self, terms: &[Term], grace: Duration) -> Result<(), Box<Violation>> {
        let index = TermIndex::new(terms);
        for r in &self.records {
            let RecordKind::Write { token, .. } = r.kind else {
                continue;
            };
            let Some(term) = index.term_of(terms, r.candidate, token, r.at) else {
                continue; // an accepted one is reported by check_writes
            };
            if r.at >= term.own_end() {
                return Err(self.violation_about(
                    Invariant::NoStaleLeader,
                    format!(
                        "candidate {} sent a guarded write (token {token}) {:?} after its term \
                         had ended for itself",
                        r.candidate,
                        r.at - term.own_end()
                    ),
                    term.own_end(),
                    r.at,
                    Some(&[r.candidate]),
                ));
            }
        }
        for t in terms {
            let Some((lost_at, _)) = t.lost else {
                continue;
            };
            if lost_at <= t.valid_until {
                continue;
            }
            let frozen = self.frozen_between(t.candidate, t.valid_until, lost_at);
            let late = lost_at - t.valid_until;
            if late > grace + frozen {
                return Err(self.violation_about(
                    Invariant::NoStaleLeader,
                    format!(
                        "candidate {} (token {}) was told of its loss {late:?} after its \
                         deadline (grace {grace:?}, frozen {frozen:?} of it)",
                        t.candidate, t.token
                    ),
                    t.valid_until,
                    lost_at,
                    Some(&[t.candidate]),
                ));
            }
        }
        Ok(())
    }

    /// How long `candidate` was frozen between `from` and `to`.
    fn frozen_between(&self, candidate: CandidateId, from: Instant, to: Instant) -> Duration {
        let mut total = Duration::ZERO;
        let mut paused_at: Option<Instant> = None;
        for r in self.records.iter().filter(|r| r.candidate == candidate) {
            match r.kind {
                RecordKind::Paused => {
                    paused_at.get_or_insert(r.at);
                }
                RecordKind::Resumed | RecordKind::Crashed => {
                    if let Some(p) = paused_at.take() {
                        let (a, b) = (p.max(from), r.at.min(to));
                        total += b.saturating_duration_since(a);
                    }
                }
                _ => {}
            }
        }
        if let Some(p) = paused_at {
            total += to.saturating_duration_since(p.max(from));
        }
        total
    }

    fn violation(
        &self,
        invariant: Invariant,
        message: String,
        from: Instant,
        to: Instant,
    ) -> Box<Violation> {
        self.violation_about(invariant, message, from, to, None)
    }

    /// A violation whose context shows the records from `from` to `to`
    /// (with some slack); writes only of the candidates in `focus`, when
    /// given, so that the writes of bystanders do not crowd the report.
    fn violation_about(
        &self,
        invariant: Invariant,
        message: String,
        from: Instant,
        to: Instant,
        focus: Option<&[CandidateId]>,
    ) -> Box<Violation> {
        let slack = Duration::from_secs(3);
        let context: Vec<Record> = self
            .records
            .iter()
            .filter(|r| r.at + slack >= from && r.at <= to + slack)
            .filter(|r| match (&r.kind, focus) {
                (RecordKind::Write { .. }, Some(f)) => f.contains(&r.candidate),
                _ => true,
            })
            .take(300)
            .cloned()
            .collect();
        Box::new(Violation {
            invariant,
            message,
            context,
        })
    }
}

/// Lookups from writes to terms.
struct TermIndex {
    /// (candidate, token) to the positions of its terms.
    by_owner: std::collections::HashMap<(CandidateId, FencingToken), Vec<usize>>,
    /// Terms by election instant, with the running maximum token.
    by_start: Vec<(Instant, FencingToken, usize)>,
}

impl TermIndex {
    fn new(terms: &[Term]) -> TermIndex {
        let mut by_owner: std::collections::HashMap<_, Vec<usize>> = Default::default();
        for (i, t) in terms.iter().enumerate() {
            by_owner.entry((t.candidate, t.token)).or_default().push(i);
        }
        let mut order: Vec<usize> = (0..terms.len()).collect();
        order.sort_by_key(|&i| terms[i].elected);
        let mut by_start = Vec::with_capacity(order.len());
        let mut best: Option<(FencingToken, usize)> = None;
        for i in order {
            if best.is_none_or(|(tok, _)| terms[i].token > tok) {
                best = Some((terms[i].token, i));
            }
            if let Some((tok, at)) = best {
                by_start.push((terms[i].elected, tok, at));
            }
        }
        TermIndex { by_owner, by_start }
    }

    /// The latest term of `candidate` with `token` elected at or before
    /// `at`.
    fn term_of<'a>(
        &self,
        terms: &'a [Term],
        candidate: CandidateId,
        token: FencingToken,
        at: Instant,
    ) -> Option<&'a Term> {
        self.by_owner
            .get(&(candidate, token))?
            .iter()
            .map(|&i| &terms[i])
            .filter(|t| t.elected <= at)
            .max_by_key(|t| t.elected)
    }

    /// The term with the largest token among those elected at or before
    /// `at`, if its token exceeds `token`.
    fn later_term_elected_by<'a>(
        &self,
        terms: &'a [Term],
        token: FencingToken,
        at: Instant,
    ) -> Option<&'a Term> {
        let n = self.by_start.partition_point(|(e, _, _)| *e <= at);
        let (_, best, i) = *self.by_start.get(n.checked_sub(1)?)?;
        (best > token).then(|| &terms[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn accepts_clean_handover() {
        let t0 = Instant::now();
        let mut h = History::new();
        h.push(
            t0,
            0,
            RecordKind::Elected {
                token: 5,
                valid_until: secs(t0, 1.6),
            },
        );
        h.push(
            secs(t0, 0.6),
            0,
            RecordKind::Extended {
                valid_until: secs(t0, 2.2),
            },
        );
        h.push(
            secs(t0, 1.0),
            0,
            RecordKind::Lost {
                reason: LossReason::Resigned,
            },
        );
        h.push(
            secs(t0, 1.0),
            1,
            RecordKind::Elected {
                token: 7,
                valid_until: secs(t0, 2.6),
            },
        );
        let terms = h.check(secs(t0, 2.0)).unwrap();
        assert_eq!(terms.len(), 2);
        assert_eq!(terms[0].end, secs(t0, 1.0));
    }

    #[test]
    fn catches_overlap() {
        let t0 = Instant::now();
        let mut h = History::new();
        h.push(
            t0,
            0,
            RecordKind::Elected {
                token: 5,
                valid_until: secs(t0, 1.6),
            },
        );
        h.push(
            secs(t0, 1.0),
            1,
            RecordKind::Elected {
                token: 7,
                valid_until: secs(t0, 2.6),
            },
        );
        h.push(
            secs(t0, 1.6),
            0,
            RecordKind::Lost {
                reason: LossReason::DeadlineExceeded,
            },
        );
        let v = h.check(secs(t0, 3.0)).unwrap_err();
        assert_eq!(v.invariant, Invariant::NoOverlap);
        assert!(v.to_string().contains("candidate 1 was elected"), "{v}");
    }

    #[test]
    fn deadline_bounds_a_frozen_leader() {
        // Candidate 0 froze and heard of its loss late, but its deadline
        // had passed before candidate 1 was elected: no overlap.
        let t0 = Instant::now();
        let mut h = History::new();
        h.push(
            t0,
            0,
            RecordKind::Elected {
                token: 5,
                valid_until: secs(t0, 1.6),
            },
        );
        h.push(
            secs(t0, 2.0),
            1,
            RecordKind::Elected {
                token: 7,
                valid_until: secs(t0, 3.6),
            },
        );
        h.push(
            secs(t0, 5.0),
            0,
            RecordKind::Lost {
                reason: LossReason::DeadlineExceeded,
            },
        );
        h.check(secs(t0, 3.0)).unwrap();
    }

    #[test]
    fn outside_revocation_deposes_at_once_but_loss_must_still_be_reported() {
        let t0 = Instant::now();
        let mut h = History::new();
        h.push(
            t0,
            0,
            RecordKind::Elected {
                token: 5,
                valid_until: secs(t0, 1.6),
            },
        );
        h.push(secs(t0, 0.3), 0, RecordKind::Deposed);
        h.push(
            secs(t0, 0.5),
            0,
            RecordKind::Extended {
                valid_until: secs(t0, 2.0),
            },
        );
        h.push(
            secs(t0, 0.6),
            1,
            RecordKind::Elected {
                token: 7,
                valid_until: secs(t0, 2.2),
            },
        );
        assert_eq!(
            h.check(secs(t0, 2.1)).unwrap_err().invariant,
            Invariant::LossReported
        );
        h.push(
            secs(t0, 1.0),
            0,
            RecordKind::Lost {
                reason: LossReason::LeaseExpired,
            },
        );
        let terms = h.check(secs(t0, 2.1)).unwrap();
        assert_eq!(terms[0].end, secs(t0, 0.3));
    }

    #[test]
    fn catches_token_regression_and_unreported_loss() {
        let t0 = Instant::now();
        let mut h = History::new();
        h.push(
            t0,
            0,
            RecordKind::Elected {
                token: 9,
                valid_until: secs(t0, 1.0),
            },
        );
        h.push(
            secs(t0, 1.0),
            0,
            RecordKind::Lost {
                reason: LossReason::LeaseExpired,
            },
        );
        h.push(
            secs(t0, 2.0),
            1,
            RecordKind::Elected {
                token: 8,
                valid_until: secs(t0, 3.0),
            },
        );
        assert_eq!(
            h.check(secs(t0, 2.5)).unwrap_err().invariant,
            Invariant::TokensIncrease
        );

        let mut h = History::new();
        h.push(
            t0,
            0,
            RecordKind::Elected {
                token: 9,
                valid_until: secs(t0, 1.0),
            },
        );
        assert_eq!(
            h.check(secs(t0, 2.0)).unwrap_err().invariant,
            Invariant::LossReported
        );
        // Still valid at the end of the run: fine.
        h.check(secs(t0, 0.5)).unwrap();
    }

    #[test]
    fn same_instant_terms_keep_history_order() {
        // Under paused time a loss and the next election share an instant;
        // the order of the records, not the candidate ids, orders terms.
        let t0 = Instant::now();
        let mut h = History::new();
        h.push(
            t0,
            1,
            RecordKind::Elected {
                token: 2,
                valid_until: secs(t0, 1.6),
            },
        );
        h.push(
            t0,
            1,
            RecordKind::Lost {
                reason: LossReason::EntryDeleted,
            },
        );
        h.push(
            t0,
            0,
            RecordKind::Elected {
                token: 4,
                valid_until: secs(t0, 1.6),
            },
        );
        let terms = h.check(secs(t0, 1.0)).unwrap();
        assert_eq!((terms[0].candidate, terms[1].candidate), (1, 0));
    }

    #[test]
    fn liveness_needs_a_valid_term_after_heal() {
        let t0 = Instant::now();
        let mut h = History::new();
        h.push(
            t0,
            0,
            RecordKind::Elected {
                token: 1,
                valid_until: secs(t0, 1.0),
            },
        );
        h.push(
            secs(t0, 1.0),
            0,
            RecordKind::Lost {
                reason: LossReason::LeaseExpired,
            },
        );
        let healed = secs(t0, 2.0);
        assert!(h
            .check_leader_within(secs(t0, 10.0), healed, Duration::from_secs(3))
            .is_err());
        h.push(
            secs(t0, 4.0),
            1,
            RecordKind::Elected {
                token: 3,
                valid_until: secs(t0, 6.0),
            },
        );
        h.check_leader_within(secs(t0, 10.0), healed, Duration::from_secs(3))
            .unwrap();
        assert!(h
            .check_leader_within(secs(t0, 10.0), healed, Duration::from_secs(1))
            .is_err());
    }

    fn elected(h: &mut History, at: Instant, c: CandidateId, token: u64, until: Instant) {
        h.push(
            at,
            c,
            RecordKind::Elected {
                token,
                valid_until: until,
            },
        );
    }

    fn write(h: &mut History, at: Instant, c: CandidateId, token: u64, accepted: bool) {
        h.push(at, c, RecordKind::Write { token, accepted });
    }

    #[test]
    fn accepted_write_after_a_successor_was_elected_is_caught() {
        let t0 = Instant::now();
        let mut h = History::new();
        elected(&mut h, t0, 0, 5, secs(t0, 1.0));
        write(&mut h, secs(t0, 0.5), 0, 5, true);
        h.push(
            secs(t0, 1.0),
            0,
            RecordKind::Lost {
                reason: LossReason::DeadlineExceeded,
            },
        );
        elected(&mut h, secs(t0, 1.5), 1, 7, secs(t0, 3.0));
        // A refused write after the successor is fencing at work.
        write(&mut h, secs(t0, 0.9), 0, 5, false);
        let mut ok = h.clone();
        ok.records.sort_by_key(|r| r.at);
        let terms = ok.check(secs(t0, 2.0)).unwrap();
        let stats = ok.check_writes(&terms).unwrap();
        assert_eq!((stats.accepted, stats.refused), (1, 1));

        // The same candidate's write accepted after the successor: caught,
        // whatever the writer believed about its own term.
        write(&mut h, secs(t0, 1.6), 0, 5, true);
        let terms = h.terms();
        let v = h.check_writes(&terms).unwrap_err();
        assert_eq!(v.invariant, Invariant::FencedWrites);
        assert!(
            v.message.contains("after candidate 1 had been elected"),
            "{v}"
        );
        // Its own stale write is caught by the stale check too.
        let v = h
            .check_stale(&terms, Duration::from_millis(500))
            .unwrap_err();
        assert_eq!(v.invariant, Invariant::NoStaleLeader);
    }

    #[test]
    fn accepted_write_after_the_entry_was_confirmed_gone_is_caught() {
        let t0 = Instant::now();
        let mut h = History::new();
        elected(&mut h, t0, 0, 5, secs(t0, 1.0));
        h.push(secs(t0, 0.4), 0, RecordKind::Deposed);
        // Sent while the operator's delete was in flight: may be accepted.
        write(&mut h, secs(t0, 0.42), 0, 5, true);
        h.push(secs(t0, 0.45), 0, RecordKind::Fenced);
        h.push(
            secs(t0, 0.5),
            0,
            RecordKind::Lost {
                reason: LossReason::EntryDeleted,
            },
        );
        let terms = h.check(secs(t0, 2.0)).unwrap();
        assert_eq!(terms[0].fenced, Some(secs(t0, 0.45)));
        h.check_writes(&terms).unwrap();

        write(&mut h, secs(t0, 0.47), 0, 5, true);
        h.records.sort_by_key(|r| r.at);
        let v = h.check_writes(&h.terms()).unwrap_err();
        assert!(v.message.contains("confirmed its entry gone"), "{v}");
    }

    #[test]
    fn write_with_a_token_never_held_is_caught() {
        let t0 = Instant::now();
        let mut h = History::new();
        elected(&mut h, t0, 0, 5, secs(t0, 1.0));
        write(&mut h, secs(t0, 0.5), 1, 5, true);
        let v = h.check_writes(&h.terms()).unwrap_err();
        assert!(v.message.contains("never held"), "{v}");
    }

    #[test]
    fn late_loss_report_is_stale_unless_the_candidate_was_frozen() {
        let t0 = Instant::now();
        let grace = Duration::from_millis(500);
        let mut h = History::new();
        elected(&mut h, t0, 0, 5, secs(t0, 1.0));
        h.push(
            secs(t0, 3.0),
            0,
            RecordKind::Lost {
                reason: LossReason::DeadlineExceeded,
            },
        );
        let v = h.check_stale(&h.terms(), grace).unwrap_err();
        assert!(v.message.contains("told of its loss"), "{v}");

        let mut frozen = History::new();
        elected(&mut frozen, t0, 0, 5, secs(t0, 1.0));
        frozen.push(secs(t0, 0.8), 0, RecordKind::Paused);
        frozen.push(secs(t0, 2.9), 0, RecordKind::Resumed);
        frozen.push(
            secs(t0, 3.0),
            0,
            RecordKind::Lost {
                reason: LossReason::DeadlineExceeded,
            },
        );
        frozen.check_stale(&frozen.terms(), grace).unwrap();
    }

    #[test]
    fn late_extensions_count_only_when_asked() {
        let t0 = Instant::now();
        let mut h = History::new();
        elected(&mut h, t0, 0, 5, secs(t0, 1.0));
        h.push(
            secs(t0, 1.01),
            0,
            RecordKind::Extended {
                valid_until: secs(t0, 1.8),
            },
        );
        write(&mut h, secs(t0, 1.2), 0, 5, true);
        let grace = Duration::from_millis(500);
        assert_eq!(h.terms()[0].end, secs(t0, 1.0));
        assert!(h.check_stale(&h.terms(), grace).is_err());

        let h = h.count_late_extensions();
        assert_eq!(h.terms()[0].end, secs(t0, 1.8));
        h.check_stale(&h.terms(), grace).unwrap();
        let merged = History::merge([h, History::new()]);
        assert_eq!(merged.terms()[0].valid_until, secs(t0, 1.8));
    }
}
