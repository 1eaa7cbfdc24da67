//! `--log-level` and `--log-format`: tracing to standard error, so that
//! standard output carries only events.
//!
//! Every span is recorded whatever the level filter says, so that a log
//! line always names what it belongs to: the election and, inside a term,
//! the lease (`campaign{election=..}:term{lease=..}` in text, the `spans`
//! list in JSON). The filter applies to the lines themselves. Colours are
//! used only when standard error is a terminal: a file or a log collector
//! gets plain text.

use std::io::IsTerminal;

use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::args::LogFormat;
use crate::CliError;

/// Installs the subscriber: lines passing `filter` (`warn`, `info`,
/// `tenure=debug`...) in `format`, on standard error.
///
/// # Errors
/// A usage error naming the filter when it does not parse.
pub fn init(filter: &str, format: LogFormat) -> Result<(), CliError> {
    let lines = EnvFilter::try_new(filter)
        .map_err(|e| CliError::usage(format!("invalid --log-level {filter:?}: {e}")))?;
    let filter = filter_fn(|meta| meta.is_span()).or(lines);
    let layer: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_target(false)
            .with_current_span(false)
            .with_span_list(true)
            .boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
    // Already installed (a test calling twice) is fine.
    drop(installed);
    Ok(())
}
