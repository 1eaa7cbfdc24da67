//! TLS to ZooKeeper's `secureClientPort`: zookeeper-client's settings
//! from checked PEM files, the same settings for the backend's own
//! handshakes (the session-bounds probe), and telling a certificate
//! problem from a network one when a session cannot be opened.

use std::sync::Arc;
use std::time::Duration;

use tenure_core::credentials::TlsPem;
use tenure_core::tls::RustlsClientConfig;
use tenure_core::Error;
use zookeeper_client as zk;

use crate::error::KIND;
use crate::options::ZkOptions;
use crate::probe;

/// How long a diagnostic handshake after a failed attempt waits for the
/// server to refuse the client certificate.
const DIAGNOSIS_WAIT: Duration = Duration::from_secs(1);

/// zookeeper-client's TLS settings for `pem`.
///
/// # Errors
/// [`Error::InvalidConfig`] when the client library cannot use the PEM
/// data (it was checked to be PEM already).
pub(crate) fn client_options(pem: &TlsPem) -> Result<zk::TlsOptions, Error> {
    let invalid = |what: &str, e: zk::Error| Error::InvalidConfig {
        field: "tls",
        reason: format!("the {what} cannot be used: {e}"),
    };
    let text = |what: &str, bytes: &[u8]| {
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::InvalidConfig {
            field: "tls",
            reason: format!("the {what} is not PEM text"),
        })
    };
    // zookeeper-client builds its rustls settings from the process-wide
    // default provider.
    tenure_core::tls::ensure_default_provider();
    let mut options = zk::TlsOptions::new();
    if let Some(ca) = &pem.ca {
        options = options
            .with_pem_ca(&text("CA certificate", ca)?)
            .map_err(|e| invalid("CA certificate", e))?;
    }
    if let Some((cert, key)) = &pem.identity {
        options = options
            .with_pem_identity(
                &text("client certificate", cert)?,
                &text("client key", key)?,
            )
            .map_err(|e| invalid("client certificate or key", e))?;
    }
    Ok(options)
}

/// The rustls settings of the backend's own handshakes, when `options`
/// use TLS.
///
/// # Errors
/// [`Error::InvalidConfig`] naming why the certificates cannot be used.
pub(crate) fn rustls_config(options: &ZkOptions) -> Result<Option<Arc<RustlsClientConfig>>, Error> {
    let Some(pem) = &options.tls else {
        return Ok(None);
    };
    tenure_core::tls::client_config(pem)
        .map(Some)
        .map_err(|reason| Error::InvalidConfig {
            field: "tls",
            reason,
        })
}

/// With TLS on, whether TLS is why sessions cannot be opened: one
/// diagnostic handshake per host of the connect string. `Some` is an
/// [`Error::Tls`] naming the cause, which retrying does not fix.
pub(crate) async fn failure(options: &ZkOptions) -> Option<Error> {
    let config = match rustls_config(options) {
        Ok(Some(config)) => config,
        Ok(None) => return None,
        Err(e) => return Some(e),
    };
    for host in probe::hosts(&options.connect) {
        let name = tenure_core::tls::host_of(&host).to_owned();
        if let Some(reason) =
            tenure_core::tls::diagnose(&host, &name, config.clone(), DIAGNOSIS_WAIT).await
        {
            return Some(Error::Tls {
                backend: KIND,
                endpoint: options.connect.clone(),
                reason,
            });
        }
    }
    None
}
