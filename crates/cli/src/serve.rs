//! `deaddrop serve`: runs a ledger. Settings come from flags, then `DEADDROP_*` environment
//! variables, then a TOML file (`--config`), then defaults, in that order of precedence.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use deaddrop_ledger::mirror::Upstream;
use deaddrop_ledger::store::jetstream::{JetStreamConfig, JetStreamStore};
use deaddrop_ledger::store::log::LogStore;
use deaddrop_ledger::store::memory::MemoryStore;
use deaddrop_ledger::store::Store;
use deaddrop_ledger::{Config, Ledger};
use deaddrop_proto::Suite;
use serde::Deserialize;

/// `deaddrop serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:8470].
    #[arg(long, env = "DEADDROP_LISTEN")]
    listen: Option<String>,
    /// Directory of the embedded store [default: the platform data directory, e.g.
    /// ~/.local/share/deaddrop/ledger].
    #[arg(long, env = "DEADDROP_DATA")]
    data: Option<PathBuf>,
    /// The suite every entry must have: xwing or rsa-oaep [default: xwing].
    #[arg(long, env = "DEADDROP_SUITE")]
    suite: Option<String>,
    /// Storage: `embedded` (durable, on disk), `memory` (nothing kept), or
    /// `nats://HOST:PORT[,HOST:PORT...]` (a NATS JetStream stream shared by several front ends)
    /// [default: embedded].
    #[arg(long, env = "DEADDROP_STORE")]
    store: Option<String>,
    /// The JetStream stream's name [default: deaddrop].
    #[arg(long, env = "DEADDROP_NATS_STREAM")]
    nats_stream: Option<String>,
    /// JetStream replicas: 1, or 3 on a three-node cluster [default: 1].
    #[arg(long, env = "DEADDROP_NATS_REPLICAS")]
    nats_replicas: Option<usize>,
    /// Mirror another ledger: follow it, serve its entries with the same ids, forward appends
    /// to it. The mirror's copy lives in --data.
    #[arg(long, env = "DEADDROP_MIRROR_OF")]
    mirror_of: Option<String>,
    /// Longest lifetime of an entry, e.g. 48h, 90m, 30s [default: 48h].
    #[arg(long, env = "DEADDROP_LIFETIME")]
    lifetime: Option<String>,
    /// Shortest lifetime the adaption rule may set [default: 1h, or the lifetime if shorter].
    #[arg(long, env = "DEADDROP_MIN_LIFETIME")]
    min_lifetime: Option<String>,
    /// Most entry bytes held, e.g. 2GiB, 500MB [default: 2GiB].
    #[arg(long, env = "DEADDROP_MAX_BYTES")]
    max_bytes: Option<String>,
    /// Proof-of-work difficulty at rest, in bits; 0 disables it (for tests) [default: 14].
    #[arg(long, env = "DEADDROP_POW_BITS")]
    pow_bits: Option<u8>,
    /// Appends per second above which the difficulty rises [default: 200].
    #[arg(long, env = "DEADDROP_POW_RATE")]
    pow_rate: Option<f64>,
    /// A TOML file with any of these settings (same names, with underscores).
    #[arg(long, env = "DEADDROP_CONFIG")]
    config: Option<PathBuf>,
    /// Once listening, write the ledger's URL and a newline to this file (atomically: it
    /// appears complete or not at all). The URL is also the first line on standard output.
    #[arg(long, env = "DEADDROP_READY_FILE")]
    ready_file: Option<PathBuf>,
}

/// The TOML file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    data: Option<PathBuf>,
    suite: Option<String>,
    store: Option<String>,
    nats_stream: Option<String>,
    nats_replicas: Option<usize>,
    mirror_of: Option<String>,
    lifetime: Option<String>,
    min_lifetime: Option<String>,
    max_bytes: Option<String>,
    pow_bits: Option<u8>,
    pow_max_bits: Option<u8>,
    pow_rate: Option<f64>,
    max_page: Option<usize>,
    max_inflight: Option<usize>,
    max_subscribers: Option<usize>,
    subscriber_buffer: Option<usize>,
    request_timeout: Option<String>,
}

/// Parses `48h`, `90m`, `30s`, `1h 30m`.
pub fn parse_duration(what: &str, s: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(s.trim())
        .with_context(|| format!("{what} `{s}` is not a duration: write it like 48h, 90m or 30s"))
}

/// Parses `2GiB`, `500MB`, `1048576`.
pub fn parse_bytes(what: &str, s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().with_context(|| {
        format!("{what} `{s}` is not a size: write it like 2GiB, 500MB or 1048576")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "tib" | "t" => 1 << 40,
        other => {
            bail!("{what} `{s}` has an unknown unit `{other}`: use B, KB, MB, GB, KiB, MiB or GiB")
        }
    };
    let v = n * mult as f64;
    if !(v.is_finite() && v >= 1.0 && v < u64::MAX as f64) {
        bail!("{what} `{s}` is out of range");
    }
    Ok(v as u64)
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("", "", "deaddrop")
        .map(|d| d.data_dir().join("ledger"))
        .context("cannot find a data directory for this user: pass --data DIR")
}

/// What `serve` resolved from its sources.
struct Resolved {
    listen: SocketAddr,
    store: StoreKind,
    config: Config,
    mirror_of: Option<String>,
}

enum StoreKind {
    Embedded(PathBuf),
    Memory,
    Nats {
        servers: Vec<String>,
        stream: String,
        replicas: usize,
    },
}

fn resolve(args: ServeArgs) -> anyhow::Result<Resolved> {
    let file: FileSettings = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config file {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("the config file {} is not valid", path.display()))?
        }
        None => FileSettings::default(),
    };
    let mut c = Config::default();
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:8470".into());
    let listen: SocketAddr = listen.parse().with_context(|| {
        format!("--listen `{listen}` is not an address and port like 127.0.0.1:8470")
    })?;
    if let Some(s) = args.suite.or(file.suite) {
        c.suite = s
            .parse::<Suite>()
            .map_err(|e| anyhow::anyhow!("--suite: {e}"))?;
    }
    if let Some(s) = args.lifetime.or(file.lifetime) {
        c.lifetime = parse_duration("--lifetime", &s)?;
    }
    c.min_lifetime = match args.min_lifetime.or(file.min_lifetime) {
        Some(s) => parse_duration("--min-lifetime", &s)?,
        None => c.min_lifetime.min(c.lifetime),
    };
    if c.min_lifetime > c.lifetime {
        bail!(
            "--min-lifetime ({:?}) is longer than --lifetime ({:?})",
            c.min_lifetime,
            c.lifetime
        );
    }
    if c.lifetime.is_zero() {
        bail!("--lifetime must be more than zero");
    }
    if let Some(s) = args.max_bytes.or(file.max_bytes) {
        c.max_bytes = parse_bytes("--max-bytes", &s)?;
    }
    if let Some(b) = args.pow_bits.or(file.pow_bits) {
        if b > deaddrop_proto::pow::MAX_BITS {
            bail!(
                "--pow-bits {b} is above the {} bits any client will solve",
                deaddrop_proto::pow::MAX_BITS
            );
        }
        c.pow_bits = b;
    }
    c.pow_max_bits = file
        .pow_max_bits
        .unwrap_or(c.pow_max_bits)
        .clamp(c.pow_bits, deaddrop_proto::pow::MAX_BITS);
    if let Some(r) = args.pow_rate.or(file.pow_rate) {
        c.pow_rate = r;
    }
    c.max_page = file.max_page.unwrap_or(c.max_page).max(1);
    c.default_page = c.default_page.min(c.max_page);
    c.max_inflight = file.max_inflight.unwrap_or(c.max_inflight).max(1);
    c.max_subscribers = file.max_subscribers.unwrap_or(c.max_subscribers).max(1);
    c.subscriber_buffer = file
        .subscriber_buffer
        .unwrap_or(c.subscriber_buffer)
        .max(16);
    if let Some(s) = file.request_timeout {
        c.request_timeout = parse_duration("request_timeout", &s)?;
    }
    let store = match args.store.or(file.store).as_deref().unwrap_or("embedded") {
        "embedded" => StoreKind::Embedded(match args.data.or(file.data) {
            Some(d) => d,
            None => default_data_dir()?,
        }),
        "memory" => StoreKind::Memory,
        nats if nats.starts_with("nats://") => {
            let servers: Vec<String> = nats
                .split(',')
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(|s| if s.starts_with("nats://") { s.to_string() } else { format!("nats://{s}") })
                .collect();
            let stream = args.nats_stream.or(file.nats_stream).unwrap_or_else(|| "deaddrop".into());
            if stream.is_empty() || !stream.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                bail!("--nats-stream `{stream}` must be letters, digits, - and _ only");
            }
            let replicas = args.nats_replicas.or(file.nats_replicas).unwrap_or(1);
            if !(1..=5).contains(&replicas) {
                bail!("--nats-replicas must be from 1 to 5 (1, or 3 on a three-node cluster)");
            }
            StoreKind::Nats { servers, stream, replicas }
        }
        other => bail!("--store `{other}` is not known: use `embedded` (durable, the default), `memory`, or nats://HOST:PORT"),
    };
    let mirror_of = args.mirror_of.or(file.mirror_of);
    if let Some(m) = &mirror_of {
        if matches!(store, StoreKind::Nats { .. }) {
            bail!("a mirror keeps its own copy: use --mirror-of with the embedded or memory store, not NATS");
        }
        if !(m.starts_with("http://") || m.starts_with("https://")) {
            bail!("--mirror-of `{m}` must be the URL of a ledger, like http://127.0.0.1:8470");
        }
    }
    Ok(Resolved {
        listen,
        store,
        config: c,
        mirror_of,
    })
}

async fn open_store(kind: &StoreKind, c: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let suite = c.suite;
    Ok(match kind {
        StoreKind::Nats {
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
        .context("cannot open the JetStream store")?,
        StoreKind::Embedded(dir) => Arc::new(
            LogStore::open(dir, suite.layout().entry_len)
                .with_context(|| format!("cannot open the ledger store in {}", dir.display()))?,
        ),
        StoreKind::Memory => Arc::new(MemoryStore::new()),
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

fn describe(kind: &StoreKind) -> String {
    match kind {
        StoreKind::Embedded(dir) => format!("embedded store in {}", dir.display()),
        StoreKind::Memory => {
            "memory store: NOTHING IS KEPT ON DISK, entries vanish when it stops".into()
        }
        StoreKind::Nats {
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

/// Runs `deaddrop serve` until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let ready_file = args.ready_file.clone();
    let r = resolve(args)?;
    crate::init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let store = open_store(&r.store, &r.config).await?;
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
        if let StoreKind::Memory = r.store {
            tracing::warn!("memory store: nothing is kept on disk");
        }
        let ledger = match &r.mirror_of {
            Some(url) => {
                eprintln!("  mirror of {url}: appends are forwarded there");
                let up = Upstream::new(url).map_err(|e| anyhow::anyhow!(e))?;
                Ledger::mirror(r.config, store, up)
            }
            None => Ledger::new(r.config, store),
        };
        announce(local, ready_file.as_deref())?;
        deaddrop_ledger::run(listener, ledger, shutdown_signal()).await.context("the server failed")?;
        eprintln!("deaddrop ledger stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_with_units() {
        assert_eq!(parse_bytes("x", "2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("x", "500MB").unwrap(), 500_000_000);
        assert_eq!(parse_bytes("x", "1048576").unwrap(), 1 << 20);
        assert!(parse_bytes("x", "lots").is_err());
        assert!(parse_bytes("x", "5 parsecs").is_err());
        assert!(parse_bytes("x", "0").is_err());
        assert_eq!(
            parse_duration("x", "48h").unwrap(),
            Duration::from_secs(48 * 3600)
        );
        assert!(parse_duration("x", "soon").is_err());
    }
}
