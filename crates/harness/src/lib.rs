//! Test support shared by every black-box test of deaddrop: the real `deaddrop serve` and
//! `nats-server` as child processes, people who run the real `deaddrop` client commands, and a
//! small client for the HTTP API of `docs/API.md`.
//!
//! - [`serve`]: `deaddrop serve` on a loopback port, ready when it says so on its first stdout
//!   line (`docs/DEPLOYMENT.md`), restartable on the same port and data directory, killed with
//!   SIGKILL or stopped with SIGTERM.
//! - [`api`]: appends, paged reads with their headers, info, metrics, the push stream, and
//!   [`api::expect_problem`] for refusals; raw requests go through [`api::Api::http`].
//! - [`cli`]: a home per person, the client commands with `--json` read back as the structs of
//!   [`deaddrop_client::output`], a follower of `deaddrop --json watch`.
//! - [`nats`]: finding (or installing) a current `nats-server` and running it with JetStream.
//! - [`socks5`]: a SOCKS5 proxy that records every connection it was asked for: where to, the
//!   SOCKS credentials, and the first bytes sent through it.
//! - [`tls`]: a private certificate authority and a TLS endpoint in front of a ledger.
//! - [`wait`]: waiting on a condition with a timeout, never a fixed sleep.
//!
//! The binary under test is named by the test ([`Deaddrop::new`] with
//! `env!("CARGO_BIN_EXE_deaddrop")`), since only the crate that builds it knows where it is.
//! Every child process is killed when its handle drops.
// Test support: a failed expectation here is a failed test, and the panic says which.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod nats;
pub mod serve;
pub mod socks5;
pub mod tls;
pub mod wait;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub use api::{expect_problem, Api, Page, Rec, Subscriber};
pub use cli::{Out, Person, Watcher};
pub use nats::Nats;
pub use serve::{Serve, ServeBuilder};
pub use tls::TlsFront;
pub use wait::{wait_for, wait_until, wait_until_blocking};

/// How long a condition in these tests may take to come true, a process to start or stop, or
/// a pushed entry to arrive: generous, for debug builds on a busy machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// The `deaddrop` binary under test.
#[derive(Clone, Copy, Debug)]
pub struct Deaddrop {
    path: &'static str,
}

impl Deaddrop {
    /// The binary at `path`; in a test of the `deaddrop-cli` crate,
    /// `Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"))`.
    pub const fn new(path: &'static str) -> Deaddrop {
        Deaddrop { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        Path::new(self.path)
    }

    /// A command running it with a clean environment: nothing of the test runner's
    /// (`DEADDROP_*`, `RUST_LOG`, `HOME`, proxies) leaks in, except `RUST_BACKTRACE` and
    /// `TMPDIR`.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(self.path);
        cmd.env_clear();
        for keep in ["RUST_BACKTRACE", "TMPDIR"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        cmd
    }

    /// `deaddrop serve`, to be configured and started.
    pub fn serve(&self) -> ServeBuilder {
        ServeBuilder::new(*self)
    }

    /// Someone with a home of their own who will use the ledger at `ledger` (no identity yet:
    /// see [`Person::init`]).
    pub fn person(&self, name: &str, ledger: &str) -> Person {
        Person::new(*self, name, ledger)
    }

    /// Two people on `ledger` with identities of `suite` who have each other as contacts:
    /// alice knows bob as `b`, bob knows alice as `a`.
    pub fn pair(&self, ledger: &str, suite: &str) -> (Person, Person) {
        cli::pair(*self, ledger, suite)
    }
}

/// A temporary directory, removed when dropped, named after `prefix` to find it while a test
/// runs.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary directory")
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

/// The last `n` lines of the file at `path`, for failure messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
