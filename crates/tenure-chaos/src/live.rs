//! The runner's live view of who leads, from the candidates' own logs
//! read as they grow: it aims leader faults at the believed leader and
//! paces episodes (the next one starts once a leader is back).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::log::{Event, Line};

/// Tails one log file.
#[derive(Debug)]
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Tail {
    /// New complete lines since the last call.
    fn read_new(&mut self) -> Vec<Line> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = String::new();
        let Ok(n) = f.read_to_string(&mut buf) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.partial.push_str(&buf);
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            if let Ok(l) = serde_json::from_str::<Line>(line.trim()) {
                out.push(l);
            }
        }
        out
    }
}

/// Who believes they lead, per the candidates' logs.
#[derive(Debug)]
pub struct LiveView {
    tails: Vec<Tail>,
    /// Open terms: candidate → (token, deadline in mono ns).
    open: HashMap<usize, (u64, u64)>,
    last_elected_ns: u64,
}

impl LiveView {
    /// Watches the logs at `paths` (candidate `i` writes `paths[i]`).
    pub fn new(paths: Vec<PathBuf>) -> LiveView {
        LiveView {
            tails: paths
                .into_iter()
                .map(|path| Tail {
                    path,
                    offset: 0,
                    partial: String::new(),
                })
                .collect(),
            open: HashMap::new(),
            last_elected_ns: 0,
        }
    }

    /// Reads what the candidates logged since the last call.
    pub fn refresh(&mut self) {
        for (i, tail) in self.tails.iter_mut().enumerate() {
            for line in tail.read_new() {
                match line.event {
                    Event::Elected {
                        token,
                        valid_until_ns,
                    } => {
                        self.open.insert(i, (token, valid_until_ns));
                        self.last_elected_ns = self.last_elected_ns.max(line.mono_ns);
                    }
                    Event::Renewed { valid_until_ns } => {
                        if let Some(t) = self.open.get_mut(&i) {
                            t.1 = t.1.max(valid_until_ns);
                        }
                    }
                    Event::Lost { .. } | Event::Start { .. } => {
                        self.open.remove(&i);
                    }
                    _ => {}
                }
            }
        }
    }

    /// The candidate dies: its term is over.
    pub fn forget(&mut self, cand: usize) {
        self.open.remove(&cand);
    }

    /// The candidate that believes it leads at `now_ns` (the one with the
    /// largest token if, wrongly, several do).
    pub fn leader(&self, now_ns: u64) -> Option<usize> {
        self.open
            .iter()
            .filter(|(_, (_, until))| *until > now_ns)
            .max_by_key(|(_, (token, _))| *token)
            .map(|(c, _)| *c)
    }

    /// When the latest election was logged.
    pub fn last_elected_ns(&self) -> u64 {
        self.last_elected_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::EventLog;

    #[test]
    fn follows_terms_as_logs_grow() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("{i}"))).collect();
        let logs: Vec<EventLog> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| EventLog::open(p, Some(i)).unwrap())
            .collect();
        let mut view = LiveView::new(paths);
        view.refresh();
        assert_eq!(view.leader(0), None);
        logs[1].log(Event::Elected {
            token: 4,
            valid_until_ns: 100,
        });
        view.refresh();
        assert_eq!(view.leader(50), Some(1));
        assert_eq!(view.leader(100), None, "past its deadline");
        logs[1].log(Event::Renewed {
            valid_until_ns: 200,
        });
        view.refresh();
        assert_eq!(view.leader(150), Some(1));
        assert!(view.last_elected_ns() > 0);
        logs[1].log(Event::Lost {
            reason: "entry deleted".into(),
        });
        view.refresh();
        assert_eq!(view.leader(150), None);
    }
}
