//! `--log-level`: tracing to standard error, so standard output carries
//! only events.

use tracing_subscriber::EnvFilter;

use crate::CliError;

/// Installs the subscriber with `filter` (`warn`, `info`, `tenure=debug`...).
///
/// # Errors
/// A usage error naming the filter when it does not parse.
pub fn init(filter: &str) -> Result<(), CliError> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| CliError::usage(format!("invalid --log-level {filter:?}: {e}")))?;
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    // Already installed (a test calling twice) is fine.
    drop(installed);
    Ok(())
}
