//! The memory backend against the conformance suite, under paused time:
//! once through the backend's own client, once through a separate client
//! with tight TTL bounds.

use std::sync::Arc;
use std::time::Duration;

use tenure_memory::MemoryBackend;
use tenure_testkit::conformance::{run_all, Capabilities};

#[tokio::test(start_paused = true)]
async fn memory_backend_conforms() {
    let backend = Arc::new(MemoryBackend::new());
    let caps = Capabilities::for_backend(&*backend);
    run_all(backend, caps).await;
}

#[tokio::test(start_paused = true)]
async fn memory_client_with_real_server_like_bounds_conforms() {
    let server = MemoryBackend::with_ttl_bounds(Duration::from_secs(2), Duration::from_secs(60))
        .expect("valid bounds");
    let client = Arc::new(server.client());
    let caps = Capabilities::for_backend(&*client);
    assert_eq!(
        caps.expiry_ttl,
        Duration::from_secs(2),
        "clamped to the minimum"
    );
    run_all(client, caps).await;
}
