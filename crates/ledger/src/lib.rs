//! The deaddrop ledger (paper III): a public, append-only, chronological, expiring list of
//! entries that anyone may append to and read, and that learns nothing about who talks to whom.
//!
//! This crate depends only on `deaddrop-proto`. The binary (`deaddrop serve`) parses flags,
//! opens a [`store`], builds a [`Ledger`] and calls [`run`]; tests do the same on
//! `127.0.0.1:0`.

pub mod api;
pub mod config;
pub mod ledger;
pub mod listen;
pub mod metrics;
pub mod mirror;
pub mod policy;
pub mod problem;
pub mod seen;
pub mod store;

use std::future::Future;
use std::sync::Arc;

pub use config::{Config, ConfigError, ServeConfig, Settings, StoreChoice};
pub use deaddrop_proto as proto;
pub use ledger::Ledger;

/// Serves `ledger` on `listener` until `shutdown` resolves; then stops accepting, lets
/// in-flight requests finish, closes push streams, and closes the store (which syncs).
pub async fn run(
    listener: tokio::net::TcpListener,
    ledger: Arc<Ledger>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let maintenance = tokio::spawn(ledger.clone().maintain());
    let fan_out = tokio::spawn(ledger.clone().fan_out());
    // Before the first append: what the store already holds counts for repeats.
    match ledger.load_seen().await {
        Ok(n) if n > 0 => tracing::info!(entries = n, "remembered the entries held, for repeats"),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "reading the entries held failed; repeats of them may be stored again")
        }
    }
    let app = api::router(ledger.clone());
    let l = ledger.clone();
    // Connections arrive without their peer address, so nothing can log it, and are served
    // within the limits of `listen::serve`.
    listen::serve(listener, app, listen::Limits::default(), async move {
        shutdown.await;
        l.begin_shutdown();
    })
    .await;
    ledger.begin_shutdown();
    let _ = maintenance.await;
    let _ = fan_out.await;
    if let Err(e) = ledger.store().close().await {
        tracing::error!(error = %e, "closing the store failed");
    }
    Ok(())
}
