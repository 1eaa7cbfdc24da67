//! The bench's one error type: a message, possibly wrapping a cause.

/// Any failure of a benchmark step; the message says which step.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// Result of a benchmark step.
pub type Result<T> = std::result::Result<T, BenchError>;

/// An error with `message`.
pub fn fail(message: impl Into<String>) -> BenchError {
    message.into().into()
}

/// Adds what the bench was doing to an error.
pub trait Context<T> {
    /// Prefixes the error with `what`.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| fail(format!("{}: {e}", what())))
    }
}

/// Awaits `f` for at most `within`, failing with `what` on timeout.
pub async fn within<T>(
    within: std::time::Duration,
    what: impl FnOnce() -> String,
    f: impl std::future::Future<Output = T>,
) -> Result<T> {
    tokio::time::timeout(within, f)
        .await
        .map_err(|_| fail(format!("{}: not within {within:?}", what())))
}
