//! Learning the server's session-timeout bounds (`minSessionTimeout`,
//! `maxSessionTimeout`) from the session handshake itself.
//!
//! A ZooKeeper server clamps the session timeout a client asks for into
//! its bounds and answers with the result. So asking for 1 ms yields the
//! minimum and asking for `i32::MAX` ms the maximum. The handshake is done
//! by hand on a plain TCP connection (the client library stretches tiny
//! timeouts on its side), and the probe session is closed right away.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The TLS settings of a probe's connection (`None`: plain TCP).
#[cfg(feature = "tls")]
pub(crate) type ProbeTls = std::sync::Arc<tenure_core::tls::RustlsClientConfig>;
/// The TLS settings of a probe's connection: none without the `tls`
/// feature.
#[cfg(not(feature = "tls"))]
pub(crate) type ProbeTls = std::convert::Infallible;

/// The hosts of a connect string (`host:port,...[/chroot]`, optionally
/// `tcp://host:port`), without the chroot.
pub(crate) fn hosts(connect: &str) -> Vec<String> {
    connect
        .split(',')
        .map(|h| h.trim())
        .map(|h| h.strip_prefix("tcp://").unwrap_or(h))
        .map(|h| match h.find('/') {
            Some(i) => &h[..i],
            None => h,
        })
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains(':') {
                h.to_owned()
            } else {
                format!("{h}:2181")
            }
        })
        .collect()
}

/// Asks `host` for a session of `requested` and returns what the server
/// granted, over TLS when `tls` is given.
async fn negotiate(
    host: &str,
    requested: Duration,
    tls: Option<&ProbeTls>,
) -> std::io::Result<Duration> {
    match tls {
        None => {
            let mut s = TcpStream::connect(host).await?;
            s.set_nodelay(true)?;
            handshake(&mut s, requested).await
        }
        #[cfg(feature = "tls")]
        Some(config) => {
            let name = tenure_core::tls::host_of(host);
            let mut s = tenure_core::tls::connect(host, name, config.clone()).await?;
            handshake(&mut s, requested).await
        }
        #[cfg(not(feature = "tls"))]
        Some(never) => match *never {},
    }
}

/// The session handshake of [`negotiate`] on an open connection.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    requested: Duration,
) -> std::io::Result<Duration> {
    // ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId,
    // passwd (16 zero bytes), readOnly.
    let ms = requested.as_millis().min(i32::MAX as u128) as i32;
    let mut body = Vec::with_capacity(45);
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(&ms.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(&16i32.to_be_bytes());
    body.extend_from_slice(&[0u8; 16]);
    body.push(0);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame).await?;
    let len = s.read_i32().await?;
    if !(8..=4096).contains(&len) {
        return Err(std::io::Error::other(format!(
            "unexpected connect response length {len}"
        )));
    }
    let mut resp = vec![0u8; len as usize];
    s.read_exact(&mut resp).await?;
    // ConnectResponse: protocolVersion, timeOut, sessionId, passwd, ...
    let granted = i32::from_be_bytes([resp[4], resp[5], resp[6], resp[7]]);
    let session = if resp.len() >= 16 {
        i64::from_be_bytes([
            resp[8], resp[9], resp[10], resp[11], resp[12], resp[13], resp[14], resp[15],
        ])
    } else {
        0
    };
    if session != 0 {
        // closeSession: RequestHeader { xid, type = -11 }.
        let mut close = 8i32.to_be_bytes().to_vec();
        close.extend_from_slice(&1i32.to_be_bytes());
        close.extend_from_slice(&(-11i32).to_be_bytes());
        let _ = s.write_all(&close).await;
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_millis(500), s.read(&mut sink)).await;
    }
    if granted <= 0 {
        return Err(std::io::Error::other(format!(
            "server granted a session timeout of {granted} ms"
        )));
    }
    Ok(Duration::from_millis(granted as u64))
}

/// The server's `(minSessionTimeout, maxSessionTimeout)`, from the first
/// host of `connect` that answers within `timeout`: one attempt over the
/// hosts. The error explains why each host failed (see [`explain`]); the
/// caller retries.
pub(crate) async fn session_bounds(
    connect: &str,
    timeout: Duration,
    tls: Option<&ProbeTls>,
) -> Result<(Duration, Duration), String> {
    let mut causes = Vec::new();
    for host in hosts(connect) {
        let probe = async {
            let min = negotiate(&host, Duration::from_millis(1), tls).await?;
            let max = negotiate(&host, Duration::from_millis(i32::MAX as u64), tls).await?;
            Ok::<_, std::io::Error>((min, max))
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(bounds)) => return Ok(bounds),
            Ok(Err(e)) => causes.push(explain(&host, &e)),
            Err(_) => causes.push(format!("{host}: no handshake answer within {timeout:?}")),
        }
    }
    if causes.is_empty() {
        causes.push("no host in the connect string".to_owned());
    }
    Err(causes.join("; "))
}

/// Why a handshake with `host` failed, in words an operator can act on.
///
/// A ZooKeeper server closes a connection right after accepting it when
/// the client's host already holds `maxClientCnxns` connections (60 by
/// default): the client then reads an unexpected end of file, or its write
/// fails with a broken pipe or a reset. Those causes carry the hint.
pub(crate) fn explain(host: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::UnexpectedEof | K::BrokenPipe | K::ConnectionReset | K::ConnectionAborted => format!(
            "{host}: the server closed the connection during the handshake ({e}); the server \
             may be refusing connections beyond maxClientCnxns per host (60 by default: \
             raise it in zoo.cfg, 0 means no limit, or open fewer sessions from this host)"
        ),
        K::ConnectionRefused => format!("{host}: connection refused ({e}): is ZooKeeper running?"),
        _ => format!("{host}: {e}"),
    }
}

/// One handshake with each host of `connect` (each bounded by `timeout`),
/// to say why sessions cannot be opened when the client library only
/// reports "no available hosts".
pub(crate) async fn diagnose(connect: &str, timeout: Duration, tls: Option<&ProbeTls>) -> String {
    let mut found = Vec::new();
    for host in hosts(connect) {
        let handshake = negotiate(&host, Duration::from_millis(1), tls);
        found.push(match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(_)) => format!(
                "{host}: a test handshake just succeeded (the server was too busy to answer \
                 in time: a longer connect_timeout may help)"
            ),
            Ok(Err(e)) => explain(&host, &e),
            Err(_) => format!("{host}: a test handshake got no answer within {timeout:?}"),
        });
    }
    found.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_a_connect_string() {
        assert_eq!(
            hosts("a:1,tcp://b:2,c/chroot/x"),
            vec!["a:1".to_owned(), "b:2".to_owned(), "c:2181".to_owned()]
        );
        assert!(hosts(" , ").is_empty());
    }

    #[test]
    fn a_closed_handshake_points_to_max_client_cnxns() {
        for kind in [
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::BrokenPipe,
        ] {
            let text = explain("h:1", &std::io::Error::from(kind));
            assert!(text.starts_with("h:1: "), "{text}");
            assert!(text.contains("maxClientCnxns"), "{text}");
        }
        let refused = explain("h:1", &std::io::ErrorKind::ConnectionRefused.into());
        assert!(!refused.contains("maxClientCnxns"), "{refused}");
    }
}
