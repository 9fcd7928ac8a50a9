//! The NATS JetStream store (`--store nats://HOST:PORT[,HOST:PORT...]`), for ledgers served by
//! several stateless front ends (`docs/DESIGN.md` §3.7; `docs/DEPLOYMENT.md`).
//!
//! The ledger is one stream on one subject: entry id = stream sequence, entry time = the
//! stream's timestamp, `max_age` = the lifetime, file storage, replicas as configured. An append
//! is a publish whose acknowledgement (the stored sequence) is what the ledger answers with, so
//! an entry is acknowledged only after JetStream acknowledged it. The publish carries
//! `Nats-Msg-Id` = SHA-256 of the entry, so a retried append within the stream's duplicate
//! window gets the original id back instead of a second copy.
//!
//! Every front end follows the stream with an ordered consumer and feeds its push subscribers
//! from it, so an entry appended through one front end is pushed by all, with the same id.
//! Reads are direct gets of the sequences asked for, many in flight at once. When NATS is
//! unreachable, appends and reads fail with `Unavailable` (503 with Retry-After); the client
//! reconnects by itself and the front end recovers without a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream, Context};
use async_trait::async_trait;
use bytes::Bytes;
use deaddrop_api::Backoff;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::broadcast;

use super::{Appended, Bounds, EntryId, Record, Store, StoreError};

/// Settings of the JetStream store.
#[derive(Clone, Debug)]
pub struct JetStreamConfig {
    /// NATS servers, `nats://host:port` each.
    pub servers: Vec<String>,
    /// The stream's name.
    pub stream: String,
    /// Replicas (1 or 3 make sense).
    pub replicas: usize,
    /// The initial `max_age`.
    pub lifetime: Duration,
    /// The length of every entry.
    pub entry_len: usize,
}

/// The JetStream store.
pub struct JetStreamStore {
    client: async_nats::Client,
    js: Context,
    stream_name: String,
    subject: String,
    entry_len: usize,
    bounds: Arc<Mutex<Bounds>>,
    lifetime: Mutex<(Duration, std::time::Instant)>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("NATS JetStream: {what}: {e}"))
}

fn millis(t: time::OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

impl JetStreamStore {
    /// Connects and creates the stream if it does not exist (an existing stream keeps its
    /// settings, except `max_age`, which the lifetime rule manages).
    pub async fn connect(cfg: JetStreamConfig) -> Result<Arc<JetStreamStore>, StoreError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .name("deaddrop-ledger")
            .connect(cfg.servers.clone())
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot reach NATS at {}: {e}; is `nats-server -js` running there?",
                    cfg.servers.join(",")
                ))
            })?;
        let js = jetstream::new(client.clone());
        let subject = format!("deaddrop.{}.entries", cfg.stream);
        let mut s = js
            .get_or_create_stream(stream::Config {
                name: cfg.stream.clone(),
                subjects: vec![subject.clone()],
                max_age: cfg.lifetime,
                storage: stream::StorageType::File,
                num_replicas: cfg.replicas,
                discard: stream::DiscardPolicy::Old,
                allow_direct: true,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("creating the stream", e))?;
        let info = s
            .info()
            .await
            .map_err(|e| unavailable("reading the stream", e))?;
        let store = Arc::new(JetStreamStore {
            client,
            js,
            stream_name: cfg.stream,
            subject,
            entry_len: cfg.entry_len,
            bounds: Arc::new(Mutex::new(bounds_of(&info.state))),
            lifetime: Mutex::new((cfg.lifetime, std::time::Instant::now())),
            tasks: Mutex::new(Vec::new()),
        });
        let refresher = {
            let js = store.js.clone();
            let name = store.stream_name.clone();
            let bounds = store.bounds.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if let Ok(mut s) = js.get_stream(&name).await {
                        if let Ok(info) = s.info().await {
                            let fresh = bounds_of(&info.state);
                            let mut b = bounds.lock().unwrap_or_else(|e| e.into_inner());
                            b.oldest = fresh.oldest;
                            b.newest = fresh.newest.max(b.newest);
                        }
                    }
                }
            })
        };
        store
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(refresher);
        Ok(store)
    }

    async fn stream(&self) -> Result<stream::Stream, StoreError> {
        self.js
            .get_stream(&self.stream_name)
            .await
            .map_err(|e| unavailable("opening the stream", e))
    }

    fn note_id(&self, id: u64) {
        let id = EntryId(id);
        let mut b = self.bounds.lock().unwrap_or_else(|e| e.into_inner());
        b.newest = Some(b.newest.map_or(id, |n| n.max(id)));
        if b.oldest.is_none() {
            b.oldest = Some(id);
        }
    }
}

fn bounds_of(state: &stream::State) -> Bounds {
    Bounds {
        oldest: (state.messages > 0).then_some(EntryId(state.first_sequence)),
        newest: (state.last_sequence > 0).then_some(EntryId(state.last_sequence)),
    }
}

#[async_trait]
impl Store for JetStreamStore {
    fn kind(&self) -> &'static str {
        "jetstream"
    }

    async fn append(&self, entry: Bytes, now_ms: u64) -> Result<Appended, StoreError> {
        if entry.len() != self.entry_len {
            return Err(StoreError::Unavailable(format!(
                "entry of {} bytes where {} are expected",
                entry.len(),
                self.entry_len
            )));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &entry);
        let msg_id: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let ack = self
            .js
            .send_publish(
                self.subject.clone(),
                jetstream::context::Publish::build()
                    .payload(entry)
                    .message_id(msg_id),
            )
            .await
            .map_err(|e| unavailable("publishing", e))?
            .await
            .map_err(|e| unavailable("waiting for the acknowledgement", e))?;
        self.note_id(ack.sequence);
        // The stream's own timestamp is the entry's time (what reads and pushes return); the
        // acknowledgement does not carry it, so fetch it. Only if that fails (the entry is stored
        // all the same) does the answer fall back to this front end's clock.
        let stored = async {
            let s = self.js.get_stream_no_info(&self.stream_name).await.ok()?;
            s.direct_get(ack.sequence).await.ok()
        };
        let time_ms = match tokio::time::timeout(Duration::from_secs(2), stored).await {
            Ok(Some(m)) if m.sequence == ack.sequence => millis(m.time),
            _ => now_ms,
        };
        Ok(Appended {
            id: EntryId(ack.sequence),
            time_ms,
        })
    }

    async fn read(&self, after: EntryId, limit: usize) -> Result<Vec<Record>, StoreError> {
        let b = self.bounds();
        let (Some(oldest), Some(newest)) = (b.oldest, b.newest) else {
            return Ok(Vec::new());
        };
        let from = after.get().saturating_add(1).max(oldest.get());
        let newest = newest.get();
        if from > newest || limit == 0 {
            return Ok(Vec::new());
        }
        let last = newest.min(from.saturating_add(limit as u64 - 1));
        let s = self.stream().await?;
        let got: Vec<Option<Record>> = futures_util::stream::iter(from..=last)
            .map(|seq| {
                let s = s.clone();
                async move {
                    match s.direct_get(seq).await {
                        Ok(m) => Ok(Some(Record {
                            id: EntryId(m.sequence),
                            time_ms: millis(m.time),
                            entry: m.payload,
                        })),
                        Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => Ok(None),
                        Err(e) => Err(unavailable("reading", e)),
                    }
                }
            })
            .buffered(64)
            .try_collect()
            .await?;
        Ok(got
            .into_iter()
            .flatten()
            .filter(|r| r.entry.len() == self.entry_len)
            .collect())
    }

    fn bounds(&self) -> Bounds {
        *self.bounds.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn expire(&self, _cutoff_ms: u64) -> Result<u64, StoreError> {
        // JetStream removes old entries itself (max_age); the lifetime rule sets max_age.
        Ok(0)
    }

    async fn set_lifetime(&self, lifetime: Duration) -> Result<(), StoreError> {
        {
            let mut l = self.lifetime.lock().unwrap_or_else(|e| e.into_inner());
            let (current, since) = *l;
            let diff = current.as_secs_f64() - lifetime.as_secs_f64();
            // Update the stream only on a real change, and not more than every ten seconds.
            if diff.abs() < current.as_secs_f64() * 0.02
                || since.elapsed() < Duration::from_secs(10)
            {
                return Ok(());
            }
            *l = (lifetime, std::time::Instant::now());
        }
        let mut s = self.stream().await?;
        let mut config = s
            .info()
            .await
            .map_err(|e| unavailable("reading the stream", e))?
            .config
            .clone();
        config.max_age = lifetime;
        self.js
            .update_stream(config)
            .await
            .map_err(|e| unavailable("setting max_age", e))?;
        Ok(())
    }

    fn spawn_feed(&self, tx: broadcast::Sender<Record>) {
        let js = self.js.clone();
        let client = self.client.clone();
        let name = self.stream_name.clone();
        let start = self.bounds().newest.map_or(0, EntryId::get) + 1;
        let entry_len = self.entry_len;
        let bounds = self.bounds.clone();
        let task = tokio::spawn(async move {
            let mut next = start;
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            loop {
                let run = async {
                    let s = js.get_stream(&name).await.map_err(|e| e.to_string())?;
                    let c = s
                        .create_consumer(consumer::pull::OrderedConfig {
                            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                                start_sequence: next,
                            },
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut msgs = c.messages().await.map_err(|e| e.to_string())?;
                    // A restarted nats-server has lost the ephemeral consumer, and the ordered
                    // consumer notices only after its own retries (some 15 s without pushes):
                    // follow again from `next` as soon as the connection is back.
                    let mut watch = tokio::time::interval(Duration::from_millis(100));
                    let mut was_connected = true;
                    loop {
                        let m = tokio::select! {
                            m = msgs.next() => match m {
                                Some(m) => m,
                                None => break,
                            },
                            _ = watch.tick() => {
                                let connected = client.connection_state()
                                    == async_nats::connection::State::Connected;
                                if connected && !was_connected {
                                    tracing::info!("reconnected to NATS; following the stream again");
                                    break;
                                }
                                was_connected = connected;
                                continue;
                            }
                        };
                        let m = m.map_err(|e| e.to_string())?;
                        let Ok(info) = m.info() else { continue };
                        let (id, time_ms) = (info.stream_sequence, millis(info.published));
                        next = id + 1;
                        {
                            let mut b = bounds.lock().unwrap_or_else(|e| e.into_inner());
                            let id = EntryId(id);
                            b.newest = Some(b.newest.map_or(id, |n| n.max(id)));
                        }
                        if m.payload.len() == entry_len {
                            let _ = tx.send(Record {
                                id: EntryId(id),
                                time_ms,
                                entry: m.payload.clone(),
                            });
                        }
                    }
                    Ok::<(), String>(())
                };
                match run.await {
                    Ok(()) => backoff.reset(),
                    Err(e) => {
                        tracing::warn!(error = %e, "following the JetStream stream failed; retrying")
                    }
                }
                backoff.wait().await;
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    fn healthy(&self) -> Result<(), StoreError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            _ => Err(StoreError::Unavailable(
                "not connected to NATS; reconnecting".into(),
            )),
        }
    }

    async fn close(&self) -> Result<(), StoreError> {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
        Ok(())
    }
}
