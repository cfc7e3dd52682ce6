//! The HTTP/1.1 connection loop: what a client may cost before it sends a request. A public
//! endpoint meets clients that open sockets and say nothing, send a request head one line at a
//! time, or keep a connection idle forever; `axum::serve` bounds none of that. Here:
//!
//! - at most `max_connections` are open; further clients wait in the listen backlog until one
//!   closes (waiting, not refusing, so a burst of shops is served a moment later);
//! - a request head (request line and headers) must arrive within `header_timeout` of its first
//!   byte, or of the connection being accepted;
//! - a kept-alive connection idle for `idle_timeout` between requests is closed;
//! - while a client waits for a slot, the open connections make room: each finishes the
//!   request it is serving (or, idle between requests, none) and closes, so clients that hold
//!   their slots with a cheap request just before each keep-alive timeout cannot lock others out.
//!
//! Reading the body and answering are bounded by the router's request timeout, not here.
//!
//! hyper's own `header_read_timeout` starts its clock when a connection begins to wait for a
//! request, so it would also cap the idle time between requests at the header timeout; behind
//! a proxy that keeps connections open for a minute, that closes connections the proxy is about
//! to reuse. So the clock is kept here, around the socket: [`Watched`] fails a read or write
//! that is still waiting when the deadline of the connection's current phase passes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::config::ServeSettings;

/// What one client connection may cost.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time from a request head's first byte (or the accept) to its end.
    pub header_timeout: Duration,
    /// Time a connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits `settings` configure.
    #[must_use]
    pub fn of(settings: &ServeSettings) -> Self {
        ConnectionLimits {
            header_timeout: settings.header_timeout,
            idle_timeout: settings.keep_alive_timeout,
            max_connections: settings.max_connections,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `stop` fires, then stops accepting,
/// lets the requests in flight finish (their confirms included) and returns.
///
/// # Errors
/// Never today: accept errors are logged and retried, as `axum::serve` does.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Each send tells every open connection that the slots ran out (see `make_room`). A
    // `watch` rather than a `Notify`: a connection busy when it is sent still sees it the next
    // time it waits, so no connection misses it and it need not be repeated.
    let pressure = watch::Sender::new(());
    let connections = TaskTracker::new();
    loop {
        // A slot first, then the accept: past the cap, clients wait in the listen backlog.
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Every slot is held: the open connections close after the request they are
                // serving. Closing them all, not only as many as clients wait (which the
                // backlog does not tell) or the longest idle (which needs a registry of
                // connections), is the simple rule that no client can game: what it costs is
                // keep-alive while the cap is reached, that is one request per connection.
                pressure.send_replace(());
                let slot = tokio::select! {
                    () = stop.cancelled() => break,
                    slot = Arc::clone(&slots).acquire_owned() => slot,
                };
                let Ok(slot) = slot else { break }; // closed: never, nothing closes `slots`
                slot
            }
        };
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let stop = stop.clone();
        let pressure = pressure.subscribe();
        connections.spawn(async move {
            serve_connection(stream, peer, router, limits, stop, pressure).await;
            drop(slot);
        });
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Errors of one connection (reset, aborted) are the client's; running out of file descriptors
/// is ours and passes with time, so wait a moment instead of spinning.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "Accepting a connection failed; retrying in a second.");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection's requests, each with the peer's address as `ConnectInfo` (what
/// `into_make_service_with_connect_info` gives axum handlers: the console's login throttle tells
/// clients apart by it, see `http::client`). Closes after the request under way once
/// `pressure` says a client waits for a slot.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
    mut pressure: watch::Receiver<()>,
) {
    let clock = Arc::new(Clock::new());
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&clock), limits));
    let service_clock = Arc::clone(&clock);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = Busy::begin(&service_clock);
        let router = router.clone();
        async move {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut response = router.oneshot(req).await?;
            if busy.0.closing() {
                // hyper closes the connection once this response is sent.
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, std::convert::Infallible>(response.map(|body| Sending { body, _busy: busy }))
        }
    });
    let mut builder = http1::Builder::new();
    // The clock above replaces hyper's header timeout (see the module comment).
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            () = stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                break conn.await;
            }
            Ok(()) = pressure.changed() => {
                if clock.make_room() {
                    conn.as_mut().graceful_shutdown();
                    break conn.await;
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "Connection closed.");
    }
}

/// Where a connection stands: waiting for a request head (since when, and whether one began),
/// or busy with requests.
#[derive(Debug)]
struct Phase {
    /// Requests being answered; the connection has no deadline while there are any.
    busy: usize,
    /// When the connection last became idle (or was accepted).
    idle_since: Instant,
    /// When the first byte of the next request head arrived, if one did.
    head_since: Option<Instant>,
    /// The connection task, as last seen waiting on the socket: woken when the connection
    /// becomes idle, since hyper does not read again by itself then, and the idle deadline
    /// must be armed (hyper does the same for its own header timeout).
    waiting: Option<Waker>,
    /// A client waits for a slot: the next response closes the connection.
    closing: bool,
}

/// A connection's [`Phase`], shared by its socket and its service.
#[derive(Debug)]
struct Clock(Mutex<Phase>);

impl Clock {
    /// A connection just accepted: its first request head is due within the header timeout.
    fn new() -> Self {
        let now = Instant::now();
        Clock(Mutex::new(Phase {
            busy: 0,
            idle_since: now,
            head_since: Some(now),
            waiting: None,
            closing: false,
        }))
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes arrived: on an idle connection, the next request head has begun.
    fn bytes_read(&self) {
        let mut p = self.phase();
        if p.busy == 0 && p.head_since.is_none() {
            p.head_since = Some(Instant::now());
        }
    }

    /// A client waits for a slot: the connection is to close after the request under way.
    /// Returns whether hyper may be told now (`graceful_shutdown`): it then finishes a request
    /// it is serving before it closes, and closes an idle connection at once. Not while a
    /// request head is arriving, or before the first one did: hyper would drop it unanswered
    /// (it counts the connection idle until the head is complete). That request is answered
    /// with `Connection: close` instead, and a head that never completes meets the header
    /// timeout.
    fn make_room(&self) -> bool {
        let mut p = self.phase();
        p.closing = true;
        p.busy > 0 || p.head_since.is_none()
    }

    /// Whether a response is to close the connection (see [`Clock::make_room`]).
    fn closing(&self) -> bool {
        self.phase().closing
    }

    /// When a read or write waiting on behalf of `task` must fail, and why; `None` while busy.
    fn deadline(&self, limits: &ConnectionLimits, task: &Waker) -> Option<(Instant, &'static str)> {
        let mut p = self.phase();
        if !p.waiting.as_ref().is_some_and(|w| w.will_wake(task)) {
            p.waiting = Some(task.clone());
        }
        match (p.busy, p.head_since) {
            (0, Some(head)) => Some((
                head + limits.header_timeout,
                "the request head did not arrive within the header timeout",
            )),
            (0, None) => Some((
                p.idle_since + limits.idle_timeout,
                "the connection was idle for the keep-alive timeout",
            )),
            _ => None,
        }
    }
}

/// One request being answered; dropping it (when its response body is done or dropped) makes
/// the connection idle again once no other request is in flight.
struct Busy(Arc<Clock>);

impl Busy {
    fn begin(clock: &Arc<Clock>) -> Self {
        let mut p = clock.phase();
        p.busy += 1;
        p.head_since = None;
        drop(p);
        Busy(Arc::clone(clock))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut p = self.0.phase();
        p.busy = p.busy.saturating_sub(1);
        if p.busy == 0 {
            p.idle_since = Instant::now();
            p.head_since = None;
            let task = p.waiting.take();
            drop(p);
            if let Some(task) = task {
                task.wake();
            }
        }
    }
}

/// A socket whose reads and writes fail with `TimedOut` once the connection's current deadline
/// passes while they wait; hyper then closes the connection.
struct Watched {
    stream: TcpStream,
    clock: Arc<Clock>,
    limits: ConnectionLimits,
    timer: Pin<Box<Sleep>>,
    /// The deadline `timer` is set to.
    armed: Option<Instant>,
}

impl Watched {
    fn new(stream: TcpStream, clock: Arc<Clock>, limits: ConnectionLimits) -> Self {
        Watched {
            stream,
            clock,
            limits,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
        }
    }

    /// Called when the socket would block: `Pending` (with the timer registered to wake the
    /// task at the deadline), or the timeout error once the deadline passed.
    fn wait<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let Some((deadline, why)) = self.clock.deadline(&self.limits, cx.waker()) else {
            return Poll::Pending;
        };
        if self.armed != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.wait(cx),
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Pending => this.wait(cx),
            ready => ready,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_flush(cx) {
            Poll::Pending => this.wait(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.wait(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A response body that keeps its connection busy until hyper has sent it (and drops it), not
/// only until the handler returned, so a long download is not taken for an idle connection.
struct Sending {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for Sending {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
