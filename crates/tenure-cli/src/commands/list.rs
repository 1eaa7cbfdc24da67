//! `tenure list <election>`: the candidates in queue order, leader first.

use crate::args::{GlobalArgs, ReadArgs};
use crate::output::{Event, Output};
use crate::{CliError, Exit};

/// Runs the command.
///
/// # Errors
/// Bad input (2), backend errors (3), a closed standard output (3).
pub async fn run(global: &GlobalArgs, args: &ReadArgs, out: &Output) -> Result<Exit, CliError> {
    let election = super::read_election(global, args).await?;
    let name = election.name().as_str();
    for (position, entry) in election.candidates().await?.iter().enumerate() {
        let event = Event::Candidate {
            position,
            proposal: String::from_utf8_lossy(&entry.value).into_owned(),
            lease: entry.lease.to_string(),
            created: entry.created,
        };
        out.emit(name, &event)
            .map_err(|e| CliError::new(Exit::Backend, format!("cannot write to stdout: {e}")))?;
    }
    Ok(Exit::Success)
}
