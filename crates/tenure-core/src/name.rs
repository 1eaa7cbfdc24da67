//! Validated election names.

use std::fmt;

use crate::{Error, Result};

/// Longest election name accepted, in bytes.
///
/// Chosen well below etcd's 1.5 MiB request limit and ZooKeeper's path
/// limits, so that a name valid for one backend is valid for all.
pub const MAX_ELECTION_NAME_LEN: usize = 256;

/// Segments that no name may use after its first segment: the
/// single-key strategy's leader node on ZooKeeper is `<election>/leader`,
/// so an election `x/leader` would be (or sit under) the leader node of
/// election `x`.
pub const RESERVED_SEGMENT: &str = "leader";

/// The first segment no name may start with: with the root `/`, the
/// election node would be ZooKeeper's own `/zookeeper` tree.
pub const RESERVED_FIRST_SEGMENT: &str = "zookeeper";

/// The name of an election, validated so that every backend can hold it.
///
/// One set of rules for every backend: a name valid for one is valid for
/// all, so an election can move from one backend to another and the
/// memory backend in unit tests accepts exactly what production will. A
/// name is a non-empty string of at most [`MAX_ELECTION_NAME_LEN`] bytes
/// made of `/`-separated segments (so it maps onto a ZooKeeper path and an
/// etcd key alike), where:
///
/// - no segment is empty, `.` or `..`;
/// - there is no whitespace at either end;
/// - no character is one ZooKeeper refuses in paths: control characters
///   (U+0000–U+001F, U+007F–U+009F), U+D800–U+F8FF (surrogates and the
///   private-use area) and U+FFF0–U+FFFF (specials, among them U+FFFD);
/// - the first segment is not `zookeeper` ([`RESERVED_FIRST_SEGMENT`]);
/// - no later segment is `leader` ([`RESERVED_SEGMENT`]), nor named like a
///   ZooKeeper queue candidate (`…latch-<digits>`, `…__lock__<digits>`):
///   a nested election must never be mistaken for an entry of its parent.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ElectionName(String);

/// Whether ZooKeeper refuses `c` in a path (`PathUtils.validatePath`).
fn zookeeper_refuses(c: char) -> bool {
    matches!(u32::from(c),
        0x0000..=0x001f | 0x007f..=0x009f | 0xd800..=0xf8ff | 0xfff0..=0xffff)
}

/// Whether `segment` reads as a candidate of one of the ZooKeeper layouts
/// (Curator `…latch-<digits>`, kazoo `…__lock__<digits>`).
fn looks_like_candidate(segment: &str) -> bool {
    let numbered = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    segment
        .rfind("latch-")
        .is_some_and(|i| numbered(&segment[i + "latch-".len()..]))
        || segment
            .find("__lock__")
            .is_some_and(|i| numbered(&segment[i + "__lock__".len()..]))
}

impl ElectionName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`Error::InvalidElectionName`] naming the rule the name breaks.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let mut segments = name.split('/');
        let first = segments.next().unwrap_or_default();
        let later: Vec<&str> = segments.collect();
        let reason = if name.is_empty() {
            Some("must not be empty")
        } else if name.len() > MAX_ELECTION_NAME_LEN {
            Some("longer than 256 bytes")
        } else if name.chars().any(char::is_control) {
            Some("contains a control character")
        } else if name.chars().any(zookeeper_refuses) {
            Some(
                "contains a character ZooKeeper refuses in paths \
                 (U+D800-U+F8FF private use, U+FFF0-U+FFFF specials such as U+FFFD)",
            )
        } else if name.trim() != name {
            Some("starts or ends with whitespace")
        } else if name.starts_with('/') || name.ends_with('/') {
            Some("must not start or end with '/'")
        } else if name.split('/').any(|s| s.is_empty()) {
            Some("contains an empty path segment ('//')")
        } else if name.split('/').any(|s| s == "." || s == "..") {
            Some("contains a '.' or '..' path segment")
        } else if first == RESERVED_FIRST_SEGMENT {
            Some("starts with the segment 'zookeeper', reserved by ZooKeeper")
        } else if later.contains(&RESERVED_SEGMENT) {
            Some(
                "has a segment 'leader' after the first: reserved for the \
                 single-key leader node of the enclosing election",
            )
        } else if later.iter().any(|s| looks_like_candidate(s)) {
            Some(
                "has a segment after the first named like a queue candidate \
                 ('...latch-<digits>' or '...__lock__<digits>')",
            )
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
        // Reserved words only where they collide.
        for ok in [
            "leader",
            "leader/x",
            "svc/leaders",
            "svc/zookeeper",
            "my-zookeeper",
            "latch-7",
            "svc/latch-x",
            "caf\u{e9}/\u{4e2d}",
        ] {
            assert!(ElectionName::new(ok).is_ok(), "{ok:?}");
        }
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
        for (bad, why) in [
            ("odd\u{e000}name", "ZooKeeper refuses"),
            ("odd\u{f8ff}", "ZooKeeper refuses"),
            ("odd\u{fffd}", "ZooKeeper refuses"),
            ("odd\u{fffe}", "ZooKeeper refuses"),
            ("odd\u{ffff}", "ZooKeeper refuses"),
            ("odd\u{85}", "control"),
            ("zookeeper", "'zookeeper'"),
            ("zookeeper/quota", "'zookeeper'"),
            ("nest/leader", "'leader'"),
            ("nest/leader/x", "'leader'"),
            ("jobs/_c_1b2-latch-0000000003", "queue candidate"),
            ("jobs/ab12__lock__0000000003", "queue candidate"),
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
