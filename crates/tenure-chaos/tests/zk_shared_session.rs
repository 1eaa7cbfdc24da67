//! Regression test for a liveness bug the fault campaign found on
//! ZooKeeper (backend-restart faults): after a server restart a leader
//! took up to ~4 s beyond the TTL to appear, because the backend's shared
//! session (reads and watches) had reconnected to the server while it was
//! starting, got no answer, and waited out its connection timeout (by
//! default 2/5 of its 10 s session timeout) before trying again, while
//! every read of every campaign timed out meanwhile.
//!
//! The proxy reproduces it deterministically: connections reset, then the
//! first reconnection lands in a sink (accepted, never answered), then
//! the network heals.

use std::net::SocketAddr;
use std::time::Duration;

use tenure::backend::CoordinationBackend;
use tenure::zookeeper::{ZkBackend, ZkOptions};
use tenure::ElectionName;
use tenure_testkit::proxy::{Mode, Proxy};
use tenure_testkit::zk_server::ZkServer;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_session_serves_soon_after_a_reconnect_lands_on_a_silent_server() {
    let zk = ZkServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"));
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], zk.port())))
        .await
        .unwrap_or_else(|e| panic!("proxy: {e}"));
    // Default options: the shared session's timeout is 10 s.
    let backend =
        ZkBackend::connect(ZkOptions::new(proxy.local_addr().to_string()).root("/regress"))
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
    let name = ElectionName::new("e").unwrap_or_else(|e| panic!("{e}"));
    backend
        .candidates(&name)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));

    // The server goes away (connections reset) ...
    proxy.set_mode(Mode::Drop);
    tokio::time::sleep(Duration::from_millis(20)).await;
    // ... and the client's next attempt reaches a server that accepts the
    // connection but never answers (a JVM still starting).
    let before = proxy.accepted_connections();
    proxy.set_mode(Mode::Sink);
    let landed = Instant::now();
    while proxy.accepted_connections() == before {
        assert!(
            landed.elapsed() < Duration::from_secs(5),
            "the client never tried to reconnect"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.set_mode(Mode::Pass);
    let healed = Instant::now();
    loop {
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(300), backend.candidates(&name)).await
        {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(20),
            "no read served 20 s after the heal"
        );
    }
    let took = healed.elapsed();
    println!("first read served {took:?} after the heal");
    assert!(
        took < Duration::from_millis(2500),
        "the shared session served its first read {took:?} after the network healed"
    );
}
