//! Telling a TLS failure that retrying cannot fix (an untrusted, expired
//! or misnamed certificate on either side) from a network failure, in the
//! error chains of the backends' client libraries, which both use rustls.
//!
//! The backends call [`explain`] on a client error before classifying it
//! otherwise: a `Some` becomes [`Error::Tls`](crate::Error::Tls), which is
//! permanent, so a bad certificate fails `connect` at once with its cause
//! instead of being retried until the connect timeout runs out.

use std::error::Error as StdError;

use rustls::{AlertDescription, CertificateError, Error as TlsError};

/// The TLS failure somewhere in `error`'s chain of sources, in words, or
/// `None` when there is none (or only one that may pass, such as a
/// connection closed mid-handshake).
pub fn explain(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(error);
    // The chain is short; the bound only guards against a cycle.
    for _ in 0..32 {
        let e = next?;
        if let Some(tls) = e.downcast_ref::<TlsError>() {
            return describe(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // An `io::Error` wrapping another error hides it from
            // `source()`: look inside.
            if let Some(inner) = io.get_ref() {
                if let Some(found) = explain(inner) {
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
fn describe(e: &TlsError) -> Option<String> {
    let text = match e {
        TlsError::InvalidCertificate(cert) => describe_server_certificate(cert),
        TlsError::AlertReceived(alert) => describe_alert(*alert)?,
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

fn describe_alert(alert: AlertDescription) -> Option<String> {
    use AlertDescription as A;
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
