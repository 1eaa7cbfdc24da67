//! How to reach PostgreSQL and where tenure keeps its tables:
//! [`PostgresOptions`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tenure_core::url_query::{redact, UrlQuery};
use tenure_core::{Error, Result};

/// The schema tenure uses unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "tenure";

/// The longest schema name accepted: the LISTEN channel and the
/// transaction-local setting are named after it, and PostgreSQL cuts
/// identifiers at 63 bytes.
pub const MAX_SCHEMA_LEN: usize = 48;

/// Options that go to the driver unchanged (libpq's names).
const DRIVER_OPTIONS: [&str; 7] = [
    "user",
    "password",
    "dbname",
    "host",
    "port",
    "application_name",
    "target_session_attrs",
];

/// Options tenure reads itself.
const OWN_OPTIONS: [&str; 5] = [
    "schema",
    "connect_timeout",
    "request_timeout",
    "password_file",
    "create_schema",
];

/// Connection settings for
/// [`PostgresBackend::connect`](crate::PostgresBackend::connect).
///
/// ```
/// use std::time::Duration;
/// use tenure_postgres::PostgresOptions;
///
/// let options = PostgresOptions::from_url(
///     "postgres://app@db.internal:5432/orders?schema=tenure&request_timeout=2s",
/// )?
/// .connect_timeout(Duration::from_secs(3));
/// # Ok::<(), tenure_core::Error>(())
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) endpoint: String,
    pub(crate) schema: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) create_schema: bool,
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio-postgres's own Debug redacts the password.
        f.debug_struct("PostgresOptions")
            .field("endpoint", &self.endpoint)
            .field("user", &self.config.get_user())
            .field("dbname", &self.config.get_dbname())
            .field("schema", &self.schema)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("create_schema", &self.create_schema)
            .finish()
    }
}

impl PostgresOptions {
    /// Settings for a driver configuration built by the caller (host,
    /// port, user, password, database).
    ///
    /// Defaults: schema `tenure`, created on first use; 5 s connect
    /// timeout; 5 s request timeout; `application_name` `tenure` unless
    /// the configuration names one.
    pub fn new(mut config: tokio_postgres::Config) -> Self {
        // Operators find tenure's sessions in pg_stat_activity by name.
        if config.get_application_name().is_none() {
            config.application_name("tenure");
        }
        let endpoint = describe_endpoint(&config);
        PostgresOptions {
            config,
            endpoint,
            schema: DEFAULT_SCHEMA.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            create_schema: true,
        }
    }

    /// Parses the URL libpq users know,
    /// `postgres://user[:password]@host[:port][/dbname][?options]`
    /// (`postgresql://` too; the password percent-encoded).
    ///
    /// tenure's options: `schema` (default `tenure`), `connect_timeout`
    /// and `request_timeout` (`500ms`, `2s`, ...), `password_file` (a
    /// file whose first line is the password, so that it stays out of
    /// the URL and the process list) and `create_schema=false` (the
    /// role may not create tables: the schema must exist). The driver's
    /// options `user`, `password`, `dbname`, `host`, `port`,
    /// `application_name` and `target_session_attrs` pass through.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] (with the password hidden) for another
    /// scheme, an unknown or malformed option, a bad schema name, an
    /// unreadable password file, or a URL the driver cannot parse.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::parse_url(url).map_err(|e| match e {
            // The query parser hides `password=`; hide `user:password@`.
            Error::UnsupportedUrl { url, reason } => Error::UnsupportedUrl {
                url: redact_userinfo(&url),
                reason,
            },
            e => e,
        })
    }

    fn parse_url(url: &str) -> Result<Self> {
        let (base, mut query) = UrlQuery::split(url)?;
        let bad = |reason: String| Error::UnsupportedUrl {
            url: redact_userinfo(&redact(url)),
            reason,
        };
        let Some((scheme, _)) = base.split_once("://") else {
            return Err(bad(
                "expected postgres://user@host:port/dbname[?options]".into()
            ));
        };
        if scheme != "postgres" && scheme != "postgresql" {
            return Err(bad("scheme must be postgres:// or postgresql://".into()));
        }
        let schema = query.take("schema");
        let connect_timeout = query.take_duration("connect_timeout")?;
        let request_timeout = query.take_duration("request_timeout")?;
        let password_file = query.take("password_file");
        let create_schema = match query.take("create_schema").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(bad(format!(
                    "option `create_schema={other}` must be true or false"
                )))
            }
        };
        // What is left goes to the driver, which knows libpq's syntax.
        let mut passthrough = Vec::new();
        for key in DRIVER_OPTIONS {
            if let Some(value) = query.take(key) {
                passthrough.push(format!("{key}={}", encode(&value)));
            }
        }
        let mut known: Vec<&str> = OWN_OPTIONS.to_vec();
        known.extend(DRIVER_OPTIONS);
        query.finish(&known)?;
        let driver_url = if passthrough.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", passthrough.join("&"))
        };
        let mut config = tokio_postgres::Config::from_str(&driver_url)
            .map_err(|e| bad(format!("not a PostgreSQL URL: {e}")))?;
        if let Some(path) = password_file {
            if config.get_password().is_some() {
                return Err(bad(
                    "give the password either in the URL or in `password_file`, not both".into(),
                ));
            }
            config.password(read_password_file(&path).map_err(bad)?);
        }
        let mut options = PostgresOptions::new(config);
        if let Some(schema) = schema {
            check_schema(&schema).map_err(bad)?;
            options.schema = schema;
        }
        if let Some(t) = connect_timeout {
            options.connect_timeout = t;
        }
        if let Some(t) = request_timeout {
            options.request_timeout = t;
        }
        options.create_schema = create_schema;
        Ok(options)
    }

    /// Keeps tenure's tables in `schema` (default `tenure`). Elections in
    /// different schemas never see each other.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Whether [`connect`](crate::PostgresBackend::connect) may create
    /// the schema and its tables when they are missing (default `true`).
    /// With `false`, a role without `CREATE` can use a schema that an
    /// administrator installed.
    pub fn create_schema(mut self, create: bool) -> Self {
        self.create_schema = create;
        self
    }

    /// How long [`connect`](crate::PostgresBackend::connect) may take
    /// (default 5 s): failed attempts are retried with jittered back-off
    /// until it runs out, then it fails with [`Error::Unreachable`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Deadline of each request (default 5 s); [`Error::Timeout`] after
    /// it.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The schema in use.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let invalid =
            |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        if let Err(reason) = check_schema(&self.schema) {
            return invalid("schema", reason);
        }
        if self.connect_timeout.is_zero() {
            return invalid("connect_timeout", "must be positive".into());
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be positive".into());
        }
        if self.config.get_hosts().is_empty() {
            return invalid("host", "no host given".into());
        }
        Ok(())
    }
}

/// A schema name tenure accepts: lower-case letters, digits and `_`,
/// starting with a letter or `_`, at most [`MAX_SCHEMA_LEN`] bytes, and
/// not one of PostgreSQL's own (`pg_*`, `information_schema`).
fn check_schema(schema: &str) -> std::result::Result<(), String> {
    let ok_chars = schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let ok_start = schema
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !ok_chars || !ok_start || schema.len() > MAX_SCHEMA_LEN {
        return Err(format!(
            "schema {schema:?} must be 1 to {MAX_SCHEMA_LEN} lower-case letters, digits or `_`, \
             not starting with a digit"
        ));
    }
    if schema.starts_with("pg_") || schema == "information_schema" || schema == "public" {
        return Err(format!(
            "schema {schema:?} belongs to PostgreSQL; give tenure a schema of its own"
        ));
    }
    Ok(())
}

fn read_password_file(path: &str) -> std::result::Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `password_file` {path:?}: {e}"))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!("`password_file` {path:?} holds no password"));
    }
    Ok(line.to_owned())
}

/// Percent-encodes a query value for the driver's URL parser.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL with a password in its user-info part hidden.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `host:port[,host:port]/dbname`, for errors and logs.
fn describe_endpoint(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    format!(
        "{}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_both_schemes_and_options() {
        for scheme in ["postgres", "postgresql"] {
            let o = PostgresOptions::from_url(&format!(
                "{scheme}://app:s%40cret@db:6543/orders?schema=elections&request_timeout=2s\
                 &connect_timeout=750ms&application_name=svc"
            ))
            .unwrap();
            assert_eq!(o.schema, "elections");
            assert_eq!(o.request_timeout, Duration::from_secs(2));
            assert_eq!(o.connect_timeout, Duration::from_millis(750));
            assert_eq!(o.config.get_user(), Some("app"));
            assert_eq!(o.config.get_password(), Some(&b"s@cret"[..]));
            assert_eq!(o.config.get_dbname(), Some("orders"));
            assert_eq!(o.config.get_application_name(), Some("svc"));
            assert_eq!(o.endpoint, "db:6543/orders");
            assert!(o.create_schema);
        }
        let o = PostgresOptions::from_url("postgres://a@h/d").unwrap();
        assert_eq!(o.schema, DEFAULT_SCHEMA);
        assert_eq!(o.config.get_application_name(), Some("tenure"));
        let o = PostgresOptions::from_url("postgres://a@h/d?create_schema=false").unwrap();
        assert!(!o.create_schema);
    }

    #[test]
    fn rejects_bad_urls_naming_what_is_wrong() {
        for (url, expect) in [
            ("etcd://h:1", "postgres:// or postgresql://"),
            ("postgres://a@h/d?schema=Bad-Name", "lower-case"),
            (
                "postgres://a@h/d?schema=pg_catalog",
                "belongs to PostgreSQL",
            ),
            ("postgres://a@h/d?colour=red", "unknown option `colour`"),
            ("postgres://a@h/d?request_timeout=soon", "not a duration"),
            ("postgres://a@h/d?create_schema=maybe", "true or false"),
            (
                "postgres://a@h/d?password_file=/nonexistent/tenure-pw",
                "cannot read `password_file`",
            ),
        ] {
            let e = PostgresOptions::from_url(url).unwrap_err();
            assert!(matches!(e, Error::UnsupportedUrl { .. }), "{url}: {e:?}");
            assert!(e.to_string().contains(expect), "{url}: {e}");
        }
    }

    #[test]
    fn passwords_never_show() {
        let e = PostgresOptions::from_url("postgres://a:hunter2@h/d?colour=1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        let e = PostgresOptions::from_url("postgres://a@h/d?password=hunter2&colour=1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        let o = PostgresOptions::from_url("postgres://a:hunter2@h/d").unwrap();
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn password_file_gives_the_first_line() {
        let dir = std::env::temp_dir().join(format!("tenure-pg-pw-{}", std::process::id()));
        std::fs::write(&dir, "s3cret\n").unwrap();
        let url = format!("postgres://a@h/d?password_file={}", dir.display());
        let o = PostgresOptions::from_url(&url).unwrap();
        assert_eq!(o.config.get_password(), Some(&b"s3cret"[..]));
        let both = format!("postgres://a:x@h/d?password_file={}", dir.display());
        let e = PostgresOptions::from_url(&both).unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        std::fs::remove_file(&dir).unwrap();
    }
}
