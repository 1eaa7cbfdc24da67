//! The child's process group: signalling it, and telling whether any
//! process of it still runs.

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// A process group, by id (the id of the process that leads it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessGroup(Pid);

impl ProcessGroup {
    /// The group led by process `pid`.
    pub fn of(pid: u32) -> Option<ProcessGroup> {
        i32::try_from(pid)
            .ok()
            .filter(|&p| p > 1)
            .map(|p| ProcessGroup(Pid::from_raw(p)))
    }

    /// Sends `signal` to every process of the group. Returns whether any
    /// process received it.
    pub fn signal(self, signal: Signal) -> bool {
        match killpg(self.0, signal) {
            Ok(()) => true,
            Err(Errno::ESRCH) => false,
            Err(e) => {
                tracing::warn!(pgid = %self.0, %signal, error = %e, "cannot signal the process group");
                false
            }
        }
    }

    /// Whether a process of the group still runs. Zombies do not count:
    /// a grandchild that exited waits for its new parent to reap it, which
    /// may take any time, but it runs no code.
    pub fn alive(self) -> bool {
        match killpg(self.0, None) {
            Err(Errno::ESRCH) => false,
            // Members exist (or exist but are not ours to signal): look
            // closer for one that is not a zombie.
            _ => self.has_running_member(),
        }
    }

    fn has_running_member(self) -> bool {
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return true; // cannot tell: assume the worst
        };
        procs
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter_map(|stat| parse_stat(&stat))
            .any(|(state, pgrp)| pgrp == self.0.as_raw() && state != 'Z' && state != 'X')
    }
}

/// State and process group from `/proc/<pid>/stat`
/// (`pid (comm) state ppid pgrp ...`; `comm` may hold spaces and parens).
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_odd_names() {
        assert_eq!(parse_stat("42 (sh) S 1 42 42 0"), Some(('S', 42)));
        assert_eq!(parse_stat("7 (a) b (c)) Z 1 9 9"), Some(('Z', 9)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn refuses_groups_that_are_not_one() {
        assert_eq!(ProcessGroup::of(0), None);
        assert_eq!(ProcessGroup::of(1), None);
        assert!(ProcessGroup::of(1234).is_some());
    }

    #[test]
    fn our_own_group_runs() {
        let me = nix::unistd::getpgrp();
        assert!(ProcessGroup(me).alive());
    }
}
