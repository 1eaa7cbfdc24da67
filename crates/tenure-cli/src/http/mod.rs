//! `--listen ADDR`: a small HTTP server beside `campaign` and `observe`,
//! for the probes and scrapers that judge a sidecar.
//!
//! | path | answer |
//! |---|---|
//! | `/healthz` | 200 while the backend session works; 503 once a lease could not be renewed (or, for `observe`, the leader could not be confirmed) |
//! | `/readyz` | `campaign`: 200 only while this candidate leads; `observe`: 200 while a leader is confirmed; else 503 |
//! | `/metrics` | the library's metrics in the Prometheus text format, labelled by election |
//!
//! `observe --all` adds its status page at `/` ([`page`]).
//!
//! The address the server bound (port 0 picks a free one) is printed as
//! a `listening` event before anything else.

pub mod health;
pub mod metrics;
pub mod page;

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use tokio::task::JoinHandle;

pub use health::Status;

use crate::output::{Event, Output};
use crate::CliError;

/// A running server; dropping it stops the server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The probes and metrics routes answering from `status`.
///
/// `election` labels the series that have none of their own (a
/// `campaign` serves one election; `None` for `observe --all`).
pub fn routes(status: &Status, election: Option<&str>) -> Router {
    let exporter = metrics::install(election);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(status.clone())
        .merge(
            Router::new()
                .route("/metrics", get(metrics::render))
                .with_state(exporter),
        )
}

/// Binds `addr`, prints the `listening` event for `election` on `out`, and
/// serves `router` in the background until the [`Server`] is dropped.
///
/// # Errors
/// A usage error (exit 2) naming the address when it cannot be bound (in
/// use, not a local address, no permission).
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    election: &str,
    out: &Output,
) -> Result<Server, CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::usage(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::usage(format!("cannot listen on {addr}: {e}")))?;
    out.emit_or_log(
        election,
        &Event::Listening {
            addr: bound.to_string(),
        },
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "the HTTP server stopped");
        }
    });
    Ok(Server { addr: bound, task })
}

/// Starts what `--listen` asks for, if it asks: the [`Status`] the command
/// reports to (always returned, cheap when nothing serves it) and the
/// server, kept alive by the caller.
///
/// # Errors
/// As [`serve`].
pub async fn start(
    listen: Option<SocketAddr>,
    election: &str,
    label_election: bool,
    out: &Output,
) -> Result<(Status, Option<Server>), CliError> {
    start_with(listen, election, label_election, out, Router::new()).await
}

/// As [`start`], serving `extra` routes too.
///
/// # Errors
/// As [`serve`].
pub async fn start_with(
    listen: Option<SocketAddr>,
    election: &str,
    label_election: bool,
    out: &Output,
    extra: Router,
) -> Result<(Status, Option<Server>), CliError> {
    let status = Status::new();
    let Some(addr) = listen else {
        return Ok((status, None));
    };
    let router = routes(&status, label_election.then_some(election)).merge(extra);
    let server = serve(addr, router, election, out).await?;
    Ok((status, Some(server)))
}
