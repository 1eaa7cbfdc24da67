//! `/metrics`: what tenure records through the `metrics` facade, in the
//! Prometheus text format.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often histograms drop samples past their window; the exporter
/// needs this done by whoever serves it.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder for the whole process and returns the
/// handle that renders it. `election`, when given, labels every series
/// that has no `election` label of its own (the lease and keep-alive
/// series, which the library records per backend): a `campaign` process
/// serves one election. Returns `None` when a recorder was installed
/// already (the process serves what that one records).
pub fn install(election: Option<&str>) -> Option<PrometheusHandle> {
    let mut builder = PrometheusBuilder::new();
    if let Some(e) = election {
        builder = builder.add_global_label("election", e);
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if let Err(e) = metrics::set_global_recorder(recorder) {
        tracing::warn!(error = %e, "a metrics recorder is already installed");
        return None;
    }
    tenure::metrics::describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Some(handle)
}

/// `GET /metrics`.
pub(super) async fn render(State(handle): State<Option<PrometheusHandle>>) -> impl IntoResponse {
    let body = handle.map(|h| h.render()).unwrap_or_default();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}
