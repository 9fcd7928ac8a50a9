//! Mirrors (`deaddrop serve --mirror-of URL`): a ledger that follows another one through its
//! public read and push API, keeps the same ids and times, and serves reads and pushes itself
//! (the paper's ledger "distributed across the network to create as many mimicked relations as
//! possible"). Appends sent to a mirror are forwarded upstream and the upstream's answer is
//! returned; a mirror never assigns ids. Mirrors can follow mirrors.
//!
//! The follower catches up by reading pages after its newest id, then listens to the upstream's
//! push stream; on any disconnect it reads again from its newest id, so a mirror that was down
//! catches up by itself. Ids the upstream expired before the mirror saw them are simply absent,
//! so the mirror's readers are told about them as a gap, as the upstream's would be.
//!
//! The upstream is reached with the same [`LedgerClient`] every other client uses.
//!
//! A mirror's copy is of its upstream's ledger, so it reports the upstream's [`LedgerId`]: the
//! follower has its store adopt the id the upstream's `info` gives, and the store keeps it (the
//! embedded store on disk), so the mirror reports it while the upstream is away too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use deaddrop_api::{
    frames, Accepted, Backoff, ClientOptions, EntryId, FrameError, Info, LedgerClient, LedgerError,
    LedgerId, PushEvent,
};
use thiserror::Error;

use crate::problem::ApiError;
use crate::store::{MirrorStore, Record, StoreError};

/// What the mirror knows of its upstream.
#[derive(Clone, Debug, Default)]
pub struct UpstreamState {
    /// The upstream's newest id, as last seen.
    pub newest: Option<EntryId>,
    /// The upstream's `info`, as last fetched.
    pub info: Option<Info>,
    /// Whether the push stream is connected now.
    pub connected: bool,
}

/// Why following the upstream stopped for a moment (it is retried).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FollowError {
    /// The upstream could not be read or refused.
    #[error(transparent)]
    Upstream(#[from] LedgerError),
    /// The upstream sent frames that cannot be read.
    #[error("the upstream sent bad frames: {0}")]
    Frames(#[from] FrameError),
    /// The mirror's own store failed.
    #[error("the mirror's store failed: {0}")]
    Store(#[from] StoreError),
    /// The push stream closed.
    #[error("the upstream closed the stream: {0}")]
    Closed(String),
}

/// The upstream of a mirror.
pub struct Upstream {
    client: LedgerClient,
    state: Mutex<UpstreamState>,
}

/// The most entries the follower asks for in one read.
const CATCH_UP_PAGE: usize = 1024;

impl Upstream {
    /// An upstream at `url` (`http://host:port`).
    pub fn new(url: &str) -> Result<Upstream, LedgerError> {
        let client = LedgerClient::new(
            url,
            &ClientOptions {
                connect_timeout: Duration::from_secs(5),
                timeout: Duration::from_secs(60),
                ..ClientOptions::default()
            },
        )?;
        Ok(Upstream {
            client,
            state: Mutex::new(UpstreamState::default()),
        })
    }

    /// The upstream's URL.
    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// What is known of the upstream now.
    pub fn state(&self) -> UpstreamState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut UpstreamState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn saw_newest(&self, newest: Option<EntryId>) {
        self.update(|s| s.newest = newest.max(s.newest));
    }

    /// Forwards an append and returns the upstream's answer.
    pub async fn forward(&self, body: Bytes) -> Result<Accepted, ApiError> {
        self.client.append(body).await.map_err(|e| match e {
            LedgerError::Refused { problem, .. } => ApiError::forwarded(problem),
            // The cause goes to the log; the client learns only what to do.
            LedgerError::Unreachable { detail, .. } => {
                tracing::warn!(upstream = %self.url(), error = %detail, "forwarding an append failed");
                ApiError::store("this mirror could not reach its upstream; retry")
            }
            other => {
                tracing::warn!(upstream = %self.url(), error = %other, "forwarding an append failed");
                ApiError::store("this mirror did not understand its upstream's answer; retry")
            }
        })
    }

    async fn fetch_info(&self) -> Option<Info> {
        let info = self.client.info().await.ok()?;
        self.saw_newest(info.newest_id);
        self.update(|s| s.info = Some(info.clone()));
        Some(info)
    }
}

/// Follows `upstream` into `store`, publishing each new record to `feed`, forever.
pub async fn follow(
    upstream: Arc<Upstream>,
    store: Arc<dyn MirrorStore>,
    feed: tokio::sync::broadcast::Sender<Record>,
    entry_len: usize,
) {
    let info_task = {
        let up = upstream.clone();
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                if let Some(id) = up.fetch_info().await.and_then(|i| i.ledger_id) {
                    adopt_upstream_id(&up, &store, id).await;
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    };
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        match follow_once(&upstream, &store, &feed, entry_len).await {
            Ok(()) => backoff.reset(),
            Err(e) => {
                tracing::warn!(upstream = %upstream.url(), error = %e, "following the upstream failed; retrying")
            }
        }
        upstream.update(|s| s.connected = false);
        backoff.wait().await;
        if info_task.is_finished() {
            return;
        }
    }
}

/// Has `store` report `id`, the upstream's ledger id, unless it does already.
async fn adopt_upstream_id(up: &Upstream, store: &Arc<dyn MirrorStore>, id: LedgerId) {
    let was = store.ledger_id();
    if was == id {
        return;
    }
    match store.adopt_ledger_id(id).await {
        Ok(()) => {
            tracing::info!(upstream = %up.url(), ledger_id = %id, previous = %was, "this mirror reports its upstream's ledger id")
        }
        Err(e) => {
            tracing::warn!(upstream = %up.url(), error = %e, "cannot keep the upstream's ledger id; retrying")
        }
    }
}

async fn store_records(
    store: &Arc<dyn MirrorStore>,
    feed: &tokio::sync::broadcast::Sender<Record>,
    data: &[u8],
    entry_len: usize,
) -> Result<u64, FollowError> {
    let newest = store.bounds().newest;
    let mut records = Vec::new();
    for f in frames(data, entry_len) {
        let f = f?;
        let id = f.id;
        if newest.is_some_and(|n| id <= n) || records.last().is_some_and(|r: &Record| id <= r.id) {
            continue;
        }
        records.push(Record {
            id,
            time_ms: f.time_ms,
            entry: Bytes::copy_from_slice(f.entry),
        });
    }
    let n = records.len() as u64;
    // One batch, one sync; then the mirror's own subscribers get them, in order.
    store.insert_many(records.clone()).await?;
    for r in records {
        let _ = feed.send(r);
    }
    Ok(n)
}

async fn follow_once(
    up: &Upstream,
    store: &Arc<dyn MirrorStore>,
    feed: &tokio::sync::broadcast::Sender<Record>,
    entry_len: usize,
) -> Result<(), FollowError> {
    // Catch up by reading.
    loop {
        let after = store.bounds().newest.unwrap_or_default();
        let page = up.client.read(after, CATCH_UP_PAGE).await?;
        up.saw_newest(page.meta.newest);
        let n = store_records(store, feed, &page.body, entry_len).await?;
        let next_after = page.meta.next_after;
        if n == 0 && next_after <= after || page.body.is_empty() {
            break;
        }
        if page.meta.newest.is_some_and(|nw| next_after >= nw) {
            break;
        }
    }
    // Then listen.
    let after = store.bounds().newest.unwrap_or_default();
    let mut stream = up.client.stream(after).await?;
    up.update(|s| s.connected = true);
    while let Some(event) = stream.next().await {
        match event? {
            PushEvent::Frames(data) => {
                store_records(store, feed, &data, entry_len).await?;
                let newest = store.bounds().newest;
                up.update(|s| s.newest = newest.max(s.newest));
            }
            PushEvent::Closed { reason, .. } => return Err(FollowError::Closed(reason)),
            PushEvent::Hello(_) => {}
        }
    }
    Err(FollowError::Closed("the stream ended".into()))
}
