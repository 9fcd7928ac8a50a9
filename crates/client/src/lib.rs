//! The deaddrop client library: the identity at rest, contacts, messages and the sync position
//! in one SQLite database per home ([`db`]), trial decryption on all cores ([`scan`]), the
//! operations that tie them together ([`ops`]), and the documents the command prints with
//! `--json` ([`output`]), what makes someone else's text safe for a terminal ([`display`]), and
//! the home's settings ([`settings`]: its ledger, proxy, CA file). The ledger is reached through `deaddrop-api`'s typed
//! [`LedgerClient`] (HTTP and WebSocket, optionally through a SOCKS5 proxy). The `deaddrop`
//! binary is a thin layer over it. Depends on `deaddrop-proto` and `deaddrop-api`, never on the
//! server.
#![forbid(unsafe_code)]

pub use deaddrop_api as api;
pub use deaddrop_proto as proto;

pub mod db;
pub mod display;
pub mod error;
pub mod home;
pub mod ids;
pub mod keyring;
pub mod keystore;
pub mod ops;
pub mod output;
pub mod scan;
pub mod settings;

pub use deaddrop_api::{ClientOptions, LedgerClient};
pub use error::ClientError;
pub use ids::{Direction, RequestId};

/// A client of the ledger at `url` (`http://host:port`), through `proxy` if one is given
/// (`socks5h://` resolves names at the proxy, as Tor needs; `socks5://` locally).
pub fn connect(url: &str, proxy: Option<&str>) -> Result<LedgerClient, ClientError> {
    connect_with(
        url,
        &ClientOptions {
            proxy: proxy.map(str::to_string),
            ..Default::default()
        },
    )
}

/// A client of the ledger at `url` with all of [`ClientOptions`] (a proxy, extra certificate
/// authorities). One per command: it carries the command's SOCKS credentials, so Tor gives the
/// command circuits of its own (see [`deaddrop_api::client`]).
pub fn connect_with(url: &str, options: &ClientOptions) -> Result<LedgerClient, ClientError> {
    Ok(LedgerClient::new(url, options)?)
}
