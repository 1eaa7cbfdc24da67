//! Noticing that nobody reads standard output any more.
//!
//! `tenure observe E | head -1` must exit once `head` has its line, not
//! at the next leader change: a closed pipe is otherwise noticed only
//! when the next event is written. A pipe's write end reports an error
//! condition to `poll` as soon as its read end is closed, so a thread
//! parked in `poll` on standard output (asking for no event: only errors
//! and hang-ups wake it) learns it at once. On a terminal or a file it
//! never wakes, and costs one parked thread.

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tokio::sync::oneshot;

/// Resolves when standard output can no longer be written (its reader
/// went away). Pending forever when that cannot be watched.
pub async fn closed() {
    let (tx, rx) = oneshot::channel();
    // A plain thread, not `spawn_blocking`: the runtime must not wait for
    // it at shutdown; it ends with the process.
    let spawned = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(move || {
            let stdout = std::io::stdout();
            let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
            loop {
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(n) if n > 0 => {
                        let _ = tx.send(());
                        return;
                    }
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return,
                }
            }
        });
    match spawned {
        Ok(_) => {
            if rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        Err(_) => std::future::pending::<()>().await,
    }
}
