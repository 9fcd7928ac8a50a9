//! Accepting connections without learning who connects. The peer address the kernel returns
//! with each connection is dropped on the spot, before any code (ours, axum's, hyper's) could
//! log it at any level: the server cannot log or keep what it never holds.

use std::io;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

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
