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
}

/// A broken invariant, with enough context to understand it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
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
        let mut records: Vec<Record> = parts.into_iter().flat_map(|h| h.records).collect();
        records.sort_by_key(|r| r.at);
        History { records }
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
                        },
                    );
                }
                RecordKind::Extended { valid_until } => {
                    if let Some(t) = open.get_mut(&r.candidate) {
                        // An extension only counts if it came while valid.
                        if r.at < t.valid_until {
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
                RecordKind::Note(_) => {}
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
                        "no overlapping leaders",
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
                if t.token <= prev.token {
                    return Err(self.violation(
                        "fencing tokens strictly increase",
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
                    "every loss is reported",
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
                "a leader is elected after faults heal",
                format!("no leader between the heal and {bound:?} after it"),
                healed,
                deadline,
            ))
        }
    }

    fn violation(
        &self,
        invariant: &'static str,
        message: String,
        from: Instant,
        to: Instant,
    ) -> Box<Violation> {
        let slack = Duration::from_secs(3);
        let context: Vec<Record> = self
            .records
            .iter()
            .filter(|r| r.at + slack >= from && r.at <= to + slack)
            .take(80)
            .cloned()
            .collect();
        Box::new(Violation {
            invariant,
            message,
            context,
        })
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
        assert_eq!(v.invariant, "no overlapping leaders");
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
            "every loss is reported"
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
            "fencing tokens strictly increase"
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
            "every loss is reported"
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
}
