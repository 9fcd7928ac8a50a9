//! The deaddrop client library: the identity at rest, contacts, messages and the sync position
//! in one SQLite database per home ([`db`]), the ledger API over HTTP and WebSocket with an
//! optional SOCKS5 proxy ([`net`]), trial decryption on all cores ([`scan`]), the operations
//! that tie them together ([`ops`]), and the documents the command prints with
//! `--json` ([`output`]). The `deaddrop` binary is a thin layer over it.
//! Depends only on `deaddrop-proto`, never on the server.
#![forbid(unsafe_code)]

pub use deaddrop_proto as proto;

pub mod db;
pub mod error;
pub mod keystore;
pub mod net;
pub mod ops;
pub mod output;
pub mod scan;

pub use error::ClientError;
