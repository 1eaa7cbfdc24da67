//! `SIGINT` / `SIGTERM`: the requests to shut down cleanly.

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::CliError;

/// Listens for `SIGINT` and `SIGTERM` from the moment it is created
/// (signals that arrive before anyone waits are not lost).
#[derive(Debug)]
pub struct Shutdown {
    int: Signal,
    term: Signal,
    received: Option<&'static str>,
}

impl Shutdown {
    /// Installs the handlers.
    ///
    /// # Errors
    /// When the handlers cannot be installed (no signal driver).
    pub fn install() -> Result<Shutdown, CliError> {
        let install = |kind| {
            signal(kind).map_err(|e| {
                CliError::new(
                    crate::Exit::Backend,
                    format!("cannot install signal handlers: {e}"),
                )
            })
        };
        Ok(Shutdown {
            int: install(SignalKind::interrupt())?,
            term: install(SignalKind::terminate())?,
            received: None,
        })
    }

    /// Resolves at the next `SIGINT` or `SIGTERM`, with its name.
    pub async fn recv(&mut self) -> &'static str {
        let name = tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        };
        self.received = Some(name);
        name
    }

    /// Whether a signal has been received.
    pub fn requested(&self) -> bool {
        self.received.is_some()
    }
}
