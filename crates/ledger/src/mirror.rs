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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use deaddrop_proto::wire::{self, Accepted, Info, Problem, HEADER_NEWEST, HEADER_NEXT_AFTER};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::problem::ApiError;
use crate::store::{Record, Store};

/// What the mirror knows of its upstream.
#[derive(Clone, Debug, Default)]
pub struct UpstreamState {
    /// The upstream's newest id, as last seen.
    pub newest: Option<u64>,
    /// The upstream's `info`, as last fetched.
    pub info: Option<Info>,
    /// Whether the push stream is connected now.
    pub connected: bool,
}

/// The upstream of a mirror.
pub struct Upstream {
    url: String,
    http: reqwest::Client,
    state: Mutex<UpstreamState>,
}

impl Upstream {
    /// An upstream at `url` (`http://host:port`).
    pub fn new(url: &str) -> Result<Upstream, String> {
        let url = url.trim().trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "--mirror-of `{url}` must be an http:// or https:// URL"
            ));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Upstream {
            url,
            http,
            state: Mutex::new(UpstreamState::default()),
        })
    }

    /// The upstream's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What is known of the upstream now.
    pub fn state(&self) -> UpstreamState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut UpstreamState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Forwards an append and returns the upstream's answer.
    pub async fn forward(&self, body: Bytes) -> Result<Accepted, ApiError> {
        let res = self
            .http
            .post(format!("{}/v1/entries", self.url))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                ApiError::store(format!(
                    "this mirror could not reach its upstream {}: {e}; retry",
                    self.url
                ))
            })?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ApiError::store(format!("the upstream's answer broke off: {e}; retry")))?;
        if status == reqwest::StatusCode::CREATED {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::store(format!("the upstream's answer is not understood: {e}"))
            });
        }
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(p) => Err(ApiError::forwarded(p)),
            Err(_) => Err(ApiError::store(format!(
                "the upstream answered {status}; retry"
            ))),
        }
    }

    async fn fetch_info(&self) -> Option<Info> {
        let res = self
            .http
            .get(format!("{}/v1/info", self.url))
            .send()
            .await
            .ok()?;
        let info: Info = serde_json::from_slice(&res.bytes().await.ok()?).ok()?;
        self.update(|s| {
            s.newest = info.newest_id.max(s.newest);
            s.info = Some(info.clone());
        });
        Some(info)
    }
}

/// Follows `upstream` into `store`, publishing each new record to `feed`, forever.
pub async fn follow(
    upstream: Arc<Upstream>,
    store: Arc<dyn Store>,
    feed: tokio::sync::broadcast::Sender<Record>,
    entry_len: usize,
) {
    let info_task = {
        let up = upstream.clone();
        tokio::spawn(async move {
            loop {
                up.fetch_info().await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        match follow_once(&upstream, &store, &feed, entry_len).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(upstream = %upstream.url, error = %e, "following the upstream failed; retrying")
            }
        }
        upstream.update(|s| s.connected = false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        if info_task.is_finished() {
            return;
        }
    }
}

async fn store_records(
    store: &Arc<dyn Store>,
    feed: &tokio::sync::broadcast::Sender<Record>,
    frames: &[u8],
    entry_len: usize,
) -> Result<u64, String> {
    let newest = store.bounds().newest;
    let mut records = Vec::new();
    for f in wire::frames(frames, entry_len) {
        let f = f.map_err(|e| e.to_string())?;
        if newest.is_some_and(|n| f.id <= n)
            || records.last().is_some_and(|r: &Record| f.id <= r.id)
        {
            continue;
        }
        records.push(Record {
            id: f.id,
            time_ms: f.time_ms,
            entry: Bytes::copy_from_slice(f.entry),
        });
    }
    let n = records.len() as u64;
    // One batch, one sync; then the mirror's own subscribers get them, in order.
    store
        .insert_many(records.clone())
        .await
        .map_err(|e| e.to_string())?;
    for r in records {
        let _ = feed.send(r);
    }
    Ok(n)
}

async fn follow_once(
    up: &Upstream,
    store: &Arc<dyn Store>,
    feed: &tokio::sync::broadcast::Sender<Record>,
    entry_len: usize,
) -> Result<(), String> {
    // Catch up by reading.
    loop {
        let after = store.bounds().newest.unwrap_or(0);
        let res = up
            .http
            .get(format!("{}/v1/entries?after={after}&limit=1024", up.url))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("reading answered {}", res.status()));
        }
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let newest = header(HEADER_NEWEST);
        let next_after = header(HEADER_NEXT_AFTER).unwrap_or(after);
        up.update(|s| s.newest = newest.max(s.newest));
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        let n = store_records(store, feed, &body, entry_len).await?;
        if n == 0 && next_after <= after || body.is_empty() {
            break;
        }
        if newest.is_some_and(|nw| next_after >= nw) {
            break;
        }
    }
    // Then listen.
    let after = store.bounds().newest.unwrap_or(0);
    let ws_url = format!(
        "{}/v1/stream?after={after}",
        up.url.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .map_err(|e| e.to_string())?;
    up.update(|s| s.connected = true);
    while let Some(msg) = ws.next().await {
        match msg.map_err(|e| e.to_string())? {
            Message::Binary(data) => {
                store_records(store, feed, &data, entry_len).await?;
                let newest = store.bounds().newest;
                up.update(|s| s.newest = newest.max(s.newest));
            }
            Message::Close(frame) => {
                return Err(format!("the upstream closed the stream: {frame:?}"))
            }
            _ => {}
        }
    }
    Err("the upstream's stream ended".into())
}
