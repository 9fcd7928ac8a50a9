//! Step 1, appends: `--clients` tasks each append back to back for `--seconds`, waiting for
//! every acknowledgement before the next. The same workload drives the ledger over HTTP and,
//! in [`super::jetstream`], a JetStream stream directly.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use tokio::task::JoinSet;

use super::{entry_bytes, micros, LedgerArgs};

/// The timed append workload over HTTP against the ledger at `base`.
pub(super) async fn http_appends(
    http: &reqwest::Client,
    base: &str,
    args: &LedgerArgs,
) -> anyhow::Result<AppendRun> {
    let url = format!("{base}{}", deaddrop_api::path::ENTRIES);
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

/// An append, expecting `201`.
pub(super) async fn post_entry(
    http: &reqwest::Client,
    url: &str,
    body: Bytes,
) -> anyhow::Result<()> {
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
pub(super) struct AppendRun {
    /// Appends acknowledged in the timed part.
    pub(super) count: u64,
    /// Everything the store holds now: the warm-up and the timed appends.
    pub(super) stored: u64,
    pub(super) elapsed: Duration,
    pub(super) latencies_us: Vec<u32>,
}

impl AppendRun {
    pub(super) fn per_s(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

/// `clients` tasks append one entry each (opening their connections), then append back to back
/// for `duration`, each waiting for its acknowledgement before the next.
pub(super) async fn timed_appends<F, Fut>(
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
