//! The reaper: a background task that expires leases when their TTL runs
//! out, so that entries disappear (and watchers hear of it) even when no
//! one calls the backend.
//!
//! It holds only a [`Weak`] reference to the server and exits once the
//! server is dropped. It sleeps until the earliest expiry, or until the
//! server signals that leases changed and the plan must be redone.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::server::Server;

/// Runs until the server is dropped.
pub(crate) async fn run(server: Weak<Server>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(server) = server.upgrade() else {
                return;
            };
            let next = server.lock().expire_due(Instant::now());
            next
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}
