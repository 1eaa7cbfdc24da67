//! Test certificates, generated afresh for each test: a certificate
//! authority, a server certificate for `127.0.0.1`, client certificates
//! (valid, expired, and one from another authority), written as PEM files
//! into a temporary directory that goes when the [`TestPki`] drops.
//!
//! ```no_run
//! # fn demo() -> Result<(), tenure_testkit::harness::HarnessError> {
//! let pki = tenure_testkit::pki::TestPki::generate()?;
//! let client = pki.client("tenure")?;
//! println!("ca {} cert {} key {}", pki.ca().display(), client.cert.display(), client.key.display());
//! # Ok(()) }
//! ```
//!
//! The server certificate names the IP address `127.0.0.1` and the DNS
//! name [`SERVER_NAME`], and nothing else: a client that reaches the server
//! as `localhost`, or expects another name, must fail the name check.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::harness::{io, HarnessError};

/// The DNS name in the server certificate besides `127.0.0.1`, for tests
/// that name the expected server explicitly.
pub const SERVER_NAME: &str = "server.tenure.test";

/// A certificate and its private key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// The certificate (`-----BEGIN CERTIFICATE-----`).
    pub cert: PathBuf,
    /// Its private key (PKCS#8, `-----BEGIN PRIVATE KEY-----`).
    pub key: PathBuf,
}

/// One certificate authority that can sign certificates.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl Authority {
    fn new(name: &str) -> Result<Authority, HarnessError> {
        let key = KeyPair::generate().map_err(pki_error("generate a CA key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(pki_error("self-sign the CA"))?;
        Ok(Authority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Signs a leaf certificate; returns (certificate PEM, key PEM).
    fn sign(&self, leaf: Leaf<'_>) -> Result<(String, String), HarnessError> {
        let key = KeyPair::generate().map_err(pki_error("generate a key"))?;
        let mut params = CertificateParams::new(leaf.names.to_vec())
            .map_err(pki_error("build certificate parameters"))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, leaf.common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = leaf.usages.to_vec();
        params.use_authority_key_identifier_extension = true;
        if leaf.expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(pki_error("sign a certificate"))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// What a leaf certificate holds.
struct Leaf<'a> {
    common_name: &'a str,
    names: &'a [String],
    usages: &'a [ExtendedKeyUsagePurpose],
    expired: bool,
}

fn pki_error(what: &'static str) -> impl Fn(rcgen::Error) -> HarnessError {
    move |e| HarnessError::Io {
        what: what.to_owned(),
        source: std::io::Error::other(e),
    }
}

/// A test PKI in a temporary directory: see the [module docs](self).
pub struct TestPki {
    dir: tempfile::TempDir,
    ca: Authority,
    other: Authority,
    server: CertFiles,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl TestPki {
    /// Generates the two authorities and the server certificate, and
    /// writes them into a fresh temporary directory.
    ///
    /// # Errors
    /// [`HarnessError::Io`] when generating or writing fails.
    pub fn generate() -> Result<TestPki, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("tenure-pki-")
            .tempdir()
            .map_err(io("create a temporary directory"))?;
        let ca = Authority::new("tenure test CA")?;
        let other = Authority::new("another test CA")?;
        write(&dir.path().join("ca.pem"), &ca.cert_pem)?;
        write(&dir.path().join("other-ca.pem"), &other.cert_pem)?;
        let names = ["127.0.0.1".to_owned(), SERVER_NAME.to_owned()];
        let (cert, key) = ca.sign(Leaf {
            common_name: "tenure test server",
            names: &names,
            // Servers present it to clients, and etcd also uses its
            // server certificate as a client of itself.
            usages: &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            expired: false,
        })?;
        let server = CertFiles {
            cert: dir.path().join("server.pem"),
            key: dir.path().join("server-key.pem"),
        };
        write(&server.cert, &cert)?;
        write(&server.key, &key)?;
        // ZooKeeper's PEM key store: the key and its certificate in one
        // file.
        write(
            &dir.path().join("server-keystore.pem"),
            &format!("{key}{cert}"),
        )?;
        Ok(TestPki {
            dir,
            ca,
            other,
            server,
        })
    }

    /// The directory holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate that signed the server and client certificates.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The certificate of the other authority (which signed
    /// [`foreign_client`](Self::foreign_client)).
    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// The server's certificate and key.
    pub fn server(&self) -> &CertFiles {
        &self.server
    }

    /// The server's key and certificate in one PEM file (ZooKeeper's
    /// `ssl.keyStore.type=PEM`).
    pub fn server_keystore(&self) -> PathBuf {
        self.dir.path().join("server-keystore.pem")
    }

    /// A valid client certificate with common name `name` (etcd takes the
    /// common name as the user name when client-certificate auth is on),
    /// signed by [`ca`](Self::ca).
    ///
    /// # Errors
    /// As [`generate`](Self::generate).
    pub fn client(&self, name: &str) -> Result<CertFiles, HarnessError> {
        self.leaf(&self.ca, name, "client", false)
    }

    /// A client certificate that expired in 2021, signed by
    /// [`ca`](Self::ca).
    ///
    /// # Errors
    /// As [`generate`](Self::generate).
    pub fn expired_client(&self, name: &str) -> Result<CertFiles, HarnessError> {
        self.leaf(&self.ca, name, "expired", true)
    }

    /// A client certificate signed by the other authority, which the
    /// servers do not trust.
    ///
    /// # Errors
    /// As [`generate`](Self::generate).
    pub fn foreign_client(&self, name: &str) -> Result<CertFiles, HarnessError> {
        self.leaf(&self.other, name, "foreign", false)
    }

    /// A server certificate for `127.0.0.1` signed by the other authority,
    /// which clients trusting [`ca`](Self::ca) must refuse.
    ///
    /// # Errors
    /// As [`generate`](Self::generate).
    pub fn foreign_server(&self) -> Result<CertFiles, HarnessError> {
        let names = ["127.0.0.1".to_owned(), SERVER_NAME.to_owned()];
        let (cert, key) = self.other.sign(Leaf {
            common_name: "impostor server",
            names: &names,
            usages: &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            expired: false,
        })?;
        self.store("impostor-server", &cert, &key)
    }

    fn leaf(
        &self,
        authority: &Authority,
        name: &str,
        tag: &str,
        expired: bool,
    ) -> Result<CertFiles, HarnessError> {
        let (cert, key) = authority.sign(Leaf {
            common_name: name,
            names: &[],
            usages: &[ExtendedKeyUsagePurpose::ClientAuth],
            expired,
        })?;
        self.store(&format!("{tag}-{name}"), &cert, &key)
    }

    fn store(&self, stem: &str, cert: &str, key: &str) -> Result<CertFiles, HarnessError> {
        let files = CertFiles {
            cert: self.dir.path().join(format!("{stem}.pem")),
            key: self.dir.path().join(format!("{stem}-key.pem")),
        };
        write(&files.cert, cert)?;
        write(&files.key, key)?;
        Ok(files)
    }
}

fn write(path: &Path, text: &str) -> Result<(), HarnessError> {
    std::fs::write(path, text).map_err(io(format!("write {}", path.display())))
}

/// For each `(what, url, cause)`, connects with `connect(url)` and checks
/// that it is refused with [`Error::Tls`](tenure_core::Error::Tls) from
/// `backend`, naming `cause`, not transient, and within `connect_timeout`
/// (refused at the first attempt, not retried until the timeout); `guard`
/// only keeps a hang from stalling the test.
///
/// # Panics
/// On any case that connects, hangs, or fails otherwise.
pub async fn assert_refused_by_tls<T, F, Fut>(
    backend: &str,
    cases: &[(&str, String, &str)],
    connect_timeout: std::time::Duration,
    guard: std::time::Duration,
    connect: F,
) where
    T: std::fmt::Debug,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = tenure_core::Result<T>>,
{
    for (what, url, cause) in cases {
        let t0 = std::time::Instant::now();
        let err = match tokio::time::timeout(guard, connect(url.clone())).await {
            Err(_) => panic!("{what}: connect hung"),
            Ok(Ok(b)) => panic!("{what}: connected: {b:?}"),
            Ok(Err(e)) => e,
        };
        let took = t0.elapsed();
        assert!(
            matches!(&err, tenure_core::Error::Tls { backend: b, .. } if *b == backend),
            "{what}: expected Error::Tls from {backend}, got {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(cause), "{what}: {text}");
        assert!(!err.is_transient(), "{what}");
        assert!(took < connect_timeout, "{what}: took {took:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pem_files() {
        let pki = TestPki::generate().unwrap();
        let client = pki.client("alice").unwrap();
        for path in [pki.ca(), pki.server_keystore(), client.cert, client.key] {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{}", path.display());
        }
        let dir = pki.dir().to_owned();
        drop(pki);
        assert!(!dir.exists());
    }
}
