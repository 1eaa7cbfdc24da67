//! `tenure observe <election>`: one line per leader change (including "no
//! leader"), the current leader first, and an `unknown` line when the
//! backend has not confirmed the leader within `--max-staleness`, until
//! `SIGINT`/`SIGTERM` or until nobody reads standard output any more.

use futures::StreamExt;

use crate::args::{GlobalArgs, ObserveArgs};
use crate::http::Status;
use crate::output::Output;
use crate::signals::Shutdown;
use crate::{CliError, Exit};

/// Runs the command. Broken watches and lost history are repaired by the
/// library (re-read, resume); a slow reader skips to the latest leader.
///
/// # Errors
/// Bad input (2), backend errors at start-up (3), an address `--listen`
/// cannot bind (2).
pub async fn run(global: &GlobalArgs, args: &ObserveArgs, out: &Output) -> Result<Exit, CliError> {
    if args.all {
        return super::observe_all::run(global, args, out).await;
    }
    let mut shutdown = Shutdown::install()?;
    let read = args.read_args();
    let election = tokio::select! {
        e = super::read_election(global, &read) => e?,
        _ = shutdown.recv() => return Ok(Exit::Success),
    };
    let name = election.name().as_str();
    let (status, _server) = crate::http::start(args.listen.listen, name, false, out).await?;
    follow(&election, &status, &mut shutdown, out).await
}

async fn follow(
    election: &tenure::Election,
    status: &Status,
    shutdown: &mut Shutdown,
    out: &Output,
) -> Result<Exit, CliError> {
    let name = election.name().as_str();
    let leaders = election.observe().map(|observation| (name, observation));
    super::print_observations(leaders, shutdown, out, |_, _, event| status.saw(event)).await
}
