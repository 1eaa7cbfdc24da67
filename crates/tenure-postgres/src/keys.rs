//! Key names: the etcd layout, so that the same key names the same thing
//! on every backend.

use tenure_core::{ElectionName, Error, LeaseId, Result};

/// The longest key the `entries` table holds (bytes): a change
/// notification carries the key and must stay under PostgreSQL's 8000
/// byte payload limit.
pub const MAX_KEY_LEN: usize = 4096;

/// The election's name as a key: its leader key, and with `/` appended
/// the prefix of its queue. `%` becomes `%25` and `/` becomes `%2F`, so a
/// nested election's keys never fall under its parent's `<name>/`.
pub(crate) fn election_key(election: &ElectionName) -> String {
    let name = election.as_str();
    if !name.contains(['%', '/']) {
        return name.to_owned();
    }
    name.replace('%', "%25").replace('/', "%2F")
}

/// `<election key>/<lease id in lower-case hex>`.
pub(crate) fn queue_key(election: &ElectionName, lease: LeaseId) -> String {
    format!("{}/{:x}", election_key(election), lease.0)
}

/// The election whose key space holds `key`, decoded.
pub(crate) fn election_of(key: &str) -> String {
    let head = key.split('/').next().unwrap_or(key);
    head.replace("%2F", "/").replace("%25", "%")
}

/// Checks an application key for a guarded write.
///
/// # Errors
/// [`Error::InvalidConfig`] for an empty key or one longer than
/// [`MAX_KEY_LEN`] bytes.
pub(crate) fn check_app_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::InvalidConfig {
            field: "key",
            reason: format!(
                "an application key must be 1 to {MAX_KEY_LEN} bytes, got {} bytes",
                key.len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn etcd_layout() {
        let e = ElectionName::new("jobs").unwrap();
        assert_eq!(queue_key(&e, LeaseId(0xabc)), "jobs/abc");
        let e = ElectionName::new("svc/jobs").unwrap();
        assert_eq!(queue_key(&e, LeaseId(0xabc)), "svc%2Fjobs/abc");
        assert_eq!(election_of("svc%2Fjobs/abc"), "svc/jobs");
        assert!(check_app_key("").is_err());
        assert!(check_app_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(check_app_key("jobs-data").is_ok());
    }
}
