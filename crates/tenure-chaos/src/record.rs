//! A campaign's logs merged into one history: every process's JSON
//! lines, ordered on the shared monotonic clock, as the records of
//! `tenure_testkit::history` plus the faults, heals, writes and command
//! lines the checks need.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use tenure::LossReason;
use tenure_testkit::history::{History, RecordKind};

use crate::clock::Timeline;
use crate::faults::FaultKind;
use crate::log::{self, Event, Line};

/// Candidate id used for the runner's own records.
pub const RUNNER: usize = usize::MAX;

/// One fault as the runner recorded it.
#[derive(Clone, Debug, Serialize)]
pub struct FaultSpan {
    /// Fault number.
    pub id: u64,
    /// Kind.
    pub kind: FaultKind,
    /// What it hit.
    pub target: String,
    /// Start, seconds from the campaign's origin.
    pub start: f64,
    /// Heal, seconds from the origin.
    pub heal: Option<f64>,
    #[serde(skip)]
    pub(crate) start_ns: u64,
}

/// A campaign's logs, merged.
#[derive(Debug)]
pub struct Recorded {
    /// The merged history.
    pub history: History,
    /// Nanoseconds ↔ instants.
    pub timeline: Timeline,
    /// Faults in start order.
    pub faults: Vec<FaultSpan>,
    /// Instants at which an episode's faults had all healed.
    pub quiet: Vec<Instant>,
    /// End of the campaign (its `stop`).
    pub end: Instant,
    /// Lines that did not parse (torn by a kill).
    pub torn_lines: usize,
    /// Guarded writes whose outcome is unknown (timeouts, errors).
    pub unknown_writes: usize,
    /// Answers of the guarded writes by (candidate, token, sequence):
    /// `Some(true)` accepted, `Some(false)` refused, `None` unknown.
    pub answers: BTreeMap<(usize, u64, u64), Option<bool>>,
    /// What the fenced key held at the end, if the runner read it.
    pub final_value: Option<Option<String>>,
    /// Every election: (candidate, token, when).
    pub elections: Vec<(usize, u64, Instant)>,
    /// Every line of a gated command: (candidate, token, when).
    pub command_writes: Vec<(usize, u64, Instant)>,
}

pub(crate) fn reason(text: &str) -> LossReason {
    [
        LossReason::Resigned,
        LossReason::LeaseExpired,
        LossReason::DeadlineExceeded,
        LossReason::EntryDeleted,
        LossReason::Shutdown,
    ]
    .into_iter()
    .find(|r| r.to_string() == text)
    .unwrap_or(LossReason::Shutdown)
}

/// Reads every log of the campaign in `dir`.
///
/// # Errors
/// A log cannot be read.
pub fn load(dir: &Path) -> std::io::Result<Recorded> {
    let mut lines: Vec<Line> = Vec::new();
    let mut torn = 0;
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    for f in files {
        let (l, t) = log::read(&f)?;
        lines.extend(l);
        torn += t;
    }
    Ok(merge(lines, torn))
}

/// The instant a line stands for: a write when it was sent, anything else
/// when it was logged.
fn stamp(l: &Line) -> u64 {
    match l.event {
        Event::Write { sent_ns, .. } => sent_ns,
        _ => l.mono_ns,
    }
}

/// Merges the lines of every log into one history.
pub fn merge(mut lines: Vec<Line>, torn_lines: usize) -> Recorded {
    lines.sort_by_key(stamp);
    let origin = lines.first().map(stamp).unwrap_or(0);
    let tl = Timeline::new(origin);
    let mut h = History::new();
    let mut faults: Vec<FaultSpan> = Vec::new();
    let mut quiet = Vec::new();
    let mut end_ns = lines.last().map(stamp).unwrap_or(origin);
    let mut stopped = false;
    let mut unknown_writes = 0;
    let mut answers = BTreeMap::new();
    let mut final_value = None;
    let mut elections = Vec::new();
    let mut command_writes = Vec::new();
    // Open term per candidate, to aim operator records at the right term.
    let mut open: BTreeMap<usize, u64> = BTreeMap::new();
    // Operator records that reached an entry before its candidate reported
    // the election it won with it, by (candidate, token): whether the
    // delete was also confirmed. See `Event::Elected` below.
    let mut ahead_of_report: BTreeMap<(usize, u64), bool> = BTreeMap::new();
    for l in &lines {
        let at = tl.instant(stamp(l));
        let c = l.cand.unwrap_or(RUNNER);
        let kind = match &l.event {
            Event::Elected {
                token,
                valid_until_ns,
            } => {
                open.insert(c, *token);
                elections.push((c, *token, at));
                h.push(
                    at,
                    c,
                    RecordKind::Elected {
                        token: *token,
                        valid_until: tl.instant(*valid_until_ns),
                    },
                );
                // The runner deleted this entry (read as the queue's head)
                // before the candidate's report of winning with it came: the
                // candidate decided on a read answered before the delete,
                // and its report was late (a process short of CPU). No
                // backend creates an entry with a token it had, so the term
                // is deposed from its first instant; its loss must still be
                // reported, and once the delete was confirmed, every
                // guarded write of the term must be refused.
                match ahead_of_report.remove(&(c, *token)) {
                    Some(confirmed) => {
                        h.push(at, c, RecordKind::Deposed);
                        confirmed.then_some(RecordKind::Fenced)
                    }
                    None => None,
                }
            }
            Event::Renewed { valid_until_ns } => Some(RecordKind::Extended {
                valid_until: tl.instant(*valid_until_ns),
            }),
            Event::Lost { reason: r } => {
                open.remove(&c);
                Some(RecordKind::Lost { reason: reason(r) })
            }
            Event::Write {
                token,
                seq,
                accepted,
                answer,
                ..
            } => {
                let known = *accepted || answer == "refused";
                if !known {
                    unknown_writes += 1;
                }
                answers.insert((c, *token, *seq), known.then_some(*accepted));
                Some(RecordKind::Write {
                    token: *token,
                    accepted: *accepted,
                })
            }
            Event::Killed => {
                open.remove(&c);
                Some(RecordKind::Crashed)
            }
            Event::Paused => Some(RecordKind::Paused),
            Event::Resumed => Some(RecordKind::Resumed),
            Event::Deposed { token, .. } if open.get(&c) == Some(token) => {
                Some(RecordKind::Deposed)
            }
            Event::Deposed { token, .. } => {
                ahead_of_report.insert((c, *token), false);
                None
            }
            Event::Fenced { token } if open.get(&c) == Some(token) => Some(RecordKind::Fenced),
            Event::Fenced { token } => {
                if let Some(confirmed) = ahead_of_report.get_mut(&(c, *token)) {
                    *confirmed = true;
                }
                None
            }
            Event::FaultStart { id, kind, target } => {
                if let Some(k) = FaultKind::from_name(kind) {
                    faults.push(FaultSpan {
                        id: *id,
                        kind: k,
                        target: target.clone(),
                        start: tl.secs(l.mono_ns),
                        heal: None,
                        start_ns: l.mono_ns,
                    });
                }
                Some(RecordKind::Note(format!("fault {id} {kind}: {target}")))
            }
            Event::FaultHeal { id } => {
                if let Some(f) = faults.iter_mut().rev().find(|f| f.id == *id) {
                    f.heal = Some(tl.secs(l.mono_ns));
                }
                Some(RecordKind::Note(format!("fault {id} healed")))
            }
            Event::Quiet => {
                quiet.push(at);
                Some(RecordKind::Note("all faults healed".into()))
            }
            Event::Stop => {
                if !stopped {
                    stopped = true;
                    end_ns = l.mono_ns;
                }
                Some(RecordKind::Note("campaign stops".into()))
            }
            Event::Start { pid, broken } => Some(RecordKind::Note(format!(
                "process {pid} starts{}",
                if *broken { " (broken)" } else { "" }
            ))),
            Event::Error { what, message } => {
                Some(RecordKind::Note(format!("error: {what}: {message}")))
            }
            Event::FinalValue { value } => {
                final_value = Some(value.clone());
                Some(RecordKind::Note(format!(
                    "the fenced key holds {}",
                    value.as_deref().unwrap_or("nothing")
                )))
            }
            Event::CommandWrite { token } => {
                command_writes.push((c, *token, at));
                None
            }
            Event::Campaign | Event::Spawned { .. } => None,
        };
        if let Some(k) = kind {
            h.push(at, c, k);
        }
    }
    faults.sort_by(|a, b| a.start.total_cmp(&b.start));
    Recorded {
        history: h.count_late_extensions(),
        timeline: tl,
        faults,
        quiet,
        end: tl.instant(end_ns),
        torn_lines,
        unknown_writes,
        answers,
        final_value,
        elections,
        command_writes,
    }
}
