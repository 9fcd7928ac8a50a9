//! Step 2, reads: `--readers` clients each sync every entry from id 0 with paged
//! Reads of 1,024 entries a page, checking every frame.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use deaddrop_api::frames;
use deaddrop_api::header::NEXT_AFTER as HEADER_NEXT_AFTER;
use tokio::task::JoinSet;

use super::SUITE;

/// Entries per read page.
const PAGE: usize = 1024;

pub(super) struct ReadRun {
    pub(super) entries_each: u64,
    pub(super) entries_total: u64,
    pub(super) bytes_total: u64,
    pub(super) elapsed: Duration,
}

/// `readers` clients each sync every entry from id 0, page by page, checking every frame.
pub(super) async fn read_all(
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
                    .get(format!(
                        "{base}{}",
                        deaddrop_api::path::read(deaddrop_api::EntryId(after), PAGE)
                    ))
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
                        frame.id.get() > after && frame.entry.len() == entry_len,
                        "a page holds a frame out of order or of the wrong size"
                    );
                    after = frame.id.get();
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
