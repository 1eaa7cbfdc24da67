//! `tenure observe --all [<prefix>]`: one line per leader change of every
//! election whose name starts with the prefix (the current leader of each
//! first), with the same `unknown` rule as `observe`; with `--listen`, a
//! status page of them all at `/`.

use futures::StreamExt;

use crate::args::{GlobalArgs, ObserveArgs};
use crate::http::page::{self, Board};
use crate::output::Output;
use crate::signals::Shutdown;
use crate::{backend, CliError, Exit};

/// Runs the command.
///
/// # Errors
/// Bad input (2): a prefix no election name can start with, an address
/// `--listen` cannot bind; backend errors at start-up (3), a backend that
/// cannot list its elections included.
pub async fn run(global: &GlobalArgs, args: &ObserveArgs, out: &Output) -> Result<Exit, CliError> {
    let mut shutdown = Shutdown::install()?;
    let prefix = args.name();
    let (url, _) = backend::resolve(global)?;
    let start = async {
        let backend = backend::connect(&url, None, global.request_timeout).await?;
        let mut builder =
            tenure::ObserveAll::new(backend, prefix).max_staleness(args.max_staleness);
        if let Some(t) = global.request_timeout {
            builder = builder.request_timeout(t);
        }
        Ok::<_, CliError>(builder.start().await?)
    };
    let all = tokio::select! {
        a = start => a?,
        _ = shutdown.recv() => return Ok(Exit::Success),
    };
    let board = Board::new();
    let (status, _server) =
        crate::http::start_with(args.listen.listen, prefix, false, out, page::routes(&board))
            .await?;
    // Nothing to confirm yet: healthy and ready until an election says
    // otherwise.
    status.set_both(true, true);
    let observations = all.map(|item| (item.election, item.observation));
    super::print_observations(observations, &mut shutdown, out, |name, observation, _| {
        board.record(name, observation);
        let confirmed = board.all_confirmed();
        status.set_both(confirmed, confirmed);
    })
    .await
}
