//! Secrets and certificates kept off the command line: a password read
//! from a file, and the PEM files of a TLS connection (CA certificate,
//! client certificate, client key).
//!
//! Each file is read once, when the options are built, and checked at
//! once: a missing, unreadable, empty or malformed file fails with
//! [`Error::CredentialFile`] naming the file and what was wrong, before
//! any connection is tried. The contents never appear in an error, a log
//! line or a `Debug` output.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Result};

/// Reads a password from `path`: the whole file, less one trailing line
/// break (`\n` or `\r\n`), so that `echo secret > file` works.
///
/// # Errors
/// [`Error::CredentialFile`] when the file cannot be read, is not UTF-8,
/// or holds no password.
pub fn read_password_file(path: &Path) -> Result<String> {
    let bad = |reason: String| Error::CredentialFile {
        what: "password",
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    let mut text = String::from_utf8(bytes).map_err(|_| bad("is not UTF-8 text".into()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(bad("is empty".into()));
    }
    Ok(text)
}

/// What a PEM file or buffer should hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemKind {
    /// One or more CA certificates (`-----BEGIN CERTIFICATE-----`).
    CaCertificate,
    /// The client's certificate, optionally followed by its chain.
    ClientCertificate,
    /// The client's private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    ClientKey,
}

impl PemKind {
    /// How the kind is named in errors.
    pub fn name(self) -> &'static str {
        match self {
            PemKind::CaCertificate => "CA certificate",
            PemKind::ClientCertificate => "client certificate",
            PemKind::ClientKey => "client key",
        }
    }

    /// Checks that `bytes` hold this kind of PEM data.
    ///
    /// # Errors
    /// The reason, in words, without the contents.
    pub fn check(self, bytes: &[u8]) -> std::result::Result<(), String> {
        let describe = |e: pem::Error| match e {
            pem::Error::NoItemsFound => "holds no PEM section of the expected kind".to_owned(),
            pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_owned(),
            pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_owned(),
            pem::Error::Base64Decode(_) => "a PEM section is not valid base64".to_owned(),
            other => format!("is not valid PEM: {other}"),
        };
        match self {
            PemKind::CaCertificate | PemKind::ClientCertificate => {
                let mut found = 0;
                for cert in CertificateDer::pem_slice_iter(bytes) {
                    cert.map_err(describe)?;
                    found += 1;
                }
                if found == 0 {
                    return Err("holds no certificate (-----BEGIN CERTIFICATE-----)".into());
                }
                Ok(())
            }
            PemKind::ClientKey => match PrivateKeyDer::from_pem_slice(bytes) {
                Ok(_) => Ok(()),
                Err(pem::Error::NoItemsFound) => {
                    Err("holds no private key (-----BEGIN PRIVATE KEY-----, \
                         RSA PRIVATE KEY or EC PRIVATE KEY)"
                        .into())
                }
                Err(e) => Err(describe(e)),
            },
        }
    }

    /// Reads `path` and checks that it holds this kind of PEM data.
    ///
    /// # Errors
    /// [`Error::CredentialFile`] naming the file and what was wrong.
    pub fn read(self, path: &Path) -> Result<Vec<u8>> {
        let bad = |reason: String| Error::CredentialFile {
            what: self.name(),
            path: path.to_owned(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        self.check(&bytes).map_err(bad)?;
        Ok(bytes)
    }
}

/// The paths of a TLS connection's PEM files, as given in a URL
/// (`ca=`, `cert=`, `key=`) or on the command line (`--cacert`,
/// `--cert`, `--key`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate(s) to verify the server with.
    pub ca: Option<PathBuf>,
    /// The client certificate (mutual TLS); goes with `key`.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key; goes with `cert`.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// Reads and checks every file given.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when only one of `cert` and `key` is
    /// given; [`Error::CredentialFile`] naming the first file that cannot
    /// be read or does not hold what it should.
    pub fn load(&self) -> Result<TlsPem> {
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((
                PemKind::ClientCertificate.read(cert)?,
                PemKind::ClientKey.read(key)?,
            )),
            (None, None) => None,
            _ => {
                return Err(Error::InvalidConfig {
                    field: "cert",
                    reason: "a client certificate and its key go together: give both `cert` and \
                             `key` (--cert and --key)"
                        .into(),
                })
            }
        };
        let ca = match &self.ca {
            Some(ca) => Some(PemKind::CaCertificate.read(ca)?),
            None => None,
        };
        Ok(TlsPem { ca, identity })
    }
}

/// The contents of a TLS connection's PEM files, checked. Its `Debug`
/// output shows only which parts are present.
#[derive(Clone, Default)]
pub struct TlsPem {
    /// CA certificate(s), PEM.
    pub ca: Option<Vec<u8>>,
    /// Client certificate and private key, PEM.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsPem")
            .field("ca", &self.ca.is_some())
            .field("client_identity", &self.identity.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIBAA==\n-----END PRIVATE KEY-----\n";

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tenure-credentials-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn password_files_lose_one_trailing_newline_and_must_not_be_empty() {
        let dir = temp_dir("pw");
        let p = file(&dir, "a", "s3cret\n");
        assert_eq!(read_password_file(&p).unwrap(), "s3cret");
        let p = file(&dir, "b", "with space \r\n");
        assert_eq!(read_password_file(&p).unwrap(), "with space ");
        let p = file(&dir, "c", "\n");
        let e = read_password_file(&p).unwrap_err();
        assert!(matches!(
            e,
            Error::CredentialFile {
                what: "password",
                ..
            }
        ));
        assert!(e.to_string().contains("is empty"), "{e}");
        let missing = dir.join("missing");
        let e = read_password_file(&missing).unwrap_err().to_string();
        assert!(e.contains("missing") && e.contains("cannot be read"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pem_files_are_checked_and_named_without_their_contents() {
        let dir = temp_dir("pem");
        let cert = file(&dir, "cert.pem", CERT);
        let key = file(&dir, "key.pem", KEY);
        let loaded = TlsFiles {
            ca: Some(cert.clone()),
            cert: Some(cert.clone()),
            key: Some(key.clone()),
        }
        .load()
        .unwrap();
        assert!(loaded.ca.is_some() && loaded.identity.is_some());
        assert!(!format!("{loaded:?}").contains("MIIB"));

        let garbage = file(&dir, "garbage.pem", "hello\n");
        let truncated = file(&dir, "cut.pem", "-----BEGIN CERTIFICATE-----\nMIIBAA==\n");
        for (files, expect_path, expect) in [
            (
                TlsFiles {
                    ca: Some(garbage.clone()),
                    ..TlsFiles::default()
                },
                &garbage,
                "holds no certificate",
            ),
            (
                TlsFiles {
                    ca: Some(truncated.clone()),
                    ..TlsFiles::default()
                },
                &truncated,
                "no END line",
            ),
            (
                TlsFiles {
                    cert: Some(cert.clone()),
                    key: Some(cert.clone()),
                    ..TlsFiles::default()
                },
                &cert,
                "holds no private key",
            ),
        ] {
            let e = files.load().unwrap_err();
            assert!(matches!(e, Error::CredentialFile { .. }), "{e:?}");
            let text = e.to_string();
            assert!(text.contains(&*expect_path.to_string_lossy()), "{text}");
            assert!(text.contains(expect), "{text}");
            assert!(!e.is_transient());
        }
        let e = TlsFiles {
            cert: Some(cert),
            ..TlsFiles::default()
        }
        .load()
        .unwrap_err();
        assert!(
            matches!(e, Error::InvalidConfig { field: "cert", .. }),
            "{e}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
