//! Events on standard output: readable text or one JSON object per line.
//!
//! This is a contract other tools parse. Every JSON object carries
//! `event`, `election` and `mono_ns` (`CLOCK_MONOTONIC` nanoseconds when
//! the event happened); the other fields are those of the [`Event`]
//! variant, named in snake case.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::args::OutputFormat;
use crate::clock;

/// Something that happened, as printed on standard output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Event {
    /// `campaigning`: our entry is about to be created, bound to `lease`.
    Campaigning {
        /// Our proposal.
        proposal: String,
        /// The lease, in hex.
        lease: String,
        /// The TTL the backend granted, in milliseconds.
        ttl_ms: u64,
    },
    /// `elected`: `campaign()` resolved; we lead.
    Elected {
        /// Our proposal.
        proposal: String,
        /// The fencing token of the term.
        token: u64,
        /// The lease, in hex.
        lease: String,
        /// The local deadline at election, in `CLOCK_MONOTONIC` ns.
        valid_until_mono_ns: u64,
    },
    /// `lost`: the term ended without our asking.
    Lost {
        /// `lease_expired`, `deadline_exceeded`, `entry_deleted`,
        /// `resigned` or `shutdown`.
        reason: &'static str,
        /// The fencing token of the term.
        token: u64,
    },
    /// `resigned`: we end the term by our choice (shutdown, or the command
    /// ended). Printed as we stop acting as leader, just before our entry
    /// is deleted, so it precedes the successor's `elected`.
    Resigned {
        /// The fencing token of the term.
        token: u64,
    },
    /// `child_started`: the command runs (as leader of term `token`).
    ChildStarted {
        /// Its process id (and process group id).
        pid: u32,
        /// The fencing token of the term.
        token: u64,
    },
    /// `child_signalled`: its process group was sent `signal`.
    ChildSignalled {
        /// Its process id.
        pid: u32,
        /// `SIGTERM` or `SIGKILL`.
        signal: &'static str,
    },
    /// `child_exited`: the command ended.
    ChildExited {
        /// Its process id.
        pid: u32,
        /// Exit code, when it exited.
        code: Option<i32>,
        /// Name of the signal that killed it, when one did.
        signal: Option<String>,
    },
    /// `leader`: who leads now (`observe`, `leader`).
    Leader {
        /// The leader's proposal; `null` when nobody leads.
        proposal: Option<String>,
        /// The leader's fencing token; `null` when nobody leads.
        token: Option<u64>,
    },
    /// `unknown` (`observe`): the backend has not confirmed the leader for
    /// longer than the staleness bound (`--max-staleness`); the leader
    /// last printed may be gone. A `leader` line follows once the backend
    /// answers again.
    Unknown {
        /// Time since the last confirmation, in milliseconds.
        unconfirmed_for_ms: u64,
    },
    /// `listening` (`--listen`): the HTTP server serves on `addr`.
    Listening {
        /// The bound address, `ip:port` (the port chosen when 0 was asked).
        addr: String,
    },
    /// `candidate`: one entry of the queue (`list`).
    Candidate {
        /// 0 for the leader, then queue order.
        position: usize,
        /// The candidate's proposal.
        proposal: String,
        /// The candidate's lease, in hex.
        lease: String,
        /// The revision that created the entry (its fencing token if it leads).
        created: u64,
    },
}

impl Event {
    /// The `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Campaigning { .. } => "campaigning",
            Event::Elected { .. } => "elected",
            Event::Lost { .. } => "lost",
            Event::Resigned { .. } => "resigned",
            Event::ChildStarted { .. } => "child_started",
            Event::ChildSignalled { .. } => "child_signalled",
            Event::ChildExited { .. } => "child_exited",
            Event::Leader { .. } => "leader",
            Event::Unknown { .. } => "unknown",
            Event::Listening { .. } => "listening",
            Event::Candidate { .. } => "candidate",
        }
    }

    /// The JSON line (without the newline).
    pub fn to_json(&self, election: &str, mono_ns: u64) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            event: &'static str,
            election: &'a str,
            #[serde(flatten)]
            body: &'a Event,
            mono_ns: u64,
        }
        let line = Line {
            event: self.name(),
            election,
            body: self,
            mono_ns,
        };
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(&line).unwrap_or_else(|e| {
            format!(r#"{{"event":"error","election":{election:?},"error":"{e}"}}"#)
        })
    }

    /// The text line: `<event> <election> key=value...`.
    pub fn to_text(&self, election: &str) -> String {
        let e = quote(election);
        match self {
            Event::Campaigning {
                proposal,
                lease,
                ttl_ms,
            } => format!(
                "campaigning {e} proposal={} lease={lease} ttl={}",
                quote(proposal),
                millis(*ttl_ms)
            ),
            Event::Elected {
                proposal,
                token,
                lease,
                ..
            } => format!(
                "elected {e} token={token} proposal={} lease={lease}",
                quote(proposal)
            ),
            Event::Lost { reason, token } => format!("lost {e} token={token} reason={reason}"),
            Event::Resigned { token } => format!("resigned {e} token={token}"),
            Event::ChildStarted { pid, token } => {
                format!("child_started {e} pid={pid} token={token}")
            }
            Event::ChildSignalled { pid, signal } => {
                format!("child_signalled {e} pid={pid} signal={signal}")
            }
            Event::ChildExited { pid, code, signal } => match (code, signal) {
                (Some(code), _) => format!("child_exited {e} pid={pid} code={code}"),
                (None, Some(signal)) => format!("child_exited {e} pid={pid} signal={signal}"),
                (None, None) => format!("child_exited {e} pid={pid}"),
            },
            Event::Leader {
                proposal: Some(p),
                token: Some(t),
            } => format!("leader {e} token={t} proposal={}", quote(p)),
            Event::Leader { .. } => format!("leader {e} none"),
            Event::Unknown { unconfirmed_for_ms } => format!(
                "unknown {e} unconfirmed_for={}",
                millis(*unconfirmed_for_ms)
            ),
            Event::Listening { addr } => format!("listening {e} addr={addr}"),
            Event::Candidate {
                position,
                proposal,
                lease,
                created,
            } => format!(
                "candidate {e} position={position} proposal={} lease={lease} created={created}",
                quote(proposal)
            ),
        }
    }
}

/// `2s` for whole seconds, `2500ms` otherwise: one word, as the options take it.
fn millis(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `s` as is when it is one plain word, else as a quoted, escaped string.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '\\');
    if plain {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

/// The name of a loss reason in events.
pub fn reason_name(reason: tenure::LossReason) -> &'static str {
    use tenure::LossReason as R;
    match reason {
        R::Resigned => "resigned",
        R::LeaseExpired => "lease_expired",
        R::DeadlineExceeded => "deadline_exceeded",
        R::EntryDeleted => "entry_deleted",
        R::Shutdown => "shutdown",
        // A reason added later: report it rather than guess.
        _ => "unknown",
    }
}

/// Writes events to standard output, one line each, flushed at once.
/// Clones share the lock that keeps each line whole.
#[derive(Clone, Debug)]
pub struct Output {
    format: OutputFormat,
    lock: Arc<Mutex<()>>,
}

impl Output {
    /// Events in `format` on standard output.
    pub fn stdout(format: OutputFormat) -> Self {
        Output {
            format,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// The format.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Prints `event` of `election`, stamped now.
    ///
    /// # Errors
    /// When standard output is closed (e.g. a pipe whose reader ended).
    pub fn emit(&self, election: &str, event: &Event) -> std::io::Result<()> {
        let mono_ns = clock::mono_ns();
        let line = match self.format {
            OutputFormat::Json => event.to_json(election, mono_ns),
            OutputFormat::Text => event.to_text(election),
        };
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// As [`emit`](Self::emit), for callers that keep going when nobody
    /// reads the events any more (a campaign still supervises its child).
    pub fn emit_or_log(&self, election: &str, event: &Event) {
        if let Err(e) = self.emit(election, event) {
            tracing::debug!(error = %e, event = event.name(), "cannot write event to stdout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(e: &Event) -> Value {
        serde_json::from_str(&e.to_json("scheduler", 123)).unwrap()
    }

    #[test]
    fn elected_json_has_the_contract_fields() {
        let v = parse(&Event::Elected {
            proposal: "node-a".into(),
            token: 42,
            lease: "694d".into(),
            valid_until_mono_ns: 999,
        });
        assert_eq!(
            v,
            json!({"event":"elected","election":"scheduler","proposal":"node-a","token":42,
                   "lease":"694d","valid_until_mono_ns":999,"mono_ns":123})
        );
    }

    #[test]
    fn json_starts_with_event_and_election() {
        let line = Event::Resigned { token: 7 }.to_json("a/b", 5);
        assert_eq!(
            line,
            r#"{"event":"resigned","election":"a/b","token":7,"mono_ns":5}"#
        );
    }

    #[test]
    fn every_event_serializes_with_its_name() {
        let events = [
            Event::Campaigning {
                proposal: "p".into(),
                lease: "1".into(),
                ttl_ms: 2000,
            },
            Event::Lost {
                reason: "entry_deleted",
                token: 3,
            },
            Event::ChildStarted { pid: 10, token: 3 },
            Event::ChildSignalled {
                pid: 10,
                signal: "SIGTERM",
            },
            Event::ChildExited {
                pid: 10,
                code: None,
                signal: Some("SIGKILL".into()),
            },
            Event::Leader {
                proposal: None,
                token: None,
            },
            Event::Candidate {
                position: 0,
                proposal: "p".into(),
                lease: "1".into(),
                created: 9,
            },
        ];
        for e in &events {
            let v = parse(e);
            assert_eq!(v["event"], e.name());
            assert_eq!(v["election"], "scheduler");
            assert_eq!(v["mono_ns"], 123);
        }
        let v = parse(&events[4]);
        assert_eq!(v["code"], Value::Null);
        assert_eq!(v["signal"], "SIGKILL");
        let v = parse(&events[5]);
        assert_eq!(v["proposal"], Value::Null);
        assert_eq!(v["token"], Value::Null);
    }

    #[test]
    fn text_lines_read_well() {
        let e = Event::Elected {
            proposal: "node-a".into(),
            token: 42,
            lease: "694d".into(),
            valid_until_mono_ns: 0,
        };
        assert_eq!(
            e.to_text("scheduler"),
            "elected scheduler token=42 proposal=node-a lease=694d"
        );
        let none = Event::Leader {
            proposal: None,
            token: None,
        };
        assert_eq!(none.to_text("s"), "leader s none");
        let campaigning = Event::Campaigning {
            proposal: "p".into(),
            lease: "1f".into(),
            ttl_ms: 2500,
        };
        assert_eq!(
            campaigning.to_text("s"),
            "campaigning s proposal=p lease=1f ttl=2500ms"
        );
        let spaced = Event::Leader {
            proposal: Some("my host".into()),
            token: Some(1),
        };
        assert_eq!(
            spaced.to_text("s"),
            r#"leader s token=1 proposal="my host""#
        );
    }

    #[test]
    fn loss_reasons_use_snake_case() {
        use tenure::LossReason as R;
        assert_eq!(reason_name(R::LeaseExpired), "lease_expired");
        assert_eq!(reason_name(R::DeadlineExceeded), "deadline_exceeded");
        assert_eq!(reason_name(R::EntryDeleted), "entry_deleted");
        assert_eq!(reason_name(R::Resigned), "resigned");
        assert_eq!(reason_name(R::Shutdown), "shutdown");
    }
}
