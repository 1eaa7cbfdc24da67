//! One module per command; [`dispatch`] picks one.

pub mod campaign;
pub mod leader;
pub mod list;
pub mod observe;
pub mod observe_all;

use tenure::{Election, ElectionName};
use tracing::Instrument;

use crate::args::{Cli, Command, GlobalArgs, ReadArgs};
use crate::output::{Event, Output};
use crate::{backend, logging, CliError, Exit};

/// Runs the command `cli` names, printing events to `out`.
///
/// # Errors
/// Whatever ends the command early, with its exit code.
pub async fn dispatch(cli: Cli, out: &Output) -> Result<Exit, CliError> {
    logging::init(&cli.global.log_level, cli.global.log_format)?;
    match cli.command {
        // Every log line of these names the election (and, inside a
        // term, the lease: see `campaign`).
        Command::Campaign(args) => {
            let span = tracing::info_span!("campaign", election = %args.election);
            campaign::run(&cli.global, args, out).instrument(span).await
        }
        Command::Observe(args) => {
            let span = tracing::info_span!("observe", election = %args.name());
            observe::run(&cli.global, &args, out).instrument(span).await
        }
        Command::Leader(args) => leader::run(&cli.global, &args, out).await,
        Command::List(args) => list::run(&cli.global, &args, out).await,
    }
}

/// Validates the election name and the backend URL (no network), then
/// connects and builds the election handle for a read-only command.
///
/// # Errors
/// Usage errors for bad input (checked first), backend errors after.
pub async fn read_election(global: &GlobalArgs, args: &ReadArgs) -> Result<Election, CliError> {
    let name = ElectionName::new(args.election.clone())?;
    let (url, _) = backend::resolve(global)?;
    let backend = backend::connect(&url, None, global.request_timeout).await?;
    let mut builder = Election::builder(backend, name.as_str())
        .strategy(args.strategy.into())
        .max_staleness(args.max_staleness);
    if let Some(t) = global.request_timeout {
        builder = builder.request_timeout(t);
    }
    Ok(builder.build()?)
}

/// The event for what `observe` knows: `leader`, or `unknown`.
pub fn observation_event(observation: &tenure::Observation) -> Event {
    match observation {
        tenure::Observation::Unknown { unconfirmed_for } => Event::Unknown {
            unconfirmed_for_ms: u64::try_from(unconfirmed_for.as_millis()).unwrap_or(u64::MAX),
        },
        other => leader_event(other.leader()),
    }
}

/// The `leader` event for what `observe` or `leader` read.
pub fn leader_event(leader: Option<&tenure::LeaderInfo>) -> Event {
    Event::Leader {
        proposal: leader.map(|l| String::from_utf8_lossy(&l.value).into_owned()),
        token: leader.map(|l| l.token),
    }
}

/// Prints one line per observation of `observations` (each with its
/// election's name) until `SIGINT`/`SIGTERM`, or until nobody reads
/// standard output any more (`tenure observe | head -1`); `seen` hears of
/// each observation and its event first (health, the status page).
///
/// # Errors
/// The stream ending: observers repair broken watches themselves and never
/// end on their own, so that is a backend failure (3).
pub async fn print_observations<S, N>(
    mut observations: S,
    shutdown: &mut crate::signals::Shutdown,
    out: &Output,
    mut seen: impl FnMut(&str, &tenure::Observation, &Event),
) -> Result<Exit, CliError>
where
    S: futures::Stream<Item = (N, tenure::Observation)> + Unpin,
    N: AsRef<str>,
{
    use futures::StreamExt;
    let reader_gone = crate::stdout_gone::closed();
    tokio::pin!(reader_gone);
    loop {
        tokio::select! {
            next = observations.next() => match next {
                Some((name, observation)) => {
                    let event = observation_event(&observation);
                    seen(name.as_ref(), &observation, &event);
                    if let Err(e) = out.emit(name.as_ref(), &event) {
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
