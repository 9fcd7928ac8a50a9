//! Step 5, mirror catch-up: a central ledger on the embedded store holding `--mirror-entries`
//! entries, and a new mirror of it ([`Ledger::mirror`] on an embedded store of its own): the time
//! until the mirror's newest id is the central's, and a check that its first and last entries
//! are the central's.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bytes::Bytes;
use deaddrop_ledger::ledger::now_ms;
use deaddrop_ledger::mirror::Upstream;
use deaddrop_ledger::store::{MirrorStore, Store};
use deaddrop_ledger::Ledger;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::oneshot;

use super::server::{bench_config, open_log, BenchServer};
use super::{entry_bytes, LedgerArgs};

/// Store appends in flight while the mirror's central ledger is topped up.
const FILL_IN_FLIGHT: usize = 256;
/// The longest a mirror may take to catch up before the bench gives up.
const CATCHUP_LIMIT: Duration = Duration::from_secs(1800);

/// What the mirror catch-up measured.
pub(super) struct MirrorRun {
    pub(super) entries: u64,
    pub(super) elapsed: Duration,
}

/// A central ledger on the embedded store (in `reuse`, the main measurement's, or a new
/// directory) holding at least `--mirror-entries` entries, and a new mirror of it on a store of
/// its own: the time until the mirror holds the central's newest entry.
pub(super) fn mirror_catchup(
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
        let store: Arc<dyn MirrorStore> = Arc::new(open_log(mirror_dir.path())?);
        let upstream = Upstream::new(&central_url)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1")?;
        let addr = listener
            .local_addr()
            .context("reading the mirror's address")?;
        let started = Instant::now();
        let ledger = Ledger::mirror(bench_config(args), store, upstream)?;
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
