//! How to reach etcd: [`EtcdOptions`] (and [`TlsConfig`] with the `tls`
//! feature).

use std::fmt;
use std::time::Duration;

use tenure_core::{Error, Result};

/// Default of [`EtcdOptions::writes_in_flight`].
pub const DEFAULT_WRITES_IN_FLIGHT: usize = 64;

/// Connection settings for [`EtcdBackend::connect`](crate::EtcdBackend::connect).
///
/// ```
/// use std::time::Duration;
/// use tenure_etcd::EtcdOptions;
///
/// let options = EtcdOptions::new(["http://127.0.0.1:2379"])
///     .prefix("/my-app/")
///     .connect_timeout(Duration::from_secs(2))
///     .user("app", "secret");
/// ```
#[derive(Clone)]
pub struct EtcdOptions {
    pub(crate) endpoints: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) writes_in_flight: usize,
    pub(crate) user: Option<(String, String)>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsConfig>,
}

impl fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("EtcdOptions");
        d.field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("writes_in_flight", &self.writes_in_flight)
            // Never print the password.
            .field("user", &self.user.as_ref().map(|(u, _)| u));
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls.is_some());
        d.finish()
    }
}

impl EtcdOptions {
    /// Settings for a cluster reachable at `endpoints` (`http://host:port`,
    /// `https://host:port`, or `host:port` which means `http://`, or
    /// `https://` when [`tls`](Self::tls) is set).
    ///
    /// Defaults: no key prefix, 5 s connect timeout, 5 s request timeout,
    /// [`DEFAULT_WRITES_IN_FLIGHT`] writes in flight, no authentication,
    /// no TLS.
    pub fn new<I, S>(endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EtcdOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: String::new(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            writes_in_flight: DEFAULT_WRITES_IN_FLIGHT,
            user: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Parses `etcd://host:port[,host:port...][/prefix][?options]` (plain)
    /// or `etcds://...` (TLS; needs the `tls` feature). A path becomes the
    /// key prefix, e.g. `etcd://127.0.0.1:2379/my-app/` uses the prefix
    /// `my-app/`.
    ///
    /// Options:
    /// - `user` with `password` (percent-encoded) or `password_file` (a
    ///   file holding the password, read now, so it never shows in `ps`);
    /// - on `etcds://` only: `ca` (PEM file of the CA to verify the server
    ///   with; without it the system's trusted roots are used), `cert` and
    ///   `key` (PEM files of a client certificate and its key, for mutual
    ///   TLS) and `server_name` (the name the server certificate must
    ///   carry, when it differs from the host in the URL). Server
    ///   certificates are always verified;
    /// - `connect_timeout` and `request_timeout` (`500ms`, `2s`, ...);
    /// - `writes_in_flight` (a positive count: see
    ///   [`writes_in_flight`](Self::writes_in_flight)).
    ///
    /// E.g. `etcds://10.0.0.1:2379/app/?ca=/etc/etcd/ca.pem&cert=/etc/app/client.pem&key=/etc/app/client-key.pem`
    /// or `etcd://10.0.0.1:2379?user=svc&password_file=/run/secrets/etcd`.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for other schemes, an empty host list, an
    /// unknown or malformed option, a user without a password, or TLS
    /// options on `etcd://`; [`Error::CredentialFile`] naming a password or
    /// PEM file that cannot be read or does not hold what it should;
    /// [`Error::InvalidConfig`] for `cert` without `key` or the reverse.
    pub fn from_url(url: &str) -> Result<Self> {
        const KNOWN: [&str; 10] = [
            "user",
            "password",
            "password_file",
            "ca",
            "cert",
            "key",
            "server_name",
            "connect_timeout",
            "request_timeout",
            "writes_in_flight",
        ];
        let (url_base, mut query) = tenure_core::url_query::UrlQuery::split(url)?;
        let bad = |reason: &str| Error::UnsupportedUrl {
            url: tenure_core::url_query::redact(url),
            reason: reason.to_owned(),
        };
        let url = url_base;
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected etcd://host:port[,host:port][/prefix]"))?;
        let secure = match scheme {
            "etcd" | "etcd+http" => false,
            "etcds" | "etcd+https" => true,
            _ => return Err(bad("scheme must be etcd:// or etcds://")),
        };
        let (hosts, prefix) = match rest.split_once('/') {
            Some((h, p)) => (h, p),
            None => (rest, ""),
        };
        let scheme = if secure { "https" } else { "http" };
        let endpoints: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("{scheme}://{h}"))
            .collect();
        if endpoints.is_empty() {
            return Err(bad("no host given"));
        }
        #[cfg(not(feature = "tls"))]
        if secure {
            return Err(bad(
                "etcds:// needs the `tls` feature of tenure-etcd (on by default)",
            ));
        }
        let mut options = EtcdOptions::new(endpoints).prefix(prefix);
        let files = query.take_tls_files();
        let server_name = query.take("server_name");
        if !secure && (files.is_some() || server_name.is_some()) {
            return Err(bad(
                "the TLS options `ca`, `cert`, `key` and `server_name` need etcds://",
            ));
        }
        #[cfg(not(feature = "tls"))]
        let _ = (files, server_name);
        #[cfg(feature = "tls")]
        if secure {
            let mut tls = match &files {
                Some(files) => TlsConfig::from_pem(files.load()?),
                None => TlsConfig::new(),
            };
            if let Some(name) = server_name {
                tls = tls.domain_name(name);
            }
            options = options.tls(tls);
        }
        if let Some((user, password)) = query.take_credentials()? {
            options = options.user(user, password);
        }
        if let Some(t) = query.take_duration("connect_timeout")? {
            options = options.connect_timeout(t);
        }
        if let Some(t) = query.take_duration("request_timeout")? {
            options = options.request_timeout(t);
        }
        if let Some(n) = query.take("writes_in_flight") {
            match n.parse::<usize>() {
                Ok(n) if n > 0 => options = options.writes_in_flight(n),
                _ => {
                    return Err(query.bad(format!(
                        "option `writes_in_flight={n}` must be a positive whole number"
                    )))
                }
            }
        }
        query.finish(&KNOWN)?;
        Ok(options)
    }

    /// Namespaces every key under `prefix` (like etcd's `namespace`
    /// package): the election `jobs` lives at `<prefix>jobs/<lease>`. Keys
    /// that tenure hands out and takes ([`Entry::key`](tenure_core::Entry),
    /// [`get`](tenure_core::CoordinationBackend::get), watches, guarded
    /// writes) are relative to the prefix. Empty by default, which is what
    /// `etcdctl elect` uses.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long [`connect`](crate::EtcdBackend::connect) may take to reach
    /// the cluster (default 5 s). Failed attempts (refused, dropped, no
    /// answer) are retried with jittered exponential back-off until this
    /// runs out; then it fails with [`Error::Unreachable`] naming the
    /// endpoints, the number of attempts and the last cause. It never
    /// hangs.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Deadline of each request (default 5 s); [`Error::Timeout`] after it.
    /// The election driver applies its own, usually shorter, deadlines on
    /// top.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many writes (lease grants and revokes, creates, updates,
    /// deletes) one connection keeps in flight at most (default
    /// [`DEFAULT_WRITES_IN_FLIGHT`]); more wait their turn, within their
    /// request timeout.
    ///
    /// Why: etcd answers a keep-alive only once it has applied every
    /// write committed before it, and it answers the keep-alives of one
    /// stream one at a time. Ten thousand candidates campaigning at once
    /// on one connection would put ten thousand writes in its apply queue:
    /// the keep-alives behind them then miss their deadlines and every
    /// lease is lost, and etcd refuses writes with "too many requests"
    /// once the queue passes 5,000. A bound keeps that queue, and so the
    /// wait of each keep-alive, short; etcd still batches the writes in
    /// flight into few raft rounds, so a burst takes no longer overall.
    pub fn writes_in_flight(mut self, writes: usize) -> Self {
        self.writes_in_flight = writes;
        self
    }

    /// Authenticates as `user` with `password` (etcd's auth must be
    /// enabled on the server).
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Talks TLS to the cluster.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The endpoints with a scheme, as given to the client.
    pub(crate) fn normalized_endpoints(&self) -> Vec<String> {
        #[cfg(feature = "tls")]
        let default_scheme = if self.tls.is_some() { "https" } else { "http" };
        #[cfg(not(feature = "tls"))]
        let default_scheme = "http";
        self.endpoints
            .iter()
            .map(|e| {
                if e.contains("://") {
                    e.clone()
                } else {
                    format!("{default_scheme}://{e}")
                }
            })
            .collect()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.endpoints.is_empty() {
            return invalid("endpoints", "at least one endpoint is needed");
        }
        if self.endpoints.iter().any(|e| e.trim().is_empty()) {
            return invalid("endpoints", "an endpoint is empty");
        }
        if self.connect_timeout.is_zero() {
            return invalid("connect_timeout", "must be positive");
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be positive");
        }
        if self.writes_in_flight == 0 {
            return invalid("writes_in_flight", "must be at least 1");
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            if self.endpoints.iter().any(|e| e.starts_with("http://")) {
                return invalid(
                    "endpoints",
                    "TLS is configured but an endpoint is http://; use https:// or host:port",
                );
            }
            tls.validate()?;
        }
        #[cfg(not(feature = "tls"))]
        if self.endpoints.iter().any(|e| e.starts_with("https://")) {
            return invalid(
                "endpoints",
                "https:// needs the `tls` feature of tenure-etcd (on by default)",
            );
        }
        Ok(())
    }
}

/// TLS settings (PEM-encoded), for [`EtcdOptions::tls`].
///
/// The server's certificate is always verified: against the CA given with
/// [`ca_certificate`](Self::ca_certificate), or else the system's trusted
/// roots, and against the endpoint's host (or
/// [`domain_name`](Self::domain_name)). There is no way to turn that off.
///
/// ```no_run
/// # fn demo() -> tenure_core::Result<()> {
/// use std::path::PathBuf;
/// use tenure_core::credentials::TlsFiles;
/// use tenure_etcd::{EtcdOptions, TlsConfig};
///
/// let files = TlsFiles {
///     ca: Some(PathBuf::from("/etc/etcd/ca.pem")),
///     cert: Some(PathBuf::from("/etc/app/client.pem")),
///     key: Some(PathBuf::from("/etc/app/client-key.pem")),
/// };
/// let options = EtcdOptions::new(["10.0.0.1:2379"]).tls(TlsConfig::from_pem(files.load()?));
/// # let _ = options; Ok(()) }
/// ```
#[cfg(feature = "tls")]
#[derive(Clone, Default)]
pub struct TlsConfig {
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) domain: Option<String>,
}

#[cfg(feature = "tls")]
impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca", &self.ca_pem.is_some())
            .field("client_identity", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

#[cfg(feature = "tls")]
impl TlsConfig {
    /// TLS with no custom CA (the system's trusted roots) and no client
    /// certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// TLS with the CA and client identity of checked PEM files (see
    /// [`TlsFiles::load`](tenure_core::credentials::TlsFiles::load)).
    pub fn from_pem(pem: tenure_core::credentials::TlsPem) -> Self {
        TlsConfig {
            ca_pem: pem.ca,
            identity: pem.identity,
            domain: None,
        }
    }

    /// Checks the PEM data given in code, so that a malformed certificate
    /// or key fails before any connection is tried.
    pub(crate) fn validate(&self) -> Result<()> {
        use tenure_core::credentials::PemKind;
        let check = |field: &'static str, kind: PemKind, pem: &[u8]| {
            kind.check(pem).map_err(|reason| Error::InvalidConfig {
                field,
                reason: format!("the {} {reason}", kind.name()),
            })
        };
        if let Some(ca) = &self.ca_pem {
            check("tls", PemKind::CaCertificate, ca)?;
        }
        if let Some((cert, key)) = &self.identity {
            check("tls", PemKind::ClientCertificate, cert)?;
            check("tls", PemKind::ClientKey, key)?;
        }
        if self.domain.as_deref().is_some_and(str::is_empty) {
            return Err(Error::InvalidConfig {
                field: "tls",
                reason: "the server name is empty".into(),
            });
        }
        Ok(())
    }

    /// Trusts the CA certificate(s) in `pem`.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents this client certificate and key (mutual TLS).
    pub fn client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Verifies the server certificate against this name instead of the
    /// endpoint's host.
    pub fn domain_name(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Whether TLS is why connections to `endpoints` fail, and how: one
    /// diagnostic handshake per endpoint with these settings (see
    /// [`tenure_core::tls::diagnose`]).
    pub(crate) async fn diagnose(&self, endpoints: &[String], wait: Duration) -> Option<String> {
        let pem = tenure_core::credentials::TlsPem {
            ca: self.ca_pem.clone(),
            identity: self.identity.clone(),
        };
        let config = match tenure_core::tls::client_config(&pem) {
            Ok(config) => config,
            Err(reason) => return Some(reason),
        };
        for endpoint in endpoints {
            let addr = endpoint
                .trim_start_matches("https://")
                .trim_end_matches('/');
            let name = match &self.domain {
                Some(domain) => domain.as_str(),
                None => tenure_core::tls::host_of(addr),
            };
            if let Some(reason) = tenure_core::tls::diagnose(addr, name, config.clone(), wait).await
            {
                return Some(reason);
            }
        }
        None
    }

    pub(crate) fn to_client(&self) -> etcd_client::TlsOptions {
        let mut tls = etcd_client::TlsOptions::new();
        match &self.ca_pem {
            Some(ca) => tls = tls.ca_certificate(etcd_client::Certificate::from_pem(ca)),
            None => tls = tls.with_native_roots(),
        }
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(etcd_client::Identity::from_pem(cert, key));
        }
        if let Some(domain) = &self.domain {
            tls = tls.domain_name(domain.clone());
        }
        tls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let o = EtcdOptions::from_url("etcd://a:1,b:2/app/").unwrap();
        assert_eq!(o.endpoints, ["http://a:1", "http://b:2"]);
        assert_eq!(o.prefix, "app/");
        assert!(EtcdOptions::from_url("zk://a:1").is_err());
        assert!(EtcdOptions::from_url("etcd://").is_err());
    }

    #[test]
    fn url_options() {
        let o = EtcdOptions::from_url(
            "etcd://a:1/app/?user=svc&password=p%40ss&connect_timeout=750ms&request_timeout=2s&writes_in_flight=8",
        )
        .unwrap();
        assert_eq!(o.prefix, "app/");
        assert_eq!(o.user, Some(("svc".into(), "p@ss".into())));
        assert_eq!(o.connect_timeout, Duration::from_millis(750));
        assert_eq!(o.request_timeout, Duration::from_secs(2));
        assert_eq!(o.writes_in_flight, 8);
        for (url, expect) in [
            ("etcd://a:1?writes_in_flight=0", "positive whole number"),
            ("etcd://a:1?writes_in_flight=many", "positive whole number"),
            ("etcd://a:1?user=svc", "go together"),
            ("etcd://a:1?timeout=2s", "unknown option `timeout`"),
            ("etcd://a:1?request_timeout=fast", "not a duration"),
        ] {
            let e = EtcdOptions::from_url(url).unwrap_err().to_string();
            assert!(e.contains(expect), "{url}: {e}");
        }
        let e = EtcdOptions::from_url("etcd://a:1?password=hunter2&colour=1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn debug_hides_the_password() {
        let o = EtcdOptions::new(["x:1"]).user("root", "hunter2");
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn rejects_empty_endpoints() {
        let none: [&str; 0] = [];
        assert!(matches!(
            EtcdOptions::new(none).validate(),
            Err(Error::InvalidConfig {
                field: "endpoints",
                ..
            })
        ));
    }
}
