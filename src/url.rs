//! Choosing a backend by URL: `memory://`, `etcd://…`, `etcds://…`, `zk://…`,
//! `zks://…`, `postgres://…`.
//!
//! The facade only recognises the scheme; each backend parses the rest of
//! its own URL (`EtcdOptions::from_url`, `ZkOptions::from_url`,
//! `PostgresOptions::from_url`), so one
//! grammar lives in one place.

use std::time::Duration;

use tenure_core::{DynBackend, Error, Result};

/// The backend a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `memory://` (a fresh in-process backend) or `memory://<name>` (the
    /// process-wide instance of that name).
    Memory,
    /// `etcd://host:port[,host:port…][/prefix]`, `etcds://…` for TLS.
    Etcd,
    /// `zk://host:port[,host:port…][/root]`, `zks://…` for TLS.
    ZooKeeper,
    /// `postgres://user[:password]@host:port/dbname[?schema=…]` (or
    /// `postgresql://`), the URL libpq users know.
    Postgres,
}

impl Scheme {
    /// The scheme of `url`.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] when `url` has no `scheme://` or an
    /// unknown scheme.
    pub fn of(url: &str) -> Result<Scheme> {
        let bad = |reason: &str| Error::UnsupportedUrl {
            url: tenure_core::url_query::redact(url),
            reason: reason.to_string(),
        };
        let (scheme, _) = url.split_once("://").ok_or_else(|| {
            bad(
                "expected <scheme>://…, e.g. memory://, etcd://host:2379, zk://host:2181, \
                 postgres://user@host:5432/db",
            )
        })?;
        match scheme {
            "memory" => Ok(Scheme::Memory),
            "etcd" | "etcds" => Ok(Scheme::Etcd),
            "zk" | "zks" | "zookeeper" => Ok(Scheme::ZooKeeper),
            "postgres" | "postgresql" => Ok(Scheme::Postgres),
            _ => Err(bad(
                "unknown scheme: use memory://, etcd://, etcds://, zk://, zks:// or postgres://",
            )),
        }
    }
}

/// Connects to the backend named by `url` and returns a shared handle.
///
/// Code that runs on etcd in production can run its unit tests on the
/// in-memory backend by changing only this URL: every `connect` to the same
/// `memory://<name>` in a process reaches the same in-process backend.
///
/// # Errors
/// [`Error::UnsupportedUrl`] for a malformed URL, or one whose backend's
/// cargo feature is not enabled (the message names the feature), and the
/// backend's connection errors ([`Error::Unreachable`],
/// [`Error::Unauthenticated`], ...).
pub async fn connect(url: &str) -> Result<DynBackend> {
    connect_with(url, &ConnectOptions::new()).await
}

/// What [`connect_with`] applies on top of a URL's own options, whatever
/// the backend.
///
/// ```
/// use std::time::Duration;
/// let options = tenure::ConnectOptions::new()
///     .ttl(Duration::from_secs(3))
///     .connect_timeout(Duration::from_secs(10))
///     .request_timeout(Duration::from_secs(1));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ConnectOptions {
    ttl: Option<Duration>,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
}

impl ConnectOptions {
    /// No TTL, the URL's own timeouts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The TTL the elections on this backend will use (what
    /// `ElectionBuilder::ttl` gets): the backend sizes what it keeps for
    /// itself to match, within the server's bounds. On ZooKeeper it is the
    /// timeout of the shared session for reads and watches, unless the URL
    /// sets `session_timeout=` (see `ZkOptions::default_session_timeout`);
    /// etcd and the memory backend need nothing.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The connect timeout: bounds establishing the connection or session,
    /// every retry included (see `docs/concepts.md`, "Timeouts"). In
    /// place of the URL's `connect_timeout=`; etcd, ZooKeeper and
    /// PostgreSQL default to 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The request timeout: bounds one operation on the backend, its
    /// retries after a lost connection included, the same on every
    /// backend (etcd: one RPC; ZooKeeper: one operation and its retries;
    /// PostgreSQL: one statement). In place of the URL's
    /// `request_timeout=`; defaults to 5 s. Elections bound each request
    /// again by their own
    /// [`request_timeout`](crate::ElectionBuilder::request_timeout) (TTL /
    /// 3 by default): the shorter bound wins.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Both [`connect_timeout`](Self::connect_timeout) and
    /// [`request_timeout`](Self::request_timeout) (what the CLI's
    /// `--request-timeout` sets).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.connect_timeout(timeout).request_timeout(timeout)
    }
}

/// As [`connect`], with `options` applied on top of the URL's own.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tenure::Result<()> {
/// use std::time::Duration;
/// use tenure::{ConnectOptions, Election};
///
/// let ttl = Duration::from_secs(3);
/// let backend = tenure::connect_with("memory://", &ConnectOptions::new().ttl(ttl)).await?;
/// let election = Election::builder(backend, "scheduler").ttl(ttl).build()?;
/// # let _ = election;
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`connect`].
pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<DynBackend> {
    match Scheme::of(url)? {
        Scheme::Memory => memory(url),
        Scheme::Etcd => etcd(url, options).await,
        Scheme::ZooKeeper => zookeeper(url, options).await,
        Scheme::Postgres => postgres(url, options).await,
    }
}

#[allow(dead_code)] // unused when every backend is compiled in
fn missing(url: &str, feature: &str) -> Error {
    Error::UnsupportedUrl {
        url: tenure_core::url_query::redact(url),
        reason: format!(
            "this build of tenure has no {feature} backend: enable the cargo feature `{feature}`"
        ),
    }
}

#[cfg(feature = "memory")]
fn memory(url: &str) -> Result<DynBackend> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    use tenure_memory::MemoryBackend;

    static NAMED: OnceLock<Mutex<HashMap<String, MemoryBackend>>> = OnceLock::new();
    let name = url.trim_start_matches("memory://");
    let backend = if name.is_empty() {
        MemoryBackend::new()
    } else {
        NAMED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    };
    Ok(Arc::new(backend))
}

#[cfg(not(feature = "memory"))]
fn memory(url: &str) -> Result<DynBackend> {
    Err(missing(url, "memory"))
}

#[cfg(feature = "etcd")]
async fn etcd(url: &str, with: &ConnectOptions) -> Result<DynBackend> {
    let mut options = tenure_etcd::EtcdOptions::from_url(url)?;
    if let Some(t) = with.connect_timeout {
        options = options.connect_timeout(t);
    }
    if let Some(t) = with.request_timeout {
        options = options.request_timeout(t);
    }
    Ok(std::sync::Arc::new(
        tenure_etcd::EtcdBackend::connect(options).await?,
    ))
}

#[cfg(not(feature = "etcd"))]
async fn etcd(url: &str, _: &ConnectOptions) -> Result<DynBackend> {
    Err(missing(url, "etcd"))
}

#[cfg(feature = "zookeeper")]
async fn zookeeper(url: &str, with: &ConnectOptions) -> Result<DynBackend> {
    let mut options = tenure_zookeeper::ZkOptions::from_url(url)?;
    if let Some(t) = with.connect_timeout {
        options = options.connect_timeout(t);
    }
    if let Some(t) = with.request_timeout {
        options = options.request_timeout(t);
    }
    if let Some(ttl) = with.ttl {
        options = options.default_session_timeout(ttl);
    }
    Ok(std::sync::Arc::new(
        tenure_zookeeper::ZkBackend::connect(options).await?,
    ))
}

#[cfg(not(feature = "zookeeper"))]
async fn zookeeper(url: &str, _: &ConnectOptions) -> Result<DynBackend> {
    Err(missing(url, "zookeeper"))
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str, with: &ConnectOptions) -> Result<DynBackend> {
    let mut options = tenure_postgres::PostgresOptions::from_url(url)?;
    if let Some(t) = with.connect_timeout {
        options = options.connect_timeout(t);
    }
    if let Some(t) = with.request_timeout {
        options = options.request_timeout(t);
    }
    Ok(std::sync::Arc::new(
        tenure_postgres::PostgresBackend::connect(options).await?,
    ))
}

#[cfg(not(feature = "postgres"))]
async fn postgres(url: &str, _: &ConnectOptions) -> Result<DynBackend> {
    Err(missing(url, "postgres"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_scheme() {
        assert_eq!(Scheme::of("memory://").unwrap(), Scheme::Memory);
        assert_eq!(
            Scheme::of("etcd://a:2379,b:2379/svc").unwrap(),
            Scheme::Etcd
        );
        assert_eq!(Scheme::of("etcds://a:2379").unwrap(), Scheme::Etcd);
        assert_eq!(Scheme::of("zk://h:2181/app").unwrap(), Scheme::ZooKeeper);
        assert_eq!(Scheme::of("zks://h:2281/app").unwrap(), Scheme::ZooKeeper);
        for url in ["postgres://u@h:5432/d", "postgresql://u@h/d?schema=x"] {
            assert_eq!(Scheme::of(url).unwrap(), Scheme::Postgres, "{url}");
        }
    }

    #[test]
    fn errors_never_show_a_password() {
        let e = Scheme::of("redis://h:1?user=u&password=hunter2").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("password=***"), "{e}");
    }

    #[test]
    fn rejects_bad_urls_with_reason() {
        for (url, why) in [
            ("localhost:2379", "<scheme>://"),
            ("redis://h:1", "unknown scheme"),
        ] {
            let e = Scheme::of(url).unwrap_err();
            assert!(e.to_string().contains(why), "{url}: {e}");
        }
    }

    #[tokio::test]
    async fn named_memory_urls_share_one_backend() {
        let a = connect("memory://shared-test").await.unwrap();
        let b = connect("memory://shared-test").await.unwrap();
        let fresh = connect("memory://").await.unwrap();
        let lease = a
            .grant_lease(std::time::Duration::from_secs(5))
            .await
            .unwrap();
        assert!(b.keep_alive(lease.id).await.is_ok(), "same server");
        assert!(fresh.keep_alive(lease.id).await.is_err(), "separate server");
    }

    #[cfg(not(feature = "etcd"))]
    #[tokio::test]
    async fn compiled_out_etcd_names_its_feature() {
        let e = connect("etcd://127.0.0.1:2379").await.unwrap_err();
        assert!(e.to_string().contains("feature `etcd`"), "{e}");
    }

    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn compiled_out_postgres_names_its_feature() {
        let e = connect("postgres://u@127.0.0.1:5432/d").await.unwrap_err();
        assert!(e.to_string().contains("feature `postgres`"), "{e}");
    }

    #[cfg(not(feature = "zookeeper"))]
    #[tokio::test]
    async fn compiled_out_zookeeper_names_its_feature() {
        let e = connect("zk://127.0.0.1:2181").await.unwrap_err();
        assert!(e.to_string().contains("feature `zookeeper`"), "{e}");
    }
}
