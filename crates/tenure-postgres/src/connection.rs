//! The backend's command connection: opened with retries at start, shared
//! by every request (the driver pipelines them), and replaced when it
//! breaks.

use std::sync::Arc;
use std::time::Duration;

use tenure_core::retry::AttemptError;
use tenure_core::{ConnectRetry, Error, Result};
use tokio::sync::Mutex;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Row};
use tracing::debug;

use crate::error::{self, KIND};
use crate::options::PostgresOptions;
use crate::schema;

/// Opens one connection within `timeout` and spawns the task that drives
/// it. The task ends when the connection closes.
pub(crate) async fn open(
    config: &tokio_postgres::Config,
    endpoint: &str,
    timeout: Duration,
) -> Result<(
    Client,
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
)> {
    match tokio::time::timeout(timeout, config.connect(NoTls)).await {
        Ok(Ok(pair)) => Ok(pair),
        Ok(Err(e)) => Err(error::map("connect", endpoint, e)),
        Err(_) => Err(Error::Unreachable {
            backend: KIND,
            endpoint: endpoint.to_owned(),
            source: format!("no connection within {timeout:?}").into(),
        }),
    }
}

/// Opens a connection and makes sure the schema is installed, retried
/// with [`ConnectRetry`] until the connect timeout runs out (each attempt
/// bounded by the time left); permanent failures (credentials, a missing
/// database, a schema of another version) end it at once.
pub(crate) async fn open_with_retry(options: &PostgresOptions) -> Result<Client> {
    let transient_or_not = |e: Error| {
        if e.is_transient() {
            AttemptError::Transient(Box::new(e))
        } else {
            AttemptError::Permanent(e)
        }
    };
    let attempt = |_| async {
        let (mut client, connection) =
            open(&options.config, &options.endpoint, options.connect_timeout)
                .await
                .map_err(transient_or_not)?;
        spawn_driver(connection);
        schema::install(
            &mut client,
            &options.schema,
            options.create_schema,
            &options.endpoint,
        )
        .await
        .map_err(transient_or_not)?;
        Ok(client)
    };
    ConnectRetry::new(KIND, options.endpoint.clone(), options.connect_timeout)
        .run(attempt)
        .await
}

/// Drives a connection that delivers no notifications we need.
pub(crate) fn spawn_driver(
    connection: tokio_postgres::Connection<
        tokio_postgres::Socket,
        tokio_postgres::tls::NoTlsStream,
    >,
) {
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!(error = %e, "postgres connection ended");
        }
    });
}

/// The shared command connection, reopened on demand after it broke.
pub(crate) struct Connections {
    config: tokio_postgres::Config,
    endpoint: String,
    request_timeout: Duration,
    current: Mutex<Option<Arc<Client>>>,
}

impl Connections {
    pub(crate) fn new(options: &PostgresOptions, first: Client) -> Connections {
        Connections {
            config: options.config.clone(),
            endpoint: options.endpoint.clone(),
            request_timeout: options.request_timeout,
            current: Mutex::new(Some(Arc::new(first))),
        }
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The open connection, or a new one (one attempt, bounded by the
    /// request timeout) when the last one closed.
    async fn client(&self) -> Result<Arc<Client>> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        *current = None;
        let (client, connection) = open(&self.config, &self.endpoint, self.request_timeout).await?;
        spawn_driver(connection);
        debug!(endpoint = %self.endpoint, "reconnected to postgres");
        let client = Arc::new(client);
        *current = Some(client.clone());
        Ok(client)
    }

    /// Runs one statement (one round trip, no prepared statement kept on
    /// the server) within the request timeout.
    ///
    /// # Errors
    /// [`Error::Timeout`]; the mapped driver error. A closed connection is
    /// dropped, so that the next request opens a new one.
    pub(crate) async fn query(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>> {
        let run = async {
            let client = self.client().await?;
            client
                .query_typed(sql, params)
                .await
                .map_err(|e| error::map(operation, &self.endpoint, e))
        };
        match tokio::time::timeout(self.request_timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(error::timeout(operation, self.request_timeout)),
        }
    }

    /// Like [`query`](Self::query), for exactly one row.
    pub(crate) async fn query_one(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Row> {
        let mut rows = self.query(operation, sql, params).await?;
        match rows.len() {
            1 => rows
                .pop()
                .ok_or_else(|| error::protocol(operation, "no row")),
            n => Err(error::protocol(
                operation,
                format!("expected one row, got {n}"),
            )),
        }
    }
}
