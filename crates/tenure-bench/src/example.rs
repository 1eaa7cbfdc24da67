//! What the diagnostic examples (`examples/`) share: their size argument
//! and an etcd server of their own.

use tenure_testkit::etcd_server::EtcdServer;

use crate::error::{fail, Result};

/// The first command-line argument as a size, or `default` when it is
/// missing or not a number.
pub fn size_arg(default: usize) -> usize {
    std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A fresh single-node etcd server (free loopback ports, a temporary
/// directory) and the `etcd://` URL that reaches it.
///
/// # Errors
/// When the server cannot be started (the harness says why, e.g. etcd
/// not installed).
pub async fn etcd() -> Result<(EtcdServer, String)> {
    let server = EtcdServer::start()
        .await
        .map_err(|e| fail(format!("cannot start etcd: {e}")))?;
    let url = format!("etcd://{}", server.endpoint().trim_start_matches("http://"));
    Ok((server, url))
}
