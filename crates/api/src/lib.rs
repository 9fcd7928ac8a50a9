//! The ledger's HTTP contract (`docs/API.md`), owned in one place: what the server and every
//! client of it (the `deaddrop` client, mirrors, benchmarks, tests) agree on.
//!
//! - [`path`]: the routes and the query strings that address them: the only place they are
//!   written;
//! - [`id`]: [`EntryId`], [`IdRange`] (a gap) and [`LedgerId`] (which ledger the ids are of);
//! - [`header`]: header names and [`PageMeta`], the metadata of a read, with its header encoding;
//! - [`frame`]: the binary framing of entries in reads and pushes;
//! - [`body`]: the JSON bodies ([`Info`], [`Accepted`], [`StreamHello`]);
//! - [`problem`]: RFC 9457 problem documents and the [`ProblemKind`] of every error;
//! - [`retry`]: the one backoff schedule every retry loop uses;
//! - `client` (feature `client`, on by default): [`LedgerClient`], the typed client with
//!   SOCKS5 support and stream isolation, and `tls`, its one TLS configuration for HTTP and
//!   WebSocket.
//!
//! It depends only on `deaddrop-proto` (for the protocol version); entries are opaque bytes here.
#![forbid(unsafe_code)]

pub mod body;
#[cfg(feature = "client")]
pub mod client;
pub mod frame;
pub mod header;
pub mod id;
pub mod path;
pub mod problem;
pub mod retry;
#[cfg(feature = "client")]
mod tls;

pub use body::{Accepted, Info, StreamHello, CLOSE_LAGGED, PROTOCOL};
#[cfg(feature = "client")]
pub use client::{ClientOptions, LedgerClient, LedgerError, Page, PushEvent, PushStream};
pub use frame::{frames, Frame, FrameError, Frames, ENTRIES_MEDIA_TYPE, FRAME_HEADER_LEN};
pub use header::{HeaderError, PageMeta};
pub use id::{EntryId, IdRange, LedgerId};
pub use problem::{Problem, ProblemKind};
pub use retry::Backoff;
