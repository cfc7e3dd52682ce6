//! A TCP fault proxy between shopbridge and a real service: it forwards bytes, and on command
//! cuts every connection and refuses new ones, delays what passes through, or stalls (stops
//! forwarding while keeping every socket open, like a hung network). It counts the connections
//! it forwarded and the bytes the service sent, for tests of how much a client asks for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; dropping it stops accepting.
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    latency_ms: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
    from_upstream: Arc<AtomicU64>,
    cut: watch::Sender<u64>,
    stalled: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free local port.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let latency_ms = Arc::new(AtomicU64::new(0));
        let (cut, cut_rx) = watch::channel(0u64);
        let (stalled, stall_rx) = watch::channel(false);
        let (up2, lat2) = (up.clone(), latency_ms.clone());
        let forwarded = Arc::new(AtomicU64::new(0));
        let from_upstream = Arc::new(AtomicU64::new(0));
        let (fwd2, bytes2) = (forwarded.clone(), from_upstream.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // refused: closed at once
                    continue;
                }
                fwd2.fetch_add(1, Ordering::SeqCst);
                let (lat, mut cut_rx) = (lat2.clone(), cut_rx.clone());
                let stall = stall_rx.clone();
                let bytes = bytes2.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let a = pipe(cr, sw, lat.clone(), stall.clone(), None);
                    let b = pipe(sr, cw, lat, stall, Some(bytes));
                    cut_rx.borrow_and_update();
                    tokio::select! {
                        _ = a => {}
                        _ = b => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        FaultProxy {
            addr,
            up,
            latency_ms,
            forwarded,
            from_upstream,
            cut,
            stalled,
            task,
        }
    }

    /// Stops forwarding bytes in both directions, on open and new connections alike, while
    /// keeping every socket open: peers see silence, not a closed connection.
    #[allow(dead_code)] // used by tests/faults
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Forwards again what a [`FaultProxy::stall`] held back.
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }

    /// Cuts every open connection and refuses new ones until [`FaultProxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Connections forwarded so far (refused ones not counted).
    pub fn connections(&self) -> u64 {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// Bytes the service sent to clients so far.
    pub fn bytes_from_upstream(&self) -> u64 {
        self.from_upstream.load(Ordering::SeqCst)
    }

    /// Delays every chunk by `latency` in both directions.
    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap(),
            Ordering::SeqCst,
        );
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.resume();
        self.cut();
        self.task.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    latency_ms: Arc<AtomicU64>,
    mut stalled: watch::Receiver<bool>,
    counted: Option<Arc<AtomicU64>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // While stalled nothing is read either, so the sender's socket buffers fill up as on a
        // hung link. A cut ends the connection through the caller's select.
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = latency_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if let Some(counted) = &counted {
            counted.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
}
