//! TLS shared by the backends, which both use rustls (with ring): the
//! client configuration built from checked PEM files, a diagnostic
//! handshake, and telling a TLS failure that retrying cannot fix (an
//! untrusted, expired or misnamed certificate on either side) from a
//! network failure.
//!
//! The backends call [`explain`] on a client error before classifying it
//! otherwise, and [`diagnose`] when a connection attempt failed without
//! saying why (a server that refuses the client certificate closes the
//! connection after the handshake, which client libraries report as a
//! closed connection). A `Some` from either becomes
//! [`Error::Tls`](crate::Error::Tls), which is permanent, so a bad
//! certificate fails `connect` at once with its cause instead of being
//! retried until the connect timeout runs out.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, Error as TlsError, RootCertStore};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub use rustls::ClientConfig as RustlsClientConfig;

use crate::credentials::TlsPem;

/// A rustls client configuration trusting the CA of `pem` (or, without
/// one, the system's trusted roots) and presenting its client
/// certificate, if any. Server certificates are always verified.
///
/// # Errors
/// The reason, in words, when the certificates or the key cannot be used
/// (the files were checked to be PEM, not that the key fits the
/// certificate), or no trusted root is found.
pub fn client_config(pem: &TlsPem) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match &pem.ca {
        Some(ca) => {
            for cert in CertificateDer::pem_slice_iter(ca) {
                let cert = cert.map_err(|e| format!("the CA certificate: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA certificate cannot be used: {e}"))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err("no CA given and no trusted root found on this system".into());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots);
    let config = match &pem.identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("the client certificate: {e}"))?;
            let key =
                PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("the client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate and key cannot be used: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Makes rustls's ring provider the process default, unless one is
/// installed already. Client libraries that build their TLS settings
/// from the process default (zookeeper-client does) cannot choose on
/// their own when more than one provider is compiled in.
pub fn ensure_default_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Whether `host` is a name or address a server certificate can be
/// checked against.
pub fn is_valid_server_name(host: &str) -> bool {
    ServerName::try_from(host.to_owned()).is_ok()
}

/// The host part of `host:port` (`[v6]:port` too), for checking the
/// server's certificate against.
pub fn host_of(addr: &str) -> &str {
    let host = match addr.rfind(':') {
        Some(i) if !addr[i + 1..].contains(']') => &addr[..i],
        _ => addr,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Opens a TLS connection to `addr` (`host:port`), checking the server's
/// certificate against `server_name`.
///
/// # Errors
/// The TCP connection or the handshake failed, or `server_name` is not a
/// name or address.
pub async fn connect(
    addr: &str,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            TlsError::UnsupportedNameType,
        )
    })?;
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    TlsConnector::from(config).connect(name, tcp).await
}

/// Finds out whether TLS is why connections to `addr` fail: one
/// handshake checking the server's certificate against `server_name`,
/// then a read of at most `wait`, which brings the alert a server sends
/// when it refuses the client certificate right after the handshake.
/// `None` when the server cannot be reached (a network matter) or the
/// handshake passed and nothing was refused within `wait`.
pub async fn diagnose(
    addr: &str,
    server_name: &str,
    config: Arc<ClientConfig>,
    wait: Duration,
) -> Option<String> {
    let sent_certificate = config.client_auth_cert_resolver.has_certs();
    let connected = tokio::time::timeout(wait, connect(addr, server_name, config)).await;
    let mut stream = match connected {
        Err(_) => return None,
        Ok(Err(e)) => return find(&e, Some(sent_certificate)),
        Ok(Ok(stream)) => stream,
    };
    let mut buf = [0u8; 64];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Err(e)) => find(&e, Some(sent_certificate)),
        _ => None,
    }
}

/// The TLS failure somewhere in `error`'s chain of sources, in words, or
/// `None` when there is none (or only one that may pass, such as a
/// connection closed mid-handshake).
pub fn explain(error: &(dyn StdError + 'static)) -> Option<String> {
    find(error, None)
}

/// As [`explain`]; `sent_certificate` says whether the client presented
/// a certificate, when known, so that a refusal can be told from a
/// missing certificate (servers send the same alert for both).
fn find(error: &(dyn StdError + 'static), sent_certificate: Option<bool>) -> Option<String> {
    let mut next = Some(error);
    // The chain is short; the bound only guards against a cycle.
    for _ in 0..32 {
        let e = next?;
        if let Some(tls) = e.downcast_ref::<TlsError>() {
            return describe(tls, sent_certificate);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // An `io::Error` wrapping another error hides it from
            // `source()`: look inside.
            if let Some(inner) = io.get_ref() {
                if let Some(found) = find(inner, sent_certificate) {
                    return Some(found);
                }
            }
        }
        next = e.source();
    }
    None
}

/// What a rustls error means for the user, or `None` for one that is not
/// about trust or configuration.
fn describe(e: &TlsError, sent_certificate: Option<bool>) -> Option<String> {
    let text = match e {
        TlsError::InvalidCertificate(cert) => describe_server_certificate(cert),
        TlsError::AlertReceived(alert) => describe_alert(*alert, sent_certificate)?,
        TlsError::NoCertificatesPresented => "the server presented no certificate".to_owned(),
        TlsError::InvalidMessage(_)
        | TlsError::InappropriateMessage { .. }
        | TlsError::InappropriateHandshakeMessage { .. } => {
            "the server did not answer in TLS: is this its TLS port (or does it serve plain \
             text there)?"
                .to_owned()
        }
        TlsError::PeerIncompatible(why) => {
            format!("the server and tenure share no TLS version or cipher suite ({why:?})")
        }
        TlsError::UnsupportedNameType => {
            "the host is not a name or IP address a certificate can be checked against".to_owned()
        }
        _ => return None,
    };
    Some(text)
}

fn describe_server_certificate(e: &CertificateError) -> String {
    use CertificateError as C;
    match e {
        C::UnknownIssuer => "the server's certificate is not signed by a trusted CA \
                             (check the CA file: `ca=` / --cacert)"
            .to_owned(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            let detail = match e {
                C::NotValidForNameContext {
                    expected,
                    presented,
                } => format!(": expected {expected:?}, the certificate names {presented:?}"),
                _ => String::new(),
            };
            format!(
                "the server's certificate does not name the host it was reached at{detail} \
                 (connect by a name the certificate holds, or set the expected name with \
                 `server_name=` where the backend supports it)"
            )
        }
        C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".to_owned(),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (check the clocks)".to_owned()
        }
        C::Revoked => "the server's certificate has been revoked".to_owned(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "the server's certificate is not meant for a TLS server".to_owned()
        }
        other => format!("the server's certificate was refused: {other:?}"),
    }
}

fn describe_alert(alert: AlertDescription, sent_certificate: Option<bool>) -> Option<String> {
    use AlertDescription as A;
    let about_certificate = matches!(
        alert,
        A::CertificateRequired
            | A::BadCertificate
            | A::CertificateUnknown
            | A::UnsupportedCertificate
            | A::HandshakeFailure
    );
    if about_certificate && sent_certificate == Some(false) {
        return Some(format!(
            "the server requires a client certificate and none was given (`cert=` and `key=` / \
             --cert and --key) (TLS alert {alert:?})"
        ));
    }
    let text = match alert {
        A::CertificateRequired => {
            "the server requires a client certificate and none was given (`cert=` and `key=` / \
             --cert and --key)"
        }
        A::CertificateExpired => "the server refused the client certificate: it has expired",
        A::UnknownCA => {
            "the server refused the client certificate: it is not signed by a CA the server \
             trusts"
        }
        A::BadCertificate | A::CertificateUnknown | A::UnsupportedCertificate => {
            "the server refused the client certificate (expired, not yet valid, or not signed by \
             a CA the server trusts)"
        }
        A::CertificateRevoked => "the server refused the client certificate: it was revoked",
        A::AccessDenied => "the server denied access to this client certificate",
        A::HandshakeFailure => {
            "the server ended the TLS handshake (no common cipher suite, or it refused the \
             client certificate)"
        }
        A::ProtocolVersion => "the server does not accept the TLS versions tenure offers",
        _ => return None,
    };
    Some(format!("{text} (TLS alert {alert:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rustls_errors_inside_io_errors_and_chains() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            TlsError::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let text = explain(&io).unwrap_or_default();
        assert!(text.contains("not signed by a trusted CA"), "{text}");

        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("transport error")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let alert = Outer(std::io::Error::other(TlsError::AlertReceived(
            AlertDescription::CertificateRequired,
        )));
        let text = explain(&alert).unwrap_or_default();
        assert!(text.contains("requires a client certificate"), "{text}");

        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(explain(&plain), None);
    }
}
