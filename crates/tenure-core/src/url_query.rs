//! Options carried in a backend URL's query string, such as
//! `etcd://10.0.0.1:2379/app/?user=svc&password=s3cret&request_timeout=2s`.
//!
//! Each backend takes the keys it knows, one by one; [`UrlQuery::finish`]
//! then rejects whatever is left, naming the unknown key, so a typo never
//! passes silently.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::credentials::TlsFiles;
use crate::{Error, Result};

/// The `key=value` pairs of a URL's query string, percent-decoded.
#[derive(Debug)]
pub struct UrlQuery {
    url: String,
    pairs: Vec<(String, String)>,
}

impl UrlQuery {
    /// Splits `url` into the part before `?` and its parsed query.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for a pair without `=`, an empty key, a
    /// key given twice, or a value that is not valid percent-encoded UTF-8.
    pub fn split(url: &str) -> Result<(&str, UrlQuery)> {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, q),
            None => (url, ""),
        };
        let mut q = UrlQuery {
            url: url.to_owned(),
            pairs: Vec::new(),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| q.bad(format!("option `{pair}` has no value (key=value)")))?;
            let key = q.decode(k)?;
            let value = q.decode(v)?;
            if key.is_empty() {
                return Err(q.bad("an option has an empty key".into()));
            }
            if q.pairs.iter().any(|(seen, _)| *seen == key) {
                return Err(q.bad(format!("option `{key}` is given twice")));
            }
            q.pairs.push((key, value));
        }
        Ok((base, q))
    }

    /// Takes the value of `key`, if given.
    pub fn take(&mut self, key: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(i).1)
    }

    /// Takes `user` with its password: given inline as `password`, or
    /// read (once, now) from the file `password_file`, which keeps it out
    /// of the command line and of `ps`.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] when a user comes without a password or a
    /// password without a user, or both `password` and `password_file`
    /// are given; [`Error::CredentialFile`] when the password file cannot
    /// be read or is empty.
    pub fn take_credentials(&mut self) -> Result<Option<(String, String)>> {
        let user = self.take("user");
        let inline = self.take("password");
        let file = self.take("password_file");
        let password = match (inline, file) {
            (Some(_), Some(_)) => {
                return Err(self.bad("give `password` or `password_file`, not both".into()))
            }
            (Some(p), None) => Some(p),
            (None, Some(path)) => Some(crate::credentials::read_password_file(Path::new(&path))?),
            (None, None) => None,
        };
        match (user, password) {
            (Some(user), Some(password)) => Ok(Some((user, password))),
            (None, None) => Ok(None),
            _ => Err(self.bad("`user` and `password` (or `password_file`) go together".into())),
        }
    }

    /// Takes the TLS file options `ca`, `cert` and `key` (paths to PEM
    /// files); `None` when none is given. The files are not read here:
    /// [`TlsFiles::load`] does that.
    pub fn take_tls_files(&mut self) -> Option<TlsFiles> {
        let files = TlsFiles {
            ca: self.take("ca").map(PathBuf::from),
            cert: self.take("cert").map(PathBuf::from),
            key: self.take("key").map(PathBuf::from),
        };
        (files != TlsFiles::default()).then_some(files)
    }

    /// Takes `key` as a duration such as `500ms`, `2s` or `1m`.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] naming the key when the value is not a
    /// duration or is zero.
    pub fn take_duration(&mut self, key: &str) -> Result<Option<Duration>> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        match humantime::parse_duration(&value) {
            Ok(d) if !d.is_zero() => Ok(Some(d)),
            Ok(_) => Err(self.bad(format!("option `{key}` must be positive"))),
            Err(e) => Err(self.bad(format!(
                "option `{key}={value}` is not a duration like 500ms or 2s: {e}"
            ))),
        }
    }

    /// Succeeds if every option was taken.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] naming the first unknown key and listing
    /// the `known` ones.
    pub fn finish(self, known: &[&str]) -> Result<()> {
        match self.pairs.first() {
            None => Ok(()),
            Some((key, _)) => Err(self.bad(format!(
                "unknown option `{key}` (this backend takes: {})",
                known.join(", ")
            ))),
        }
    }

    /// The error for this URL, with `reason`.
    pub fn bad(&self, reason: String) -> Error {
        Error::UnsupportedUrl {
            url: redact(&self.url),
            reason,
        }
    }

    fn decode(&self, s: &str) -> Result<String> {
        let plus_as_space = s.replace('+', " ");
        percent_encoding::percent_decode_str(&plus_as_space)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| self.bad(format!("`{s}` is not valid percent-encoded UTF-8")))
    }
}

/// The URL with any `password=` value replaced, for error messages and
/// logs.
pub fn redact(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == "password" => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn options_are_taken_decoded_and_leftovers_named() {
        let (base, mut q) = UrlQuery::split(
            "etcd://h:1/p?user=a%20b&password=x%26y&request_timeout=1500ms&colour=red",
        )
        .unwrap();
        assert_eq!(base, "etcd://h:1/p");
        assert_eq!(q.take("user").as_deref(), Some("a b"));
        assert_eq!(q.take("password").as_deref(), Some("x&y"));
        assert_eq!(
            q.take_duration("request_timeout").unwrap(),
            Some(Duration::from_millis(1500))
        );
        let e = q.finish(&["user", "password"]).unwrap_err().to_string();
        assert!(e.contains("unknown option `colour`"), "{e}");
        assert!(e.contains("user, password"), "{e}");
        assert!(!e.contains("x%26y"), "the password must not be echoed: {e}");
    }

    #[test]
    fn malformed_queries_are_rejected_with_the_reason() {
        for (url, expect) in [
            ("zk://h?layout", "has no value"),
            ("zk://h?=x", "empty key"),
            ("zk://h?a=1&a=2", "given twice"),
            ("zk://h?a=%ff", "percent-encoded"),
        ] {
            let e = UrlQuery::split(url).unwrap_err().to_string();
            assert!(e.contains(expect), "{url}: {e}");
        }
        let (_, mut q) = UrlQuery::split("zk://h?t=soon&z=0s").unwrap();
        let e = q.take_duration("t").unwrap_err().to_string();
        assert!(e.contains("`t=soon` is not a duration"), "{e}");
        let e = q.take_duration("z").unwrap_err().to_string();
        assert!(e.contains("must be positive"), "{e}");
    }

    #[test]
    fn no_query_means_no_options() {
        let (base, q) = UrlQuery::split("memory://x").unwrap();
        assert_eq!(base, "memory://x");
        q.finish(&[]).unwrap();
        assert_eq!(
            redact("zk://h/r?password=s&user=u"),
            "zk://h/r?password=***&user=u"
        );
    }
}
