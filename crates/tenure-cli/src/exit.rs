//! Exit codes, and the error type that carries one.
//!
//! | code | [`Exit`] | when |
//! |---|---|---|
//! | 0 | [`Exit::Success`] | success; clean shutdown after `SIGINT`/`SIGTERM` |
//! | 1 | [`Exit::NoLeader`] | `tenure leader` found no leader |
//! | 2 | [`Exit::Usage`] | bad arguments or input: election name, TTL, URL, missing backend feature |
//! | 3 | [`Exit::Backend`] | backend unreachable, credentials rejected, timeout, other backend errors |
//! | 4 | [`Exit::Lost`] | `campaign --once` lost leadership |
//! | 126 / 127 | [`Exit::Child`] | `campaign -- CMD`: CMD is not executable / not found |
//! | CMD's | [`Exit::Child`] | `campaign --once -- CMD` and CMD ended by itself: its code, or 128 + signal |

use std::fmt;

/// How the process ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success, or a clean shutdown on `SIGINT`/`SIGTERM`.
    Success,
    /// 1: `tenure leader` found no leader.
    NoLeader,
    /// 2: usage error or invalid input.
    Usage,
    /// 3: the backend is unreachable, refused us, timed out or failed.
    Backend,
    /// 4: leadership lost under `campaign --once`.
    Lost,
    /// The child's own exit code (`campaign --once -- CMD`), 128 + signal
    /// when a signal killed it, 126/127 when it could not be started.
    Child(i32),
}

/// Exit code of a command that could not be executed (shell convention).
pub const CANNOT_EXECUTE: i32 = 126;
/// Exit code of a command that was not found (shell convention).
pub const NOT_FOUND: i32 = 127;

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Exit::Success => 0,
            Exit::NoLeader => 1,
            Exit::Usage => 2,
            Exit::Backend => 3,
            Exit::Lost => 4,
            Exit::Child(code) => code,
        }
    }

    /// The exit code mirroring a child's end: its code, or 128 + the
    /// number of the signal that killed it (as shells report it).
    pub fn from_child(code: Option<i32>, signal: Option<i32>) -> Exit {
        match (code, signal) {
            (Some(code), _) => Exit::Child(code),
            (None, Some(sig)) => Exit::Child(128 + sig),
            // Neither: cannot happen on Unix; report a generic failure.
            (None, None) => Exit::Child(1),
        }
    }
}

/// An error that ends the program: one line for stderr and an exit code.
#[derive(Debug)]
pub struct CliError {
    exit: Exit,
    message: String,
}

impl CliError {
    /// An error with an explicit exit code.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    /// The exit code to end with.
    pub fn exit(&self) -> Exit {
        self.exit
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The exit code for one of tenure's errors: invalid input is a usage
/// error (2), everything the backend or the network did is 3.
pub fn for_error(e: &tenure::Error) -> Exit {
    use tenure::Error as E;
    match e {
        E::InvalidElectionName { .. }
        | E::InvalidTtl { .. }
        | E::InvalidConfig { .. }
        | E::UnsupportedUrl { .. }
        | E::CredentialFile { .. } => Exit::Usage,
        _ => Exit::Backend,
    }
}

impl From<tenure::Error> for CliError {
    fn from(e: tenure::Error) -> Self {
        let mut message = e.to_string();
        // Keep the cause chain on the one line: "...: connection refused".
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = std::error::Error::source(s);
        }
        CliError::new(for_error(&e), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!(Exit::Success.code(), 0);
        assert_eq!(Exit::NoLeader.code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        assert_eq!(Exit::Backend.code(), 3);
        assert_eq!(Exit::Lost.code(), 4);
        assert_eq!(Exit::Child(42).code(), 42);
    }

    #[test]
    fn child_status_maps_like_a_shell() {
        assert_eq!(Exit::from_child(Some(0), None).code(), 0);
        assert_eq!(Exit::from_child(Some(7), None).code(), 7);
        assert_eq!(Exit::from_child(None, Some(15)).code(), 143);
        assert_eq!(Exit::from_child(None, Some(9)).code(), 137);
    }

    #[test]
    fn invalid_input_is_usage_and_backend_trouble_is_3() {
        let name = tenure::ElectionName::new("").unwrap_err();
        assert_eq!(CliError::from(name).exit(), Exit::Usage);
        let ttl = tenure::backend::check_ttl(
            Duration::from_millis(1),
            (Duration::from_secs(1), Duration::from_secs(60)),
        )
        .unwrap_err();
        let e = CliError::from(ttl);
        assert_eq!(e.exit(), Exit::Usage);
        assert!(e.to_string().contains("out of range"), "{e}");
        let url = tenure::Scheme::of("redis://h:1").unwrap_err();
        assert_eq!(CliError::from(url).exit(), Exit::Usage);
        let timeout = tenure::Error::Timeout {
            backend: "etcd",
            operation: "grant lease",
            after: Duration::from_secs(1),
        };
        assert_eq!(CliError::from(timeout).exit(), Exit::Backend);
        let unreachable = tenure::Error::Unreachable {
            backend: "etcd",
            endpoint: "127.0.0.1:1".into(),
            source: "connection refused".into(),
        };
        let e = CliError::from(unreachable);
        assert_eq!(e.exit(), Exit::Backend);
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }
}
