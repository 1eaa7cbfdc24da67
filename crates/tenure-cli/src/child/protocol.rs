//! The lines `tenure` and its supervisor exchange over their socket: one
//! message per line, words separated by spaces.

use std::fmt;

/// From `tenure` to the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// `deadline <ns>`: the latest `CLOCK_MONOTONIC` instant (in
    /// nanoseconds) at which the command may still run; at that instant the
    /// supervisor kills the whole tree, whatever `tenure` does.
    Deadline(u64),
    /// `term`: `SIGTERM` to the whole tree.
    Term,
    /// `stop`: `SIGSTOP` to the whole tree (`tenure` is being suspended).
    Stop,
    /// `cont`: `SIGCONT` to the whole tree, unless the deadline has passed
    /// (then the tree is killed instead).
    Cont,
    /// `kill`: `SIGKILL` to the whole tree until none of it is left; then
    /// the supervisor exits.
    Kill,
}

impl Order {
    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Option<Order> {
        let mut words = line.split(' ');
        let order = match (words.next()?, words.next()) {
            ("deadline", Some(ns)) => Order::Deadline(ns.parse().ok()?),
            ("term", None) => Order::Term,
            ("stop", None) => Order::Stop,
            ("cont", None) => Order::Cont,
            ("kill", None) => Order::Kill,
            _ => return None,
        };
        words.next().is_none().then_some(order)
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Order::Deadline(ns) => write!(f, "deadline {ns}"),
            Order::Term => f.write_str("term"),
            Order::Stop => f.write_str("stop"),
            Order::Cont => f.write_str("cont"),
            Order::Kill => f.write_str("kill"),
        }
    }
}

/// From the supervisor to `tenure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// `started <pid>`: the command runs as process (and group) `pid`.
    Started(u32),
    /// `exited code <n> <left>` or `exited signal <n> <left>`: the
    /// command's own process ended; `left` processes of its tree still run.
    Exited {
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
        /// How many of its descendants were still running.
        left: usize,
    },
    /// `expired`: the deadline passed; the supervisor killed the tree by
    /// itself (`tenure` did not, in time).
    Expired,
}

impl Report {
    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Option<Report> {
        let words: Vec<&str> = line.split(' ').collect();
        Some(match words.as_slice() {
            ["started", pid] => Report::Started(pid.parse().ok()?),
            ["exited", kind, n, left] => {
                let n: i32 = n.parse().ok()?;
                let left = left.parse().ok()?;
                match *kind {
                    "code" => Report::Exited {
                        code: Some(n),
                        signal: None,
                        left,
                    },
                    "signal" => Report::Exited {
                        code: None,
                        signal: Some(n),
                        left,
                    },
                    _ => return None,
                }
            }
            ["expired"] => Report::Expired,
            _ => return None,
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Started(pid) => write!(f, "started {pid}"),
            Report::Exited {
                signal: Some(n),
                left,
                ..
            } => write!(f, "exited signal {n} {left}"),
            Report::Exited { code, left, .. } => {
                write!(f, "exited code {} {left}", code.unwrap_or(-1))
            }
            Report::Expired => f.write_str("expired"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_round_trip() {
        for o in [
            Order::Deadline(123),
            Order::Term,
            Order::Stop,
            Order::Cont,
            Order::Kill,
        ] {
            assert_eq!(Order::parse(&o.to_string()), Some(o));
        }
        for bad in ["", "deadline", "deadline x", "term now", "KILL"] {
            assert_eq!(Order::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reports_round_trip() {
        for r in [
            Report::Started(42),
            Report::Exited {
                code: Some(3),
                signal: None,
                left: 0,
            },
            Report::Exited {
                code: None,
                signal: Some(9),
                left: 2,
            },
            Report::Expired,
        ] {
            assert_eq!(Report::parse(&r.to_string()), Some(r));
        }
        for bad in ["", "started", "exited code 1", "exited core 1 0"] {
            assert_eq!(Report::parse(bad), None, "{bad:?}");
        }
    }
}
