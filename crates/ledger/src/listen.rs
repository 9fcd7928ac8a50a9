//! Accepting and serving connections: without learning who connects, and within limits.
//!
//! The peer address the kernel returns with each connection is dropped on the spot, before any
//! code (ours, axum's, hyper's) could log it at any level: the server cannot log or keep what it
//! never holds. [`serve`] is the HTTP/1.1 loop (no h2c): at most [`Limits::max_connections`]
//! connections at once (the next waits in the kernel's backlog; the cap stays below half the
//! open-files limit, which `deaddrop serve` raises to the hard limit at start), request headers that must
//! arrive within [`Limits::header_read`] (a client that dribbles them, or an idle keep-alive
//! connection, is closed), writes that a client must take within [`Limits::write_stall`] (a
//! reader that stops reading is disconnected and its page freed), and a shutdown that lets requests finish for at most
//! [`Limits::grace`] before it closes what is left.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// What one server holds at most, and how long it waits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once (push subscribers, once upgraded, count against the
    /// subscriber limit instead).
    pub max_connections: usize,
    /// How long a request's headers may take to arrive, counted from when the connection
    /// starts waiting for them (so also how long an idle keep-alive connection stays open).
    pub header_read: Duration,
    /// How long a write to a client may wait for it to take bytes: a reader or subscriber
    /// that takes nothing for this long is disconnected, and what it held is freed.
    pub write_stall: Duration,
    /// How long a shutdown waits for requests in flight before it closes their connections.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: connection_cap(),
            header_read: Duration::from_secs(10),
            write_stall: Duration::from_secs(15),
            grace: Duration::from_secs(10),
        }
    }
}

/// 4096 connections, or fewer when the open-files limit would not leave room for them, the
/// push subscribers' sockets and the store's files: a full descriptor table would lock every
/// client out, so the cap is set below it.
fn connection_cap() -> usize {
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
    usize::try_from(soft / 2).unwrap_or(4096).clamp(64, 4096)
}

/// Raises the soft open-files limit to the hard one (a ledger holds a socket per client);
/// returns the limit now in force.
pub fn raise_open_files_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

/// Serves `app` on `listener` until `shutdown` resolves, within `limits`; then stops accepting,
/// lets each connection finish its request (for at most `limits.grace`) and returns.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut listener = Anonymous::new(listener);
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            (stream, Peer) = axum::serve::Listener::accept(&mut listener) => stream,
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        let header_read = limits.header_read;
        let stream = Deadline::new(stream, limits.write_stall);
        conns.spawn(async move {
            let _slot = slot;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_read);
            let conn = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|s| *s) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
        while conns.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = conns.len(),
            grace = ?limits.grace,
            "closing connections still open after the shutdown grace period"
        );
        conns.abort_all();
    }
}

/// A TCP listener whose connections carry no peer address.
#[derive(Debug)]
pub struct Anonymous {
    inner: TcpListener,
}

/// All the server knows of a peer: nothing. Its `Debug` form is what a library's
/// "connection … accepted" trace line shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer;

impl Anonymous {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener) -> Anonymous {
        Anonymous { inner }
    }
}

impl axum::serve::Listener for Anonymous {
    type Io = TcpStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (TcpStream, Peer) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => {
                    // Without TCP_NODELAY a push frame that follows another within the peer's
                    // delayed-ACK time (up to 40 ms) waits for that ACK (Nagle).
                    let _ = stream.set_nodelay(true);
                    return (stream, Peer);
                }
                Err(e) => accept_failed(e).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Peer> {
        Ok(Peer)
    }
}

/// A connection that failed before it was accepted is that peer's problem; anything else (out
/// of file descriptors) is logged, and accepting pauses so that connections can close.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// A connection whose writes fail once the peer has taken nothing for `stall`: without it, a
/// client that never reads would hold its response (and the memory budget it counts against)
/// for as long as it keeps the connection open.
#[derive(Debug)]
pub struct Deadline<T> {
    io: T,
    stall: Duration,
    /// Running while a write waits for the peer.
    waiting: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<T> Deadline<T> {
    /// Wraps `io`.
    pub fn new(io: T, stall: Duration) -> Deadline<T> {
        Deadline {
            io,
            stall,
            waiting: None,
        }
    }

    /// Passes a write's outcome on; while it is pending, fails it once `stall` has passed.
    fn watch<R>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<io::Result<R>>,
    ) -> std::task::Poll<io::Result<R>> {
        use std::future::Future as _;
        use std::task::Poll;
        match polled {
            Poll::Ready(r) => {
                self.waiting = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let stall = self.stall;
                let timer = self
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                if timer.as_mut().poll(cx).is_ready() {
                    self.waiting = None;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client took nothing for too long",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Deadline<T> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Deadline<T> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.io).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
