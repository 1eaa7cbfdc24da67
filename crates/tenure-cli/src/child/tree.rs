//! A process's descendants, read from `/proc`, and signalling them.
//!
//! The supervisor is a child subreaper: every process the command starts,
//! however it detaches itself (`setsid`, double fork, another process
//! group), stays its descendant, because orphans are re-parented to it
//! instead of to PID 1. So "the command's whole tree" is exactly "every
//! descendant of the supervisor", which this module finds by walking the
//! parent links of `/proc/<pid>/stat`.

use std::collections::HashMap;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Every live (not zombie) descendant of `root`.
pub fn descendants(root: Pid) -> Vec<Pid> {
    descendants_with_group(root)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

/// Every live descendant of `root`, with its process group id.
fn descendants_with_group(root: Pid) -> Vec<(Pid, i32)> {
    let mut children: HashMap<i32, Vec<(i32, i32)>> = HashMap::new();
    for (pid, stat) in processes() {
        if stat.state != 'Z' && stat.state != 'X' {
            children
                .entry(stat.ppid)
                .or_default()
                .push((pid, stat.pgrp));
        }
    }
    let mut found = Vec::new();
    let mut next = vec![root.as_raw()];
    while let Some(parent) = next.pop() {
        for &(child, pgrp) in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
            found.push((Pid::from_raw(child), pgrp));
            next.push(child);
        }
    }
    found
}

/// Sends `signal` to every descendant of `root` outside process group
/// `signalled_group` (which the caller signalled as a whole: a second copy
/// could run a `trap` twice); returns how many got it.
pub fn signal_descendants(root: Pid, signal: Signal, signalled_group: Option<Pid>) -> usize {
    let skip = signalled_group.map(Pid::as_raw);
    descendants_with_group(root)
        .into_iter()
        .filter(|&(_, pgrp)| Some(pgrp) != skip)
        .map(|(pid, _)| pid)
        // ESRCH: it ended meanwhile; EPERM: it made itself another user's
        // (setuid), out of our reach.
        .filter(|&pid| kill(pid, signal).is_ok())
        .count()
}

/// What `/proc/<pid>/stat` says about one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    state: char,
    ppid: i32,
    pgrp: i32,
}

/// Every process of the system with its stat (processes that end while
/// being read are skipped).
fn processes() -> impl Iterator<Item = (i32, Stat)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            Some((pid, parse_stat(&stat)?))
        })
}

/// State and parent from `/proc/<pid>/stat`
/// (`pid (comm) state ppid ...`; `comm` may hold spaces and parens).
fn parse_stat(stat: &str) -> Option<Stat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Stat { state, ppid, pgrp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_odd_names() {
        assert_eq!(
            parse_stat("42 (sh) S 1 42 42 0"),
            Some(Stat {
                state: 'S',
                ppid: 1,
                pgrp: 42
            })
        );
        assert_eq!(
            parse_stat("7 (a) b (c)) Z 9 9 9"),
            Some(Stat {
                state: 'Z',
                ppid: 9,
                pgrp: 9
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn finds_and_signals_a_grandchild() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let child_pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        // `sh` forks `sleep` after it starts: wait for it (bounded).
        let mut found = Vec::new();
        for _ in 0..1000 {
            found = descendants(child_pid);
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(found.len(), 1, "no grandchild: {found:?}");
        // The grandchild is in our process group: skipping it spares it.
        let ours = nix::unistd::getpgrp();
        assert_eq!(
            signal_descendants(child_pid, Signal::SIGCONT, Some(ours)),
            0
        );
        assert_eq!(signal_descendants(child_pid, Signal::SIGKILL, None), 1);
        // `wait` returns once `sleep` is killed.
        assert!(child.wait().unwrap().success());
    }
}
