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

/// Campaigns that ended in an error, counted across their tasks (how many,
/// and the first), so that a step that then fails (a queue that never
/// fills) says why. Clones share the count.
#[derive(Clone, Debug, Default)]
pub struct Failures(std::sync::Arc<std::sync::Mutex<(usize, Option<String>)>>);

impl Failures {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Option<String>)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one failure, described by `what` if it is the first.
    pub fn record(&self, what: impl FnOnce() -> String) {
        let mut failed = self.lock();
        failed.0 += 1;
        failed.1.get_or_insert_with(what);
    }

    /// `result`, its error naming the failures recorded so far (if any).
    ///
    /// # Errors
    /// `result`'s error.
    pub fn explain<T>(&self, result: Result<T>) -> Result<T> {
        match (result, &*self.lock()) {
            (Err(e), (n, Some(first))) => Err(fail(format!(
                "{e} ({n} campaigns failed; the first: {first})"
            ))),
            (r, _) => r,
        }
    }
}
