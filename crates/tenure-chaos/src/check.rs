//! From the logs of a campaign to a verdict: the merged history, the
//! shared invariant checker of `tenure_testkit::history`, the liveness
//! after every heal, and the time each fault cost.
//!
//! The invariants, by the letters the reports use:
//! - (a) intervals `[elected, min(lost, last valid_until)]` of different
//!   terms never overlap, and (4) every loss is reported
//!   ([`History::check`](tenure_testkit::history::History::check));
//! - (b) fencing tokens strictly increase ([`History::check`](tenure_testkit::history::History::check));
//! - (c) no guarded write of a deposed leader is accepted
//!   ([`History::check_writes`](tenure_testkit::history::History::check_writes));
//! - (d) after every episode of faults heals, a leader exists within
//!   TTL + the stated bound ([`History::check_leader_within`](tenure_testkit::history::History::check_leader_within));
//! - (e) no candidate acts as leader after its deadline, nor hears of its
//!   loss much later ([`History::check_stale`](tenure_testkit::history::History::check_stale));
//! - (f) no line of a gated command's tree (`command_write`) carries the
//!   token of a term older than one already elected
//!   ([`check_command_writes`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use tenure_testkit::history::{Invariant, RecordKind, Term, Violation, WriteStats};
use tenure_testkit::stats::Distribution;

use crate::clock::Timeline;
use crate::record::{Recorded, RUNNER};

/// Settings of the check.
#[derive(Clone, Copy, Debug)]
pub struct CheckParams {
    /// The candidates' TTL.
    pub ttl: Duration,
    /// (d): a leader is due within TTL + this after a heal.
    pub liveness_bound: Duration,
    /// (e): how late after its deadline a loss may be reported.
    pub stale_grace: Duration,
}

/// (f): a gated command's tree must be dead before the successor's
/// election. Lines are merged in time order, so the first line of term
/// `t` stamped after an election of a later term is the violation.
pub fn check_command_writes(rec: &Recorded) -> Option<Found> {
    let tl = &rec.timeline;
    let (cand, token, at) = rec.command_writes.iter().copied().find(|&(_, token, at)| {
        rec.elections
            .iter()
            .any(|&(_, later, elected)| later > token && elected <= at)
    })?;
    let (successor, later, elected) = rec
        .elections
        .iter()
        .copied()
        .filter(|&(_, later, elected)| later > token && elected <= at)
        .min_by_key(|&(_, _, elected)| elected)?;
    Some(Found {
        invariant: Invariant::GatedCommandEnds,
        message: format!(
            "candidate {cand}'s command of term {token} wrote at {:.3} s, after candidate \
             {successor} was elected with token {later} at {:.3} s",
            tl.secs_of(at),
            tl.secs_of(elected)
        ),
        context: Vec::new(),
    })
}

/// Parses a fenced value, `cand=<i> token=<k> seq=<n>`.
fn parse_value(v: &str) -> Option<(usize, u64, u64)> {
    let mut it = v.split(' ').map(|kv| kv.split_once('=').map(|(_, n)| n));
    let c = it.next()??.parse().ok()?;
    let t = it.next()??.parse().ok()?;
    let s = it.next()??.parse().ok()?;
    Some((c, t, s))
}

fn killed_in_term(rec: &Recorded, cand: usize, token: u64) -> bool {
    rec.history
        .terms()
        .iter()
        .any(|t| t.candidate == cand && t.token == token && t.crashed)
}

/// The oracle: the value the backend holds at the end must come from a
/// guarded write that was not refused.
fn check_final_value(rec: &Recorded) -> Option<Found> {
    let Some(Some(value)) = &rec.final_value else {
        return None;
    };
    let problem = match parse_value(value) {
        None => Some(format!(
            "the fenced key holds {value:?}, which no candidate writes"
        )),
        Some(key) => match rec.answers.get(&key) {
            // A writer killed in its term may have died before logging
            // the answer.
            None if killed_in_term(rec, key.0, key.1) => None,
            None => Some(format!(
                "the fenced key holds {value:?}, a write no candidate logged"
            )),
            Some(Some(false)) => Some(format!(
                "the fenced key holds {value:?}, a write the backend had refused"
            )),
            Some(_) => None,
        },
    };
    problem.map(|message| Found {
        invariant: Invariant::FencedWrites,
        message,
        context: Vec::new(),
    })
}

/// A violation, rendered for people.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    /// Which invariant.
    pub invariant: Invariant,
    /// What happened.
    pub message: String,
    /// The history around it, one line per record.
    pub context: Vec<String>,
}

/// Per fault kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KindStats {
    /// Faults injected.
    pub injected: usize,
    /// Of those, how many ended the term of the leader in office.
    pub deposed_leader: usize,
    /// Fault start → next leader elected, over faults that deposed one,
    /// in seconds (`None` without such a fault).
    pub time_to_new_leader: Option<Distribution>,
}

/// The verdict on a campaign.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Terms (elections) in the history.
    pub elections: usize,
    /// Losses by reason.
    pub losses: BTreeMap<String, usize>,
    /// Faults injected.
    pub faults: usize,
    /// Per fault kind.
    pub by_kind: BTreeMap<String, KindStats>,
    /// Guarded writes accepted / refused.
    pub writes_accepted: usize,
    /// Guarded writes refused by the backend.
    pub writes_refused: usize,
    /// Guarded writes with an unknown outcome (timeouts, errors).
    pub writes_unknown: usize,
    /// Heals after which liveness was checked.
    pub liveness_checked: usize,
    /// Heals followed by a new fault before the bound (not judged).
    pub liveness_not_judged: usize,
    /// Heal → a leader valid, over the checked heals, in seconds (`None`
    /// without a checked heal).
    pub time_to_leader_after_heal: Option<Distribution>,
    /// Log lines torn by kills.
    pub torn_lines: usize,
    /// What the fenced key held at the end (checked against the writes'
    /// answers), if the runner read it.
    pub fenced_key_at_end: Option<String>,
    /// The first violation of each invariant found.
    pub violations: Vec<Found>,
}

fn render(rec: &Recorded, v: &Violation) -> Found {
    let tl = &rec.timeline;
    let mut context: Vec<String> = Vec::new();
    // Runs of the same kind of line from the same process (writes,
    // renewals, retried errors) collapse to their first line and a count.
    let mut run: Option<(String, usize)> = None;
    let flush = |context: &mut Vec<String>, run: &mut Option<(String, usize)>| {
        if let Some((_, n)) = run.take() {
            if n > 1 {
                context.push(format!("{:>12}  … and {} more like it", "", n - 1));
            }
        }
    };
    // A retried error shows once, with how often it recurred here.
    let who_of = |c: usize| {
        if c == RUNNER {
            "runner ".to_owned()
        } else {
            format!("cand {c:<2}")
        }
    };
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for r in &v.context {
        if let RecordKind::Note(n) = &r.kind {
            if n.starts_with("error: ") {
                *errors
                    .entry(format!("{}{n}", who_of(r.candidate)))
                    .or_default() += 1;
            }
        }
    }
    for r in &v.context {
        let who = who_of(r.candidate);
        if let RecordKind::Note(n) = &r.kind {
            if n.starts_with("error: ") {
                match errors.remove(&format!("{who}{n}")) {
                    Some(times) if times > 1 => {
                        flush(&mut context, &mut run);
                        context.push(format!(
                            "{:>10.3}s  {who}  {n} (×{times} in this window)",
                            tl.secs_of(r.at)
                        ));
                        continue;
                    }
                    Some(_) => {}
                    None => continue,
                }
            }
        }
        let (what, class) = describe(tl, &r.kind);
        let key = class.map(|c| format!("{who}{c}"));
        match (&mut run, &key) {
            (Some((k, n)), Some(key)) if k == key => {
                *n += 1;
                continue;
            }
            _ => {
                flush(&mut context, &mut run);
                run = key.map(|k| (k, 1));
            }
        }
        context.push(format!("{:>10.3}s  {who}  {what}", tl.secs_of(r.at)));
    }
    flush(&mut context, &mut run);
    Found {
        invariant: v.invariant,
        message: v.message.clone(),
        context,
    }
}

/// A record in words, and its class when runs of it may collapse.
fn describe(tl: &Timeline, kind: &RecordKind) -> (String, Option<String>) {
    match kind {
        RecordKind::Elected { token, valid_until } => (
            format!(
                "elected token {token}, valid until {:.3}",
                tl.secs_of(*valid_until)
            ),
            None,
        ),
        RecordKind::Extended { valid_until } => (
            format!("renewed: valid until {:.3}", tl.secs_of(*valid_until)),
            Some("renewed".into()),
        ),
        RecordKind::Lost { reason } => (format!("lost: {reason}"), None),
        RecordKind::Crashed => ("killed (SIGKILL)".into(), None),
        RecordKind::Deposed => ("entry deleted / lease revoked by the runner".into(), None),
        RecordKind::Fenced => ("… the backend confirmed it gone".into(), None),
        RecordKind::Write { token, accepted } => {
            let answer = if *accepted { "ACCEPTED" } else { "refused" };
            (
                format!("guarded write sent with token {token}: {answer}"),
                Some(format!("write {token} {answer}")),
            )
        }
        RecordKind::Paused => ("frozen (SIGSTOP)".into(), None),
        RecordKind::Resumed => ("thawed (SIGCONT)".into(), None),
        RecordKind::Note(n) => (n.clone(), None),
    }
}

/// The first instant in `[from, to]` at which some term is valid.
fn first_valid(terms: &[Term], from: Instant, to: Instant) -> Option<Instant> {
    terms
        .iter()
        .filter(|t| t.end > from && t.end > t.elected && t.elected <= to)
        .map(|t| t.elected.max(from))
        .min()
}

/// Checks every invariant over a recorded campaign.
pub fn check(rec: &Recorded, p: CheckParams) -> Report {
    let h = &rec.history;
    let mut violations = Vec::new();
    let terms = match h.check(rec.end) {
        Ok(t) => t,
        Err(v) => {
            violations.push(render(rec, &v));
            h.terms()
        }
    };
    let writes = match h.check_writes(&terms) {
        Ok(w) => w,
        Err(v) => {
            violations.push(render(rec, &v));
            WriteStats::default()
        }
    };
    if let Err(v) = h.check_stale(&terms, p.stale_grace) {
        violations.push(render(rec, &v));
    }
    violations.extend(check_final_value(rec));
    violations.extend(check_command_writes(rec));
    // (d) after each quiet point.
    let bound = p.ttl + p.liveness_bound;
    let starts: Vec<Instant> = rec
        .faults
        .iter()
        .map(|f| rec.timeline.instant(f.start_ns))
        .collect();
    let (mut checked, mut unjudged, mut after_heal) = (0, 0, Vec::new());
    let mut liveness_failed = false;
    for &q in &rec.quiet {
        let next = starts
            .iter()
            .copied()
            .find(|s| *s > q)
            .unwrap_or(rec.end)
            .min(rec.end);
        let window_end = (q + bound).min(next);
        match first_valid(&terms, q, window_end) {
            Some(at) => {
                checked += 1;
                after_heal.push((at - q).as_secs_f64());
            }
            None if next < q + bound => unjudged += 1,
            None => {
                checked += 1;
                if !liveness_failed {
                    liveness_failed = true;
                    if let Err(v) = h.check_leader_within(rec.end, q, bound) {
                        violations.push(render(rec, &v));
                    }
                }
            }
        }
    }
    // Time to a new leader per fault kind.
    let mut by_kind: BTreeMap<String, KindStats> = BTreeMap::new();
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (f, &s) in rec.faults.iter().zip(&starts) {
        let k = by_kind.entry(f.kind.name().to_owned()).or_default();
        k.injected += 1;
        let Some(cur) = terms.iter().find(|t| t.elected <= s && s < t.end) else {
            continue;
        };
        // The fault deposed the leader in office if its term ended before
        // the episode healed plus a TTL, and before the next episode.
        let quiet = rec
            .quiet
            .iter()
            .copied()
            .find(|q| *q >= s)
            .unwrap_or(rec.end);
        let next_episode = starts
            .iter()
            .copied()
            .find(|n| *n > quiet)
            .unwrap_or(rec.end);
        let settle = (quiet + p.ttl).min(next_episode);
        if cur.end > settle {
            continue; // the leader in office survived this fault
        }
        k.deposed_leader += 1;
        if let Some(next) = terms
            .iter()
            .filter(|t| t.seq != cur.seq && t.elected >= cur.elected && t.elected < rec.end)
            .map(|t| t.elected)
            .min()
        {
            samples
                .entry(f.kind.name().to_owned())
                .or_default()
                .push((next - s).as_secs_f64());
        }
    }
    for (k, v) in samples {
        if let Some(stats) = by_kind.get_mut(&k) {
            stats.time_to_new_leader = Distribution::of(&v);
        }
    }
    let mut losses: BTreeMap<String, usize> = BTreeMap::new();
    for t in &terms {
        let key = match (t.lost, t.crashed) {
            (Some((_, r)), _) => r.to_string(),
            (None, true) => "killed".into(),
            (None, false) => "still leading at the end".into(),
        };
        *losses.entry(key).or_default() += 1;
    }
    Report {
        elections: terms.len(),
        losses,
        faults: rec.faults.len(),
        by_kind,
        writes_accepted: writes.accepted,
        writes_refused: writes.refused,
        writes_unknown: rec.unknown_writes,
        liveness_checked: checked,
        liveness_not_judged: unjudged,
        time_to_leader_after_heal: Distribution::of(&after_heal),
        torn_lines: rec.torn_lines,
        fenced_key_at_end: rec.final_value.clone().flatten(),
        violations,
    }
}

#[cfg(test)]
mod tests {
    use tenure::LossReason;

    use super::*;
    use crate::log::{Event, Line};
    use crate::record::{merge, reason};

    fn line(ns: u64, cand: Option<usize>, event: Event) -> Line {
        Line {
            mono_ns: ns,
            cand,
            event,
        }
    }

    const S: u64 = 1_000_000_000;

    fn params() -> CheckParams {
        CheckParams {
            ttl: Duration::from_secs(1),
            liveness_bound: Duration::from_secs(2),
            stale_grace: Duration::from_millis(500),
        }
    }

    fn healthy() -> Vec<Line> {
        vec![
            line(
                10 * S,
                Some(0),
                Event::Elected {
                    token: 5,
                    valid_until_ns: 10 * S + 800_000_000,
                },
            ),
            line(
                10 * S + 100,
                Some(0),
                Event::Write {
                    token: 5,
                    seq: 1,
                    sent_ns: 10 * S + 50,
                    accepted: true,
                    answer: "ok 9".into(),
                },
            ),
            line(
                10 * S + 700_000_000,
                None,
                Event::FaultStart {
                    id: 0,
                    kind: "sigstop".into(),
                    target: "candidate 0".into(),
                },
            ),
            line(10 * S + 700_000_000, Some(0), Event::Paused),
            line(
                12 * S,
                Some(1),
                Event::Elected {
                    token: 9,
                    valid_until_ns: 12 * S + 800_000_000,
                },
            ),
            line(13 * S, Some(0), Event::Resumed),
            line(13 * S, None, Event::FaultHeal { id: 0 }),
            line(13 * S, None, Event::Quiet),
            line(
                13 * S + 10,
                Some(0),
                Event::Lost {
                    reason: "keep-alive deadline exceeded".into(),
                },
            ),
            line(
                12 * S + 500_000_000,
                Some(1),
                Event::Renewed {
                    valid_until_ns: 14 * S,
                },
            ),
            line(13 * S + 900_000_000, None, Event::Stop),
        ]
    }

    #[test]
    fn a_healthy_history_passes_and_is_summarised() {
        let rec = merge(healthy(), 0);
        let r = check(&rec, params());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.elections, 2);
        assert_eq!(r.writes_accepted, 1);
        assert_eq!(r.faults, 1);
        let k = &r.by_kind["sigstop"];
        assert_eq!((k.injected, k.deposed_leader), (1, 1));
        let to_new_leader = k.time_to_new_leader.as_ref().expect("one sample");
        assert!((to_new_leader.median - 1.3).abs() < 1e-6);
        assert_eq!(r.liveness_checked, 1);
        assert_eq!(r.losses["keep-alive deadline exceeded"], 1);
    }

    #[test]
    fn a_gated_command_writing_after_the_successor_is_caught() {
        // Candidate 0's command (term 5) writes while candidate 0 is
        // frozen, before candidate 1 is elected at 12 s: fine.
        let mut lines = healthy();
        lines.push(line(11 * S, Some(0), Event::CommandWrite { token: 5 }));
        let r = check(&merge(lines.clone(), 0), params());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        // One more line of term 5 after term 9's election: caught.
        lines.push(line(12 * S + 1, Some(0), Event::CommandWrite { token: 5 }));
        let r = check(&merge(lines, 0), params());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        let v = &r.violations[0];
        assert_eq!(v.invariant, Invariant::GatedCommandEnds, "{v:?}");
        assert!(v.message.contains("term 5"), "{v:?}");
        assert!(v.message.contains("token 9"), "{v:?}");
    }

    #[test]
    fn a_leader_that_ignores_its_deadline_is_caught_with_context() {
        let mut lines = healthy();
        // Candidate 0 keeps renewing its own deadline while frozen and
        // after: the broken candidate's signature.
        lines.push(line(
            12 * S + 100,
            Some(0),
            Event::Renewed {
                valid_until_ns: 13 * S,
            },
        ));
        let rec = merge(lines, 0);
        let r = check(&rec, params());
        let v = &r.violations[0];
        assert_eq!(v.invariant, Invariant::NoOverlap);
        assert!(
            v.context.iter().any(|l| l.contains("elected token 9")),
            "{v:?}"
        );
    }

    #[test]
    fn no_leader_after_a_heal_is_a_liveness_violation() {
        let lines = vec![
            line(
                S,
                Some(0),
                Event::Elected {
                    token: 1,
                    valid_until_ns: 2 * S,
                },
            ),
            line(
                2 * S,
                Some(0),
                Event::Lost {
                    reason: "lease expired".into(),
                },
            ),
            line(3 * S, None, Event::Quiet),
            line(20 * S, None, Event::Stop),
        ];
        let r = check(&merge(lines, 0), params());
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert_eq!(r.violations[0].invariant, Invariant::LeaderAfterHeal);
    }

    #[test]
    fn the_stored_value_must_come_from_a_write_that_was_not_refused() {
        let mut lines = healthy();
        lines.push(line(
            14 * S,
            None,
            Event::FinalValue {
                value: Some("cand=0 token=5 seq=1".into()),
            },
        ));
        let r = check(&merge(lines.clone(), 0), params());
        assert!(r.violations.is_empty(), "{:?}", r.violations);

        lines.pop();
        lines.push(line(
            14 * S,
            None,
            Event::FinalValue {
                value: Some("cand=1 token=9 seq=4".into()),
            },
        ));
        let r = check(&merge(lines, 0), params());
        assert!(
            r.violations[0].message.contains("no candidate logged"),
            "{:?}",
            r.violations
        );
        assert_eq!(parse_value("cand=2 token=7 seq=3"), Some((2, 7, 3)));
        assert_eq!(parse_value("junk"), None);
    }

    /// The incident behind `ahead_of_report` (PostgreSQL, a campaign run
    /// beside 200 CLI processes, load average 105): the runner deletes the
    /// queue's head, candidate 2's entry, and only then does candidate 2's
    /// report of winning with it arrive; candidate 0 is elected meanwhile.
    /// The late term is deposed from its first instant, so it overlaps
    /// nothing; a write it sends after the confirmed delete must be
    /// refused. Without the operator records the same history is an
    /// overlap.
    #[test]
    fn a_delete_that_came_before_the_election_report_deposes_that_term() {
        const MS: u64 = S / 1000;
        let history = |operator: bool, write_accepted: bool| {
            let mut lines = Vec::new();
            if operator {
                lines.push(line(
                    1000 * MS,
                    Some(2),
                    Event::Deposed {
                        token: 267,
                        by: "delete".into(),
                    },
                ));
                lines.push(line(1035 * MS, Some(2), Event::Fenced { token: 267 }));
            }
            lines.extend([
                line(
                    1115 * MS,
                    Some(2),
                    Event::Elected {
                        token: 267,
                        valid_until_ns: 1480 * MS,
                    },
                ),
                line(
                    1200 * MS,
                    Some(2),
                    Event::Write {
                        token: 267,
                        seq: 1,
                        accepted: write_accepted,
                        answer: if write_accepted { "ok 1" } else { "refused" }.into(),
                        sent_ns: 1120 * MS,
                    },
                ),
                line(
                    1216 * MS,
                    Some(0),
                    Event::Elected {
                        token: 295,
                        valid_until_ns: 1800 * MS,
                    },
                ),
                line(
                    1280 * MS,
                    Some(2),
                    Event::Lost {
                        reason: "entry deleted".into(),
                    },
                ),
                line(1290 * MS, None, Event::Quiet),
                line(1500 * MS, None, Event::Stop),
            ]);
            check(&merge(lines, 0), params()).violations
        };
        let v = history(true, false);
        assert!(v.is_empty(), "{v:?}");
        let v = history(false, false);
        assert_eq!(v[0].invariant, Invariant::NoOverlap, "{v:?}");
        let v = history(true, true);
        assert_eq!(v[0].invariant, Invariant::FencedWrites, "{v:?}");
    }

    #[test]
    fn operator_records_hit_only_the_term_they_aimed_at() {
        let lines = vec![
            line(
                S,
                Some(0),
                Event::Elected {
                    token: 1,
                    valid_until_ns: 5 * S,
                },
            ),
            // Aimed at an older term of candidate 0: ignored.
            line(
                2 * S,
                Some(0),
                Event::Deposed {
                    token: 0,
                    by: "delete".into(),
                },
            ),
            line(4 * S, None, Event::Stop),
        ];
        let rec = merge(lines, 0);
        let terms = rec.history.terms();
        assert!(!terms[0].deposed);
        assert_eq!(reason("entry deleted"), LossReason::EntryDeleted);
    }
}
