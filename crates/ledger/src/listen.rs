//! Accepting and serving connections: without learning who connects, and within limits.
//!
//! The peer address the kernel returns with each connection is dropped on the spot, before any
//! code (ours, axum's, hyper's) could log it at any level: the server cannot log or keep what it
//! never holds. [`serve`] is the HTTP/1.1 loop (no h2c): at most [`Limits::max_connections`]
//! connections at once (the next waits in the kernel's backlog), request headers that must
//! arrive within [`Limits::header_read`] (a client that dribbles them, or an idle keep-alive
//! connection, is closed), and a shutdown that lets requests finish for at most
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
    /// How long a shutdown waits for requests in flight before it closes their connections.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            header_read: Duration::from_secs(10),
            grace: Duration::from_secs(10),
        }
    }
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
