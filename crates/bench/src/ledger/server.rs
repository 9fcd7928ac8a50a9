//! The ledger under test: [`deaddrop_ledger::run`] on `127.0.0.1:0` in the caller's runtime,
//! with the settings every ledger of the bench shares, and the HTTP client that drives it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use deaddrop_ledger::store::log::LogStore;
use deaddrop_ledger::store::memory::MemoryStore;
use deaddrop_ledger::store::Store;
use deaddrop_ledger::{Config, Ledger};
use tokio::sync::oneshot;

use super::{LedgerArgs, SUITE};

/// The ledger under test, running in its own runtime.
pub(super) struct BenchServer {
    pub(super) addr: SocketAddr,
    pub(super) stop: oneshot::Sender<()>,
    pub(super) task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl BenchServer {
    /// A ledger on the embedded store in `dir`, or on the memory store.
    pub(super) async fn start(
        embedded: bool,
        dir: &Path,
        args: &LedgerArgs,
    ) -> anyhow::Result<Self> {
        let store: Arc<dyn Store> = if embedded {
            Arc::new(open_log(dir)?)
        } else {
            Arc::new(MemoryStore::new())
        };
        Self::start_with(store, args).await
    }

    /// A ledger on `store`.
    pub(super) async fn start_with(
        store: Arc<dyn Store>,
        args: &LedgerArgs,
    ) -> anyhow::Result<Self> {
        let ledger = Ledger::new(bench_config(args), store)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1")?;
        let addr = listener
            .local_addr()
            .context("reading the ledger's address")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(deaddrop_ledger::run(listener, ledger, async move {
            let _ = stopped.await;
        }));
        Ok(BenchServer { addr, stop, task })
    }

    pub(super) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(Ok(served)) => served.context("the ledger under test failed"),
            Ok(Err(e)) => bail!("the ledger under test panicked: {e}"),
            Err(_) => bail!("the ledger under test did not stop within 30 s"),
        }
    }
}

pub(super) fn open_log(dir: &Path) -> anyhow::Result<LogStore> {
    LogStore::open(dir, SUITE.layout().entry_len)
        .with_context(|| format!("cannot open a ledger store in {}", dir.display()))
}

/// The settings of every ledger of the bench.
pub(super) fn bench_config(args: &LedgerArgs) -> Config {
    let defaults = Config::default();
    Config {
        suite: SUITE,
        pow_bits: 0,
        // Nothing may expire or be refused as `ledger-full` during the run, whatever the
        // machine's speed: the bench measures the path of an append, not the lifetime rule.
        max_bytes: 1 << 42,
        max_subscribers: defaults.max_subscribers.max(args.subscribers as usize + 16),
        ..defaults
    }
}

pub(super) fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .context("cannot build an HTTP client")
}
