//! The event logs: one JSON object per line, appended and flushed line by
//! line, one file per candidate process plus one for the runner's faults.
//!
//! Every line carries `mono_ns` (`CLOCK_MONOTONIC` when it was written) and,
//! when it concerns one candidate, `cand`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::clock::mono_ns;

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// A candidate process started.
    Start {
        /// Its process id.
        pid: u32,
        /// Whether it runs deliberately broken.
        #[serde(default)]
        broken: bool,
    },
    /// A candidate started a campaign.
    Campaign,
    /// A candidate was elected.
    Elected {
        /// Fencing token of the term.
        token: u64,
        /// Its deadline.
        valid_until_ns: u64,
    },
    /// A leader's deadline moved.
    Renewed {
        /// The new deadline.
        valid_until_ns: u64,
    },
    /// A leader was told it lost leadership.
    Lost {
        /// Why (tenure's `LossReason`, displayed).
        reason: String,
    },
    /// A leader-guarded write and the backend's answer.
    Write {
        /// Token of the term it was sent in.
        token: u64,
        /// Sequence number of the write in this process.
        seq: u64,
        /// When it was sent (decided).
        sent_ns: u64,
        /// Whether the backend accepted it.
        accepted: bool,
        /// The answer: `ok <revision>`, `refused`, or an error.
        answer: String,
    },
    /// Something failed (a campaign, a connection); for the report.
    Error {
        /// What was being done.
        what: String,
        /// The error.
        message: String,
    },
    /// The runner started a fault.
    FaultStart {
        /// Fault number in the run.
        id: u64,
        /// Kind (see `faults::FaultKind`).
        kind: String,
        /// What it hit.
        target: String,
    },
    /// The runner healed a fault.
    FaultHeal {
        /// Fault number.
        id: u64,
    },
    /// Every fault of an episode is healed: a leader is due within the
    /// liveness bound from here.
    Quiet,
    /// The runner spawned a candidate process.
    Spawned {
        /// Its process id.
        pid: u32,
    },
    /// A candidate process is dead (`SIGKILL` delivered and reaped).
    Killed,
    /// A candidate process was frozen (`SIGSTOP`).
    Paused,
    /// A candidate process was thawed (`SIGCONT`).
    Resumed,
    /// An operator operation against the leader's entry or lease was sent.
    Deposed {
        /// Token of the entry it targets.
        token: u64,
        /// The operation.
        by: String,
    },
    /// That operation was answered: the entry or lease is gone.
    Fenced {
        /// Token of the entry.
        token: u64,
    },
    /// The campaign ends: candidates are stopped from here on.
    Stop,
    /// A line written by a grandchild of a leader's gated command (see
    /// `faults::FaultKind::SignalGated`), with the term's token.
    CommandWrite {
        /// `TENURE_TOKEN` of the term that started the command.
        token: u64,
    },
    /// What the fenced key holds at the end, read from the backend by the
    /// runner: the oracle for the guarded writes.
    FinalValue {
        /// The stored value (`cand=<i> token=<k> seq=<n>`), if any.
        value: Option<String>,
    },
}

/// One line of a log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// `CLOCK_MONOTONIC` nanoseconds when it was written.
    pub mono_ns: u64,
    /// The candidate it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cand: Option<usize>,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// An append-only log file, written and flushed one line at a time so a
/// `SIGKILL` loses at most the line being written.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: Mutex<File>,
    cand: Option<usize>,
}

impl EventLog {
    /// Opens (creating or appending to) `path`; lines are tagged with
    /// `cand` when given.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path, cand: Option<usize>) -> std::io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog {
            path: path.to_owned(),
            file: Mutex::new(file),
            cand,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` stamped now.
    pub fn log(&self, event: Event) {
        self.log_for(self.cand, event);
    }

    /// Appends `event` about candidate `cand`, stamped now.
    pub fn log_for(&self, cand: Option<usize>, event: Event) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // Stamped under the lock so the lines of one file are in time order.
        let line = Line {
            mono_ns: mono_ns(),
            cand,
            event,
        };
        if let Ok(mut text) = serde_json::to_string(&line) {
            text.push('\n');
            // One write per line (O_APPEND), then to the disk cache; an
            // error here cannot be reported anywhere better than stderr.
            if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
                eprintln!("cannot append to {}: {e}", self.path.display());
            }
        }
    }
}

/// Reads a log, skipping lines that do not parse (the last line of a
/// process killed mid-write); returns the lines and how many were skipped.
///
/// # Errors
/// The file cannot be read.
pub fn read(path: &Path) -> std::io::Result<(Vec<Line>, usize)> {
    let reader = BufReader::new(File::open(path)?);
    let mut lines = Vec::new();
    let mut skipped = 0;
    for text in reader.lines() {
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(&text) {
            Ok(l) => lines.push(l),
            Err(_) => skipped += 1,
        }
    }
    Ok((lines, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let log = EventLog::open(&path, Some(3)).unwrap();
        log.log(Event::Elected {
            token: 7,
            valid_until_ns: 99,
        });
        log.log_for(None, Event::Stop);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"mono_ns\":1,\"ev\":\"wri")
            .unwrap();
        let (lines, skipped) = read(&path).unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].cand, Some(3));
        assert_eq!(
            lines[0].event,
            Event::Elected {
                token: 7,
                valid_until_ns: 99
            }
        );
        assert_eq!(lines[1].cand, None);
        assert!(lines[0].mono_ns <= lines[1].mono_ns);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"mono_ns\":"), "{text}");
        assert!(text.contains("\"ev\":\"elected\""), "{text}");
    }
}
