//! `deaddrop serve`: runs a ledger. Settings come from flags, then `DEADDROP_*` environment
//! variables, then a TOML file (`--config`), then defaults, in that order of precedence.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use deaddrop_ledger::mirror::Upstream;
use deaddrop_ledger::store::jetstream::{JetStreamConfig, JetStreamStore};
use deaddrop_ledger::store::log::LogStore;
use deaddrop_ledger::store::memory::MemoryStore;
use deaddrop_ledger::store::{MirrorStore, Store};
use deaddrop_ledger::{Config, Ledger, ServeConfig, Settings, StoreChoice};

/// `deaddrop serve`: the ledger's settings (one struct for flags, environment and file) and the
/// file to read more from.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    settings: Settings,
    /// A TOML file with any of these settings (same names, with underscores); flags and
    /// environment variables win over it.
    #[arg(long, env = "DEADDROP_CONFIG")]
    config: Option<PathBuf>,
    /// Once listening, write the ledger's URL and a newline to this file (atomically: it
    /// appears complete or not at all). The URL is also the first line on standard output.
    #[arg(long, env = "DEADDROP_READY_FILE")]
    ready_file: Option<PathBuf>,
}

fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "deaddrop").map(|d| d.data_dir().join("ledger"))
}

fn resolve(args: ServeArgs) -> anyhow::Result<ServeConfig> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config file {}", path.display()))?;
            Settings::from_toml(&text)
                .with_context(|| format!("the config file {} is not valid", path.display()))?
        }
        None => Settings::default(),
    };
    Ok(args.settings.or(file).validate(default_data_dir())?)
}

/// The store the settings name, and the same store as a mirror's where it can hold one.
type Opened = (Arc<dyn Store>, Option<Arc<dyn MirrorStore>>);

async fn open_store(kind: &StoreChoice, c: &Config) -> anyhow::Result<Opened> {
    let suite = c.suite;
    Ok(match kind {
        StoreChoice::Nats {
            servers,
            stream,
            replicas,
        } => JetStreamStore::connect(JetStreamConfig {
            servers: servers.clone(),
            stream: stream.clone(),
            replicas: *replicas,
            lifetime: c.lifetime,
            entry_len: suite.layout().entry_len,
        })
        .await
        .map(|s| (s as Arc<dyn Store>, None))
        .context("cannot open the JetStream store")?,
        StoreChoice::Embedded(dir) => {
            let s = Arc::new(
                LogStore::open(dir, suite.layout().entry_len).with_context(|| {
                    format!("cannot open the ledger store in {}", dir.display())
                })?,
            );
            (s.clone(), Some(s))
        }
        StoreChoice::Memory => {
            let s = Arc::new(MemoryStore::new());
            (s.clone(), Some(s))
        }
    })
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn describe(kind: &StoreChoice) -> String {
    match kind {
        StoreChoice::Embedded(dir) => format!("embedded store in {}", dir.display()),
        StoreChoice::Memory => {
            "memory store: NOTHING IS KEPT ON DISK, entries vanish when it stops".into()
        }
        StoreChoice::Nats {
            servers,
            stream,
            replicas,
        } => {
            format!(
                "JetStream stream `{stream}` on {} ({replicas} replica(s))",
                servers.join(",")
            )
        }
    }
}

/// Says that the ledger is listening, and where (`docs/DEPLOYMENT.md`): the first line on
/// standard output is `deaddrop-ledger listening on http://ADDR:PORT`, and the same URL goes to
/// `ready_file` if one was asked for, so whoever started the ledger (with port 0 too) need not
/// read logs or poll to know it is up.
fn announce(local: SocketAddr, ready_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let url = format!("http://{local}");
    if let Some(path) = ready_file {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        let write = || -> std::io::Result<()> {
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            writeln!(tmp, "{url}")?;
            tmp.persist(path)?;
            Ok(())
        };
        write().with_context(|| format!("cannot write the ready file {}", path.display()))?;
    }
    // Nobody reading standard output is no reason to stop serving.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "deaddrop-ledger listening on {url}");
    let _ = out.flush();
    Ok(())
}

/// A mirror's catch-up with its upstream as a progress bar on a terminal: entries copied of
/// those the upstream had, until the mirror has them all; then one line saying so.
async fn catch_up_progress(ledger: Arc<Ledger>) {
    let start = ledger.info().newest_id.map_or(0, |n| n.get());
    let mut bar: Option<crate::progress::Bar> = None;
    loop {
        let info = ledger.info();
        let mine = info.newest_id.map_or(0, |n| n.get());
        match info.upstream_newest_id.map(|n| n.get()) {
            Some(up) if up > mine => {
                let bar = bar.get_or_insert_with(|| {
                    crate::progress::Bar::new(false, "catching up", "entries", 0)
                });
                bar.set(mine.saturating_sub(start), up.saturating_sub(start));
            }
            Some(_) => {
                if let Some(mut b) = bar.take() {
                    b.clear();
                    eprintln!("  caught up with the upstream at entry {mine}");
                }
                return;
            }
            None => {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs `deaddrop serve` until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let ready_file = args.ready_file.clone();
    let r = resolve(args)?;
    crate::init_logging();
    let files = deaddrop_ledger::listen::raise_open_files_limit();
    tracing::debug!(open_files = files, "open-files limit");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let (store, mirror_store) = open_store(&r.store, &r.config).await?;
        let listener = tokio::net::TcpListener::bind(r.listen).await.with_context(|| {
            format!("cannot listen on {}: is another ledger already running there? Use --listen to pick another port", r.listen)
        })?;
        let local = listener.local_addr().context("reading the listening address")?;
        let c = &r.config;
        eprintln!(
            "deaddrop ledger listening on http://{local}\n  suite {}, {} byte entries; {}\n  lifetime {} (min {}), max {} bytes held, proof of work {} bits",
            c.suite,
            c.suite.layout().entry_len,
            describe(&r.store),
            humantime::format_duration(c.lifetime),
            humantime::format_duration(c.min_lifetime),
            c.max_bytes,
            c.pow_bits
        );
        if let StoreChoice::Memory = r.store {
            tracing::warn!("memory store: nothing is kept on disk");
        }
        let ledger = match &r.mirror_of {
            Some(url) => {
                eprintln!("  mirror of {url}: appends are forwarded there");
                let up = Upstream::new(url).context("--mirror-of")?;
                let store = mirror_store.context(
                    "a mirror keeps its copy in the embedded or memory store, not in JetStream",
                )?;
                Ledger::mirror(r.config, store, up)?
            }
            None => Ledger::new(r.config, store)?,
        };
        if let Some(id) = ledger.info().ledger_id {
            let whose = if r.mirror_of.is_some() { " (its upstream's, once it has heard from it)" } else { "" };
            eprintln!("  ledger id {id}{whose}");
        }
        if r.mirror_of.is_some() && crate::progress::enabled(false) {
            tokio::spawn(catch_up_progress(ledger.clone()));
        }
        announce(local, ready_file.as_deref())?;
        deaddrop_ledger::run(listener, ledger, shutdown_signal()).await.context("the server failed")?;
        eprintln!("deaddrop ledger stopped");
        Ok(())
    })
}
