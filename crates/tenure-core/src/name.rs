//! Validated election names.

use std::fmt;

use crate::{Error, Result};

/// Longest election name accepted, in bytes.
///
/// Chosen well below etcd's 1.5 MiB request limit and ZooKeeper's path
/// limits, so that a name valid for one backend is valid for all.
pub const MAX_ELECTION_NAME_LEN: usize = 256;

/// The name of an election, validated so that every backend can hold it.
///
/// A name is a non-empty string of at most [`MAX_ELECTION_NAME_LEN`]
/// bytes, with no control characters, no whitespace at either end, and
/// made of `/`-separated segments that are neither empty nor `.` / `..`
/// (so it maps onto a ZooKeeper path and an etcd key prefix alike).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ElectionName(String);

impl ElectionName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`Error::InvalidElectionName`] naming the rule the name breaks.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("must not be empty")
        } else if name.len() > MAX_ELECTION_NAME_LEN {
            Some("longer than 256 bytes")
        } else if name.chars().any(char::is_control) {
            Some("contains a control character")
        } else if name.trim() != name {
            Some("starts or ends with whitespace")
        } else if name.starts_with('/') || name.ends_with('/') {
            Some("must not start or end with '/'")
        } else if name.split('/').any(|s| s.is_empty()) {
            Some("contains an empty path segment ('//')")
        } else if name.split('/').any(|s| s == "." || s == "..") {
            Some("contains a '.' or '..' path segment")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidElectionName { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ElectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ElectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for ElectionName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for ElectionName {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        Self::new(value)
    }
}

impl TryFrom<String> for ElectionName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_nested_names() {
        assert_eq!(
            ElectionName::new("scheduler").unwrap().as_str(),
            "scheduler"
        );
        assert!(ElectionName::new("svc/shard-7").is_ok());
    }

    #[test]
    fn rejects_bad_names_with_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("a\u{0}b", "control"),
            (" a", "whitespace"),
            ("/a", "'/'"),
            ("a//b", "empty path"),
            ("a/../b", "'..'"),
        ] {
            let err = ElectionName::new(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidElectionName { .. }), "{bad:?}");
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
        let long = "x".repeat(MAX_ELECTION_NAME_LEN + 1);
        assert!(ElectionName::new(long)
            .unwrap_err()
            .to_string()
            .contains("longer"));
    }
}
