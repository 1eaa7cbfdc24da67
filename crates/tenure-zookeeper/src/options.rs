//! How to reach ZooKeeper and how to lay out elections: [`ZkOptions`]
//! (with its [`Layout`]) and [`ZkAcl`].

use std::fmt;
use std::time::Duration;

use tenure_core::{Error, Result};

use crate::layout::Layout;
use crate::paths::validate_path;

#[cfg(feature = "tls")]
use crate::probe;

/// The shared session's timeout when none is set: 10 s, clamped into the
/// server's bounds.
const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The ACL put on every node the backend creates (election nodes,
/// candidates, leader keys, guarded writes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZkAcl {
    /// `world:anyone` may do everything (ZooKeeper's `OPEN_ACL_UNSAFE`).
    /// The default.
    #[default]
    Open,
    /// Only identities authenticated like the creator may do anything
    /// (`CREATOR_ALL_ACL`); needs [`ZkOptions::digest`] (or another auth).
    CreatorAll,
    /// The creator's identities may do everything, everybody may read:
    /// observers without credentials can follow the election.
    CreatorAllWorldRead,
}

/// Connection settings for [`ZkBackend::connect`](crate::ZkBackend::connect).
///
/// ```
/// use std::time::Duration;
/// use tenure_zookeeper::{Layout, ZkAcl, ZkOptions};
///
/// let options = ZkOptions::new("zk1:2181,zk2:2181,zk3:2181")
///     .root("/my-app/elections")
///     .layout(Layout::Kazoo)
///     .connect_timeout(Duration::from_secs(2))
///     .digest("app", "secret")
///     .acl(ZkAcl::CreatorAll);
/// ```
#[derive(Clone)]
pub struct ZkOptions {
    pub(crate) connect: String,
    pub(crate) root: String,
    pub(crate) layout: Layout,
    /// Set with [`ZkOptions::session_timeout`]: used as it is, or an error
    /// when outside the server's bounds.
    pub(crate) session_timeout: Option<Duration>,
    /// Used when `session_timeout` is not set, clamped into the server's
    /// bounds.
    pub(crate) default_session_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) digest: Option<(String, String)>,
    pub(crate) acl: ZkAcl,
    pub(crate) ttl_bounds: Option<(Duration, Duration)>,
    /// TLS to every host of the connect string (their
    /// `secureClientPort`).
    pub(crate) tls: Option<tenure_core::credentials::TlsPem>,
}

impl fmt::Debug for ZkOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkOptions")
            .field("connect", &self.connect)
            .field("root", &self.root)
            .field("layout", &self.layout)
            .field("session_timeout", &self.session_timeout)
            .field("default_session_timeout", &self.default_session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            // Never print the password.
            .field("digest", &self.digest.as_ref().map(|(u, _)| u))
            .field("acl", &self.acl)
            .field("ttl_bounds", &self.ttl_bounds)
            // Shows only which parts are given.
            .field("tls", &self.tls)
            .finish()
    }
}

impl ZkOptions {
    /// Settings for the ensemble at `connect`: a ZooKeeper connect string,
    /// `host:port[,host:port...][/chroot]` (the chroot, if any, must
    /// exist).
    ///
    /// Defaults: root `/tenure`, [`Layout::Curator`], a 10 s session for
    /// reads and watches (clamped into the server's session-timeout
    /// bounds, see [`default_session_timeout`](Self::default_session_timeout)),
    /// 5 s connect timeout, 5 s request timeout, no authentication,
    /// [`ZkAcl::Open`], TTL bounds probed from the server.
    pub fn new(connect: impl Into<String>) -> Self {
        ZkOptions {
            connect: connect.into(),
            root: "/tenure".to_owned(),
            layout: Layout::Curator,
            session_timeout: None,
            default_session_timeout: DEFAULT_SESSION_TIMEOUT,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            digest: None,
            acl: ZkAcl::Open,
            ttl_bounds: None,
            tls: None,
        }
    }

    /// Parses `zk://host:port[,host:port...][/root][?options]` (also
    /// `zookeeper://`), or `zks://...` for TLS to the servers'
    /// `secureClientPort` (needs the `tls` feature). A path becomes the
    /// [`root`](Self::root); without one the root is `/tenure`.
    ///
    /// Options:
    /// - `layout` (`curator` or `kazoo`);
    /// - `acl` (`open`, `creator` or `creator_world_read`, see
    ///   [`ZkAcl`]; the creator ACLs need credentials);
    /// - `user` with `password` (digest credentials, percent-encoded) or
    ///   `password_file` (a file holding the password, read now, so it
    ///   never shows in `ps`);
    /// - on `zks://` only: `ca` (PEM file of the CA that signed the
    ///   servers' certificates; required) and `cert` and `key` (PEM files
    ///   of a client certificate and its key, for servers that require
    ///   one). Server certificates are always verified against the host
    ///   names of the connect string;
    /// - `session_timeout`, `connect_timeout` and `request_timeout`
    ///   (`500ms`, `2s`, ...).
    ///
    /// E.g. `zk://10.0.0.1:2181/services?layout=kazoo&user=svc&password_file=/run/secrets/zk`
    /// or `zks://zk1:2281/services?ca=/etc/zk/ca.pem&cert=/etc/app/client.pem&key=/etc/app/client-key.pem`.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for other schemes, an empty host list, an
    /// unknown or malformed option, a user without a password, or TLS
    /// options on `zk://`; [`Error::CredentialFile`] naming a password or
    /// PEM file that cannot be read or does not hold what it should;
    /// [`Error::InvalidConfig`] for `cert` without `key` or the reverse.
    pub fn from_url(url: &str) -> Result<Self> {
        const KNOWN: [&str; 11] = [
            "layout",
            "acl",
            "user",
            "password",
            "password_file",
            "ca",
            "cert",
            "key",
            "session_timeout",
            "connect_timeout",
            "request_timeout",
        ];
        let (url_base, mut query) = tenure_core::url_query::UrlQuery::split(url)?;
        let bad = |reason: &str| Error::UnsupportedUrl {
            url: tenure_core::url_query::redact(url),
            reason: reason.to_owned(),
        };
        let url = url_base;
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected zk://host:port[,host:port][/root]"))?;
        let secure = match scheme {
            "zk" | "zookeeper" => false,
            "zks" => true,
            _ => return Err(bad("scheme must be zk://, zookeeper:// or zks://")),
        };
        #[cfg(not(feature = "tls"))]
        if secure {
            return Err(bad(
                "zks:// needs the `tls` feature of tenure-zookeeper (on by default)",
            ));
        }
        let (hosts, root) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        if hosts.split(',').all(str::is_empty) {
            return Err(bad("no host given"));
        }
        let mut options = ZkOptions::new(hosts);
        if let Some(root) = root.filter(|r| *r != "/") {
            options = options.root(root);
        }
        match query.take("layout").as_deref() {
            None | Some("curator") => {}
            Some("kazoo") => options = options.layout(Layout::Kazoo),
            Some(other) => {
                return Err(bad(&format!(
                    "option `layout={other}`: expected curator or kazoo"
                )))
            }
        }
        match query.take("acl").as_deref() {
            None | Some("open") => {}
            Some("creator") => options = options.acl(ZkAcl::CreatorAll),
            Some("creator_world_read") => options = options.acl(ZkAcl::CreatorAllWorldRead),
            Some(other) => {
                return Err(bad(&format!(
                    "option `acl={other}`: expected open, creator or creator_world_read"
                )))
            }
        }
        let files = query.take_tls_files();
        if !secure && files.is_some() {
            return Err(bad("the TLS options `ca`, `cert` and `key` need zks://"));
        }
        #[cfg(not(feature = "tls"))]
        let _ = files;
        #[cfg(feature = "tls")]
        if secure {
            match files {
                Some(files) => options = options.tls(files.load()?),
                None => {
                    return Err(bad(
                        "zks:// needs `ca=` (the PEM file of the CA that signed the servers' \
                         certificates)",
                    ))
                }
            }
        }
        if let Some((user, password)) = query.take_credentials()? {
            options = options.digest(user, password);
        }
        if let Some(t) = query.take_duration("session_timeout")? {
            options = options.session_timeout(t);
        }
        if let Some(t) = query.take_duration("connect_timeout")? {
            options = options.connect_timeout(t);
        }
        if let Some(t) = query.take_duration("request_timeout")? {
            options = options.request_timeout(t);
        }
        query.finish(&KNOWN)?;
        Ok(options)
    }

    /// The node under which every election lives (created, with parents,
    /// if missing): election `jobs` is the node `<root>/jobs`. An absolute
    /// ZooKeeper path; `/` puts elections at the top. Default `/tenure`.
    pub fn root(mut self, root: impl Into<String>) -> Self {
        self.root = root.into();
        self
    }

    /// How candidates are named: [`Layout::Curator`] (default) or
    /// [`Layout::Kazoo`].
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Session timeout of the backend's shared session, used for reads and
    /// watches (URL option `session_timeout=`). Leases get sessions of
    /// their own, with the lease's TTL.
    ///
    /// A timeout set here is used as it is: [`connect`](crate::ZkBackend::connect)
    /// fails with [`Error::InvalidConfig`] when it lies outside the
    /// server's `minSessionTimeout`..`maxSessionTimeout`. Without it, the
    /// [`default_session_timeout`](Self::default_session_timeout) is
    /// clamped into those bounds instead.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = Some(timeout);
        self
    }

    /// The shared session's timeout when none was set with
    /// [`session_timeout`](Self::session_timeout): clamped into the
    /// server's session-timeout bounds, so that it fits any server
    /// (default 10 s; a server with `tickTime=200` allows 400 ms..4 s and
    /// gets 4 s). The facade's `tenure::connect_with` sets it to the
    /// election's TTL, so that the shared session lives on the same time
    /// scale as the leases.
    pub fn default_session_timeout(mut self, timeout: Duration) -> Self {
        self.default_session_timeout = timeout;
        self
    }

    /// The shared session's timeout on a server with session-timeout
    /// `bounds`: the one set explicitly, or the default clamped into the
    /// bounds.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when an explicit timeout lies outside the
    /// bounds, saying which option and which server settings to change.
    pub(crate) fn shared_session_timeout(
        &self,
        (min, max): (Duration, Duration),
    ) -> Result<Duration> {
        let Some(t) = self.session_timeout else {
            return Ok(self.default_session_timeout.clamp(min, max.max(min)));
        };
        if t < min || t > max {
            return Err(Error::InvalidConfig {
                field: "session_timeout",
                reason: format!(
                    "{t:?} is outside the server's session timeout bounds {min:?}..={max:?}: \
                     set the URL option `session_timeout=` (ZkOptions::session_timeout) within \
                     them, or leave it out to get a timeout clamped into them, or change the \
                     server's minSessionTimeout / maxSessionTimeout in zoo.cfg (by default 2 and \
                     20 times its tickTime)"
                ),
            });
        }
        Ok(t)
    }

    /// How long [`connect`](crate::ZkBackend::connect) and each new lease
    /// session may take to establish a session (default 5 s). Attempts
    /// that fail (refused, closed by the server during the handshake, no
    /// answer within a second) are retried with jittered exponential
    /// back-off until this runs out; then an unreachable ensemble fails
    /// with [`Error::Unreachable`] naming the connect string, the number
    /// of attempts and the last cause.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Deadline of the backend's own multi-step operations, e.g. waiting
    /// for a revoked session to close (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Authenticates every session with `digest` `user:password` (what
    /// `addauth digest user:password` does in `zkCli.sh`).
    pub fn digest(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.digest = Some((user.into(), password.into()));
        self
    }

    /// Talks TLS to every host of the connect string (their
    /// `secureClientPort`), trusting the CA of `pem` (required) and
    /// presenting its client certificate, if any (see
    /// [`TlsFiles::load`](tenure_core::credentials::TlsFiles::load)).
    /// Server certificates are always verified against the hosts'
    /// names.
    ///
    /// ```no_run
    /// # fn demo() -> tenure_core::Result<()> {
    /// use std::path::PathBuf;
    /// use tenure_core::credentials::TlsFiles;
    /// use tenure_zookeeper::ZkOptions;
    ///
    /// let files = TlsFiles {
    ///     ca: Some(PathBuf::from("/etc/zookeeper/ca.pem")),
    ///     cert: Some(PathBuf::from("/etc/app/client.pem")),
    ///     key: Some(PathBuf::from("/etc/app/client-key.pem")),
    /// };
    /// let options = ZkOptions::new("zk1:2281,zk2:2281").tls(files.load()?);
    /// # let _ = options; Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, pem: tenure_core::credentials::TlsPem) -> Self {
        self.tls = Some(pem);
        self
    }

    /// The ACL of created nodes (default [`ZkAcl::Open`]).
    pub fn acl(mut self, acl: ZkAcl) -> Self {
        self.acl = acl;
        self
    }

    /// The smallest and largest lease TTL (session timeout) to allow,
    /// instead of asking the server for its `minSessionTimeout` and
    /// `maxSessionTimeout` at connect time. Must lie within the server's
    /// bounds: the server clamps whatever it is asked for into those.
    pub fn ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.ttl_bounds = Some((min, max));
        self
    }

    /// Checks the settings that can be checked without a server.
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: String| Error::InvalidConfig { field, reason };
        if self.connect.trim().is_empty() {
            return Err(invalid("connect", "the connect string is empty".into()));
        }
        validate_path(&self.root).map_err(|reason| {
            invalid(
                "root",
                format!("{:?} is not a ZooKeeper path: {reason}", self.root),
            )
        })?;
        if self.root.starts_with("/zookeeper/") || self.root == "/zookeeper" {
            return Err(invalid(
                "root",
                "/zookeeper is reserved by ZooKeeper itself".into(),
            ));
        }
        for (field, d) in [
            (
                "session_timeout",
                self.session_timeout.unwrap_or(Duration::MAX),
            ),
            ("default_session_timeout", self.default_session_timeout),
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(field, "must be positive".into()));
            }
        }
        if self
            .session_timeout
            .is_some_and(|t| t > Duration::from_millis(i32::MAX as u64))
        {
            return Err(invalid("session_timeout", "too large".into()));
        }
        if let Some((min, max)) = self.ttl_bounds {
            if min.is_zero() || min > max {
                return Err(invalid(
                    "ttl_bounds",
                    format!("need 0 < min <= max, got {min:?}..{max:?}"),
                ));
            }
        }
        if let Some((user, _)) = &self.digest {
            if user.is_empty() || user.contains(':') {
                return Err(invalid(
                    "digest",
                    "the user must be non-empty and contain no ':'".into(),
                ));
            }
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            if tls.ca.is_none() {
                return Err(invalid(
                    "tls",
                    "TLS to ZooKeeper needs the CA that signed the servers' certificates".into(),
                ));
            }
            if let Some(host) = probe::hosts(&self.connect)
                .iter()
                .map(|h| tenure_core::tls::host_of(h))
                .find(|h| !tenure_core::tls::is_valid_server_name(h))
            {
                return Err(invalid(
                    "connect",
                    format!("{host:?} is not a host name or IP address a certificate can name"),
                ));
            }
        }
        if matches!(self.acl, ZkAcl::CreatorAll | ZkAcl::CreatorAllWorldRead)
            && self.digest.is_none()
        {
            return Err(invalid(
                "acl",
                "a creator ACL needs credentials: set ZkOptions::digest".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_validation() {
        let o = ZkOptions::from_url("zk://a:1,b:2/apps/x").unwrap();
        assert_eq!(o.connect, "a:1,b:2");
        assert_eq!(o.root, "/apps/x");
        assert!(ZkOptions::from_url("etcd://a:1").is_err());
        assert!(ZkOptions::from_url("zk:///x").is_err());
        let o = ZkOptions::from_url(
            "zk://a:1/svc?layout=kazoo&user=u&password=p%26w&session_timeout=3s&request_timeout=1s",
        )
        .unwrap();
        assert_eq!(o.root, "/svc");
        assert_eq!(o.layout, Layout::Kazoo);
        assert_eq!(o.digest, Some(("u".into(), "p&w".into())));
        assert_eq!(o.session_timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.request_timeout, Duration::from_secs(1));
        let o = ZkOptions::from_url("zk://a:1?acl=creator_world_read&user=u&password=p").unwrap();
        assert_eq!(o.acl, ZkAcl::CreatorAllWorldRead);
        for (url, expect) in [
            ("zk://a:1?acl=closed", "expected open, creator"),
            ("zk://a:1?layout=zk", "expected curator or kazoo"),
            ("zk://a:1?password=x", "go together"),
            ("zk://a:1?chroot=/x", "unknown option `chroot`"),
        ] {
            let e = ZkOptions::from_url(url).unwrap_err().to_string();
            assert!(e.contains(expect), "{url}: {e}");
        }
        assert!(ZkOptions::new("a:1").root("x").validate().is_err());
        assert!(ZkOptions::new("a:1").root("/a//b").validate().is_err());
        assert!(ZkOptions::new("a:1").root("/a/").validate().is_err());
        assert!(ZkOptions::new("a:1")
            .acl(ZkAcl::CreatorAll)
            .validate()
            .is_err());
        assert!(ZkOptions::new("a:1").validate().is_ok());
        let dbg = format!("{:?}", ZkOptions::new("a:1").digest("u", "secret"));
        assert!(!dbg.contains("secret"), "{dbg}");
        #[cfg(feature = "tls")]
        {
            let pem = tenure_core::credentials::TlsPem {
                ca: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
                identity: Some((b"cert".to_vec(), b"secret key".to_vec())),
            };
            let o = ZkOptions::new("a:1").tls(pem.clone());
            assert!(o.validate().is_ok());
            let dbg = format!("{o:?}");
            assert!(
                !dbg.contains("secret key") && !dbg.contains("BEGIN"),
                "{dbg}"
            );
            // zookeeper-client checks certificates against the host: one
            // that no certificate can name is refused before connecting.
            let e = ZkOptions::new("bad host!:1").tls(pem.clone()).validate();
            assert!(
                matches!(
                    e,
                    Err(Error::InvalidConfig {
                        field: "connect",
                        ..
                    })
                ),
                "{e:?}"
            );
            let no_ca = tenure_core::credentials::TlsPem { ca: None, ..pem };
            let e = ZkOptions::new("a:1").tls(no_ca).validate();
            assert!(
                matches!(e, Err(Error::InvalidConfig { field: "tls", .. })),
                "{e:?}"
            );
        }
    }

    #[test]
    fn the_default_session_timeout_is_clamped_an_explicit_one_checked() {
        let ms = Duration::from_millis;
        let tick200 = (ms(400), ms(4000));
        let o = ZkOptions::new("a:1");
        assert_eq!(o.shared_session_timeout(tick200).unwrap(), ms(4000));
        assert_eq!(
            o.shared_session_timeout((ms(200), ms(20_000))).unwrap(),
            ms(10_000)
        );
        assert_eq!(
            o.shared_session_timeout((ms(12_000), ms(60_000))).unwrap(),
            ms(12_000)
        );
        let o = ZkOptions::new("a:1").default_session_timeout(ms(3000));
        assert_eq!(o.shared_session_timeout(tick200).unwrap(), ms(3000));
        let o = ZkOptions::from_url("zk://a:1?session_timeout=10s").unwrap();
        let e = o.shared_session_timeout(tick200).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidConfig {
                    field: "session_timeout",
                    ..
                }
            ),
            "{e}"
        );
        let text = e.to_string();
        for hint in [
            "session_timeout=",
            "minSessionTimeout",
            "maxSessionTimeout",
            "tickTime",
            "4s",
        ] {
            assert!(text.contains(hint), "{hint}: {text}");
        }
        assert_eq!(
            ZkOptions::new("a:1")
                .session_timeout(ms(4000))
                .shared_session_timeout(tick200)
                .unwrap(),
            ms(4000)
        );
    }
}
