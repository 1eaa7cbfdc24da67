//! Choosing and connecting the backend from `--backend` / `TENURE_BACKEND`.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tenure::{ConnectOptions, DynBackend, Scheme};

use crate::args::GlobalArgs;
use crate::CliError;

/// The message when no backend was given.
pub const NO_BACKEND: &str = "no backend: pass --backend URL or set TENURE_BACKEND";

/// Checks that `url` was given and names a known scheme, without
/// connecting (so that bad input fails before any network wait).
///
/// # Errors
/// Usage errors: no URL, an unknown or malformed scheme.
pub fn check(url: Option<&str>) -> Result<(&str, Scheme), CliError> {
    let url = url
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| CliError::usage(NO_BACKEND))?;
    let scheme = Scheme::of(url)?;
    Ok((url, scheme))
}

/// The backend URL of `global`, checked as [`check`] does, with the
/// credential and TLS flags added as the URL options they stand for.
///
/// # Errors
/// As [`check`]; a flag whose option the URL already gives is a usage
/// error naming both.
pub fn resolve(global: &GlobalArgs) -> Result<(String, Scheme), CliError> {
    let (url, scheme) = check(global.backend.as_deref())?;
    let url = with_options(url, &global.security.url_options())?;
    Ok((url, scheme))
}

/// Characters kept as they are in an option value: paths stay readable.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// `url` with `options` appended to its query string.
fn with_options(url: &str, options: &[(&str, &str)]) -> Result<String, CliError> {
    let mut url = url.to_owned();
    for (key, value) in options {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        if query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(*key))
        {
            return Err(CliError::usage(format!(
                "--{} and the URL option `{key}=` both given: use one",
                flag_of(key)
            )));
        }
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(key);
        url.push('=');
        url.extend(utf8_percent_encode(value, VALUE));
    }
    Ok(url)
}

/// The flag that fills URL option `key`.
fn flag_of(key: &str) -> String {
    match key {
        "ca" => "cacert".to_owned(),
        other => other.replace('_', "-"),
    }
}

/// Connects to `url` for elections with `ttl` (the backend sizes its
/// own session to match, see [`tenure::ConnectOptions::ttl`]). `timeout`,
/// when given, bounds connecting and each request the backend makes on its
/// own (etcd, ZooKeeper).
///
/// # Errors
/// Usage errors for a bad URL or a backend not compiled in (the message
/// names the cargo feature); backend errors (exit 3) when it cannot be
/// reached.
pub async fn connect(
    url: &str,
    ttl: Option<Duration>,
    timeout: Option<Duration>,
) -> Result<DynBackend, CliError> {
    let mut options = ConnectOptions::new();
    if let Some(ttl) = ttl {
        options = options.ttl(ttl);
    }
    if let Some(t) = timeout {
        options = options.timeout(t);
    }
    let backend = tenure::connect_with(url, &options).await?;
    let url = tenure::backend::url_query::redact(url);
    tracing::debug!(%url, kind = backend.kind(), "connected");
    Ok(backend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Exit;

    #[test]
    fn missing_backend_is_a_usage_error_with_a_hint() {
        for url in [None, Some(""), Some("  ")] {
            let e = check(url).unwrap_err();
            assert_eq!(e.exit(), Exit::Usage);
            assert_eq!(e.to_string(), NO_BACKEND);
        }
    }

    #[test]
    fn unknown_scheme_is_a_usage_error_naming_the_url() {
        let e = check(Some("redis://h:1")).unwrap_err();
        assert_eq!(e.exit(), Exit::Usage);
        assert!(e.to_string().contains("redis://h:1"), "{e}");
        assert!(e.to_string().contains("unknown scheme"), "{e}");
    }

    #[test]
    fn flags_become_url_options() {
        let url = with_options(
            "etcds://h:2379/app/",
            &[("ca", "/etc/ca dir/ca.pem"), ("password_file", "/run/s&p")],
        )
        .unwrap();
        assert_eq!(
            url,
            "etcds://h:2379/app/?ca=/etc/ca%20dir/ca.pem&password_file=/run/s%26p"
        );
        let url = with_options("zks://h:1?layout=kazoo", &[("cert", "/c.pem")]).unwrap();
        assert_eq!(url, "zks://h:1?layout=kazoo&cert=/c.pem");
        let e = with_options("etcds://h:1?ca=/a.pem", &[("ca", "/b.pem")]).unwrap_err();
        assert_eq!(e.exit(), Exit::Usage);
        assert!(e.to_string().contains("--cacert"), "{e}");
    }

    #[test]
    fn known_schemes_pass() {
        assert_eq!(check(Some("memory://")).unwrap().1, Scheme::Memory);
        assert_eq!(check(Some("etcd://h:2379")).unwrap().1, Scheme::Etcd);
        assert_eq!(check(Some("zk://h:2181")).unwrap().1, Scheme::ZooKeeper);
    }
}
