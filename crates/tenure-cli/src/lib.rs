//! The `tenure` command-line tool, as a library so that its tests (and the
//! benchmark and fault-campaign tools) can share its types.
//!
//! ```text
//! tenure campaign <election> [<proposal>] [-- CMD ARGS...]   campaign; run CMD only while leader
//! tenure observe  <election>                                 one line per leader change
//! tenure observe  --all [<prefix>]                           the same for every election under the prefix
//! tenure leader   <election>                                 the current leader (exit 1 if none)
//! tenure list     <election>                                 the candidates in queue order
//! ```
//!
//! The backend comes from `--backend URL` or the `TENURE_BACKEND`
//! environment variable: `memory://[name]`, `etcd://host:port[,..][/prefix]`,
//! `etcds://...`, `zk://host:port[,..][/root]`,
//! `postgres://user@host:port/db[?schema=...]`.
//!
//! # Output
//!
//! Standard output carries events only, one per line, flushed at once:
//! readable text by default, or with `--output json` exactly one JSON
//! object per line. Every object has `event`, `election` and `mono_ns`
//! (`CLOCK_MONOTONIC` in nanoseconds, comparable across the processes of
//! one machine); [`output::Event`] lists the events and their fields.
//! Logs (`--log-level`, `--log-format text|json`) and errors go to
//! standard error.
//!
//! # `--listen ADDR`
//!
//! `campaign` and `observe` serve `/healthz`, `/readyz` and `/metrics`
//! over HTTP ([`http`]); `observe --all` adds a status page at `/`.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; clean shutdown after `SIGINT`, `SIGTERM`, `SIGHUP`, `SIGQUIT` or `SIGUSR1` (the child stopped, leadership resigned) |
//! | 1 | `tenure leader`: the election has no leader |
//! | 2 | usage or invalid input: bad arguments, election name, TTL out of range, unknown URL scheme, backend not compiled in |
//! | 3 | backend unreachable, credentials rejected, timeout, or another backend error |
//! | 4 | `campaign --once`: leadership was lost |
//! | 126, 127 | `campaign -- CMD`: CMD is not executable / not found (checked before campaigning) |
//! | CMD's | `campaign --once -- CMD`: CMD ended on its own; its exit code, or 128 + signal number if a signal killed it |
//!
//! A code from CMD can collide with tenure's own (a CMD that exits 3);
//! the events tell them apart (`child_exited` precedes the exit).
//!
//! # The command under `campaign`
//!
//! [`child`] starts it only once elected, under a supervisor process (a
//! child subreaper, so that nothing the command starts can leave its
//! tree), with `TENURE_ELECTION`, `TENURE_PROPOSAL`, `TENURE_TOKEN` (the
//! fencing token) and `TENURE_LEASE` in its environment. The whole tree
//! gets `SIGTERM`, then `SIGKILL` at the local deadline plus `--grace`
//! ([`grace`]: it fits in the safety margin), the instant leadership is
//! lost at the deadline; `SIGKILL` at once when the backend took
//! leadership away; `SIGTERM` (then `SIGKILL` after `--grace`) before
//! resigning on a shutdown signal (`SIGINT`, `SIGTERM`, `SIGHUP`,
//! `SIGQUIT`, `SIGUSR1`) or when the command ends and leaves processes
//! behind. The supervisor kills the tree by itself when `tenure` dies,
//! however it dies, and at the deadline plus the grace if `tenure` is
//! frozen. `SIGTSTP` stops the tree, then `tenure`; once continued,
//! `tenure` resumes the tree only if it still leads. With `--output json`
//! the command's standard output goes to standard error.
//!
//! See [`exit`] for the mapping from tenure's errors.

pub mod args;
pub mod backend;
pub mod child;
pub mod clock;
pub mod commands;
pub mod exit;
pub mod grace;
pub mod http;
pub mod logging;
pub mod output;
pub mod signals;
pub mod stdout_gone;

pub use exit::{CliError, Exit};

/// Runs the parsed command line `cli`: the whole program after argument
/// parsing. Returns the process exit code; errors are printed on standard
/// error as one line, `tenure: <what was wrong>`.
pub async fn run(cli: args::Cli) -> i32 {
    let out = output::Output::stdout(cli.global.output);
    let result = commands::dispatch(cli, &out).await;
    match result {
        Ok(exit) => exit.code(),
        Err(e) => {
            eprintln!("tenure: {e}");
            e.exit().code()
        }
    }
}
