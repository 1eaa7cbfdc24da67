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
    let mut all = tokio::select! {
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
    let reader_gone = crate::stdout_gone::closed();
    tokio::pin!(reader_gone);
    loop {
        tokio::select! {
            next = all.next() => match next {
                Some(item) => {
                    let name = item.election.as_str();
                    board.record(name, &item.observation);
                    let confirmed = board.all_confirmed();
                    status.set_both(confirmed, confirmed);
                    if let Err(e) = out.emit(name, &super::observation_event(&item.observation)) {
                        tracing::debug!(error = %e, "stdout closed; stopping");
                        return Ok(Exit::Success);
                    }
                }
                None => {
                    return Err(CliError::new(Exit::Backend, "the observer stopped unexpectedly"));
                }
            },
            _ = shutdown.recv() => return Ok(Exit::Success),
            () = &mut reader_gone => {
                tracing::debug!("stdout closed; stopping");
                return Ok(Exit::Success);
            }
        }
    }
}
