//! Choosing a backend by URL: `memory://`, `etcd://…`, `zk://…`.

use tenure_core::{DynBackend, Error, Result};

/// A parsed backend URL.
///
/// - `memory://` — a fresh in-process backend; `memory://<name>` — the
///   in-process backend of that name, shared by everything in the process
///   that connects to the same URL (so tests can swap an etcd URL for a
///   memory one and keep several candidates talking to one "server").
/// - `etcd://host:port[,host:port…][/prefix]` and `etcds://…` (TLS).
/// - `zk://host:port[,host:port…][/chroot]`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendUrl {
    /// In-process backend; `None` for a fresh one.
    Memory {
        /// Shared instance name.
        name: Option<String>,
    },
    /// etcd v3.
    Etcd {
        /// `host:port` endpoints.
        endpoints: Vec<String>,
        /// Key prefix (namespace), possibly empty.
        prefix: String,
        /// Whether to use TLS (`etcds://`).
        tls: bool,
    },
    /// ZooKeeper.
    ZooKeeper {
        /// `host:port` servers.
        servers: Vec<String>,
        /// Chroot path, possibly empty.
        chroot: String,
    },
}

impl BackendUrl {
    /// Parses `url`.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for an unknown scheme, a missing host list
    /// or a malformed `host:port`.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &str| Error::UnsupportedUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad("expected <scheme>://…, e.g. memory://, etcd://host:2379, zk://host:2181")
        })?;
        let (hosts, path) = match rest.split_once('/') {
            Some((h, p)) => (h, p.trim_end_matches('/')),
            None => (rest, ""),
        };
        let hosts = || -> Result<Vec<String>> {
            if hosts.is_empty() {
                return Err(bad("no host:port given"));
            }
            hosts
                .split(',')
                .map(|h| {
                    let (host, port) = h
                        .rsplit_once(':')
                        .ok_or_else(|| bad("every host needs a :port"))?;
                    if host.is_empty() || port.parse::<u16>().is_err() {
                        return Err(bad("malformed host:port"));
                    }
                    Ok(h.to_string())
                })
                .collect()
        };
        match scheme {
            "memory" => Ok(BackendUrl::Memory {
                name: (!rest.is_empty()).then(|| rest.to_string()),
            }),
            "etcd" | "etcds" => Ok(BackendUrl::Etcd {
                endpoints: hosts()?,
                prefix: path.to_string(),
                tls: scheme == "etcds",
            }),
            "zk" | "zookeeper" => Ok(BackendUrl::ZooKeeper {
                servers: hosts()?,
                chroot: if path.is_empty() {
                    String::new()
                } else {
                    format!("/{path}")
                },
            }),
            _ => Err(bad(
                "unknown scheme: use memory://, etcd://, etcds:// or zk://",
            )),
        }
    }
}

/// Connects to the backend named by `url` and returns a shared handle.
///
/// Production code that builds against etcd can run its unit tests on the
/// in-memory backend by changing only this URL.
///
/// # Errors
/// [`Error::UnsupportedUrl`] for a malformed URL or one whose backend's
/// cargo feature is not enabled (the message names the feature), and the
/// backend's connection errors.
pub async fn connect(url: &str) -> Result<DynBackend> {
    match BackendUrl::parse(url)? {
        BackendUrl::Memory { name } => memory(url, name),
        BackendUrl::Etcd { .. } => Err(missing(url, "etcd")),
        BackendUrl::ZooKeeper { .. } => Err(missing(url, "zookeeper")),
    }
}

#[allow(dead_code)]
fn missing(url: &str, feature: &str) -> Error {
    Error::UnsupportedUrl {
        url: url.to_string(),
        reason: format!(
            "this build of tenure has no {feature} backend: enable the cargo feature `{feature}`"
        ),
    }
}

#[cfg(feature = "memory")]
fn memory(_url: &str, name: Option<String>) -> Result<DynBackend> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    use tenure_memory::MemoryBackend;

    static NAMED: OnceLock<Mutex<HashMap<String, MemoryBackend>>> = OnceLock::new();
    let backend = match name {
        None => MemoryBackend::new(),
        Some(name) => NAMED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_default()
            .clone(),
    };
    Ok(Arc::new(backend))
}

#[cfg(not(feature = "memory"))]
fn memory(url: &str, _name: Option<String>) -> Result<DynBackend> {
    Err(missing(url, "memory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        assert_eq!(
            BackendUrl::parse("memory://").unwrap(),
            BackendUrl::Memory { name: None }
        );
        assert_eq!(
            BackendUrl::parse("memory://tests").unwrap(),
            BackendUrl::Memory {
                name: Some("tests".into())
            }
        );
        assert_eq!(
            BackendUrl::parse("etcd://a:2379,b:2379/svc/").unwrap(),
            BackendUrl::Etcd {
                endpoints: vec!["a:2379".into(), "b:2379".into()],
                prefix: "svc".into(),
                tls: false
            }
        );
        assert!(matches!(
            BackendUrl::parse("etcds://a:2379").unwrap(),
            BackendUrl::Etcd { tls: true, .. }
        ));
        assert_eq!(
            BackendUrl::parse("zk://h:2181/app").unwrap(),
            BackendUrl::ZooKeeper {
                servers: vec!["h:2181".into()],
                chroot: "/app".into()
            }
        );
    }

    #[test]
    fn rejects_bad_urls_with_reason() {
        for (url, why) in [
            ("localhost:2379", "scheme"),
            ("redis://h:1", "unknown scheme"),
            ("etcd://", "no host"),
            ("etcd://h", ":port"),
            ("zk://h:notaport", "malformed"),
        ] {
            let e = BackendUrl::parse(url).unwrap_err();
            assert!(e.to_string().contains(why), "{url}: {e}");
        }
    }

    #[tokio::test]
    async fn compiled_out_backend_names_its_feature() {
        if cfg!(feature = "etcd") {
            return;
        }
        let e = connect("etcd://127.0.0.1:2379").await.unwrap_err();
        assert!(e.to_string().contains("feature `etcd`"), "{e}");
    }
}
