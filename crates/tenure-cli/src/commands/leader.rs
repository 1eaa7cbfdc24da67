//! `tenure leader <election>`: prints the current leader once; exit 1 if
//! there is none.

use crate::args::{GlobalArgs, ReadArgs};
use crate::output::Output;
use crate::{CliError, Exit};

/// Runs the command.
///
/// # Errors
/// Bad input (2), backend errors (3), a closed standard output (3).
pub async fn run(global: &GlobalArgs, args: &ReadArgs, out: &Output) -> Result<Exit, CliError> {
    let election = super::read_election(global, args).await?;
    let leader = election.leader().await?;
    out.emit(
        election.name().as_str(),
        &super::leader_event(leader.as_ref()),
    )
    .map_err(|e| CliError::new(Exit::Backend, format!("cannot write to stdout: {e}")))?;
    Ok(if leader.is_some() {
        Exit::Success
    } else {
        Exit::NoLeader
    })
}
