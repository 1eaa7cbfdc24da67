//! Signals to `tenure` itself: the requests to shut down cleanly, and
//! job control (`SIGTSTP`, as a terminal's Ctrl-Z sends it).

use std::sync::{Arc, Mutex};

use tenure::CancellationToken;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, watch};

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
/// `SIGQUIT`, `SIGUSR1`) from the moment it is installed (signals that
/// arrive before anyone waits are not lost).
///
/// A background task counts the signals. Each clone keeps its own place
/// in that count: [`recv`](Self::recv) resolves at the next signal this
/// clone has not seen yet, so a clone made before a term sees the signal
/// that ends it, and a second signal after that one is a second signal.
/// [`token`](Self::token) is cancelled at the first, before any `recv`
/// returns it.
#[derive(Clone, Debug)]
pub struct Shutdown {
    count: watch::Receiver<(u64, &'static str)>,
    seen: u64,
    first: CancellationToken,
}

impl Shutdown {
    /// Installs the handlers.
    ///
    /// # Errors
    /// When the handlers cannot be installed (no signal driver).
    pub fn install() -> Result<Shutdown, CliError> {
        let mut handlers = SHUTDOWN_SIGNALS
            .iter()
            .map(|&sig| Ok((install(SignalKind::from_raw(sig as i32))?, sig.as_str())))
            .collect::<Result<Vec<_>, CliError>>()?;
        let (tx, count) = watch::channel((0u64, "SIGTERM"));
        let first = CancellationToken::new();
        let cancel = first.clone();
        tokio::spawn(async move {
            loop {
                let waits = handlers
                    .iter_mut()
                    .map(|(h, name)| Box::pin(async move { h.recv().await.map(|()| *name) }));
                let (name, _, _) = futures::future::select_all(waits).await;
                // A handler's stream never ends while the runtime runs.
                let name = name.unwrap_or("SIGTERM");
                // The token first: whoever `recv`s this signal finds the
                // token already cancelled, so nothing that watches the token
                // (a run between two terms) can miss the signal.
                cancel.cancel();
                tx.send_modify(|(n, last)| {
                    *n += 1;
                    *last = name;
                });
            }
        });
        Ok(Shutdown {
            count,
            seen: 0,
            first,
        })
    }

    /// Resolves at the next shutdown signal this clone has not seen, with
    /// its name. Cancel-safe.
    pub async fn recv(&mut self) -> &'static str {
        let seen = self.seen;
        let now = self
            .count
            .wait_for(|(n, _)| *n > seen)
            .await
            .map(|now| *now);
        let (n, name) = match now {
            Ok(now) => now,
            // The counting task ended with the runtime: nothing comes.
            Err(_) => std::future::pending().await,
        };
        self.seen = n;
        name
    }

    /// Whether a signal has been received (by any clone).
    pub fn requested(&self) -> bool {
        self.count.borrow().0 > 0
    }

    /// A token cancelled at the first shutdown signal.
    pub fn token(&self) -> CancellationToken {
        self.first.clone()
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
