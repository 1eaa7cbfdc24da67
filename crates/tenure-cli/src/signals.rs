//! Signals to `tenure` itself: the requests to shut down cleanly, and
//! job control (`SIGTSTP`, as a terminal's Ctrl-Z sends it).

use std::sync::{Arc, Mutex};

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::CliError;

/// The signals that ask for a clean shutdown, with their names: the usual
/// two, plus `SIGHUP` (the terminal went away), `SIGQUIT` (Ctrl-\) and
/// `SIGUSR1`, which would otherwise kill `tenure` on the spot, without
/// stopping the command or resigning.
const SHUTDOWN_SIGNALS: [nix::sys::signal::Signal; 5] = {
    use nix::sys::signal::Signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1};
    [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1]
};

fn install(kind: SignalKind) -> Result<Signal, CliError> {
    signal(kind).map_err(|e| {
        CliError::new(
            crate::Exit::Backend,
            format!("cannot install signal handlers: {e}"),
        )
    })
}

/// Listens for the shutdown signals (`SIGINT`, `SIGTERM`, `SIGHUP`,
/// `SIGQUIT`, `SIGUSR1`) from the moment it is created (signals that
/// arrive before anyone waits are not lost).
#[derive(Debug)]
pub struct Shutdown {
    handlers: Vec<(Signal, &'static str)>,
    received: Option<&'static str>,
}

impl Shutdown {
    /// Installs the handlers.
    ///
    /// # Errors
    /// When the handlers cannot be installed (no signal driver).
    pub fn install() -> Result<Shutdown, CliError> {
        let handlers = SHUTDOWN_SIGNALS
            .iter()
            .map(|&sig| Ok((install(SignalKind::from_raw(sig as i32))?, sig.as_str())))
            .collect::<Result<_, CliError>>()?;
        Ok(Shutdown {
            handlers,
            received: None,
        })
    }

    /// Resolves at the next shutdown signal, with its name. Cancel-safe.
    pub async fn recv(&mut self) -> &'static str {
        let waits = self
            .handlers
            .iter_mut()
            .map(|(h, name)| Box::pin(async move { h.recv().await.map(|()| *name) }));
        let (name, _, _) = futures::future::select_all(waits).await;
        // A handler's stream never ends while the runtime runs.
        let name = name.unwrap_or("SIGTERM");
        self.received = Some(name);
        name
    }

    /// Whether a signal has been received.
    pub fn requested(&self) -> bool {
        self.received.is_some()
    }
}

/// `SIGTSTP` handling. `tenure` catches it so that it can stop the
/// command's tree first (it lives in process groups of its own, out of the
/// terminal's reach), then stops itself with `SIGSTOP`; `SIGCONT` resumes
/// it where it stopped. While a command runs, [`JobControl::delegate`]
/// hands the requests to the code that supervises it; otherwise `tenure`
/// just stops.
#[derive(Clone, Debug)]
pub struct JobControl {
    delegate: Arc<Mutex<Option<mpsc::Sender<()>>>>,
}

impl JobControl {
    /// Installs the `SIGTSTP` handler (a background task).
    ///
    /// # Errors
    /// When the handler cannot be installed (no signal driver).
    pub fn install() -> Result<JobControl, CliError> {
        let mut tstp = install(SignalKind::from_raw(
            nix::sys::signal::Signal::SIGTSTP as i32,
        ))?;
        let delegate: Arc<Mutex<Option<mpsc::Sender<()>>>> = Arc::default();
        let shared = delegate.clone();
        tokio::spawn(async move {
            while tstp.recv().await.is_some() {
                let handed = shared
                    .lock()
                    .ok()
                    .and_then(|d| d.as_ref().map(|tx| tx.try_send(()).is_ok()))
                    .unwrap_or(false);
                if !handed {
                    stop_self();
                }
            }
        });
        Ok(JobControl { delegate })
    }

    /// Hands `SIGTSTP` to the caller until the returned [`Suspensions`]
    /// is dropped.
    pub fn delegate(&self) -> Suspensions {
        let (tx, rx) = mpsc::channel(1);
        if let Ok(mut d) = self.delegate.lock() {
            *d = Some(tx);
        }
        Suspensions {
            rx,
            delegate: self.delegate.clone(),
        }
    }
}

/// `SIGTSTP` requests handed to the code running the command: it stops
/// the command's tree, then calls [`stop_self`].
#[derive(Debug)]
pub struct Suspensions {
    rx: mpsc::Receiver<()>,
    delegate: Arc<Mutex<Option<mpsc::Sender<()>>>>,
}

impl Suspensions {
    /// Resolves at the next `SIGTSTP`. Cancel-safe.
    pub async fn recv(&mut self) {
        if self.rx.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Suspensions {
    fn drop(&mut self) {
        if let Ok(mut d) = self.delegate.lock() {
            *d = None;
        }
        // A request that came while nobody listened is honoured now.
        if self.rx.try_recv().is_ok() {
            stop_self();
        }
    }
}

/// Stops this process (`SIGSTOP`, which cannot be caught); returns once
/// it is continued (`SIGCONT`).
pub fn stop_self() {
    if let Err(e) = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP) {
        tracing::warn!(error = %e, "cannot stop on SIGTSTP");
    }
}
