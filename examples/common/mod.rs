//! What the examples share: the `--backend URL` argument, and a candidate
//! "process" that can be killed without any cleanup.

#![allow(dead_code)] // not every example uses every helper

use std::future::Future;

/// The backend URL of `--backend URL` (or `--backend=URL`), else
/// `default`: every example runs on any backend, on the in-memory one
/// unless told otherwise.
pub fn backend_url(default: &str) -> String {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--backend" {
            if let Some(url) = args.next() {
                return url;
            }
        } else if let Some(url) = arg.strip_prefix("--backend=") {
            return url.to_string();
        }
    }
    default.to_string()
}

/// Whether a URL names the in-memory backend (whose fault knobs some
/// examples use).
pub fn is_memory(url: &str) -> bool {
    url.starts_with("memory://")
}

/// A candidate running on a thread and runtime of its own, like a
/// separate process: [`crash`](Self::crash) tears it down at once, with
/// no resign, no revoke and no goodbye to the backend, so its lease
/// stays until the TTL runs out (a `kill -9`).
pub struct Process {
    crash: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Process {
    /// Runs `main` (made inside the new runtime) until it returns or the
    /// process is crashed.
    pub fn spawn<F, Fut>(name: &str, main: F) -> Process
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = tenure::Result<()>>,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let name = name.to_string();
        std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("{name}: cannot start a runtime: {e}");
                    return;
                }
            };
            let result = rt.block_on(async {
                tokio::select! {
                    r = main() => r,
                    _ = rx => Ok(()),
                }
            });
            if let Err(e) = result {
                eprintln!("{name}: {e}");
            }
            // Whatever is still running (keep-alives, a resign that the
            // drop of its handle asked for) is dropped unrun.
            rt.shutdown_background();
        });
        Process { crash: Some(tx) }
    }

    /// Kills the process: nothing of it runs any more.
    pub fn crash(&mut self) {
        if let Some(tx) = self.crash.take() {
            let _ = tx.send(());
        }
    }
}
