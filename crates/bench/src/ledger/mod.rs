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
//!    reads of 1,024 entries a page, checking every frame;
//! 3. **push**: `--subscribers` WebSocket subscribers; one appender posts `--rate` entries a
//!    second for `--seconds`. Each entry carries its sequence number, and the latency of a
//!    delivery is the time from just before the entry's POST to its arrival at a subscriber.
//!    The rate then doubles, one second per step, for as long as the ledger keeps up: the
//!    appender keeps the pace, no subscriber is dropped, every subscriber gets every entry and
//!    99% of deliveries take at most [`push::SUSTAIN_LATENCY`]. The highest such step gives the
//!    delivery rate sustained (appends per second × subscribers);
//! 4. **JetStream**, against the NATS server of `--store nats://HOST:PORT`, or else one this
//!    bench starts if `nats-server` is on the PATH (file storage, `sync_interval: always`):
//!    - the append workload of step 1 published straight to a JetStream stream, each publish
//!      waiting for its acknowledgement;
//!    - a deaddrop front end on the JetStream store (`JetStreamStore` + [`deaddrop_ledger::Ledger::new`] +
//!      [`deaddrop_ledger::run`] on `127.0.0.1:0`), driven over HTTP exactly like step 1 and 2:
//!      durable appends per second and read throughput, beside the embedded store's, plus the
//!      time of one sequential `direct_get` and one publish acknowledgement (what an append and
//!      a read of that store are made of);
//! 5. **mirror catch-up** (`--mirror-entries`, 100,000 by default): a central ledger on the
//!    embedded store holding that many entries (those of the steps above, topped up straight
//!    through `Store::append`), and a new mirror ([`deaddrop_ledger::Ledger::mirror`] on an embedded store of its
//!    own, served by [`deaddrop_ledger::run`]); the time until the mirror's newest id is the
//!    central's, and a check that its first and last entries are the central's.
//!
//! The load and the server share this machine's cores, so every figure is what the server does
//! while also paying for its clients.
//!
//! This module parses the arguments and runs the steps in order; each step lives in a module of
//! its own ([`appends`], [`reads`], [`push`], [`jetstream`], [`mirror`]), beside the ledger under
//! test ([`server`]) and the report ([`report`]).

mod appends;
mod jetstream;
mod mirror;
mod push;
mod reads;
mod report;
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use deaddrop_proto::Suite;

use crate::Global;
use appends::http_appends;
use mirror::mirror_catchup;
use push::push_phase;
use reads::read_all;
use report::{print_human, LedgerReport};
use server::{http_client, BenchServer};

/// The suite of the ledger under test: the default one, with 4096-byte entries.
const SUITE: Suite = Suite::XWing;
/// Goal for durable appends per second with 4 KiB entries.
const APPEND_GOAL_PER_S: f64 = 20_000.0;
/// Goal for the 99th percentile of post→push latency at [`GOAL_RATE`] with
/// [`GOAL_SUBSCRIBERS`].
const PUSH_P99_GOAL_MS: f64 = 10.0;
const GOAL_RATE: u32 = 100;
const GOAL_SUBSCRIBERS: u32 = 500;

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

    jetstream::measure(&server_rt, &client_rt, &args, &mut report, &progress);

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
        push_fan_out_p50_ms: first.fan_out_p50_ms,
        push_fan_out_p99_ms: first.fan_out_p99_ms,
        push_post_p99_ms: first.post_p99_ms,
        push_ledger_cpu_ms_per_append: first.ledger_cpu_ms_per_append,
        push_clients_cpu_ms_per_append: first.clients_cpu_ms_per_append,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        let (p50, p99, max) = percentiles_ms(v);
        assert!((p50 - 50.0).abs() <= 1.0 && (p99 - 99.0).abs() <= 1.0 && max == 100.0);
        assert_eq!(percentiles_ms(Vec::new()), (0.0, 0.0, 0.0));
    }
}
