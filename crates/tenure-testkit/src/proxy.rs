//! A fault-injecting TCP proxy on loopback.
//!
//! A [`Proxy`] listens on a free loopback port and forwards every
//! connection to one target. Its [`Mode`] can be switched at any moment,
//! for every connection at once:
//!
//! - [`Mode::Pass`]: forward everything.
//! - [`Mode::Drop`]: close every connection now, and close new ones as
//!   soon as they are accepted (a peer that went away, a firewall that
//!   resets).
//! - [`Mode::Blackhole`]: keep connections open but forward nothing; bytes
//!   wait in the proxy (and then in the kernel's buffers) and flow again,
//!   in order, when the mode changes back, as after a healed partition.
//! - [`Mode::Sink`]: accept connections and swallow every byte: nothing
//!   is forwarded or answered, ever, on a connection that met the sink
//!   (its bytes are lost), like a peer that accepted a connection and then
//!   hung or lost its state (a server starting up, a half-open socket). A
//!   client on such a connection learns nothing until its own timeout.
//! - [`Mode::Delay`]: forward each chunk after a fixed latency.
//! - [`Mode::Slow`]: forward at a bounded rate.
//!
//! Tests put one proxy between each client and each server so that one
//! client can be cut off while the others go on.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tenure_testkit::proxy::{Mode, Proxy};
//! let proxy = Proxy::start("127.0.0.1:2379".parse().unwrap()).await?;
//! println!("connect to {}", proxy.local_addr());
//! proxy.set_mode(Mode::Blackhole); // partition
//! proxy.set_mode(Mode::Pass); // heal
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Size of the chunks the proxy reads and forwards.
const CHUNK: usize = 16 * 1024;

/// What a [`Proxy`] does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything at once.
    Pass,
    /// Close every connection, and every new one at once.
    Drop,
    /// Keep connections open, forward nothing until the mode changes.
    Blackhole,
    /// Accept connections and swallow every byte; connections that met
    /// the sink stay sinks after the mode changes.
    Sink,
    /// Forward each chunk this long after it was read (each direction).
    Delay(Duration),
    /// Forward at most this many bytes per second (each direction).
    Slow {
        /// The rate.
        bytes_per_sec: u64,
    },
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Pass => f.write_str("pass"),
            Mode::Drop => f.write_str("drop"),
            Mode::Blackhole => f.write_str("blackhole"),
            Mode::Sink => f.write_str("sink"),
            Mode::Delay(d) => write!(f, "delay {d:?}"),
            Mode::Slow { bytes_per_sec } => write!(f, "slow {bytes_per_sec} B/s"),
        }
    }
}

/// A TCP proxy from a free loopback port to one target, with a mode
/// switchable at run time. Dropping it closes the listener and every
/// connection.
#[derive(Debug)]
pub struct Proxy {
    local: SocketAddr,
    target: SocketAddr,
    mode: watch::Sender<Mode>,
    open: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    drop_next: Arc<AtomicUsize>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `target` on `127.0.0.1:<free port>`, in
    /// [`Mode::Pass`]. Must be called inside a tokio runtime, which runs
    /// the proxy's tasks.
    ///
    /// # Errors
    /// Binding the listening socket failed.
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let local = listener.local_addr()?;
        let (mode, rx) = watch::channel(Mode::Pass);
        let open = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let drop_next = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio::spawn(accept_loop(
            listener,
            target,
            rx,
            Counters {
                open: open.clone(),
                accepted: accepted.clone(),
                drop_next: drop_next.clone(),
            },
        ));
        Ok(Proxy {
            local,
            target,
            mode,
            open,
            accepted,
            drop_next,
            acceptor,
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address traffic goes to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Switches the mode for every current and future connection.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections accepted since the start (including those closed at
    /// once in [`Mode::Drop`] or by [`drop_next`](Self::drop_next)).
    pub fn accepted_connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Closes the next `n` connections as soon as they are accepted,
    /// whatever the mode, and forwards the ones after them as the mode
    /// says: one failed connection attempt among good ones.
    pub fn drop_next(&self, n: usize) {
        self.drop_next.store(n, Ordering::Relaxed);
    }
}

/// What the acceptor counts, shared with the [`Proxy`].
struct Counters {
    open: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    drop_next: Arc<AtomicUsize>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        // Connections end when they see the mode sender gone.
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    mode: watch::Receiver<Mode>,
    counters: Counters,
) {
    let Counters {
        open,
        accepted,
        drop_next,
    } = counters;
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        let dropped = drop_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if dropped || *mode.borrow() == Mode::Drop {
            drop(client);
            continue;
        }
        let mode = mode.clone();
        let open = open.clone();
        tokio::spawn(async move {
            open.fetch_add(1, Ordering::Relaxed);
            serve(client, target, mode).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Forwards one connection until either side closes or the mode drops it.
async fn serve(client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let _ = client.set_nodelay(true);
    // Connect to the target, unless the connection is dropped meanwhile;
    // in a blackhole the connect waits for the heal like any byte would.
    let server = loop {
        let current = *mode.borrow_and_update();
        match current {
            Mode::Drop => return,
            Mode::Blackhole => {}
            Mode::Sink => return swallow(client, mode).await,
            _ => break TcpStream::connect(target).await,
        }
        if mode.changed().await.is_err() {
            return;
        }
    };
    let Ok(server) = server else {
        return; // the target is down: the client sees the connection close
    };
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, mode.clone());
    let down = pump(server_read, client_write, mode);
    // When one direction ends because of a drop or an error, the other
    // ends too (both halves are dropped when this returns).
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Copies one direction, applying the mode to every chunk.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<Mode>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    // The end of the stream crosses the proxy like a byte
                    // would: not through a blackhole.
                    if hold(&mut mode, 0).await {
                        let _ = to.shutdown().await;
                    }
                    return;
                }
                Ok(n) => n,
            },
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow_and_update() == Mode::Drop {
                    return;
                }
                continue;
            }
        };
        if *mode.borrow() == Mode::Sink {
            // Lost, and so is everything after it on this connection.
            return swallow_half(from, to, mode).await;
        }
        if !hold(&mut mode, n).await {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A connection that met the sink: read and discard until the client
/// closes it or the mode drops it.
async fn swallow(client: TcpStream, mode: watch::Receiver<Mode>) {
    let (from, to) = client.into_split();
    discard(from, mode).await;
    drop(to);
}

/// One direction turned sink: discard what comes, keep the other end
/// open (and silent).
async fn swallow_half(from: OwnedReadHalf, to: OwnedWriteHalf, mode: watch::Receiver<Mode>) {
    discard(from, mode).await;
    drop(to);
}

async fn discard(mut from: OwnedReadHalf, mut mode: watch::Receiver<Mode>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow_and_update() == Mode::Drop {
                    return;
                }
            }
        }
    }
}

/// Waits as the mode asks before `n` bytes may be forwarded; `false` when
/// the connection must close instead.
async fn hold(mode: &mut watch::Receiver<Mode>, n: usize) -> bool {
    loop {
        let current = *mode.borrow_and_update();
        let wait = match current {
            Mode::Drop => return false,
            Mode::Pass => return true,
            Mode::Blackhole => None,
            // Reached only if the mode turned sink while the chunk waited:
            // let it through, the next chunk meets the sink.
            Mode::Sink => return true,
            Mode::Delay(d) => Some(d),
            Mode::Slow { bytes_per_sec } => Some(Duration::from_secs_f64(
                n as f64 / bytes_per_sec.max(1) as f64,
            )),
        };
        match wait {
            // Held until the mode changes.
            None => {
                if mode.changed().await.is_err() {
                    return false;
                }
            }
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => return true,
                    changed = mode.changed() => {
                        if changed.is_err() {
                            return false;
                        }
                        // Re-evaluate with the new mode (a heal forwards
                        // at once, a drop closes).
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server on loopback.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).await?;
        Ok(got)
    }

    #[tokio::test]
    async fn passes_then_blackholes_then_heals_in_order() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"one").await.unwrap(), b"one");

        proxy.set_mode(Mode::Blackhole);
        s.write_all(b"two").await.unwrap();
        let mut buf = [0u8; 3];
        // Nothing comes back while the partition lasts (paused time: the
        // timeout elapses without a wall-clock wait).
        tokio::time::pause();
        let held = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await;
        tokio::time::resume();
        assert!(held.is_err(), "bytes crossed a blackhole");

        proxy.set_mode(Mode::Pass);
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"two");
        assert_eq!(proxy.open_connections(), 1);
    }

    #[tokio::test]
    async fn drop_closes_connections_and_refuses_new_ones_until_healed() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"a").await.unwrap(), b"a");

        proxy.set_mode(Mode::Drop);
        let mut buf = [0u8; 1];
        // The proxy closes its end: the read sees EOF or a reset.
        let r = s.read(&mut buf).await;
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");

        let mut t = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let r = t.read(&mut buf).await;
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");

        proxy.set_mode(Mode::Pass);
        let mut u = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut u, b"b").await.unwrap(), b"b");
    }

    #[tokio::test]
    async fn sink_swallows_for_good_even_after_the_heal() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        proxy.set_mode(Mode::Sink);
        let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
        s.write_all(b"lost").await.unwrap();
        // The proxy has taken the connection (in the sink) before the heal.
        while proxy.open_connections() == 0 {
            tokio::task::yield_now().await;
        }
        proxy.set_mode(Mode::Pass);
        s.write_all(b"also lost").await.unwrap();
        let mut buf = [0u8; 4];
        tokio::time::pause();
        let got = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        tokio::time::resume();
        assert!(got.is_err(), "a sink answered: {got:?}");
        // A new connection after the heal works.
        let mut t = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut t, b"ok").await.unwrap(), b"ok");
        // Dropping closes the sink too.
        proxy.set_mode(Mode::Drop);
        let r = s.read(&mut buf).await;
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn delay_and_slow_hold_each_chunk() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
        proxy.set_mode(Mode::Delay(Duration::from_millis(300)));
        let start = tokio::time::Instant::now();
        assert_eq!(round_trip(&mut s, b"xy").await.unwrap(), b"xy");
        // Both directions are delayed (tokio's paused clock, not the wall).
        assert!(start.elapsed() >= Duration::from_millis(600));

        proxy.set_mode(Mode::Slow { bytes_per_sec: 10 });
        let start = tokio::time::Instant::now();
        assert_eq!(
            round_trip(&mut s, b"0123456789").await.unwrap(),
            b"0123456789"
        );
        assert!(start.elapsed() >= Duration::from_secs(2));
        assert_eq!(proxy.mode(), Mode::Slow { bytes_per_sec: 10 });
    }
}
